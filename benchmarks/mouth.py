"""Opened mouths on another person's photo: the driver frames where the mouth opens widest (and,
first, the driver's calibrated rest), reenacted onto a target photo by each entry, one picture.

    python -m reenact.benchmarks.mouth --driver ../shared/data/videos/fixtures/liveportrait_driving_d18.mp4 \\
        --entries warp-dark=warp:::dark warp gcgan --out benchmarks/results/mouth.png

Self-reenactment (``reenact eval --self``) scores a mouth against the truth, but there the
driver's mouth is the target's own; this picture shows what a user sees: a photo whose mouth is
closed, opened by somebody else's. Entries are ``quality``'s (``NAME=MODEL[:CHECKPOINT[:PASTE[:MOUTH]]]``).
Rows: the driver, then each entry; columns: the rest frame and the ``--frames`` widest openings
(at least half a second apart), each cropped around the face. Every entry runs the whole clip up to
the last chosen frame through ``Reenactor.process``, as ``reenact run`` would (calibration and
filters included).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from .quality import Entry

log = logging.getLogger("reenact.benchmarks.mouth")


def widest_openings(gaps: np.ndarray, n: int, apart: int, start: int = 0) -> list[int]:
    """Indices of the ``n`` largest ``gaps`` (from ``start`` on) at least ``apart`` frames from
    each other, in time order."""
    chosen: list[int] = []
    for i in np.argsort(-gaps).tolist():
        if i >= start and all(abs(i - j) >= apart for j in chosen):
            chosen.append(i)
        if len(chosen) == n:
            break
    return sorted(chosen)


def _face_box(landmarks: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    x = np.asarray(landmarks)[:, :2]
    cx, cy = x.mean(0)
    half = 0.75 * float(np.ptp(x[:, 1]))
    h, w = shape[:2]
    return (max(int(cx - half), 0), max(int(cy - half), 0), min(int(cx + half), w), min(int(cy + half), h))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--driver", required=True, help="driver video")
    ap.add_argument("--target", default=None, help="target photo (default: the built-in one)")
    ap.add_argument("--entries", nargs="+", default=["warp-dark=warp:::dark", "warp"],
                    help="NAME=MODEL[:CHECKPOINT[:PASTE[:MOUTH]]] or MODEL")
    ap.add_argument("--frames", type=int, default=4, help="how many of the widest openings")
    ap.add_argument("--cell", type=int, default=180, help="pixels per picture cell")
    ap.add_argument("--out", default="benchmarks/results/mouth.png")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    entries = [Entry.parse(t) for t in a.entries]
    for p, what in ((a.driver, "driver video"), (a.target, "target photo")):
        if p is not None and not Path(p).is_file():
            print(f"error: {what} not found: {p}", file=sys.stderr)
            return 2

    import cv2
    from PIL import Image, ImageDraw

    from reenact.geometry import lip_gap_ratio
    from reenact.io.video import read_all
    from reenact.runtime.session import Reenactor, RuntimeOptions
    from reenact.tracking import FaceTracker
    from reenact.utils import atomic_path

    frames = read_all(a.driver)
    with FaceTracker(mode="video", max_faces=1) as tr:
        faces = [tr.track(f.image, f.t).primary for f in frames]
    gaps = np.array([lip_gap_ratio(f.landmarks) if f is not None else -1.0 for f in faces])
    fps = len(frames) / max(frames[-1].t - frames[0].t, 1e-6) if len(frames) > 1 else 30.0
    start = int(round(1.5 * fps))  # after the calibration second
    picks = widest_openings(gaps, a.frames, max(int(fps / 2), 1), start)
    rest = int(np.argmin(np.where(gaps[:start] >= 0, gaps[:start], np.inf))) if start > 0 else 0
    cols = [rest] + picks
    log.info("frames: rest %d, widest openings %s", rest, picks)

    def cells(images: list[np.ndarray], box) -> np.ndarray:
        x0, y0, x1, y1 = box
        return np.concatenate([cv2.resize(im[y0:y1, x0:x1], (a.cell, a.cell), interpolation=cv2.INTER_AREA)
                               for im in images], 1)

    rows = [cells([frames[i].image for i in cols], _face_box(faces[cols[-1]].landmarks, frames[0].image.shape))]
    for e in entries:
        log.info("%s: %s%s, mouth %s", e.name, e.model, f" ({e.checkpoint})" if e.checkpoint else "", e.mouth)
        r = Reenactor.create(e.model, a.target, checkpoint=e.checkpoint,
                             options=RuntimeOptions(paste=e.paste, mouth=e.mouth))
        try:
            got = {}
            for i, f in enumerate(frames[: cols[-1] + 1]):
                out = r.process(f.image, f.t)
                if i in cols:
                    got[i] = out.image.copy()
            box = _face_box(r.target.face.landmarks, r.target.image.shape)
        finally:
            r.close()
        rows.append(cells([got[i] for i in cols], box))
    body = np.concatenate(rows, 0)
    label_w = 110
    canvas = Image.new("RGB", (body.shape[1] + label_w, body.shape[0]), "white")
    canvas.paste(Image.fromarray(body), (label_w, 0))
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(["driver"] + [e.name for e in entries]):
        draw.text((4, j * a.cell + a.cell // 2 - 6), name, fill="black")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        canvas.save(tmp, format="PNG")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
