"""TensorRT flavours behind one small interface.

NVIDIA TensorRT (``import tensorrt``, data-centre and all CUDA GPUs) is used when installed;
otherwise TensorRT for RTX (``import tensorrt_rtx_bindings``, installs from PyPI, builds engines
ahead of time without a GPU, runs them on RTX-class GPUs). Their builder, network, ONNX parser
and runtime APIs are TensorRT's; the differences are isolated here:

* precision: both build *strongly typed* networks from an ONNX graph whose types are already
  chosen (``engines.export.to_fp16``), so the FP16/FP32 decision lives in the graph, not in
  builder flags (TensorRT for RTX has no FP16 flag at all);
* target GPU: TensorRT for RTX compiles for a list of compute capabilities (``CURRENT`` when a
  GPU is present, else its default set of RTX architectures); TensorRT builds for the GPU it
  runs on.
"""
from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from reenact.errors import ReenactError

log = logging.getLogger(__name__)

INSTALL_HINT = ("install TensorRT for RTX with `pip install \".[tensorrt]\"` (RTX-class GPUs; builds engines "
                "without a GPU) or NVIDIA TensorRT with `pip install tensorrt` (all CUDA GPUs)")


@dataclass(frozen=True)
class Flavour:
    name: str            # "tensorrt" or "tensorrt-rtx"
    version: str
    module: ModuleType


@functools.cache
def flavour() -> Flavour | None:
    """The TensorRT flavour installed here (NVIDIA TensorRT first), or None."""
    for name, mod in (("tensorrt", "tensorrt"), ("tensorrt-rtx", "tensorrt_rtx_bindings")):
        try:
            m = importlib.import_module(mod)
        except Exception:  # missing, or present but without its libraries
            continue
        return Flavour(name, str(getattr(m, "__version__", "unknown")), m)
    return None


def require() -> Flavour:
    f = flavour()
    if f is None:
        raise ReenactError(f"no TensorRT is installed: {INSTALL_HINT}")
    return f


def gpu_compute_capability() -> str | None:
    """"8.6"-style capability of the current CUDA GPU, or None without one."""
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            return f"{major}.{minor}"
    except Exception:
        pass
    return None


def build_serialized(onnx_path: str | Path, *, workspace_mb: int = 2048) -> bytes:
    """Parse an ONNX file and build a strongly typed serialized engine (bytes)."""
    f = require()
    trt = f.module
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ReenactError(f"{f.name} could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if f.name == "tensorrt-rtx" and gpu_compute_capability() is not None:
        config.num_compute_capabilities = 1
        config.set_compute_capability(trt.ComputeCapability.CURRENT, 0)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise ReenactError(f"{f.name} {f.version} failed to build an engine from {onnx_path} (see its log above)")
    return bytes(blob)


def deserialize(data: bytes):
    """A ``ICudaEngine`` from bytes (needs a GPU); raises ReenactError if TensorRT refuses it."""
    f = require()
    trt = f.module
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise ReenactError(f"{f.name} {f.version} could not load the engine (built by another version or for "
                           f"another GPU?)")
    return runtime, engine
