"""``reenact engines build [MODEL...]``: export ONNX, check parity and build TensorRT engines into the cache."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from ..choices import ModelName, Precision
from ..cli import Command, CommandOptions, Range, register

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class EnginesBuildOptions(CommandOptions):
    """``reenact engines build``."""

    models: Annotated[tuple[ModelName, ...], tyro.conf.Positional, tyro.conf.arg(metavar="MODEL")] = ()
    """models to build (default: every model that has weights)"""
    checkpoint: Annotated[tuple[Path, ...], tyro.conf.UseAppendAction] = ()
    """trained weights (checkpoint file or run folder); repeat for several models (default: the weights shipped with the package, where a model has them)"""
    width: Annotated[float | None, Range(0, 4, lo_open=True)] = None
    """without a checkpoint: build untrained networks of this width, in (0, 4] (for testing builds)"""
    precision: Precision = "fp16"
    """engine precision"""
    cache: Path | None = None
    """engine cache folder (default: the user cache)"""


def default_weights(model_id: str) -> Path | None:
    """The weights shipped with the package for ``model_id`` (what run, eval and the demo load)."""
    p = Path(__file__).resolve().parent.parent / "weights" / f"{model_id}.safetensors"
    return p if p.is_file() and p.with_suffix(".json").is_file() else None


def run(a: EnginesBuildOptions) -> int:
    import time

    from tqdm import tqdm

    from reenact.engines.build import build_engine
    from reenact.engines.cache import EngineCache
    from reenact.engines.tensorrt import require

    from ..errors import ReenactError
    from ..models import build_model, list_models
    from ..models.weights import load_model
    from ..utils import check_output

    wanted = list(dict.fromkeys(a.models))  # names are checked by the parser (reenact.choices)
    if a.cache is not None:
        check_output(a.cache, flag="--cache", kind="dir",
                     inputs={f"--checkpoint {ck}": ck for ck in a.checkpoint or []})
    models = []
    for ck in a.checkpoint or []:
        m = load_model(ck)
        if wanted and m.model_id not in wanted:
            raise ReenactError(f"--checkpoint {ck} holds a {m.model_id} model, not {' or '.join(wanted)}; give the "
                               f"checkpoint of the model to build (or name {m.model_id})")
        models.append(m)
    no_network = [mid for mid in list_models() if not build_model(mid).engines()]
    if wanted and all(mid in no_network for mid in wanted) and not models:
        print(f"nothing to build: {', '.join(wanted)} has no network (the mesh warp runs on the CPU as it is)")
        return 0
    wanted = [mid for mid in (wanted or ([] if models else list_models())) if mid not in no_network]
    for mid in wanted:
        if any(m.model_id == mid for m in models):
            continue
        if a.width is not None:
            models.append(build_model(mid, width=a.width).eval())
        elif (shipped := default_weights(mid)) is not None:
            models.append(load_model(shipped))  # the weights run, eval and the demo use by default
        elif a.models:
            raise ReenactError(f"no weights for {mid}: none ship with the package; pass --checkpoint "
                               f"runs/NNNNN-{mid} (or --width W to build untrained networks for testing)")
        else:
            log.warning("skipping %s: no weights ship with the package (pass --checkpoint, or --width W for "
                        "untrained networks)", mid)
    if not models:
        raise ReenactError("no weights for any model: only " + ", ".join(m for m in list_models() if default_weights(m))
                           + " ships weights; pass --checkpoint (or --width W to build untrained networks)")
    flav = require()
    cache = EngineCache(a.cache)
    jobs = [(m, s) for m in models for s in m.engines()]
    rows = []
    t0 = time.perf_counter()
    for m, spec in tqdm(jobs, unit="engine", desc=f"build ({flav.name} {flav.version})", disable=None):
        r = build_engine(m, spec, precision=a.precision, cache=cache)
        rows.append((r.model, r.engine, r.precision, f"{r.onnx_max_diff:.1e}",
                     "-" if r.fp16_psnr_db is None else f"{r.fp16_psnr_db:.1f}", f"{r.size_mb:.1f}",
                     f"{r.seconds:.1f}", "cached" if r.cached else "built"))
    head = ("model", "engine", "precision", "onnx rel err", "fp16 dB", "MB", "s", "")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for row in (head, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    print(f"{len(rows)} engine(s) in {time.perf_counter() - t0:.1f} s -> {cache.root} ({flav.name} {flav.version})")
    return 0


register(Command("engines build", "Export ONNX and build TensorRT engines (cached, keyed by weights, shapes, GPU).",
                 EnginesBuildOptions, run,
                 "examples:\n  reenact engines build gcgan --checkpoint runs/00003-gcgan\n"
                 "  reenact engines build --width 0.25        # untrained networks: checks that every model builds"))
