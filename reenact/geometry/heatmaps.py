"""Gaussian landmark heatmaps (one channel per landmark, peak 1; MODELS.md 2.2).

Coordinates are crop pixels with pixel centres at integers, so a landmark at (x, y) = (10, 20)
peaks exactly at pixel row 20, column 10. The torch version uses only Sub/Mul/Exp (exportable
to ONNX and TensorRT) and batches over landmarks without loops.
"""
from __future__ import annotations

import numpy as np


def gaussian_heatmaps(points: np.ndarray, size: int, sigma: float = 2.0) -> np.ndarray:
    """``[..., K, 2]`` crop-pixel points -> ``[..., K, size, size]`` float32 heatmaps in [0, 1]."""
    p = np.asarray(points, np.float32)
    g = np.arange(size, dtype=np.float32)
    dx = (g - p[..., 0:1]) ** 2  # [..., K, W]
    dy = (g - p[..., 1:2]) ** 2  # [..., K, H]
    k = np.float32(-0.5 / sigma ** 2)
    return np.exp(dy[..., :, None] * k) * np.exp(dx[..., None, :] * k)


def gaussian_heatmaps_torch(points, size: int, sigma: float = 2.0):
    """Torch twin of ``gaussian_heatmaps``: ``[B, K, 2]`` -> ``[B, K, size, size]``."""
    import torch

    g = torch.arange(size, dtype=points.dtype, device=points.device)
    k = -0.5 / sigma ** 2
    dx = g - points[..., 0:1]  # [B, K, W]
    dy = g - points[..., 1:2]  # [B, K, H]
    ex = torch.exp(dx * dx * k)  # d * d, not d ** 2: ONNX Pow is slower and less portable
    ey = torch.exp(dy * dy * k)
    return ey.unsqueeze(-1) * ex.unsqueeze(-2)
