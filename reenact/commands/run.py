"""``reenact run``: drive a target photo from a webcam, a video, images or a script."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..cli import Command, number_in, register, width_type
from ..errors import NoFaceError, ReenactError
from ..models import list_models
from ..runtime import DEFAULT_MODEL, Reenactor, RuntimeOptions
from ..runtime.io import MAX_FPS, open_sink, open_source
from ..runtime.pipeline import run_pipeline
from ..runtime.scripts import SCRIPTS

log = logging.getLogger(__name__)

DEFAULT_OUT = "reenact-out.mp4"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", help="target photo (default: the built-in public-domain astronaut photo)")
    p.add_argument("--driver", default="script:demo",
                   help="webcam[:N], a video file, a folder of images, or script:NAME "
                        f"({', '.join(SCRIPTS)}); default script:demo")
    p.add_argument("--model", default=DEFAULT_MODEL, choices=list_models(), help=f"default {DEFAULT_MODEL}")
    p.add_argument("--backend", default="auto", choices=["auto", "pytorch", "onnxruntime", "tensorrt"])
    p.add_argument("--out", default=None, help=f"output: a video file (default {DEFAULT_OUT}), window, "
                                               "virtualcam or none")
    p.add_argument("--checkpoint", help="trained weights: a run folder or step-N.safetensors (default: the "
                                        "weights shipped with the package)")
    p.add_argument("--width", type=width_type(), help="run an untrained network of this width, in (0, 4] (for testing)")
    p.add_argument("--stats", help="write per-frame stage times and latency as JSON")
    p.add_argument("--face-index", type=number_in("--face-index", 0, float("inf"), integer=True), default=None, help="driver face to follow, 0 = largest")
    p.add_argument("--target-face", type=number_in("--target-face", 0, float("inf"), integer=True), default=None, help="face of the target photo to animate, 0 = largest")
    p.add_argument("--intensity", type=float, default=1.0, help="expression gain (default 1)")
    p.add_argument("--smoothing", type=float, default=1.0, help="smoothing strength, 0 = off (default 1)")
    p.add_argument("--calibrate", type=float, default=1.0, metavar="SECONDS",
                   help="seconds of neutral driver at the start used as its reference (default 1)")
    p.add_argument("--paste", default="warp", choices=["warp", "replace"],
                   help="warp (default): the photo moved by the mesh warp at full resolution, plus what the "
                        "generator adds to the face; replace: the generated face itself, pasted into the unmoved "
                        "photo (research comparisons)")
    p.add_argument("--pose", action=argparse.BooleanOptionalAction, default=True,
                   help="follow the driver's head turn (roll fully, yaw and pitch eased to 25 degrees; default on)")
    p.add_argument("--gaze", action=argparse.BooleanOptionalAction, default=True,
                   help="follow the driver's eye movements (default on)")
    p.add_argument("--color-match", action="store_true", help="with --paste replace: match the generated face's "
                                                              "colours to the photo")
    p.add_argument("--fps", type=number_in("--fps", 0, MAX_FPS, lo_open=True),
                   help=f"frame rate for image folders and scripts, in (0, {MAX_FPS:g}] (default 25)")
    p.add_argument("--device", help="torch device for the pytorch backend (cpu, cuda)")
    p.add_argument("--face-model", type=Path, help="path to face_landmarker.task")
    p.add_argument("--no-progress", action="store_true")


_NOT_FILES = ("none", "", "window", "screen", "virtualcam")


def _check_outputs(a: argparse.Namespace) -> None:
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


def run(a: argparse.Namespace) -> int:
    if a.face_model:
        from ..tracking.model_file import set_face_model

        set_face_model(a.face_model, "--face-model")
    _check_outputs(a)
    opts = RuntimeOptions(intensity=a.intensity, smoothing=a.smoothing, calib_s=a.calibrate,
                          face_index=a.face_index, color_match=a.color_match, paste=a.paste,
                          pose=a.pose, gaze=a.gaze)
    opts.validate()
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
        stats = run_pipeline(r, source, pipeline_sink, stats_path=a.stats, progress=not a.no_progress)
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


register(Command("run", "drive a target photo's expression from a webcam, video, images or a script",
                 add_arguments, run,
                 examples="examples:\n"
                          "  reenact run                                  # built-in photo + script -> reenact-out.mp4\n"
                          "  reenact run --target me.jpg --driver webcam --out window\n"
                          "  reenact run --target me.jpg --driver clip.mp4 --model cefgan --out out.mp4 --stats s.json\n"
                          "  reenact run --target me.jpg --driver webcam --out virtualcam   # for video calls"))
