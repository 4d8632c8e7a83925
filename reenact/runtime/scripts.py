"""Built-in expression scripts: keyframed timelines that drive any model without a camera.

A script is a list of keyframes ``(time_s, expression)``; an expression is a dict of blendshape
activations above the resting face (ARKit names; a name ending in ``*`` sets its Left and Right
pair) and, optionally, a head turn in degrees (``headYaw``, ``headPitch``, ``headRoll``). Between
keyframes the values ease with a smoothstep. The mesh warp moves the whole face mesh through the
expression basis (blendshapes -> motion of the 478 points, fitted on real faces) and turns the
head; each model turns the blendshapes into its own condition (``DriverSignal.from_blendshapes``):
landmark models through the same basis, AU models through the AU table, label/code models
through the class rules.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ReenactError
from ..filters import smoothstep
from ..tracking import BLENDSHAPE_INDEX

EXPRESSIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "smile": {"mouthSmile*": 0.85, "cheekSquint*": 0.45, "eyeSquint*": 0.2},
    "smile-tilt": {"mouthSmile*": 0.85, "cheekSquint*": 0.45, "eyeSquint*": 0.2, "headRoll": 9.0, "headYaw": -8.0},
    "surprise-up": {"browInnerUp": 0.85, "browOuterUp*": 0.8, "eyeWide*": 0.7, "jawOpen": 0.55, "headPitch": 7.0},
    "sad-down": {"browInnerUp": 0.7, "mouthFrown*": 0.7, "mouthShrugLower": 0.3, "headPitch": -8.0,
                 "headRoll": -5.0},
    "open-turn": {"jawOpen": 0.7, "headYaw": 10.0},
    "laugh": {"mouthSmile*": 0.9, "cheekSquint*": 0.6, "jawOpen": 0.45, "mouthUpperUp*": 0.3},
    "surprise": {"browInnerUp": 0.85, "browOuterUp*": 0.8, "eyeWide*": 0.7, "jawOpen": 0.55},
    "sad": {"browInnerUp": 0.7, "mouthFrown*": 0.7, "mouthShrugLower": 0.3},
    "angry": {"browDown*": 0.8, "eyeSquint*": 0.5, "mouthPress*": 0.6, "noseSneer*": 0.3},
    "disgust": {"noseSneer*": 0.8, "mouthUpperUp*": 0.6, "browDown*": 0.3},
    "fear": {"browInnerUp": 0.8, "eyeWide*": 0.8, "mouthStretch*": 0.6, "jawOpen": 0.2},
    "open": {"jawOpen": 0.7},
    "blink": {"eyeBlink*": 1.0},
    "wink": {"eyeBlinkLeft": 1.0, "cheekSquintLeft": 0.3},
}


HEAD_KEYS = ("headYaw", "headPitch", "headRoll")
"""Head turn keys of an expression (degrees; the ``pose`` order of the driving signals)."""


def expression_vector(expr: dict[str, float]) -> np.ndarray:
    """``{"mouthSmile*": 0.8, "headRoll": 5, ...}`` -> ``[55]``: blendshapes (baseline-subtracted:
    0 = resting) then the head turn (yaw, pitch, roll) in degrees."""
    v = np.zeros(52 + len(HEAD_KEYS), np.float64)
    for name, value in expr.items():
        if name in HEAD_KEYS:
            v[52 + HEAD_KEYS.index(name)] = float(value)
            continue
        names = (name[:-1] + "Left", name[:-1] + "Right") if name.endswith("*") else (name,)
        for n in names:
            if n not in BLENDSHAPE_INDEX:
                raise ReenactError(f"unknown blendshape {n!r} in an expression script")
            v[BLENDSHAPE_INDEX[n]] = float(value)
    return v


def _tour(*names: str, hold: float = 0.8, move: float = 0.6, start: float = 1.0) -> list[tuple[float, str]]:
    """neutral -> each expression -> neutral, with ``move`` s transitions and ``hold`` s holds."""
    keys, t = [(0.0, "neutral"), (start, "neutral")], start
    for n in names:
        keys += [(t + move, n), (t + move + hold, n), (t + 2 * move + hold, "neutral")]
        t += 2 * move + hold
    return keys + [(t + 0.4, "neutral")]


SCRIPTS: dict[str, list[tuple[float, str]]] = {
    # the default: about 6 s through the main expressions with head turns (the first second is neutral)
    "demo": _tour("smile-tilt", "surprise-up", "sad-down", "open-turn"),
    "emotions": _tour("smile", "surprise", "sad", "angry", "disgust", "fear"),
    "talk": [(0.0, "neutral"), (1.0, "neutral")] + [(1.0 + 0.18 * i, "open" if i % 2 else "neutral")
                                                    for i in range(1, 23)] + [(5.5, "neutral")],
    "blink": [(0.0, "neutral"), (1.0, "neutral"), (1.08, "blink"), (1.2, "neutral"), (2.5, "neutral"),
              (2.58, "blink"), (2.7, "neutral"), (3.2, "neutral")],
}


@dataclass
class ExpressionScript:
    """A timeline of blendshape keyframes; ``at(t)`` interpolates it."""

    name: str
    times: np.ndarray
    values: np.ndarray  # [K, 55]: blendshapes, then head (yaw, pitch, roll) degrees

    @classmethod
    def named(cls, name: str) -> ExpressionScript:
        if name not in SCRIPTS:
            raise ReenactError(f"unknown script {name!r}; built-in scripts: {', '.join(SCRIPTS)}")
        keys = SCRIPTS[name]
        for _t, e in keys:
            if e not in EXPRESSIONS:
                raise ReenactError(f"script {name!r} uses unknown expression {e!r}")
        return cls(name, np.array([k[0] for k in keys]), np.stack([expression_vector(EXPRESSIONS[e]) for _, e in keys]))

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    def at(self, t: float) -> np.ndarray:
        """Blendshapes and head turn ``[55]`` at ``t`` s (smoothstep between keyframes; held after the end)."""
        i = int(np.searchsorted(self.times, t, side="right"))
        if i <= 0:
            return self.values[0].copy()
        if i >= len(self.times):
            return self.values[-1].copy()
        t0, t1 = self.times[i - 1], self.times[i]
        w = smoothstep((t - t0) / (t1 - t0)) if t1 > t0 else 1.0
        return (1 - w) * self.values[i - 1] + w * self.values[i]
