"""Typed options of a training run (``reenact train``); saved resolved in every run folder."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class TrainOptions:
    model: str                                   # registered model id
    data: str                                    # prepared dataset folder
    steps: int = 10_000                          # generator steps in all (stages share them)
    seed: int = 0                                # model init, batch sampling and noise
    out: str = "runs"                            # parent of the numbered run folders
    tag: str = ""                                # appended to the run folder's name
    device: str = "auto"                         # "auto" = CUDA when available, else CPU
    amp: bool = True                             # bf16 autocast on CUDA (ignored on CPU)
    limit: int | None = None                     # train on the first N frames only (smoke tests)
    sample_every: int = 500                      # sample grid image every N steps (0 = never)
    ckpt_every: int = 1000                       # checkpoint every N steps (and at the end)
    log_every: int = 50                          # TensorBoard scalars every N steps
    vgg19: str | None = None                     # local torchvision VGG19 state dict for perceptual losses
    model_options: dict[str, Any] = field(default_factory=dict)   # e.g. {"width": 0.5}
    recipe_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"batch": 8, "lr": 1e-4}
    resume: str | None = None                    # run folder (or checkpoint) to continue

    def validate(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        for name in ("sample_every", "ckpt_every", "log_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        # the model's and the recipe's options are typed and range-checked when their configs are
        # built: do it now, before a run folder exists or a dataset is loaded
        from reenact.models.base import model_class

        from .recipe import recipe_class

        mcls = model_class(self.model)  # KeyError names the known models
        if not isinstance(self.model_options, dict):
            raise ValueError("model options must be a JSON object")
        try:
            mcls.Config.from_dict(dict(self.model_options))
        except (TypeError, ValueError) as e:
            raise ValueError(str(e)) from None
        rcls = recipe_class(self.model)
        rcls.Config.from_dict(dict(self.recipe_options))
        from pathlib import Path

        if self.vgg19 is not None and not Path(self.vgg19).is_file():
            raise ValueError(f"--vgg19 {self.vgg19}: file not found")
        if self.resume is not None:
            from . import checkpoint

            p = Path(self.resume)
            if not p.exists():
                raise ValueError(f"--resume {self.resume}: no such run folder or checkpoint")
            ck = checkpoint.latest(p) if p.is_dir() else p
            if ck is not None:  # (none yet: the loop says so)
                found = checkpoint.read_meta(ck).get("model")
                if found != self.model:
                    raise ValueError(f"--resume {self.resume}: {ck.name} is a {found} checkpoint, not {self.model}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


DeviceKind = Literal["cpu", "cuda"]
