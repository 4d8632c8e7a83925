"""Checkpoints: safetensors weights (model, EMA, optimizer state) + a JSON sidecar; atomic writes.

No pickles: loading a checkpoint runs no code. ``load`` restores everything ``save`` wrote, so a
resumed run continues exactly where it stopped (the loop draws batches from seeded generators).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from reenact.errors import ModelFileError
from reenact.utils import atomic_path

FORMAT = "reenact-checkpoint"
VERSION = 1


def _optimizer_tensors(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{name}.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim.{name}."
    for key, v in tensors.items():
        if key.startswith(prefix):
            pid, k = key[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[k] = v
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save(path: str | os.PathLike, *, model: nn.Module, ema: dict[str, nn.Module],
         optimizers: dict[str, torch.optim.Optimizer], info: dict[str, Any]) -> Path:
    """Write ``path`` (.safetensors) and ``path.with_suffix('.json')`` atomically."""
    path = Path(path)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for name, mod in ema.items():
        tensors.update({f"ema.{name}.{k}": v.detach().cpu().contiguous() for k, v in mod.state_dict().items()})
    optim_meta = {}
    for name, opt in optimizers.items():
        t, m = _optimizer_tensors(name, opt)
        tensors.update(t)
        optim_meta[name] = m
    meta = {"format": FORMAT, "version": VERSION, **info, "optimizers": optim_meta}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "version": str(VERSION)})
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=1, default=_jsonable))
    return path


def _jsonable(v):
    if isinstance(v, (tuple, set)):
        return list(v)
    if isinstance(v, Path):
        return str(v)
    if torch.is_tensor(v):
        return v.tolist()
    raise TypeError(f"cannot store {type(v).__name__} in a checkpoint's JSON")


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    j = p.with_suffix(".json")
    if not p.is_file() or not j.is_file():
        raise ModelFileError(f"checkpoint not found (need {p.name} and {j.name}): {p}")
    try:
        meta = json.loads(j.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"cannot read the checkpoint's JSON sidecar {j}: {e}") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{j} is not a {FORMAT} file")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ModelFileError(f"{j} is not a {FORMAT} version {VERSION} file (found {meta.get('format')!r} "
                             f"version {meta.get('version')!r})")
    return meta


def load(path: str | os.PathLike, *, model: nn.Module, ema: dict[str, nn.Module] | None = None,
         optimizers: dict[str, torch.optim.Optimizer] | None = None) -> dict[str, Any]:
    """Restore what ``save`` wrote into the given objects; returns the JSON info."""
    meta = read_meta(path)
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for truncated files
        raise ModelFileError(f"cannot read checkpoint {path}: {e}") from None
    def fit(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as e:  # a state-dict report lists every key: keep its first line
            first = str(e).strip().splitlines()[0][:200]
            raise ModelFileError(f"checkpoint {path} ({meta.get('model')} {meta.get('model_config')}) does not fit "
                                 f"this {what} ({first})") from None

    fit(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, "model")
    for name, mod in (ema or {}).items():
        p = f"ema.{name}."
        fit(mod, {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}, f"EMA {name}")
    for name, opt in (optimizers or {}).items():
        try:
            _restore_optimizer(name, opt, tensors, meta["optimizers"][name])
        except (KeyError, ValueError, RuntimeError) as e:
            raise ModelFileError(f"checkpoint {path}: optimizer {name!r} state does not fit this run "
                                 f"({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''})") from None
    return meta


def latest(run_dir: str | os.PathLike) -> Path | None:
    cks = sorted(Path(run_dir, "checkpoints").glob("step-*.safetensors"))
    return cks[-1] if cks else None
