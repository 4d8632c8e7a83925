"""Saving and loading tracked sequences (``.npz``, written atomically).

Arrays, for N frames (the chosen face per frame; NaN where no face was found):

    t            [N] float64  seconds
    ok           [N] bool     a face was found
    num_faces    [N] int16    faces found in the frame
    landmarks    [N,478,3] float32  pixels (z in x-pixel units)
    blendshapes  [N,52] float32     ordered as ``blendshape_names``
    transform    [N,4,4] float32    facial transformation matrix
    bbox         [N,4] float32      x0, y0, x1, y1 pixels
    image_size   [2] int32          W, H
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import InputFileError
from ..utils import atomic_path
from .landmarker import BLENDSHAPE_NAMES, NUM_LANDMARKS, Face, FrameTracking

FORMAT_VERSION = 1


@dataclass
class TrackSequence:
    """A tracked clip as stacked arrays (see the module docstring for shapes)."""

    t: np.ndarray
    ok: np.ndarray
    num_faces: np.ndarray
    landmarks: np.ndarray
    blendshapes: np.ndarray
    transform: np.ndarray
    bbox: np.ndarray
    image_size: tuple[int, int]
    source: str = ""

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def from_frames(cls, frames: Iterable[FrameTracking], face_index: int = 0, source: str = "") -> TrackSequence:
        frames = list(frames)
        n = len(frames)
        lm = np.full((n, NUM_LANDMARKS, 3), np.nan, np.float32)
        bs = np.full((n, len(BLENDSHAPE_NAMES)), np.nan, np.float32)
        tf = np.full((n, 4, 4), np.nan, np.float32)
        bb = np.full((n, 4), np.nan, np.float32)
        ok = np.zeros(n, bool)
        for i, fr in enumerate(frames):
            f = fr.face(face_index)
            if f is not None:
                ok[i] = True
                lm[i], bs[i], tf[i], bb[i] = f.landmarks, f.blendshapes, f.transform, f.bbox
        size = frames[0].image_size if frames else (0, 0)
        return cls(np.array([f.t for f in frames], np.float64), ok,
                   np.array([len(f.faces) for f in frames], np.int16), lm, bs, tf, bb, size, source)

    def frame(self, i: int) -> FrameTracking:
        """Frame ``i`` back as a FrameTracking holding the saved face (or none)."""
        faces = ()
        if self.ok[i]:
            faces = (Face(self.landmarks[i], self.blendshapes[i], self.transform[i], self.bbox[i]),)
        return FrameTracking(float(self.t[i]), tuple(int(v) for v in self.image_size), faces)

    def save(self, path: str | os.PathLike) -> Path:
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez_compressed(
                tmp, format_version=np.int32(FORMAT_VERSION), t=self.t, ok=self.ok, num_faces=self.num_faces,
                landmarks=self.landmarks, blendshapes=self.blendshapes, transform=self.transform, bbox=self.bbox,
                image_size=np.array(self.image_size, np.int32), blendshape_names=np.array(BLENDSHAPE_NAMES),
                source=np.array(self.source))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrackSequence:
        p = Path(path)
        if not p.is_file():
            raise InputFileError(f"tracks file not found: {p}")
        try:
            z = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputFileError(f"not a tracks file: {p} ({e})") from None
        with z:
            version = int(z["format_version"]) if "format_version" in z else -1
            if version != FORMAT_VERSION:
                raise InputFileError(f"{p} has tracks format version {version}; this version reads {FORMAT_VERSION}")
            if tuple(z["blendshape_names"]) != BLENDSHAPE_NAMES:
                raise InputFileError(f"{p} stores blendshapes in a different order")
            return cls(z["t"], z["ok"], z["num_faces"], z["landmarks"], z["blendshapes"], z["transform"], z["bbox"],
                       tuple(int(v) for v in z["image_size"]), str(z["source"]))
