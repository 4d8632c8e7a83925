"""ExprGAN (MODELS.md 4), id ``exprgan``: a 50-d identity code plus a class x intensity code drive a
128x128 decoder.

Condition (``code``, ``[B, K*d]``): :func:`~reenact.models.nets.exprgan.f_ctrl` of the class one-hot and
a per-frame intensity s in [0,1] (|z_y| = s in all d elements): the active block is +s, every other -s.

Deviations from the paper, and the choices of this wrapper:

* K = 7 by default (MODELS.md 4.9 option [D]): the project's pseudo-labels include ``neutral`` (class 0 of
  ``EXPRESSION_CLASSES``), so neutral is a trained class with its own block and the code is 7*5 = 35-d.
  ``n_classes=6`` gives the paper's layout (30-d; neutral frames then map to the paper's c_neu = -1 and
  the recipe trains on labelled frames only).
* Intensity of an expression class k (MODELS.md 4.7 (ii)): s = clip(score_k / p95_k, 0, 1) with score_k
  the frame's rule score (``expression_scores``; raw blendshapes, the frame carries no clip baseline)
  and p95_k the 95th percentile of that score over the training frames labelled k (buffer
  ``score_p95``, filled by the recipe from its training data; 0.5 where a class has no frames).
* Intensity of the neutral block [D]: s = clip(1 - max_k score_k, 0, 1), i.e. how little of any
  expression the rule scores show (1 for a perfectly calm face). A fixed intensity would give every
  neutral frame the same code, so a neutral-only driver (or training set) could not move the output at
  all; this keeps the condition continuous within the neutral class.
* ``neutral_condition``: the neutral block at intensity 1 (others -1) for K = 7; all -1 (the paper's c_neu)
  for K = 6. Independent of the target photo.
* Generator init [D]: He (fan-in, ReLU gain) for every G_enc/G_dec layer that a ReLU follows, biases 0;
  PyTorch's default for the two layers in front of a tanh (G_enc's FC, G_dec's last conv). PyTorch's
  default (variance 1/(3 fan-in)) shrinks the signal ~2.4x per ReLU layer, and G_dec re-injects the
  code planes at full scale before every layer, so at init the identity path reaches the output about
  1e-3 as strongly as the code; measured on 8 real frames, the reconstruction then plateaus near
  0.2 L1 for ~60 steps, with He init it falls steadily (0.25 -> 0.08 in 100 steps).
* The optional ``exprgan_q`` engine (route (i) of 4.7) is not listed.

Warp-guided (model option ``warp_guided``): the ``exprgan_decode`` engine also reads ``warped`` (the
target crop moved by the mesh warp to the driver's expression, ``[1,3,128,128]`` in [-1,1]) and
``hole`` (``[1,1,128,128]`` in [0,1]); the per-target engine still computes z_id only (see
``reenact.models.nets.exprgan`` for where the warp features enter G_dec).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..geometry.expressions import EXPRESSION_CLASSES, expression_scores
from .base import (EngineSpec, ModelConfig, ReenactModel, TargetCache, TargetInput, TensorFields, TensorSpec,
                   register_model)
from .signals import ExprCodeSignal
from .nets.exprgan import (RES, Z_DIM, ExprGANDecode, ExprGANDiscriminator, ExprGANDz, ExprGANGenerator,
                           ExprGANTargetEncoder, f_ctrl)

N_EXPR = len(EXPRESSION_CLASSES) - 1  # the six rule-scored (non-neutral) classes
DEFAULT_P95 = 0.5
"""Score normaliser of a class with no training frames (about the 95th percentile seen on real clips)."""
NEUTRAL_FULL = 1.0
"""Intensity of the neutral block in ``neutral_condition`` (a face with no expression at all)."""


def he_init_generator(gen: ExprGANGenerator) -> None:
    """He init of the ReLU layers of G_enc/G_dec (see the module docstring); tanh-fed layers keep theirs."""
    keep = {id(gen.enc.fc[1]), id(gen.dec.out[0])}
    for mod in gen.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)) and id(mod) not in keep:
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)


@dataclass
class ExprGANConfig(ModelConfig):
    n_classes: int = 7   # K: 7 = neutral + six expressions [D] (MODELS.md 4.9); 6 = the paper's
    d: int = 5           # elements per class block [P]
    q_shared: int = 0    # width of the authors' shared FC before the Q branches (0 = the paper's layout)

    def validate(self) -> None:
        super().validate()
        if self.n_classes not in (6, 7):
            raise ValueError(f"n_classes must be 6 (the paper's) or 7 (with neutral), got {self.n_classes}")
        if not 1 <= self.d <= 64:
            raise ValueError(f"d must be in [1, 64], got {self.d}")
        if self.q_shared < 0:
            raise ValueError(f"q_shared must be >= 0, got {self.q_shared}")


@dataclass(frozen=True)
class ExprGANState(TensorFields):
    """Per target: z_id ``[B,50]``, the identity code of the target crop."""

    z_id: torch.Tensor


@dataclass(frozen=True)
class ExprGANCondition(TensorFields):
    """Per frame: code ``[B,K*d]``, the class x intensity code (``ExprGAN.code``)."""

    code: torch.Tensor


@register_model
class ExprGAN(ReenactModel):
    """Generator side: G_enc + G_dec (``gen``); D_img/Q on one trunk (``disc``); latent critic ``dz``."""

    model_id = "exprgan"
    res = RES
    Config = ExprGANConfig
    generator_names = ("gen",)
    Signal = ExprCodeSignal
    State = ExprGANState
    Condition = ExprGANCondition

    def __init__(self, cfg: ExprGANConfig):
        super().__init__(cfg)
        self.k, self.d = cfg.n_classes, cfg.d
        self.gen = ExprGANGenerator(cfg.width, self.k, self.d, Z_DIM, warp_guided=cfg.warp_guided)
        he_init_generator(self.gen)
        self.disc = ExprGANDiscriminator(cfg.width, self.k, self.d, q_shared=cfg.q_shared)
        self.dz = ExprGANDz(cfg.width, Z_DIM)
        # per-class 95th percentile of the rule score on the training data (MODELS.md 4.7 (ii))
        self.register_buffer("score_p95", torch.full((N_EXPR,), DEFAULT_P95))

    # -- labels and codes -------------------------------------------------------------------
    @property
    def has_neutral(self) -> bool:
        return self.k == len(EXPRESSION_CLASSES)

    def class_onehot(self, label: torch.Tensor) -> torch.Tensor:
        """``[B]`` indices into EXPRESSION_CLASSES -> ``[B,K]`` one-hot (K = 6: neutral -> all zeros)."""
        label = label.long().flatten()
        if self.has_neutral:
            return torch.nn.functional.one_hot(label, self.k).float()
        return torch.nn.functional.one_hot((label - 1).clamp(min=0), self.k).float() * (label > 0).float()[:, None]

    def code(self, label: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
        """f_ctrl with |z_y| = intensity in every element: ``[B]`` labels, ``[B]`` in [0,1] -> ``[B,K*d]``.
        K = 6 and a neutral label: the paper's c_neu (all -1)."""
        y = self.class_onehot(label).to(self.score_p95.device)
        s = intensity.to(y).reshape(-1, 1).clamp(0, 1).expand(-1, self.d)
        c = f_ctrl(y, s, self.d)
        if not self.has_neutral:
            c = torch.where((label.flatten() > 0).to(c.device)[:, None], c, torch.full_like(c, -1.0))
        return c

    def intensity(self, blendshapes: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Per-frame intensity in [0,1] from the rule scores (see the module docstring). ``[B,52]``, ``[B]`` -> ``[B]``."""
        scores = torch.from_numpy(expression_scores(blendshapes.detach().cpu().numpy().reshape(-1, 52)))
        scores = scores.to(self.score_p95)
        label = label.long().flatten().to(scores.device)
        own = scores.gather(1, (label - 1).clamp(min=0)[:, None])[:, 0] / self.score_p95[(label - 1).clamp(min=0)]
        calm = 1.0 - scores.max(1).values
        return torch.where(label > 0, own, calm).clamp(0, 1)

    # -- runtime ----------------------------------------------------------------------------
    def neutral_condition(self, cache: TargetCache, target: TargetInput) -> ExprGANCondition:
        n = cache["z_id"].shape[0]
        label = torch.zeros(n, dtype=torch.long)
        return ExprGANCondition(self.code(label, torch.full((n,), NEUTRAL_FULL)).to(cache["z_id"]))

    def condition_from_frame(self, frame: TargetInput) -> ExprGANCondition:
        return ExprGANCondition(self.code(frame.label, self.intensity(frame.blendshapes, frame.label)).to(frame.crop))

    def engines(self) -> list[EngineSpec]:
        z = TensorSpec("z_id", (1, Z_DIM), source="cache")
        warp = ((TensorSpec("warped", (1, 3, RES, RES), source="warp"), TensorSpec("hole", (1, 1, RES, RES), source="warp"))
                if self.cfg.warp_guided else ())
        return [
            EngineSpec("exprgan_encode", "target", lambda: ExprGANTargetEncoder(self.gen).eval(),
                       (TensorSpec("img", (1, 3, RES, RES), source="cache"),), (z,)),
            EngineSpec("exprgan_decode", "drive", lambda: ExprGANDecode(self.gen).eval(),
                       (z, TensorSpec("code", (1, self.k * self.d))) + warp, (TensorSpec("img", (1, 3, RES, RES)),)),
        ]

    # -- training-data statistics -----------------------------------------------------------
    @torch.no_grad()
    def fit_intensity_scale(self, blendshapes: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                            min_frames: int = 1) -> None:
        """Set ``score_p95`` from training frames: per class, the 95th percentile of its rule score over
        the frames labelled with it (classes with fewer than ``min_frames`` frames keep their value)."""
        b = np.asarray(blendshapes.cpu() if isinstance(blendshapes, torch.Tensor) else blendshapes, np.float32)
        y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
        s = expression_scores(b.reshape(-1, 52))
        for k in range(1, N_EXPR + 1):
            m = y == k
            if m.sum() >= min_frames:
                self.score_p95[k - 1] = float(max(np.percentile(s[m, k - 1], 95), 1e-3))
