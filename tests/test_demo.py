"""The Gradio demo without a browser: its API through ``gradio_client`` and its handlers in-process.

The app runs an untrained, quarter-width gcgan (64 px, the cheapest network): these tests check
the plumbing (sessions, videos, messages), not the picture quality.
"""
from __future__ import annotations

import copy
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from .conftest import FIXTURE_VIDEO, IMAGES

REPO = Path(__file__).resolve().parents[1]
PHOTO_A = IMAGES / "sadtalker_happy.png"          # 256x256, one face
PHOTO_B = IMAGES / "liveportrait_driving_d8.jpg"  # 720x720, one face


@pytest.fixture(scope="module")
def server():
    from reenact.demo.app import DemoConfig, launch

    page = launch(DemoConfig(width=0.25), port=0, block=False)
    try:
        yield page.local_url
    finally:
        page.close()


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """The fixture's first 20 frames as a short driving video."""
    from reenact.io.video import VideoWriter, read_all

    path = tmp_path_factory.mktemp("demo") / "drive20.mp4"
    with VideoWriter(path, fps=30) as w:
        for fr in read_all(FIXTURE_VIDEO, max_frames=20):
            w.write(fr.image)
    return path


def _frames(path: str | Path):
    from reenact.io.video import read_all

    return read_all(path)


def _default_size() -> tuple[int, int]:
    from reenact.assets import default_target_path
    from reenact.io.images import load_image

    return load_image(default_target_path()).shape[:2]


# -- through the server ---------------------------------------------------------------------------
def test_video_tab_returns_a_video_with_the_same_frame_count(server, clip):
    from gradio_client import handle_file

    c = _client(server)
    video, msg = c.predict(handle_file(str(clip)), "gcgan", "auto", 1.0, 1.0, api_name="/render_video")
    frames = _frames(video)
    assert len(frames) == 20, msg
    assert frames[0].image.shape[:2] == _default_size()  # the default target, composited
    assert "Rendered 20 frames" in msg


def test_script_tab_renders_without_a_camera(server):
    from reenact.runtime.scripts import ExpressionScript

    c = _client(server)
    video, msg = c.predict("blink", 10, "gcgan", "auto", 1.0, 1.0, api_name="/render_script")
    expected = len(np.arange(0.0, ExpressionScript.named("blink").duration + 1e-9, 0.1))
    assert len(_frames(video)) == expected, msg


def test_two_sessions_keep_their_own_targets(server):
    """Two concurrent users with different photos each get their own photo back; a third, new
    session still has the default photo (nothing leaks between sessions)."""
    from gradio_client import handle_file

    from reenact.io.images import load_image

    a, b, fresh = _client(server), _client(server), _client(server)

    def run(client, photo):
        shown, status = client.predict(handle_file(str(photo)), "gcgan", "auto", api_name="/set_target")
        assert photo.name in status and "⚠" not in status, status
        video, _ = client.predict("blink", 5, "gcgan", "auto", 1.0, 1.0, api_name="/render_script")
        return _frames(video)[0].image

    with ThreadPoolExecutor(2) as pool:
        fa, fb = pool.map(run, (a, b), (PHOTO_A, PHOTO_B))
    va, vb = load_image(PHOTO_A), load_image(PHOTO_B)
    assert fa.shape == va.shape and fb.shape == vb.shape
    # outside the face the output is the session's own photo
    for out, own in ((fa, va), (fb, vb)):
        h = own.shape[0]
        band = slice(0, h // 10)  # top rows: background, hair
        assert np.abs(out[band].astype(int) - own[band].astype(int)).mean() < 8
    video, _ = fresh.predict("blink", 5, "gcgan", "auto", 1.0, 1.0, api_name="/render_script")
    assert _frames(video)[0].image.shape[:2] == _default_size()


def test_bad_uploads_give_a_message(server, tmp_path):
    from gradio_client import handle_file
    from PIL import Image

    c = _client(server)
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not a picture")
    _, status = c.predict(handle_file(str(not_image)), "gcgan", "auto", api_name="/set_target")
    assert "not a readable image" in status and "notes.png" in status, status
    assert "Traceback" not in status and "/tmp/gradio" not in status

    faceless = tmp_path / "sky.png"
    Image.fromarray(np.tile(np.linspace(60, 200, 256, dtype=np.uint8)[:, None, None], (1, 256, 3))).save(faceless)
    _, status = c.predict(handle_file(str(faceless)), "gcgan", "auto", api_name="/set_target")
    assert "no face found" in status and "Keeping the default photo" in status, status

    not_video = tmp_path / "clip.mp4"
    not_video.write_bytes(b"\x00" * 2048)
    with pytest.raises(Exception) as e:
        c.predict(handle_file(str(not_video)), "gcgan", "auto", 1.0, 1.0, api_name="/render_video")
    text = str(e.value)
    assert "clip.mp4" in text and "Traceback" not in text, text


# -- handlers in-process --------------------------------------------------------------------------
def test_live_sessions_have_their_own_target_calibration_and_filters(fixture_frames):
    from reenact.demo.app import DemoApp, DemoConfig, Session

    app = DemoApp(DemoConfig(width=0.25))
    assert copy.deepcopy(s := Session()) is not s  # every browser session starts empty
    s1, s2 = Session(), Session()
    try:
        _, status = app.set_target(str(PHOTO_A), "gcgan", "auto", s1)
        assert "256x256" in status, status
        t_end = time.monotonic() + 1.3  # past the 1 s calibration
        i = 0
        while time.monotonic() < t_end or i < 8:
            f = fixture_frames[i % 30].image
            o1, r1 = app.live_step(f, "gcgan", "auto", 1.5, 0.5, s1)
            o2, r2 = app.live_step(f, "gcgan", "auto", 1.0, 2.0, s2)
            i += 1
            time.sleep(0.05)
        assert o1.shape == (256, 256, 3) and o2.shape[:2] == _default_size()
        assert "fps" in r1 and "ms/frame" in r1 and "frame" in r2
        assert s1.reenactor is not s2.reenactor
        assert (s1.reenactor.options.intensity, s1.reenactor.options.smoothing) == (1.5, 0.5)
        assert (s2.reenactor.options.intensity, s2.reenactor.options.smoothing) == (1.0, 2.0)
        assert not s1.reenactor.calibrating and not s2.reenactor.calibrating
        assert "Calibrating" in app.calibrate(s1)
        assert s1.reenactor.calibrating and not s2.reenactor.calibrating
        # the cached Reenactor is reused frame to frame, replaced when the model changes
        r = s2.reenactor
        app.live_step(fixture_frames[0].image, "gcgan", "auto", 1.0, 2.0, s2)
        assert s2.reenactor is r
    finally:
        s1.close()
        s2.close()


@pytest.mark.filterwarnings("ignore::UserWarning")  # gr.Warning outside a request is a Python warning
def test_handler_messages(tmp_path):
    from reenact.demo.app import DemoApp, DemoConfig, Session

    app = DemoApp(DemoConfig(width=0.25, max_photo_mb=0.01))
    s = Session()
    try:
        _, status = app.set_target(str(PHOTO_A), "gcgan", "auto", s)
        assert "too large" in status and "the limit is 0.01 MB" in status, status
        assert s.target is None
        msg = app.set_model("gcgan", "tensorrt", s)
        assert msg.startswith("⚠") and "tensorrt" in msg, msg
        assert app.set_model("gcgan", "pytorch", s).startswith("Model gcgan")
        assert "Start the webcam" in DemoApp(DemoConfig(width=0.25)).calibrate(Session())
    finally:
        s.close()


def test_command_line():
    import reenact.commands.demo as cmd
    from reenact.cli import COMMANDS, _load_commands, parse

    _load_commands()
    assert COMMANDS["demo"].run is cmd.run
    a = parse("demo", ["--host", "0.0.0.0", "--port", "8080", "--share", "--model", "exprgan",
                       "--max-streams", "2", "--time-limit", "60"])
    from reenact.demo.app import DemoConfig, config_from_args

    cfg = config_from_args(a)
    assert (cfg.model, cfg.max_streams, cfg.stream_limit_s) == ("exprgan", 2, 60)
    # the command's defaults are DemoConfig's
    d, c = DemoConfig(), config_from_args(parse("demo", []))
    assert (c.model, c.backend, c.max_streams, c.stream_limit_s) == (d.model, d.backend, d.max_streams, d.stream_limit_s)
    out = subprocess.run([sys.executable, "-m", "reenact.demo.app", "--help"], capture_output=True,
                         text=True, timeout=60, cwd="/")
    assert out.returncode == 0 and "--max-streams" in out.stdout, out.stderr
