"""Landmark-heatmap + label GAN (Li, Qi, Sun, IEEE Access 2021), id ``lmklabel``: MODELS.md section 2.

A 128x128 image-to-image generator guided by the target landmarks (68 Gaussian heatmaps that gate
the image features through the migration blocks' attention masks) and a one-hot expression label
(K = 7 classes, broadcast as +-1 planes before the decoder).

Inference split (2.6): the ``lmklabel_encode`` engine runs once per target photo and caches
``fp0`` (image stem of the crop) and ``gsrc`` (the source-heatmap half of the geometry stem's first,
bias-free conv, before its BN); the ``lmklabel_drive`` engine takes them with the per-frame
``lmk_tgt`` (crop pixels) and ``label`` (+-1).

Warp-guided (model option ``warp_guided``): the drive engine also reads ``warped`` (the target crop
moved by the mesh warp to the driver's expression, ``[1,3,128,128]`` in [-1,1]) and ``hole`` (its
mask of pixels with no source texture, ``[1,1,128,128]`` in [0,1]); the target engine is unchanged
(see ``reenact.models.nets.lmklabel`` for where the warp features enter).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..geometry.expressions import EXPRESSION_CLASSES
from .base import (EngineSpec, ModelConfig, ReenactModel, TargetCache, TargetInput, TensorFields, TensorSpec,
                   register_model)
from .signals import LmkLabelSignal
from .nets.lmklabel import (N_CLASSES, N_LMK, RES, SIGMA, LmkLabelDGeo, LmkLabelDImg, LmkLabelDrive,
                            LmkLabelGenerator, LmkLabelTargetEncoder)

NEUTRAL = EXPRESSION_CLASSES.index("neutral")


def label_planes_vector(label: torch.Tensor, n_classes: int = N_CLASSES) -> torch.Tensor:
    """Class indices ``[B]`` (int, into EXPRESSION_CLASSES) -> ``[B,K]`` one-hot as +-1 (2y - 1)."""
    return torch.nn.functional.one_hot(label.long().reshape(-1), n_classes).float() * 2.0 - 1.0


@dataclass
class LmkLabelConfig(ModelConfig):
    n_blocks: int = 9            # migration blocks [D, PATN default]
    n_classes: int = N_CLASSES   # K = 7: neutral + 6 basic expressions [D]
    sigma: float = SIGMA         # heatmap Gaussian sigma in px at 128^2 [D]

    def validate(self) -> None:
        super().validate()
        if self.n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {self.n_blocks}")
        if self.n_classes != len(EXPRESSION_CLASSES):
            raise ValueError(f"n_classes must be {len(EXPRESSION_CLASSES)} (the labels are indices into "
                             f"{EXPRESSION_CLASSES}), got {self.n_classes}")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")


@dataclass(frozen=True)
class LmkLabelState(TensorFields):
    """Per target: fp0, the image stem's features of the target crop, and gsrc, the source-landmark
    features the blocks read (shapes: ``LmkLabelDrive.input_shapes``)."""

    fp0: torch.Tensor
    gsrc: torch.Tensor


@dataclass(frozen=True)
class LmkLabelCondition(TensorFields):
    """Per frame: lmk_tgt ``[B,68,2]`` commanded points in crop pixels; label ``[B,K]`` +-1 one-hot."""

    lmk_tgt: torch.Tensor
    label: torch.Tensor


@register_model
class LmkLabel(ReenactModel):
    """Generator ``gen`` (both stems, migration blocks, decoder); discriminators ``d_img`` on
    [source ‖ real/fake target] and ``d_geo`` on [real/fake target ‖ H_tgt]."""

    model_id = "lmklabel"
    res = RES
    Config = LmkLabelConfig
    generator_names = ("gen",)
    Signal = LmkLabelSignal
    State = LmkLabelState
    Condition = LmkLabelCondition

    def __init__(self, cfg: LmkLabelConfig):
        super().__init__(cfg)
        self.gen = LmkLabelGenerator(cfg.width, n_blocks=cfg.n_blocks, n_classes=cfg.n_classes, n_lmk=N_LMK,
                                     sigma=cfg.sigma, res=RES, warp_guided=cfg.warp_guided)
        self.d_img = LmkLabelDImg(cfg.width)
        self.d_geo = LmkLabelDGeo(cfg.width, N_LMK)

    # -- runtime ----------------------------------------------------------------------------
    def label_vector(self, label: torch.Tensor) -> torch.Tensor:
        return label_planes_vector(label, self.cfg.n_classes)

    def neutral_condition(self, cache: TargetCache, target: TargetInput) -> LmkLabelCondition:
        """The target's own landmarks and the neutral label."""
        lmk = target.lmk68.float()
        return LmkLabelCondition(lmk, self.label_vector(torch.full((lmk.shape[0],), NEUTRAL, dtype=torch.long,
                                                                   device=lmk.device)))

    def condition_from_frame(self, frame: TargetInput) -> LmkLabelCondition:
        """The frame's own 68 points and its pseudo-label as a +-1 one-hot."""
        return LmkLabelCondition(frame.lmk68.float(), self.label_vector(frame.label))

    def engines(self) -> list[EngineSpec]:
        shapes = LmkLabelDrive.input_shapes(self.cfg.width, self.cfg.n_classes, N_LMK, RES)
        fp0 = TensorSpec("fp0", shapes["fp0"], source="cache")
        gsrc = TensorSpec("gsrc", shapes["gsrc"], source="cache")
        target_in = (TensorSpec("crop", (1, 3, RES, RES), source="cache"),
                     TensorSpec("lmk_src", (1, N_LMK, 2), source="cache"))
        warp = ((TensorSpec("warped", (1, 3, RES, RES), source="warp"), TensorSpec("hole", (1, 1, RES, RES), source="warp"))
                if self.cfg.warp_guided else ())
        drive_in = (fp0, gsrc, TensorSpec("lmk_tgt", shapes["lmk_tgt"]), TensorSpec("label", shapes["label"])) + warp
        return [
            EngineSpec("lmklabel_encode", "target", lambda: LmkLabelTargetEncoder(self.gen).eval(), target_in,
                       (fp0, gsrc)),
            EngineSpec("lmklabel_drive", "drive", lambda: LmkLabelDrive(self.gen).eval(), drive_in,
                       (TensorSpec("img", (1, 3, RES, RES)),)),
        ]
