"""GPU readiness check: one command that measures what the data-centre GPU goals need.

``python -m reenact.benchmarks.gpu_check --out DIR`` runs, within a time budget (default 9 minutes),
and writes ``DIR/gpu_check.json`` (every figure, every skipped or failed part with its exact
reason, each step's wall time) and plots ``DIR/gpu_check_*.png``:

1. **environment**: GPU name, driver, CUDA, cuDNN, torch; whether NVIDIA TensorRT, TensorRT
   for RTX and onnxruntime-gpu import, and a probe that builds and runs a one-layer TensorRT
   engine (its exact error is recorded where the installed TensorRT cannot run on this GPU;
   TensorRT for RTX, for example, does not run on data-centre Hopper GPUs);
2. **generator**: per model (shipped weights where a model has them, and the paper width
   untrained), the per-frame generator engines with PyTorch eager and TensorRT FP16, timed with
   CUDA events (median, p99; warm-up excluded), against the hardware floor
   (``benchmarks.generator`` and ``benchmarks.floor``);
3. **parity**: FP16 against PyTorch FP32, PSNR of the generated images over >= 100 real driving
   conditions from the fixture clip (the runtime's own conditions, ``Reenactor.process``): the
   TensorRT FP16 engines, the FP16 module the engines are exported from run by PyTorch, and on
   the CPU the FP16 ONNX graph in ONNX Runtime; the gate is 35 dB;
4. **pipeline**: the streaming runtime at 640x480 on the fixture clip (``benchmarks.pipeline``;
   tracking on the CPU, the generator on the GPU): end-to-end p50 / p99 and sustained fps per
   model and backend;
5. **training**: ``--train-s`` seconds (default 120) of one model (``--train-model``, default
   gcgan, paper width) in the one training loop (``train.loop.Trainer``) with bf16 autocast:
   steps and images/s, to size a GPU training run;
6. **compile**: the per-frame engines through ``torch.compile`` (``benchmarks.generator``'s child
   process), last, with the time left (compiling takes the longest and matters least).

Models come from ``reenact.models.list_models()``; a model without engines (no network) skips
the generator, parity and compile steps and still runs the pipeline. Each step is guarded: an
error is recorded with its message and the check goes on; between steps (and between models) the
time left is checked, and what no longer fits is recorded as skipped with the reason. The JSON
is rewritten (atomically) after every step, so an interrupted run keeps what it measured.

``--dry-run`` runs the same steps on the CPU at tiny widths and few iterations (about a minute):
the parts that need CUDA (CUDA events, TensorRT engines, bf16 autocast) are recorded as skipped
with the reason; nothing is estimated or made up.

On an NVIDIA GPU machine without network access
-----------------------------------------------
The check needs torch (with CUDA) and numpy, which such machines have; everything else installs
from wheel files. On a machine with PyPI access, from the repository root::

    bash benchmarks/gpu_wheels.sh          # Python 3.12, x86-64 Linux wheels into .whl/ (prints their size)

Copy the checkout with its ``.whl/`` folder and the ``shared/`` data folder (fixture video and
``face_landmarker.task``) to the GPU machine, then, from the repository root::

    pip install --no-index --no-deps --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
    export REENACT_SHARED=/path/to/shared REENACT_FACE_LANDMARKER=/path/to/shared/models/face_landmarker.task
    python -m reenact.benchmarks.gpu_check --out gpu-check

When the wheels are too large to copy at once, copy and install them in batches into the same
``--target`` folder: ``gpu_wheels.sh`` prints the batches and says which wheels are optional; with
``SPLIT=1`` it also cuts a wheel larger than one batch into parts, joined on the GPU machine with
``cat NAME.whl.part-* > NAME.whl`` before installing. Options: ``--budget-s``,
``--train-s``, ``--train-model``, ``--data`` (a prepared dataset instead of the fixture clip),
``--models`` (a subset), ``--no-plots``. ``--budget-s`` bounds the whole process (the check stops
itself at its end): when the installation and the check must fit in one time limit together,
lower it by the installation's time.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import math
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .common import REPO, summarize, write_json

log = logging.getLogger("reenact.benchmarks.gpu_check")

STEPS = ("environment", "generator", "parity", "pipeline", "training", "compile")
JSON_NAME = "gpu_check.json"
GOALS = {"pipeline_p99_ms_max": 10.0, "pipeline_fps_min": 100.0, "tensorrt_over_floor_max": 3.0,
         "fp16_psnr_db_min": 35.0, "resolution": "640x480"}
RESOLUTION = "640x480"
PSNR_GATE_DB = 35.0

# what each mode runs: the GPU settings, and tiny ones for the CPU dry run
PROFILES = {
    "gpu": {"width": 1.0, "gen_warmup": 20, "gen_iters": 300, "gen_budget_s": 5.0, "parity_frames": 120, "calib_s": 1.0,
            "pipe_warmup": 10, "pipe_iters": 300, "pipe_budget_s": 8.0, "train_s": 120.0, "train_every": 2,
            "compile_cap_s": 150.0, "compile_cases": None},
    "dry": {"width": 0.125, "gen_warmup": 2, "gen_iters": 20, "gen_budget_s": 0.5, "parity_frames": 8,
            "pipe_warmup": 1, "pipe_iters": 4, "pipe_budget_s": 2.0, "train_s": 4.0, "train_every": 3,
            "compile_cap_s": 45.0, "compile_cases": 1, "calib_s": 0.1},
}
# seconds a step needs at least to be worth starting (GPU, dry run)
MIN_STEP_S = {"environment": (0, 0), "generator": (30, 5), "parity": (20, 5), "pipeline": (20, 5),
              "training": (30, 5), "compile": (30, 10)}


class Skip(Exception):
    """A part that cannot run here; the message says why."""


# -- helpers ------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def captured_stderr() -> Iterator[dict[str, str]]:
    """Capture everything written to file descriptor 2 (TensorRT's C++ logger writes there), then
    write it out again; ``box["text"]`` holds it after the block."""
    box = {"text": ""}
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield box
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            box["text"] = tmp.read().decode("utf-8", "replace")
            if box["text"]:
                sys.stderr.write(box["text"])
                sys.stderr.flush()


def error_lines(text: str, n: int = 6) -> list[str]:
    """The lines of a log that report errors (else its last lines)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errs = [ln for ln in lines if "error" in ln.lower() or "[e]" in ln.lower() or "failed" in ln.lower()]
    return (errs or lines)[-n:]


def exact_error(e: BaseException, log_text: str = "") -> str:
    msg = f"{type(e).__name__}: {e}"
    extra = [ln for ln in error_lines(log_text) if ln not in msg]
    return msg + (" | log: " + " | ".join(extra) if extra else "")


def _tb_tail(n: int = 4) -> list[str]:
    return [ln.rstrip() for ln in traceback.format_exc().strip().splitlines()[-n:]]


def _try_import(module: str) -> dict[str, Any]:
    try:
        m = importlib.import_module(module)
    except BaseException as e:  # noqa: BLE001  (a broken native library may raise anything)
        return {"imports": False, "error": f"{type(e).__name__}: {e}"}
    return {"imports": True, "version": str(getattr(m, "__version__", None) or _dist_version(module) or "unknown")}


def _dist_version(module: str) -> str | None:
    import importlib.metadata as md

    try:
        for d in md.packages_distributions().get(module.split(".")[0], []):
            return md.version(d)
    except Exception:
        pass
    return None


def _stats(samples: Sequence[float], keep: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = summarize(samples)
    if keep:
        out["samples"] = [round(float(x), 4) for x in samples]
    return out


class ReplayTracker:
    """Stands in for the runtime's ``FaceTracker``: returns tracking computed once, by timestamp, so
    several sessions can be driven by the same frames without tracking them again."""

    def __init__(self, tracks: dict[float, Any]):
        self.tracks = tracks

    def track(self, frame: np.ndarray, t: float | None = None):
        return self.tracks[t]

    def close(self) -> None:
        pass


# -- the run --------------------------------------------------------------------------------------------------
class Check:
    def __init__(self, args: argparse.Namespace, argv: Sequence[str]):
        self.args = args
        self.dry = bool(args.dry_run)
        self.p = dict(PROFILES["dry" if self.dry else "gpu"])
        if args.train_s is not None:
            self.p["train_s"] = float(args.train_s)
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.json_path = self.out / JSON_NAME
        self.t0 = time.perf_counter()
        self.budget = float(args.budget_s)
        self._work = tempfile.TemporaryDirectory(prefix="gpu-check-")
        self.work = Path(self._work.name)
        self.lock = threading.Lock()
        self.device = "cpu" if self.dry else "cuda"
        self.abort: str | None = None  # set when the machine cannot run the check at all
        # the dry run uses one thread: on a shared CPU, spinning OpenMP threads slow each other down many times
        self.threads = 1 if self.dry else (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                           else (os.cpu_count() or 1))
        self.data: dict[str, Any] = {
            "schema": 1, "tool": "benchmarks.gpu_check", "dry_run": self.dry,
            "command": shlex.join(["python", "-m", "reenact.benchmarks.gpu_check", *argv]),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "budget_s": self.budget,
            "goals": {"targets": GOALS}, "steps": {}, "order": list(STEPS), "finished": False,
        }
        self.trt: dict[str, Any] = {"runs": False, "reason": "not probed yet"}
        self.cases: list[dict[str, Any]] | None = None
        self.current: str | None = None
        self.fixture = Path(args.fixture) if args.fixture else None
        self._tracks: list[tuple[np.ndarray, float, Any]] | None = None

    # -- time -----------------------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        """Seconds left for new work: the budget less the reserve kept for overruns and output."""
        return self.budget - self.args.reserve_s - self.elapsed()

    def budget_reason(self, need: float, what: str) -> str | None:
        left = self.left()
        if left < need:
            return (f"time budget: {max(self.budget - self.elapsed(), 0):.0f} s of the {self.budget:.0f} s budget "
                    f"left ({self.args.reserve_s:.0f} s of it kept in reserve), {what} needs about {need:.0f} s "
                    f"(raise --budget-s)")
        return None

    # -- output ---------------------------------------------------------------------------------------------
    def save(self) -> None:
        with self.lock:
            self.data["elapsed_s"] = self.elapsed()
            write_json(self.json_path, self.data)

    def watchdog(self, hard_s: float) -> None:
        """At the hard limit, record what was running and stop the process (the JSON stays valid)."""
        def fire():
            step = self.current or "?"
            log.error("hard time limit of %.0f s reached during step %s: stopping", hard_s, step)
            with contextlib.suppress(Exception):
                st = self.data["steps"].setdefault(step, {})
                st.update(status="error", reason=f"stopped at the end of the time budget ({hard_s:.0f} s, "
                                                 f"--budget-s) while this step was running")
                for name in STEPS:
                    self.data["steps"].setdefault(name, {"status": "skipped", "reason": "the run was stopped by "
                                                         "the hard time limit before this step"})
                self.data["stopped_by_hard_limit"] = True
                self.save()
            os._exit(3)

        t = threading.Timer(hard_s, fire)
        t.daemon = True
        t.start()

    # -- shared inputs ----------------------------------------------------------------------------------------
    def parser(self):
        from . import generator, latency, pipeline

        return latency.build_parser({"generator": generator, "pipeline": pipeline})

    def fixture_path(self) -> Path:
        if self.fixture is None:
            from .pipeline import default_driver

            self.fixture = default_driver()
        if self.fixture is None or not Path(self.fixture).is_file():
            raise Skip("no fixture clip: pass --fixture PATH or set REENACT_SHARED to the folder holding "
                       "data/videos/fixtures/liveportrait_driving_d18.mp4")
        return Path(self.fixture)

    def model_cases(self) -> list[dict[str, Any]]:
        """Every registered model: shipped weights where it has them, and the paper width untrained
        (the dry run's tiny width instead); models without engines are listed with ``engines=False``."""
        if self.cases is not None:
            return self.cases
        import torch

        from reenact.models import build_model, list_models
        from reenact.runtime.session import default_weights

        models = list_models()
        if self.args.models:
            unknown = sorted(set(self.args.models) - set(models))
            if unknown:
                raise SystemExit(f"--models: unknown {unknown}; registered: {', '.join(models)}")
            models = [m for m in models if m in self.args.models]
        cases = []
        w = self.p["width"]
        for mid in models:
            try:
                with torch.device("meta"):
                    engines = build_model(mid, width=w).engines()
            except Exception:
                engines = build_model(mid, width=w).engines()
            if not engines:
                cases.append({"name": mid, "model": mid, "engines": False, "weights": "none", "width": None})
                continue
            shipped = default_weights(mid)
            if shipped is not None:
                sw = json.loads(shipped.with_suffix(".json").read_text()).get("model_config", {}).get("width", 1.0)
                cases.append({"name": f"{mid}:shipped", "model": mid, "engines": True, "weights": "shipped",
                              "width": float(sw), "path": str(shipped)})
            cases.append({"name": f"{mid}:w{w:g}", "model": mid, "engines": True, "weights": "untrained",
                          "width": float(w)})
        self.cases = cases
        return cases

    def load_case_model(self, case: dict[str, Any]):
        """(model, template, weights description) as the runtime loads it; untrained weights seeded
        like ``benchmarks.generator.ModelCase`` so TensorRT engines built there are reused."""
        import torch

        from reenact.models import build_model
        from reenact.runtime.session import load_runtime_model

        if case["weights"] == "shipped":
            return load_runtime_model(case["model"], case["path"])
        torch.manual_seed(0)  # as ModelCase builds it (and as load_runtime_model does for untrained networks)
        return build_model(case["model"], width=case["width"]).eval(), None, "untrained"

    def fixture_tracks(self, max_frames: int | None = None) -> list[tuple[np.ndarray, float, Any]]:
        """The fixture's frames with their VIDEO-mode tracking (computed once, replayed per session)."""
        if self._tracks is None:
            from reenact.io.video import read_all
            from reenact.tracking import FaceTracker

            frames = read_all(self.fixture_path(), max_frames=max_frames)
            with FaceTracker(mode="video", max_faces=2) as tr:
                self._tracks = [(f.image, f.t, tr.track(f.image, f.t)) for f in frames]
        return self._tracks

    # -- steps ------------------------------------------------------------------------------------------------
    def run(self) -> int:
        self.watchdog(max(self.budget - 2.0, 1.0))
        self.save()
        for name in STEPS:
            step = getattr(self, f"step_{name}")
            need = MIN_STEP_S[name][1 if self.dry else 0]
            if name == "training":
                need = min(self.p["train_s"], 30.0) + need
            why = None if name == "environment" else (self.abort or self.budget_reason(need, f"the {name} step"))
            t0 = time.perf_counter()
            self.current = name
            if why:
                rec = {"status": "skipped", "reason": why}
            else:
                log.info("step %s (%.0f s left)", name, self.left())
                try:
                    rec = {"status": "ok", "result": step()}
                except (Skip, SystemExit) as e:
                    if isinstance(e, SystemExit) and not isinstance(e.code, str):
                        raise
                    rec = {"status": "skipped", "reason": str(e.code if isinstance(e, SystemExit) else e)}
                except Exception as e:
                    log.error("step %s failed:\n%s", name, traceback.format_exc())
                    rec = {"status": "error", "reason": f"{type(e).__name__}: {e}", "traceback": _tb_tail()}
            rec["wall_s"] = time.perf_counter() - t0
            self.data["steps"][name] = rec
            log.info("step %s: %s in %.1f s%s", name, rec["status"], rec["wall_s"],
                     f" ({rec['reason']})" if rec.get("reason") else "")
            self.save()
        self.current = None
        self.data["goals"] = goals(self.data, self.dry)
        self.data["finished"] = True
        self.save()
        if not self.args.no_plots:
            self.data["plots"] = make_plots(self.data, self.out)
            self.save()
        print_summary(self.data, self.json_path)
        return 0

    # 1 -------------------------------------------------------------------------------------------------------
    def step_environment(self) -> dict[str, Any]:
        import torch

        from .common import environment

        if not self.dry and not torch.cuda.is_available():
            self.abort = (f"no CUDA GPU is visible to torch {torch.__version__} (built for CUDA {torch.version.cuda}): "
                          "this check measures a GPU; --dry-run runs it on the CPU")
            raise RuntimeError(self.abort)
        torch.set_num_threads(self.threads)
        env = environment(["benchmarks/gpu_check.py"], threads=self.threads)
        self.data["machine"] = env["machine"]
        res: dict[str, Any] = {"device": self.device, "gpu": env["gpu"], "versions": env["versions"],
                               "git": env["git"], "python": sys.version.split()[0], "torch": torch.__version__}
        cuda: dict[str, Any] = {"available": torch.cuda.is_available(), "torch_built_for": torch.version.cuda}
        if torch.cuda.is_available():
            cuda["device_name"] = torch.cuda.get_device_name(0)
            cuda["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
            cuda["cudnn"] = torch.backends.cudnn.version()
            with contextlib.suppress(Exception):
                v = torch._C._cuda_getDriverVersion()
                cuda["driver_api"] = f"{v // 1000}.{v % 1000 // 10}"
        else:
            cuda["reason"] = "no CUDA GPU (dry run on the CPU)" if self.dry else "torch sees no CUDA GPU"
        res["cuda"] = cuda
        res["driver"] = nvidia_smi()
        res["imports"] = {m: _try_import(m) for m in ("mediapipe", "cv2", "av", "PIL", "skimage", "onnx",
                                                     "onnxruntime", "safetensors", "tqdm", "matplotlib",
                                                     "cuda.bindings", "tensorrt", "tensorrt_rtx_bindings")}
        ort = res["imports"]["onnxruntime"]
        if ort["imports"]:
            import onnxruntime

            providers = onnxruntime.get_available_providers()
            ort["providers"] = providers
            res["onnxruntime_gpu"] = {"imports": "CUDAExecutionProvider" in providers,
                                      "distribution": _dist_version("onnxruntime") and _ort_distribution(),
                                      "providers": providers}
        else:
            res["onnxruntime_gpu"] = {"imports": False, "error": ort["error"]}
        res["tensorrt"] = {"nvidia_tensorrt": res["imports"]["tensorrt"],
                           "tensorrt_for_rtx": res["imports"]["tensorrt_rtx_bindings"]}
        self.trt = tensorrt_probe(self.device, self.work)
        res["tensorrt"]["probe"] = self.trt
        res["fixture"] = str(self.fixture_path()) if self._has_fixture() else None
        res["face_model"] = os.environ.get("REENACT_FACE_LANDMARKER")
        res["models"] = [{k: c[k] for k in ("name", "model", "engines", "weights", "width")} for c in self.model_cases()]
        return res

    def _has_fixture(self) -> bool:
        try:
            self.fixture_path()
            return True
        except Skip:
            return False

    # 2 -------------------------------------------------------------------------------------------------------
    def gen_settings(self) -> dict[str, Any]:
        from . import generator as gen

        p = self.p
        args = self.parser().parse_args([
            "--device", self.device, "--threads", str(self.threads), "--width", str(p["width"]),
            "--warmup", str(p["gen_warmup"]), "--iters", str(p["gen_iters"]), "--budget", str(p["gen_budget_s"]),
            "--backends", "pytorch", "tensorrt-fp16", "--batch-sizes", "1"])
        return gen.settings(args)

    def step_generator(self) -> dict[str, Any]:
        import torch

        from . import generator as gen
        from .common import Timer
        from .floor import measure_peak, model_counts

        s = self.gen_settings()
        timer = Timer(self.device)
        cuda = self.device.startswith("cuda")
        timing = ({"clock": "CUDA events", "cuda_events": {"status": "ok"}} if cuda else
                  {"clock": "perf_counter_ns (host clock)",
                   "cuda_events": {"status": "skipped", "reason": "CUDA events need an NVIDIA GPU; this run is on "
                                   "the CPU, timed by the host clock"}})
        peak = measure_peak(self.device, quick=self.dry)
        out: dict[str, Any] = {"settings": {k: s[k] for k in ("device", "threads", "warmup", "iters", "budget_s",
                                                             "min_iters")},
                               "timing": timing, "peak": peak, "includes": {b: gen.INCLUDES[b] for b in
                                                                            ("pytorch", "tensorrt-fp16")},
                               "cases": {}}
        for case in self.model_cases():
            name = case["name"]
            if not case["engines"]:
                out["cases"][name] = {"model": case["model"], "status": "skipped",
                                      "reason": "no engines: this model has no network (model.engines() is empty)"}
                continue
            entry: dict[str, Any] = {"model": case["model"], "weights": case["weights"], "width": case["width"],
                                     "backends": {}}
            out["cases"][name] = entry
            t0 = time.perf_counter()
            try:
                counts = model_counts(case["model"], case["width"])
                shipped = self.load_case_model(case)[0] if case["weights"] == "shipped" else None
                # the shipped model itself (its whole config, e.g. warp-guided), or a fresh one at the width
                mc = gen.ModelCase(case["model"], case["width"], model=shipped)
                entry.update(res=mc.model.res, gflops_per_frame=counts["per_frame"]["gflops"],
                             engines=[e.name for e in mc.frame], target_engines=[e.name for e in mc.target])
            except Exception as e:
                log.error("%s: %s", name, traceback.format_exc())
                entry.update(status="error", reason=f"{type(e).__name__}: {e}", wall_s=time.perf_counter() - t0)
                self.save()
                continue
            for b in ("pytorch", "tensorrt-fp16"):
                why = self.budget_reason(2 * s["budget_s"] + 5, f"{name} {b}")
                t1 = time.perf_counter()
                if why:
                    r = {"status": "skipped", "reason": why}
                else:
                    r = self._bench_one(gen, mc, b, s, timer)
                    if r["status"] == "ok":
                        gen._add_floor(r, counts, peak, gen.PRECISION.get(b, "fp32"))
                        r["clock"] = timing["clock"]
                r["wall_s"] = time.perf_counter() - t1
                entry["backends"][b] = r
                if r["status"] == "ok":
                    pf = r["per_frame"]
                    log.info("%s %s: median %.3f ms, p99 %.3f ms (n=%d)%s", name, b, pf["median_ms"], pf["p99_ms"],
                             pf["n"], f", {r['measured_over_floor']:.1f}x floor" if r.get("measured_over_floor") else "")
                else:
                    log.info("%s %s: %s (%s)", name, b, r["status"], r["reason"])
                self.save()
            entry["status"] = "ok" if any(r["status"] == "ok" for r in entry["backends"].values()) else "error"
            entry["wall_s"] = time.perf_counter() - t0
            mc.model.cpu()
            del mc
            if cuda:
                torch.cuda.empty_cache()
        return out

    def _bench_one(self, gen, mc, backend: str, s: dict[str, Any], timer) -> dict[str, Any]:
        if backend == "pytorch":
            try:
                return gen.bench_pytorch(mc, s, timer)
            except Exception as e:
                log.error("%s", traceback.format_exc())
                return {"status": "error", "reason": f"{type(e).__name__}: {e}"}
        why = gen._tensorrt_skip_reason(s["device"])
        if why:
            return {"status": "skipped", "reason": why}
        if not self.trt.get("runs"):
            return {"status": "error", "reason": self.trt.get("reason"), "source": "the environment step's TensorRT "
                    "probe (a one-layer engine); not attempted per model"}
        with captured_stderr() as cap:
            try:
                return gen.bench_tensorrt(mc, s, timer, "fp16")
            except Exception as e:
                err = e
        if type(err).__name__ == "Skip":
            return {"status": "skipped", "reason": str(err)}
        return {"status": "error", "reason": exact_error(err, cap["text"])}

    # 3 -------------------------------------------------------------------------------------------------------
    def step_parity(self) -> dict[str, Any]:
        from reenact.engines.build import psnr_db
        from reenact.assets import default_target_path
        from reenact.io.images import load_image

        n_want = int(self.args.parity_frames or self.p["parity_frames"])
        t0 = time.perf_counter()
        # the calibration's frames, the conditions, and room for frames without a tracked face
        tracks = self.fixture_tracks(int(self.p["calib_s"] * 30) + 4 + int(n_want * 1.25) + 10)
        photo = load_image(default_target_path())
        out: dict[str, Any] = {
            "reference": f"PyTorch FP32 on {self.device}",
            "conditions": f"the runtime's own (Reenactor.process on the fixture clip {self.fixture_path().name}, "
                          "calibrated on its first second; frames still calibrating or without a tracked face are "
                          "not counted)",
            "calibration_s": self.p["calib_s"], "target": "the built-in photo", "psnr": "engines.build.psnr_db on the generator's float output "
                                                    "(peak = the FP32 image's value range), per frame",
            "gate_db": PSNR_GATE_DB, "frames_wanted": n_want, "fixture_frames": len(tracks),
            "tracking_s": time.perf_counter() - t0, "cases": {}}
        self.save()
        for case in self.model_cases():
            name = case["name"]
            if not case["engines"]:
                out["cases"][name] = {"model": case["model"], "status": "skipped",
                                      "reason": "no engines: this model has no network, nothing to compare"}
                continue
            why = self.budget_reason(10, f"the parity of {name}")
            if why:
                out["cases"][name] = {"model": case["model"], "status": "skipped", "reason": why}
                continue
            t1 = time.perf_counter()
            try:
                entry = self._parity_case(case, tracks, photo, n_want, psnr_db)
            except Exception as e:
                log.error("%s", traceback.format_exc())
                entry = {"model": case["model"], "status": "error", "reason": f"{type(e).__name__}: {e}",
                         "traceback": _tb_tail()}
            entry["wall_s"] = time.perf_counter() - t1
            out["cases"][name] = entry
            for p, r in entry.get("paths", {}).items():
                if r.get("status") == "ok":
                    log.info("%s %s: worst %.1f dB, median %.1f dB over %d conditions", name, p,
                             r["psnr_db"]["min"], r["psnr_db"]["median"], r["n"])
                else:
                    log.info("%s %s: %s (%s)", name, p, r.get("status"), r.get("reason"))
            self.save()
        return out

    def _parity_paths(self, model) -> dict[str, Callable[[], Any]]:
        """FP16 backends to compare, in build order: each a constructor, or a reason string."""
        from . import generator as gen

        cuda = self.device.startswith("cuda")
        paths: dict[str, Any] = {}
        why = gen._tensorrt_skip_reason(self.device)
        if why:
            paths["tensorrt-fp16"] = {"status": "skipped", "reason": why}
        elif not self.trt.get("runs"):
            paths["tensorrt-fp16"] = {"status": "error", "reason": self.trt.get("reason"),
                                      "source": "the environment step's TensorRT probe"}
        else:
            paths["tensorrt-fp16"] = lambda: _tensorrt_backend(model)
        paths["pytorch-fp16"] = lambda: _TorchFP16Backend(model, self.device)
        try:
            import onnxruntime as ort

            cuda_ep = "CUDAExecutionProvider" in ort.get_available_providers()
        except ImportError as e:
            paths["onnxruntime-fp16"] = {"status": "skipped", "reason": f"onnxruntime is not installed ({e})"}
        else:
            if not cuda:
                paths["onnxruntime-fp16"] = lambda: _OnnxFP16Backend(model, ["CPUExecutionProvider"], self.work)
            elif cuda_ep:
                paths["onnxruntime-fp16"] = lambda: _OnnxFP16Backend(model, ["CUDAExecutionProvider"], self.work)
            else:
                paths["onnxruntime-fp16"] = {"status": "skipped", "reason": "onnxruntime-gpu is not installed: the "
                                             "FP16 graph on ONNX Runtime's CPU provider is not what runs on this GPU "
                                             "(TensorRT builds engines from the same graph)"}
        return paths

    def _parity_case(self, case, tracks, photo, n_want: int, psnr_db) -> dict[str, Any]:
        from reenact.backends import PyTorchBackend
        from reenact.runtime.session import Reenactor, RuntimeOptions
        from reenact.runtime.target import prepare_target

        model, template, weights = self.load_case_model(case)
        target = prepare_target(photo, model.res, template=template)
        replay = ReplayTracker({t: trk for _, t, trk in tracks})
        calib = float(self.p["calib_s"])
        entry: dict[str, Any] = {"model": case["model"], "weights": weights, "width": case["width"], "paths": {}}
        sessions: dict[str, tuple[Any, _Recorder]] = {}
        for pname, make in self._parity_paths(model).items():
            if isinstance(make, dict):
                entry["paths"][pname] = make
                continue
            with captured_stderr() as cap:
                try:
                    b = make()
                    rec = _Recorder(b)
                    sessions[pname] = (Reenactor(model, target, b, template=template, weights=weights,
                                                 tracker=replay, options=RuntimeOptions(calib_s=calib)), rec)
                    entry["paths"][pname] = {"status": "ok", **getattr(b, "describe", {})}
                except Exception as e:
                    log.error("%s", traceback.format_exc())
                    entry["paths"][pname] = {"status": "error", "reason": exact_error(e, cap["text"])}
        ref_backend = PyTorchBackend(model, self.device)  # last: the FP16 builds may have moved the model
        ref_rec = _Recorder(ref_backend)
        ref = Reenactor(model, target, ref_backend, template=template, weights=weights, tracker=replay,
                        options=RuntimeOptions(calib_s=calib))
        psnrs: dict[str, list[float]] = {p: [] for p in sessions}
        diffs: dict[str, float] = {p: 0.0 for p in sessions}
        used: list[int] = []
        for i, (img, t, _) in enumerate(tracks):
            ref_rec.last = None
            o = ref.process(img, t)
            outs = {}
            for pname, (r, rec) in sessions.items():
                rec.last = None
                r.process(img, t)
                outs[pname] = rec.last
            if o.calibrating or not o.tracked or ref_rec.last is None:
                continue
            used.append(i)
            for pname, y in outs.items():
                if y is None:
                    continue
                psnrs[pname].append(psnr_db(ref_rec.last, y))
                diffs[pname] = max(diffs[pname], float(np.abs(ref_rec.last - y).max()))
            if len(used) >= n_want:
                break
        entry["n"] = len(used)
        entry["frames"] = [used[0], used[-1]] if used else None
        if len(used) < min(n_want, 100):
            entry["note"] = f"only {len(used)} frames of the clip gave a condition (wanted {n_want})"
        for pname, vals in psnrs.items():
            r = entry["paths"][pname]
            if not vals:
                r.update(status="error", reason="no output was recorded")
                continue
            a = np.asarray(vals, np.float64)
            finite = a[np.isfinite(a)]
            r.update(n=len(vals), max_abs_diff=diffs[pname], identical_frames=int((~np.isfinite(a)).sum()),
                     psnr_db={"min": float(a.min()), "p1": float(np.percentile(a, 1)), "median": float(np.median(a)),
                              "mean_finite": float(finite.mean()) if finite.size else None},
                     per_frame_db=[round(float(x), 2) if math.isfinite(x) else None for x in a],
                     passes=bool(a.min() >= PSNR_GATE_DB))
        ok = [r for r in entry["paths"].values() if r.get("status") == "ok"]
        entry["status"] = "ok" if ok else "error"
        if not ok:
            entry["reason"] = "no FP16 path ran: " + "; ".join(f"{p}: {r.get('reason')}" for p, r in entry["paths"].items())
        ref.close()
        for r, _ in sessions.values():
            r.close()
        return entry

    # 4 -------------------------------------------------------------------------------------------------------
    def step_pipeline(self) -> dict[str, Any]:
        import torch

        from . import pipeline as pipe
        from .common import environment

        p = self.p
        fixture = self.fixture_path()
        env = environment(["benchmarks/gpu_check.py"], threads=self.threads)
        backends = ["pytorch", "tensorrt"]
        trt_rows: dict[str, Any] | None = None
        if self.device.startswith("cuda") and not self.trt.get("runs") and self.trt.get("flavour"):
            backends = ["pytorch"]
            trt_rows = {"status": "error", "reason": self.trt.get("reason"),
                        "source": "the environment step's TensorRT probe; not attempted per model"}
        out: dict[str, Any] = {
            "resolution": RESOLUTION, "backends": backends, "driver": fixture.name,
            "placement": placement(self.device), "includes": pipe.INCLUDES, "models": {}}
        models = list(dict.fromkeys(c["model"] for c in self.model_cases()))
        for mid in models:
            need = len(backends) * (p["pipe_budget_s"] + 4) + 4
            why = self.budget_reason(need, f"the pipeline of {mid}")
            if why:
                out["models"][mid] = {"status": "skipped", "reason": why}
                continue
            argv = ["--part", "pipeline", "--models", mid, "--device", self.device, "--threads", str(self.threads),
                    "--resolutions", RESOLUTION, "--pipeline-backends", *backends, "--warmup", str(p["pipe_warmup"]),
                    "--iters", str(p["pipe_iters"]), "--budget", str(p["pipe_budget_s"]), "--driver", str(fixture)]
            if self.dry:
                argv += ["--width", str(p["width"])]
            t0 = time.perf_counter()
            try:
                args = self.parser().parse_args(argv)
                torch.manual_seed(0)  # untrained networks: the generator step's weights, its cached engines
                with captured_stderr() as cap:
                    res = pipe.run(args, env)
                runs = res["runs"]
                for r in runs:
                    if r.get("status") == "error" and cap["text"]:
                        r["log"] = error_lines(cap["text"])
                if trt_rows:
                    runs.append({"model": mid, "backend": "tensorrt", "resolution": RESOLUTION, **trt_rows})
                entry = {"status": "ok" if any(r.get("status") == "ok" for r in runs) else "error", "runs": runs,
                         "settings": {k: v for k, v in res["settings"].items() if not k.startswith("_")}}
                if entry["status"] == "error":
                    entry["reason"] = "; ".join(f"{r['backend']}: {r.get('reason')}" for r in runs)
            except Exception as e:
                log.error("%s", traceback.format_exc())
                entry = {"status": "error", "reason": f"{type(e).__name__}: {e}", "traceback": _tb_tail()}
            entry["wall_s"] = time.perf_counter() - t0
            out["models"][mid] = entry
            for r in entry.get("runs", []):
                if r.get("status") == "ok":
                    log.info("%s %s %s: end to end p50 %.1f ms, p99 %.1f ms, %.1f fps (n=%d)", mid, r["backend"],
                             r["resolution"], r["end_to_end"]["median_ms"], r["end_to_end"]["p99_ms"],
                             r.get("sustained_fps") or 0, r["n"])
            self.save()
        return out

    # 5 -------------------------------------------------------------------------------------------------------
    def step_training(self) -> dict[str, Any]:
        import torch

        from reenact.train.config import TrainOptions
        from reenact.train.loop import Trainer
        from reenact.train.recipe import recipe_class

        mid = self.args.train_model
        rcls = recipe_class(mid)
        cuda = self.device.startswith("cuda")
        out: dict[str, Any] = {"model": mid}
        t0 = time.perf_counter()
        if self.args.data:
            data = Path(self.args.data)
            out["data"] = {"path": str(data), "prepared_here": False}
        else:
            from reenact.train.dataset import prepare_dataset

            data = self.work / "train-data"
            info = prepare_dataset([self.fixture_path()], data, sizes=(64, 128), every=self.p["train_every"],
                                   val_fraction=0.0, progress=False)
            out["data"] = {"prepared_here": True, "source": self.fixture_path().name, "every": self.p["train_every"],
                           "frames": getattr(info, "frames_kept", None),
                           "seconds": time.perf_counter() - t0}
        if self.dry:
            model_opts, recipe_opts, _ = rcls.tiny
        else:
            model_opts, recipe_opts = {"width": 1.0}, {}
        opts = TrainOptions(model=mid, data=str(data), steps=10_000, seed=0, out=str(self.work / "runs"),
                            device=self.device, amp=True, sample_every=0, ckpt_every=0, log_every=0,
                            model_options=dict(model_opts), recipe_options=dict(recipe_opts))
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        tr = Trainer(opts)
        out.update(options={"model_options": opts.model_options, "recipe_options": tr.recipe.cfg.to_dict(),
                            "steps_planned": opts.steps},
                   train_frames=len(tr.data), res=tr.model.res, batch=int(tr.recipe.cfg.batch),
                   params_m=sum(p.numel() for p in tr.model.parameters()) / 1e6)
        out["precision"] = ({"status": "ok", "autocast": "bfloat16"} if cuda and opts.amp else
                            {"status": "skipped", "autocast": None,
                             "reason": "bf16 autocast runs on CUDA only (train.loop); this run trains in FP32 on "
                                       "the CPU"})
        train_s = min(self.p["train_s"], max(self.left() - 10.0, 1.0))
        if train_s < self.p["train_s"]:
            out["shortened"] = f"trained {train_s:.0f} s instead of {self.p['train_s']:.0f} s: the time budget"
        out["setup_s"] = time.perf_counter() - t0
        step_ms: list[float] = []
        stages: list[str] = []
        start = time.perf_counter()
        while time.perf_counter() - start < train_s:
            a = time.perf_counter()
            stats = tr.train_step()  # reads the losses back (.item()): each step has finished on the GPU
            step_ms.append((time.perf_counter() - a) * 1e3)
            stage = tr.plan.stages[int(stats.get("stage", 0))].name
            if not stages or stages[-1] != stage:
                stages.append(stage)
        wall = time.perf_counter() - start
        warm = min(3, max(len(step_ms) - 1, 0))
        timed = step_ms[warm:]
        batch = out["batch"]
        out.update(steps=len(step_ms), train_s=wall, warmup_steps=warm, stages=stages,
                   phases=[{"stage": st.name, "phases": [{"name": ph.name, "optimizer": ph.optimizer,
                                                          "repeats": ph.repeats} for ph in st.phases]}
                           for st in tr.plan.stages if st.name in stages],
                   step_ms=_stats(timed) if timed else None, first_step_ms=step_ms[0] if step_ms else None,
                   images_per_s=batch * len(timed) / (sum(timed) / 1e3) if timed else None,
                   images_per_s_all=batch * len(step_ms) / wall if wall > 0 else None,
                   last_losses={k: v for k, v in (tr.history[-1] if tr.history else {}).items() if k != "stage"},
                   images="generator samples per second: batch x generator steps / time (critic repeats and every "
                          "phase of a step included; warm-up steps excluded)")
        if out["step_ms"]:
            out["hours_per_10k_steps"] = 10_000 * out["step_ms"]["mean_ms"] / 3.6e6
        if cuda:
            out["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
        log.info("training %s: %d steps in %.0f s, %.1f images/s (batch %d)", mid, len(step_ms), wall,
                 out["images_per_s"] or 0, batch)
        del tr
        if cuda:
            torch.cuda.empty_cache()
        return out

    # 6 -------------------------------------------------------------------------------------------------------
    def step_compile(self) -> dict[str, Any]:
        from . import generator as gen

        s = self.gen_settings()
        cap = float(self.p["compile_cap_s"])
        out: dict[str, Any] = {"includes": gen.INCLUDES["torch.compile"], "cap_s_per_model": cap, "cases": {}}
        cases = [c for c in self.model_cases() if c["engines"]]
        flops = {}
        gsteps = (self.data["steps"].get("generator") or {}).get("result") or {}
        for c in cases:
            flops[c["name"]] = (((gsteps.get("cases") or {}).get(c["name"]) or {}).get("gflops_per_frame")
                                or _meta_params(c["model"], c["width"]))
        # cheapest first (FLOPs from the generator step, else parameter count): most models measured in the time left
        cases.sort(key=lambda c: flops[c["name"]])
        limit = self.p["compile_cases"]
        for i, c in enumerate(self.model_cases()):
            if not c["engines"]:
                out["cases"][c["name"]] = {"status": "skipped", "reason": "no engines: nothing to compile"}
        for i, c in enumerate(cases):
            name = c["name"]
            if limit is not None and i >= limit:
                out["cases"][name] = {"status": "skipped", "reason": f"dry run: torch.compile is checked on the "
                                      f"{limit} cheapest model(s) only (compiling takes tens of seconds per model on "
                                      f"a CPU)"}
                continue
            why = self.budget_reason(20, f"torch.compile of {name}")
            if why:
                out["cases"][name] = {"status": "skipped", "reason": why}
                continue
            s["compile_timeout_s"] = max(10.0, min(cap, self.left() - 5.0))
            t0 = time.perf_counter()
            try:
                r = gen.bench_compile(SimpleNamespace(model_id=c["model"], width=c["width"]), s, self.work)
            except Exception as e:
                r = {"status": "skipped" if type(e).__name__ == "Skip" else "error", "reason": str(e) if
                     type(e).__name__ == "Skip" else f"{type(e).__name__}: {e}"}
            if isinstance(r.get("reason"), str):  # the limit here is the cap per model or the time left, not an option
                r["reason"] = r["reason"].replace("; raise --compile-timeout", f" (the cap per model is {cap:.0f} s, "
                                                  "less when the budget has less left)")
            r["timeout_s"] = s["compile_timeout_s"]
            r["wall_s"] = time.perf_counter() - t0
            r["clock"] = "CUDA events" if self.device.startswith("cuda") else "perf_counter_ns (host clock)"
            out["cases"][name] = r
            if r["status"] == "ok":
                log.info("%s torch.compile: median %.3f ms, p99 %.3f ms; compiled in %.0f s", name,
                         r["per_frame"]["median_ms"], r["per_frame"]["p99_ms"], r["compile_s"])
            else:
                log.info("%s torch.compile: %s (%s)", name, r["status"], r["reason"])
            self.save()
        return out


def _meta_params(model_id: str, width: float) -> float:
    """Parameter count of a model built on the meta device (no memory, no compute), or infinity."""
    try:
        import torch

        from reenact.models import build_model

        with torch.device("meta"):
            return float(sum(p.numel() for p in build_model(model_id, width=width).parameters()))
    except Exception:
        return math.inf


# -- FP16 backends for the parity step -------------------------------------------------------------------------
class _Recorder:
    """Keeps the float output of a backend's last ``drive`` call (the generator's image before the
    runtime turns it into uint8)."""

    def __init__(self, backend):
        self.last: np.ndarray | None = None
        inner = backend.drive

        def drive(cache, cond):
            y = inner(cache, cond)
            self.last = y.detach().float().cpu().numpy()
            return y

        backend.drive = drive


def _tensorrt_backend(model):
    from reenact.engines.build import build_engine
    from reenact.backends import TensorRTBackend

    model.cpu()
    built = {spec.name: build_engine(model, spec, precision="fp16") for spec in model.engines()}
    b = TensorRTBackend(model, precision="fp16")  # the engines just built, from the cache
    b.describe = {"precision": {k: v.precision for k, v in built.items()},
                  "fp16_graph_psnr_db_random_inputs": {k: v.fp16_psnr_db for k, v in built.items()}}
    return b


def _torch_fp16_backend_class():
    from reenact.engines.export import precision_module
    from reenact.backends import PyTorchBackend

    class TorchFP16(PyTorchBackend):
        """The FP16 module each engine is exported from (``engines.export.precision_module``), in PyTorch."""

        name = "pytorch-fp16"

        def __init__(self, model, device):
            super().__init__(model, device)
            self.modules = {n: precision_module(s, "fp16").to(self.device).eval() for n, s in self.specs.items()}
            self.describe = {"precision": "fp16 (float32 inputs and outputs)"}

    return TorchFP16


def _TorchFP16Backend(model, device):
    return _torch_fp16_backend_class()(model, device)


def _OnnxFP16Backend(model, providers: list[str], work: Path):
    import onnxruntime as ort

    from reenact.engines.export import export_onnx
    from reenact.backends import Backend, OnnxRuntimeBackend

    class OnnxFP16(OnnxRuntimeBackend):
        """The FP16 ONNX graph TensorRT builds its engine from, run by ONNX Runtime."""

        def __init__(self):
            Backend.__init__(self, model)
            model.cpu()  # the exporter traces on the CPU
            ort.set_default_logger_severity(3)
            self.providers = providers
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 3  # errors only: no constant-folding chatter about float16 kernels
            folder = Path(tempfile.mkdtemp(dir=work))
            self.sessions = {n: ort.InferenceSession(str(export_onnx(s, folder / f"{n}.fp16.onnx", precision="fp16")),
                                                     opts, providers=providers) for n, s in self.specs.items()}
            self.describe = {"precision": "fp16 graph (float32 inputs and outputs)", "providers": providers}

    return OnnxFP16()


# -- environment helpers -----------------------------------------------------------------------------------------
def _ort_distribution() -> str | None:
    import importlib.metadata as md

    for d in ("onnxruntime-gpu", "onnxruntime"):
        with contextlib.suppress(md.PackageNotFoundError):
            return f"{d} {md.version(d)}"
    return None


def nvidia_smi() -> dict[str, Any]:
    try:
        p = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as e:
        return {"status": "skipped", "reason": f"nvidia-smi did not run ({type(e).__name__}: {e})"}
    if p.returncode != 0:
        return {"status": "error", "reason": (p.stderr or p.stdout).strip()[-300:]}
    rows = [[x.strip() for x in ln.split(",")] for ln in p.stdout.strip().splitlines()]
    keys = ("name", "driver_version", "memory_total", "compute_cap")
    return {"status": "ok", "gpus": [dict(zip(keys, r)) for r in rows],
            "driver_version": rows[0][1] if rows and len(rows[0]) > 1 else None}


def tensorrt_probe(device: str, work: Path) -> dict[str, Any]:
    """Build and run a one-layer FP16 engine with the installed TensorRT: whether engines run here,
    and the exact error where they do not."""
    import torch
    from torch import nn

    from reenact.engines import tensorrt as trtx
    from reenact.engines.export import export_onnx
    from reenact.models.base import EngineSpec, TensorSpec

    f = trtx.flavour()
    out: dict[str, Any] = {"flavour": f.name if f else None, "version": f.version if f else None, "runs": False}
    if f is None:
        out.update(status="skipped", reason=f"no TensorRT is installed: {trtx.INSTALL_HINT}")
        return out
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()).eval()
    spec = EngineSpec("probe", "drive", lambda: net, (TensorSpec("x", (1, 3, 32, 32)),),
                      (TensorSpec("y", (1, 8, 32, 32)),))
    t0 = time.perf_counter()
    with captured_stderr() as cap:
        try:
            data = trtx.build_serialized(export_onnx(spec, work / "probe.fp16.onnx", precision="fp16"))
        except Exception as e:
            out.update(status="error", stage="build", reason=f"{f.name} {f.version}: " + exact_error(e, cap["text"]))
            return out
    out.update(built=True, build_s=time.perf_counter() - t0, engine_bytes=len(data))
    if not device.startswith("cuda") or not torch.cuda.is_available():
        out.update(status="skipped", stage="run", reason=f"{f.name} {f.version} built the engine ahead of time on "
                   "the CPU; running it needs an NVIDIA GPU with CUDA (none in this run)")
        return out
    from reenact.engines.runner import EngineRunner

    with captured_stderr() as cap:
        try:
            x = torch.rand(1, 3, 32, 32, device="cuda") * 2 - 1
            y = EngineRunner(data, cuda_graph=True)(x=x)["y"]
            torch.cuda.synchronize()
            with torch.no_grad():
                ref = net.to("cuda")(x)
            err = float((y.float() - ref).abs().max())
        except Exception as e:
            cc = trtx.gpu_compute_capability()
            out.update(status="error", stage="run", reason=f"{f.name} {f.version} on compute capability {cc}: "
                       + exact_error(e, cap["text"]))
            return out
    out.update(status="ok", runs=True, max_abs_diff=err, reason=None)
    return out


def placement(device: str) -> dict[str, Any]:
    """Where the pipeline's stages run (``benchmarks.pipeline.STAGES``): the generator on the backend's
    device; tracking (MediaPipe), decode and encode on the CPU, and in this runtime the warp and the
    composite as well (OpenCV remaps on the host; ``reenact.geometry.warp.remap_torch`` exists but the
    runtime does not use it)."""
    from .pipeline import STAGES

    gpu = device.startswith("cuda")
    out: dict[str, Any] = {st: (("cuda" if gpu else "cpu") + " (the backend's device)") if st == "generate" else "cpu"
                           for st in STAGES}
    away = [st for st in ("warp", "composite") if st in STAGES]
    if gpu and away:
        out["note"] = (f"the goal places warp, generator and composite on the GPU; this runtime runs "
                       f"{' and '.join(away)} on the CPU, so the figures include that")
    return out


# -- goals, summary and plots -------------------------------------------------------------------------------------
def _ok(d: dict | None) -> bool:
    return bool(d) and d.get("status") == "ok"


def goals(data: dict[str, Any], dry: bool) -> dict[str, Any]:
    steps = data["steps"]
    gen = (steps.get("generator") or {}).get("result") or {}
    par = (steps.get("parity") or {}).get("result") or {}
    pipe = (steps.get("pipeline") or {}).get("result") or {}
    out: dict[str, Any] = {"targets": GOALS, "applies": not dry,
                           "note": ("dry run: CPU figures at tiny widths, not the GPU the goals are for" if dry else
                                    "measured on this GPU"), "models": {}}
    for mid, m in (pipe.get("models") or {}).items():
        rows = [r for r in m.get("runs", []) if r.get("status") == "ok" and r.get("resolution") == RESOLUTION]
        g: dict[str, Any] = {}
        if rows:
            best = min(rows, key=lambda r: r["end_to_end"]["p99_ms"])
            p99, fps = best["end_to_end"]["p99_ms"], best.get("sustained_fps")
            g["pipeline"] = {"backend": best["backend"], "p50_ms": best["end_to_end"]["median_ms"], "p99_ms": p99,
                             "fps": fps, "p99_ok": p99 <= GOALS["pipeline_p99_ms_max"],
                             "fps_ok": fps is not None and fps >= GOALS["pipeline_fps_min"]}
        else:
            g["pipeline"] = {"status": "not measured", "reason": m.get("reason") or "no pipeline run succeeded"}
        out["models"][mid] = g
    for name, c in (gen.get("cases") or {}).items():
        g = out["models"].setdefault(c.get("model", name.split(":")[0]), {})
        trt = (c.get("backends") or {}).get("tensorrt-fp16") or {}
        pt = (c.get("backends") or {}).get("pytorch") or {}
        g.setdefault("generator", {})[name] = {
            "pytorch_p99_ms": (pt.get("per_frame") or {}).get("p99_ms"),
            "tensorrt_fp16_p99_ms": (trt.get("per_frame") or {}).get("p99_ms"),
            "tensorrt_over_floor": trt.get("measured_over_floor"),
            "tensorrt_within_3x": (trt["measured_over_floor"] <= GOALS["tensorrt_over_floor_max"]
                                   if trt.get("measured_over_floor") is not None else None),
            **({} if _ok(trt) else {"tensorrt": f"{trt.get('status', 'not run')}: {trt.get('reason')}"})}
    for name, c in (par.get("cases") or {}).items():
        g = out["models"].setdefault(c.get("model", name.split(":")[0]), {})
        g.setdefault("fp16_parity", {})[name] = {
            p: ({"min_db": r["psnr_db"]["min"], "passes": r["passes"], "n": r["n"]} if _ok(r) and "psnr_db" in r
                else f"{r.get('status')}: {r.get('reason')}") for p, r in (c.get("paths") or {}).items()}
    return out


def print_summary(data: dict[str, Any], path: Path) -> None:
    steps = data["steps"]
    lines = [f"gpu_check ({'dry run, CPU' if data['dry_run'] else 'GPU'}): {data.get('elapsed_s', 0):.0f} s of "
             f"the {data['budget_s']:.0f} s budget"]
    for name in STEPS:
        st = steps.get(name) or {}
        lines.append(f"  {name:<12} {st.get('status', '-'):<8} {st.get('wall_s', 0):6.1f} s"
                     + (f"  {st['reason']}" if st.get("reason") else ""))
    for mid, g in (data.get("goals") or {}).get("models", {}).items():
        p = g.get("pipeline") or {}
        bits = [f"{mid}:"]
        if "p99_ms" in p:
            bits.append(f"pipeline {p['backend']} p50 {p['p50_ms']:.1f} ms p99 {p['p99_ms']:.1f} ms "
                        f"{p['fps'] or 0:.1f} fps")
        for name, gg in (g.get("generator") or {}).items():
            if gg.get("pytorch_p99_ms") is not None:
                bits.append(f"[{name}] eager p99 {gg['pytorch_p99_ms']:.2f} ms")
            if gg.get("tensorrt_fp16_p99_ms") is not None:
                bits.append(f"trt-fp16 p99 {gg['tensorrt_fp16_p99_ms']:.2f} ms ({gg['tensorrt_over_floor']:.1f}x floor)")
        for name, par in (g.get("fp16_parity") or {}).items():
            for pth, r in par.items():
                if isinstance(r, dict):
                    bits.append(f"{pth} worst {r['min_db']:.1f} dB")
        lines.append("  " + " ".join(bits))
    tr = (steps.get("training") or {}).get("result")
    if tr:
        lines.append(f"  training {tr['model']}: {tr.get('images_per_s') or 0:.1f} images/s over {tr['steps']} steps")
    lines.append(str(path))
    print("\n".join(lines), flush=True)


def make_plots(data: dict[str, Any], out: Path) -> dict[str, Any]:
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        return {"status": "skipped", "reason": f"matplotlib is not installed ({e})"}
    from .common import plot_bars, plot_cdf

    written, errors = [], {}
    steps = data["steps"]
    dev = "CPU dry run" if data["dry_run"] else ((steps.get("environment") or {}).get("result") or {}).get(
        "cuda", {}).get("device_name", "GPU")

    def attempt(name: str, fn: Callable[[], Any]) -> None:
        try:
            p = fn()
            if p:
                written.append(str(Path(p).name))
        except Exception as e:
            errors[name] = f"{type(e).__name__}: {e}"

    gen = (steps.get("generator") or {}).get("result") or {}
    comp = (steps.get("compile") or {}).get("result") or {}
    groups: dict[str, dict[str, dict[str, float]]] = {}
    cdf: dict[str, dict[str, list[float]]] = {}
    for name, c in (gen.get("cases") or {}).items():
        for b, r in (c.get("backends") or {}).items():
            if _ok(r):
                groups.setdefault(name, {})[b] = r["per_frame"]
                cdf.setdefault(name, {})[b] = r["per_frame"]["samples_ms"]
        r = (comp.get("cases") or {}).get(name)
        if _ok(r):
            groups.setdefault(name, {})["torch.compile"] = r["per_frame"]
            cdf.setdefault(name, {})["torch.compile"] = r["per_frame"]["samples_ms"]
    if groups:
        attempt("generator", lambda: plot_bars(out / "gpu_check_generator.png",
                                               [("generator per frame (driver + drive engines)", groups)],
                                               f"generator latency, {dev}: bar = median, whiskers = min and p99",
                                               order=("pytorch", "torch.compile", "tensorrt-fp16")))
        attempt("generator_cdf", lambda: plot_cdf(out / "gpu_check_generator_cdf.png", cdf,
                                                  f"generator latency CDF, {dev} (warm-up excluded)"))
    pipe = (steps.get("pipeline") or {}).get("result") or {}
    pcdf = {mid: {f"{r['backend']} end to end": r["end_to_end"]["samples_ms"] for r in m.get("runs", []) if _ok(r)}
            for mid, m in (pipe.get("models") or {}).items()}
    pcdf = {k: v for k, v in pcdf.items() if v}
    if pcdf:
        attempt("pipeline", lambda: plot_cdf(out / "gpu_check_pipeline_cdf.png", pcdf,
                                             f"pipeline end to end at {RESOLUTION}, {dev} (warm-up excluded)"))
    par = (steps.get("parity") or {}).get("result") or {}
    series = {f"{name} {p}": r["per_frame_db"] for name, c in (par.get("cases") or {}).items()
              for p, r in (c.get("paths") or {}).items() if _ok(r) and r.get("per_frame_db")}
    if series:
        attempt("parity", lambda: _plot_parity(out / "gpu_check_parity.png", series, dev))
    tr = (steps.get("training") or {}).get("result") or {}
    if tr.get("step_ms"):
        attempt("training", lambda: _plot_training(out / "gpu_check_training.png", tr, dev))
    res: dict[str, Any] = {"status": "ok", "files": written}
    if errors:
        res["errors"] = errors
    return res


def _plot_parity(path: Path, series: dict[str, list], dev: str) -> Path:
    from .common import _pyplot, _save_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.6))
    styles = ["-", "--", ":", "-."]
    paths = sorted({name.split(" ")[-1] for name in series})
    for i, (name, vals) in enumerate(series.items()):
        y = np.array([np.nan if v is None else v for v in vals], dtype=float)
        ax.plot(np.arange(len(y)), y, label=name, lw=1, ls=styles[paths.index(name.split(" ")[-1]) % 4],
                color=plt.cm.tab10(i % 10))
    ax.axhline(PSNR_GATE_DB, color="red", ls="--", lw=1, label=f"gate {PSNR_GATE_DB:.0f} dB")
    ax.set_xlabel("condition (fixture frame after calibration)")
    ax.set_ylabel("PSNR vs PyTorch FP32 (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save_figure(plt, fig, f"FP16 parity over real conditions, {dev}", path)


def _plot_training(path: Path, tr: dict[str, Any], dev: str) -> Path:
    from .common import _pyplot, _save_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ms = np.asarray(tr["step_ms"]["samples"], dtype=float)
    ax.plot(np.cumsum(ms) / 1e3, tr["batch"] * 1e3 / ms, lw=1)
    ax.set_xlabel("seconds of training (after warm-up)")
    ax.set_ylabel("images / s (per step)")
    ax.grid(alpha=0.3)
    return _save_figure(plt, fig, f"training {tr['model']} ({tr['precision'].get('autocast') or 'fp32'}), {dev}: "
                                  f"{tr.get('images_per_s') or 0:.1f} images/s", path)


# -- command line -------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reenact.benchmarks.gpu_check", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("gpu-check"), help="output folder (gpu_check.json, plots)")
    p.add_argument("--dry-run", action="store_true", help="the same steps on the CPU at tiny sizes (about a minute)")
    p.add_argument("--budget-s", type=float, default=540.0, help="time budget for the whole check (default 540 = "
                   "9 min): steps and models that no longer fit are recorded as skipped, and at the budget's end "
                   "the process records the running step as stopped and exits")
    p.add_argument("--reserve-s", type=float, default=30.0, help="seconds of the budget kept for a step that "
                   "overruns its estimate and for the output (default 30): new work starts only before that")
    p.add_argument("--train-s", type=float, default=None, help="seconds of training (default 120; 4 in a dry run)")
    p.add_argument("--train-model", default="gcgan", help="model to train (default gcgan)")
    p.add_argument("--data", type=Path, default=None, help="a prepared dataset (reenact prepare) for the training "
                   "step (default: prepared here from the fixture clip)")
    p.add_argument("--fixture", type=Path, default=None, help="driver clip (default: the fixture clip from "
                   "$REENACT_SHARED or the shared/ folder beside the clone)")
    p.add_argument("--face-model", type=Path, default=None, help="face_landmarker.task (default: "
                   "$REENACT_FACE_LANDMARKER or the cache)")
    p.add_argument("--parity-frames", type=int, default=None, help="conditions for the FP16 parity (default 120; "
                   "100 in a dry run)")
    p.add_argument("--models", nargs="+", default=None, help="a subset of the registered models (default: all)")
    p.add_argument("--no-plots", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    for name in ("out", "data", "fixture", "face_model"):  # relative to where the command was typed
        if getattr(args, name) is not None:
            setattr(args, name, Path(getattr(args, name)).resolve())
    if args.face_model:
        os.environ["REENACT_FACE_LANDMARKER"] = str(args.face_model)
    os.chdir(REPO)  # the torch.compile child runs ``python -m reenact.benchmarks.generator`` from here
    return Check(args, argv).run()


if __name__ == "__main__":
    sys.exit(main())
