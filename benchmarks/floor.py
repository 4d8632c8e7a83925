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

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# MODELS.md section 6 ("Comparison"), GFLOPs at width 1.0, batch 1: per frame (driver + drive
# engines) and per target (target engines), as written there.
MODELS_MD_GFLOPS: dict[str, dict[str, float]] = {
    "gcgan": {"per_frame": 0.51, "target": 0.25},
    "lmklabel": {"per_frame": 91.9, "target": 1.5 + 7.0},
    "cet2": {"per_frame": 70.3, "target": 101.0},
    "exprgan": {"per_frame": 3.9, "target": 1.7},
    "cefgan": {"per_frame": 132.6, "target": 0.0},
}

BYTES_PER = {"fp32": 4, "fp16": 2}


@dataclass
class Counts:
    """Work and traffic of one forward pass (element counts; bytes depend on the precision)."""

    flops: int = 0                 # 2 x MACs of conv / linear / matmul layers
    layers: int = 0                # how many such layers ran
    layer_weight_elems: int = 0    # sum over those layers of their weight (and bias) elements
    layer_act_elems: int = 0       # sum over those layers of their input + output activation elements
    param_elems: int = 0           # every parameter and buffer of the module, once
    io_elems: int = 0              # the forward's inputs and outputs

    def bytes(self, precision: str = "fp32") -> int:
        """Per-layer traffic: weights + input/output activations of each counted layer."""
        return BYTES_PER[precision] * (self.layer_weight_elems + self.layer_act_elems)

    def bytes_strict(self, precision: str = "fp32") -> int:
        """Every weight once plus the forward's inputs and outputs."""
        return BYTES_PER[precision] * (self.param_elems + self.io_elems)

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{k: v + getattr(other, k) for k, v in asdict(self).items()})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gflops"] = self.flops / 1e9
        for p in BYTES_PER:
            d[f"mbytes_{p}"] = self.bytes(p) / 1e6
            d[f"mbytes_strict_{p}"] = self.bytes_strict(p) / 1e6
        return d


def _numel(x: Any) -> int:
    return x.numel() if isinstance(x, torch.Tensor) else 0


def _mm_macs(a: torch.Tensor, b: torch.Tensor) -> int:
    return math.prod(a.shape) * b.shape[-1]  # [.., n, k] @ [.., k, m] -> n * k * m (times batch)


class _CountMode(TorchDispatchMode):
    """Counts FLOPs and traffic of the matrix-rate layers as the aten ops go by."""

    def __init__(self, weights: set[int]):
        super().__init__()
        self.weights = weights
        self.c = Counts()

    def _is_weight(self, t: Any) -> bool:
        if not isinstance(t, torch.Tensor):
            return False
        base = t._base if t._base is not None else t  # e.g. ``weight.t()`` inside ``linear``
        return id(t) in self.weights or id(base) in self.weights

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func.overloadpacket
        macs = None
        if packet in (aten.convolution, aten._convolution):
            x, w, transposed = args[0], args[1], bool(args[6])
            # plain: every output element sums Cin/groups x kernel products (w: [Cout, Cin/g, *k]);
            # transposed: every input element scatters into Cout/groups x kernel outputs (w: [Cin, Cout/g, *k])
            macs = (x.numel() if transposed else out.numel()) * math.prod(w.shape[1:])
            tensors = [x, w, args[2]]
        elif packet in (aten.mm, aten.bmm):
            macs = _mm_macs(args[0], args[1])
            tensors = [args[0], args[1]]
        elif packet in (aten.addmm, aten.baddbmm):
            macs = _mm_macs(args[1], args[2])
            tensors = [args[0], args[1], args[2]]
        if macs is not None:
            c = self.c
            c.flops += 2 * macs
            c.layers += 1
            for t in tensors:
                if self._is_weight(t):
                    c.layer_weight_elems += _numel(t)
                else:
                    c.layer_act_elems += _numel(t)
            c.layer_act_elems += _numel(out)
        return out


def count(module: nn.Module, inputs: Sequence[torch.Tensor]) -> Counts:
    """FLOPs and traffic of ``module(*inputs)`` (works on ``meta`` modules and tensors)."""
    tensors = {id(t): t for t in list(module.parameters()) + list(module.buffers())}
    mode = _CountMode(set(tensors))
    with torch.no_grad(), mode:
        out = module(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    c = mode.c
    c.param_elems = sum(t.numel() for t in tensors.values())
    c.io_elems = sum(_numel(x) for x in inputs) + sum(_numel(o) for o in outs)
    return c


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
        del a, b, c
    nbytes = (1 << 30 if cuda else 256 << 20) if not quick else 16 << 20
    src = torch.ones(nbytes // 4, device=dev)
    dst = torch.empty_like(src)
    ms = _best_ms(lambda: dst.copy_(src), repeats, dev)
    bw = 2 * nbytes / (ms / 1e3) / 1e9
    del src, dst
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
