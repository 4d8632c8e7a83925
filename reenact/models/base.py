"""One interface for the five models (MODELS.md 7).

A ``ReenactModel`` owns every network of one method (generator side and discriminators) and
splits inference the same way for all five:

* ``encode_target(target) -> State``: once per target photo (a frozen dataclass of tensors);
* ``drive(cache, condition) -> image``: per frame, ``[B,3,R,R]`` in [-1, 1] (the PyTorch path);
* ``engines()``: the export contract: which modules become ONNX/TensorRT engines, with input
  and output names, shapes and where each input comes from (the target cache, the condition,
  or the driver's crop for models whose condition is computed from pixels).

Training code lives in ``train/`` (one recipe per model) and never in the runtime.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal

import torch
from torch import nn

from ..utils import dataclass_from_dict
from .signals import DriverSignal

class TensorFields:
    """Base of the models' frozen state and condition dataclasses: named tensors, readable by
    name (``x["z_id"]``, ``"z_id" in x``, ``x.items()``) as the engines' inputs are named."""

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def keys(self):
        return [f.name for f in dataclasses.fields(self)]

    def items(self):
        return self.as_dict().items()

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.keys():
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name: object) -> bool:
        return name in self.keys()

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(dataclasses.fields(self))

    def to(self, device: torch.device | str) -> TensorFields:
        return dataclasses.replace(self, **{k: v.to(device) for k, v in self.as_dict().items()})


@dataclass(frozen=True)
class NoState(TensorFields):
    """A model that keeps nothing per target (the warp model)."""


@dataclass(frozen=True)
class NoCondition(TensorFields):
    """A model without a per-frame condition (the warp model)."""


TargetCache = TensorFields
"""A model's per-target state: its ``State`` dataclass (what the per-frame engine reads of the target)."""
Condition = TensorFields
"""A model's per-frame condition: its ``Condition`` dataclass (the per-frame engine's condition inputs)."""
Source = Literal["target", "cache", "condition", "driver", "warp"]
EngineKind = Literal["target", "driver", "drive"]


@dataclass(frozen=True)
class TensorSpec:
    """One engine input or output: its name, static shape (batch 1), dtype and source.

    Sources of inputs: "target" (a target engine's input, from ``ReenactModel.target_feeds``),
    "cache" (the per-target cache: target-engine outputs plus the target feeds), "condition"
    (the per-frame condition), "driver" (the driver's aligned crop, for driver engines) and
    "warp" (per frame, from the mesh warp: ``warped``, the target crop moved to the driver's
    mesh ``[1,3,R,R]`` in [-1,1], and ``hole``, its mask of pixels with no source texture
    ``[1,1,R,R]`` in [0,1]; see ``reenact.geometry.warp``).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    source: Source = "condition"


@dataclass(frozen=True)
class EngineSpec:
    """An exportable module of a model.

    kind: "target" runs once per target photo (its outputs fill the cache); "driver" runs per
    frame on the driver's crop before the condition is formed (2CET-GAN's encoder); "drive"
    runs per frame and generates the image. ``build()`` returns a module in eval mode whose
    ``forward`` takes the inputs positionally in ``inputs`` order and returns the outputs (a
    tensor, or a tuple in ``outputs`` order).
    """

    name: str
    kind: EngineKind
    build: Callable[[], nn.Module]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    onnx_rtol: float = 1e-4  # ONNX Runtime vs PyTorch in FP32: relative L2 error
    min_psnr_db: float = 35.0

    def gather(self, *pools) -> list[torch.Tensor]:
        """This engine's inputs in ``inputs`` order, each taken from the first of ``pools`` (dicts of
        named tensors, states, conditions) that has it; ``KeyError`` names a missing one."""
        out = []
        for s in self.inputs:
            pool = next((p for p in pools if s.name in p), None)
            if pool is None:
                raise KeyError(f"{self.name}: no value for input {s.name!r}")
            out.append(pool[s.name])
        return out

    def sample_inputs(self, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """Random inputs of the declared shapes (for export tracing and parity checks)."""
        return tuple(torch.rand(s.shape, generator=generator) * 2 - 1 for s in self.inputs)


@dataclass(frozen=True)
class TargetInput:
    """What a model may use of the target photo, already aligned to its crop.

    crop: ``[1,3,R,R]`` in [-1,1]; lmk68: ``[1,68,2]`` crop pixels (pixel centres at integers);
    aus: ``[1,17]`` in [0,1]; blendshapes: ``[1,52]``; label: ``[1]`` int64 index into
    ``EXPRESSION_CLASSES`` (0 = neutral); neutral: ``[1]`` bool, the photo looks neutral.
    """

    crop: torch.Tensor
    lmk68: torch.Tensor
    aus: torch.Tensor
    blendshapes: torch.Tensor
    label: torch.Tensor
    neutral: torch.Tensor


@dataclass
class ModelConfig:
    """Options every model has. Subclasses add their own fields (all with defaults)."""

    width: float = 1.0  # multiplier on every hidden channel / FC width (1.0 = the paper's sizes)
    # warp-guided: the drive engine also reads the target crop moved by the mesh warp and its hole
    # mask, and blends the warped crop with generated colour through a predicted attention mask
    # (reenact.models.nets.warpguided); False = the paper-faithful generator
    warp_guided: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        cfg = dataclass_from_dict(cls, d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if not 0 < self.width <= 4:
            raise ValueError(f"width must be in (0, 4], got {self.width}")


class ReenactModel(nn.Module):
    """Base class of the five models. Subclasses set the class attributes and implement the methods."""

    model_id: ClassVar[str]
    res: ClassVar[int]
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    generator_names: ClassVar[tuple[str, ...]]  # attributes holding generator-side nets (EMA'd, exported)
    Signal: ClassVar[type[DriverSignal]] = DriverSignal  # driver tracking -> warp motion + this model's condition
    State: ClassVar[type[TensorFields]] = NoState  # frozen: what the per-frame engine reads of the target
    Condition: ClassVar[type[TensorFields]] = NoCondition  # frozen: the per-frame engine's condition inputs

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg

    # -- runtime ----------------------------------------------------------------------------
    def encode_target(self, target: TargetInput) -> TargetCache:
        """The per-target cache: the target feeds plus the outputs of the target engines, run in
        PyTorch. Built from ``engines()``, so it is the same computation every backend runs."""
        feeds = self.target_feeds(target)
        cache = dict(feeds)
        for spec in self.engines():
            if spec.kind == "target":
                cache.update(self._run_engine(spec, feeds))
        return self.make_state(cache)

    def reference_input(self, generator: torch.Generator | None = None, jitter: float = 0.0) -> TargetInput:
        """The built-in photo's face at this model's crop size (``reenact.assets.reference_face``),
        its landmarks moved by ``jitter`` crop pixels of noise and its AUs and blendshapes by a
        tenth of that: a real face, for checks that need inputs in their real value ranges."""
        import numpy as np
        import torch.nn.functional as F

        from ..assets import reference_face

        ref = reference_face()
        crop = torch.from_numpy(ref["crop"]).permute(2, 0, 1)[None].float() * (2.0 / 255.0) - 1.0
        s = self.res / ref["crop"].shape[0]
        if self.res != ref["crop"].shape[0]:
            crop = F.interpolate(crop, size=(self.res, self.res), mode="bilinear", align_corners=False, antialias=True)
        lmk = torch.from_numpy((ref["lmk68"] + 0.5) * s - 0.5)[None]
        aus, blend = torch.from_numpy(ref["aus"])[None], torch.from_numpy(ref["blendshapes"])[None]
        if jitter:
            lmk = lmk + jitter * torch.randn(lmk.shape, generator=generator)
            aus = (aus + 0.1 * jitter * torch.randn(aus.shape, generator=generator)).clamp(0, 1)
            blend = (blend + 0.1 * jitter * torch.randn(blend.shape, generator=generator)).clamp(0, 1)
        label = torch.tensor([int(np.asarray(ref["label"]))])
        return TargetInput(crop, lmk.float(), aus.float(), blend.float(), label, torch.tensor([bool(ref["neutral"])]))

    def realistic_inputs(self, spec: EngineSpec, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """Inputs of engine ``spec`` in their real value ranges, in ``spec.inputs`` order: the
        reference face as the target (its cache from the target engines), the condition of the same
        face with its landmarks, AUs and blendshapes moved a little, the warp inputs as a slightly
        shifted crop with a mouth-sized hole, and the driver's grey crop. For parity and precision
        checks (uniform random inputs would put every landmark heatmap in a corner)."""
        with torch.no_grad():
            target = self.reference_input()
            frame = self.reference_input(generator, jitter=1.5 * self.res / 128)
            pools: list = []
            if spec.kind != "target":
                pools += [self.condition_from_frame(frame), self.encode_target(target)]
            pools.append(self.target_feeds(target))
            r = self.res
            hole = torch.zeros(1, 1, r, r)
            hole[..., int(0.70 * r):int(0.78 * r), int(0.42 * r):int(0.58 * r)] = 1.0
            pools.append({"warped": torch.roll(target.crop, shifts=(1, 1), dims=(2, 3)), "hole": hole,
                          "drv_gray": frame.crop.mean(1, keepdim=True)})
        return tuple(x.reshape(s.shape).float() for s, x in zip(spec.inputs, spec.gather(*pools)))

    def make_state(self, tensors: dict[str, torch.Tensor]) -> TensorFields:
        """The model's frozen ``State`` from named tensors (the target feeds and target-engine outputs)."""
        return self.State(**{f.name: tensors[f.name] for f in dataclasses.fields(self.State)})

    def drive(self, cache: TargetCache, cond: Condition) -> torch.Tensor:
        """One frame ``[B,3,R,R]`` in [-1,1]: the drive engine, run in PyTorch (see ``encode_target``)."""
        for spec in self.engines():
            if spec.kind == "drive":
                return self._run_engine(spec, cond, cache)[spec.outputs[0].name]
        raise NotImplementedError(f"{self.model_id} has no drive engine")

    def _run_engine(self, spec: EngineSpec, *pools) -> dict[str, torch.Tensor]:
        args = spec.gather(*pools)
        modes = [(m, m.training) for m in self.modules()]
        try:
            module = spec.build()  # engine wrappers are built in eval mode: restore the caller's modes after
            out = module(*args)
        finally:
            for m, t in modes:
                m.training = t
        out = out if isinstance(out, tuple) else (out,)
        return {s.name: o for s, o in zip(spec.outputs, out)}

    def neutral_condition(self, cache: TargetCache, target: TargetInput) -> Condition:
        """The condition that keeps the target as it is (its own landmarks, code 0, its own AUs...)."""
        raise NotImplementedError

    def condition_from_frame(self, frame: TargetInput) -> Condition:
        """The condition asking for the expression an aligned frame shows (its landmarks, label, AUs,
        or its code from the driver encoder): used for self-reenactment, training samples and tests."""
        raise NotImplementedError

    def engines(self) -> list[EngineSpec]:
        raise NotImplementedError

    def target_feeds(self, target: TargetInput) -> dict[str, torch.Tensor]:
        """Inputs of the target engines, by name; they also join the cache (e.g. the crop itself)."""
        return {"crop": target.crop, "img": target.crop, "img_src": target.crop, "lmk_src": target.lmk68,
                "au_src": target.aus, "neutral": target.neutral.reshape(-1, 1).to(target.crop.dtype)}

    def make_signal(self, target: Any, **options: Any) -> DriverSignal:
        """This model's driving signal for a prepared target (``reenact.runtime.PreparedTarget``);
        options: intensity, pose, gaze, and for image-driven models template and encode."""
        return self.Signal(self, target, **options)

    @property
    def has_generator(self) -> bool:
        """Whether the model renders anything (a drive engine); the ``warp`` model does not."""
        return any(e.kind == "drive" for e in self.engines())

    def warp_inputs(self) -> tuple[str, ...]:
        """Names of the drive engine's per-frame inputs that come from the mesh warp (source "warp")."""
        return tuple(s.name for e in self.engines() if e.kind == "drive" for s in e.inputs if s.source == "warp")

    # -- helpers ----------------------------------------------------------------------------
    def generator_modules(self) -> dict[str, nn.Module]:
        return {n: getattr(self, n) for n in self.generator_names}

    def condition_keys(self) -> tuple[str, ...]:
        return tuple(s.name for e in self.engines() if e.kind == "drive" for s in e.inputs if s.source == "condition")


_REGISTRY: dict[str, type[ReenactModel]] = {}


def register_model(cls: type[ReenactModel]) -> type[ReenactModel]:
    """Class decorator: make a model available by its ``model_id``."""
    mid = cls.model_id
    if mid in _REGISTRY:
        raise ValueError(f"model id {mid!r} registered twice")
    _REGISTRY[mid] = cls
    return cls


def _load_builtin() -> None:
    from . import cefgan, cet2, exprgan, gcgan, lmklabel, warp  # noqa: F401  (they register themselves)


def list_models() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def model_class(model_id: str) -> type[ReenactModel]:
    _load_builtin()
    if model_id not in _REGISTRY:
        raise KeyError(f"unknown model {model_id!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[model_id]


def build_model(model_id: str, **options: Any) -> ReenactModel:
    """Build a model from its id and config options, e.g. ``build_model("gcgan", width=0.25)``."""
    cls = model_class(model_id)
    return cls(cls.Config.from_dict(options))
