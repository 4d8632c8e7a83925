"""2CET-GAN (Hu, Aldausari, Mohammadi, 2022), id ``cet2``: MODELS.md section 3.

A grey-face encoder E maps a face to a 32-d expression code (0 = neutral); the generator
G(x, code) (StarGAN v2 blocks, no mapping network) re-renders x with that expression.

Inference split (3.6):

* ``cet2_target`` (kind "target", once per target photo): crop -> ``h`` = G.encode(clamp(G(crop, 0))),
  i.e. the target is neutralised first and its 16x16 feature map is cached (a photo flagged
  neutral is encoded as it is when ``skip_neutral_target``);
* ``cet2_encode`` (kind "driver", per frame): the driver's grey crop ``drv_gray`` -> ``code_raw``
  (the runtime retargets it against the calibration reference and filters it);
* ``cet2_decode`` (kind "drive", per frame): ``h`` from the cache and ``code`` from the condition
  -> image, clamped to [-1, 1] (G has no output tanh).

``condition_from_frame`` gives the raw code E(grey(crop)) (no retargeting); ``neutral_condition``
is code 0.

Warp-guided (model option ``warp_guided``): ``cet2_decode`` also reads ``warped`` (the target crop
moved by the mesh warp to the driver's expression, ``[1,3,128,128]`` in [-1,1]) and ``hole``
(``[1,1,128,128]`` in [0,1]); a warp encoder's features join G's decoder and the output blends the
warped crop with G's colour through a predicted attention (``reenact.models.nets.cet2``).
``cet2_target`` then encodes the target as it is (``h = G.encode(crop)``, reading ``img`` only): the
neutralising pass G(x, 0) would need a warp to the neutral face, and the warp already carries the
geometry. ``cet2_encode`` and the code are unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import (EngineSpec, ModelConfig, ReenactModel, TargetCache, TargetInput, TensorFields, TensorSpec,
                   register_model)
from .signals import Cet2CodeSignal
from .nets.cet2 import (CODE_DIM, RES, Cet2Decode, Cet2Discriminator, Cet2Encode, Cet2Encoder, Cet2Generator,
                        Cet2TargetEncoder, to_gray)


def _he_init(m: nn.Module) -> None:
    """StarGAN v2's ``he_init``: kaiming normal (fan_in, relu) weights and zero biases on convs and linears."""
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)


@dataclass
class Cet2Config(ModelConfig):
    code_dim: int = CODE_DIM   # 32 as in the paper [P] (the authors' code defaults to 64 [C])
    skip_neutral_target: bool = True  # the target engine encodes a photo flagged neutral as it is, no G(x, 0) [D]
    # weight init: "pytorch" = PyTorch's defaults, as the 2CET-GAN code [C]; "he" = StarGAN v2's he_init
    # (kaiming normal, fan_in, relu gain; zero biases) on every conv / linear of G, E and D
    init: str = "pytorch"

    def validate(self) -> None:
        super().validate()
        if self.init not in ("pytorch", "he"):
            raise ValueError(f"init must be 'pytorch' or 'he', got {self.init!r}")
        if self.code_dim < 1:
            raise ValueError(f"code_dim must be >= 1, got {self.code_dim}")


@dataclass(frozen=True)
class Cet2State(TensorFields):
    """Per target: h ``[B,C,16,16]``, G's encoding of the (neutralised) target crop (C = 512 x width)."""

    h: torch.Tensor


@dataclass(frozen=True)
class Cet2Condition(TensorFields):
    """Per frame: code ``[B,code_dim]``, the expression code (0 = neutral; the runtime's is in [-0.5, 0.5])."""

    code: torch.Tensor


@register_model
class Cet2(ReenactModel):
    """Generator ``G`` (split at ``h``), expression encoder ``E`` (grey input); discriminator ``D``
    with one logit per face type (0 neutral, 1 emotional). ``G`` and ``E`` are EMA'd and exported."""

    model_id = "cet2"
    res = RES
    Config = Cet2Config
    generator_names = ("G", "E")
    Signal = Cet2CodeSignal
    State = Cet2State
    Condition = Cet2Condition

    def __init__(self, cfg: Cet2Config):
        super().__init__(cfg)
        self.G = Cet2Generator(cfg.width, cfg.code_dim, warp_guided=cfg.warp_guided)
        self.E = Cet2Encoder(cfg.width, cfg.code_dim)
        self.D = Cet2Discriminator(cfg.width)
        if cfg.init == "he":
            self.apply(_he_init)
            self.G.init_attention()  # he_init zeroes the attention logit's +2 bias
        # scripted expressions: baseline-subtracted blendshapes [52] -> code, fitted on the training data at
        # the end of training (zero = not fitted; scripts then refuse to drive this model)
        self.register_buffer("blend_code", torch.zeros(52, cfg.code_dim))

    @property
    def code_dim(self) -> int:
        return self.cfg.code_dim

    # -- helpers ----------------------------------------------------------------------------
    def encode_code(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB ``[B,3,R,R]`` in [-1,1] -> raw expression code ``[B,code_dim]`` (E on the channel mean)."""
        return self.E(to_gray(rgb))

    def zero_code(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return torch.zeros(n, self.code_dim, dtype=like.dtype, device=like.device)

    # -- runtime ----------------------------------------------------------------------------
    def neutral_condition(self, cache: TargetCache, target: TargetInput) -> Cet2Condition:
        """Code 0: the neutralised target."""
        return Cet2Condition(self.zero_code(cache["h"].shape[0], cache["h"]))

    def condition_from_frame(self, frame: TargetInput) -> Cet2Condition:
        """The frame's raw code E(grey(crop)); retargeting against a calibration reference is the runtime's."""
        return Cet2Condition(self.encode_code(frame.crop))

    def engines(self) -> list[EngineSpec]:
        c = self.G.h_channels
        h = TensorSpec("h", (1, c, RES // 8, RES // 8), source="cache")
        img = TensorSpec("img", (1, 3, RES, RES), source="target")
        if self.cfg.warp_guided:  # the target as it is (see the module docstring)
            target = EngineSpec("cet2_target", "target", lambda: Cet2TargetEncoder(self.G, neutralise=False).eval(),
                                (img,), (h,))
            warp = (TensorSpec("warped", (1, 3, RES, RES), source="warp"),
                    TensorSpec("hole", (1, 1, RES, RES), source="warp"))
        else:
            target = EngineSpec("cet2_target", "target",
                                lambda: Cet2TargetEncoder(self.G, neutralise=True,
                                                          skip_neutral=self.cfg.skip_neutral_target).eval(),
                                (img, TensorSpec("neutral", (1, 1), source="target")), (h,))
            warp = ()
        return [
            target,
            EngineSpec("cet2_encode", "driver", lambda: Cet2Encode(self.E).eval(),
                       (TensorSpec("drv_gray", (1, 1, RES, RES), source="driver"),),
                       (TensorSpec("code_raw", (1, self.code_dim)),)),
            EngineSpec("cet2_decode", "drive", lambda: Cet2Decode(self.G).eval(),
                       (h, TensorSpec("code", (1, self.code_dim), source="condition")) + warp,
                       (TensorSpec("img", (1, 3, RES, RES)),)),
        ]
