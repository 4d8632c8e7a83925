"""The mesh warp alone, id ``warp``: no network, no weights, no engines.

The target photo follows the driver's retargeted MediaPipe mesh (expression, head pose, gaze) by
a piecewise-affine warp at full resolution (``reenact.geometry.warp``); where the driver opens a
mouth the photo shows closed, the opening gets a plain dark interior shaded toward the lips. It
keeps the photo's identity and detail exactly, runs in real time on a CPU, and is the baseline
every generator must beat: they paint only what a warp cannot show.
"""
from __future__ import annotations

from .base import EngineSpec, ModelConfig, NoCondition, ReenactModel, TargetCache, TargetInput, register_model
from .signals import DriverSignal


@register_model
class Warp(ReenactModel):
    model_id = "warp"
    res = 256  # the aligned crop that previews and evaluation read (the warp itself is full resolution)
    Config = ModelConfig
    generator_names = ()
    Signal = DriverSignal

    def neutral_condition(self, cache: TargetCache, target: TargetInput) -> NoCondition:
        return NoCondition()

    def condition_from_frame(self, frame: TargetInput) -> NoCondition:
        return NoCondition()

    def engines(self) -> list[EngineSpec]:
        return []
