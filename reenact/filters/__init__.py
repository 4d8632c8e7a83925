"""Temporal filtering of driving signals: One Euro filters and the condition smoothing policy."""
from .one_euro import (BLENDSHAPES, CLASS_PROBS, CODE_C, CODE_D, EYELIDS, LANDMARKS, MESH, POSE, OneEuroFilter,
                       OneEuroParams, smoothing_factor)
from .smoother import (Condition, ConditionInterpolator, ConditionSmoother, LabelHysteresis, RampLimiter,
                       lerp, smoothstep)

__all__ = [
    "BLENDSHAPES", "CLASS_PROBS", "CODE_C", "CODE_D", "EYELIDS", "LANDMARKS", "MESH", "POSE",
    "OneEuroFilter", "OneEuroParams", "smoothing_factor",
    "Condition", "ConditionInterpolator", "ConditionSmoother", "LabelHysteresis", "RampLimiter",
    "lerp", "smoothstep",
]
