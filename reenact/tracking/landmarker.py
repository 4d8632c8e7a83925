"""MediaPipe Face Landmarker (Tasks API) for still images and video.

``FaceTracker`` returns, for each frame, every face found, largest first. Per face: 478
landmarks in pixels, the 52 blendshapes by name, MediaPipe's 4x4 facial transformation
matrix and a bounding box. Stills are searched at full size and, when the photo is large,
also in overlapping tiles, because MediaPipe's short-range detector misses faces that are
small in a wide frame (a group photo). Very large frames are downscaled for tracking and the
landmarks mapped back, so coordinates always refer to the image that was passed in.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from ..errors import ImageError
from ..io.images import as_rgb
from .model_file import resolve_face_landmarker

log = logging.getLogger(__name__)

BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
"""The 52 blendshape names in the order of every ``blendshapes`` array ("_neutral", then ARKit)."""
BLENDSHAPE_INDEX = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}
NUM_LANDMARKS = 478
MIN_SIDE = 16
"""Images smaller than this (pixels, either side) cannot hold a trackable face: empty result."""


@dataclass(frozen=True, slots=True, eq=False)
class Face:
    """One tracked face.

    landmarks:   [478,3] float32; x, y in pixels of the tracked image with pixel centres at
                 integers (OpenCV's convention: x = mediapipe_x * W - 0.5), z in the same pixel
                 scale (MediaPipe's normalised z times the image width; smaller = nearer).
    blendshapes: [52] float32 in [0,1], ordered as ``BLENDSHAPE_NAMES``.
    transform:   [4,4] float32, facial transformation matrix (canonical face -> camera, cm).
    bbox:        [4] float32, x0, y0, x1, y1 in pixels (extent of the landmarks).
    """

    landmarks: np.ndarray
    blendshapes: np.ndarray
    transform: np.ndarray
    bbox: np.ndarray

    @property
    def area(self) -> float:
        return float(max(self.bbox[2] - self.bbox[0], 0) * max(self.bbox[3] - self.bbox[1], 0))

    def blendshape(self, name: str) -> float:
        return float(self.blendshapes[BLENDSHAPE_INDEX[name]])

    def top_blendshapes(self, k: int = 5) -> list[tuple[str, float]]:
        order = np.argsort(-self.blendshapes[1:])[:k] + 1  # skip "_neutral"
        return [(BLENDSHAPE_NAMES[i], float(self.blendshapes[i])) for i in order]

    def scaled(self, s: float, dx: float = 0.0, dy: float = 0.0) -> Face:
        """This face in the coordinates of an image resized by ``s`` then shifted by (dx, dy).

        Pixel centres sit at integers, so a resize maps x to (x + 0.5) * s - 0.5.
        """
        lm = self.landmarks.copy()
        lm[:, :2] = (lm[:, :2] + 0.5) * np.float32(s) - 0.5
        lm[:, 2] *= np.float32(s)
        lm[:, 0] += dx
        lm[:, 1] += dy
        return Face(lm, self.blendshapes, self.transform, _bbox(lm))


@dataclass(frozen=True, slots=True)
class FrameTracking:
    """All faces of one frame, largest first. ``t`` in seconds; ``image_size`` = (W, H)."""

    t: float
    image_size: tuple[int, int]
    faces: tuple[Face, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return len(self.faces) > 0

    @property
    def primary(self) -> Face | None:
        return self.faces[0] if self.faces else None

    def face(self, index: int = 0) -> Face | None:
        return self.faces[index] if index < len(self.faces) else None


def _bbox(lm: np.ndarray) -> np.ndarray:
    return np.array([lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()], np.float32)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


class FaceTracker:
    """MediaPipe Face Landmarker for stills (``mode="image"``) or video (``mode="video"``).

    >>> with FaceTracker(mode="video") as tr:          # doctest: +SKIP
    ...     for frame in frames:
    ...         trk = tr.track(frame.image, frame.t)   # t in seconds, increasing
    ...         face = trk.primary

    Args:
        model_path: ``face_landmarker.task``; None resolves it (env var, cache, download).
        mode: "image" treats every call independently; "video" tracks across frames and needs
            increasing timestamps (MediaPipe then also smooths single-face landmarks).
        max_faces: most faces returned per frame.
        max_side: frames larger than this (pixels) are downscaled for tracking.
        tile_search: stills only; also search overlapping tiles of large photos for small faces.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, *, mode: Literal["image", "video"] = "image",
                 max_faces: int = 4, min_detection_confidence: float = 0.5, min_presence_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, max_side: int = 1920, tile_search: bool = True):
        from mediapipe.tasks.python import BaseOptions, vision

        if mode not in ("image", "video"):
            raise ValueError(f"mode must be 'image' or 'video', got {mode!r}")
        if max_faces < 1:
            raise ValueError("max_faces must be >= 1")
        self.mode = mode
        self.max_faces = max_faces
        self.max_side = max_side
        self.tile_search = tile_search and mode == "image"
        self.model_path = resolve_face_landmarker(model_path)
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.VIDEO if mode == "video" else vision.RunningMode.IMAGE,
            num_faces=max_faces, min_face_detection_confidence=min_detection_confidence,
            min_face_presence_confidence=min_presence_confidence, min_tracking_confidence=min_tracking_confidence,
            output_face_blendshapes=True, output_facial_transformation_matrixes=True)
        self._last_ms = -1
        with _quiet_native_stderr():
            self._lm = vision.FaceLandmarker.create_from_options(opts)
            # warm up (first-call logs and allocations); in video mode this takes timestamp 0 ms
            self._detect(np.zeros((64, 64, 3), np.uint8), 0.0)

    # -- life cycle -----------------------------------------------------------------------
    def close(self) -> None:
        if self._lm is not None:
            self._lm.close()
            self._lm = None

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # MediaPipe's own __del__ fails at interpreter exit: close early
        try:
            self.close()
        except Exception:
            pass

    # -- tracking -------------------------------------------------------------------------
    def track(self, image: np.ndarray, t: float | None = None) -> FrameTracking:
        """Track one RGB frame (``HxWx3`` uint8; greyscale/RGBA arrays are converted).

        ``t`` (seconds) is required in video mode and must increase; a repeated timestamp is
        nudged forward by 1 ms. Returns every face found, largest first (possibly none).
        """
        if self._lm is None:
            raise RuntimeError("FaceTracker is closed")
        image = as_rgb(image)
        h, w = image.shape[:2]
        if self.mode == "video" and t is None:
            raise ValueError("video mode needs the frame's timestamp t (seconds)")
        t_out = float(t) if t is not None else 0.0
        if min(h, w) < MIN_SIDE:
            return FrameTracking(t_out, (w, h), ())
        scale = 1.0
        if max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
        faces = self._detect(image, t_out)
        if self.tile_search and len(faces) < self.max_faces:
            faces = self._merge(faces, self._detect_tiles(image))
        if scale != 1.0:
            faces = [f.scaled(1.0 / scale) for f in faces]
        faces.sort(key=lambda f: -f.area)
        return FrameTracking(t_out, (w, h), tuple(faces[: self.max_faces]))

    def _detect(self, image: np.ndarray, t: float) -> list[Face]:
        import mediapipe as mp

        mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        if self.mode == "video":
            ms = max(int(round(t * 1000.0)), self._last_ms + 1)
            self._last_ms = ms
            result = self._lm.detect_for_video(mp_image, ms)
        else:
            result = self._lm.detect(mp_image)
        return _faces_from_result(result, image.shape[1], image.shape[0])

    def _detect_tiles(self, image: np.ndarray) -> list[Face]:
        """Search overlapping square tiles (about 65% of the long side, 40% overlap)."""
        h, w = image.shape[:2]
        if max(h, w) < 700:
            return []
        s = min(h, w, int(math.ceil(0.65 * max(h, w))))
        found: list[Face] = []
        for y in _starts(h, s):
            for x in _starts(w, s):
                tile = np.ascontiguousarray(image[y:y + s, x:x + s])
                for f in self._detect(tile, 0.0):
                    if _touches_inner_edge(f.bbox, x, y, s, w, h):
                        continue  # a face cut by the tile edge gives a poor fit; another tile has it whole
                    found.append(f.scaled(1.0, x, y))
        return found

    @staticmethod
    def _merge(faces: list[Face], extra: list[Face], iou: float = 0.3) -> list[Face]:
        out = list(faces)
        for f in sorted(extra, key=lambda f: -f.area):
            if all(_iou(f.bbox, g.bbox) < iou for g in out):
                out.append(f)
        return out


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence MediaPipe's native start-up chatter on stderr (set REENACT_NATIVE_LOGS=1 to keep it)."""
    if os.environ.get("REENACT_NATIVE_LOGS"):
        yield
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured): nothing to silence
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _starts(length: int, size: int, overlap: float = 0.4) -> list[int]:
    if size >= length:
        return [0]
    n = int(math.ceil((length - size) / (size * (1 - overlap)))) + 1
    return sorted({int(round(v)) for v in np.linspace(0, length - size, n)})


def _touches_inner_edge(b: np.ndarray, x: int, y: int, s: int, w: int, h: int, margin: float = 2.0) -> bool:
    return bool((b[0] <= margin and x > 0) or (b[1] <= margin and y > 0)
                or (b[2] >= s - margin and x + s < w) or (b[3] >= s - margin and y + s < h))


def _faces_from_result(result, w: int, h: int) -> list[Face]:
    faces = []
    for i, lms in enumerate(result.face_landmarks):
        lm = np.array([(p.x * w - 0.5, p.y * h - 0.5, p.z * w) for p in lms], dtype=np.float32)
        if lm.shape[0] != NUM_LANDMARKS:
            raise ImageError(f"face landmarker returned {lm.shape[0]} landmarks, expected {NUM_LANDMARKS}")
        bs = np.zeros(len(BLENDSHAPE_NAMES), np.float32)
        if result.face_blendshapes and i < len(result.face_blendshapes):
            for c in result.face_blendshapes[i]:
                j = BLENDSHAPE_INDEX.get(c.category_name)
                if j is not None:
                    bs[j] = c.score
        tf = np.eye(4, dtype=np.float32)
        if result.facial_transformation_matrixes and i < len(result.facial_transformation_matrixes):
            tf = np.asarray(result.facial_transformation_matrixes[i], dtype=np.float32).reshape(4, 4)
        faces.append(Face(lm, bs, tf, _bbox(lm)))
    return faces
