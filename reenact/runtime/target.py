"""The target photo, analysed once (MODELS.md 0.4 "Target analysis").

``prepare_target`` tracks the photo in IMAGE mode (tiles for large group photos), picks a face
(the largest, or ``face_index``), aligns it to the model's crop, derives what the models read
(68 points in crop pixels, AUs, blendshapes, pseudo-label, neutral flag), its frontal geometry for
landmark retargeting, and the compositor that pastes generated crops back at full resolution.
A photo without a face fails here, before anything else starts.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ImageError, NoFaceError
from ..geometry import (Aligner, Compositor, TargetGeometry, action_units, apply_affine, is_neutral, pseudo_label,
                        to_ibug68)
from ..io.images import as_rgb, load_image
from ..models.base import TargetInput
from ..tracking import Face, FaceTracker

log = logging.getLogger(__name__)

NOT_NEUTRAL_WARN = 0.3
"""A target photo whose largest blendshape exceeds this is not neutral (MODELS.md 0.4): warn."""


@dataclass
class PreparedTarget:
    """Everything per target: photo, chosen face, aligned crop, model inputs, compositor.

    image: ``[H,W,3]`` uint8 full-resolution photo; face: its tracking; crop: ``[R,R,3]`` uint8;
    M: ``[2,3]`` photo-to-crop matrix; lmk68_crop: ``[68,2]`` crop pixels; aus ``[17]``;
    label: index into EXPRESSION_CLASSES; neutral: the photo looks neutral.
    """

    image: np.ndarray
    face: Face
    num_faces: int
    res: int
    crop: np.ndarray
    M: np.ndarray
    lmk68_crop: np.ndarray
    aus: np.ndarray
    label: int
    neutral: bool
    geometry: TargetGeometry
    compositor: Compositor

    @property
    def mask(self) -> np.ndarray:
        """The paste-back weight ``[H,W]`` in [0,1] (face oval, feathered, within the crop)."""
        h, w = self.image.shape[:2]
        out = np.zeros((h, w), np.float32)
        c = self.compositor
        out[c.y0:c.y1, c.x0:c.x1] = c.alpha[..., 0]
        return out

    def model_input(self, device: torch.device | str = "cpu") -> TargetInput:
        crop = torch.from_numpy(self.crop).permute(2, 0, 1)[None].float().to(device) * (2.0 / 255.0) - 1.0
        return TargetInput(
            crop=crop,
            lmk68=torch.from_numpy(self.lmk68_crop.astype(np.float32))[None].to(device),
            aus=torch.from_numpy(self.aus.astype(np.float32))[None].to(device),
            blendshapes=torch.from_numpy(self.face.blendshapes.astype(np.float32))[None].to(device),
            label=torch.tensor([self.label], dtype=torch.long, device=device),
            neutral=torch.tensor([self.neutral], device=device))


def select_face(faces: list[Face], face_index: int | None, what: str) -> Face:
    """The face to use: ``face_index`` (0 = largest), else the largest. Errors name the problem."""
    if not faces:
        raise NoFaceError(f"no face found in {what}: use a photo where one face is clearly visible "
                          "(frontal, not too small, not cut off)")
    i = 0 if face_index is None else int(face_index)
    if not 0 <= i < len(faces):
        raise NoFaceError(f"--face-index {i} asked for, but {what} has {len(faces)} face(s) (0 = largest)")
    return faces[i]


def prepare_target(photo: np.ndarray | str | os.PathLike, res: int, *, template: np.ndarray | None = None,
                   face_index: int | None = None, tracker: FaceTracker | None = None,
                   color_match: bool = False, name: str | None = None) -> PreparedTarget:
    """Analyse a target photo (array or path) for a model of crop size ``res``."""
    what = name or (f"the target photo {photo}" if isinstance(photo, (str, os.PathLike)) else "the target photo")
    image = load_image(photo) if isinstance(photo, (str, os.PathLike)) else as_rgb(photo, "target photo")
    h, w = image.shape[:2]
    if min(h, w) < 32:
        raise ImageError(f"{what} is {w}x{h} px: too small to hold a face (at least 32x32)")
    own = tracker is None
    tr = FaceTracker(mode="image", max_faces=8) if own else tracker
    try:
        faces = tr.track(image).faces
    finally:
        if own:
            tr.close()
    face = select_face(faces, face_index, what)
    if len(faces) > 1:
        log.info("%s has %d faces; using face %d (0 = largest)", what, len(faces), face_index or 0)
    top = int(np.argmax(face.blendshapes[1:])) + 1
    if float(face.blendshapes[top]) > NOT_NEUTRAL_WARN:
        from ..tracking import BLENDSHAPE_NAMES

        log.warning("%s does not look neutral (%s %.2f): the driver's expression is added to the photo's own; "
                    "results are best with a neutral, frontal photo", what, BLENDSHAPE_NAMES[top],
                    float(face.blendshapes[top]))
    crop = Aligner(res, template).crop(image, face.landmarks)
    lmk68 = apply_affine(crop.M, to_ibug68(face.landmarks)[:, :2]).astype(np.float32)
    aus = action_units(face.blendshapes, face.landmarks)
    return PreparedTarget(
        image=image, face=face, num_faces=len(faces), res=res, crop=crop.image, M=crop.M, lmk68_crop=lmk68,
        aus=aus, label=int(pseudo_label(face.blendshapes)), neutral=bool(is_neutral(face.blendshapes)),
        geometry=TargetGeometry.from_face(face),
        compositor=Compositor(image, face.landmarks, crop.M, res, color_match=color_match))
