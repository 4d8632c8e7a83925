"""The one training loop for all five models.

Per step: for each phase of the current stage, ``repeats`` x (zero grads, loss, backward,
all-reduce gradients across processes, optimizer step); then the EMA of the generator side.
Around it: numbered run folders with the resolved options, TensorBoard scalars, sample grids,
safetensors checkpoints and exact resume. Under ``torchrun`` every process trains on its own
batches and gradients are averaged after each backward, as DistributedDataParallel does (done
by hand, as StyleGAN3's loop does, because phases update different subsets of the networks).
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from reenact.errors import ReenactError
from reenact.models import build_model
from reenact.models.base import ReenactModel
from reenact.utils import atomic_path

from . import checkpoint
from .config import TrainOptions
from .data import TrainData
from .dataset import load_dataset
from .features import FeatureLoss
from .recipe import Recipe, TrainingPlan, recipe_class

log = logging.getLogger(__name__)


# -- processes -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Dist:
    """Join the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def _average_grads(params: list[nn.Parameter], d: Dist) -> None:
    if d.world == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= d.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def _sync_from_rank0(model: nn.Module, d: Dist, buffers_only: bool = False) -> None:
    if d.world == 1:
        return
    tensors = list(model.buffers()) if buffers_only else list(model.parameters()) + list(model.buffers())
    for t in tensors:
        dist.broadcast(t.data, 0)


# -- helpers ---------------------------------------------------------------------------------
def _step_seed(seed: int, rank: int, step: int) -> int:
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % (2 ** 63 - 1)


def _resolve_device(name: str, d: Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ReenactError("device 'cuda' was asked for but torch sees no CUDA GPU; use --device cpu")
        if name == "cuda" and d.world > 1:
            name = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return torch.device(name)


def new_run_dir(out: str | os.PathLike, model: str, tag: str = "") -> Path:
    """``out/NNNNN-model[-tag]``: the next free number (StyleGAN-style numbered run folders)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    nums = [int(m.group(1)) for p in out.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    name = f"{(max(nums) + 1 if nums else 0):05d}-{model}" + (f"-{tag}" if tag else "")
    path = out / name
    path.mkdir()
    return path


def save_grid(path: Path, rows: list[torch.Tensor], pad: int = 2) -> None:
    """Rows of ``[n,3,R,R]`` images in [-1,1] -> one PNG (rows top to bottom)."""
    from PIL import Image

    imgs = [((r.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().cpu() for r in rows]
    n, r = imgs[0].shape[0], imgs[0].shape[-1]
    canvas = torch.full((3, len(imgs) * (r + pad) + pad, n * (r + pad) + pad), 255, dtype=torch.uint8)
    for i, row in enumerate(imgs):
        for j in range(n):
            y, x = pad + i * (r + pad), pad + j * (r + pad)
            canvas[:, y:y + r, x:x + r] = row[j]
    with atomic_path(path) as tmp:
        Image.fromarray(canvas.permute(1, 2, 0).numpy()).save(tmp, format="PNG")


# -- the trainer -----------------------------------------------------------------------------
class Trainer:
    """Builds model, recipe and plan from ``TrainOptions``; ``run()`` trains; state is inspectable for tests."""

    def __init__(self, opts: TrainOptions, run_dir: str | os.PathLike | None = None):
        opts.validate()
        self.opts = opts
        self.dist = init_distributed(torch.device("cuda" if opts.device.startswith("cuda") else "cpu"))
        self.device = _resolve_device(opts.device, self.dist)
        torch.manual_seed(opts.seed)  # identical initial weights in every process
        self.model: ReenactModel = build_model(opts.model, **opts.model_options).to(self.device)
        self.features = FeatureLoss(opts.vgg19, device=self.device)  # a bad --vgg19 fails before the data loads
        self.ds = load_dataset(opts.data)
        self.data = TrainData(self.ds, self.model.res, "train", self.device, opts.limit)
        rcls = recipe_class(opts.model)
        self.recipe: Recipe = rcls(self.model, rcls.Config.from_dict(opts.recipe_options), self.data, self.features)
        self.plan: TrainingPlan = self.recipe.plan()
        self.ema = {n: copy.deepcopy(m).requires_grad_(False).eval() for n, m in self.model.generator_modules().items()}
        self.base_lr = {n: [g["lr"] for g in o.param_groups] for n, o in self.plan.optimizers.items()}
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.run_dir = Path(run_dir) if run_dir else None
        _sync_from_rank0(self.model, self.dist)
        if opts.resume:
            self._resume(opts.resume)

    # -- state ------------------------------------------------------------------------------
    def _resume(self, where: str) -> None:
        p = Path(where)
        ck = checkpoint.latest(p) if p.is_dir() else p
        if ck is None:
            raise ReenactError(f"no checkpoint to resume from in {p}")
        found = checkpoint.read_meta(ck).get("model")
        if found != self.opts.model:
            raise ReenactError(f"--resume {where}: {ck.name} is a {found} checkpoint, not {self.opts.model}")
        meta = checkpoint.load(ck, model=self.model, ema=self.ema, optimizers=self.plan.optimizers)
        self.step = int(meta["step"])
        if self.run_dir is None and p.is_dir():
            self.run_dir = p
        log.info("resumed %s at step %d", ck, self.step)

    def save_checkpoint(self) -> Path:
        assert self.run_dir is not None
        path = self.run_dir / "checkpoints" / f"step-{self.step:07d}.safetensors"
        info = {"model": self.opts.model, "step": self.step, "model_config": self.model.cfg.to_dict(),
                "recipe_config": self.recipe.cfg.to_dict(), "options": self.opts.to_dict(),
                "features": self.features.kind, "template": self.ds.template.tolist(), "res": self.model.res}
        self.recipe.before_save(self.ema)
        return checkpoint.save(path, model=self.model, ema=self.ema, optimizers=self.plan.optimizers, info=info)

    # -- one step ---------------------------------------------------------------------------
    def _stage_at(self, step: int):
        for st, a, b in self.plan.stage_bounds(self.opts.steps):
            if a <= step < b:
                return st, a
        raise AssertionError(step)

    def _set_lr(self) -> None:
        for name, opt in self.plan.optimizers.items():
            f = self.plan.lr_schedules.get(name, lambda _s, _t: 1.0)(self.step, self.opts.steps)
            for g, base in zip(opt.param_groups, self.base_lr[name]):
                g["lr"] = base * f

    def train_step(self) -> dict[str, float]:
        stage, start = self._stage_at(self.step)
        if self.step == start and stage.on_start is not None:
            stage.on_start()
        seed = _step_seed(self.opts.seed, self.dist.rank, self.step)
        torch.manual_seed(seed)
        self.recipe.rng.manual_seed(seed)
        self._set_lr()
        self.model.train()
        stats: dict[str, float] = {}
        amp = self.opts.amp and self.device.type == "cuda"
        for phase in stage.phases:
            opt = self.plan.optimizers[phase.optimizer]
            params = [p for g in opt.param_groups for p in g["params"]]
            for _ in range(phase.repeats):
                self.model.zero_grad(set_to_none=True)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
                    loss, st = phase.loss(self.step)
                if not torch.isfinite(loss):
                    raise ReenactError(f"{phase.name} loss became {loss.item()} at step {self.step}: training "
                                       f"diverged (lower the learning rate or check the data)")
                loss.backward()
                _average_grads(params, self.dist)
                opt.step()
                stats.update({f"{phase.name}/{k}": float(v) for k, v in st.items()})
                stats[f"{phase.name}/loss"] = float(loss.detach())
        self._update_ema()
        _sync_from_rank0(self.model, self.dist, buffers_only=True)
        self.step += 1
        stats["stage"] = float([s.name for s in self.plan.stages].index(stage.name))
        self.history.append(stats)
        return stats

    @torch.no_grad()
    def _update_ema(self) -> None:
        beta = self.recipe.cfg.ema_beta
        for name, live in self.model.generator_modules().items():
            ema = self.ema[name]
            for pe, pl in zip(ema.parameters(), live.parameters()):
                pe.lerp_(pl.detach(), 1.0 - beta)
            for be, bl in zip(ema.buffers(), live.buffers()):
                be.copy_(bl)

    # -- the run ----------------------------------------------------------------------------
    def sample_grid(self, path: Path, n: int = 8) -> None:
        idx = torch.arange(min(n, len(self.data)))
        live = self.model.generator_modules()
        # sample with the EMA weights: swap them in, then back
        backup = {k: copy.deepcopy(m.state_dict()) for k, m in live.items()}
        for k, m in live.items():
            m.load_state_dict(self.ema[k].state_dict())
        self.model.eval()
        with torch.no_grad():
            rows = self.recipe.samples(idx)
        for k, m in live.items():
            m.load_state_dict(backup[k])
        save_grid(path, rows)

    def run(self, progress: bool = True) -> Path | None:

        d = self.dist
        created = False
        if d.main and self.run_dir is None:
            self.run_dir = new_run_dir(self.opts.out, self.opts.model, self.opts.tag)
            created = True
        try:
            return self._run(progress)
        except BaseException:
            # a run that stops (error, Ctrl-C, SIGTERM) before its first checkpoint leaves nothing
            # worth keeping: remove the folder it made; later on, its checkpoints are kept (each
            # written atomically) and the run can be resumed from the last one
            if created and self.run_dir is not None and checkpoint.latest(self.run_dir) is None:
                import shutil

                shutil.rmtree(self.run_dir, ignore_errors=True)
                log.info("removed %s (stopped before its first checkpoint)", self.run_dir)
            raise

    def _run(self, progress: bool) -> Path | None:
        from tqdm import tqdm

        d = self.dist
        writer = None
        if d.main:
            resolved = {"options": self.opts.to_dict(), "model_config": self.model.cfg.to_dict(),
                        "recipe_config": self.recipe.cfg.to_dict(), "features": self.features.kind,
                        "vgg19": self.features.source, "world_size": d.world, "device": str(self.device),
                        "dataset": str(self.ds.path), "train_frames": len(self.data)}
            with atomic_path(self.run_dir / "options.json") as tmp:
                tmp.write_text(json.dumps(resolved, indent=1, default=str))
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        bar = tqdm(total=self.opts.steps, initial=self.step, unit="step", desc=f"train {self.opts.model}",
                   disable=None if (progress and d.main) else True)  # None: only on a terminal
        t0, start = time.perf_counter(), self.step
        try:
            while self.step < self.opts.steps:
                stats = self.train_step()
                bar.update(1)
                s = self.step
                if writer is not None and (s % max(1, self.opts.log_every) == 0 or s == self.opts.steps):
                    for k, v in stats.items():
                        writer.add_scalar(k, v, s)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in stats.items() if k.endswith(self.plan.watch)})
                if d.main and self.opts.sample_every and (s % self.opts.sample_every == 0 or s == self.opts.steps):
                    self.sample_grid(self.run_dir / "samples" / f"step-{s:07d}.png")
                if d.main and ((self.opts.ckpt_every and s % self.opts.ckpt_every == 0) or s == self.opts.steps):
                    self.save_checkpoint()
                    if bar.disable and progress:  # no terminal (a log file): one progress line per checkpoint
                        rate = (s - start) / max(1e-9, time.perf_counter() - t0)
                        watch = {k: round(v, 4) for k, v in stats.items() if k.endswith(self.plan.watch)}
                        log.info("step %d/%d  %.2f steps/s  about %.0f min left  %s", s, self.opts.steps, rate,
                                 (self.opts.steps - s) / max(rate, 1e-9) / 60, watch)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        if d.main:
            log.info("trained %s for %d steps in %.1f s -> %s", self.opts.model, self.step,
                     time.perf_counter() - t0, self.run_dir)
        return self.run_dir


def watched(history: list[dict[str, float]], key: str) -> np.ndarray:
    """The values of statistic ``key`` (any phase) over a run's history."""
    vals = [v for h in history for k, v in h.items() if k.endswith("/" + key)]
    return np.asarray(vals, np.float64)


def mean_window(x: np.ndarray, n: int) -> float:
    return float(np.mean(x[:n])) if len(x) else math.nan
