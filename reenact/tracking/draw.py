"""Overlay previews of tracking: mesh, the 68 iBUG points, top blendshapes."""
from __future__ import annotations

import functools

import cv2
import numpy as np

from ..geometry.ibug68 import to_ibug68
from .landmarker import Face, FrameTracking


@functools.cache
def _tesselation() -> np.ndarray:
    from mediapipe.tasks.python.vision import FaceLandmarksConnections as C

    return np.array([(c.start, c.end) for c in C.FACE_LANDMARKS_TESSELATION], np.int64)


def draw_face(image: np.ndarray, face: Face, top_k: int = 5, primary: bool = True) -> None:
    """Draw one face into ``image`` (RGB uint8, modified in place)."""
    h, w = image.shape[:2]
    thick = max(1, round(max(h, w) / 640))
    lm = face.landmarks[:, :2]
    seg = np.round(lm[_tesselation()] * 16).astype(np.int32)  # [E,2,2], 4 fractional bits
    cv2.polylines(image, list(seg), False, (150, 200, 255) if primary else (200, 200, 200), 1, cv2.LINE_AA, shift=4)
    radius = int(16 * max(1.0, float(face.bbox[2] - face.bbox[0]) / 120))
    for x, y in to_ibug68(lm):
        cv2.circle(image, (int(round(x * 16)), int(round(y * 16))), radius, (40, 255, 40), -1, cv2.LINE_AA, shift=4)
    x0, y0, x1, y1 = face.bbox.astype(int)
    cv2.rectangle(image, (x0, y0), (x1, y1), (255, 200, 0) if primary else (160, 160, 160), thick)
    if primary and top_k:
        _draw_blendshape_bars(image, face, top_k, thick)


def _draw_blendshape_bars(image: np.ndarray, face: Face, k: int, thick: int) -> None:
    h, w = image.shape[:2]
    scale = 0.4 * thick
    line = int(18 * thick)
    bar_w = int(min(120 * thick, w * 0.25))
    for i, (name, v) in enumerate(face.top_blendshapes(k)):
        y = 8 + line * (i + 1)
        cv2.rectangle(image, (6, y - line + 6), (6 + bar_w, y), (30, 30, 30), -1)
        cv2.rectangle(image, (6, y - line + 6), (6 + int(bar_w * v), y), (255, 120, 40), -1)
        cv2.putText(image, f"{name} {v:.2f}", (8 + bar_w, y - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    thick + 1, cv2.LINE_AA)
        cv2.putText(image, f"{name} {v:.2f}", (8 + bar_w, y - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                    thick, cv2.LINE_AA)


def draw_tracking(image: np.ndarray, trk: FrameTracking, top_k: int = 5) -> np.ndarray:
    """A copy of ``image`` with every face drawn (the primary one with blendshape bars)."""
    out = np.ascontiguousarray(image.copy())
    if not trk.ok:
        h, w = out.shape[:2]
        cv2.putText(out, "no face", (10, max(30, h // 12)), cv2.FONT_HERSHEY_SIMPLEX, max(0.6, w / 800),
                    (255, 60, 60), 2, cv2.LINE_AA)
    for i, f in reversed(list(enumerate(trk.faces))):
        draw_face(out, f, top_k, primary=(i == 0))
    return out
