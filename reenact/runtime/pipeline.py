"""The streaming pipeline: capture -> track -> condition/smooth -> generate -> composite -> sink.

Four threads hand frames along bounded queues, so tracking frame k+1 overlaps generating frame k
(MediaPipe, PyTorch, ONNX Runtime and TensorRT all release the GIL while they compute):

* capture: a live source (webcam) writes into a one-slot mailbox that the next stage empties;
  a newer frame replaces an unread one (latest frame wins, stale frames are dropped and counted).
  Every later stage boundary of a live source is such a mailbox too, so a slow generator never
  has stale frames queued behind it. A file source blocks instead, so every frame is processed,
  in order.
* analyse: MediaPipe VIDEO-mode tracking, the model's driving signal (with calibration), the One
  Euro smoother and the condition.
* generate: the backend's per-frame engines.
* output (the calling thread, which on-screen windows need): paste-back and the sink.

Every frame carries its capture timestamp and the wall-clock time it was captured; per-stage
durations and the end-to-end latency (capture to sink done) are recorded per frame and can be
written as JSON (``--stats``). A live source keeps running totals and only the last
``STATS_WINDOW`` frames (for percentiles), so memory stays flat however long it runs.

After a file driver ends, the run is checked before its output is finalised: no face in any
frame, or a ``--face-index`` beyond the faces the driver shows, is an error (the output is
removed); a driver that never completed its calibration is warned about.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ReenactError
from ..utils import atomic_path
from .io import Capture, Sink, Source
from .session import Reenactor

log = logging.getLogger(__name__)

STATS_WINDOW = 5000
"""Per-frame records a live run keeps (its percentiles are over this many last frames)."""
STAGES = ("decode", "track", "condition", "smooth", "warp", "generate", "composite", "encode")
_END = object()


class LatestSlot:
    """A one-item mailbox: ``put`` replaces an unread item (counted as dropped)."""

    def __init__(self):
        self._item: Any = None
        self._has = False
        self._cv = threading.Condition()
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cv:
            if self._has and self._item is not _END:
                self.dropped += 1
            if not (self._has and self._item is _END):
                self._item, self._has = item, True
            self._cv.notify()

    def get(self, timeout: float | None = None) -> Any:
        with self._cv:
            if not self._cv.wait_for(lambda: self._has, timeout):
                raise queue.Empty
            item, self._has = self._item, False
            return item

    def qsize(self) -> int:
        return int(self._has)


@dataclass
class _Item:
    cap: Capture
    times: dict[str, float] = field(default_factory=dict)
    cond: Any = None
    tracked: bool = False
    calibrating: bool = False
    crop: np.ndarray | None = None
    face: bool = False          # the followed driver face was found
    faces: int = -1             # faces the tracker saw in the frame (-1: not tracked, e.g. a script)
    warp: Any = None


@dataclass
class RunStats:
    model: str
    backend: str
    source: str
    sink: str
    weights: str
    frames: list[dict] = field(default_factory=list)
    dropped: int = 0
    wall_s: float = 0.0
    encode_target_s: float = 0.0
    stopped_by: str = "end of input"
    max_queue: int = 0
    window: int | None = None     # keep only the last N per-frame records (live sources); None = all
    count: int = 0                # frames delivered
    with_face: int = 0            # frames in which the followed driver face was found
    calibrating_frames: int = 0
    max_faces: int = -1           # most faces seen in one driver frame (-1: nothing was tracked)
    totals: dict[str, list[float]] = field(default_factory=dict)  # stage -> [sum s, n, max s]

    def __post_init__(self):
        if self.window is not None:
            import collections

            self.frames = collections.deque(self.frames, maxlen=self.window)  # type: ignore[assignment]

    def add(self, rec: dict) -> None:
        """Record one delivered frame: running totals always, the record itself within the window."""
        self.count += 1
        self.with_face += bool(rec.get("face"))
        self.calibrating_frames += bool(rec.get("calibrating"))
        self.max_faces = max(self.max_faces, int(rec.get("faces", -1)))
        for k, v in list(rec["stages"].items()) + [("latency", rec["latency"])]:
            t = self.totals.setdefault(k, [0.0, 0, 0.0])
            t[0] += v
            t[1] += 1
            t[2] = max(t[2], v)
        self.frames.append(rec)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per stage: median / p95 / p99 over the kept records, mean and max over every frame."""
        out = {}
        frames = list(self.frames)
        for k in STAGES + ("latency",):
            v = np.array([f["latency"] if k == "latency" else f["stages"].get(k, np.nan) for f in frames], float)
            v = v[np.isfinite(v)]
            if len(v):
                tot = self.totals.get(k)
                mean = tot[0] / tot[1] if tot and tot[1] else float(v.mean())
                out[k] = {"median_ms": 1e3 * float(np.median(v)), "p95_ms": 1e3 * float(np.percentile(v, 95)),
                          "p99_ms": 1e3 * float(np.percentile(v, 99)), "mean_ms": 1e3 * mean,
                          "max_ms": 1e3 * (tot[2] if tot else float(v.max()))}
        return out

    @property
    def fps(self) -> float:
        return self.count / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {"model": self.model, "backend": self.backend, "weights": self.weights, "source": self.source,
                "sink": self.sink, "frames_out": self.count, "dropped": self.dropped, "wall_s": self.wall_s,
                "sustained_fps": self.fps, "encode_target_s": self.encode_target_s, "stopped_by": self.stopped_by,
                "max_queue": self.max_queue, "frames_with_face": self.with_face,
                "frames_kept": len(self.frames),
                "stages": "decode = reading/decoding the driver frame; track = MediaPipe; condition = driving "
                          "signal + condition tensors; smooth = One Euro + hold/ease; generate = the backend's "
                          "per-frame engines; composite = paste-back at full resolution; encode = the sink "
                          "(video encoding / display); latency = capture to sink done (wall clock)",
                "summary": self.summary(), "frames": list(self.frames)}

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1))
        return path


class Pipeline:
    """Runs one source through a ``Reenactor`` into a sink (see the module docstring)."""

    def __init__(self, reenactor: Reenactor, source: Source, sink: Sink, *, queue_size: int = 2,
                 on_frame: Callable[[dict], None] | None = None, progress: bool = True):
        self.r, self.source, self.sink = reenactor, source, sink
        self.on_frame, self.progress = on_frame, progress
        self.stop = threading.Event()
        self.recalibrate_requested = threading.Event()
        self._errors: list[BaseException] = []
        self.q_in: LatestSlot | queue.Queue = LatestSlot() if source.live else queue.Queue(queue_size + 2)
        # live: every stage boundary is a one-slot mailbox (latest wins); a file keeps every frame
        self.q_cond: LatestSlot | queue.Queue = LatestSlot() if source.live else queue.Queue(queue_size)
        self.q_out: LatestSlot | queue.Queue = LatestSlot() if source.live else queue.Queue(queue_size)
        self.stats = RunStats(reenactor.model.model_id, reenactor.backend.name, source.description,
                              sink.description, reenactor.weights, encode_target_s=reenactor.encode_s,
                              window=STATS_WINDOW if source.live else None)
        self.before_close: Callable[[RunStats], None] | None = None  # checks before the sink is finalised
        self._faces_seen = -1
        if hasattr(sink, "on_key") and sink.on_key is None:  # a window's "c" key recalibrates
            sink.on_key = self._on_key

    def _on_key(self, key: str) -> None:
        if key == "c":
            self.recalibrate_requested.set()

    # -- helpers ------------------------------------------------------------------------------
    def _put(self, q, item) -> bool:
        """Blocking put that gives up when the pipeline stops."""
        if isinstance(q, LatestSlot):
            q.put(item)
            return True
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q):
        while True:
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    return _END

    def _guard(self, fn: Callable[[], None], downstream) -> Callable[[], None]:
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                self._errors.append(e)
                self.stop.set()
            finally:
                self._put(downstream, _END) if not self.stop.is_set() else None
        return run

    # -- stages -------------------------------------------------------------------------------
    def _capture(self):
        it = iter(self.source)
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                cap = next(it)
            except StopIteration:
                break
            item = _Item(cap, {"decode": 0.0 if self.source.live else time.perf_counter() - t0})
            if not self._put(self.q_in, item):
                break
        if getattr(self.source, "disconnected", False):
            self.stats.stopped_by = "the webcam disconnected"

    def _analyse(self):
        r = self.r
        while True:
            item = self._get(self.q_in)
            if item is _END:
                return
            if self.recalibrate_requested.is_set():
                self.recalibrate_requested.clear()
                r.recalibrate()
                log.info("recalibrating: hold a neutral face for %.1f s", r.options.calib_s)
            a = r.analyse(item.cap.image, item.cap.t, item.cap.dblend)
            item.cond, item.tracked, item.calibrating = a.cond, a.signal is not None, a.calibrating
            item.face = getattr(a, "face", None) is not None
            item.faces, self._faces_seen = self._faces_seen, -1
            t0 = time.perf_counter()
            item.warp = r.warp(a)
            a.times["warp"] = time.perf_counter() - t0
            item.times.update(a.times)
            if not self._put(self.q_cond, item):
                return

    def _generate(self):
        while True:
            item = self._get(self.q_cond)
            if item is _END:
                return
            t0 = time.perf_counter()
            item.crop = self.r.generate(item.cond, item.warp)
            item.times["generate"] = time.perf_counter() - t0
            if not self._put(self.q_out, item):
                return

    # -- run ----------------------------------------------------------------------------------
    def run(self) -> RunStats:
        threads = [threading.Thread(target=self._guard(self._capture, self.q_in), name="capture", daemon=True),
                   threading.Thread(target=self._guard(self._analyse, self.q_cond), name="analyse", daemon=True),
                   threading.Thread(target=self._guard(self._generate, self.q_out), name="generate", daemon=True)]
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=self.source.num_frames if not self.source.live else None, unit="frame",
                       desc="reenact", leave=True, dynamic_ncols=True)
        start = time.perf_counter()
        restore = self._count_faces()
        for t in threads:
            t.start()
        ok = False
        try:
            ok = self._drain(bar, start)
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM/SIGHUP (reenact.errors.Terminated)
            self.stats.stopped_by = "interrupted" if type(e) is KeyboardInterrupt else f"terminated ({e})"
            ok = True  # finalise what was written so far
        finally:
            self.stop.set()
            for t in threads:
                t.join(timeout=10)
            restore()
            if bar is not None:
                bar.close()
            self.stats.wall_s = time.perf_counter() - start
            self.stats.dropped = sum(q.dropped for q in (self.q_in, self.q_cond, self.q_out)
                                     if isinstance(q, LatestSlot))
            if ok and not self._errors and self.before_close is not None and self.stats.stopped_by == "end of input":
                try:
                    self.before_close(self.stats)
                except BaseException as e:  # noqa: BLE001 - the run is refused: remove its output
                    self._errors.append(e)
            if ok and not self._errors:
                self.sink.close()
            else:
                self.sink.abort()
        if self._errors:
            raise self._errors[0]
        return self.stats

    def _count_faces(self) -> Callable[[], None]:
        """Count the faces the reenactor's tracker sees in each frame (``--face-index`` checks),
        by wrapping its ``track`` for the run; returns the function that unwraps it."""
        r = self.r
        orig = getattr(r, "track", None)
        if orig is None or "track" in vars(r):
            return lambda: None

        def track(frame, t, *args, **kw):
            trk = orig(frame, t, *args, **kw)
            self._faces_seen = len(getattr(trk, "faces", ()) or ())
            return trk

        r.track = track  # type: ignore[method-assign]
        return lambda: vars(r).pop("track", None)

    def _drain(self, bar, start: float) -> bool:
        r, n = self.r, 0
        last = start
        fps = 0.0
        while True:
            item = self._get(self.q_out)
            if item is _END:
                if self._errors:
                    return False
                return True
            t0 = time.perf_counter()
            image = r.composite(item.crop, item.warp)
            t1 = time.perf_counter()
            latency_so_far = t1 - item.cap.wall
            now = t1
            fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if n else 0.0
            last = now
            keep = self.sink.write(image, item.cap.t, {"fps": fps, "latency": latency_so_far, "model": r.model.model_id,
                                                        "backend": r.backend.name, "calibrating": item.calibrating})
            t2 = time.perf_counter()
            item.times.update(composite=t1 - t0, encode=t2 - t1)
            self.stats.max_queue = max(self.stats.max_queue, self.q_in.qsize() + self.q_cond.qsize() +
                                       self.q_out.qsize())
            rec = {"index": item.cap.index, "t": item.cap.t, "tracked": item.tracked, "calibrating": item.calibrating,
                   "face": item.face, "faces": item.faces, "stages": item.times, "latency": t2 - item.cap.wall}
            self.stats.add(rec)
            if self.on_frame is not None:
                self.on_frame(rec)
            n += 1
            if bar is not None:
                bar.update(1)
            if not keep:
                self.stats.stopped_by = "user quit"
                return True


def check_file_driver(reenactor: Reenactor, source: Source) -> Callable[[RunStats], None]:
    """The checks of a finished file driver (video or image folder), run before its output is
    finalised: a face in at least one frame, ``--face-index`` within the faces it shows; a
    calibration that never completed is warned about (the whole output shows the neutral photo)."""
    what = source.description or "the driver"

    def check(stats: RunStats) -> None:
        if stats.count == 0:
            raise ReenactError(f"no frame of {what} could be processed")
        i = getattr(getattr(reenactor, "options", None), "face_index", None) or 0
        if stats.with_face == 0:
            if i > 0 and stats.max_faces > 0:
                raise ReenactError(f"--face-index {i} asked for, but {what} shows at most {stats.max_faces} "
                                   f"face(s) in a frame (0 = largest)")
            raise ReenactError(f"no face was found in any of the {stats.count} frame(s) of {what}; a driver "
                               f"video must show a face")
        if stats.calibrating_frames >= stats.count:
            log.warning("the driver never completed its %.1f s neutral calibration (%d of %d frames with a face): "
                        "every output frame shows the target's neutral face; lower --calibrate",
                        getattr(reenactor.options, "calib_s", float("nan")), stats.with_face, stats.count)
    return check


def run_pipeline(reenactor: Reenactor, source: Source, sink: Sink, *, stats_path: str | Path | None = None,
                 progress: bool = True, on_frame: Callable[[dict], None] | None = None) -> RunStats:
    """Run to the end of the source (or until the sink quits); writes ``stats_path`` if given.

    A file driver (video or image folder) is checked before its output is finalised
    (``check_file_driver``); a failed check removes the output and raises ``ReenactError``. A live
    source without a face is normal (the target holds, then eases to neutral)."""
    if source.size is not None and min(source.size) < 16:
        raise ReenactError(f"driver frames are {source.size[0]}x{source.size[1]}: too small")
    p = Pipeline(reenactor, source, sink, on_frame=on_frame, progress=progress)
    if not source.live and getattr(source, "has_pixels", True) and not getattr(source, "scripted", False):
        p.before_close = check_file_driver(reenactor, source)
    stats = p.run()
    if getattr(source, "truncated", False):
        log.warning("%s ended early: only %d frame(s) could be decoded (the file is truncated or corrupt); the "
                    "output covers those", source.description, stats.count)
    if stats_path is not None:
        stats.write(stats_path)
    return stats
