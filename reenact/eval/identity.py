"""Face identity: dlib's 128-d face descriptor and its distance (the ``eval`` extra).

dlib's ResNet face-recognition model maps an aligned 150x150 face chip to a 128-d vector;
two photos of the same person lie closer than 0.6 (Euclidean) in about 99.4% of the LFW
pairs, dlib's published operating point. The model file ships in ``face-recognition-models``
and dlib itself in ``dlib-bin``: ``pip install "reenact[eval]"``.

dlib aligns the chip from five points (two corners of each eye and the base of the nose). We
give it those points from our own MediaPipe landmarks (iBUG 45, 42, 36, 39, 33: the order of
dlib's 5-point predictor), so every face MediaPipe tracks gets a descriptor, including small
generated crops that dlib's HOG detector misses. Without landmarks, dlib's own frontal face
detector and 5-point shape predictor are used.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..errors import NoFaceError, ReenactError
from ..geometry.ibug68 import to_ibug68
from ..io.images import as_rgb

SAME_PERSON_THRESHOLD = 0.6
"""dlib's same-person threshold on the descriptor distance (smaller = more alike)."""
DLIB_FIVE = (45, 42, 36, 39, 33)
"""iBUG-68 indices of dlib's five shape points, in dlib's order."""
INSTALL_HINT = 'pip install "reenact[eval]"  (installs dlib-bin and face-recognition-models)'


def _models_dir() -> Path:
    """Folder of ``face-recognition-models``' model files, found without importing the package
    (its ``__init__`` imports ``pkg_resources``, which recent setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ReenactError(f"identity metrics need the face-recognition-models package: {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not (folder / "dlib_face_recognition_resnet_model_v1.dat").is_file():
        raise ReenactError(f"dlib_face_recognition_resnet_model_v1.dat is missing from {folder}; "
                           f"reinstall: {INSTALL_HINT}")
    return folder


def _import_dlib():
    try:
        import dlib
    except ImportError:
        raise ReenactError(f"identity metrics need dlib: {INSTALL_HINT}") from None
    return dlib


def identity_available() -> tuple[bool, str]:
    """(True, "") when dlib and its model files can be loaded, else (False, the reason)."""
    try:
        _import_dlib()
        _models_dir()
    except ReenactError as e:
        return False, str(e)
    return True, ""


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two 128-d descriptors (0 = identical; < 0.6: the same person)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"descriptors differ in shape: {a.shape} vs {b.shape}")
    return float(np.linalg.norm(a - b))


class IdentityEncoder:
    """dlib face descriptors of faces in RGB images.

    >>> enc = IdentityEncoder()                                    # doctest: +SKIP
    >>> d = enc.distance(enc.descriptor(photo, face.landmarks), enc.descriptor(output, out_face.landmarks))

    Raises ``ReenactError`` naming ``pip install "reenact[eval]"`` when dlib or the model file
    is missing.
    """

    def __init__(self, padding: float = 0.25):
        dlib = _import_dlib()
        folder = _models_dir()
        self._dlib = dlib
        self._rec = dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat"))
        self._sp5_path = folder / "shape_predictor_5_face_landmarks.dat"
        self._sp5 = None
        self._detector = None
        self.padding = float(padding)

    def _shape_from_landmarks(self, landmarks: np.ndarray):
        lm = np.asarray(landmarks, np.float64)[:, :2]
        p68 = to_ibug68(lm) if lm.shape[0] == 478 else lm
        if p68.shape[0] != 68:
            raise ValueError(f"landmarks must be [478,>=2] (MediaPipe) or [68,2] (iBUG), got {lm.shape}")
        if not np.isfinite(p68).all():
            raise ValueError("landmarks contain NaN")
        x0, y0 = np.floor(p68.min(0)).astype(int)
        x1, y1 = np.ceil(p68.max(0)).astype(int)
        rect = self._dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
        pts = [self._dlib.point(int(round(p68[i, 0])), int(round(p68[i, 1]))) for i in DLIB_FIVE]
        return self._dlib.full_object_detection(rect, pts)

    def _shape_from_detector(self, image: np.ndarray):
        if self._detector is None:
            self._detector = self._dlib.get_frontal_face_detector()
            self._sp5 = self._dlib.shape_predictor(str(self._sp5_path))
        rects = self._detector(image, 1)
        if len(rects) == 0:
            raise NoFaceError("dlib found no face in the image")
        rect = max(rects, key=lambda r: r.width() * r.height())
        return self._sp5(image, rect)

    def descriptor(self, image: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """The 128-d descriptor (float32) of the face in ``image`` (``HxWx3`` uint8 RGB).

        landmarks: that face's MediaPipe mesh ``[478, >=2]`` or iBUG points ``[68, 2]`` in the
        image's pixels; None finds the largest face with dlib's detector (``NoFaceError`` if none).
        """
        img = np.ascontiguousarray(as_rgb(image, "image"))
        shape = self._shape_from_detector(img) if landmarks is None else self._shape_from_landmarks(landmarks)
        return np.asarray(self._rec.compute_face_descriptor(img, shape, 0, self.padding), np.float32)

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return descriptor_distance(a, b)
