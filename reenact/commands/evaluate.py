"""``reenact eval``: measure how well a model transfers expression and keeps identity (CPU)."""
from __future__ import annotations

import contextlib
import math
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import tyro

from ..choices import BackendName, ModelName, MouthMode, PasteMode
from ..cli import Command, CommandOptions, Range, register
from ..errors import ReenactError


@dataclass(kw_only=True)
class EvalOptions(CommandOptions):
    """``reenact eval``."""

    model: ModelName
    """model to evaluate"""
    driver: Path | None = None
    """driver video (required unless --target is a video)"""
    target: Path | None = None
    """target photo, or a video: its first frame is the target; the same video as --driver (or no --driver) means self-reenactment"""
    self_reenact: Annotated[bool, tyro.conf.arg(name="self"), tyro.conf.FlagCreatePairsOff] = False
    """self-reenactment: the driver's first frame is the target, so every frame has a ground truth (PSNR / SSIM / L1)"""
    out: Path = Path("report")
    """report folder"""
    checkpoint: Path | None = None
    """trained weights (default: the weights shipped for --model)"""
    width: Annotated[float | None, Range(0, 4, lo_open=True)] = None
    """width of an untrained model, in (0, 4] (testing the pipeline only)"""
    backend: BackendName = "pytorch"
    """inference backend"""
    max_frames: Annotated[int | None, Range(2)] = None
    """evaluate only the first N frames"""
    paste: PasteMode = "warp"
    """warp: the photo moved by the mesh warp plus the generator's residual, as `reenact run` shows it; replace: the generated face alone (paper mode)"""
    pose: bool = True
    """follow the driver's head turn"""
    gaze: bool = True
    """follow the driver's eye movements"""
    mouth: MouthMode = "driver"
    """a mouth the photo shows closed, opened: driver, the driver's own mouth interior (teeth, tongue) brightness-matched to the photo; dark, a plain dark interior"""
    identity: bool = True
    """dlib identity distances (they need pip install "reenact[eval]")"""


def _inputs(a: EvalOptions) -> tuple[Path, Path | None]:
    """(driver video, target or None for self-reenactment)."""
    from ..io.video import is_video_path

    if a.driver is None:
        if a.target is not None and is_video_path(a.target):
            return a.target, None
        raise ReenactError("give --driver VIDEO (or a video as --target for self-reenactment)")
    if a.self_reenact:
        if a.target is not None:
            raise ReenactError("--self uses the driver's first frame as the target: leave out --target")
        return a.driver, None
    if a.target is None:
        raise ReenactError("give --target PHOTO_OR_VIDEO, or --self for self-reenactment on the driver")
    return a.driver, a.target


def _fmt(value: Any, spec: str = ".3f", unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf" + unit
    return f"{value:{spec}}{unit}"


def summary_lines(s: dict[str, Any]) -> list[str]:
    """The short table printed after an evaluation."""
    rows: list[tuple[str, str, str]] = []
    if s.get("pixel"):
        px = s["pixel"]
        rows += [("PSNR (face crop)", _fmt(px["psnr_db"], ".2f", " dB"), "higher is better"),
                 ("SSIM (face crop)", _fmt(px["ssim"]), "1 = identical"),
                 ("L1 (face crop)", _fmt(px["l1_levels"], ".2f", " /255"), "lower is better")]
    ex = s["expression"]
    if ex["output_tracked_frames"] < 3:
        how = f"MediaPipe found a face in only {ex['output_tracked_frames']} output frame(s)"
    else:
        how = f"over {len(ex['blendshapes_scored'])} blendshapes; pass >= 0.6"
    rows.append(("blendshape correlation", _fmt(ex["blendshape_correlation"]), how))
    if ex.get("ground_truth_correlation") is not None:
        rows.append(("  ground truth scores", _fmt(ex["ground_truth_correlation"]), "ceiling of the re-tracking"))
    if ex.get("landmark_nme") is not None:
        rows.append(("landmark NME", _fmt(ex["landmark_nme"]), "vs commanded landmarks, / inter-ocular"))
    if s.get("identity"):
        idt = s["identity"]
        rows.append(("identity distance", _fmt(idt["distance"]), f"dlib; same person < {idt['threshold']}"))
        if idt.get("ground_truth_distance") is not None:
            rows.append(("  ground truth", _fmt(idt["ground_truth_distance"]), "the driver's own frames"))
    tm = s["temporal"]
    rows.append(("still-driver frame change", _fmt(tm["output_levels"], ".2f", " /255"),
                 f"driver's own {_fmt(tm['driver_levels'], '.2f')}; pass <= 2"))
    w = max(len(r[0]) for r in rows)
    v = max(len(r[1]) for r in rows)
    lines = [f"  {a:<{w}}  {b:>{v}}  {c}" for a, b, c in rows]
    verdict = ", ".join(f"{k.replace('_', ' ')} {'pass' if c['passed'] else 'FAIL'}"
                        for k, c in s["checks"].items() if c is not None and c["passed"] is not None)
    return lines + ([f"  checks: {verdict}"] if verdict else [])


REPORT_FILES = ("report.json", "grid.png", "curves.png")


@contextlib.contextmanager
def _report_or_nothing(out: Path):
    """An evaluation that fails or is stopped (Ctrl-C, SIGTERM) leaves no half report: the report
    files it wrote are removed, and the folder too when it made it."""
    existed = out.is_dir()
    before = {n for n in REPORT_FILES if (out / n).exists()}
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for n in set(REPORT_FILES) - before:
                with contextlib.suppress(OSError):
                    (out / n).unlink()
        raise


def run(args: EvalOptions) -> int:
    from ..eval.protocol import evaluate

    driver, target = _inputs(args)
    from ..utils import check_output

    check_output(args.out, kind="dir", writes=REPORT_FILES,
                 inputs={"driver": driver, "target": target, "checkpoint": args.checkpoint})
    command = "reenact " + " ".join(shlex.quote(x) for x in sys.argv[1:]) if sys.argv[1:] else "reenact eval"
    with _report_or_nothing(args.out):
        ev = evaluate(args.model, driver, target, args.out, checkpoint=args.checkpoint, backend=args.backend,
                      width=args.width, max_frames=args.max_frames, progress=True, identity=args.identity,
                      command=command,
                      options={"paste": args.paste, "pose": args.pose, "gaze": args.gaze, "mouth": args.mouth})
    s = ev.summary
    mode = "self-reenactment" if s["self_reenactment"] else "cross-reenactment"
    print(f"{args.model} on {s['frames']} frame(s) of {driver} ({mode}, target {s['target']}):")
    print("\n".join(summary_lines(s)))
    print(f"report: {args.out / 'report.json'}, {args.out / 'grid.png'}, {args.out / 'curves.png'}")
    return 0


register(Command(
    "eval", "Evaluate a model: expression transfer, identity, temporal stability; self-reenactment PSNR/SSIM.",
    EvalOptions, run,
    "examples:\n"
    "  reenact eval --model warp --driver clip.mp4 --self --out report/\n"
    "  reenact eval --model gcgan --driver clip.mp4 --self --paste replace   # the generator alone (paper mode)\n"
    "  reenact eval --model gcgan --target clip.mp4                # the same: self-reenactment on clip.mp4\n"
    "  reenact eval --model lmklabel --driver clip.mp4 --target photo.jpg --max-frames 300\n"
    "  reenact eval --model cet2 --checkpoint runs/00003-cet2 --driver clip.mp4 --self"))
