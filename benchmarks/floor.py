"""The hardware floor: the lowest generator time the machine allows, from work and traffic.

Work and traffic are counted from the engines themselves (``count``), on ``meta`` tensors so
full-size models cost no memory and no compute:

* FLOPs = 2 x multiply-accumulates of convolutions (plain and transposed), linear layers and
  matrix products (``aten.convolution`` / ``mm`` / ``addmm`` / ``bmm`` / ``baddbmm``); biases,
  normalisation, activations and resampling are not counted (MODELS.md 0.1 counts the same way).
* bytes (per layer) = for each of those layers: its weights + its input activations + its output
  activations, at 4 bytes (FP32) or 2 bytes (FP16) an element: the traffic of a runtime that
  keeps nothing on chip between layers and fuses the rest away.
* bytes (strict) = every weight once + the engine's inputs and outputs: no runtime can move
  less, so ``floor_strict`` is a true lower bound; ``floor`` (per-layer bytes) is the usual one.

The machine's peaks are measured, not taken from a data sheet (``measure_peak``): the matrix
rate from a large ``torch.mm`` (FP32 on the CPU; FP32, TF32, FP16 and BF16 on a GPU) and the
memory bandwidth from a large tensor copy (read + write). Then
``floor = max(FLOPs / peak rate, bytes / bandwidth)`` and a measured time is reported as
``measured / floor`` (1.0 would be perfect).
"""
from __future__ import annotations

import time
from typing import Any

import torch

from reenact.models.nets.common import BYTES_PER, Counts, count  # the one counter

# MODELS.md section 6 ("Comparison"), GFLOPs at width 1.0, batch 1: per frame (driver + drive
# engines) and per target (target engines), as written there.
MODELS_MD_GFLOPS: dict[str, dict[str, float]] = {
    "gcgan": {"per_frame": 0.51, "target": 0.25},
    "lmklabel": {"per_frame": 91.9, "target": 1.5 + 7.0},
    "cet2": {"per_frame": 70.3, "target": 101.0},
    "exprgan": {"per_frame": 3.9, "target": 1.7},
    "cefgan": {"per_frame": 132.6, "target": 0.0},
}

def count_engines(model_id: str, width: float = 1.0, batch: int = 1) -> dict[str, dict[str, Any]]:
    """``{engine: {"kind", **Counts}}`` for every engine of a model, counted on ``meta`` tensors."""
    from reenact.models import build_model

    with torch.device("meta"):
        model = build_model(model_id, width=width).eval()
    out: dict[str, dict[str, Any]] = {}
    for spec in model.engines():
        module = spec.build().eval()
        inputs = tuple(torch.empty((batch, *s.shape[1:]), device="meta") for s in spec.inputs)
        out[spec.name] = {"kind": spec.kind, "counts": count(module, inputs)}
    return out


def model_counts(model_id: str, width: float = 1.0) -> dict[str, Any]:
    """Per-frame (driver + drive engines) and per-target counts, beside MODELS.md's figures."""
    engines = count_engines(model_id, width)
    per_frame = sum((e["counts"] for e in engines.values() if e["kind"] in ("driver", "drive")), Counts())
    target = sum((e["counts"] for e in engines.values() if e["kind"] == "target"), Counts())
    ref = MODELS_MD_GFLOPS.get(model_id, {}) if width == 1.0 else {}
    return {
        "width": width,
        "engines": {n: {"kind": e["kind"], **e["counts"].to_dict()} for n, e in engines.items()},
        "per_frame": per_frame.to_dict(),
        "target": target.to_dict(),
        "models_md_gflops": ref or None,  # only comparable at width 1.0
        "_per_frame_counts": per_frame,
        "_target_counts": target,
    }


# -- the machine's peaks ---------------------------------------------------------------------------
def _best_ms(fn, repeats: int, device: torch.device) -> float:
    from .common import Timer

    t = Timer(str(device))
    fn()  # warm-up: allocation, library initialisation
    t.sync()
    return min(t.time_ms(fn) for _ in range(repeats))


def measure_peak(device: str = "cpu", quick: bool = False) -> dict[str, Any]:
    """Measured matrix rate (GFLOP/s per precision) and copy bandwidth (GB/s) of ``device``.

    Matrix rate: the best of several ``torch.mm`` of two n x n matrices (2 n^3 FLOPs); CPU: FP32,
    n = 2048 (512 with ``quick``); GPU: n = 8192 in FP32 (TF32 off), TF32, FP16 and BF16.
    Bandwidth: the best of several copies of a large tensor, counted as read + write.
    """
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    n = (8192 if cuda else 2048) if not quick else 512
    repeats = 10 if not quick else 3
    dtypes: dict[str, torch.dtype] = {"fp32": torch.float32}
    if cuda:
        dtypes.update({"tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16})
    rates: dict[str, float] = {}
    t0 = time.perf_counter()
    for name, dt in dtypes.items():
        a = torch.randn(n, n, device=dev).to(dt)
        b = torch.randn(n, n, device=dev).to(dt)
        c = torch.empty(n, n, device=dev, dtype=dt)
        prev = torch.backends.cuda.matmul.allow_tf32
        try:
            if cuda:
                torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
            ms = _best_ms(lambda: torch.mm(a, b, out=c), repeats, dev)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = prev
        rates[name] = 2 * n**3 / (ms / 1e3) / 1e9
        a = b = c = None  # free them before the next dtype
    nbytes = (1 << 30 if cuda else 256 << 20) if not quick else 16 << 20
    src = torch.ones(nbytes // 4, device=dev)
    dst = torch.empty_like(src)
    ms = _best_ms(lambda: dst.copy_(src), repeats, dev)
    bw = 2 * nbytes / (ms / 1e3) / 1e9
    src = dst = None
    # the FP32 floor may use TF32 where PyTorch's convolutions do (cuDNN's default) and TensorRT does
    fp32_rate = max(rates["fp32"], rates.get("tf32", 0.0)) if cuda and torch.backends.cudnn.allow_tf32 else rates["fp32"]
    return {
        "device": str(dev),
        "matmul_n": n,
        "matmul_gflops": rates,
        "copy_bytes": nbytes,
        "bandwidth_gbs": bw,
        "rate_for": {"fp32": fp32_rate, "fp16": rates.get("fp16")},
        "threads": torch.get_num_threads() if not cuda else None,
        "seconds": time.perf_counter() - t0,
    }


def floor_ms(counts: Counts, peak: dict[str, Any], precision: str = "fp32", strict: bool = False) -> dict[str, Any] | None:
    """``{"floor_ms", "compute_ms", "memory_ms", "bound"}`` or None where the peak is unknown."""
    rate = (peak.get("rate_for") or {}).get(precision)
    bw = peak.get("bandwidth_gbs")
    if not rate or not bw:
        return None
    compute = counts.flops / (rate * 1e9) * 1e3
    nbytes = counts.bytes_strict(precision) if strict else counts.bytes(precision)
    memory = nbytes / (bw * 1e9) * 1e3
    return {"floor_ms": max(compute, memory), "compute_ms": compute, "memory_ms": memory,
            "bound": "compute" if compute >= memory else "memory"}


__all__ = ["BYTES_PER", "Counts", "MODELS_MD_GFLOPS", "count", "count_engines", "floor_ms", "measure_peak",
           "model_counts"]
