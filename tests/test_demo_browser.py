"""The demo in a real browser: headless Chromium, its webcam fed from the fixture video.

Chromium's fake media stream (``--use-fake-device-for-media-stream`` with
``--use-file-for-fake-video-capture``) plays a .y4m file as the webcam. The test drives the page
over the Chrome DevTools Protocol (through ``--remote-debugging-pipe``: no extra packages), presses
Record on the Live tab, and checks that reenacted frames stream back and change over time. A
screenshot is saved as an artifact (its path is printed; set REENACT_TEST_ARTIFACTS to keep it
somewhere else than pytest's tmp_path).
"""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import FIXTURE_VIDEO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

# CI installs Chromium and sets REENACT_REQUIRE_BROWSER=1: there a missing browser fails the test
REQUIRED = os.environ.get("REENACT_REQUIRE_BROWSER", "") not in ("", "0")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None and not REQUIRED,
                                 reason="needs Chromium (Debian: apt-get install chromium)")]


def write_y4m(src: Path, dst: Path, seconds: float = 4.0, size: int = 320) -> int:
    """The first ``seconds`` of ``src`` as a raw .y4m (Chromium's fake-webcam format); returns frames."""
    import av

    from reenact.io.video import VideoReader

    n = 0
    with VideoReader(src) as reader, av.open(str(dst), "w", format="yuv4mpegpipe") as out:
        fps = Fraction(round(reader.fps or 30)).limit_denominator(1000)
        st = out.add_stream("rawvideo", rate=fps)
        st.width = st.height = size
        st.pix_fmt = "yuv420p"
        for fr in reader:
            if fr.t >= seconds:
                break
            vf = av.VideoFrame.from_ndarray(fr.image, format="rgb24").reformat(size, size, "yuv420p")
            for pkt in st.encode(vf):
                out.mux(pkt)
            n += 1
        for pkt in st.encode():
            out.mux(pkt)
    return n


class CDP:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (fds 3 and 4)."""

    def __init__(self, args: list[str], log_path: Path):
        to_r, self._to_w = os.pipe()      # commands: us -> Chromium's fd 3
        self._from_r, from_w = os.pipe()  # replies: Chromium's fd 4 -> us

        # bash moves the pipe ends to fds 3 and 4 (where Chromium expects them), then execs it
        shell = [shutil.which("bash") or "/bin/bash", "-c", f'exec "$@" 3<&{to_r} 4>&{from_w}', "sh", *args]
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(shell, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     pass_fds=(to_r, from_w))
        os.close(to_r)
        os.close(from_w)
        self._next = 0
        self._replies: dict[int, dict] = {}
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session: str | None = None

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buf += chunk
            *msgs, buf = buf.split(b"\0")
            for m in msgs:
                msg = json.loads(m)
                if "id" in msg:
                    with self._cond:
                        self._replies[msg["id"]] = msg
                        self._cond.notify_all()

    def send(self, method: str, params: dict | None = None, *, session: bool = True, timeout: float = 30) -> dict:
        self._next += 1
        i = self._next
        msg: dict[str, Any] = {"id": i, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while i not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"no reply to {method} (chromium exit code {self.proc.poll()})")
                self._cond.wait(min(left, 0.5))
            reply = self._replies.pop(i)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def open_page(self, url: str) -> None:
        tid = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": tid, "flatten": True},
                                 session=False)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Page.navigate", {"url": url})

    def js(self, expr: str, timeout: float = 30) -> Any:
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True},
                      timeout=timeout)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expr: str, timeout: float = 60, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.js(expr)
            if v:
                return v
            time.sleep(0.25)
        raise TimeoutError(f"timed out waiting for {what or expr}")

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self._to_w)
        self._log.close()


def _artifact_dir(tmp_path: Path) -> Path:
    d = Path(os.environ.get("REENACT_TEST_ARTIFACTS") or tmp_path) / "demo_browser"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _decode(url: str, base: str) -> np.ndarray:
    """An <img> src (data: URL or a server file URL) as an RGB array."""
    import httpx
    from PIL import Image

    if url.startswith("data:"):
        raw = base64.b64decode(url.split(",", 1)[1])
    else:
        raw = httpx.get(url if url.startswith("http") else base.rstrip("/") + url, timeout=30).content
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))


def test_live_tab_streams_webcam_in_chromium(tmp_path):
    assert CHROMIUM is not None, "REENACT_REQUIRE_BROWSER is set but no chromium is on PATH"
    from reenact.demo.app import DemoConfig, launch

    cam = tmp_path / "webcam.y4m"
    assert write_y4m(FIXTURE_VIDEO, cam, seconds=4.0) >= 100
    art = _artifact_dir(tmp_path)
    # exprgan: an untrained network whose output still follows the driver (untrained gcgan's and
    # lmklabel's do not move until trained), so changing frames show that the stream is live
    page = launch(DemoConfig(model="exprgan", width=0.25, stream_limit_s=120), port=0, block=False)
    url = page.local_url
    cdp = CDP([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
               f"--user-data-dir={tmp_path / 'chromium-profile'}", "--remote-debugging-pipe",
               "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
               f"--use-file-for-fake-video-capture={cam}", "--autoplay-policy=no-user-gesture-required",
               "--window-size=1280,1400", "about:blank"], art / "chromium.log")
    try:
        cdp.open_page(url)
        cdp.wait_for("!!document.querySelector('#live-input')", 90, "the page to render")
        # the webcam component asks for access first (granted by the fake UI), then shows Record
        start = "document.querySelector('#live-input [title=\"start recording\"]')"
        grant = "document.querySelector('#live-input [title=\"grant webcam access\"] button')"
        deadline = time.monotonic() + 60
        while not cdp.js(f"!!{start}"):
            if time.monotonic() > deadline:
                cdp.screenshot(art / "no-record-button.png")
                raise AssertionError(f"the webcam Record button never appeared; see {art}")
            cdp.js(f"{grant}?.click(); true")
            time.sleep(0.5)
        cdp.js(f"{start}.closest('button').click(); true")

        out_img = "document.querySelector('#live-output img')?.src || ''"
        stats = "document.querySelector('#live-stats textarea')?.value || ''"
        srcs: list[str] = []
        readouts: set[str] = set()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(set(srcs)) < 8:
            s = cdp.js(out_img)
            if s and (not srcs or s != srcs[-1]):
                srcs.append(s)
            readouts.add(cdp.js(stats))
            time.sleep(0.2)
        shot = art / "live_tab.png"
        cdp.screenshot(shot)
        print(f"\nscreenshot: {shot}\nlast readout: {cdp.js(stats)}")
        assert shot.stat().st_size > 10_000
        distinct = list(dict.fromkeys(srcs))
        assert len(distinct) >= 5, f"only {len(distinct)} output frame(s) arrived; readouts {sorted(readouts)[:5]}"
        assert any("fps" in r for r in readouts), readouts
        frames = [_decode(s, url) for s in distinct[-6:]]
        assert all(f.shape == frames[0].shape and f.ndim == 3 for f in frames)
        diffs = [float(np.abs(a.astype(int) - b.astype(int)).mean()) for a, b in zip(frames, frames[1:])]
        assert max(diffs) > 0.05, f"output frames do not change over time: {diffs}"
    finally:
        try:
            cdp.close()
        finally:
            page.close()
