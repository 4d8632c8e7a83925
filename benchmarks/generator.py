"""Generator-alone latency: each model's engines on each backend, batch scaling, hardware floor.

What is timed (per model, per backend):

* **per frame**: the model's per-frame engines in the order the runtime runs them (the
  ``driver`` engine if the model has one, then the ``drive`` engine), fed random inputs of the
  declared shapes (timing does not depend on the values). The figure is their sum; each engine
  is also reported alone.
* **per-target encode**: the ``target`` engines (once per target photo), reported apart.
* **batch scaling**: the ``drive`` engine at batch 1, 2, 4, 8 (a batched engine profile serving
  that many streams with one call): per-call time, per-frame time, frames/s, streams at 30 fps.
* **floor**: ``benchmarks.floor``: FLOPs and bytes against the machine's measured peaks.

Backends: ``pytorch`` (eager, ``reenact.backends.PyTorchBackend``), ``torch.compile`` (the same
backend with ``compile=True``, run in a child process with a time limit; compile time reported
apart), ``onnxruntime`` (sessions built like ``OnnxRuntimeBackend``'s), ``tensorrt-fp32`` and
``tensorrt-fp16`` (``engines.build.build_engine`` + ``engines.runner.EngineRunner``; NVIDIA GPU
only). Weights are the models' random initialisation: the time does not depend on them.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from .common import Timer, fmt, markdown_table, plot_bars, plot_cdf, summarize
from .floor import floor_ms, measure_peak, model_counts

log = logging.getLogger("reenact.benchmarks.generator")

BACKENDS = ("pytorch", "torch.compile", "onnxruntime", "tensorrt-fp32", "tensorrt-fp16")
BATCH_BACKENDS = ("pytorch", "onnxruntime", "tensorrt-fp16")
PRECISION = {"tensorrt-fp16": "fp16"}  # every other backend computes in FP32

INCLUDES = {
    "pytorch": "the engine modules' forward (PyTorchBackend.run, no_grad) on tensors already on the device; "
               "no host copies",
    "torch.compile": "the same modules through torch.compile (PyTorchBackend(compile=True)) in a child process; "
                     "steady state after compilation; compile time (first calls, empty compiler cache) reported apart",
    "onnxruntime": "InferenceSession.run on numpy host arrays (ORT_ENABLE_ALL, the backend's providers, intra-op "
                   "threads = --threads), timed by the host clock; with the CUDA provider this includes host-to-device "
                   "and device-to-host copies",
    "tensorrt-fp32": "EngineRunner call: copy of the inputs into the engine's buffers, the engine (a CUDA graph for "
                     "per-frame engines) and clones of the outputs, all on the GPU",
    "tensorrt-fp16": "as tensorrt-fp32, with the FP16 graph (or the FP32-norm / FP32 fallback build_engine chose: "
                     "see 'precision')",
}


class Skip(Exception):
    """A backend that cannot run here; the message says why."""


# -- options ------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("generator part")
    g.add_argument("--width", type=float, default=None,
                   help="model width multiplier (default 1.0: the paper's sizes; 0.25 with --quick)")
    g.add_argument("--budget", type=float, default=None,
                   help="seconds per measurement: warm-up and timed passes are cut to fit, never below 1 warm-up "
                        "and --min-iters timed passes (default 10 on the CPU, 60 on a GPU, 3 with --quick)")
    g.add_argument("--min-iters", type=int, default=3, help="timed passes per measurement at least (default 3)")
    g.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="batch sizes of the drive engine "
                   "(default 1 2 4 8; 1 2 with --quick)")
    g.add_argument("--batch-budget", type=float, default=None,
                   help="seconds per batch size; a size whose estimated time exceeds it is skipped (default: --budget)")
    g.add_argument("--compile-timeout", type=float, default=None,
                   help="seconds allowed to torch.compile per model, compilation and timing together (default 240 "
                        "on the CPU, 600 on a GPU)")
    g.add_argument("--compile-models", nargs="+", default=None,
                   help="models to run through torch.compile (default: all of --models on a GPU, gcgan and exprgan "
                        "on a CPU, where compiling the large models takes many minutes)")


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The resolved options (stored in the result file)."""
    cuda = args.device.startswith("cuda")
    quick = bool(args.quick)
    budget = args.budget if args.budget is not None else (3.0 if quick else 60.0 if cuda else 10.0)
    return {
        "models": args.models,
        "backends": args.backends or list(BACKENDS),
        "width": args.width if args.width is not None else (0.25 if quick else 1.0),
        "device": args.device,
        "threads": args.threads,
        "warmup": args.warmup if args.warmup is not None else (1 if quick else 10),
        "iters": args.iters if args.iters is not None else (5 if quick else 200 if cuda else 50),
        "min_iters": args.min_iters,
        "budget_s": budget,
        "batch_sizes": args.batch_sizes or ([1, 2] if quick else [1, 2, 4, 8]),
        "batch_budget_s": args.batch_budget if args.batch_budget is not None else budget,
        "compile_timeout_s": args.compile_timeout if args.compile_timeout is not None else (600.0 if cuda else 240.0),
        # on a CPU, compiling the three large models takes minutes and gains little: small ones by default
        "compile_models": args.compile_models if args.compile_models is not None else
        (None if cuda else ["gcgan", "exprgan"]),
        "quick": quick,
    }


# -- measuring ------------------------------------------------------------------------------------------
def _stats(samples: list[float], keep_samples: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = summarize(samples)
    if keep_samples:
        out["samples_ms"] = [round(x, 4) for x in samples]
    return out


def measure(stages: dict[str, Callable[[], Any]], s: dict[str, Any], timer: Timer) -> dict[str, Any]:
    """Time ``stages`` (run in order each pass): per-stage and total statistics."""
    samples, info = timer.repeat(stages, s["warmup"], s["iters"], s["budget_s"], s["min_iters"])
    total = samples.pop("total")
    return {**info, "total": _stats(total), "stages": {k: _stats(v, keep_samples=False) for k, v in samples.items()}}


def _frame_and_target(stages_frame: dict[str, Callable], stages_target: dict[str, Callable], s: dict[str, Any],
                      timer: Timer) -> dict[str, Any]:
    frame = measure(stages_frame, s, timer)
    out = {"status": "ok", "per_frame": frame["total"], "engines": frame["stages"], "warmup": frame["warmup"],
           "iters": frame["iters"], "first_call_ms": frame["first_call_ms"], "target": None}
    if stages_target:
        tgt = measure(stages_target, s, timer)
        out["target"] = {**tgt["total"], "warmup": tgt["warmup"], "iters": tgt["iters"],
                         "first_call_ms": tgt["first_call_ms"], "engines": tgt["stages"]}
    return out


class ModelCase:
    """One model at one width: its engines, in runtime order, with fixed random inputs."""

    def __init__(self, model_id: str, width: float, seed: int = 0, model=None):
        """``model``: an already built (e.g. loaded) model to use instead of a fresh one at ``width``."""
        from reenact.models import build_model

        torch.manual_seed(seed)
        self.model = (build_model(model_id, width=width) if model is None else model).eval()
        self.model_id, self.width = model_id, width
        specs = self.model.engines()
        self.frame = [e for e in specs if e.kind == "driver"] + [e for e in specs if e.kind == "drive"]
        self.target = [e for e in specs if e.kind == "target"]
        g = torch.Generator().manual_seed(seed)
        self.inputs = {e.name: e.sample_inputs(g) for e in specs}
        self.drive = next(e for e in specs if e.kind == "drive")

    def feeds(self, spec, device: str | torch.device = "cpu", batch: int = 1) -> dict[str, torch.Tensor]:
        xs = self.inputs[spec.name]
        if batch != 1:
            xs = tuple(x.expand(batch, *x.shape[1:]).contiguous() for x in xs)
        return {t.name: x.to(device) for t, x in zip(spec.inputs, xs)}


def bench_pytorch(case: ModelCase, s: dict[str, Any], timer: Timer) -> dict[str, Any]:
    from reenact.backends import PyTorchBackend

    t0 = time.perf_counter()
    b = PyTorchBackend(case.model, s["device"])
    setup = time.perf_counter() - t0

    def stages(specs):
        return {e.name: (lambda e=e, f=case.feeds(e, b.device): b.run(e.name, f)) for e in specs}

    out = _frame_and_target(stages(case.frame), stages(case.target), s, timer)
    out["setup_s"] = setup
    return out


def bench_onnxruntime(case: ModelCase, s: dict[str, Any], timer: Timer, work: Path) -> dict[str, Any]:
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise Skip(f"onnxruntime is not installed ({e})") from None
    from reenact.engines.export import export_onnx

    case.model.to("cpu")  # the exporter traces on the CPU (an earlier backend may have moved the weights)
    timer = Timer("cpu")  # InferenceSession.run returns when the outputs are on the host: wall clock is right
    sessions, export_s = {}, 0.0
    for spec in case.frame + case.target:
        t0 = time.perf_counter()
        path = export_onnx(spec, work / f"{spec.name}.onnx")
        export_s += time.perf_counter() - t0
        sessions[spec.name] = _ort_session(ort, path, s)
    providers = sessions[case.drive.name].get_providers()

    def stages(specs):
        out = {}
        for e in specs:
            sess = sessions[e.name]
            wanted = {i.name for i in sess.get_inputs()}  # the exporter drops inputs a graph never reads
            feeds = {k: v.numpy() for k, v in case.feeds(e).items() if k in wanted}
            out[e.name] = lambda sess=sess, feeds=feeds: sess.run(None, feeds)
        return out

    out = _frame_and_target(stages(case.frame), stages(case.target), s, timer)
    out.update(export_s=export_s, providers=providers)
    return out


def _ort_session(ort, path: Path, s: dict[str, Any]):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = s["threads"]
    avail = ort.get_available_providers()
    want = ["CPUExecutionProvider"] if not s["device"].startswith("cuda") else ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ort.InferenceSession(str(path), opts, providers=[p for p in want if p in avail])


def _tensorrt_skip_reason(device: str) -> str | None:
    from reenact.engines import tensorrt as trtx

    f = trtx.flavour()
    if not device.startswith("cuda") or not torch.cuda.is_available():
        have = (f"{f.name} {f.version} is installed" + (" and builds engines ahead of time on the CPU, but"
                if f.name == "tensorrt-rtx" else ", but")) if f else "no TensorRT is installed, and"
        return f"TensorRT engines run only on an NVIDIA GPU with CUDA: {have} no GPU is available on this machine"
    if f is None:
        return f"no TensorRT is installed: {trtx.INSTALL_HINT}"
    return None


def bench_tensorrt(case: ModelCase, s: dict[str, Any], timer: Timer, precision: str) -> dict[str, Any]:
    reason = _tensorrt_skip_reason(s["device"])
    if reason:
        raise Skip(reason)
    from reenact.engines.build import build_engine
    from reenact.engines.runner import EngineRunner

    case.model.to("cpu")  # build_engine exports and checks parity on the CPU
    runners, built = {}, {}
    for spec in case.frame + case.target:
        br = build_engine(case.model, spec, precision=precision)
        built[spec.name] = {"precision": br.precision, "build_s": br.seconds, "cached": br.cached,
                            "size_mb": br.size_mb, "fp16_psnr_db": br.fp16_psnr_db}
        runners[spec.name] = EngineRunner(br.path, cuda_graph=spec.kind != "target")

    def stages(specs):
        return {e.name: (lambda r=runners[e.name], f=case.feeds(e, "cuda"): r(**f)) for e in specs}

    out = _frame_and_target(stages(case.frame), stages(case.target), s, timer)
    out["built"] = built
    out["precision"] = sorted({b["precision"] for b in built.values()})
    return out


def bench_compile(case: ModelCase, s: dict[str, Any], work: Path) -> dict[str, Any]:
    """torch.compile in a child process (a hung or endless compilation cannot stall the run)."""
    dev = s["device"]
    if not dev.startswith("cuda") and not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
        raise Skip("torch.compile on the CPU needs a C/C++ compiler (cc, gcc or clang); none found")
    job = {"model": case.model_id, "width": case.width, **{k: s[k] for k in
           ("device", "threads", "warmup", "iters", "budget_s", "min_iters")}}
    cmd = [sys.executable, "-m", "reenact.benchmarks.generator", "--compile-worker", json.dumps(job)]
    # empty compiler caches: the compile time is what a first run costs (later runs reuse the cache)
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(work / "inductor"), TRITON_CACHE_DIR=str(work / "triton"))
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=s["compile_timeout_s"],
                           cwd=Path(__file__).resolve().parents[1], env=env)
    except subprocess.TimeoutExpired:
        raise Skip(f"torch.compile (compilation and timing) did not finish within {s['compile_timeout_s']:.0f} s "
                   f"on this machine; raise --compile-timeout") from None
    for line in p.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            out = json.loads(line[7:])
            out["wall_s"] = time.perf_counter() - t0
            return out
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    raise RuntimeError(f"torch.compile worker failed (exit {p.returncode}): {' | '.join(tail)}")


def _compile_worker(job: dict[str, Any]) -> dict[str, Any]:
    from reenact.backends import PyTorchBackend

    torch.set_num_threads(job["threads"])
    case = ModelCase(job["model"], job["width"])
    b = PyTorchBackend(case.model, job["device"], compile=True)
    timer = Timer(job["device"])
    compile_s = {}
    stages = {}
    for e in case.frame:  # the per-target engines run once per photo: compiling them does not pay
        f = case.feeds(e, b.device)
        t0 = time.perf_counter()
        b.run(e.name, f)  # the first call compiles
        timer.sync()
        compile_s[e.name] = time.perf_counter() - t0
        stages[e.name] = lambda e=e, f=f: b.run(e.name, f)
    frame = measure(stages, job, timer)
    return {"status": "ok", "per_frame": frame["total"], "engines": frame["stages"], "warmup": frame["warmup"],
            "iters": frame["iters"], "first_call_ms": frame["first_call_ms"], "target": None,
            "compile_s": sum(compile_s.values()), "compile_s_engines": compile_s,
            "mode": "max-autotune-no-cudagraphs (as PyTorchBackend)", "compiler_cache": "empty at start"}


# -- batch scaling ----------------------------------------------------------------------------------------
def _batch_row(bsz: int, st: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"batch": bsz, "status": "ok", **st, **extra, "per_frame_ms": st["median_ms"] / bsz,
            "throughput_fps": bsz * 1e3 / st["median_ms"], "streams_at_30fps": int(bsz * 1e3 / st["median_ms"] // 30)}


def bench_batch(case: ModelCase, backend: str, batch1: dict[str, Any], s: dict[str, Any], timer: Timer,
                work: Path) -> list[dict[str, Any]]:
    """The drive engine at each batch size (static batched exports for ONNX Runtime and TensorRT).

    Batch 1 is the drive engine's figure from the per-frame measurement (the same call)."""
    base_ms = batch1["median_ms"]
    rows = []
    for bsz in s["batch_sizes"]:
        if bsz == 1:
            rows.append(_batch_row(1, batch1, source="per-frame measurement"))
            continue
        est_s = base_ms * bsz / 1e3 * (1 + s["min_iters"])
        if est_s > s["batch_budget_s"]:
            rows.append({"batch": bsz, "status": "skipped", "reason": f"estimated {est_s:.0f} s for {1 + s['min_iters']} "
                         f"calls exceeds the {s['batch_budget_s']:.0f} s budget per batch size"})
            continue
        try:
            fn = _batched_call(case, backend, bsz, s, work)
            m = measure({"call": fn}, {**s, "budget_s": s["batch_budget_s"]},
                        Timer("cpu") if backend == "onnxruntime" else timer)
        except Exception as e:  # e.g. out of memory at a large batch
            log.warning("%s %s batch %d: %s", case.model_id, backend, bsz, e)
            rows.append({"batch": bsz, "status": "error", "reason": f"{type(e).__name__}: {e}"})
            continue
        rows.append(_batch_row(bsz, m["total"], warmup=m["warmup"], iters=m["iters"]))
    return rows


def _batched_call(case: ModelCase, backend: str, bsz: int, s: dict[str, Any], work: Path) -> Callable[[], Any]:
    spec = case.drive
    if backend == "pytorch":
        module = spec.build().to(s["device"]).eval()
        xs = tuple(case.feeds(spec, s["device"], bsz).values())

        def call():
            with torch.no_grad():
                return module(*xs)
        return call
    from reenact.engines.export import export_onnx

    case.model.to("cpu")  # the exporter traces on the CPU
    if backend == "onnxruntime":
        import onnxruntime as ort

        path = export_onnx(spec, work / f"{spec.name}_b{bsz}.onnx", batch=bsz)
        sess = _ort_session(ort, path, s)
        wanted = {i.name for i in sess.get_inputs()}
        feeds = {k: v.numpy() for k, v in case.feeds(spec, "cpu", bsz).items() if k in wanted}
        return lambda: sess.run(None, feeds)
    if backend == "tensorrt-fp16":
        from reenact.engines import tensorrt as trtx
        from reenact.engines.runner import EngineRunner

        path = export_onnx(spec, work / f"{spec.name}_b{bsz}.fp16.onnx", precision="fp16", batch=bsz)
        runner = EngineRunner(trtx.build_serialized(path), cuda_graph=True)
        feeds = case.feeds(spec, "cuda", bsz)
        return lambda: runner(**feeds)
    raise ValueError(backend)


# -- the part ---------------------------------------------------------------------------------------------
def run(args: argparse.Namespace, env: dict[str, Any]) -> dict[str, Any]:
    s = settings(args)
    from reenact.models import list_models

    from reenact.models import build_model

    # the generator part times networks: a model without one (the warp) has nothing to time here
    s["models"] = [m for m in (s["models"] or list_models()) if build_model(m).engines()]
    unknown = sorted(set(s["backends"]) - set(BACKENDS))
    if unknown:
        raise SystemExit(f"unknown generator backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    torch.set_num_threads(s["threads"])
    timer = Timer(s["device"])
    log.info("measuring the machine's peaks on %s", s["device"])
    peak = measure_peak(s["device"], quick=s["quick"])
    log.info("peak: %.0f GFLOP/s FP32 matmul, %.1f GB/s copy (measured again at the end)", peak["rate_for"]["fp32"],
             peak["bandwidth_gbs"])
    result: dict[str, Any] = {"settings": s, "includes": INCLUDES, "models": {}}
    t_start = time.perf_counter()
    counts = {}
    for mid in s["models"]:
        result["models"][mid], counts[mid] = bench_model(mid, s, timer)
    # measured again at the end: on a shared machine the better of the two is closer to the hardware
    peak_end = measure_peak(s["device"], quick=s["quick"])
    result["peak"] = best_peak(peak, peak_end)
    for mid, m in result["models"].items():
        for name, r in m["backends"].items():
            if r["status"] == "ok":
                _add_floor(r, counts[mid], result["peak"], PRECISION.get(name, "fp32"))
    result["seconds"] = time.perf_counter() - t_start
    return result


def best_peak(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The higher of two peak measurements, per figure (both kept under ``runs``)."""
    best = dict(a)
    best["matmul_gflops"] = {k: max(v, b["matmul_gflops"].get(k) or 0) for k, v in a["matmul_gflops"].items()}
    best["rate_for"] = {k: (max(v, b["rate_for"].get(k) or 0) if v else v) for k, v in a["rate_for"].items()}
    best["bandwidth_gbs"] = max(a["bandwidth_gbs"], b["bandwidth_gbs"])
    best["runs"] = [{k: v for k, v in p.items() if k != "runs"} for p in (a, b)]
    best["note"] = "best of a measurement before and one after the models"
    return best


def bench_model(mid: str, s: dict[str, Any], timer: Timer) -> tuple[dict[str, Any], dict[str, Any]]:
    counts = model_counts(mid, s["width"])
    case = ModelCase(mid, s["width"])
    flops = {k: v for k, v in counts.items() if not k.startswith("_")}
    entry: dict[str, Any] = {
        "res": case.model.res, "width": s["width"],
        "engines": {e.name: {"kind": e.kind, "inputs": {t.name: list(t.shape) for t in e.inputs},
                             "outputs": {t.name: list(t.shape) for t in e.outputs},
                             "params_m": sum(p.numel() for p in e.build().parameters()) / 1e6}
                    for e in case.target + case.frame},
        "flops": flops, "backends": {}, "batch": {},
    }
    with tempfile.TemporaryDirectory(prefix=f"bench-{mid}-") as tmp:
        work = Path(tmp)
        for name in s["backends"]:
            log.info("%s: %s", mid, name)
            t0 = time.perf_counter()
            try:
                if name == "pytorch":
                    r = bench_pytorch(case, s, timer)
                elif name == "torch.compile":
                    if s["compile_models"] is not None and mid not in s["compile_models"]:
                        raise Skip("not requested for this model (--compile-models "
                                   + " ".join(s["compile_models"]) + ")")
                    r = bench_compile(case, s, work)
                elif name == "onnxruntime":
                    r = bench_onnxruntime(case, s, timer, work)
                else:
                    r = bench_tensorrt(case, s, timer, "fp16" if name == "tensorrt-fp16" else "fp32")
            except Skip as e:
                r = {"status": "skipped", "reason": str(e)}
            except Exception as e:
                log.error("%s %s failed:\n%s", mid, name, traceback.format_exc())
                r = {"status": "error", "reason": f"{type(e).__name__}: {e}"}
            r["wall_s"] = r.get("wall_s", time.perf_counter() - t0)
            if r["status"] == "ok":
                log.info("%s %s: per frame median %.2f ms (n=%d)", mid, name, r["per_frame"]["median_ms"],
                         r["per_frame"]["n"])
            else:
                log.info("%s %s: %s (%s)", mid, name, r["status"], r["reason"])
            entry["backends"][name] = r
            if r["status"] == "ok" and name in BATCH_BACKENDS:
                entry["batch"][name] = bench_batch(case, name, r["engines"][case.drive.name], s, timer, work)
    del case
    return entry, counts


def _add_floor(r: dict[str, Any], counts: dict[str, Any], peak: dict[str, Any], precision: str) -> None:
    r["floor_precision"] = precision
    for key, c in (("floor", "_per_frame_counts"), ("target_floor", "_target_counts")):
        if key == "target_floor" and not r.get("target"):
            continue
        fl = floor_ms(counts[c], peak, precision)
        strict = floor_ms(counts[c], peak, precision, strict=True)
        if fl is not None:
            fl["strict_floor_ms"] = strict["floor_ms"] if strict else None
        r[key] = fl
    if r.get("floor") and r["floor"]["floor_ms"] > 0:
        r["measured_over_floor"] = r["per_frame"]["median_ms"] / r["floor"]["floor_ms"]
    if r.get("target") and r.get("target_floor") and r["target_floor"]["floor_ms"] > 0:
        r["target_measured_over_floor"] = r["target"]["median_ms"] / r["target_floor"]["floor_ms"]


# -- report -----------------------------------------------------------------------------------------------
def _ok(models: dict[str, Any]):
    for mid, m in models.items():
        for b, r in m["backends"].items():
            if r["status"] == "ok":
                yield mid, m, b, r


def markdown(result: dict[str, Any], env: dict[str, Any]) -> str:
    s, models = result["settings"], result["models"]
    out = ["## Generator alone\n\n"]
    out.append(f"Width {s['width']} ({'the paper sizes' if s['width'] == 1.0 else 'not the paper sizes'}), "
               f"device `{s['device']}`, {s['threads']} threads. Each measurement: up to {s['warmup']} warm-up passes "
               f"(excluded) and up to {s['iters']} timed passes, cut to fit {fmt(s['budget_s'])} s per measurement "
               f"(never below 1 warm-up and {s['min_iters']} timed passes); `n` is the number of timed passes. "
               f"Timing: {'CUDA events' if s['device'].startswith('cuda') else 'time.perf_counter_ns'}. "
               f"Inputs are random tensors of each engine's declared shapes; weights are random (time does not "
               f"depend on them). Whole run: {fmt(result.get('seconds', 0) / 60, 2)} min.\n")
    out.append("\n### Per frame (driver + drive engines)\n\n")
    rows = []
    for mid, m, b, r in _ok(models):
        pf, fl = r["per_frame"], r.get("floor") or {}
        rows.append([mid, m["res"], m["flops"]["per_frame"]["gflops"], b, pf["median_ms"], pf["p95_ms"], pf["p99_ms"],
                     pf["mean_ms"], pf["fps"], pf["n"], fl.get("floor_ms"), fl.get("bound"), r.get("measured_over_floor")])
    out.append(markdown_table(["model", "res", "GFLOP", "backend", "median ms", "p95 ms", "p99 ms", "mean ms", "fps",
                               "n", "floor ms", "bound", "measured / floor"], rows, "lrrlrrrrrrrlr"))
    multi = [(mid, b, r) for mid, _, b, r in _ok(models) if len(r["engines"]) > 1]
    if multi:
        out.append("\nPer engine (median ms): " + "; ".join(
            f"{mid} {b}: " + ", ".join(f"{e} {fmt(st['median_ms'])}" for e, st in r["engines"].items())
            for mid, b, r in multi) + ".\n")
    out.append("\n### Per-target encode (once per target photo)\n\n")
    rows = []
    for mid, m, b, r in _ok(models):
        t = r.get("target")
        if t:
            tf = r.get("target_floor") or {}
            rows.append([mid, m["flops"]["target"]["gflops"], b, t["median_ms"], t["p95_ms"], t["p99_ms"], t["n"],
                         tf.get("floor_ms"), r.get("target_measured_over_floor")])
    none = [mid for mid, m in models.items() if not any(e["kind"] == "target" for e in m["engines"].values())]
    out.append(markdown_table(["model", "GFLOP", "backend", "median ms", "p95 ms", "p99 ms", "n", "floor ms",
                               "measured / floor"], rows, "lrlrrrrrr") if rows else "No target engine was timed.\n")
    if none:
        out.append(f"\n{', '.join(none)}: no target engine (the target crop feeds the per-frame engine directly).\n")
    comp = [(mid, r) for mid, _, b, r in _ok(models) if b == "torch.compile"]
    if comp:
        out.append("\n### torch.compile: compile time, apart from the steady state above\n\n")
        out.append(markdown_table(["model", "compile s (first calls)", "steady median ms", "eager median ms"],
                                  [[mid, r["compile_s"], r["per_frame"]["median_ms"],
                                    ((models[mid]["backends"].get("pytorch") or {}).get("per_frame") or {}).get("median_ms")]
                                   for mid, r in comp]))
    out.append(_batch_markdown(models))
    out.append(_resolution_markdown(models))
    out.append(_floor_markdown(result))
    skipped = [(mid, b, r) for mid, m in models.items() for b, r in m["backends"].items() if r["status"] != "ok"]
    if skipped:
        out.append("\n### Not measured\n\n")
        reasons: dict[tuple[str, str], list[str]] = {}
        for mid, b, r in skipped:
            reasons.setdefault((b, r["status"] + ": " + r["reason"]), []).append(mid)
        out += [f"- {b} ({', '.join(mids)}): {why}\n" for (b, why), mids in reasons.items()]
    out.append("\n### What each backend's figure includes\n\n")
    out += [f"- {b}: {INCLUDES[b]}.\n" for b in s["backends"] if b in INCLUDES]
    return "".join(out)


def _batch_markdown(models: dict[str, Any]) -> str:
    rows, skipped = [], []
    for mid, m in models.items():
        for b, sweep in m["batch"].items():
            for r in sweep:
                if r["status"] == "ok":
                    rows.append([mid, b, r["batch"], r["median_ms"], r["p99_ms"], r["per_frame_ms"], r["throughput_fps"],
                                 r["streams_at_30fps"], r["n"]])
            bad = [r for r in sweep if r["status"] != "ok"]
            if bad:
                skipped.append(f"{mid} {b} batch {', '.join(str(r['batch']) for r in bad)} ({bad[0]['reason']}"
                               + (", and more for the larger batches" if len(bad) > 1 else "") + ")")
    if not rows and not skipped:
        return ""
    out = ["\n### Scale: batch size = concurrent streams served by one batched call of the drive engine\n\n"]
    out.append("Static batched exports for ONNX Runtime (and TensorRT); inputs are the batch-1 inputs repeated; "
               "batch 1 is the drive engine's figure from the per-frame measurement. "
               "`streams @30` = how many 30 fps streams that throughput sustains, generator alone.\n\n")
    if rows:
        out.append(markdown_table(["model", "backend", "batch", "ms / call", "p99 ms", "ms / frame", "frames / s",
                                   "streams @30", "n"], rows, "llrrrrrrr"))
    if skipped:
        out.append("\nSkipped: " + "; ".join(skipped) + ".\n")
    return "".join(out)


def _resolution_markdown(models: dict[str, Any]) -> str:
    rows = []
    for mid, m in models.items():
        best = min((r for _, _, _, r in _ok({mid: m})), key=lambda r: r["per_frame"]["median_ms"], default=None)
        mp = m["res"] ** 2 / 1e6
        gf = m["flops"]["per_frame"]["gflops"]
        rows.append([mid, f"{m['res']}x{m['res']}", gf, gf / mp,
                     best["per_frame"]["median_ms"] if best else None,
                     best["per_frame"]["median_ms"] / mp if best else None])
    return ("\n### Output resolution\n\nEach model generates at one fixed size (64x64 or 128x128, MODELS.md 6); "
            "there is no resolution knob in the generator. Scaling the face to the 640x480 or 1280x720 output "
            "frame is the compositing stage's work (pipeline part). Per-frame cost against the model's own "
            "output size, best backend:\n\n"
            + markdown_table(["model", "output", "GFLOP / frame", "GFLOP / Mpixel", "best median ms",
                              "ms / Mpixel"], rows, "llrrrr"))


def _floor_markdown(result: dict[str, Any]) -> str:
    peak, models = result["peak"], result["models"]
    rates = ", ".join(f"{k.upper()} {fmt(v)} GFLOP/s" for k, v in peak["matmul_gflops"].items())
    out = [f"\n### Hardware floor\n\nMeasured peaks on `{peak['device']}`: matrix rate {rates} "
           f"(best `torch.mm` of {peak['matmul_n']}x{peak['matmul_n']}), copy bandwidth {fmt(peak['bandwidth_gbs'])} GB/s "
           f"(best copy of {peak['copy_bytes'] >> 20} MiB, read + write). "
           "floor = max(FLOPs / rate, bytes / bandwidth); FLOPs = 2 x MACs of conv, transposed conv, linear and "
           "matmul layers; bytes = each such layer's weights + input and output activations (FP32: 4 bytes, FP16: 2); "
           "the strict floor counts every weight once plus the engine inputs and outputs. "
           "A ratio below 1 means the runtime does fewer multiplications than the layer count (e.g. Winograd "
           "convolutions) or the peak measurement was disturbed by other processes. "
           "FLOPs are counted by `benchmarks.floor` on meta tensors and checked against MODELS.md section 6:\n\n"]
    rows = []
    for mid, m in models.items():
        f, ref = m["flops"], m["flops"].get("models_md_gflops") or {}
        rows.append([mid, f["per_frame"]["gflops"], ref.get("per_frame"), f["target"]["gflops"], ref.get("target"),
                     f["per_frame"]["mbytes_fp32"], f["per_frame"]["mbytes_strict_fp32"]])
    out.append(markdown_table(["model", "GFLOP / frame (counted)", "MODELS.md", "GFLOP / target (counted)",
                               "MODELS.md", "MB / frame FP32 (per layer)", "MB / frame FP32 (strict)"], rows))
    if any(m["flops"].get("models_md_gflops") is None for m in models.values()):
        out.append("\nMODELS.md's figures are for width 1.0 only.\n")
    return "".join(out)


def plots(result: dict[str, Any], prefix: Path) -> list[Path]:
    models = result["models"]
    frame = {mid: {b: r["per_frame"] for b, r in m["backends"].items() if r["status"] == "ok"} for mid, m in models.items()}
    target = {mid: {b: r["target"] for b, r in m["backends"].items() if r["status"] == "ok" and r.get("target")}
              for mid, m in models.items()}
    target = {k: v for k, v in target.items() if v}
    s = result["settings"]
    title = f"generator alone, width {s['width']}, {s['device']}: bar = median, whiskers = min and p99"
    panels = [("per frame (driver + drive engines)", frame)] + ([("per-target encode", target)] if target else [])
    paths = [plot_bars(f"{prefix}_generator.png", panels, title, order=BACKENDS)]
    cdf = {f"{mid} ({m['res']}x{m['res']})": {b: r["per_frame"]["samples_ms"] for b, r in m["backends"].items()
                                              if r["status"] == "ok"} for mid, m in models.items()}
    paths.append(plot_cdf(f"{prefix}_generator_cdf.png", {k: v for k, v in cdf.items() if v},
                          f"per-frame generator latency CDF ({s['device']}, warm-up excluded)"))
    if any(r["status"] == "ok" for m in models.values() for sweep in m["batch"].values() for r in sweep):
        paths.append(_plot_batch(f"{prefix}_batch.png", models, s))
    return paths


def _plot_batch(path: str, models: dict[str, Any], s: dict[str, Any]) -> Path:
    from reenact.utils import atomic_path

    from .common import _plain_log_ticks, _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.4))
    styles = {"pytorch": ("-", "o"), "onnxruntime": ("--", "s"), "tensorrt-fp16": (":", "^")}
    for i, (mid, m) in enumerate(models.items()):
        for b, sweep in m["batch"].items():
            ok = [r for r in sweep if r["status"] == "ok"]
            if ok:
                ls, mk = styles.get(b, ("-.", "x"))
                ax.plot([r["batch"] for r in ok], [r["throughput_fps"] for r in ok], linestyle=ls, marker=mk,
                        color=plt.cm.tab10(i % 10), label=f"{mid} {b}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    _plain_log_ticks(ax.xaxis)
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel("batch size (streams per call)")
    ax.set_ylabel("frames / s (drive engine, log scale)")
    ax.set_title(f"batch scaling, width {s['width']}, {s['device']}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def _worker_main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "--compile-worker":
        print("usage: python -m reenact.benchmarks.latency --part generator ... (this module is run by it)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    result = _compile_worker(json.loads(argv[1]))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
