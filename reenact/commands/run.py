"""``reenact run``: drive a target photo from a webcam, a video, images or a script."""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ..cli import Command, register
from ..errors import ReenactError
from ..models import list_models
from ..runtime import DEFAULT_MODEL, Reenactor, RuntimeOptions
from ..runtime.io import open_sink, open_source
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
    p.add_argument("--width", type=float, help="run an untrained network of this width (for testing)")
    p.add_argument("--stats", help="write per-frame stage times and latency as JSON")
    p.add_argument("--face-index", type=int, default=None, help="driver face to follow, 0 = largest")
    p.add_argument("--target-face", type=int, default=None, help="face of the target photo to animate, 0 = largest")
    p.add_argument("--intensity", type=float, default=1.0, help="expression gain (default 1)")
    p.add_argument("--smoothing", type=float, default=1.0, help="smoothing strength, 0 = off (default 1)")
    p.add_argument("--calibrate", type=float, default=1.0, metavar="SECONDS",
                   help="seconds of neutral driver at the start used as its reference (default 1)")
    p.add_argument("--paste", default="residual", choices=["residual", "replace"],
                   help="residual (default): the photo plus what the expression changes, keeping the photo's "
                        "detail; replace: the generated face itself")
    p.add_argument("--color-match", action="store_true", help="with --paste replace: match the generated face's "
                                                              "colours to the photo")
    p.add_argument("--fps", type=float, help="frame rate for image folders and scripts (default 25)")
    p.add_argument("--device", help="torch device for the pytorch backend (cpu, cuda)")
    p.add_argument("--face-model", type=Path, help="path to face_landmarker.task")
    p.add_argument("--no-progress", action="store_true")


def run(a: argparse.Namespace) -> int:
    if a.face_model:
        os.environ["REENACT_FACE_LANDMARKER"] = str(a.face_model)
    opts = RuntimeOptions(intensity=a.intensity, smoothing=a.smoothing, calib_s=a.calibrate,
                          face_index=a.face_index, color_match=a.color_match, paste=a.paste)
    opts.validate()
    source = open_source(a.driver, fps=a.fps)  # fails early on a missing webcam or unreadable file
    try:
        r = Reenactor.create(a.model, a.target, checkpoint=a.checkpoint, width=a.width, backend=a.backend,
                             device=a.device, target_face_index=a.target_face, options=opts)
    except BaseException:
        source.close()
        raise
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
    print(f"{len(stats.frames)} frames in {stats.wall_s:.1f} s ({stats.fps:.1f} fps), latency median "
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
