"""One Euro filter (Casiez et al., CHI 2012) on numpy arrays, driven by real timestamps.

Formula (MODELS.md 0.5). For a sample x_k at time t_k (seconds), dt = t_k - t_{k-1} and
alpha(f) = 1 / (1 + 1 / (2*pi*f*dt)):

    dx_k  = alpha(f_d) * (x_k - xhat_{k-1}) / dt + (1 - alpha(f_d)) * dx_{k-1}
    f_c   = f_min + beta * |dx_k|
    xhat_k = alpha(f_c) * x_k + (1 - alpha(f_c)) * xhat_{k-1}

Everything is applied per element. Cutoffs are in Hz, beta in 1/(signal unit), the
derivative in signal units per second.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np

ArrayLike = Union[float, np.ndarray]


def _param(value, name: str, *, positive: bool) -> ArrayLike:
    """Return a validated scalar float or a read-only float64 array."""
    arr = np.array(value, dtype=np.float64)
    ok = np.isfinite(arr) & ((arr > 0) if positive else (arr >= 0))
    if not np.all(ok):
        rule = "finite and > 0" if positive else "finite and >= 0"
        raise ValueError(f"OneEuroParams.{name} must be {rule}, got {value!r}")
    if arr.ndim == 0:
        return float(arr)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class OneEuroParams:
    """One Euro filter parameters; each may be a scalar or an array (per-element parameters).

    min_cutoff: minimum cutoff frequency f_min in Hz (> 0); lower = steadier at rest.
    beta: speed coefficient in 1/(signal unit) (>= 0); higher = less lag on fast motion.
    d_cutoff: cutoff of the derivative filter f_d in Hz (> 0).

    Array parameters must broadcast together and, at filtering time, to the signal's shape
    (e.g. shape [478, 1] for a [478, 3] landmark array), without enlarging it.
    """

    min_cutoff: ArrayLike = 1.0
    beta: ArrayLike = 0.0
    d_cutoff: ArrayLike = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_cutoff", _param(self.min_cutoff, "min_cutoff", positive=True))
        object.__setattr__(self, "beta", _param(self.beta, "beta", positive=False))
        object.__setattr__(self, "d_cutoff", _param(self.d_cutoff, "d_cutoff", positive=True))
        try:
            np.broadcast_shapes(*(np.shape(v) for v in self._values()))
        except ValueError:
            raise ValueError("OneEuroParams: min_cutoff, beta and d_cutoff shapes do not broadcast "
                             f"together: {[np.shape(v) for v in self._values()]}") from None

    def _values(self) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
        return (self.min_cutoff, self.beta, self.d_cutoff)

    @property
    def shape(self) -> tuple[int, ...]:
        """Broadcast shape of the parameters; () when all three are scalars."""
        return np.broadcast_shapes(*(np.shape(v) for v in self._values()))

    @staticmethod
    def where(mask, inside: "OneEuroParams", outside: "OneEuroParams") -> "OneEuroParams":
        """Per-element parameters: ``inside`` where ``mask`` is true, ``outside`` elsewhere.

        Example: eyelid landmarks inside a landmark array,
        ``OneEuroParams.where(eyelid_mask[:, None], EYELIDS, LANDMARKS)`` for shape [478, 3].
        """
        m = np.asarray(mask, dtype=bool)
        return OneEuroParams(*(np.where(m, a, b) for a, b in zip(inside._values(), outside._values())))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OneEuroParams):
            return NotImplemented
        return all(np.shape(a) == np.shape(b) and np.array_equal(a, b)
                   for a, b in zip(self._values(), other._values()))

    def __hash__(self) -> int:
        return hash(tuple(np.asarray(v).tobytes() + str(np.shape(v)).encode() for v in self._values()))


# Presets, MODELS.md 0.5 [D] (all guesses; tune per the rule given there).
LANDMARKS = OneEuroParams(1.0, 1.0, 1.0)     # landmarks in IOD units
EYELIDS = OneEuroParams(4.0, 1.0, 1.0)       # eyelid landmarks, eyeBlink*, AU45
MESH = OneEuroParams(2.0, 1.0, 1.0)          # mesh motion in IOD units: MediaPipe's VIDEO mode already smooths
                                             # landmarks, so half as steady as LANDMARKS (less lag, same calm)
POSE = OneEuroParams(0.5, 0.05, 1.0)         # head turn in degrees (beta per degree/s): steady at rest
BLENDSHAPES = OneEuroParams(1.5, 0.5, 1.0)   # blendshapes / AUs in [0, 1]
CODE_C = OneEuroParams(1.0, 2.0, 1.0)        # 2CET-GAN code, [-0.5, 0.5]
CODE_D = OneEuroParams(1.0, 1.0, 1.0)        # ExprGAN code, [-1, 1]
CLASS_PROBS = OneEuroParams(0.8, 0.0, 1.0)   # class probabilities


def smoothing_factor(cutoff_hz: ArrayLike, dt: float) -> ArrayLike:
    """alpha(f) = 1 / (1 + 1 / (2*pi*f*dt)) for cutoff f in Hz and dt > 0 in seconds."""
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz) * dt))


def as_time(t) -> float:
    """A timestamp in seconds as a finite float; ValueError otherwise."""
    t = float(t)
    if not math.isfinite(t):
        raise ValueError(f"timestamp must be finite seconds, got {t}")
    return t


class OneEuroFilter:
    """Vectorised One Euro filter over numpy arrays of any (fixed) shape.

    ``filter(x, t)`` takes a sample ``x`` (any shape, finite) and its capture time ``t`` in
    seconds (real time, not frame index). Rules:

    * the first call (or the first after ``reset()``) returns ``x`` unchanged;
    * ``dt = t - t_prev <= 0`` (duplicate or out-of-order timestamp) returns the previous
      output unchanged and leaves the state alone (no division by zero);
    * NaN/inf in ``x`` or ``t`` raises ValueError; so does a shape change between calls;
    * the state is float64; the output has the input's floating dtype (float32 in ->
      float32 out), non-float input gives float64.

    ``raw_derivative=False`` (default) is MODELS.md 0.5 exactly: the derivative is taken
    against the previous *filtered* value, (x_k - xhat_{k-1}) / dt. That makes the speed
    estimate (and so the cutoff) depend on the sample rate: the filter lag x - xhat does not
    shrink with dt, so the estimate grows as ~1/dt. ``raw_derivative=True`` uses the previous
    raw sample, (x_k - x_{k-1}) / dt (Casiez's reference code), which converges as the rate
    rises. ``shape`` (optional) fixes the expected signal shape.
    """

    def __init__(self, params: OneEuroParams = LANDMARKS, shape: tuple[int, ...] | None = None, *,
                 raw_derivative: bool = False):
        if not isinstance(params, OneEuroParams):
            raise TypeError(f"params must be OneEuroParams, got {type(params).__name__}")
        self.params = params
        self.raw_derivative = bool(raw_derivative)
        self.shape = None if shape is None else tuple(int(s) for s in shape)
        if self.shape is not None:
            self._check_broadcast(self.shape)
        self.reset()

    @classmethod
    def per_element(cls, *, min_cutoff, beta, d_cutoff=1.0, shape=None,
                    raw_derivative: bool = False) -> "OneEuroFilter":
        """Filter with per-element parameters (arrays broadcastable to the signal's shape)."""
        return cls(OneEuroParams(min_cutoff, beta, d_cutoff), shape, raw_derivative=raw_derivative)

    def fresh(self) -> "OneEuroFilter":
        """A new filter with the same parameters, shape and options and an empty state."""
        return OneEuroFilter(self.params, self.shape, raw_derivative=self.raw_derivative)

    def reset(self, x=None, t=None) -> None:
        """Re-seed the state.

        ``reset()`` forgets everything: the next call returns its input unchanged.
        ``reset(x, t)`` makes ``x`` the previous output at time ``t`` (derivative 0), e.g. the
        value on screen, so filtering continues from it. ``reset(x)`` without ``t``: the next
        call adopts its own timestamp, returns ``x`` and filtering continues from there.
        """
        self._x = self._dx = self._t = self._xp = None
        if x is None:
            if t is not None:
                raise ValueError("reset: t given without x")
            return
        x64 = self._validate(x)
        self._x, self._dx, self._xp = x64.copy(), np.zeros_like(x64), x64.copy()
        self._t = None if t is None else as_time(t)

    @property
    def value(self) -> np.ndarray | None:
        """Last output (float64 copy), or None before the first sample."""
        return None if self._x is None else self._x.copy()

    @property
    def last_time(self) -> float | None:
        """Timestamp (s) of the last accepted sample, or None."""
        return self._t

    def __call__(self, x, t) -> np.ndarray:
        return self.filter(x, t)

    def filter(self, x, t) -> np.ndarray:
        """Filter sample ``x`` taken at ``t`` seconds; returns the smoothed sample (x's shape)."""
        t = as_time(t)
        x_arr = np.asarray(x)
        x64 = self._validate(x_arr)
        dtype = x_arr.dtype if np.issubdtype(x_arr.dtype, np.floating) else np.float64
        if self._x is None:
            self._x, self._dx, self._xp, self._t = x64.copy(), np.zeros_like(x64), x64.copy(), t
        elif self._t is None:
            self._t = t
        elif t - self._t > 0:
            self._step(x64, t - self._t)
            self._t = t
        return self._x.astype(dtype, copy=True)

    def _step(self, x64: np.ndarray, dt: float) -> None:
        p = self.params
        a_d = smoothing_factor(p.d_cutoff, dt)
        prev = self._xp if self.raw_derivative else self._x
        self._dx = a_d * (x64 - prev) / dt + (1.0 - a_d) * self._dx
        a = smoothing_factor(p.min_cutoff + p.beta * np.abs(self._dx), dt)
        self._x = a * x64 + (1.0 - a) * self._x
        self._xp = x64.copy()

    def _validate(self, x) -> np.ndarray:
        x64 = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x64)):
            raise ValueError("OneEuroFilter: input contains NaN or inf")
        expected = self.shape if self.shape is not None else (None if self._x is None else self._x.shape)
        if expected is not None and x64.shape != expected:
            raise ValueError(f"OneEuroFilter: input shape {x64.shape} != expected {expected}")
        if expected is None:
            self._check_broadcast(x64.shape)
        return x64

    def _check_broadcast(self, shape: tuple[int, ...]) -> None:
        try:
            ok = np.broadcast_shapes(self.params.shape, shape) == tuple(shape)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"OneEuroFilter: parameter shape {self.params.shape} does not "
                             f"broadcast to signal shape {tuple(shape)}")
