"""``reenact run``: drive a target photo from a webcam, a video, images or a script."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from ..choices import DEFAULT_MODEL, MAX_FPS, BackendName, ModelName, MouthMode, PasteMode
from ..cli import Command, CommandOptions, Range, register
from ..errors import NoFaceError, ReenactError

log = logging.getLogger(__name__)

DEFAULT_OUT = "reenact-out.mp4"


@dataclass(kw_only=True)
class RunOptions(CommandOptions):
    """``reenact run``. The runtime knobs (intensity ... gaze) have ``RuntimeOptions``' defaults."""

    target: str | None = None
    """target photo (default: the built-in public-domain astronaut photo)"""
    driver: str = "script:demo"
    """webcam[:N], a video file, a folder of images, or script:NAME (demo, emotions, talk, blink)"""
    model: ModelName = DEFAULT_MODEL
    """the generator; warp: the mesh warp alone, no network"""
    backend: BackendName = "auto"
    """inference backend"""
    out: str | None = None
    """output: a video file (default reenact-out.mp4), window, virtualcam or none"""
    checkpoint: str | None = None
    """trained weights: a run folder or step-N.safetensors (default: the weights shipped with the package)"""
    width: Annotated[float | None, Range(0, 4, lo_open=True)] = None
    """run an untrained network of this width, in (0, 4] (for testing)"""
    stats: str | None = None
    """write per-frame stage times and latency as JSON"""
    face_index: Annotated[int | None, Range(0)] = None
    """driver face to follow, 0 = largest"""
    target_face: Annotated[int | None, Range(0)] = None
    """face of the target photo to animate, 0 = largest"""
    intensity: Annotated[float, Range(0, 3)] = 1.0
    """expression gain, in [0, 3]"""
    smoothing: Annotated[float, Range(0, 5)] = 1.0
    """smoothing strength, 0 = off, in [0, 5]"""
    calibrate: Annotated[float, Range(0), tyro.conf.arg(metavar="SECONDS")] = 1.0
    """seconds of neutral driver at the start used as its reference"""
    paste: PasteMode = "warp"
    """warp: the photo moved by the mesh warp at full resolution, plus what the generator adds to the face; replace: the generated face itself, pasted into the unmoved photo (research comparisons)"""
    pose: bool = True
    """follow the driver's head turn (roll fully, yaw and pitch eased to 25 degrees)"""
    gaze: bool = True
    """follow the driver's eye movements"""
    mouth: MouthMode = "driver"
    """a mouth the photo shows closed, opened: driver, the driver's own mouth interior (teeth, tongue) brightness-matched to the photo; dark, a plain dark interior"""
    color_match: Annotated[bool, tyro.conf.FlagCreatePairsOff] = False
    """with --paste replace: match the generated face's colours to the photo"""
    fps: Annotated[float | None, Range(0, MAX_FPS, lo_open=True)] = None
    """frame rate for image folders and scripts, in (0, 240] (default 25)"""
    device: str | None = None
    """torch device for the pytorch backend (cpu, cuda)"""
    face_model: Path | None = None
    """path to face_landmarker.task"""
    progress: bool = True
    """show a progress bar"""


_NOT_FILES = ("none", "", "window", "screen", "virtualcam")


def _check_outputs(a: RunOptions) -> None:
    """Refuse --out / --stats before anything starts: unwritable, the wrong kind, or an input."""
    from ..io.video import WRITABLE_VIDEO_EXTENSIONS
    from ..utils import check_output

    driver = None if a.driver.startswith(("webcam", "script:")) else a.driver
    inputs = {"driver": driver, "target photo": a.target, "checkpoint": a.checkpoint, "face model": a.face_model}
    out = a.out if a.out is not None else DEFAULT_OUT
    video = out not in _NOT_FILES
    if video:
        if Path(out).suffix.lower() not in WRITABLE_VIDEO_EXTENSIONS:
            raise ReenactError(f"--out {out}: use a {', '.join(WRITABLE_VIDEO_EXTENSIONS)} file name "
                               f"(or window, virtualcam, none)")
        check_output(out, inputs=inputs)
    if a.stats:
        check_output(a.stats, flag="--stats", inputs={**inputs, "--out video": out if video else None})


def _check_calibration(source, calib_s: float) -> None:
    """A file driver must be longer than its neutral calibration, or every frame stays neutral."""
    if source.live or source.scripted:
        return
    dur = getattr(source, "duration", None)
    if not dur and source.num_frames and source.fps:
        dur = source.num_frames / source.fps
    if dur and calib_s >= dur:
        raise ReenactError(f"--calibrate {calib_s:g} s is not shorter than the driver ({dur:.2f} s): every frame "
                           f"would be spent calibrating and the output would stay neutral; use --calibrate "
                           f"{max(0.0, round(dur / 3, 2)):g} or less")


def _scriptable(model) -> bool:
    """False for a model a script cannot drive (2CET-GAN without its fitted blendshape-to-code map)."""
    bc = getattr(model, "blend_code", None)
    if bc is None:
        return True
    import torch

    return bool(torch.as_tensor(bc).abs().sum() > 0)


def run(a: RunOptions) -> int:
    from ..runtime import Reenactor, RuntimeOptions
    from ..runtime.io import open_sink, open_source
    from ..runtime.pipeline import run_pipeline

    if a.face_model:
        from ..tracking.model_file import set_face_model

        set_face_model(a.face_model, "--face-model")
    _check_outputs(a)
    opts = RuntimeOptions(intensity=a.intensity, smoothing=a.smoothing, calib_s=a.calibrate,
                          face_index=a.face_index, color_match=a.color_match, paste=a.paste,
                          pose=a.pose, gaze=a.gaze, mouth=a.mouth)
    source = open_source(a.driver, fps=a.fps)  # fails early on a missing webcam or unreadable file
    try:
        _check_calibration(source, a.calibrate)
        r = Reenactor.create(a.model, a.target, checkpoint=a.checkpoint, width=a.width, backend=a.backend,
                             device=a.device, target_face_index=a.target_face, options=opts)
    except NoFaceError as e:
        source.close()
        if a.target_face is not None and str(e).startswith("--face-index"):  # the target's option, named
            raise NoFaceError("--target-face" + str(e)[len("--face-index"):]) from None
        raise
    except BaseException:
        source.close()
        raise
    if source.scripted and not _scriptable(r.model):
        source.close()
        r.close()
        raise ReenactError(f"{a.driver} cannot drive this {a.model} model: its blendshape-to-code map is fitted at "
                           f"the end of training and these weights have none. Pass --checkpoint runs/NNNNN-{a.model} "
                           f"from `reenact train {a.model}`, or use a video, image folder or webcam driver")
    out = a.out if a.out is not None else DEFAULT_OUT
    try:
        h, w = r.target.image.shape[:2]
        pipeline_sink = open_sink(out, fps=source.fps, size=(w, h), audio_from=source.audio_path)
    except BaseException:
        source.close()
        r.close()
        raise
    log.info("target %dx%d, model %s (%s weights), backend %s, driver %s -> %s", w, h, r.model.model_id,
             r.weights, r.backend.name, source.description, pipeline_sink.description)
    try:
        stats = run_pipeline(r, source, pipeline_sink, stats_path=a.stats, progress=a.progress)
    finally:
        source.close()
        r.close()
    s = stats.summary()
    lat = s.get("latency", {})
    print(f"{stats.count} frames in {stats.wall_s:.1f} s ({stats.fps:.1f} fps), latency median "
          f"{lat.get('median_ms', float('nan')):.0f} ms / p99 {lat.get('p99_ms', float('nan')):.0f} ms; "
          f"{stats.stopped_by}" + (f"; wrote {out}" if out not in ("none", "window", "screen", "virtualcam") else ""))
    if stats.stopped_by == "the webcam disconnected":
        raise ReenactError("the webcam disconnected; the output so far was saved")
    return 0


register(Command("run", "Drive a target photo's expression from a webcam, video, images or a script.",
                 RunOptions, run,
                 examples="examples:\n"
                          "  reenact run                                  # built-in photo + script -> reenact-out.mp4\n"
                          "  reenact run --target me.jpg --driver webcam --out window\n"
                          "  reenact run --target me.jpg --driver clip.mp4 --model cefgan --out out.mp4 --stats s.json\n"
                          "  reenact run --target me.jpg --driver webcam --out virtualcam   # for video calls"))
