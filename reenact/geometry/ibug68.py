"""The 68-point iBUG/dlib subset of MediaPipe's 478-point mesh (MODELS.md 0.3).

A pair of mesh indices means "average the two". dlib's convention: point 0 is the jaw end on
the subject's right (the image's left for a camera-facing face), 36-41 the subject's right eye.
"""
from __future__ import annotations

import numpy as np

_IBUG68: tuple[int | tuple[int, int], ...] = (
    # jaw 0-16
    127, 234, 93, (132, 58), (58, 172), 136, 150, 176, 152, 400, 379, 365, (397, 288), 361, 323, 454, 356,
    # brows 17-26
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose 27-35
    (168, 6), (197, 195), 5, 4, 75, 97, 2, 326, 305,
    # eyes 36-47
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # outer lips 48-59
    61, 39, 37, 0, 267, 269, 291, 321, 314, 17, 84, 91,
    # inner lips 60-67
    78, 82, 13, 312, 308, 317, 14, 87,
)
assert len(_IBUG68) == 68

IBUG68_A = np.array([m if isinstance(m, int) else m[0] for m in _IBUG68], np.int64)
IBUG68_B = np.array([m if isinstance(m, int) else m[1] for m in _IBUG68], np.int64)

JAW = slice(0, 17)
RIGHT_BROW, LEFT_BROW = slice(17, 22), slice(22, 27)
NOSE = slice(27, 36)
RIGHT_EYE, LEFT_EYE = slice(36, 42), slice(42, 48)
OUTER_LIPS, INNER_LIPS = slice(48, 60), slice(60, 68)


def to_ibug68(landmarks: np.ndarray) -> np.ndarray:
    """``[..., 478, D]`` mesh -> ``[..., 68, D]`` iBUG points (same dtype)."""
    if landmarks.shape[-2] != 478:
        raise ValueError(f"expected [...,478,D] landmarks, got {landmarks.shape}")
    a = np.take(landmarks, IBUG68_A, axis=-2)
    b = np.take(landmarks, IBUG68_B, axis=-2)
    return ((a + b) * 0.5).astype(landmarks.dtype, copy=False)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the subject's right and left eyes (means of iBUG 36-41 and 42-47), ``[..., D]`` each."""
    p68 = to_ibug68(landmarks)
    return p68[..., RIGHT_EYE, :].mean(-2), p68[..., LEFT_EYE, :].mean(-2)
