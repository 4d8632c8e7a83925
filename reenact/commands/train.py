"""``reenact train MODEL --data DATASET``: train one of the five models (also under torchrun)."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from ..choices import ModelName
from ..cli import Command, CommandOptions, Range, register
from ..errors import ReenactError
from ..train.config import TrainOptions  # dataclasses only: cheap

_D = TrainOptions(model="", data="")  # the defaults live in TrainOptions, once


def _kv(items: tuple[str, ...] | list[str] | None) -> dict:
    out = {}
    for it in items or []:
        if "=" not in it or not it.split("=", 1)[0].strip():
            raise ReenactError(f"--set wants KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        k = k.strip()
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


@dataclass(kw_only=True)
class TrainCommand(CommandOptions):
    """``reenact train`` as typed; ``options_from_args`` turns it into ``TrainOptions``."""

    model: tyro.conf.Positional[ModelName]
    """model to train"""
    data: str
    """dataset folder made by 'reenact prepare'"""
    steps: Annotated[int, Range(1)] = _D.steps
    """generator steps"""
    config: Path | None = None
    """JSON file with 'model' and/or 'recipe' option objects"""
    width: Annotated[float | None, Range(0, 4, lo_open=True)] = None
    """width multiplier of the networks (default 1.0: the paper's sizes)"""
    warp_guided: Annotated[bool, tyro.conf.FlagCreatePairsOff] = False
    """train the warp-guided configuration: it reads the mesh-warped target and paints what the warp
    cannot show (default: the paper-faithful one, unless the config file says otherwise)"""
    set: Annotated[tuple[str, ...], tyro.conf.UseAppendAction, tyro.conf.arg(metavar="KEY=VALUE")] = ()
    """override a recipe option, e.g. --set batch=8 --set lr=1e-4 (repeatable)"""
    out: str = _D.out
    """parent folder of numbered run folders"""
    tag: str = _D.tag
    """suffix of the run folder's name"""
    seed: int = _D.seed
    """seed of the model's initialisation, batch sampling and noise"""
    device: str = _D.device
    """auto, cpu, cuda or cuda:N"""
    amp: bool = _D.amp
    """bf16 autocast on CUDA"""
    sample_every: Annotated[int, Range(0)] = _D.sample_every
    """sample grid every N steps (0: never)"""
    ckpt_every: Annotated[int, Range(0)] = _D.ckpt_every
    """checkpoint every N steps"""
    log_every: Annotated[int, Range(0)] = _D.log_every
    """TensorBoard scalars every N steps"""
    limit: Annotated[int | None, Range(1)] = _D.limit
    """train on the first N frames only"""
    vgg19: str | None = _D.vgg19
    """local torchvision VGG19 state dict for perceptual losses (default: discriminator feature matching)"""
    resume: str | None = _D.resume
    """run folder or checkpoint to continue from"""
    dry_run: Annotated[bool, tyro.conf.FlagCreatePairsOff] = False
    """print the resolved options, model config and recipe config, and exit"""


def _config_file(path: Path) -> dict:
    """--config: a JSON object with optional "model" and "recipe" objects."""
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReenactError(f"--config {path}: file not found") from None
    except IsADirectoryError:
        raise ReenactError(f"--config {path} is a folder; give a JSON file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReenactError(f"--config {path} is not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise ReenactError(f"--config {path} must hold a JSON object with \"model\" and/or \"recipe\" objects")
    unknown = set(cfg) - {"model", "recipe"}
    if unknown:
        raise ReenactError(f"--config {path}: unknown key(s) {sorted(unknown)}; expected \"model\" and/or \"recipe\"")
    for k in ("model", "recipe"):
        if not isinstance(cfg.get(k, {}), dict):
            raise ReenactError(f"--config {path}: \"{k}\" must be a JSON object of options")
    return cfg


def options_from_args(a: TrainCommand) -> TrainOptions:
    cfg = _config_file(a.config) if a.config else {}
    model_opts = dict(cfg.get("model", {}))
    if a.width is not None:
        model_opts["width"] = a.width
    if a.warp_guided:
        model_opts["warp_guided"] = True
    recipe_opts = {**cfg.get("recipe", {}), **_kv(a.set)}
    return TrainOptions(model=a.model, data=a.data, steps=a.steps, seed=a.seed, out=a.out, tag=a.tag,
                        device=a.device, amp=a.amp, limit=a.limit, sample_every=a.sample_every,
                        ckpt_every=a.ckpt_every, log_every=a.log_every, vgg19=a.vgg19, model_options=model_opts,
                        recipe_options=recipe_opts, resume=a.resume)


def resolved_configs(opts: TrainOptions) -> dict:
    """The model's and the recipe's configs with every default filled in (what the run will use)."""
    from ..models.base import model_class
    from ..train.recipe import recipe_class

    model_cfg = model_class(opts.model).Config.from_dict(dict(opts.model_options))
    recipe_cfg = recipe_class(opts.model).Config.from_dict(dict(opts.recipe_options))
    return {"model_config": model_cfg.to_dict(), "recipe_config": recipe_cfg.to_dict()}


def run(a: TrainCommand) -> int:
    opts = options_from_args(a)
    try:
        opts.validate()
    except (ValueError, KeyError) as e:
        raise ReenactError(str(e.args[0] if isinstance(e, KeyError) and e.args else e)) from None
    if not a.dry_run:
        from ..utils import check_output

        check_output(a.out, kind="dir", inputs={"dataset (--data)": a.data, "--resume checkpoint": a.resume,
                                                "--vgg19 file": a.vgg19, "--config file": a.config})
    if a.dry_run:
        json.dump({**opts.to_dict(), **resolved_configs(opts)}, sys.stdout, indent=1, default=str)
        print()
        return 0
    from ..train.loop import Trainer

    try:
        trainer = Trainer(opts)
    except (ValueError, KeyError) as e:
        raise ReenactError(str(e.args[0] if isinstance(e, KeyError) and e.args else e)) from None
    try:
        run_dir = trainer.run()
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    if trainer.dist.main:
        print(f"trained {opts.model} for {trainer.step} steps -> {run_dir}")
    return 0


register(Command("train", "Train one of the five models on a prepared dataset.", TrainCommand, run,
                 "examples:\n  reenact prepare clips/ --out data/faces\n"
                 "  reenact train gcgan --data data/faces --steps 20000\n"
                 "  reenact train cefgan --data data/faces --width 0.5 --set batch=8\n"
                 "  reenact train gcgan --data data/faces --warp-guided --width 0.5\n"
                 "  torchrun --nproc_per_node=2 -m reenact train gcgan --data data/faces"))
