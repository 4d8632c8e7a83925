"""``reenact prepare``: track face videos/photos once into a training dataset (crops, landmarks, labels)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from ..cli import Command, CommandOptions, Range, register
from ..errors import InputFileError, ReenactError


@dataclass(kw_only=True)
class PrepareOptions(CommandOptions):
    """``reenact prepare``."""

    inputs: Annotated[tuple[Path, ...], tyro.conf.Positional, tyro.conf.arg(metavar="VIDEOS_OR_FOLDERS")]
    """videos, photos or folders (searched recursively; a folder of images is one clip)"""
    out: Path
    """dataset folder to write (replaced only on success)"""
    sizes: str = "64,128"
    """aligned crop sizes, comma-separated integers >= 8"""
    every: Annotated[int, Range(1)] = 1
    """track every N-th frame"""
    val_fraction: Annotated[float, Range(0, 1)] = 0.2
    """share of persons held out for validation"""
    seed: int = 0
    """seed of the train/val person split"""
    face_model: Path | None = None
    """path to face_landmarker.task"""
    persons: Annotated[Path | None, tyro.conf.arg(metavar="JSON")] = None
    """JSON object mapping clip names (file stems) or source paths to person names, so clips of one person share a split (default: every clip is its own person)"""

    def crop_sizes(self) -> tuple[int, ...]:
        try:
            sizes = tuple(int(s) for s in self.sizes.split(",") if s.strip())
        except ValueError:
            raise ReenactError(f"--sizes wants comma-separated integers, got {self.sizes!r}") from None
        if not sizes or min(sizes) < 8:
            raise ReenactError(f"--sizes must be integers >= 8, got {self.sizes!r}")
        return sizes

    def check(self) -> None:
        self.crop_sizes()


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


def run(args: PrepareOptions) -> int:
    try:
        from reenact.train.dataset import prepare_dataset
    except ModuleNotFoundError as e:
        raise ReenactError(f"the training package is not importable ({e}); install the project with "
                           "`pip install -e .` from its root") from e

    from ..utils import check_output

    check_output(args.out, kind="dir", replaces=True,
                 inputs={**{f"input {i}": i for i in args.inputs}, "--persons file": args.persons,
                         "--face-model file": args.face_model})
    info = prepare_dataset(args.inputs, args.out, sizes=args.crop_sizes(), every=args.every,
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
                 PrepareOptions, run,
                 "examples:\n  reenact prepare ../shared/data/videos/train --out data/train --every 2\n"
                 "  reenact prepare a.mp4 b.mp4 photos/ --out ds --sizes 64,128,256 --val-fraction 0.25"))
