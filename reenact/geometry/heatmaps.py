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


def heatmap_conv_torch(points, weight, size: int, sigma: float = 2.0):
    """``conv2d(ReflectPad(gaussian_heatmaps_torch(points)), weight)`` without rendering the heatmaps.

    points ``[B, K, 2]`` crop pixels, weight ``[O, K, k, k]`` (odd k, no bias, stride 1, reflect
    padding k // 2) -> ``[B, O, size, size]``, equal to the convolution up to float rounding.

    A heatmap is separable, ``H_k(y, x) = gy_k(y) * gx_k(x)``, and reflect padding keeps it so; the
    convolution is then a 1-D convolution along x per (landmark, kernel row) and one matrix product
    over (landmark, kernel row) along y: ``O * size^2 * K * k`` multiply-adds instead of
    ``O * size^2 * K * k^2`` (7x fewer for 7x7), and no ``K * size^2`` heatmap tensor. Only
    Sub/Mul/Exp/MatMul/Reshape/Transpose with constant index tables (ONNX and TensorRT friendly).
    """
    import torch

    o, n, kh, kw = (int(s) for s in weight.shape)
    if kh != kw or kh % 2 == 0:
        raise ValueError(f"heatmap_conv_torch needs an odd square kernel, got {kh}x{kw}")
    p = kh // 2
    # the padded image's column j (j = x + e for output x, tap e) reads source column reflect(j - p)
    j = torch.arange(size, device=points.device)[:, None] + torch.arange(kh, device=points.device)[None, :] - p
    j = torch.where(j < 0, -j, torch.where(j > size - 1, 2 * (size - 1) - j, j))
    win = j.to(points.dtype)                                          # [size, k] source coordinate
    c = -0.5 / sigma ** 2
    dx = win - points[..., 0, None, None]                             # [B, K, size, k]
    dy = win - points[..., 1, None, None]
    # exponents floored at -30 (e^-30 ~ 1e-13): the products below stay normal floats, as subnormal
    # ones make CPU matrix products an order of magnitude slower
    gx = torch.exp(torch.clamp(dx * dx * c, min=-30.0))
    gy = torch.exp(torch.clamp(dy * dy * c, min=-30.0))
    b = points.shape[0]
    # A[b, k, (o, d), x] = sum_e W[o, k, d, e] * gx[b, k, x, e]
    w = weight.permute(1, 0, 2, 3).reshape(n, o * kh, kw)
    a = torch.matmul(w, gx.transpose(-1, -2))                         # [B, K, O*k, size]
    a = a.reshape(b, n, o, kh, size).permute(0, 2, 1, 3, 4).reshape(b, o, n * kh, size)
    # out[b, o, y, x] = sum_(k, d) gy[b, k, y, d] * A[b, o, (k, d), x]
    g = gy.permute(0, 2, 1, 3).reshape(b, 1, size, n * kh)
    return torch.matmul(g, a)
