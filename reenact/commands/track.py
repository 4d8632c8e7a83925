"""``reenact track``: track every frame of a video, photo or image folder; save arrays and a preview."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Iterator

import tyro

from ..cli import Command, CommandOptions, Range, register
from ..errors import InputFileError, ReenactError

if TYPE_CHECKING:
    import numpy as np

    from ..tracking.tracks import TrackSequence

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class TrackCommand(CommandOptions):
    """``reenact track`` as typed; ``resolve()`` turns it into ``TrackOptions``."""

    input: tyro.conf.Positional[Path | None] = None
    """video file, photo or folder of images (default: the built-in target photo)"""
    out: Path | None = None
    """output arrays, .npz (default: INPUT_STEM.tracks.npz)"""
    preview: Path | None = None
    """write an overlay preview: .mp4 for videos and folders, .png/.jpg for a photo"""
    face_model: Path | None = None
    """path to face_landmarker.task"""
    max_faces: Annotated[int, Range(1)] = 1
    """faces tracked per frame (photos: at least 8)"""
    face_index: Annotated[int, Range(0)] = 0
    """face stored in the arrays, 0 = largest"""

    def check(self) -> None:
        if self.face_index >= self.max_faces:
            raise ReenactError(f"--face-index must be in [0, --max-faces) = [0, {self.max_faces}), got {self.face_index}")


@dataclass(frozen=True)
class TrackOptions:
    input: Path                 # video, photo or folder of images
    out: Path                   # arrays (.npz)
    preview: Path | None        # overlay: a video (.mp4) or, for a photo, an image
    face_model: Path | None     # face_landmarker.task (else $REENACT_FACE_LANDMARKER, cache, download)
    max_faces: int              # faces tracked per frame
    face_index: int             # which face (0 = largest) goes into the arrays

    @classmethod
    def resolve(cls, a: TrackCommand) -> TrackOptions:
        """Defaults filled in and outputs checked (writable, not an input, the right kind)."""
        from ..assets import default_target_path
        from ..io.images import IMAGE_EXTENSIONS, is_image_path
        from ..io.video import WRITABLE_VIDEO_EXTENSIONS
        from ..utils import check_output

        inp = a.input if a.input else default_target_path()
        out = a.out if a.out else Path(f"{inp.stem}.tracks.npz")
        preview = a.preview
        check_output(out, inputs={"input": inp})
        if preview is not None:
            photo = inp.is_file() and is_image_path(inp)
            allowed = IMAGE_EXTENSIONS if photo else WRITABLE_VIDEO_EXTENSIONS
            if preview.suffix.lower() not in allowed:
                raise ReenactError(f"--preview {preview}: use a {', '.join(sorted(allowed))} file name for "
                                   f"{'a photo' if photo else 'a video or image folder'}")
            check_output(preview, flag="--preview", inputs={"input": inp, "--out file": out})
        return cls(inp, out, preview, a.face_model, a.max_faces, a.face_index)


@dataclass(frozen=True)
class _Item:
    t: float
    image: np.ndarray


def _frames(opts: TrackOptions) -> tuple[str, int | None, float, Iterator[_Item]]:
    """(kind, frame count if known, fps, items) for the input."""
    from ..io.images import is_image_path, load_image
    from ..io.video import VideoReader, is_video_path, list_images

    src = opts.input
    if src.is_dir():
        files = list_images(src)
        return "folder", len(files), 30.0, (_Item(i / 30.0, load_image(f)) for i, f in enumerate(files))
    if not src.exists():
        raise InputFileError(f"input not found: {src}")
    if is_image_path(src):
        return "photo", 1, 0.0, iter([_Item(0.0, load_image(src))])
    if not is_video_path(src):
        log.warning("%s has no known video extension; trying to read it as a video", src)
    reader = VideoReader(src)

    def items() -> Iterator[_Item]:
        with reader:
            for fr in reader:
                yield _Item(fr.t, fr.image)
    return "video", reader.num_frames, reader.fps, items()


def track(opts: TrackOptions) -> TrackSequence:
    import numpy as np
    from tqdm import tqdm

    from ..io.images import save_image
    from ..io.video import VideoWriter
    from ..tracking import FaceTracker, FrameTracking
    from ..tracking.draw import draw_tracking
    from ..tracking.tracks import TrackSequence

    kind, total, fps, items = _frames(opts)
    mode = "image" if kind == "photo" else "video"
    max_faces = max(opts.max_faces, 8) if kind == "photo" else opts.max_faces
    frames: list[FrameTracking] = []
    times: list[float] = []
    writer = None
    if opts.preview and kind != "photo":
        writer = VideoWriter(opts.preview, fps=fps or 30.0)
    try:
        with FaceTracker(opts.face_model, mode=mode, max_faces=max_faces) as tracker:
            for item in tqdm(items, total=total, unit="frame", desc=f"track {opts.input.name}", disable=None):
                t0 = time.perf_counter()
                trk = tracker.track(item.image, item.t if mode == "video" else None)
                times.append(time.perf_counter() - t0)
                frames.append(trk)
                if writer is not None:
                    writer.write(draw_tracking(item.image, trk), item.t)
                elif opts.preview:
                    save_image(opts.preview, draw_tracking(item.image, trk))
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if not frames:
        raise InputFileError(f"no frames could be read from {opts.input}")
    seq = TrackSequence.from_frames(frames, opts.face_index, source=str(opts.input))
    seq.save(opts.out)
    n_ok = int(seq.ok.sum())
    faces = f", {int(seq.num_faces.max())} faces at most" if seq.num_faces.max() > 1 else ""
    print(f"tracked {len(seq)} frame(s) of {opts.input}: {n_ok} with a face{faces}; "
          f"median {1000 * float(np.median(times)):.1f} ms/frame -> {opts.out}"
          + (f", preview {opts.preview}" if opts.preview else ""))
    if n_ok == 0:
        log.warning("no face was found in %s", opts.input)
    return seq


def run(args: TrackCommand) -> int:
    track(TrackOptions.resolve(args))
    return 0


register(Command("track", "Track faces in a video, photo or image folder (MediaPipe, 478 points, 52 blendshapes).",
                 TrackCommand, run,
                 "examples:\n  reenact track                       # the built-in photo\n"
                 "  reenact track clip.mp4 --out clip.npz --preview overlay.mp4\n"
                 "  reenact track group.jpg --max-faces 8 --preview group-overlay.png"))
