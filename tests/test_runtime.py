"""The streaming runtime on real frames: pipeline, stats, live sources, robustness, the default job."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from reenact.cli import main
from reenact.errors import NoFaceError, ReenactError
from reenact.io.video import VideoReader, VideoWriter, read_all
from reenact.runtime import Reenactor
from reenact.runtime.io import Capture, NullSink, Source, open_source
from reenact.runtime.pipeline import STAGES, LatestSlot, run_pipeline
from reenact.runtime.scripts import SCRIPTS, ExpressionScript

from .conftest import FIXTURE_VIDEO, IMAGES

GROUP = IMAGES / "insightface_t1.jpg"


@pytest.fixture(scope="module")
def tiny():
    """A tiny untrained GC-GAN session on the built-in photo (PyTorch, CPU)."""
    r = Reenactor.create("gcgan", width=0.125, backend="pytorch")
    yield r
    r.close()


def _frames(n: int | None = None):
    return read_all(FIXTURE_VIDEO, max_frames=n)


class ReplaySource(Source):
    """A live-style source: real fixture frames at ``fps`` with wall-clock timestamps, looping."""

    live = True

    def __init__(self, frames, n: int, fps: float):
        self.frames, self.n, self.fps = frames, n, fps
        self.description = f"replay at {fps} fps"

    def __iter__(self):
        t0 = time.perf_counter()
        for i in range(self.n):
            due = t0 + i / self.fps
            while (now := time.perf_counter()) < due:
                time.sleep(min(due - now, 0.002))
            yield Capture(i, now - t0, self.frames[i % len(self.frames)].image, wall=now)


def test_whole_pipeline_on_the_fixture_video(tmp_path):
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    rc = main(["run", "--driver", str(FIXTURE_VIDEO), "--width", "0.125", "--backend", "pytorch",
               "--out", str(out), "--stats", str(stats), "--no-progress"])
    assert rc == 0
    with VideoReader(FIXTURE_VIDEO) as src:
        n_src, fps, dur = sum(1 for _ in src), src.fps, src.duration
    with VideoReader(out) as v:
        frames = list(v)
        assert len(frames) == n_src
        assert v.size == (512, 512)  # the built-in target photo's full resolution
        assert v.fps == pytest.approx(fps, rel=1e-3)
        assert frames[-1].t == pytest.approx((n_src - 1) / fps, abs=1e-3)
        if dur is not None:
            assert v.duration == pytest.approx(dur, abs=0.1)
    s = json.loads(stats.read_text())
    assert s["frames_out"] == n_src == len(s["frames"]) and s["dropped"] == 0
    assert [f["index"] for f in s["frames"]] == list(range(n_src))  # every frame, in order
    for f in s["frames"]:
        assert set(f["stages"]) == set(STAGES) and all(v >= 0 for v in f["stages"].values())
        # latency runs from the decoded frame leaving the reader to the sink: every stage but decode
        assert f["latency"] >= sum(v for k, v in f["stages"].items() if k != "decode") - 1e-3
    assert s["frames"][0]["calibrating"] and not s["frames"][-1]["calibrating"]
    assert set(s["summary"]) >= set(STAGES) | {"latency"}


def test_live_source_faster_than_the_generator_stays_bounded():
    """1,000 frames at 250 fps into a session that manages far fewer: stale frames are dropped,
    queues stay bounded and latency does not grow."""
    r = Reenactor.create("lmklabel", width=0.25, backend="pytorch")  # ~10x slower than the source
    try:
        stats = run_pipeline(r, ReplaySource(_frames(60), 1000, 250.0), NullSink(), progress=False)
    finally:
        r.close()
    lat = np.array([f["latency"] for f in stats.frames])
    assert stats.dropped > 0 and len(stats.frames) + stats.dropped <= 1000
    assert stats.max_queue <= 5
    k = max(len(lat) // 4, 3)
    first, last = np.median(lat[k:2 * k]), np.median(lat[-k:])
    assert last < 2.0 * first + 0.05, f"latency grew from {first:.3f} s to {last:.3f} s"
    idx = [f["index"] for f in stats.frames]
    assert idx == sorted(idx)


def test_latest_slot_keeps_only_the_newest():
    s = LatestSlot()
    for i in range(5):
        s.put(i)
    assert s.get() == 4 and s.dropped == 4 and s.qsize() == 0


def test_frames_without_a_face_hold_then_ease_to_neutral(tmp_path, tiny):
    frames = _frames(96)
    blank = np.full_like(frames[0].image, 90)
    gap = range(60, 90)  # 1 s without a face, after the 1 s calibration
    spliced = tmp_path / "spliced.mp4"
    with VideoWriter(spliced, 30) as w:
        for f in frames:
            w.write(blank if f.index in gap else f.image)
    tiny.recalibrate()
    outs = [tiny.process(f.image, f.t) for f in read_all(spliced)]
    assert all(outs[i].tracked for i in (50, 59, 92)) and not any(outs[i].tracked for i in gap)
    neutral = tiny.signal.neutral()["motion"]
    moving = np.abs(outs[59].signal["motion"] - neutral).max()
    assert moving > 0.01
    # held exactly for 200 ms: the frames 0, 33, ..., 167 ms after the loss show the last tracked
    # expression (a runtime that eased at once, or froze nothing, fails here)
    held = outs[59].signal["motion"]
    for i in range(60, 66):
        assert np.allclose(outs[i].signal["motion"], held, atol=1e-6), i
    # then eased (smoothstep over 0.5 s): moving toward neutral, steadily, and fully neutral 0.7 s after the loss
    to_neutral = [np.abs(outs[i].signal["motion"] - neutral).max() for i in range(66, 84)]
    assert all(b <= a + 1e-6 for a, b in zip(to_neutral, to_neutral[1:])), to_neutral
    assert 0.2 * moving < np.abs(outs[72].signal["motion"] - held).max() < 0.8 * moving  # half-way at 0.4 s
    assert np.abs(outs[60 + 23].signal["motion"] - neutral).max() < 1e-6
    assert len(outs) == len(frames)


def test_several_faces_in_the_target_photo():
    a = Reenactor.create("gcgan", GROUP, width=0.125, backend="pytorch")
    b = Reenactor.create("gcgan", GROUP, width=0.125, backend="pytorch", target_face_index=1)
    try:
        assert a.target.num_faces >= 2
        assert a.target.face.area >= b.target.face.area
        assert np.abs(a.target.M - b.target.M).max() > 1.0  # a different face
    finally:
        a.close()
        b.close()
    with pytest.raises(NoFaceError, match="face-index 99"):
        Reenactor.create("gcgan", GROUP, width=0.125, backend="pytorch", target_face_index=99)


def test_a_target_photo_without_a_face_fails_before_anything_starts(tmp_path):
    from PIL import Image

    p = tmp_path / "wall.png"
    Image.fromarray(np.full((256, 256, 3), 180, np.uint8)).save(p)
    out = tmp_path / "never.mp4"
    with pytest.raises(NoFaceError, match="no face found in the target photo"):
        Reenactor.create("gcgan", p, width=0.125, backend="pytorch")
    assert main(["run", "--target", str(p), "--width", "0.125", "--out", str(out), "--no-progress"]) == 2
    assert not out.exists()


def test_bad_sources_and_sinks_name_the_problem(tmp_path):
    with pytest.raises(ReenactError, match="does not exist"):
        open_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(ReenactError, match="webcam"):
        open_source("webcam:7")
    with pytest.raises(ReenactError, match="unknown script"):
        open_source("script:nope")
    assert main(["run", "--width", "0.125", "--out", str(tmp_path / "x.avi"), "--no-progress"]) == 2


class DisconnectingSource(ReplaySource):
    """A live source whose device goes away after 40 frames (as WebcamSource reports it)."""

    disconnected = False

    def __iter__(self):
        for i, c in enumerate(super().__iter__()):
            if i == 40:
                self.disconnected = True
                return
            yield c


def test_a_disconnecting_camera_stops_cleanly_and_finalises_the_file(tmp_path, tiny):
    from reenact.runtime.io import FileSink

    out = tmp_path / "cut.mp4"
    tiny.recalibrate()
    stats = run_pipeline(tiny, DisconnectingSource(_frames(40), 100, 30.0), FileSink(out, 30.0), progress=False)
    assert stats.stopped_by == "the webcam disconnected"
    with VideoReader(out) as v:
        assert 0 < sum(1 for _ in v) == len(stats.frames)


def test_the_driver_with_several_faces_follows_the_largest(tiny):
    """A driver frame holding the fixture face twice, at full and at half size: the largest is followed."""
    import cv2

    img = _frames(1)[0].image
    canvas = np.full((480, 760, 3), 40, np.uint8)
    canvas[:, :480] = img
    canvas[120:360, 500:740] = cv2.resize(img, (240, 240), interpolation=cv2.INTER_AREA)
    tiny.close()  # a fresh VIDEO-mode tracker (no faces carried over from other tests)
    trk = tiny.track(canvas, 0.5)
    assert len(trk.faces) == 2
    face = tiny._pick(trk.faces)
    assert face.bbox[2] < 480 and face.area > 2 * trk.faces[1].area


@pytest.mark.slow
def test_memory_stays_flat_over_2000_frames(tiny):
    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

    frames = _frames(60)
    src = ReplaySource(frames, 2000, 1e6)
    src.live = False  # every frame processed
    tiny.recalibrate()
    marks = []

    def on_frame(rec):
        if rec["index"] in (300, 1999):
            marks.append(rss_mb())

    stats = run_pipeline(tiny, src, NullSink(), progress=False, on_frame=on_frame)
    assert len(stats.frames) == 2000
    assert marks[1] - marks[0] < 40, f"RSS grew from {marks[0]:.0f} MB to {marks[1]:.0f} MB"


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_scripts_interpolate_between_keyframes(name):
    s = ExpressionScript.named(name)
    assert s.duration > 1.0
    assert np.allclose(s.at(0.0), 0) and np.allclose(s.at(s.duration + 5), s.values[-1])
    peak = max(np.abs(s.at(t)).max() for t in np.arange(0, s.duration, 0.04))
    assert peak > 0.5


@pytest.mark.parametrize("model", ["gcgan", "lmklabel", "cefgan", "exprgan"])
def test_every_model_follows_a_script(model):
    """Scripted expressions reach each model's condition (cet2 needs a fitted blendshape-to-code map)."""
    r = Reenactor.create(model, width=0.125, backend="pytorch")
    try:
        s = ExpressionScript.named("demo")
        conds = [r.process(None, t, dblend=s.at(t)).condition for t in np.arange(0.0, s.duration, 0.1)]
    finally:
        r.close()
    key = next(iter(conds[0]))
    spread = np.abs(np.stack([c[key] for c in conds]) - conds[0][key]).max()
    assert spread > 0.05, f"{model}: the script hardly changes the condition ({spread:.4f})"


def test_default_run_animates_the_built_in_photo(tmp_path, monkeypatch):
    """The README's main job: `reenact run` with no arguments writes reenact-out.mp4 in which the
    face visibly moves: the whole frame changes by at least 1 level on average from the first
    frame at some point, the opened mouth is dark inside, and nothing outside the warp region
    moves."""
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-progress"]) == 0
    frames = [f.image.astype(np.float32) for f in read_all(tmp_path / "reenact-out.mp4")]
    r = Reenactor.create()  # same defaults: the default model on the built-in photo
    try:
        from reenact.choices import DEFAULT_MODEL

        assert r.model.model_id == DEFAULT_MODEL
        x0, y0, x1, y1 = r.warper.region
        mouth = r.target.face.landmarks[13, :2]
    finally:
        r.close()
    whole = np.array([np.abs(f - frames[0]).mean() for f in frames])
    assert whole.max() >= 1.0, f"the frame hardly changes (max mean change {whole.max():.2f} levels)"
    outside = np.ones(frames[0].shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert max(np.abs(f - frames[0])[outside].mean() for f in frames) < 0.5  # codec noise only
    # the open-mouth keyframe shows a dark interior just below the upper lip (the warp's fill: 0.13
    # of the closed lips' brightness there; GC-GAN's grey interior, 0.64, would fail)
    mx, my = int(round(mouth[0])), int(round(mouth[1]))
    darkest = min(float(f[my:my + 12, mx - 6:mx + 6].mean()) for f in frames)
    assert darkest < 0.6 * float(frames[0][my:my + 12, mx - 6:mx + 6].mean())
    from reenact.runtime.io import ScriptSource

    assert len(frames) == ScriptSource("demo").num_frames
