"""GC-GAN (MODELS.md 1), id ``gcgan``: a 68-point landmark vector drives a 64x64 U-Net-like generator."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import (EngineSpec, ModelConfig, ReenactModel, TargetCache, TargetInput, TensorFields, TensorSpec,
                   register_model)
from .signals import LandmarkSignal
from .nets.gcgan import N_LMK, RES, Z_I, GCGANDiscriminator, GCGANDrive, GCGANGenerator, GCGANTargetEncoder
from .nets.common import ch


def lmk_to_vector(lmk68: torch.Tensor, res: int = RES) -> torch.Tensor:
    """``[B,68,2]`` crop pixels (centres at integers) -> ``[B,136]`` in [-1,1], interleaved x0,y0,x1,..."""
    return ((lmk68 + 0.5) * (2.0 / res) - 1.0).reshape(lmk68.shape[0], -1)


def vector_to_lmk(vec: torch.Tensor, res: int = RES) -> torch.Tensor:
    return (vec.reshape(vec.shape[0], -1, 2) + 1.0) * (res / 2.0) - 0.5


@dataclass(frozen=True)
class GCGANState(TensorFields):
    """Per target: the identity code and the encoder's skip features of the target crop.
    z_id ``[B,128]``; e1 ``[B,C1,32,32]``, e2 ``[B,C2,16,16]``, e3 ``[B,C3,8,8]`` (C = 64/128/256 x width)."""

    z_id: torch.Tensor
    e1: torch.Tensor
    e2: torch.Tensor
    e3: torch.Tensor


@dataclass(frozen=True)
class GCGANCondition(TensorFields):
    """Per frame: lmk ``[B,136]``, the 68 commanded points in [-1,1] crop coordinates, x0,y0,x1,..."""

    lmk: torch.Tensor


@register_model
class GCGAN(ReenactModel):
    """Generator side: G_enc, G_dec, L_enc, L_dec (``gen``); critic ``disc``."""

    model_id = "gcgan"
    res = RES
    Config = ModelConfig
    generator_names = ("gen",)
    Signal = LandmarkSignal
    State = GCGANState
    Condition = GCGANCondition

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.gen = GCGANGenerator(cfg.width, warp_guided=cfg.warp_guided)
        self.disc = GCGANDiscriminator(cfg.width)

    def neutral_condition(self, cache: TargetCache, target: TargetInput) -> GCGANCondition:
        return GCGANCondition(lmk_to_vector(target.lmk68, self.res))

    def condition_from_frame(self, frame: TargetInput) -> GCGANCondition:
        return GCGANCondition(lmk_to_vector(frame.lmk68, self.res))

    def engines(self) -> list[EngineSpec]:
        w = self.cfg.width
        c1, c2, c3 = ch(64, w), ch(128, w), ch(256, w)
        cache = (TensorSpec("z_id", (1, Z_I), source="cache"), TensorSpec("e1", (1, c1, 32, 32), source="cache"),
                 TensorSpec("e2", (1, c2, 16, 16), source="cache"), TensorSpec("e3", (1, c3, 8, 8), source="cache"))
        crop = TensorSpec("crop", (1, 3, RES, RES), source="target")
        warp = ((TensorSpec("warped", (1, 3, RES, RES), source="warp"), TensorSpec("hole", (1, 1, RES, RES), source="warp"))
                if self.cfg.warp_guided else ())
        return [
            EngineSpec("gcgan_encode", "target", lambda: GCGANTargetEncoder(self.gen).eval(), (crop,), cache),
            EngineSpec("gcgan_drive", "drive", lambda: GCGANDrive(self.gen).eval(),
                       (TensorSpec("lmk", (1, N_LMK)),) + cache + warp, (TensorSpec("img", (1, 3, RES, RES)),)),
        ]
