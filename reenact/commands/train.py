"""``reenact train MODEL --data DATASET``: train one of the five models (also under torchrun)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cli import Command, register
from ..errors import ReenactError


def _kv(items: list[str] | None) -> dict:
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


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..models import list_models

    p.add_argument("model", choices=list_models(), help="model to train")
    p.add_argument("--data", required=True, help="dataset folder made by 'reenact prepare'")
    p.add_argument("--steps", type=int, default=10_000, help="generator steps (default 10000)")
    p.add_argument("--config", type=Path, help="JSON file with 'model' and/or 'recipe' option objects")
    p.add_argument("--width", type=float, help="width multiplier of the networks (default 1.0: the paper's sizes)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe option, e.g. --set batch=8 --set lr=1e-4 (repeatable)")
    p.add_argument("--out", default="runs", help="parent folder of numbered run folders (default runs/)")
    p.add_argument("--tag", default="", help="suffix of the run folder's name")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    p.add_argument("--sample-every", type=int, default=500, help="sample grid every N steps (0: never)")
    p.add_argument("--ckpt-every", type=int, default=1000, help="checkpoint every N steps")
    p.add_argument("--log-every", type=int, default=50, help="TensorBoard scalars every N steps")
    p.add_argument("--limit", type=int, help="train on the first N frames only")
    p.add_argument("--vgg19", help="local torchvision VGG19 state dict for perceptual losses "
                                   "(default: discriminator feature matching)")
    p.add_argument("--resume", help="run folder or checkpoint to continue from")
    p.add_argument("--dry-run", action="store_true", help="print the resolved options and exit")


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


def options_from_args(a: argparse.Namespace):
    from reenact.train.config import TrainOptions

    cfg = _config_file(a.config) if a.config else {}
    model_opts = dict(cfg.get("model", {}))
    if a.width is not None:
        model_opts["width"] = a.width
    recipe_opts = {**cfg.get("recipe", {}), **_kv(a.set)}
    return TrainOptions(model=a.model, data=a.data, steps=a.steps, seed=a.seed, out=a.out, tag=a.tag,
                        device=a.device, amp=not a.no_amp, limit=a.limit, sample_every=a.sample_every,
                        ckpt_every=a.ckpt_every, log_every=a.log_every, vgg19=a.vgg19, model_options=model_opts,
                        recipe_options=recipe_opts, resume=a.resume)


def run(a: argparse.Namespace) -> int:
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
        json.dump(opts.to_dict(), sys.stdout, indent=1)
        print()
        return 0
    from reenact.train.loop import Trainer

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


register(Command("train", "Train one of the five models on a prepared dataset.", add_arguments, run,
                 "examples:\n  reenact prepare clips/ --out data/faces\n"
                 "  reenact train gcgan --data data/faces --steps 20000\n"
                 "  reenact train cefgan --data data/faces --width 0.5 --set batch=8\n"
                 "  torchrun --nproc_per_node=2 -m reenact train gcgan --data data/faces"))
