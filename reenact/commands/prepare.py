"""``reenact prepare``: track face videos/photos once into a training dataset (crops, landmarks, labels)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli import Command, register
from ..errors import InputFileError, ReenactError


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes wants comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 8:
        raise argparse.ArgumentTypeError(f"--sizes must be integers >= 8, got {text!r}")
    return sizes


def _fraction(text: str) -> float:
    try:
        f = float(text)
    except ValueError:
        f = -1.0
    if not 0.0 <= f <= 1.0:
        raise argparse.ArgumentTypeError(f"--val-fraction must be a number in [0, 1], got {text!r}")
    return f


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--every must be an integer >= 1, got {text!r}")
    return n


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="VIDEOS_OR_FOLDERS",
                   help="videos, photos or folders (searched recursively; a folder of images is one clip)")
    p.add_argument("--out", required=True, type=Path, help="dataset folder to write (replaced only on success)")
    p.add_argument("--sizes", type=_sizes, default=(64, 128), help="aligned crop sizes, e.g. 64,128 (default)")
    p.add_argument("--every", type=_positive, default=1, help="track every N-th frame (default 1)")
    p.add_argument("--val-fraction", type=_fraction, default=0.2,
                   help="share of persons held out for validation (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val person split (default 0)")
    p.add_argument("--face-model", type=Path, help="path to face_landmarker.task")
    p.add_argument("--persons", type=Path, metavar="JSON",
                   help="JSON object mapping clip names (file stems) or source paths to person names, so clips "
                        "of one person share a split (default: every clip is its own person)")


def _persons(path: Path | None) -> dict[str, str] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputFileError(f"--persons file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputFileError(f"cannot read --persons file {path}: {e}") from e
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputFileError(f"--persons file {path} must hold a JSON object of clip name -> person name")
    return {str(k): v for k, v in data.items()}


def run(args: argparse.Namespace) -> int:
    try:
        from reenact.train.dataset import prepare_dataset
    except ModuleNotFoundError as e:
        raise ReenactError(f"the training package is not importable ({e}); install the project with "
                           "`pip install -e .` from its root") from e

    from ..utils import check_output

    check_output(args.out, kind="dir", replaces=True,
                 inputs={**{f"input {i}": i for i in args.inputs}, "--persons file": args.persons,
                         "--face-model file": args.face_model})
    info = prepare_dataset(args.inputs, args.out, sizes=args.sizes, every=args.every,
                           val_fraction=args.val_fraction, seed=args.seed, face_model=args.face_model,
                           persons=_persons(args.persons))
    print(f"prepared {info.path}: {info.clips} clip(s), {info.persons} person(s); "
          f"frames kept {info.frames_kept}, skipped (no face) {info.frames_skipped}; "
          f"train {info.train_frames} frames / {info.train_persons} persons, "
          f"val {info.val_frames} frames / {info.val_persons} persons; "
          f"{info.megabytes:.1f} MB on disk; {info.seconds:.1f} s")
    if info.clips_without_face:
        print(f"no face found in: {', '.join(info.clips_without_face)}")
    return 0


register(Command("prepare", "Track face videos/photos once into a training dataset (aligned crops, landmarks, "
                            "blendshapes, AUs, pose, pseudo-labels, identity split).",
                 add_arguments, run,
                 "examples:\n  reenact prepare ../shared/data/videos/train --out data/train --every 2\n"
                 "  reenact prepare a.mp4 b.mp4 photos/ --out ds --sizes 64,128,256 --val-fraction 0.25"))
