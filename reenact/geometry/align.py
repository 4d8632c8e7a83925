"""Similarity alignment of a face into an R x R crop, and the inverse warp (MODELS.md 0.4).

Five expression-stable points (two eye centres, nose tip MP 1, mouth corners MP 61 and 291)
are fitted by least squares with a 4-DOF similarity to a 5-point template given in crop units
(0..1), so one template serves every crop size (64, 128, 256...). Coordinates follow OpenCV:
pixel centres at integers, so ``cv2.warpAffine`` with the returned 2x3 matrix is exact and the
inverse warp (paste-back) uses the same matrix with ``WARP_INVERSE_MAP``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .ibug68 import eye_centres

NOSE_TIP, MOUTH_RIGHT, MOUTH_LEFT = 1, 61, 291

DEFAULT_TEMPLATE = np.array([
    [0.3375, 0.3394],   # subject's right eye centre (image left)
    [0.6625, 0.3394],   # subject's left eye centre
    [0.5000, 0.5305],   # nose tip
    [0.3733, 0.6900],   # right mouth corner
    [0.6267, 0.6900],   # left mouth corner
], np.float64)
"""Default 5-point template in crop units: the Procrustes mean of the five points over 314
frames of the training videos, made left-right symmetric and scaled so the median face oval
spans 70% of the crop's width and 84% of its height, centred. Models store their own template
(``fit_template`` over their training set) in their checkpoints."""


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """``[478, >=2]`` mesh -> ``[5, 2]`` alignment points (eye centres, nose tip, mouth corners)."""
    r, l = eye_centres(landmarks[None, :, :2])
    return np.stack([r[0], l[0], landmarks[NOSE_TIP, :2], landmarks[MOUTH_RIGHT, :2],
                     landmarks[MOUTH_LEFT, :2]]).astype(np.float64)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2D similarity (rotation, uniform scale, translation; no reflection).

    src, dst: ``[N, 2]``. Returns the 2x3 matrix M with ``dst ~= M[:, :2] @ src + M[:, 2]``.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s = (src - ms) @ np.array([1, 1j])
    d = (dst - md) @ np.array([1, 1j])
    denom = float(np.vdot(s, s).real)
    if denom < 1e-12:
        raise ValueError("alignment points are degenerate (all at one place)")
    a = np.vdot(s, d) / denom  # complex scale-rotation
    lin = np.array([[a.real, -a.imag], [a.imag, a.real]])
    return np.hstack([lin, (md - lin @ ms)[:, None]])


def apply_affine(M: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 matrix to ``[..., 2]`` points (extra trailing coordinates are dropped)."""
    p = np.asarray(points)[..., :2].astype(np.float64)
    return p @ M[:, :2].T + M[:, 2]


def invert_affine(M: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(M, np.float64))


def fit_template(point_sets: np.ndarray, iters: int = 10) -> np.ndarray:
    """Generalised Procrustes mean of ``[N, 5, 2]`` point sets, in crop units.

    The mean shape is scaled and centred so its extent matches ``DEFAULT_TEMPLATE``'s; use it
    as a model's template (stored with its checkpoint).
    """
    pts = np.asarray(point_sets, np.float64)
    mean = pts[0]
    for _ in range(iters):
        aligned = np.stack([apply_affine(fit_similarity(p, mean), p) for p in pts])
        mean = aligned.mean(0)
    return apply_affine(fit_similarity(mean, DEFAULT_TEMPLATE), mean)


@dataclass(frozen=True, slots=True)
class AlignedCrop:
    """image: ``[R, R, 3]`` uint8; M: ``[2, 3]`` maps full-image pixels to crop pixels."""

    image: np.ndarray
    M: np.ndarray

    @property
    def size(self) -> int:
        return self.image.shape[0]

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        return apply_affine(self.M, points)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        return apply_affine(invert_affine(self.M), points)


class Aligner:
    """Aligns faces to ``template`` (crop units) in a ``size`` x ``size`` crop."""

    def __init__(self, size: int, template: np.ndarray | None = None):
        if size < 8:
            raise ValueError(f"crop size must be >= 8, got {size}")
        self.size = int(size)
        self.template = np.asarray(DEFAULT_TEMPLATE if template is None else template, np.float64)
        if self.template.shape != (5, 2):
            raise ValueError(f"template must be [5,2], got {self.template.shape}")

    def transform(self, landmarks: np.ndarray) -> np.ndarray:
        """``[478, >=2]`` mesh in image pixels -> 2x3 image-to-crop matrix."""
        dst = (self.template * self.size) - 0.5  # crop units -> pixel-centre coordinates
        return fit_similarity(five_points(landmarks), dst)

    def crop(self, image: np.ndarray, landmarks: np.ndarray) -> AlignedCrop:
        M = self.transform(landmarks)
        return AlignedCrop(warp_to_crop(image, M, self.size), M)


def warp_to_crop(image: np.ndarray, M: np.ndarray, size: int) -> np.ndarray:
    """Bilinear crop with border replication (MODELS.md 0.4)."""
    return cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_from_crop(crop: np.ndarray, M: np.ndarray, image_size: tuple[int, int],
                   offset: tuple[int, int] = (0, 0), border_value=0) -> np.ndarray:
    """Inverse warp: the crop placed back into an image of ``image_size`` = (W, H).

    ``offset`` = (x0, y0) renders only the window of the full image starting there (used by the
    compositor to warp just the face's region). Pixels outside the crop get ``border_value``.
    """
    x0, y0 = offset
    Mw = np.asarray(M, np.float64).copy()
    Mw[:, 2] += Mw[:, :2] @ np.array([x0, y0], np.float64)
    return cv2.warpAffine(crop, Mw, image_size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)
