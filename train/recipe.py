"""What a model supplies to the one training loop: losses and a plan (StyleGAN3-style phases).

A ``Recipe`` builds a ``TrainingPlan``: named optimizers, stages that each run a list of phases
for a share of the steps, the generator-side modules to keep an EMA of, and per-optimizer
learning-rate multipliers as functions of training progress. A phase's ``loss(step)`` draws its
own batch through ``recipe.rng`` (seeded by the loop) and returns ``(loss, stats)``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from reenact.models.base import ReenactModel
from reenact.utils import dataclass_from_dict

from .data import TrainData
from .features import FeatureLoss

LossFn = Callable[[int], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class Phase:
    name: str                 # shown in logs, e.g. "D" or "G"
    optimizer: str            # key into TrainingPlan.optimizers
    loss: LossFn
    repeats: int = 1          # e.g. n_critic for a critic phase


@dataclass
class Stage:
    name: str
    fraction: float           # share of the total steps
    phases: list[Phase]
    on_start: Callable[[], None] | None = None   # e.g. copy weights into a cascade


@dataclass
class TrainingPlan:
    optimizers: dict[str, torch.optim.Optimizer]
    stages: list[Stage]
    lr_schedules: dict[str, Callable[[int, int], float]] = field(default_factory=dict)  # (step, total) -> x lr
    watch: str = "rec"        # the reconstruction/cycle statistic a person should watch fall

    def stage_bounds(self, total: int) -> list[tuple[Stage, int, int]]:
        """[(stage, first step, end step)] covering ``range(total)``."""
        s = sum(st.fraction for st in self.stages)
        out, start = [], 0
        for k, st in enumerate(self.stages):
            end = total if k == len(self.stages) - 1 else start + int(round(total * st.fraction / s))
            out.append((st, start, end))
            start = end
        return out


@dataclass
class RecipeConfig:
    """Hyper-parameters every recipe has; each recipe subclasses it with its own fields and defaults."""

    batch: int = 16
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 1
    ema_beta: float = 0.999

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Types and ranges of every option, checked when the config is built (``--set batch=abc``
        and ``--set batch=0`` are named here, not deep inside torch). Raises ``ValueError``.

        Ranges follow the option's name: ``batch``, ``n_critic``, ``*_repeats``, ``*_every``,
        ``fit_frames`` >= 1; ``lr*`` > 0; ``betas`` and ``*beta``-like rates in [0, 1); ``ema_beta``, ``*fraction``,
        ``decay_*`` shares, ``lr_decay`` in [0, 1]; weights (``w_*``, ``lambda_*``), ``*_steps``,
        ``weight_decay``, ``margin``, ``*_range``, ``*_ridge``, ``lr_floor`` >= 0.
        """
        import math
        import typing

        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            name, v = f.name, getattr(self, f.name)
            setattr(self, name, _typed(name, v, hints.get(name, Any)))
        for f in dataclasses.fields(self):
            name, v = f.name, getattr(self, f.name)
            values = v if isinstance(v, tuple) else (v,)
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values):
                continue
            if any(isinstance(x, float) and not math.isfinite(x) for x in values):
                raise ValueError(f"recipe option {name} must be finite, got {v!r}")
            lo, hi, lo_open, hi_open = _range_for(name)
            for x in values:
                if x < lo or x > hi or (lo_open and x == lo) or (hi_open and x == hi):
                    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
                    rng = f"{left}{lo:g}, {hi:g}{right}" if math.isfinite(hi) else (f"> {lo:g}" if lo_open else f">= {lo:g}")
                    raise ValueError(f"recipe option {name} must be {rng}, got {v!r}")
        if name_sum := [f.name for f in dataclasses.fields(self) if f.name == "stages"]:
            if sum(getattr(self, name_sum[0])) <= 0:
                raise ValueError(f"recipe option stages must have a positive sum, got {self.stages!r}")  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RecipeConfig:
        if not isinstance(d, dict):
            raise ValueError(f"recipe options must be a JSON object, got {type(d).__name__}")
        return dataclass_from_dict(cls, d)


def _range_for(name: str) -> tuple[float, float, bool, bool]:
    """(low, high, low open, high open) of a numeric recipe option, from its name."""
    inf = float("inf")
    if name in ("batch", "n_critic", "fit_frames") or name.endswith(("_repeats", "_every")):
        return 1, inf, False, False
    if name == "lr" or name.startswith("lr_e") or name == "code_range":
        return 0, inf, True, False
    if name == "betas":
        return 0, 1, False, True
    if name in ("ema_beta", "lr_decay") or name.endswith("fraction") or name.startswith("decay_"):
        return 0, 1, False, False
    return 0, inf, False, False   # weights, step counts, margins, ridges, floors: >= 0


def _typed(name: str, v: Any, hint: Any) -> Any:
    """``v`` as the annotated type (ints are fine where floats are wanted, JSON lists as tuples)."""
    import typing

    def bad(want: str):
        return ValueError(f"recipe option {name} must be {want}, got {v!r}")

    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(v, bool):
            raise bad("true or false")
        return v
    if hint is int:
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                return int(v)
            raise bad("an integer")
        return v
    if hint is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad("a number")
        return float(v)
    if hint is str:
        if not isinstance(v, str):
            raise bad("a string")
        return v
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(v, (tuple, list)):
            raise bad("a list")
        if len(args) == 2 and args[1] is Ellipsis:
            if not v:
                raise bad("a non-empty list")
            return tuple(_typed(name, x, args[0]) for x in v)
        if len(v) != len(args):
            raise bad(f"a list of {len(args)}")
        return tuple(_typed(name, x, a) for x, a in zip(v, args))
    return v


class Recipe:
    """Losses and plan of one model. Subclasses set ``model_id``, ``Config``, ``pairs`` and implement ``plan``."""

    model_id: ClassVar[str]
    Config: ClassVar[type[RecipeConfig]] = RecipeConfig
    needs_pairs: ClassVar[bool] = False
    # a tiny CPU configuration for the test suite: (model options, recipe options, steps in which
    # the watched loss must halve on 8 real frames)
    tiny: ClassVar[tuple[dict, dict, int]] = ({"width": 0.125}, {"batch": 8}, 200)
    # the recipe option that weighs the attention's total variation in ``attention_penalty``
    # (recipes whose paper already has a ``w_tv`` for the image name theirs ``w_tv_att``)
    att_tv_option: ClassVar[str] = "w_tv"

    def __init__(self, model: ReenactModel, cfg: RecipeConfig, data: TrainData, features: FeatureLoss):
        self.model = model
        self.cfg = cfg
        self.data = data
        self.features = features
        self.rng = torch.Generator().manual_seed(0)  # re-seeded by the loop every step
        if self.needs_pairs:
            data.require_pairs(self.model_id)

    def plan(self) -> TrainingPlan:
        raise NotImplementedError

    def samples(self, index: torch.Tensor) -> list[torch.Tensor]:
        """Rows of a sample grid for frames ``index``: each ``[n,3,R,R]`` in [-1,1] (e.g. input, target, output)."""
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------------
    def before_save(self, ema: dict[str, nn.Module]) -> None:
        """Called before every checkpoint with the EMA generator modules: fit runtime statistics that
        live in model buffers (e.g. 2CET-GAN's blendshape-to-code map). Default: nothing."""

    # -- warp-guided training (model option ``warp_guided``; see train/warp_pairs.py) -------------
    @property
    def warp_guided(self) -> bool:
        return bool(getattr(self.model.cfg, "warp_guided", False))

    def warp_pairs(self):
        """The training split's warp pairs (built once; colour-jittered, see ``WarpPairs``)."""
        if not hasattr(self, "_warp_pairs"):
            from .warp_pairs import WarpPairs

            self._warp_pairs = WarpPairs(self.data, self.data.ds, augment=True)
        return self._warp_pairs

    def warp_batch(self, n: int | None = None):
        """``n`` (default: the batch size) random warp pairs drawn through ``self.rng``."""
        pairs = self.warp_pairs()
        return pairs.batch(*pairs.sample(self.cfg.batch if n is None else n, self.rng), self.rng)

    def attention_penalty(self, out: torch.Tensor, att: torch.Tensor, wb) -> tuple[torch.Tensor, dict[str, float]]:
        """The attention regularisers of a warp-guided output (``w_att`` sparsity outside ``wb.free``,
        smoothness weighted by the option ``att_tv_option`` names; recipe options, per element) scaled by ``per_element``, the factor that
        turns a per-element mean into the recipe's own image-loss units, and the stats a person
        watches: the share of generated pixels, and the warp's own L1 to the truth beside the output's."""
        from reenact.models.nets.warpguided import attention_losses

        sparsity, tv = attention_losses(att, wb.free)
        w_tv = getattr(self.cfg, self.att_tv_option)
        loss = self.per_element(out) * (self.cfg.w_att * sparsity + w_tv * tv)  # type: ignore[attr-defined]
        return loss, {"att_generated": sparsity.item(), "att_tv": tv.item(),
                      "warp_rec": (wb.warped - wb.truth).abs().mean().item()}

    def per_element(self, out: torch.Tensor) -> float:
        """What one per-element mean weighs in this recipe's image losses: 1 where the image losses
        are means (the default), the element count of one image where they are per-image sums."""
        return 1.0

    def adam(self, *modules: nn.Module, lr: float | None = None, betas=None, weight_decay: float = 0.0):
        params = [p for m in modules for p in m.parameters()]
        return torch.optim.Adam(params, lr=self.cfg.lr if lr is None else lr,
                                betas=self.cfg.betas if betas is None else betas, weight_decay=weight_decay)


_RECIPES: dict[str, type[Recipe]] = {}


def register_recipe(cls: type[Recipe]) -> type[Recipe]:
    if cls.model_id in _RECIPES:
        raise ValueError(f"recipe for {cls.model_id!r} registered twice")
    _RECIPES[cls.model_id] = cls
    return cls


def recipe_class(model_id: str) -> type[Recipe]:
    from . import recipes  # noqa: F401  (registers the built-in recipes)

    if model_id not in _RECIPES:
        raise KeyError(f"no training recipe for {model_id!r}; available: {', '.join(sorted(_RECIPES))}")
    return _RECIPES[model_id]


# -- loss helpers shared by the recipes ------------------------------------------------------
def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: E[(||grad critic(x~)||_2 - 1)^2] at random interpolates x~ of real and fake."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def r1_penalty(logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1: 0.5 E||grad D(x)||^2 on real images (``real`` must require grad)."""
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return 0.5 * grad.pow(2).flatten(1).sum(1).mean()


def requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)
