"""Quality metrics for reenactment outputs: pure numpy (plus OpenCV's Gaussian blur).

Units, so figures from different runs can be compared:

* ``psnr``: decibels, against the images' data range (255 for uint8); ``inf`` for identical images.
* ``ssim``: unitless in [-1, 1], 1 for identical images (Gaussian-window SSIM, Wang et al. 2004).
* ``l1`` and ``temporal_stability``: mean absolute difference in intensity levels, i.e. 0-255 for
  uint8 images (float images are given in the units of ``data_range`` and scaled to 0-255).
* ``blendshape_correlation``: Pearson correlation in [-1, 1]; 0 for an output that never moves.
* ``landmark_nme``: mean point-to-point error divided by the inter-ocular distance (unitless;
  0.05 means an average error of 5% of the distance between the outer eye corners).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..tracking.landmarker import BLENDSHAPE_NAMES

__all__ = [
    "EXPRESSIVE_BLENDSHAPES", "MIN_DRIVER_STD", "STILL_MAX_SPEED", "BlendshapeCorrelation", "blendshape_correlation",
    "first_second_baseline", "frame_differences", "inter_ocular", "l1", "landmark_nme", "psnr", "ssim", "still_frames",
    "temporal_stability",
]


# --------------------------------------------------------------------------- pixels


def _default_range(a: np.ndarray, data_range: float | None) -> float:
    if data_range is not None:
        if data_range <= 0:
            raise ValueError(f"data_range must be > 0, got {data_range}")
        return float(data_range)
    if a.dtype == np.uint8:
        return 255.0
    if np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"give data_range for {a.dtype} images")
    return 1.0


def _pair(a: np.ndarray, b: np.ndarray, data_range: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("empty images")
    rng = _default_range(a, data_range)
    return a.astype(np.float64), b.astype(np.float64), rng


def _weights(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """A ``[H, W]`` (or full-shape) mask broadcast to ``shape``; None keeps every pixel."""
    if mask is None:
        return None
    m = np.asarray(mask, np.float64)
    if m.shape == shape[:2] and len(shape) == 3:
        m = m[..., None]
    m = np.broadcast_to(m, shape)
    if m.sum() <= 0:
        raise ValueError("the mask is empty")
    return m


def psnr(a: np.ndarray, b: np.ndarray, data_range: float | None = None, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range^2 / MSE)``.

    a, b: images of one shape (``HxW`` or ``HxWxC``). data_range: the largest possible value
    minus the smallest; by default 255 for uint8 and 1.0 for float images. mask: optional
    ``[H, W]`` weights in [0, 1] (the MSE becomes a weighted mean). Identical images give ``inf``.
    """
    x, y, rng = _pair(a, b, data_range)
    w = _weights(mask, x.shape)
    d2 = (x - y) ** 2
    mse = float(d2.mean() if w is None else (d2 * w).sum() / w.sum())
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(rng * rng / mse))


def l1(a: np.ndarray, b: np.ndarray, data_range: float | None = None, mask: np.ndarray | None = None) -> float:
    """Mean absolute difference in intensity levels on a 0-255 scale.

    uint8 images are compared as they are; float images are first divided by ``data_range``
    (default 1.0) and multiplied by 255, so a figure means the same for both. mask: optional
    ``[H, W]`` weights in [0, 1]. Identical images give 0.
    """
    x, y, rng = _pair(a, b, data_range)
    w = _weights(mask, x.shape)
    d = np.abs(x - y) * (255.0 / rng)
    return float(d.mean() if w is None else (d * w).sum() / w.sum())


SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # window radius = int(3.5 * 1.5 + 0.5) = 5: an 11x11 window, as in the paper
SSIM_K1, SSIM_K2 = 0.01, 0.03


def ssim(a: np.ndarray, b: np.ndarray, data_range: float | None = None, return_map: bool = False):
    """Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004), the mean over channels:
    scikit-image's ``structural_similarity`` with the paper's choices (a Gaussian window with
    sigma 1.5, 11x11; population (co)variances; K1 = 0.01, K2 = 0.03; only windows inside the
    image count).

    a, b: ``HxW`` or ``HxWxC`` images of one shape, each side at least 11 pixels. data_range:
    255 for uint8 and 1.0 for float images by default. Returns a float in [-1, 1] (1 for
    identical images), or ``(mean, map)`` with ``map`` of shape ``HxW`` (channel mean) when
    ``return_map``.
    """
    from skimage.metrics import structural_similarity

    x, y, rng = _pair(a, b, data_range)
    if x.ndim not in (2, 3):
        raise ValueError(f"ssim wants HxW or HxWxC images, got shape {np.asarray(a).shape}")
    win = 2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1
    h, w = x.shape[:2]
    if min(h, w) < win:
        raise ValueError(f"ssim needs images of at least {win}x{win} pixels, got {w}x{h}")
    value, smap = structural_similarity(x, y, data_range=rng, channel_axis=-1 if x.ndim == 3 else None,
                                        gaussian_weights=True, sigma=SSIM_SIGMA,
                                        use_sample_covariance=False, K1=SSIM_K1, K2=SSIM_K2, full=True)
    if smap.ndim == 3:
        smap = smap.mean(-1)
    return (float(value), smap) if return_map else float(value)


# --------------------------------------------------------------------------- expression

_GAZE = {n for n in BLENDSHAPE_NAMES if n.startswith("eyeLook")}
EXPRESSIVE_BLENDSHAPES: tuple[str, ...] = tuple(n for n in BLENDSHAPE_NAMES if n != "_neutral" and n not in _GAZE)
"""The 43 blendshapes that describe facial expression: every ARKit blendshape except the eight
eye-gaze ones (``eyeLook*``: where the eyes point, which no model transfers) and MediaPipe's
``_neutral`` (not an ARKit shape)."""
_EXPRESSIVE_INDEX = np.array([BLENDSHAPE_NAMES.index(n) for n in EXPRESSIVE_BLENDSHAPES], np.int64)

MIN_DRIVER_STD = 0.03
"""A blendshape counts as varying in the driver when its standard deviation over the evaluated
frames is at least this (blendshapes lie in [0, 1]). Below it the driver's trace is mostly
tracker noise and a correlation with it says nothing about expression transfer."""

_FLAT_STD = 1e-6  # an output trace with less spread than this is treated as constant (correlation 0)


@dataclass(frozen=True)
class BlendshapeCorrelation:
    """How well an output's blendshapes follow the driver's (``blendshape_correlation``).

    mean: mean Pearson correlation over ``names`` (NaN when no blendshape varies in the driver).
    per_blendshape: correlation of each blendshape in ``names``.
    pooled: one Pearson correlation over every (frame, blendshape) value of ``names``, baseline
        subtracted: also rewards matching how much each blendshape moves relative to the others.
    mae: mean absolute difference of the baseline-subtracted values over ``names`` (blendshape
        units, [0, 1]); it also sees intensity errors, which a correlation ignores.
    names: the expressive blendshapes that vary in the driver (``MIN_DRIVER_STD``).
    frames: number of frames where both output and driver were tracked.
    """

    mean: float
    per_blendshape: dict[str, float]
    pooled: float
    mae: float
    names: tuple[str, ...]
    frames: int
    driver_std: dict[str, float] = field(default_factory=dict)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two 1-D series; 0 when either is constant (no NaN)."""
    x = x - x.mean()
    y = y - y.mean()
    sx, sy = float(np.sqrt((x * x).mean())), float(np.sqrt((y * y).mean()))
    if sx < _FLAT_STD or sy < _FLAT_STD:
        return 0.0
    return float(np.clip((x * y).mean() / (sx * sy), -1.0, 1.0))


def first_second_baseline(blendshapes: np.ndarray, t: np.ndarray, seconds: float = 1.0) -> np.ndarray:
    """Resting blendshapes ``[52]``: the median over the tracked frames of the first ``seconds``.

    blendshapes: ``[N, 52]`` with NaN rows for untracked frames; t: ``[N]`` seconds. When no
    frame of the first second was tracked, the median over every tracked frame is used; when
    none was, zeros.
    """
    b = np.asarray(blendshapes, np.float64)
    t = np.asarray(t, np.float64)
    ok = np.isfinite(b).all(-1)
    early = ok & (t - (t[0] if len(t) else 0.0) < seconds)
    pick = early if early.any() else ok
    if not pick.any():
        return np.zeros(b.shape[-1], np.float32)
    return np.median(b[pick], axis=0).astype(np.float32)


def blendshape_correlation(output: np.ndarray, driver: np.ndarray,
                           baselines: tuple[np.ndarray, np.ndarray] | None = None,
                           min_driver_std: float = MIN_DRIVER_STD) -> BlendshapeCorrelation:
    """Correlate an output's blendshape traces with the driver's.

    output, driver: ``[N, 52]`` MediaPipe blendshapes of the same N frames (rows of NaN where a
    face was not tracked; such frames are left out). baselines: the resting ``[52]`` blendshapes
    of (output, driver), subtracted first (e.g. ``first_second_baseline``); None subtracts nothing.

    Only ``EXPRESSIVE_BLENDSHAPES`` whose driver trace varies (standard deviation at least
    ``min_driver_std``) are scored. Per blendshape the Pearson correlation of output and driver
    over time; an output trace that is constant (a frozen output) scores 0, never NaN. Pearson
    correlation ignores offsets, so the baselines only change ``pooled`` and ``mae``.
    """
    out = np.asarray(output, np.float64)
    drv = np.asarray(driver, np.float64)
    if out.shape != drv.shape or out.ndim != 2 or out.shape[1] != len(BLENDSHAPE_NAMES):
        raise ValueError(f"want two [N,52] arrays, got {out.shape} and {drv.shape}")
    if baselines is not None:
        out = out - np.asarray(baselines[0], np.float64)
        drv = drv - np.asarray(baselines[1], np.float64)
    ok = np.isfinite(out).all(-1) & np.isfinite(drv).all(-1)
    out, drv = out[ok][:, _EXPRESSIVE_INDEX], drv[ok][:, _EXPRESSIVE_INDEX]
    n = int(ok.sum())
    nan = float("nan")
    if n < 3:
        return BlendshapeCorrelation(nan, {}, nan, nan, (), n)
    std = drv.std(0)
    keep = std >= min_driver_std
    names = tuple(np.array(EXPRESSIVE_BLENDSHAPES)[keep].tolist())
    driver_std = {nm: float(s) for nm, s in zip(EXPRESSIVE_BLENDSHAPES, std) if s >= min_driver_std}
    if not keep.any():
        return BlendshapeCorrelation(nan, {}, nan, nan, (), n, driver_std)
    o, d = out[:, keep], drv[:, keep]
    per = {nm: _pearson(o[:, i], d[:, i]) for i, nm in enumerate(names)}
    pooled = _pearson(o.ravel(), d.ravel())
    mae = float(np.abs(o - d).mean())
    return BlendshapeCorrelation(float(np.mean(list(per.values()))), per, pooled, mae, names, n, driver_std)


# --------------------------------------------------------------------------- landmarks

RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 36, 45


def inter_ocular(lmk68: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners (iBUG points 36 and 45), ``[..., 68, 2] -> [...]``.

    The 300-W normalisation ("inter-ocular"), in the landmarks' units.
    """
    p = np.asarray(lmk68, np.float64)
    return np.linalg.norm(p[..., RIGHT_EYE_OUTER, :2] - p[..., LEFT_EYE_OUTER, :2], axis=-1)


def landmark_nme(pred: np.ndarray, ref: np.ndarray) -> np.ndarray | float:
    """Normalised mean error: mean point distance / the reference's inter-ocular distance.

    pred, ref: ``[68, 2]`` or ``[N, 68, 2]`` iBUG points in the same pixel frame (``ref`` the
    commanded landmarks, ``pred`` those re-tracked on the output). Frames with NaN points give
    NaN. Returns a float for one frame, ``[N]`` for many. Unitless: 0.05 = 5% of the inter-ocular
    distance.
    """
    p = np.asarray(pred, np.float64)[..., :2]
    r = np.asarray(ref, np.float64)[..., :2]
    if p.shape != r.shape or p.shape[-2] != 68:
        raise ValueError(f"want matching [...,68,2] landmarks, got {p.shape} and {r.shape}")
    err = np.linalg.norm(p - r, axis=-1).mean(-1)
    iod = inter_ocular(r)
    with np.errstate(invalid="ignore", divide="ignore"):
        nme = np.where(iod > 1e-6, err / np.maximum(iod, 1e-6), np.nan)
    return float(nme) if nme.ndim == 0 else nme


# --------------------------------------------------------------------------- time

STILL_MAX_SPEED = 0.15
"""The driver holds still between two frames when its 68 landmarks move, on average, less than
this many inter-ocular distances per second (0.005 per frame at 30 fps, under a pixel for a
face 150 pixels wide). Head motion counts as motion, like expression changes."""


def still_frames(lmk68: np.ndarray, t: np.ndarray, max_speed: float = STILL_MAX_SPEED) -> np.ndarray:
    """Where the driver holds still: ``[N]`` bool, element i about the step from frame i-1 to i.

    lmk68: ``[N, 68, 2]`` driver landmarks in pixels (NaN where untracked); t: ``[N]`` seconds.
    ``still[i]`` is True when the mean landmark speed between frames i-1 and i is below
    ``max_speed`` inter-ocular distances per second (``STILL_MAX_SPEED``). ``still[0]`` is False,
    and so is every step touching an untracked frame.
    """
    p = np.asarray(lmk68, np.float64)[..., :2]
    t = np.asarray(t, np.float64)
    n = len(p)
    still = np.zeros(n, bool)
    if n < 2:
        return still
    step = np.linalg.norm(p[1:] - p[:-1], axis=-1).mean(-1)
    iod = 0.5 * (inter_ocular(p[1:]) + inter_ocular(p[:-1]))
    dt = np.maximum(np.diff(t), 1e-6)
    with np.errstate(invalid="ignore", divide="ignore"):
        speed = step / iod / dt
    still[1:] = np.isfinite(speed) & (speed < max_speed)
    return still


def frame_differences(frames: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean absolute change from the previous frame inside ``mask``, 0-255 levels, ``[N]`` (NaN at 0).

    frames: ``[N, H, W, C]`` (uint8, or float in [0, 1]); mask: ``[H, W]`` weights in [0, 1],
    or ``[N, H, W]`` (the mean of the two frames' masks is used per step).
    """
    f = np.asarray(frames)
    scale = 1.0 if f.dtype == np.uint8 else 255.0
    m = np.asarray(mask, np.float64)
    n = len(f)
    out = np.full(n, np.nan)
    for i in range(1, n):
        w = m if m.ndim == 2 else 0.5 * (m[i] + m[i - 1])
        ws = float(w.sum())
        if ws <= 0:
            continue
        d = np.abs(f[i].astype(np.float64) - f[i - 1].astype(np.float64)) * scale
        if d.ndim == 3:
            d = d.mean(-1)
        out[i] = float((d * w).sum() / ws)
    return out


def temporal_stability(frames: np.ndarray, mask: np.ndarray, still: np.ndarray) -> float:
    """Mean absolute frame-to-frame change inside the face mask while the driver holds still.

    frames: ``[N, H, W, C]`` output frames (uint8, or float in [0, 1]); mask: ``[H, W]`` (or
    ``[N, H, W]``) face weights in [0, 1]; still: ``[N]`` bool from ``still_frames`` (``still[i]``
    covers the step from frame i-1 to i). Returns the mean over the still steps in intensity
    levels on a 0-255 scale (0 = perfectly steady), or NaN when the driver never holds still.
    A steady output of a still driver should stay within about 2 levels.
    """
    still = np.asarray(still, bool)
    if len(still) != len(frames):
        raise ValueError(f"still has {len(still)} entries for {len(frames)} frames")
    idx = np.nonzero(still[1:])[0] + 1
    if len(idx) == 0:
        return float("nan")
    f = np.asarray(frames)
    m = np.asarray(mask)
    vals = []
    for i in idx:
        mm = m if m.ndim == 2 else m[i - 1:i + 1]
        vals.append(frame_differences(f[i - 1:i + 1], mm)[1])
    vals = np.asarray(vals)
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if len(vals) else float("nan")
