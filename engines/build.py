"""Build a model's TensorRT engines: export ONNX, check parity, choose precision, build, cache.

Precision policy (FP16 by default): the FP32 ONNX graph must match PyTorch in ONNX Runtime
(max |diff| under the engine's tolerance). The FP16 graph is then checked against PyTorch FP32
(PSNR of the outputs, with ONNX Runtime on the CPU as the reference runtime for the graph); if it
falls under the engine's gate (35 dB), the normalisation layers are kept in FP32 ("fp16-norm32"),
and if that still fails, the engine is built in FP32.
"""
from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from reenact.models.base import EngineSpec, ReenactModel

from . import tensorrt as trtx
from .cache import EngineCache, EngineKey
from .export import export_onnx, onnx_parity, run_onnx, weights_hash

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    model: str
    engine: str
    precision: str
    onnx_max_diff: float       # FP32 ONNX Runtime vs PyTorch: relative L2 error
    fp16_psnr_db: float | None  # FP16 graph vs PyTorch FP32 (None: FP32 chosen or not checkable here)
    path: Path
    size_mb: float
    seconds: float
    cached: bool


def psnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """PSNR with the reference's value range as peak (images in [-1,1]: peak 2)."""
    mse = float(np.mean((ref.astype(np.float64) - test.astype(np.float64)) ** 2))
    peak = max(float(ref.max() - ref.min()), 1e-6)
    return math.inf if mse == 0 else 10 * math.log10(peak * peak / mse)


def fp16_graph_psnr(spec: EngineSpec, fp16_path: Path, trials: int = 3, inputs_fn=None) -> float | None:
    """Worst PSNR of the FP16 graph's outputs against PyTorch FP32, or None if ONNX Runtime cannot run it.
    ``inputs_fn(generator)`` draws the inputs (default: uniform random)."""
    module = spec.build().eval()
    g = torch.Generator().manual_seed(7)
    worst = math.inf
    draw = inputs_fn or spec.sample_inputs
    for _ in range(trials):
        inputs = draw(g)
        with torch.no_grad():
            ref = module(*inputs)
        ref = ref if isinstance(ref, tuple) else (ref,)
        try:
            got = run_onnx(fp16_path, {s.name: x.numpy() for s, x in zip(spec.inputs, inputs)})
        except Exception as e:  # ONNX Runtime's CPU provider lacks some float16 kernels
            log.info("cannot run the FP16 graph of %s on this CPU (%s); its parity is checked on the GPU", spec.name, e)
            return None
        worst = min(worst, min(psnr_db(r.numpy(), o) for r, o in zip(ref, got)))
    return worst


def model_config_json(model: ReenactModel) -> str:
    """The model's full config as sorted JSON (part of the engine key)."""
    import json

    cfg = model.cfg.to_dict() if hasattr(model.cfg, "to_dict") else dict(vars(model.cfg))
    return json.dumps(cfg, sort_keys=True, default=str)


def exporter_fingerprint() -> str:
    from .export import OPSET

    return f"torch {torch.__version__}, opset {OPSET}"


def engine_key(model: ReenactModel, spec: EngineSpec, precision: str, weights: str) -> EngineKey:
    f = trtx.require()
    return EngineKey(model.model_id, spec.name, weights, tuple(s.shape for s in spec.inputs), precision, f.name,
                     f.version, trtx.gpu_compute_capability() or "aot", model_config=model_config_json(model),
                     exporter=exporter_fingerprint())


def build_engine(model: ReenactModel, spec: EngineSpec, *, precision: str = "fp16",
                 cache: EngineCache | None = None, work_dir: Path | None = None) -> BuildResult:
    """Build (or fetch from the cache) one engine. ``precision``: "fp16" (with fallbacks) or "fp32"."""
    if precision not in ("fp16", "fp32"):
        raise ValueError(f"precision must be fp16 or fp32, got {precision!r}")
    cache = cache or EngineCache()
    t0 = time.perf_counter()
    weights = weights_hash(spec.build())
    for candidate in (["fp16", "fp16-norm32", "fp32"] if precision == "fp16" else ["fp32"]):
        key = engine_key(model, spec, candidate, weights)
        hit = cache.lookup(key)
        if hit is not None:
            import json
            meta = json.loads(hit.with_suffix(".json").read_text())
            return BuildResult(model.model_id, spec.name, candidate, meta.get("onnx_max_diff", float("nan")),
                               meta.get("fp16_psnr_db"), hit, hit.stat().st_size / 1e6, time.perf_counter() - t0, True)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        fp32 = export_onnx(spec, Path(tmp) / f"{spec.name}.onnx")
        realistic = partial(model.realistic_inputs, spec)  # inputs in their real value ranges
        diff = onnx_parity(spec, fp32, inputs=realistic)
        if diff > spec.onnx_rtol:
            raise RuntimeError(f"{spec.name}: ONNX Runtime differs from PyTorch by a relative error of {diff:.2e} "
                               f"(> {spec.onnx_rtol:.0e}); refusing to build an engine from it")
        chosen, graph, psnr = "fp32", fp32, None
        if precision == "fp16":
            for name in ("fp16", "fp16-norm32"):
                half = export_onnx(spec, Path(tmp) / f"{spec.name}.{name}.onnx", precision=name)
                psnr = fp16_graph_psnr(spec, half, inputs_fn=realistic)
                if psnr is None or psnr >= spec.min_psnr_db:
                    chosen, graph = name, half
                    break
                log.warning("%s: %s graph reaches %.1f dB (< %.0f dB)", spec.name, name, psnr, spec.min_psnr_db)
            else:
                psnr = None
        data = trtx.build_serialized(graph)
    key = engine_key(model, spec, chosen, weights)
    path = cache.store(key, data, {"onnx_max_diff": diff, "fp16_psnr_db": psnr})
    return BuildResult(model.model_id, spec.name, chosen, diff, psnr, path, len(data) / 1e6,
                       time.perf_counter() - t0, False)
