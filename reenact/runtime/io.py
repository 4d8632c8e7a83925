"""Driver sources and output sinks of ``reenact run``.

Sources yield ``Capture(index, t, image, dblend)`` with real timestamps (seconds since the first
frame): ``webcam[:N]`` (PyAV: v4l2 on Linux, avfoundation on macOS, dshow on Windows; live, so
the pipeline drops stale frames), a video file and a folder of images (every frame, in order), and
``script:NAME`` (a built-in expression timeline; no pixels, ``dblend`` set instead).

Sinks take composited frames: an H.264 file (PyAV, atomic, with the driver's audio when it has
any), an on-screen window with an overlay and keys (``c`` recalibrate, ``q``/Esc quit), a
virtual camera (pyvirtualcam) and ``none`` (for measurement).
"""
from __future__ import annotations

import logging
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import InputFileError, ReenactError, VideoError
from ..io.images import load_image
from ..io.video import VideoReader, VideoWriter, is_video_path, list_images
from .scripts import ExpressionScript

log = logging.getLogger(__name__)


@dataclass
class Capture:
    index: int
    t: float                      # seconds since the source's first frame
    image: np.ndarray | None      # RGB uint8, None for scripted sources
    dblend: np.ndarray | None = None
    wall: float = 0.0             # time.perf_counter() at capture (for end-to-end latency)


MAX_FPS = 240.0
"""Highest frame rate accepted for image folders and scripts (``--fps``)."""


class Source:
    """Base class: iterate to get ``Capture`` objects."""

    live = False
    scripted = False
    fps: float = 25.0
    size: tuple[int, int] | None = None
    audio_path: str | None = None
    num_frames: int | None = None
    description = ""

    def __iter__(self) -> Iterator[Capture]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class VideoFileSource(Source):
    def __init__(self, path: str | os.PathLike):
        self.reader = VideoReader(path)  # raises a clear error for missing/unreadable files
        self.fps, self.size = self.reader.fps, self.reader.size
        self.num_frames = self.reader.num_frames
        self.audio_path = str(path) if self.reader.has_audio else None
        self.description = f"video {path}"

    def __iter__(self):
        for f in self.reader:
            yield Capture(f.index, f.t, f.image, wall=time.perf_counter())

    @property
    def truncated(self) -> bool:
        """True after an iteration that ended before the file's declared end (truncated or corrupt)."""
        return bool(getattr(self.reader, "truncated", False))

    @property
    def duration(self) -> float | None:
        return self.reader.duration

    def close(self):
        self.reader.close()


class ImageFolderSource(Source):
    def __init__(self, folder: str | os.PathLike, fps: float = 25.0):
        self.paths = list_images(folder)
        if not self.paths:
            raise InputFileError(f"no images in folder {folder}")
        self.fps, self.num_frames = float(fps), len(self.paths)
        self.description = f"{len(self.paths)} images in {folder}"

    def __iter__(self):
        for i, p in enumerate(self.paths):
            yield Capture(i, i / self.fps, load_image(p), wall=time.perf_counter())


class ScriptSource(Source):
    scripted = True  # expressions, no pixels: nothing to track

    def __init__(self, name: str, fps: float = 25.0):
        self.script = ExpressionScript.named(name)
        self.fps = float(fps)
        self.num_frames = int(round(self.script.duration * self.fps)) + 1
        self.description = f"script {name} ({self.script.duration:.1f} s)"

    def __iter__(self):
        for i in range(self.num_frames):
            t = i / self.fps
            yield Capture(i, t, None, self.script.at(t), wall=time.perf_counter())


def _webcam_input(index: int) -> tuple[str, str, dict]:
    system = platform.system()
    if system == "Linux":
        return f"/dev/video{index}", "v4l2", {}
    if system == "Darwin":
        return f"{index}:none", "avfoundation", {"framerate": "30"}
    if system == "Windows":
        return "video=" + os.environ.get("REENACT_WEBCAM_NAME", "Integrated Camera"), "dshow", {}
    raise ReenactError(f"webcam capture is not supported on {system}")


class WebcamSource(Source):
    """A live camera through PyAV. Disconnection ends the stream with a clear message."""

    live = True

    def __init__(self, index: int = 0, size: tuple[int, int] | None = None, fps: float | None = None):
        import av

        url, fmt, options = _webcam_input(index)
        if size:
            options["video_size"] = f"{size[0]}x{size[1]}"
        if fps:
            options["framerate"] = str(fps)
        if fmt == "v4l2" and not Path(url).exists():
            raise InputFileError(f"no webcam at {url} (is a camera connected? try webcam:1 for another one)")
        try:
            self.container = av.open(url, format=fmt, options=options)
        except Exception as e:
            raise VideoError(f"cannot open webcam {index} ({url}): {e}") from None
        self.stream = self.container.streams.video[0]
        self.fps = float(self.stream.average_rate or fps or 30)
        self.size = (self.stream.codec_context.width, self.stream.codec_context.height)
        self.description = f"webcam {index} ({url}, {self.size[0]}x{self.size[1]})"
        self.disconnected = False

    def __iter__(self):
        t0 = None
        i = 0
        try:
            for frame in self.container.decode(self.stream):
                now = time.perf_counter()
                t0 = now if t0 is None else t0
                yield Capture(i, now - t0, frame.to_ndarray(format="rgb24"), wall=now)
                i += 1
        except Exception as e:  # unplugged mid-stream: report and stop cleanly
            self.disconnected = True
            log.error("the webcam stopped delivering frames (%s); stopping", e)

    def close(self):
        self.container.close()


def open_source(spec: str, fps: float | None = None) -> Source:
    """``webcam[:N]``, ``script:NAME``, a video file or a folder of images."""
    if fps is not None and not (0 < fps <= MAX_FPS):
        raise ReenactError(f"--fps must be in (0, {MAX_FPS:g}], got {fps:g}")
    if spec == "webcam" or spec.startswith("webcam:"):
        idx = spec.split(":", 1)[1] if ":" in spec else "0"
        if not idx.isdigit():
            raise ReenactError(f"webcam index must be a number, got {spec!r} (e.g. webcam:0)")
        return WebcamSource(int(idx), fps=fps)
    if spec.startswith("script:"):
        return ScriptSource(spec.split(":", 1)[1], fps or 25.0)
    p = Path(spec)
    if p.is_dir():
        return ImageFolderSource(p, fps or 25.0)
    if not p.exists():
        raise InputFileError(f"driver {spec} does not exist (expected webcam[:N], script:NAME, a video file or "
                             f"a folder of images)")
    if is_video_path(p) or p.suffix == "":
        return VideoFileSource(p)
    raise InputFileError(f"driver {spec} is not a video file or a folder of images")


# ---------------------------------------------------------------------------------------------
class Sink:
    """Takes composited frames; ``write`` returns False when the user asked to stop."""

    description = ""

    def write(self, image: np.ndarray, t: float, info: dict) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self.close()


class NullSink(Sink):
    description = "none"

    def write(self, image, t, info):
        return True


class FileSink(Sink):
    def __init__(self, path: str | os.PathLike, fps: float, audio_from: str | None = None):
        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".mov", ".mkv", ".m4v"):
            raise ReenactError(f"output {path}: use a .mp4, .mov, .mkv or .m4v file name (or window, virtualcam, none)")
        self.writer = VideoWriter(self.path, fps, audio_from=audio_from)
        self.description = f"file {self.path}" + (" (with the driver's audio)" if audio_from else "")

    def write(self, image, t, info):
        self.writer.write(image, t)
        return True

    def close(self):
        self.writer.close()

    def abort(self):
        self.writer.abort()


def overlay_text(image: np.ndarray, lines: list[str]) -> np.ndarray:
    import cv2

    out = image.copy()
    for i, line in enumerate(lines):
        y = 22 + 20 * i
        cv2.putText(out, line, (9, y + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class WindowSink(Sink):
    """An OpenCV window with fps/latency/model/backend; keys: c = recalibrate, q or Esc = quit."""

    def __init__(self, title: str = "reenact", on_key: Callable[[str], None] | None = None):
        import cv2

        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise ReenactError("--out window needs a display (no DISPLAY/WAYLAND_DISPLAY set); write a file instead, "
                               "e.g. --out out.mp4")
        self.cv2, self.title, self.on_key = cv2, title, on_key
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            raise ReenactError(f"cannot open a window ({e}); write a file instead, e.g. --out out.mp4") from None
        self.description = "window (c: recalibrate, q: quit)"

    def write(self, image, t, info):
        lines = [f"{info.get('fps', 0):5.1f} fps  latency {1000 * info.get('latency', 0):5.0f} ms",
                 f"{info.get('model', '')} / {info.get('backend', '')}"]
        if info.get("calibrating"):
            lines.append("calibrating: hold a neutral face")
        self.cv2.imshow(self.title, self.cv2.cvtColor(overlay_text(image, lines), self.cv2.COLOR_RGB2BGR))
        key = self.cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        if key == ord("c") and self.on_key:
            self.on_key("c")
        return True

    def close(self):
        self.cv2.destroyWindow(self.title)


class VirtualCamSink(Sink):
    """A virtual camera for video calls (pyvirtualcam: v4l2loopback on Linux, OBS on Windows/macOS)."""

    def __init__(self, size: tuple[int, int], fps: float):
        try:
            import pyvirtualcam
        except ImportError:
            raise ReenactError("--out virtualcam needs pyvirtualcam: pip install pyvirtualcam (and, on Linux, "
                               "the v4l2loopback kernel module)") from None
        w, h = size
        try:
            self.cam = pyvirtualcam.Camera(width=w - w % 2, height=h - h % 2, fps=fps)
        except Exception as e:
            raise ReenactError(f"cannot start a virtual camera: {e} (Linux: sudo modprobe v4l2loopback; "
                               "Windows/macOS: install OBS Studio's virtual camera)") from None
        self.description = f"virtual camera {self.cam.device}"

    def write(self, image, t, info):
        h, w = image.shape[:2]
        self.cam.send(np.ascontiguousarray(image[: h - h % 2, : w - w % 2]))
        self.cam.sleep_until_next_frame()
        return True

    def close(self):
        self.cam.close()


def open_sink(spec: str | None, *, fps: float, size: tuple[int, int], audio_from: str | None = None,
              on_key: Callable[[str], None] | None = None) -> Sink:
    if spec in (None, "", "none"):
        return NullSink()
    if spec in ("window", "screen"):
        return WindowSink(on_key=on_key)
    if spec == "virtualcam":
        return VirtualCamSink(size, fps)
    return FileSink(spec, fps, audio_from)
