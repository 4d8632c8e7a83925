"""End to end and per stage: the streaming runtime (``reenact.runtime.pipeline``) on real video.

For each model, each backend and each driver size (640x480 and 1280x720 by default) the part
runs ``Pipeline(reenactor, VideoFileSource(driver), FileSink(out.mp4))``, exactly what
``reenact run driver.mp4 --out out.mp4`` does, and reads the per-frame records the runtime keeps
(``RunStats.frames``). Nothing is re-timed here: every figure is the runtime's own clock.

The inputs:

* **driver**: a face video (default: the test fixture ``liveportrait_driving_d18.mp4`` from the
  ``shared/`` folder next to the clone or ``$REENACT_SHARED``; any other with ``--driver``),
  scaled to each size's height and padded to its width, written as H.264 into a temporary folder
  and decoded again by the runtime (looped back and forth when it is shorter than the run);
* **target**: the built-in photo (scikit-image's astronaut) scaled and padded to the same size, so
  the composited output frame is the driver's size;
* **weights**: the shipped weights when a model has them and no ``--width`` is given, else an
  untrained network of width ``--width`` (default 1.0, the paper sizes; time does not depend on
  the weight values);
* **calibration**: by default the driver's first frames calibrate the session before the run
  (``Reenactor.calibrate_from``), so every timed frame takes the full per-frame path;
  ``--calibration stream`` calibrates on the stream as ``reenact run`` does (the frames of the
  first second then hold the target neutral, but still run every stage).

What is reported per configuration, warm-up frames excluded:

* **end to end**: from the start of decoding a driver frame to its composited frame having been
  handed to the encoder (the runtime's ``latency``, which starts when the decoded frame leaves the
  reader, plus ``decode``). The four pipeline threads overlap frames, so this includes the time a
  frame waits in the queues between stages while earlier frames are processed;
* **serial**: the sum of the eight stage times of one frame: the cost of a frame processed alone,
  without queueing or overlap;
* **stages**: decode, track, condition, smooth, warp, generate, composite, encode (see ``STAGE_INCLUDES``);
* **sustained fps**: timed frames / wall time from the last warm-up frame's output to the last
  frame's output: the throughput with the stages overlapping.

A file source lets the reader run ahead and fill the queues; the benchmark keeps at most
``--max-in-flight`` frames (default 4, one per pipeline thread) between the reader and the sink so
that a slow model's end-to-end figure measures the pipeline rather than a backlog of queued
frames (``--max-in-flight 0``: no limit, the runtime's own file behaviour). The time the reader
waits for room is not counted in ``decode`` or in the end-to-end latency. Stage times are wall
clock on their own threads, so on a machine with few cores they include time lost to the other
stages running concurrently.
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .common import REPO, fmt, markdown_table, plot_cdf, summarize

log = logging.getLogger("reenact.benchmarks.pipeline")

BACKENDS = ("pytorch", "onnxruntime", "tensorrt")
RESOLUTIONS = ("640x480", "1280x720")
STAGES = ("decode", "track", "condition", "smooth", "warp", "generate", "composite", "encode")
FIXTURE = Path("data") / "videos" / "fixtures" / "liveportrait_driving_d18.mp4"

STAGE_INCLUDES = {
    "decode": "reading and decoding the driver frame (PyAV, H.264 to RGB)",
    "track": "MediaPipe Face Landmarker, VIDEO mode, on the full driver frame",
    "condition": "the model's driving signal from the tracked face and the condition tensors (for cet2 this "
                 "includes its driver-encoder engine, cet2_encode, which reads the aligned driver crop)",
    "smooth": "One Euro smoothing with the hold / ease policy (and the target's moved mesh)",
    "warp": "the mesh warp's backward map of the photo's warp region and its hole mask (and, for models with a "
            "generator, the warped target crop)",
    "generate": "the backend's per-frame engines and the crop's conversion to uint8 on the host (none for warp)",
    "composite": "the photo remapped by the warp at full resolution, the mouth interior, the generator's residual "
                 "(or, with --paste replace, the generated crop pasted back)",
    "encode": "the file sink: H.264 encoding (libx264, veryfast, CRF 18) of the composited frame",
}

INCLUDES = {
    "end_to_end": "decode start to the composited frame handed to the encoder and encoded: decode + the "
                  "runtime's latency (reader to sink done), including the time spent queued between the "
                  "pipeline's threads",
    "serial": "the sum of the eight stage times of one frame: the cost of a frame processed alone, no "
              "queueing, no overlap",
    "sustained_fps": "timed frames / wall time between the last warm-up frame's output and the last frame's "
                     "output (stages overlapping on the pipeline's four threads)",
    **{f"stage {k}": v for k, v in STAGE_INCLUDES.items()},
}


# -- options ------------------------------------------------------------------------------------------
def _has(parser: argparse.ArgumentParser, option: str) -> bool:
    return option in parser._option_string_actions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "pipeline part", "--warmup and --iters count driver frames here (warm-up frames run every stage and are "
        "excluded; default 10 and 50 on the CPU, 200 on a GPU); --width and --budget apply as well: --width "
        "default: the shipped weights where a model has them, else an untrained width 1.0 network (0.25 with "
        "--quick); --budget: seconds of frames per configuration (default 10 on the CPU, 60 on a GPU, 3 with "
        "--quick)")
    # --width and --budget mean the same for both parts; whichever part registers first defines them
    if not _has(parser, "--width"):
        g.add_argument("--width", type=float, default=None, help="model width multiplier (see the group text)")
    if not _has(parser, "--budget"):
        g.add_argument("--budget", type=float, default=None, help="seconds per configuration (see the group text)")
    if not _has(parser, "--min-iters"):
        g.add_argument("--min-iters", type=int, default=3, help="timed frames per configuration at least (default 3)")
    g.add_argument("--resolutions", nargs="+", default=None, metavar="WxH",
                   help="driver (and output) frame sizes (default 640x480 1280x720; 640x480 with --quick)")
    g.add_argument("--pipeline-backends", nargs="+", default=None, choices=BACKENDS,
                   help="backends of the pipeline part (default: --backends where they name runtime backends, "
                        "else pytorch onnxruntime tensorrt; unavailable ones are recorded as skipped)")
    g.add_argument("--driver", type=Path, default=None,
                   help="driver face video (default: the test fixture liveportrait_driving_d18.mp4 from the "
                        "shared/ folder next to the clone or $REENACT_SHARED)")
    g.add_argument("--max-in-flight", type=int, default=4,
                   help="frames between the reader and the sink at most (default 4, one per pipeline thread; "
                        "0: no limit, the reader fills the queues)")
    g.add_argument("--calibration", choices=("before", "stream"), default="before",
                   help="calibrate on the driver's first frames before the run (default) or on the stream, "
                        "as reenact run does")


def _parse_res(s: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in s.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--resolutions: expected WxH such as 640x480, got {s!r}") from None
    if w < 64 or h < 64:
        raise SystemExit(f"--resolutions: {s} is too small")
    return w, h


def default_driver() -> Path | None:
    """The fixture video from ``$REENACT_SHARED`` or the ``shared/`` folder beside the clone."""
    roots = [Path(os.environ["REENACT_SHARED"])] if os.environ.get("REENACT_SHARED") else []
    roots.append(REPO.parent / "shared")
    for r in roots:
        if (r / FIXTURE).is_file():
            return r / FIXTURE
    return None


def settings(args: argparse.Namespace) -> dict[str, Any]:
    cuda = args.device.startswith("cuda")
    quick = bool(args.quick)
    backends = args.pipeline_backends
    if backends is None:
        named = [b for b in (args.backends or []) if b in BACKENDS or b.startswith("tensorrt")]
        backends = list(dict.fromkeys("tensorrt" if b.startswith("tensorrt") else b for b in named)) or list(BACKENDS)
    driver = args.driver or default_driver()
    if driver is None:
        raise SystemExit("pipeline part: no driver video; pass --driver PATH (a video with one face) or set "
                         "REENACT_SHARED to the folder holding data/videos/fixtures/")
    return {
        "models": args.models,
        "backends": backends,
        "resolutions": args.resolutions or (["640x480"] if quick else list(RESOLUTIONS)),
        "width": args.width if args.width is not None else (0.25 if quick else None),
        "device": args.device,
        "threads": args.threads,
        "warmup": args.warmup if args.warmup is not None else (1 if quick else 10),
        "iters": args.iters if args.iters is not None else (5 if quick else 200 if cuda else 50),
        "min_iters": args.min_iters,
        "budget_s": args.budget if args.budget is not None else (3.0 if quick else 60.0 if cuda else 10.0),
        "max_in_flight": args.max_in_flight,
        "calibration": args.calibration,
        "calibration_frames": 15,
        # the default fixture is named relative to the shared folder (no machine-specific path in the results)
        "driver": str(FIXTURE) if args.driver is None else str(driver),
        "_driver_path": Path(driver),
        "sink": "file (H.264 MP4)",
        "quick": quick,
    }


# -- inputs -------------------------------------------------------------------------------------------------
def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` to fit ``size`` = (W, H) keeping its aspect, pad the rest by replicating the edges."""
    import cv2

    w, h = size
    ih, iw = image.shape[:2]
    s = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
    im = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    left, top = (w - nw) // 2, (h - nh) // 2
    return cv2.copyMakeBorder(im, top, h - nh - top, left, w - nw - left, cv2.BORDER_REPLICATE)


def make_driver(src: Path, size: tuple[int, int], frames: int, path: Path) -> dict[str, Any]:
    """``frames`` frames of ``src`` fitted to ``size``, written as H.264; looped back and forth if short."""
    from reenact.io.video import VideoWriter, read_all

    clip = read_all(src, max_frames=frames)
    fps = 30.0
    with VideoWriter(path, fps) as w:
        order = list(range(len(clip))) + list(range(len(clip) - 2, 0, -1)) or [0]
        for i in range(frames):
            w.write(fit(clip[order[i % len(order)]].image, size), i / fps)
    return {"path": path, "fps": fps, "frames": frames, "source_frames": len(clip)}


class _Admitted:
    """A driver file source that keeps at most ``max_in_flight`` frames between itself and the sink and
    stops at the frame count or budget decided after the first frame. The time it waits for room is
    recorded per frame (``waited``) so that it can be taken out of the pipeline's ``decode``."""

    live = False
    audio_path = None

    def __init__(self, inner, s: dict[str, Any]):
        self.inner, self.s = inner, s
        self.fps, self.size, self.num_frames = inner.fps, inner.size, inner.num_frames
        self.description = inner.description
        self.cv = threading.Condition()
        self.limit = s["warmup"] + s["iters"]
        self.warmup = s["warmup"]
        self.admitted = self.done = 0
        self.waited: dict[int, float] = {}
        self.done_at: list[float] = []
        self.start: float | None = None
        self.stopping = threading.Event()
        self.pipeline_stop: threading.Event | None = None  # the pipeline's own stop flag (an error downstream)

    def _room(self) -> bool:
        m = self.s["max_in_flight"]
        return self.stopping.is_set() or m <= 0 or self.admitted - self.done < m

    def _stop(self) -> bool:
        return self.stopping.is_set() or (self.pipeline_stop is not None and self.pipeline_stop.is_set())

    def __iter__(self) -> Iterator[Any]:
        it = iter(self.inner)
        while True:
            t0 = time.perf_counter()
            with self.cv:
                while not self.cv.wait_for(lambda: self._room() or self._stop(), timeout=0.1):
                    pass
                if self._stop() or self.admitted >= self.limit:
                    return
                if self.start is not None and self.admitted >= self.warmup + self.s["min_iters"] \
                        and time.perf_counter() - self.start > self.s["budget_s"]:
                    return
            waited = time.perf_counter() - t0
            try:
                cap = next(it)
            except StopIteration:
                return
            self.waited[cap.index] = waited
            if self.start is None:
                self.start = time.perf_counter()
            self.admitted += 1
            yield cap

    def on_frame(self, rec: dict) -> None:
        """Called by the pipeline's output thread when a frame has been handed to the sink."""
        with self.cv:
            self.done += 1
            self.done_at.append(time.perf_counter())
            if self.done == 1:  # cut warm-up and timed frames to the budget, estimated from the first frame
                est = max(max(rec["stages"].values()), 1e-4)  # its slowest stage: the pipeline's period
                room = self.s["budget_s"] / est
                self.warmup = min(self.s["warmup"], max(1, int(room * 0.2)))
                iters = max(self.s["min_iters"], min(self.s["iters"], int(room * 0.8)))
                self.limit = self.warmup + iters
            self.cv.notify_all()

    def close(self) -> None:
        self.stopping.set()
        with self.cv:
            self.cv.notify_all()
        self.inner.close()


def _repo_relative(path: str) -> str:
    """A weights path inside the repository as a relative path (others, and "untrained", unchanged)."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return path


# -- measuring ------------------------------------------------------------------------------------------------
def _stats(samples_ms: list[float], keep_samples: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = summarize(samples_ms)
    if keep_samples:
        out["samples_ms"] = [round(x, 3) for x in samples_ms]
    return out


def run_one(reenactor, driver: dict[str, Any], s: dict[str, Any], work: Path, tag: str) -> dict[str, Any]:
    """One configuration through the runtime's pipeline; the runtime's per-frame records, summarised."""
    from reenact.runtime.io import FileSink, VideoFileSource
    from reenact.runtime.pipeline import Pipeline

    src = _Admitted(VideoFileSource(driver["path"]), s)
    sink = FileSink(work / f"out-{tag}.mp4", driver["fps"])
    p = Pipeline(reenactor, src, sink, on_frame=src.on_frame, progress=False)
    src.pipeline_stop = p.stop
    t0 = time.perf_counter()
    try:
        stats = p.run()
    finally:
        src.close()
    wall = time.perf_counter() - t0
    frames = stats.frames
    for f in frames:  # the benchmark's own wait for room is not decoding
        f["stages"]["decode"] = max(0.0, f["stages"]["decode"] - src.waited.get(f["index"], 0.0))
    warm = min(src.warmup, max(len(frames) - 1, 0))
    timed = frames[warm:]
    if not timed:
        raise RuntimeError("no frame came out of the pipeline")
    e2e = [1e3 * (f["latency"] + f["stages"]["decode"]) for f in timed]
    serial = [1e3 * sum(f["stages"].get(k, 0.0) for k in STAGES) for f in timed]
    span = src.done_at[-1] - src.done_at[warm - 1] if warm >= 1 else None
    out_path = work / f"out-{tag}.mp4"
    return {
        "status": "ok", "warmup": warm, "n": len(timed), "frames_run": len(frames),
        "end_to_end": _stats(e2e), "serial": _stats(serial),
        "stages": {k: _stats([1e3 * f["stages"][k] for f in timed], keep_samples=False)
                   for k in STAGES if all(k in f["stages"] for f in timed)},
        "sustained_fps": len(timed) / span if span and span > 0 else None,
        "first_frame_ms": 1e3 * (frames[0]["latency"] + frames[0]["stages"]["decode"]),
        "tracked_timed": sum(bool(f["tracked"]) for f in timed),
        "calibrating_timed": sum(bool(f["calibrating"]) for f in timed),
        "max_queue": stats.max_queue, "dropped": stats.dropped, "wall_s": wall,
        "output_bytes": out_path.stat().st_size if out_path.is_file() else None,
        "weights": _repo_relative(stats.weights), "encode_target_ms": 1e3 * stats.encode_target_s,
    }


def bench_model(mid: str, s: dict[str, Any], drivers: dict[str, dict[str, Any]], work: Path) -> list[dict[str, Any]]:
    from reenact.assets import default_target_path
    from reenact.backends import available_backends
    from reenact.io.images import load_image
    from reenact.runtime.session import Reenactor, default_weights
    from reenact.runtime.target import prepare_target

    shipped = default_weights(mid) if s["width"] is None else None
    width = None if shipped else (s["width"] or 1.0)
    photo = load_image(default_target_path())
    avail = available_backends()
    rows = []
    from reenact.models import build_model

    has_engines = bool(build_model(mid).engines())
    backends = s["backends"] if has_engines else ["pytorch"]  # no network: one run, no backend runs anything
    for b in backends:
        base = {"model": mid, "backend": b if has_engines else "none"}
        if b not in avail:
            why = ("needs an NVIDIA GPU with CUDA and TensorRT" if b == "tensorrt"
                   else "onnxruntime is not installed" if b == "onnxruntime" else "unavailable")
            rows += [{**base, "resolution": res, "status": "skipped", "reason": why} for res in s["resolutions"]]
            log.info("%s %s: skipped (%s)", mid, b, why)
            continue
        first = None
        for res in s["resolutions"]:
            size = _parse_res(res)
            row = {**base, "resolution": res}
            t0 = time.perf_counter()
            r = None
            try:
                target = fit(photo, size)
                if first is None:
                    r = Reenactor.create(mid, target, width=width, backend=b,
                                         device=s["device"] if b == "pytorch" else None)
                    first = r
                    row["setup_s"] = time.perf_counter() - t0  # weights, target analysis, backend (ONNX export)
                else:  # the same model and backend, another target photo
                    tgt = prepare_target(target, first.model.res, template=first.template)
                    r = Reenactor(first.model, tgt, first.backend, template=first.template, weights=first.weights)
                    row["setup_s"] = time.perf_counter() - t0
                if s["calibration"] == "before":
                    from reenact.io.video import read_all

                    calib = read_all(drivers[res]["path"], max_frames=s["calibration_frames"])
                    row["calibrated_on"] = r.calibrate_from([(f.image, f.t) for f in calib])
                row.update(run_one(r, drivers[res], s, work, f"{mid}-{b}-{res}"))
                row["width"] = r.model.cfg.width
                row["res"] = r.model.res
                row["weights_shipped"] = shipped is not None
                log.info("%s %s %s: end to end median %.1f ms, serial %.1f ms, %.2f fps (n=%d)", mid, b, res,
                         row["end_to_end"]["median_ms"], row["serial"]["median_ms"], row["sustained_fps"] or 0,
                         row["n"])
            except Exception as e:
                log.error("%s %s %s failed:\n%s", mid, b, res, traceback.format_exc())
                row.update(status="error", reason=f"{type(e).__name__}: {e}")
            finally:
                if r is not None:
                    r.close()
            row["wall_s"] = time.perf_counter() - t0
            rows.append(row)
    return rows


# -- the part -------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace, env: dict[str, Any]) -> dict[str, Any]:
    import torch

    from reenact.models import list_models

    s = settings(args)
    driver_path = s.pop("_driver_path")
    s["models"] = s["models"] or list_models()
    torch.set_num_threads(s["threads"])
    t_start = time.perf_counter()
    result: dict[str, Any] = {"settings": s, "includes": INCLUDES, "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        work = Path(tmp)
        drivers = {}
        n = max(s["warmup"] + s["iters"], s["calibration_frames"])
        for res in s["resolutions"]:
            drivers[res] = make_driver(driver_path, _parse_res(res), n, work / f"driver-{res}.mp4")
        src_frames = drivers[s["resolutions"][0]]["source_frames"]
        result["driver"] = {"name": Path(s["driver"]).name, "frames_written": n, "fps": 30.0,
                            "source_frames_used": src_frames}
        for mid in s["models"]:
            log.info("model %s", mid)
            result["runs"] += bench_model(mid, s, drivers, work)
    result["seconds"] = time.perf_counter() - t_start
    return result


# -- report -----------------------------------------------------------------------------------------------------
def _ok(result: dict[str, Any]):
    return [r for r in result["runs"] if r["status"] == "ok"]


def _weights(r: dict[str, Any]) -> str:
    if r.get("model") == "warp":
        return "no network"
    return "shipped" if r.get("weights_shipped") else f"untrained w{fmt(float(r.get('width', 1.0)), 2)}"


def markdown(result: dict[str, Any], env: dict[str, Any]) -> str:
    s, ok = result["settings"], _ok(result)
    d = result.get("driver") or {}
    out = ["\n## Pipeline: end to end and per stage\n\n"]
    calib = (f"before the run on the first {s['calibration_frames']} driver frames" if s["calibration"] == "before"
             else "on the stream (the first second holds the target neutral, every stage still runs)")
    used, written = d.get("source_frames_used"), d.get("frames_written")
    frames = f"{written} frames" + (f" (its first {used}, looped back and forth)" if used and used < written else "")
    inflight = (f"at most {s['max_in_flight']} frames between the reader and the sink"
                if s["max_in_flight"] > 0 else "no limit on frames in flight (the reader fills the queues)")
    out.append(
        f"The streaming runtime (`reenact.runtime.pipeline.Pipeline`, four threads) reading a driver video file "
        f"and writing an H.264 file, device `{s['device']}`, {s['threads']} threads. Driver: `{d.get('name')}` "
        f"({frames} at {fmt(d.get('fps'))} fps) scaled and padded to each size; the target photo (the built-in "
        f"astronaut) is scaled and padded to the same size, so the output frame is the driver's size. "
        f"Session calibrated {calib}; "
        f"{inflight}. Per configuration: up to {s['warmup']} warm-up frames (run, excluded) and up to {s['iters']} "
        f"timed frames, cut to fit {fmt(s['budget_s'])} s (estimated from the first frame; never below 1 warm-up "
        f"and {s['min_iters']} timed frames); `n` = timed frames. Whole part: "
        f"{fmt(result.get('seconds', 0) / 60, 2)} min.\n\n"
        "- **end to end**: decode start to the composited frame encoded (decode + the runtime's capture-to-sink "
        "latency), including the time the frame waits in the queues between threads while earlier frames are "
        "processed;\n"
        "- **serial**: the sum of the eight stage times of one frame (one frame processed alone, no queueing, "
        "no overlap);\n"
        "- **fps**: sustained throughput with the stages overlapping (timed frames / their wall time); the file "
        "is read as fast as the pipeline takes frames, not paced at the driver's frame rate.\n\n"
        "With the reader always ahead, end to end is about frames in flight / fps (Little's law): it measures a "
        "saturated pipeline. A live camera slower than the pipeline's fps keeps the queues empty, and its frames "
        "see about the serial figure.\n\n")
    rows = [[r["model"], r["backend"], r["resolution"], _weights(r), r["end_to_end"]["median_ms"],
             r["end_to_end"]["p95_ms"], r["end_to_end"]["p99_ms"], r["serial"]["median_ms"], r["serial"]["p95_ms"],
             r["serial"]["p99_ms"], r["sustained_fps"], r["n"]] for r in ok]
    out.append(markdown_table(["model", "backend", "driver", "weights", "e2e median ms", "e2e p95", "e2e p99",
                               "serial median ms", "serial p95", "serial p99", "fps", "n"], rows,
                              "llllrrrrrrrr") if rows else "Nothing was measured.\n")
    if rows:
        out.append("\n### Per stage (median ms, timed frames)\n\n")
        srows = [[r["model"], r["backend"], r["resolution"], *[r["stages"].get(k, {}).get("median_ms") for k in STAGES],
                  r["stages"].get("generate", {}).get("p99_ms"), r["tracked_timed"], r["n"]] for r in ok]
        out.append(markdown_table(["model", "backend", "driver", *STAGES, "generate p99", "tracked", "n"], srows,
                                  "lll" + "r" * (len(STAGES) + 3)))
        calib = [r for r in ok if r.get("calibrating_timed")]
        if calib:
            out.append("\nTimed frames still calibrating (target held neutral, every stage run): " + "; ".join(
                f"{r['model']} {r['backend']} {r['resolution']}: {r['calibrating_timed']} of {r['n']}"
                for r in calib) + ".\n")
        if any(r["n"] < 20 for r in ok):
            out.append("\nWith fewer than 20 timed frames (the slow models, cut to the budget), p95 and p99 are "
                       "interpolated between the slowest few frames: read them as the worst frames seen.\n")
        out.append("\n### Set-up, once per stream (not in the figures above)\n\n"
                   "The first size of a model and backend includes loading the weights and opening the backend "
                   "(ONNX export and sessions for onnxruntime); the next sizes reuse them. Every size analyses "
                   "its target photo and encodes it once (`target encode`). `first frame` is the first frame's "
                   "end-to-end time (lazy initialisation), a warm-up frame.\n\n")
        out.append(markdown_table(["model", "backend", "driver", "set-up s", "target encode ms", "first frame ms"],
                                  [[r["model"], r["backend"], r["resolution"], r.get("setup_s"),
                                    r.get("encode_target_ms"), r.get("first_frame_ms")] for r in ok], "lllrrr"))
    bad = [r for r in result["runs"] if r["status"] != "ok"]
    if bad:
        out.append("\n### Not measured\n\n")
        reasons: dict[tuple[str, str], list[str]] = {}
        for r in bad:
            reasons.setdefault((r["backend"], r["status"] + ": " + r["reason"]), [])
            key = f"{r['model']} {r['resolution']}"
            reasons[(r["backend"], r["status"] + ": " + r["reason"])].append(key)
        out += [f"- {b} ({', '.join(k)}): {why}\n" for (b, why), k in reasons.items()]
    out.append("\n### What each stage includes\n\n")
    out += [f"- {k}: {v}.\n" for k, v in STAGE_INCLUDES.items()]
    out.append("\nStage times are wall clock on the stage's own thread: with the stages overlapping, on a machine "
               "with few cores they include time lost to the other threads.\n")
    return "".join(out)


def plots(result: dict[str, Any], prefix: Path) -> list[Path]:
    ok = _ok(result)
    if not ok:
        return []
    s = result["settings"]
    paths = [_plot_stages(f"{prefix}_stages.png", ok, s)]
    panels: dict[str, dict[str, list[float]]] = {}
    for r in ok:
        p = panels.setdefault(r["model"], {})
        p[f"{r['backend']} {r['resolution']} end to end"] = r["end_to_end"]["samples_ms"]
        p[f"{r['backend']} {r['resolution']} serial"] = r["serial"]["samples_ms"]
    paths.append(plot_cdf(f"{prefix}_pipeline_cdf.png", panels, f"pipeline latency per frame ({s['device']}, warm-up excluded)"))
    return paths


def _plot_stages(path: str, ok: list[dict[str, Any]], s: dict[str, Any]) -> Path:
    from reenact.utils import atomic_path

    from .common import _pyplot

    plt = _pyplot()
    rows = sorted(ok, key=lambda r: (r["resolution"], r["model"], r["backend"]))[::-1]
    labels = [f"{r['model']} {r['backend']} {r['resolution']}" for r in rows]
    colors = {k: plt.cm.tab10(i) for i, k in enumerate(STAGES)}
    fig, axes = plt.subplots(1, 2, figsize=(14, 1.9 + 0.36 * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 2]})
    ax, axf = axes[0]
    y = np.arange(len(rows))
    left = np.zeros(len(rows))
    leftf = np.zeros(len(rows))
    total = np.array([sum(r["stages"].get(k, {}).get("median_ms", 0.0) for k in STAGES) for r in rows])
    for k in STAGES:
        v = np.array([r["stages"].get(k, {}).get("median_ms", 0.0) for r in rows])
        ax.barh(y, v, left=left, color=colors[k], label=k, height=0.7)
        axf.barh(y, 100 * v / np.maximum(total, 1e-9), left=leftf, color=colors[k], height=0.7)
        left += v
        leftf += 100 * v / np.maximum(total, 1e-9)
    e2e = np.array([r["end_to_end"]["median_ms"] for r in rows])
    ax.scatter(e2e, y, marker="|", s=160, color="black", zorder=3, label="end-to-end median")
    for yi, tot, e in zip(y, total, e2e):
        ax.annotate(f" stacked {fmt(float(tot))}, e2e {fmt(float(e))} ms", (max(tot, e), yi), va="center", fontsize=7)
    ax.set_xlim(0, 1.25 * max(float(total.max()), float(e2e.max())))
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("milliseconds per frame")
    ax.grid(axis="x", alpha=0.3)
    axf.set_yticks(y)
    axf.set_yticklabels([])
    axf.set_xlim(0, 100)
    axf.set_xlabel("share of the serial time per stage (%)")
    axf.grid(axis="x", alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8, frameon=False)
    fig.suptitle(f"pipeline stage breakdown ({s['device']}, warm-up excluded): stacked stage medians", fontsize=10)
    fig.tight_layout(rect=(0, 0.6 / (1.9 + 0.36 * len(rows)), 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)
