"""Loading trained weights into a model for inference (no training code imported).

A training checkpoint is ``step-N.safetensors`` + ``step-N.json`` (see ``train/checkpoint.py``):
the JSON names the model and its config; the weights hold ``model.*`` (live networks) and
``ema.<module>.*`` (the EMA of the generator side, which is what inference uses).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.torch import load_file

from ..errors import ModelFileError
from .base import ReenactModel, build_model


def load_model(path: str | os.PathLike, *, use_ema: bool = True, device: str = "cpu") -> ReenactModel:
    """Build the model a checkpoint describes and load its (EMA) generator weights; eval mode."""
    p = Path(path)
    if p.is_dir():
        cks = sorted(p.glob("checkpoints/step-*.safetensors")) or sorted(p.glob("*.safetensors"))
        if not cks:
            raise ModelFileError(f"no checkpoint (*.safetensors) in {p}")
        p = cks[-1]
    side = p.with_suffix(".json")
    if not p.is_file() or not side.is_file():
        raise ModelFileError(f"model weights not found: need {p.name} and {side.name} in {p.parent}")
    try:
        meta = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"cannot read the weights' JSON sidecar {side}: {e}") from None
    if not isinstance(meta, dict) or "model" not in meta or not isinstance(meta.get("model_config"), dict):
        raise ModelFileError(f"{side} does not describe a reenact model (no 'model'/'model_config')")
    try:
        tensors = load_file(str(p))
    except Exception as e:
        raise ModelFileError(f"cannot read model weights {p}: {e}") from None
    try:
        model = build_model(meta["model"], **meta["model_config"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{side} describes a model that cannot be built ({e})") from None
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    if use_ema:
        for name in model.generator_names:
            prefix = f"ema.{name}."
            state.update({f"{name}.{k[len(prefix):]}": v for k, v in tensors.items() if k.startswith(prefix)})
    missing, unexpected = model.load_state_dict(state, strict=False)
    gen_missing = [k for k in missing if k.split(".")[0] in model.generator_names]
    if gen_missing or unexpected:
        raise ModelFileError(f"{p} does not fit a {meta['model']} model with {meta['model_config']}: "
                             f"missing {gen_missing[:5]}, unexpected {list(unexpected)[:5]}")
    if meta.get("template") is not None:  # the 5-point alignment template the model was trained with
        import numpy as np

        model.align_template = np.asarray(meta["template"], np.float64)
    return model.to(device).eval()
