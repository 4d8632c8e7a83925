"""The browser demo: drive a photo from your webcam, a video or a built-in expression script.

Run it with ``reenact demo`` (or ``python demo/app.py``) and open the address it prints.

Tabs:

* **Live** - the browser's webcam streams frames to the server, the reenacted photo streams
  back. Sliders set the smoothing strength and the expression intensity; *Calibrate* takes a
  new neutral pose; a readout shows frames per second and the server's time per frame.
* **Video** - upload a driving video, get the rendered video back.
* **Script** - render a built-in expression script (no camera needed).

The target photo, model and backend above the tabs apply to all three. Every browser tab is
its own session: its target, calibration and smoothing state are not shared with anyone else.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # ``python demo/app.py``: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from reenact.choices import DEFAULT_MODEL
from reenact.errors import InputFileError, ReenactError, VideoError

log = logging.getLogger("reenact.demo")


# -- configuration ------------------------------------------------------------------------------
@dataclass
class DemoConfig:
    """Server-wide settings (the command-line options of ``reenact demo``)."""

    model: str = DEFAULT_MODEL      # model selected when a page opens (the runtime's default)
    backend: str = "auto"           # backend selected when a page opens
    checkpoint: str | None = None   # weights for ``model`` (else the shipped ones, else untrained)
    width: float | None = None      # untrained network width (testing / no weights)
    max_streams: int = 4            # webcam streams served at the same time
    max_renders: int = 2            # video / script renders at the same time
    stream_limit_s: int = 600       # a webcam stream stops after this many seconds (press Record again)
    stream_every_s: float = 0.1     # the browser sends a webcam frame this often (at most)
    max_photo_mb: float = 20.0      # largest target photo upload
    max_video_mb: float = 200.0     # largest driving video upload (the server refuses bigger files)
    max_video_s: float = 120.0      # longest driving video rendered
    live_max_side: int = 720        # streamed frames are downscaled to this size (longest side)
    default_target: str | None = None  # photo preloaded as the target (None: the built-in photo)

    def validate(self) -> None:
        if self.max_streams < 1:
            raise ReenactError(f"--max-streams must be >= 1, got {self.max_streams}")
        if self.max_renders < 1:
            raise ReenactError(f"max_renders must be >= 1, got {self.max_renders}")
        if self.stream_limit_s < 1:
            raise ReenactError("--time-limit must be >= 1 second")


def _model_choices(cfg: DemoConfig) -> list[tuple[str, str]]:
    from reenact.models import build_model, list_models
    from reenact.runtime import default_weights

    out = []
    for m in list_models():
        if m == cfg.model and cfg.checkpoint:
            label = f"{m} ({Path(cfg.checkpoint).name})"
        elif not build_model(m).has_generator:
            label = f"{m} (mesh warp, no network)"
        elif default_weights(m) is not None:
            label = f"{m} (trained)"
        else:
            label = f"{m} (untrained)"
        out.append((label, m))
    return out


def _backend_choices() -> list[tuple[str, str]]:
    from reenact.backends import available_backends

    return [("auto (fastest available)", "auto")] + [(f"{k}: {v}", k) for k, v in available_backends().items()]


# -- per-session state ---------------------------------------------------------------------------
class Session:
    """One browser tab: its target photo, its live Reenactor (calibration, filters) and stream clock.

    Gradio keeps one instance per browser session (``gr.State``); it is never shared or copied.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.target: np.ndarray | None = None   # None: the default photo
        self.target_name = "default photo"
        self.target_version = 0                  # bumps with every accepted target
        self.reenactor: Any = None
        self.key: tuple | None = None
        self.t0: float | None = None             # monotonic time of the stream's first frame
        self.last_t = -1.0
        self.last_arrival: float | None = None
        self.fps = 0.0
        self.frames = 0
        self.last_error: str | None = None

    def __deepcopy__(self, memo: dict) -> Session:
        # Gradio gives every new browser session a deep copy of the initial value: a fresh, empty
        # session (a live Reenactor cannot be copied, and must never be shared).
        return Session()

    def close(self) -> None:
        with self.lock:
            if self.reenactor is not None:
                self.reenactor.close()
            self.reenactor, self.key = None, None

    def reset_clock(self) -> None:
        self.t0, self.last_t, self.last_arrival, self.fps, self.frames = None, -1.0, None, 0.0, 0

    def live(self, cfg: DemoConfig, model: str, backend: str, target: np.ndarray | None = None,
             target_name: str | None = None) -> Any:
        """The live Reenactor for (model, backend, target), created only when one of them changes.

        With ``target`` given, that photo is tried first and becomes the session's target only if
        it works (it has a face); otherwise the previous target stays and the error propagates."""
        with self.lock:
            new_target = target is not None
            tgt = target if new_target else self.target
            version = self.target_version + 1 if new_target else self.target_version
            key = (model, backend, version)
            if self.reenactor is not None and self.key == key:
                return self.reenactor
            r = make_reenactor(cfg, model, backend, tgt)
            self.close()
            self.reenactor, self.key = r, key
            if new_target:
                self.target, self.target_name, self.target_version = tgt, target_name or "uploaded photo", version
            self.reset_clock()
            return r

    def clock(self, arrival: float) -> float:
        """Stream time of a frame from its server-side arrival time (strictly increasing)."""
        if self.t0 is None:
            self.t0 = arrival
        t = max(arrival - self.t0, self.last_t + 1e-3)
        if self.last_arrival is not None:
            dt = arrival - self.last_arrival
            if 0 < dt < 2.0:
                self.fps = 1.0 / dt if self.fps == 0 else 0.8 * self.fps + 0.2 / dt
        self.last_t, self.last_arrival = t, arrival
        self.frames += 1
        return t


_CREATE_LOCK = threading.Lock()
"""Creating a Reenactor builds the model and may export it to ONNX (global exporter state, and
redirected file descriptors): one at a time, whatever the number of sessions."""


def make_reenactor(cfg: DemoConfig, model: str, backend: str, target: np.ndarray | None,
                   intensity: float = 1.0, smoothing: float = 1.0) -> Any:
    from reenact.runtime import Reenactor

    ck = cfg.checkpoint if model == cfg.model else None
    tgt = target
    if tgt is None and cfg.default_target:
        tgt = cfg.default_target
    with _CREATE_LOCK:
        r = Reenactor.create(model, tgt, checkpoint=ck, width=None if ck else cfg.width, backend=backend or "auto")
    r.set_options(intensity=intensity, smoothing=smoothing)
    return r


# -- helpers ------------------------------------------------------------------------------------
def _upload_path(payload: Any) -> str | None:
    """Path of an uploaded file, from a raw Gradio payload (dict / FileData) or a path string."""
    if payload is None:
        return None
    if isinstance(payload, (str, Path)):
        return str(payload)
    if isinstance(payload, dict):
        return payload.get("path")
    return getattr(payload, "path", None)


def _check_size(path: str, limit_mb: float, what: str) -> None:
    size = os.path.getsize(path)
    if size > limit_mb * 1e6:
        raise InputFileError(f"the {what} is too large ({size / 1e6:.1f} MB); the limit is {limit_mb:g} MB")


def _downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return image
    import cv2

    return cv2.resize(image, (max(2, round(w * s)), max(2, round(h * s))), interpolation=cv2.INTER_AREA)


def _friendly(e: BaseException) -> str:
    """A one-line message for the page: the ReenactError text, or the kind of an unexpected failure."""
    if isinstance(e, ReenactError):
        return str(e)
    log.exception("demo: unexpected error")
    return f"unexpected error ({type(e).__name__}: {e}); the server log has the details"


_OUT_DIR = Path(tempfile.gettempdir()) / "reenact-demo"


def _output_path(stem: str) -> Path:
    """A fresh .mp4 path for a rendered video; files older than an hour are removed."""
    _OUT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in _OUT_DIR.glob("*.mp4"):
        try:
            if now - old.stat().st_mtime > 3600:
                old.unlink()
        except OSError:
            pass
    return _OUT_DIR / f"{stem}-{uuid.uuid4().hex[:10]}.mp4"


# -- the app ------------------------------------------------------------------------------------
class DemoApp:
    """Event handlers (plain methods, callable without a browser) and the Gradio page."""

    def __init__(self, cfg: DemoConfig | None = None) -> None:
        self.cfg = cfg or DemoConfig()
        self.cfg.validate()
        self._default_rgb: np.ndarray | None = None

    # target, model, backend ---------------------------------------------------------------------
    def set_target(self, upload: Any, model: str, backend: str, session: Session) -> tuple[Any, str]:
        """A new target photo: checked (image, size, face) before it replaces the current one.

        Returns (photo shown, status line); a bad photo keeps the previous target."""
        import gradio as gr

        from reenact.io.images import load_image

        path = _upload_path(upload)
        if path is None:  # cleared: back to the default photo
            return self.reset_target(model, backend, session)
        name = Path(upload.get("orig_name") or path).name if isinstance(upload, dict) else Path(path).name
        try:
            _check_size(path, self.cfg.max_photo_mb, "photo")
            image = load_image(path)
            session.live(self.cfg, model, backend, target=image, target_name=name)
        except Exception as e:  # noqa: BLE001 - shown to the user
            msg = _friendly(e).replace(path, name)
            gr.Warning(msg)
            return self._shown_target(session), f"⚠️ {name}: {msg}. Keeping the {session.target_name}."
        return gr.skip(), f"Target: {name} ({image.shape[1]}x{image.shape[0]})."

    def reset_target(self, model: str, backend: str, session: Session) -> tuple[Any, str]:
        with session.lock:
            session.target, session.target_name = None, "default photo"
            session.target_version += 1
            session.close()
        return self._shown_target(session), "Target: the default photo."

    def _default_target_path(self) -> str:
        from reenact.assets import default_target_path

        return str(self.cfg.default_target or default_target_path())

    def _shown_target(self, session: Session) -> np.ndarray:
        """The session's target as an array (a path outside the temp folder could not be served)."""
        if session.target is not None:
            return session.target
        if self._default_rgb is None:
            from reenact.io.images import load_image

            self._default_rgb = load_image(self._default_target_path())
        return self._default_rgb

    def set_model(self, model: str, backend: str, session: Session) -> str:
        """Model or backend changed: load it now so that problems show at once."""
        import gradio as gr

        try:
            t0 = time.perf_counter()
            r = session.live(self.cfg, model, backend)
            return (f"Model {model} ({r.weights} weights) on {type(r.backend).__name__}, "
                    f"ready in {time.perf_counter() - t0:.1f} s.")
        except Exception as e:  # noqa: BLE001
            msg = _friendly(e)
            gr.Warning(msg)
            return f"⚠️ {msg}"

    # live ---------------------------------------------------------------------------------------
    def live_step(self, frame: np.ndarray | None, model: str, backend: str, intensity: float,
                  smoothing: float, session: Session) -> tuple[Any, str]:
        """One webcam frame -> (reenacted photo, readout). The frame's time is its arrival time."""
        import gradio as gr

        arrival = time.monotonic()
        if frame is None:
            return gr.skip(), gr.skip()
        try:
            with session.lock:
                r = session.live(self.cfg, model, backend)
                r.set_options(intensity=float(intensity), smoothing=float(smoothing))
                t = session.clock(arrival)
                t0 = time.perf_counter()
                out = r.process(np.ascontiguousarray(frame[..., :3], dtype=np.uint8), t)
                latency = time.perf_counter() - t0
            session.last_error = None
        except Exception as e:  # noqa: BLE001
            msg = _friendly(e)
            if msg != session.last_error:  # say it once, not on every frame
                gr.Warning(msg)
            session.last_error = msg
            return gr.skip(), f"⚠️ {msg}"
        stages = " · ".join(f"{k} {1000 * v:.0f}" for k, v in out.times.items() if v >= 0.0005)
        state = ("calibrating: hold a neutral face" if out.calibrating
                 else "tracking" if out.tracked else "no face: holding")
        readout = (f"{session.fps:.1f} fps · {1000 * latency:.0f} ms/frame ({stages} ms) · "
                   f"frame {session.frames} · {state}")
        return _downscale(out.image, self.cfg.live_max_side), readout

    def calibrate(self, session: Session) -> str:
        with session.lock:
            if session.reenactor is None:
                return "Start the webcam first; it calibrates on the first second of frames."
            session.reenactor.recalibrate()
        return "Calibrating: look at the camera with a neutral face for a second."

    # video --------------------------------------------------------------------------------------
    def render_video(self, video: Any, model: str, backend: str, intensity: float, smoothing: float,
                     session: Session, progress: Any = None) -> tuple[str, str]:
        """A driving video -> the rendered video (same frame count and frame rate, its audio kept)."""
        import gradio as gr

        from reenact.io.video import VideoReader, VideoWriter

        path = _upload_path(video)
        if path is None:
            raise gr.Error("Upload a driving video first.")
        writer = None
        try:
            _check_size(path, self.cfg.max_video_mb, "video")
            reader = VideoReader(path)
            with reader:
                total = reader.num_frames
                dur = reader.duration
                if dur is not None and dur > self.cfg.max_video_s:
                    raise VideoError(f"the video is {dur:.0f} s long; the limit is {self.cfg.max_video_s:.0f} s")
                r = make_reenactor(self.cfg, model, backend, session.target, intensity, smoothing)
                out_path = _output_path(Path(path).stem)
                t0 = time.perf_counter()
                try:
                    writer = VideoWriter(out_path, fps=reader.fps or 30.0,
                                         audio_from=path if reader.has_audio else None)
                    n = 0
                    for fr in reader:
                        if fr.t > self.cfg.max_video_s:
                            raise VideoError(f"the video is longer than {self.cfg.max_video_s:.0f} s")
                        writer.write(r.process(fr.image, fr.t).image)
                        n += 1
                        if progress is not None:
                            progress((n, total), desc="rendering", unit="frames")
                    if n == 0:
                        raise VideoError(f"no frames could be read from {Path(path).name}")
                    writer.close()
                    writer = None
                finally:
                    r.close()
        except Exception as e:  # noqa: BLE001
            if writer is not None:
                writer.abort()
            raise gr.Error(_friendly(e).replace(path, Path(path).name)) from None
        el = time.perf_counter() - t0
        return str(out_path), f"Rendered {n} frames in {el:.1f} s ({n / el:.1f} fps)."

    # script -------------------------------------------------------------------------------------
    def render_script(self, name: str, fps: float, model: str, backend: str, intensity: float,
                      smoothing: float, session: Session, progress: Any = None) -> tuple[str, str]:
        """A built-in expression script -> a video of the target performing it."""
        import gradio as gr

        from reenact.io.video import VideoWriter
        from reenact.runtime.scripts import ExpressionScript

        writer = None
        try:
            script = ExpressionScript.named(name)
            fps = float(fps)
            if not 1 <= fps <= 60:
                raise ReenactError(f"frame rate must be in [1, 60], got {fps}")
            times = np.arange(0.0, script.duration + 1e-9, 1.0 / fps)
            r = make_reenactor(self.cfg, model, backend, session.target, intensity, smoothing)
            out_path = _output_path(f"script-{name}")
            t0 = time.perf_counter()
            try:
                writer = VideoWriter(out_path, fps=fps)
                for i, t in enumerate(times):
                    writer.write(r.process(None, float(t), dblend=script.at(float(t))).image)
                    if progress is not None:
                        progress((i + 1, len(times)), desc=f"script {name}", unit="frames")
                writer.close()
                writer = None
            finally:
                r.close()
        except Exception as e:  # noqa: BLE001
            if writer is not None:
                writer.abort()
            raise gr.Error(_friendly(e)) from None
        el = time.perf_counter() - t0
        return str(out_path), f"Rendered script {name!r}: {len(times)} frames in {el:.1f} s."

    # page ---------------------------------------------------------------------------------------
    def build(self) -> Any:
        import gradio as gr

        from reenact.runtime.scripts import SCRIPTS

        cfg = self.cfg
        with gr.Blocks(title="reenact", delete_cache=(900, 3600), analytics_enabled=False) as page:
            session = gr.State(Session(), delete_callback=Session.close)
            gr.Markdown("# reenact\nDrive a photo's expression from your webcam, a video or a script. "
                        "The photo, model and backend apply to every tab; your settings are yours alone.")
            with gr.Row():
                target = gr.Image(value=self._default_target_path(), label="Target photo (drop or upload one)",
                                  type="filepath", sources=["upload", "clipboard"], height=260,
                                  elem_id="target")
                with gr.Column():
                    model = gr.Dropdown(_model_choices(cfg), value=cfg.model, label="Model", elem_id="model")
                    backend = gr.Dropdown(_backend_choices(), value=cfg.backend, label="Backend",
                                          elem_id="backend")
                    intensity = gr.Slider(0.0, 3.0, value=1.0, step=0.05, label="Expression intensity",
                                          elem_id="intensity")
                    smoothing = gr.Slider(0.0, 5.0, value=1.0, step=0.1,
                                          label="Smoothing strength (0 off, 1 default, higher steadier)",
                                          elem_id="smoothing")
                    status = gr.Textbox(label="Status", interactive=False, elem_id="status",
                                        value="Target: the default photo.")
            with gr.Tabs():
                with gr.Tab("Live", id="live"):
                    with gr.Row():
                        cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam",
                                       elem_id="live-input")
                        live_out = gr.Image(label="Reenacted", format="jpeg", interactive=False,
                                            elem_id="live-output")
                    with gr.Row():
                        calib = gr.Button("Calibrate neutral pose", elem_id="calibrate")
                        readout = gr.Textbox(label="Performance", interactive=False, elem_id="live-stats",
                                             value="Press Record on the webcam to start.")
                    gr.Markdown(f"Look at the camera with a neutral face for the first second (or after "
                                f"*Calibrate*). A stream stops after {cfg.stream_limit_s} s; press Record "
                                f"again to continue.")
                with gr.Tab("Video", id="video"):
                    with gr.Row():
                        drv = gr.Video(label="Driving video", sources=["upload"], elem_id="video-input")
                        vid_out = gr.Video(label="Rendered", interactive=False, elem_id="video-output")
                    vid_btn = gr.Button("Render", variant="primary", elem_id="video-render")
                    vid_msg = gr.Textbox(label="Result", interactive=False, elem_id="video-msg")
                    gr.Markdown(f"Up to {cfg.max_video_s:.0f} s and {cfg.max_video_mb:.0f} MB; the first "
                                f"second should show a neutral face (calibration).")
                with gr.Tab("Script", id="script"):
                    with gr.Row():
                        script = gr.Dropdown(list(SCRIPTS), value="demo", label="Expression script",
                                             elem_id="script-name")
                        fps = gr.Slider(5, 30, value=25, step=1, label="Frames per second", elem_id="script-fps")
                    scr_btn = gr.Button("Render script", variant="primary", elem_id="script-render")
                    scr_out = gr.Video(label="Rendered", interactive=False, elem_id="script-output")
                    scr_msg = gr.Textbox(label="Result", interactive=False, elem_id="script-msg")

            # preprocess=False: the photo reaches set_target as a raw upload, so that a file that
            # is not an image gets our message instead of a decoder error.
            target.upload(self.set_target, [target, model, backend, session], [target, status],
                          preprocess=False, api_name="set_target", concurrency_limit=cfg.max_renders)
            target.clear(self.reset_target, [model, backend, session], [target, status], api_name="reset_target")
            for dd in (model, backend):
                dd.input(self.set_model, [model, backend, session], [status], api_name=False,
                         concurrency_limit=cfg.max_renders)
            cam.stream(self.live_step, [cam, model, backend, intensity, smoothing, session], [live_out, readout],
                       stream_every=cfg.stream_every_s, time_limit=cfg.stream_limit_s,
                       concurrency_limit=cfg.max_streams, concurrency_id="live", show_progress="hidden",
                       api_name="live")
            calib.click(self.calibrate, [session], [readout], api_name="calibrate", queue=False)

            def video_fn(v, m, b, i, s, sess, progress=gr.Progress()):
                return self.render_video(v, m, b, i, s, sess, progress)

            def script_fn(n, f, m, b, i, s, sess, progress=gr.Progress()):
                return self.render_script(n, f, m, b, i, s, sess, progress)

            vid_btn.click(video_fn, [drv, model, backend, intensity, smoothing, session], [vid_out, vid_msg],
                          api_name="render_video", concurrency_limit=cfg.max_renders, concurrency_id="render")
            scr_btn.click(script_fn, [script, fps, model, backend, intensity, smoothing, session],
                          [scr_out, scr_msg], api_name="render_script", concurrency_limit=cfg.max_renders,
                          concurrency_id="render")
        page.queue(default_concurrency_limit=cfg.max_renders)
        return page


def build_demo(cfg: DemoConfig | None = None) -> Any:
    """The Gradio page (``gr.Blocks``), not launched."""
    return DemoApp(cfg).build()


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def launch(cfg: DemoConfig | None = None, *, host: str = "127.0.0.1", port: int | None = 7860,
           share: bool = False, block: bool = True, **kw: Any) -> Any:
    """Build and serve the demo; returns the Blocks (with ``block=False`` the server runs in the
    background: call ``.close()`` on the result to stop it). ``port=0`` picks a free port."""
    cfg = cfg or DemoConfig()
    if port == 0:
        port = free_port(host)
    page = build_demo(cfg)
    page.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
                max_file_size=f"{int(cfg.max_video_mb)}mb", show_error=False, quiet=not block, **kw)
    return page


def config_from_args(args) -> DemoConfig:
    """``DemoConfig`` from ``reenact demo``'s options (``reenact.commands.demo.DemoOptions``)."""
    return DemoConfig(model=args.model, backend=args.backend, checkpoint=args.checkpoint, width=args.width,
                      max_streams=args.max_streams, stream_limit_s=args.time_limit,
                      default_target=args.target)


def main(argv: list[str] | None = None) -> int:
    """``python -m reenact.demo.app [OPTIONS]`` = ``reenact demo [OPTIONS]``."""
    from reenact.cli import main as cli_main

    return cli_main(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
