"""Paste-back: the generated face crop composited into the full-resolution photo (MODELS.md 0.4).

The mask is the target's face oval, dilated by 3% and Gaussian-feathered by 5% of the face
width. Everything that depends only on the target (mask, region of interest, crop coverage,
colour statistics) is computed once in ``Compositor.__init__``; per frame only the face's
region is warped and blended (a feathered alpha blend: well under a millisecond per frame).
"""
from __future__ import annotations

import cv2
import numpy as np

from ..io.images import as_rgb
from .align import warp_from_crop

FACE_OVAL = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
                      152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109], np.int64)
"""MediaPipe's face-oval contour, in order around the face."""


def face_mask(landmarks: np.ndarray, image_size: tuple[int, int], dilate: float = 0.03,
              feather: float = 0.05) -> np.ndarray:
    """Feathered face-oval mask ``[H, W]`` float32 in [0, 1] for a ``[478, >=2]`` mesh."""
    w, h = image_size
    poly = np.asarray(landmarks, np.float64)[FACE_OVAL, :2]
    c = poly.mean(0)
    poly = c + (poly - c) * (1.0 + dilate)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    sigma = max(feather * float(np.ptp(poly[:, 0])) / 2.0, 0.5)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)


def _lab_stats(image: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    wsum = max(float(weight.sum()), 1e-6)
    mean = (lab * weight[..., None]).sum((0, 1)) / wsum
    std = np.sqrt(((lab - mean) ** 2 * weight[..., None]).sum((0, 1)) / wsum) + 1e-3
    return mean, std


class Compositor:
    """Pastes generated crops back into one target photo.

    photo: ``[H, W, 3]`` uint8 RGB (full resolution). landmarks: the photo's ``[478, >=2]`` mesh.
    M: the 2x3 photo-to-crop matrix used to make the model's input crop; crop_size: its R.
    """

    def __init__(self, photo: np.ndarray, landmarks: np.ndarray, M: np.ndarray, crop_size: int,
                 color_match: bool = False, dilate: float = 0.03, feather: float = 0.05):
        self.photo = as_rgb(photo, "target photo")
        self.M = np.asarray(M, np.float64)
        self.crop_size = int(crop_size)
        self.color_match = color_match
        h, w = self.photo.shape[:2]
        mask = face_mask(landmarks, (w, h), dilate, feather)
        ys, xs = np.nonzero(mask > 1e-3)
        if len(xs) == 0:
            raise ValueError("the face mask is empty: the face lies outside the photo")
        self.x0, self.y0 = int(xs.min()), int(ys.min())
        self.x1, self.y1 = int(xs.max()) + 1, int(ys.max()) + 1
        roi = (self.x1 - self.x0, self.y1 - self.y0)
        coverage = warp_from_crop(np.ones((crop_size, crop_size), np.float32), self.M, roi, (self.x0, self.y0))
        # erode the coverage a pixel so bilinear edge samples never blend in the black border
        coverage = cv2.erode(coverage, np.ones((3, 3), np.uint8))
        self.alpha = (mask[self.y0:self.y1, self.x0:self.x1] * coverage)[..., None].astype(np.float32)
        self._photo_roi = self.photo[self.y0:self.y1, self.x0:self.x1].astype(np.float32)
        self._target_stats = _lab_stats(self.photo[self.y0:self.y1, self.x0:self.x1], self.alpha[..., 0])

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        """``[R, R, 3]`` uint8 generated crop -> ``[H, W, 3]`` uint8 composited photo (a new array)."""
        crop = as_rgb(crop, "generated crop")
        if crop.shape[:2] != (self.crop_size, self.crop_size):
            raise ValueError(f"generated crop must be {self.crop_size}x{self.crop_size}, got {crop.shape[:2]}")
        face = warp_from_crop(crop, self.M, (self.x1 - self.x0, self.y1 - self.y0), (self.x0, self.y0))
        if self.color_match:
            face = self._match_colour(face)
        out = self.photo.copy()
        blended = self._photo_roi + self.alpha * (face.astype(np.float32) - self._photo_roi)
        out[self.y0:self.y1, self.x0:self.x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return out

    def add_delta(self, delta: np.ndarray) -> np.ndarray:
        """Residual paste-back: ``[R, R, 3]`` float change (generated minus the generator's own neutral
        rendering, in 0-255 levels) warped to full resolution and added to the photo inside the mask.
        Keeps the photo's full-resolution detail; only what the expression changes is taken from the
        generator (low-resolution models would otherwise blur the whole face)."""
        delta = np.asarray(delta, np.float32)
        if delta.shape != (self.crop_size, self.crop_size, 3):
            raise ValueError(f"delta must be {self.crop_size}x{self.crop_size}x3, got {delta.shape}")
        d = warp_from_crop(delta, self.M, (self.x1 - self.x0, self.y1 - self.y0), (self.x0, self.y0))
        out = self.photo.copy()
        out[self.y0:self.y1, self.x0:self.x1] = np.clip(self._photo_roi + self.alpha * d + 0.5, 0, 255).astype(np.uint8)
        return out

    def _match_colour(self, face: np.ndarray) -> np.ndarray:
        """Mean/std transfer in Lab inside the mask, towards the photo's own face colours."""
        mean_s, std_s = _lab_stats(face, self.alpha[..., 0])
        mean_t, std_t = self._target_stats
        lab = cv2.cvtColor(face, cv2.COLOR_RGB2LAB).astype(np.float32)
        lab = (lab - mean_s) * (std_t / std_s) + mean_t
        return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
