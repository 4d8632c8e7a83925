"""ONNX export of a model's engines from the shared network definitions, with parity checks.

Every ``EngineSpec`` a model declares (``ReenactModel.engines()``) is exported the same way:
eval mode, static batch-1 shapes, opset 17, constant folding, the declared input and output
names. ``check_onnx`` runs the ONNX checker; ``onnx_parity`` compares ONNX Runtime (CPU) with
PyTorch on random inputs of the declared shapes. FP16 graphs are exported from a float16 copy of
the module behind float32 inputs/outputs, optionally with its normalisation layers kept in
float32 ("fp16-norm32"), so the graph itself carries the precision (strongly typed TensorRT).
"""
from __future__ import annotations

import copy
import hashlib
import os
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx
import torch
from torch import nn

from reenact.models.base import EngineSpec
from reenact.utils import atomic_path

InputsFn = Callable[[torch.Generator], tuple]
"""Draws an engine's inputs (in ``spec.inputs`` order) from a generator."""

OPSET = 17


def weights_hash(module: torch.nn.Module) -> str:
    """SHA-256 over the module's parameters and buffers (names, shapes, dtypes and bytes)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class _Cast(nn.Module):
    """Runs ``inner`` in ``dtype`` behind float32 inputs and outputs."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.inner, self.dtype = inner, dtype

    def forward(self, *xs):
        out = self.inner(*(x.to(self.dtype) for x in xs))
        if isinstance(out, tuple):
            return tuple(o.float() for o in out)
        return out.float()


class _KeepFloat32(nn.Module):
    """A normalisation layer computed in float32 inside a float16 network."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner.float()

    def forward(self, x):
        return self.inner(x.float()).to(x.dtype)


def _is_norm(m: nn.Module) -> bool:
    return isinstance(m, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)) or "Norm" in type(m).__name__


def _keep_norms_float32(module: nn.Module) -> None:
    for name, child in list(module.named_children()):
        if _is_norm(child):
            setattr(module, name, _KeepFloat32(child))
        else:
            _keep_norms_float32(child)


def precision_module(spec: EngineSpec, precision: str) -> nn.Module:
    """The engine's module for ``precision``: "fp32", "fp16" or "fp16-norm32" (float32 I/O always)."""
    module = spec.build().eval()
    if precision == "fp32":
        return module
    if precision not in ("fp16", "fp16-norm32"):
        raise ValueError(f"unknown precision {precision!r}")
    module = copy.deepcopy(module)  # the spec's module shares the model's weights: never halve those
    module.half()
    if precision == "fp16-norm32":
        _keep_norms_float32(module)
    return _Cast(module, torch.float16).eval()


def export_onnx(spec: EngineSpec, path: str | os.PathLike, *, precision: str = "fp32", batch: int = 1,
                seed: int = 0) -> Path:
    """Export one engine to ``path`` (atomic). ``batch`` > 1 exports a static batched profile."""
    module = precision_module(spec, precision)
    g = torch.Generator().manual_seed(seed)
    inputs = tuple(torch.rand((batch, *s.shape[1:]), generator=g) * 2 - 1 for s in spec.inputs)
    path = Path(path)
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about constant shapes
        torch.onnx.export(module, inputs, str(tmp), input_names=[s.name for s in spec.inputs],
                          output_names=[s.name for s in spec.outputs], opset_version=OPSET, do_constant_folding=True,
                          dynamo=False)
        check_onnx(tmp)
    return path


def check_onnx(path: str | os.PathLike) -> onnx.ModelProto:
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    return model


def onnx_inputs(path: str | os.PathLike) -> list[str]:
    return [i.name for i in onnx.load(str(path), load_external_data=False).graph.input]


def run_onnx(path: str | os.PathLike, feeds: dict[str, np.ndarray], providers: Sequence[str] = ("CPUExecutionProvider",)):
    import onnxruntime as ort
    ort.set_default_logger_severity(3)  # errors only: no constant-folding chatter

    sess = ort.InferenceSession(str(path), providers=list(providers))
    names = {i.name for i in sess.get_inputs()}  # the exporter drops inputs a graph never reads
    return sess.run(None, {k: v for k, v in feeds.items() if k in names})


def onnx_parity(spec: EngineSpec, path: str | os.PathLike, trials: int = 3, seed: int = 1,
                inputs: InputsFn | None = None) -> float:
    """Relative error of ONNX Runtime against PyTorch (float32, CPU): the largest, over ``trials``
    inputs and the outputs, of ``||ort - torch||_2 / ||torch||_2``. ``inputs(generator)`` draws
    the inputs (``ReenactModel.realistic_inputs``: real value ranges); default: uniform random."""
    return parity_errors(spec, path, trials, seed, inputs)[0]


def parity_errors(spec: EngineSpec, path: str | os.PathLike, trials: int = 3, seed: int = 1,
                  inputs_fn: InputsFn | None = None) -> tuple[float, float]:
    """(relative L2 error, largest absolute difference) of ONNX Runtime against PyTorch."""
    module = spec.build().eval()
    g = torch.Generator().manual_seed(seed)
    rel = worst = 0.0
    draw = inputs_fn or spec.sample_inputs
    for _ in range(trials):
        inputs = draw(g)
        with torch.no_grad():
            ref = module(*inputs)
        ref = ref if isinstance(ref, tuple) else (ref,)
        got = run_onnx(path, {s.name: x.numpy() for s, x in zip(spec.inputs, inputs)})
        for r, o in zip(ref, got):
            r = r.numpy().astype(np.float64)
            d = r - o
            worst = max(worst, float(np.abs(d).max()))
            rel = max(rel, float(np.linalg.norm(d) / max(np.linalg.norm(r), 1e-12)))
    return rel, worst


__all__ = ["OPSET", "check_onnx", "export_onnx", "onnx_inputs", "onnx_parity", "parity_errors", "precision_module", "run_onnx",
           "weights_hash"]
