"""Condition smoothing policy (MODELS.md 0.5 and x.8): per-key One Euro filters, hold-then-ease
to neutral on tracking loss, crossfade on reacquisition, per-key step caps, display-rate
interpolation, AU jump ramping and label hysteresis.

A Condition is a ``dict[str, np.ndarray]``. All times are real timestamps in seconds.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from .one_euro import OneEuroFilter, OneEuroParams, as_time

Condition = dict[str, np.ndarray]
Interpolate = Callable[[Condition, Condition, float], Condition]


def _copy(cond: Mapping[str, np.ndarray]) -> Condition:
    return {k: np.array(v, copy=True) for k, v in cond.items()}


def _check_keys(a: Mapping, b: Mapping, what_a: str = "a", what_b: str = "b") -> None:
    missing_b = sorted(set(a) - set(b))
    missing_a = sorted(set(b) - set(a))
    if missing_a or missing_b:
        raise ValueError(f"condition keys differ: missing from {what_a}: {missing_a}, "
                         f"missing from {what_b}: {missing_b}")


def _out_dtype(*arrays: np.ndarray):
    dt = np.result_type(*arrays)
    return dt if np.issubdtype(dt, np.floating) else np.float64


def smoothstep(w: float) -> float:
    """3w^2 - 2w^3 on w clipped to [0, 1]: zero slope at both ends (no velocity jump)."""
    w = min(max(float(w), 0.0), 1.0)
    return w * w * (3.0 - 2.0 * w)


def lerp(a: Condition, b: Condition, w: float) -> Condition:
    """Per-key linear interpolation (1 - w) * a + w * b for w in [0, 1].

    Keys must match (ValueError naming the missing keys) and shapes per key must be equal.
    w = 0 returns a and w = 1 returns b exactly. Float dtypes are kept (float32 stays float32).
    """
    w = float(w)
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"lerp: w must be in [0, 1], got {w}")
    _check_keys(a, b)
    out = {}
    for k in a:
        xa, xb = np.asarray(a[k]), np.asarray(b[k])
        if xa.shape != xb.shape:
            raise ValueError(f"lerp: key {k!r} shape {xa.shape} != {xb.shape}")
        mix = (1.0 - w) * xa.astype(np.float64) + w * xb.astype(np.float64)
        out[k] = mix.astype(_out_dtype(xa, xb))
    return out


def _as_filter(p) -> OneEuroFilter:
    """A fresh filter from OneEuroParams, an OneEuroFilter template, a mapping or a 3-tuple."""
    if isinstance(p, OneEuroFilter):
        return p.fresh()
    if isinstance(p, OneEuroParams):
        return OneEuroFilter(p)
    return OneEuroFilter(OneEuroParams(**p) if isinstance(p, Mapping) else OneEuroParams(*p))


class ConditionSmoother:
    """Runtime smoothing policy for one model's Condition stream.

    ``filter_spec`` maps Condition keys to OneEuroParams (or an OneEuroFilter used as a
    template, a (min_cutoff, beta, d_cutoff) tuple or a mapping of those); ``neutral`` is the
    model's neutral Condition and fixes the keys and shapes every condition must have.

    ``update(cond, t)``:

    * ``cond`` given (tracking): each key in ``filter_spec`` goes through its own One Euro
      filter; other keys pass through unfiltered.
    * ``cond is None`` (tracking lost at ``t0``, the first None): the last output is held while
      ``t - t0 < hold_s``, then eased to ``neutral`` as ``interpolate(last, neutral, w)`` with
      ``w = easing((t - t0 - hold_s) / ease_s)`` (default smoothstep: zero velocity at both
      ends), and equals ``neutral`` from ``t - t0 >= hold_s + ease_s`` on.
    * Before any condition was seen, returns ``neutral``.
    * (Re)acquisition, including the very first condition: the filters are re-seeded on the
      incoming condition and the output crossfades from the value on screen to the filtered
      stream, ``interpolate(shown, filtered, easing((t - t_re) / reacquire_s))``. The first
      output therefore equals the value on screen, then converges within ``reacquire_s``.
      (Re-seeding the filters with the on-screen value instead would make the derivative
      estimate (x - xhat)/dt spike and raise the cutoff: a visible jump on the next frame.)
    * ``max_step``: per-key cap (scalar or array broadcastable to the key's shape, signal
      units) on how far each element may move per update; applies in every state.
    * A timestamp not later than the previous one returns the previous output unchanged.
    """

    def __init__(self, filter_spec: Mapping[str, object], neutral: Mapping[str, np.ndarray], *,
                 hold_s: float = 0.2, ease_s: float = 0.5, reacquire_s: float = 0.25,
                 max_step: Mapping[str, object] | None = None, interpolate: Interpolate = lerp,
                 easing: Callable[[float], float] = smoothstep):
        for name, v in (("hold_s", hold_s), ("ease_s", ease_s), ("reacquire_s", reacquire_s)):
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"ConditionSmoother: {name} must be finite and >= 0, got {v}")
        self._neutral = self._validated_neutral(neutral)
        self._spec = {k: _as_filter(p) for k, p in filter_spec.items() if p is not None}  # None: not filtered
        self._max_step = {k: np.asarray(v, dtype=np.float64) for k, v in (max_step or {}).items()}
        for what, keys in (("filter_spec", self._spec), ("max_step", self._max_step)):
            extra = sorted(set(keys) - set(self._neutral))
            if extra:
                raise ValueError(f"ConditionSmoother: {what} keys not in neutral: {extra}")
        for k, m in self._max_step.items():
            shape = self._neutral[k].shape
            try:
                ok = np.all(m >= 0) and np.broadcast_shapes(m.shape, shape) == shape
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"ConditionSmoother: max_step[{k!r}] must be >= 0 and broadcast to {shape}")
        self.hold_s, self.ease_s, self.reacquire_s = float(hold_s), float(ease_s), float(reacquire_s)
        self._interpolate, self._easing = interpolate, easing
        self.reset()

    # ---- public -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all history: filters cleared, output back to neutral, as if just built."""
        self._filters = {k: f.fresh() for k, f in self._spec.items()}
        self._shown: Condition = _copy(self._neutral)
        self._t: float | None = None
        self._tracking = False
        self._lost_at: float | None = None     # time of the first None after tracking
        self._loss_from: Condition | None = None
        self._fade: tuple[Condition, float] | None = None  # (from, t0) after (re)acquisition

    def set_neutral(self, cond: Mapping[str, np.ndarray]) -> None:
        """Replace the neutral condition (same keys and shapes); takes effect from the next update."""
        new = self._validated_neutral(cond)
        self._check_cond(new, "neutral")
        self._neutral = new
        if self._t is None:
            self._shown = _copy(new)

    @property
    def neutral(self) -> Condition:
        return _copy(self._neutral)

    @property
    def tracking(self) -> bool:
        """True while the last update had a condition."""
        return self._tracking

    def update(self, cond: Mapping[str, np.ndarray] | None, t: float) -> Condition:
        """Feed one tracking result (or None when tracking is lost) at ``t`` s; returns the
        Condition to render (a fresh dict; the caller may modify it)."""
        t = as_time(t)
        if self._t is not None and t <= self._t:
            return _copy(self._shown)
        out = self._lost(t) if cond is None else self._tracked(cond, t)
        out = self._limit(out)
        self._shown, self._t = out, t
        return _copy(out)

    # ---- states -------------------------------------------------------------------------
    def _lost(self, t: float) -> Condition:
        if self._tracking:
            self._tracking, self._lost_at, self._loss_from = False, t, self._shown
            self._fade = None
        if self._lost_at is None:
            return _copy(self._neutral)
        w = self._ramp(t - self._lost_at - self.hold_s, self.ease_s)
        return self._mix(self._loss_from, self._neutral, w)

    def _tracked(self, cond: Mapping[str, np.ndarray], t: float) -> Condition:
        self._check_cond(cond, "cond")
        if not self._tracking:
            self._tracking, self._lost_at, self._loss_from = True, None, None
            for f in self._filters.values():
                f.reset()
            self._fade = (self._shown, t)
        out = {k: (self._filters[k](v, t) if k in self._filters else np.array(v, copy=True))
               for k, v in cond.items()}
        if self._fade is not None:
            src, t0 = self._fade
            w = self._ramp(t - t0, self.reacquire_s)
            if w >= 1.0:
                self._fade = None
            out = self._mix(src, out, w)
        return out

    # ---- helpers ------------------------------------------------------------------------
    def _ramp(self, elapsed: float, duration: float) -> float:
        if duration <= 0.0:
            return 1.0 if elapsed >= 0.0 else 0.0
        if elapsed <= 0.0:
            return 0.0
        if elapsed >= duration:
            return 1.0
        return float(self._easing(elapsed / duration))

    def _mix(self, a: Condition, b: Condition, w: float) -> Condition:
        if w <= 0.0:
            return _copy(a)
        if w >= 1.0:
            return _copy(b)
        return self._interpolate(a, b, w)

    def _limit(self, out: Condition) -> Condition:
        out = dict(out)
        for k, m in self._max_step.items():
            prev = self._shown[k].astype(np.float64)
            step = np.clip(np.asarray(out[k], dtype=np.float64) - prev, -m, m)
            out[k] = (prev + step).astype(np.asarray(out[k]).dtype)
        return out

    def _validated_neutral(self, neutral: Mapping[str, np.ndarray]) -> Condition:
        n = _copy(neutral)
        if not n:
            raise ValueError("ConditionSmoother: neutral condition is empty")
        for k, v in n.items():
            if not np.all(np.isfinite(v)):
                raise ValueError(f"ConditionSmoother: neutral[{k!r}] contains NaN or inf")
        return n

    def _check_cond(self, cond: Mapping[str, np.ndarray], what: str) -> None:
        _check_keys(cond, self._neutral, what, "neutral")
        for k, v in cond.items():
            v = np.asarray(v)
            if v.shape != self._neutral[k].shape:
                raise ValueError(f"{what}[{k!r}] shape {v.shape} != neutral shape {self._neutral[k].shape}")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"{what}[{k!r}] contains NaN or inf")


class ConditionInterpolator:
    """Display-rate upsampling between the last two filtered conditions (MODELS.md 0.5).

    ``push(cond, t)`` stores a filtered condition captured at ``t`` s (non-increasing ``t`` is
    ignored; returns False). ``sample(t)`` returns ``interpolate(c0, c1, w)`` with
    ``w = clip((t - L - t0) / (t1 - t0), 0, 1)`` and latency ``L = t1 - t0`` (the last tracking
    interval): at most one tracking frame of added latency. With one condition it returns it.
    """

    def __init__(self, interpolate: Interpolate = lerp):
        self._interpolate = interpolate
        self.reset()

    def reset(self) -> None:
        self._frames: list[tuple[Condition, float]] = []

    @property
    def latency(self) -> float:
        """Current added latency in seconds (0 with fewer than two conditions)."""
        return self._frames[1][1] - self._frames[0][1] if len(self._frames) == 2 else 0.0

    def push(self, cond: Mapping[str, np.ndarray], t: float) -> bool:
        t = as_time(t)
        if self._frames and t <= self._frames[-1][1]:
            return False
        self._frames = self._frames[-1:] + [(_copy(cond), t)]
        return True

    def sample(self, t: float) -> Condition:
        t = as_time(t)
        if not self._frames:
            raise ValueError("ConditionInterpolator.sample: no condition pushed yet")
        if len(self._frames) == 1:
            return _copy(self._frames[0][0])
        (c0, t0), (c1, t1) = self._frames
        w = min(max((t - (t1 - t0) - t0) / (t1 - t0), 0.0), 1.0)
        return _copy(c0) if w <= 0.0 else _copy(c1) if w >= 1.0 else self._interpolate(c0, c1, w)


class RampLimiter:
    """Ramp large jumps of a per-element signal (MODELS.md 5.8, AUs in [0, 1]).

    ``update(x, t)``: while ``|x - y| <= max_jump`` and no ramp is running, the output ``y``
    follows ``x`` exactly. A jump larger than ``max_jump`` starts a ramp for that element at
    speed ``|jump| / ramp_s`` (signal units per s), so a step reaches its target ``ramp_s``
    seconds after the previous sample; the ramp chases the live target and ends when it
    catches it. First call passes through; ``dt <= 0`` returns the previous output.
    """

    def __init__(self, max_jump: float = 0.3, ramp_s: float = 0.15):
        if not (max_jump >= 0 and ramp_s > 0):
            raise ValueError("RampLimiter: need max_jump >= 0 and ramp_s > 0")
        self.max_jump, self.ramp_s = float(max_jump), float(ramp_s)
        self.reset()

    def reset(self) -> None:
        self._y = self._rate = self._t = None

    def update(self, x, t) -> np.ndarray:
        t = as_time(t)
        xa = np.asarray(x)
        x64 = xa.astype(np.float64)
        if not np.all(np.isfinite(x64)):
            raise ValueError("RampLimiter: input contains NaN or inf")
        dtype = xa.dtype if np.issubdtype(xa.dtype, np.floating) else np.float64
        if self._y is None:
            self._y, self._rate, self._t = x64.copy(), np.zeros_like(x64), t
        elif self._y.shape != x64.shape:
            raise ValueError(f"RampLimiter: shape {x64.shape} != {self._y.shape}")
        elif t > self._t:
            self._step(x64, t - self._t)
            self._t = t
        return self._y.astype(dtype)

    def _step(self, x: np.ndarray, dt: float) -> None:
        gap = x - self._y
        jump = np.abs(gap) > self.max_jump
        rate = np.where(jump, np.maximum(self._rate, np.abs(gap) / self.ramp_s), self._rate)
        limit = rate * dt
        caught = (rate == 0) | (np.abs(gap) <= limit)
        self._y = np.where(caught, x, self._y + np.clip(gap, -limit, limit))
        self._rate = np.where(caught, 0.0, rate)


class LabelHysteresis:
    """Debounced argmax over class probabilities (MODELS.md 2.8).

    ``update(probs, t) -> int``: the first call returns argmax. Afterwards the current class is
    replaced by the argmax class c only when ``probs[c] - probs[current] >= margin`` holds on
    every update for at least ``hold_s`` seconds (measured from the first update with that
    lead); any interruption or a different leader restarts the clock. ``dt <= 0`` returns the
    current class unchanged. probs: 1-D float array [n_classes].
    """

    def __init__(self, margin: float = 0.15, hold_s: float = 0.15):
        if not (margin >= 0 and hold_s >= 0):
            raise ValueError("LabelHysteresis: need margin >= 0 and hold_s >= 0")
        self.margin, self.hold_s = float(margin), float(hold_s)
        self.reset()

    def reset(self) -> None:
        self._current: int | None = None
        self._pending: tuple[int, float] | None = None
        self._t: float | None = None
        self._n: int | None = None

    @property
    def current(self) -> int | None:
        return self._current

    def update(self, probs, t) -> int:
        t = as_time(t)
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)):
            raise ValueError("LabelHysteresis: probs must be a non-empty finite 1-D array")
        if self._n is not None and p.size != self._n:
            raise ValueError(f"LabelHysteresis: got {p.size} classes, expected {self._n}")
        self._n = p.size
        if self._current is None:
            self._current, self._t = int(np.argmax(p)), t
            return self._current
        if self._t is not None and t <= self._t:
            return self._current
        self._t = t
        lead = int(np.argmax(p))
        if lead == self._current or p[lead] - p[self._current] < self.margin:
            self._pending = None
        elif self._pending is None or self._pending[0] != lead:
            self._pending = (lead, t)
        if self._pending is not None and t - self._pending[1] >= self.hold_s:
            self._current, self._pending = lead, None
        return self._current
