"""One backend interface for the runtime, three implementations.

* ``pytorch``: the model's own modules (CPU or CUDA), optionally ``torch.compile``-d;
* ``onnxruntime``: the exported ONNX graphs (CPU; CUDA provider when onnxruntime-gpu is present);
* ``tensorrt``: engines from the engine cache (NVIDIA GPU; TensorRT or TensorRT for RTX).

All three run a model the same way: target engines once (``encode_target``), then per frame
the driver engines (if any) and the drive engine. ``select_backend("auto")`` picks the fastest
one available here and says which and why.
"""
from __future__ import annotations

import logging
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import torch

from .errors import ReenactError
from .models.base import Condition, EngineSpec, ReenactModel, TargetCache, TargetInput

log = logging.getLogger(__name__)


class Backend(ABC):
    """Runs one model's engines. Tensors in and out are float32 torch tensors on ``self.device``."""

    name: ClassVar[str]

    def __init__(self, model: ReenactModel):
        self.model = model.eval()
        self.specs: dict[str, EngineSpec] = {e.name: e for e in model.engines()}
        self.device = torch.device("cpu")

    @abstractmethod
    def run(self, engine: str, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run engine ``engine`` on named inputs; returns its named outputs."""

    def _feed(self, spec: EngineSpec, *pools) -> dict[str, torch.Tensor]:
        try:
            values = spec.gather(*pools)
        except KeyError as e:
            raise ReenactError(e.args[0]) from None
        return {s.name: v.to(self.device, torch.float32) for s, v in zip(spec.inputs, values)}

    def encode_target(self, target: TargetInput) -> TargetCache:
        feeds = self.model.target_feeds(target)
        cache = dict(feeds)
        for spec in self.specs.values():
            if spec.kind == "target":
                cache.update(self.run(spec.name, self._feed(spec, feeds)))
        return self.model.make_state(cache)

    def driver(self, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run the driver engines (e.g. 2CET-GAN's encoder) on the driver's inputs."""
        out: dict[str, torch.Tensor] = {}
        for spec in self.specs.values():
            if spec.kind == "driver":
                out.update(self.run(spec.name, self._feed(spec, feeds)))
        return out

    def drive(self, cache: TargetCache, cond: Condition) -> torch.Tensor:
        """One frame: ``[1,3,R,R]`` in [-1,1]."""
        for spec in self.specs.values():
            if spec.kind == "drive":
                outs = self.run(spec.name, self._feed(spec, cond, cache))
                return outs[spec.outputs[0].name]
        raise ReenactError(f"{self.model.model_id} declares no drive engine")


class PyTorchBackend(Backend):
    name = "pytorch"

    def __init__(self, model: ReenactModel, device: str | None = None, compile: bool = False):
        super().__init__(model)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.modules = {n: s.build().to(self.device).eval() for n, s in self.specs.items()}
        if compile:
            self.modules = {n: torch.compile(m, mode="max-autotune-no-cudagraphs") for n, m in self.modules.items()}

    @torch.no_grad()
    def run(self, engine, feeds):
        spec = self.specs[engine]
        out = self.modules[engine](*(feeds[s.name] for s in spec.inputs))
        out = out if isinstance(out, tuple) else (out,)
        return {s.name: o for s, o in zip(spec.outputs, out)}


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, model: ReenactModel, work_dir: str | Path | None = None, providers: list[str] | None = None):
        super().__init__(model)
        import onnxruntime as ort
        ort.set_default_logger_severity(3)

        from reenact.engines.export import export_onnx

        avail = ort.get_available_providers()
        self.providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in avail]
        self._tmp = tempfile.TemporaryDirectory(dir=work_dir)
        self.sessions = {}
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # flush subnormal floats to zero: Gaussian tails and saturated attention produce them, and CPU
        # arithmetic on them is many times slower (a 68-heatmap convolution: 30 ms -> 17 ms)
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
        for name, spec in self.specs.items():
            path = export_onnx(spec, Path(self._tmp.name) / f"{name}.onnx")
            self.sessions[name] = ort.InferenceSession(str(path), opts, providers=self.providers)

    def run(self, engine, feeds):
        sess = self.sessions[engine]
        wanted = {i.name for i in sess.get_inputs()}  # the exporter drops inputs a graph never reads
        outs = sess.run(None, {k: v.detach().cpu().numpy() for k, v in feeds.items() if k in wanted})
        return {o.name: torch.from_numpy(x) for o, x in zip(sess.get_outputs(), outs)}


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, model: ReenactModel, precision: str = "fp16", cuda_graph: bool = True):
        super().__init__(model)
        from reenact.engines.build import build_engine
        from reenact.engines.runner import EngineRunner

        if not torch.cuda.is_available():
            raise ReenactError("the tensorrt backend needs an NVIDIA GPU with CUDA")
        self.device = torch.device("cuda")
        self.runners = {}
        self.model.cpu()  # export and parity checks trace on the CPU
        for name, spec in self.specs.items():
            built = build_engine(model, spec, precision=precision)
            self.runners[name] = EngineRunner(built.path, cuda_graph=cuda_graph and spec.kind != "target")
        self.model.to(self.device)

    def run(self, engine, feeds):
        return self.runners[engine](**feeds)


BACKENDS = {"pytorch": PyTorchBackend, "onnxruntime": OnnxRuntimeBackend, "tensorrt": TensorRTBackend}


def available_backends() -> dict[str, str]:
    """{name: why it is (un)available} for every backend."""
    from reenact.engines import tensorrt as trtx

    out = {"pytorch": "torch " + torch.__version__ + (" (CUDA)" if torch.cuda.is_available() else " (CPU)")}
    try:
        import onnxruntime as ort

        out["onnxruntime"] = "onnxruntime " + ort.__version__ + " " + ",".join(ort.get_available_providers())
    except ImportError:
        pass
    f = trtx.flavour()
    if f is not None and torch.cuda.is_available():
        out["tensorrt"] = f"{f.name} {f.version}"
    return out


def select_backend(name: str, model: ReenactModel, **kw) -> Backend:
    """``auto``: TensorRT on an NVIDIA GPU, else PyTorch on CUDA, else ONNX Runtime on the CPU (1.5x
    faster than eager PyTorch on CPUs here); a named backend that cannot run says what to install."""
    avail = available_backends()
    if not model.engines():  # nothing to run (the warp model): no backend to choose
        return PyTorchBackend(model, device="cpu")
    if name == "auto":
        order = ["tensorrt", "pytorch"] if torch.cuda.is_available() else ["onnxruntime", "pytorch"]
        for cand in order:
            if cand in avail:
                try:
                    b = BACKENDS[cand](model, **kw)
                except Exception as e:  # e.g. TensorRT for RTX on an unsupported GPU: fall back, loudly
                    log.warning("backend %s unavailable (%s); trying the next", cand, e)
                    continue
                log.info("backend auto -> %s (%s)", cand, avail[cand])
                return b
        raise ReenactError("no backend could run this model")
    if name not in BACKENDS:
        raise ReenactError(f"unknown backend {name!r}; choose from auto, {', '.join(BACKENDS)}")
    if name not in avail:
        hint = {"onnxruntime": "pip install onnxruntime (or onnxruntime-gpu)",
                "tensorrt": "an NVIDIA GPU with CUDA and pip install \".[tensorrt]\" (TensorRT for RTX) or "
                            "pip install tensorrt"}[name]
        raise ReenactError(f"backend {name!r} is not available here: needs {hint}")
    return BACKENDS[name](model, **kw)
