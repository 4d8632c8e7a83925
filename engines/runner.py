"""One TensorRT engine runner (TensorRT's demo ``Engine`` pattern, with torch-owned buffers).

Buffers are torch tensors on the GPU, allocated once per engine at its static shapes; execution
is enqueued on torch's current CUDA stream, so it orders correctly with surrounding torch work;
an optional CUDA graph replays the whole engine with one launch. ``__call__`` copies the inputs
into the engine's buffers and returns *clones* of the outputs: a result never aliases a buffer
that the next call overwrites. CUDA errors are checked with cuda-python.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from reenact.errors import ReenactError

from . import tensorrt as trtx

log = logging.getLogger(__name__)

_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "INT32": torch.int32, "INT64": torch.int64,
           "BOOL": torch.bool, "BF16": torch.bfloat16, "INT8": torch.int8, "UINT8": torch.uint8}


def check_cuda(what: str) -> None:
    """Raise ReenactError if CUDA reports an error (cuda-python's runtime bindings)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:  # cuda-python is optional; torch raises on most errors itself
        return
    err = cudart.cudaGetLastError()[0]
    if err != cudart.cudaError_t.cudaSuccess:
        name = cudart.cudaGetErrorString(err)[1]
        raise ReenactError(f"CUDA error during {what}: {name.decode() if isinstance(name, bytes) else name}")


class EngineRunner:
    """Loads a serialized engine and runs it on the current CUDA stream."""

    def __init__(self, engine: bytes | str | Path, *, cuda_graph: bool = False, device: str = "cuda"):
        if not torch.cuda.is_available():
            raise ReenactError("running a TensorRT engine needs an NVIDIA GPU with CUDA; use --backend onnxruntime "
                               "or --backend pytorch here")
        data = Path(engine).read_bytes() if isinstance(engine, (str, Path)) else engine
        self.runtime, self.engine = trtx.deserialize(data)
        self.context = self.engine.create_execution_context()
        trt = trtx.require().module
        self.device = torch.device(device)
        self.inputs: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            dtype = _DTYPES[self.engine.get_tensor_dtype(name).name]
            buf = torch.empty(shape, dtype=dtype, device=self.device)
            self.context.set_tensor_address(name, buf.data_ptr())
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs)[name] = buf
        self.cuda_graph = cuda_graph
        self._graph: torch.cuda.CUDAGraph | None = None

    def _enqueue(self) -> None:
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise ReenactError("TensorRT failed to enqueue the engine")

    def _capture(self) -> None:
        self._enqueue()  # warm up outside the graph (TensorRT allocates lazily on first run)
        torch.cuda.current_stream().synchronize()
        graph = torch.cuda.CUDAGraph()
        stream = torch.cuda.Stream()
        with torch.cuda.stream(stream), torch.cuda.graph(graph, stream=stream):
            self._enqueue()
        self._graph = graph

    def __call__(self, **feeds: torch.Tensor) -> dict[str, torch.Tensor]:
        for name, buf in self.inputs.items():
            if name not in feeds:
                raise ReenactError(f"engine input {name!r} not given (have {sorted(feeds)})")
            buf.copy_(feeds[name].reshape(buf.shape), non_blocking=True)
        if self.cuda_graph:
            if self._graph is None:
                self._capture()
            self._graph.replay()
        else:
            self._enqueue()
        check_cuda("engine execution")
        return {k: v.clone() for k, v in self.outputs.items()}
