"""Cascade EF-GAN (MODELS.md 5), id ``cefgan``: 17 AU intensities drive a cascade of
attention-based expression editors (global + eyes/nose/mouth branches, refiner) on the
target's own 128x128 crop, with a learned AU interpolator for the intermediate targets.

Nothing heavy can be cached (the AU planes enter at the first layer, MODELS.md 5.6): the
target cache is just the aligned crop ``img_src`` and its AUs ``au_src``; the one engine
``cefgan_drive`` runs the interpolator and every stage per frame. Every frame edits the
still, never the previous output.

Warp-guided (model option ``warp_guided``): ``cefgan_drive`` reads the AUs (``au_src`` from the
cache, ``au_tgt``) and, from the mesh warp, ``warped`` (the target crop moved to the driver's
expression, ``[1,3,128,128]`` in [-1,1]) and ``hole`` (``[1,1,128,128]`` in [0,1]): the cascade
edits the warped crop instead of the still (its attention blends "keep the warped pixel" with
generated colour), the hole joins every stage's inputs (``reenact.models.nets.cefgan``). Nothing
else is per target, so there is still no target engine. ``n_stages=1`` is the fast mode here too.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..geometry.align import DEFAULT_TEMPLATE
from .base import (EngineSpec, ModelConfig, ReenactModel, TargetCache, TargetInput, TensorFields, TensorSpec,
                   register_model)
from .signals import AUSignal
from .nets.cefgan import (N_AUS, RES, AUCritic, CascadeEFGAN, CEFDiscriminator, CEFGANDrive, CEFGANWarpDrive,
                          default_boxes)


def _centre(row_u: float, res: int = RES) -> tuple[int, int]:
    """A row in crop units -> (row, col) in crop pixels (pixel centres at integers), horizontally centred."""
    return int(round(row_u * res - 0.5)), res // 2


# Patch centres (row, col) in the 128 crop. The paper centres each box on the mean keypoint
# position over the training set [P]; the project's aligner maps every face onto
# DEFAULT_TEMPLATE, so the mean positions are the template's: eyes = mean of the two eye
# centres, nose = nose tip, mouth = mean of the mouth corners. A model trained on a dataset
# prepared with its own template should pass that template's centres.
EYES = _centre(float(DEFAULT_TEMPLATE[0:2, 1].mean()))    # (43, 64)
NOSE = _centre(float(DEFAULT_TEMPLATE[2, 1]))             # (67, 64)
MOUTH = _centre(float(DEFAULT_TEMPLATE[3:5, 1].mean()))   # (88, 64)


@dataclass
class CEFGANConfig(ModelConfig):
    n_res: int = 6          # residual blocks per branch generator (the refiner has 3)
    n_stages: int = 3       # EF-GANs in the cascade; 1 = the single-stage fast mode
    n_aus: int = N_AUS      # AU intensities (the project's 17, [0,1])
    eyes_center: tuple[int, int] = EYES
    nose_center: tuple[int, int] = NOSE
    mouth_center: tuple[int, int] = MOUTH

    def validate(self) -> None:
        super().validate()
        if self.n_res < 0:
            raise ValueError(f"n_res must be >= 0, got {self.n_res}")
        if self.n_stages < 1:
            raise ValueError(f"n_stages must be >= 1, got {self.n_stages}")
        if self.n_aus < 1:
            raise ValueError(f"n_aus must be >= 1, got {self.n_aus}")
        default_boxes(self.eyes_center, self.nose_center, self.mouth_center)  # raises if a box leaves the crop


@dataclass(frozen=True)
class CEFGANState(TensorFields):
    """Per target: img_src ``[B,3,128,128]`` the target crop in [-1,1]; au_src ``[B,17]`` its own AUs."""

    img_src: torch.Tensor
    au_src: torch.Tensor


@dataclass(frozen=True)
class CEFGANCondition(TensorFields):
    """Per frame: au_tgt ``[B,17]`` the commanded AUs in [0,1]."""

    au_tgt: torch.Tensor


@register_model
class CEFGAN(ReenactModel):
    """Generator side: the cascade with its shared AU interpolator (``cascade``); critics: the image
    discriminator with its AU head (``disc``) and the Wasserstein critic on AU vectors (``au_critic``)."""

    model_id = "cefgan"
    res = RES
    Config = CEFGANConfig
    generator_names = ("cascade",)
    Signal = AUSignal
    State = CEFGANState
    Condition = CEFGANCondition

    def __init__(self, cfg: CEFGANConfig):
        super().__init__(cfg)
        w = cfg.width
        self.cascade = CascadeEFGAN(w, cfg.n_res, cfg.n_stages, cfg.n_aus, tuple(cfg.eyes_center),
                                    tuple(cfg.nose_center), tuple(cfg.mouth_center), warp_guided=cfg.warp_guided)
        self.disc = CEFDiscriminator(w, cfg.n_aus)
        self.au_critic = AUCritic(cfg.n_aus, w)

    # -- runtime ----------------------------------------------------------------------------
    def neutral_condition(self, cache: TargetCache, target: TargetInput) -> CEFGANCondition:
        return CEFGANCondition(cache["au_src"])

    def condition_from_frame(self, frame: TargetInput) -> CEFGANCondition:
        return CEFGANCondition(frame.aus)

    def engines(self) -> list[EngineSpec]:
        n = self.cfg.n_aus
        # With n_stages == 1 the exported graph drops au_src (unused); the module still takes it.
        inputs = (TensorSpec("img_src", (1, 3, RES, RES), source="cache"),
                  TensorSpec("au_src", (1, n), source="cache"),
                  TensorSpec("au_tgt", (1, n), source="condition"))
        # Each stage of the cascade refines the previous stage's output, so float32 rounding differences
        # between ONNX Runtime's and PyTorch's kernels compound: one stage agrees to ~3e-6 (relative L2),
        # three stages of an untrained network to ~5e-4. The 3-stage tolerance is MODELS.md's 1e-3 gate.
        rtol = 1e-4 if self.cfg.n_stages == 1 else 1e-3
        out = (TensorSpec("img", (1, 3, RES, RES)),)
        if self.cfg.warp_guided:  # the warped crop takes the still's place (img_src stays in the cache, unread)
            warp = (TensorSpec("warped", (1, 3, RES, RES), source="warp"), TensorSpec("hole", (1, 1, RES, RES), source="warp"))
            return [EngineSpec("cefgan_drive", "drive", lambda: CEFGANWarpDrive(self.cascade).eval(), inputs[1:] + warp,
                               out, onnx_rtol=rtol)]
        return [EngineSpec("cefgan_drive", "drive", lambda: CEFGANDrive(self.cascade).eval(), inputs, out,
                           onnx_rtol=rtol)]
