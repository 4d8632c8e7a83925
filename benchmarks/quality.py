"""Quality of every model on faces it never saw: ``reenact eval --self`` per model and clip, the
table of figures, and one comparison grid (driver | warp | each model) from real frames.

    python -m reenact.benchmarks.quality --clips CLIP.mp4 ... --max-frames 250 \\
        --entries warp gcgan lmklabel cet2 exprgan cefgan "gcgan-paper=gcgan:reenact/weights/gcgan_paper.safetensors:replace"

An entry is ``NAME=MODEL[:CHECKPOINT[:PASTE[:MOUTH]]]`` or just ``MODEL`` (its shipped weights,
pasted on the warp, the driver's mouth interior); e.g. ``warp-dark=warp:::dark``. Every (entry,
clip) is evaluated exactly as ``reenact eval --model MODEL --driver CLIP --self [--checkpoint ...]
[--paste ...] [--mouth ...] --max-frames N`` would (self-reenactment: the clip's first
frame is the target, so every frame has a ground truth) and its ``report.json`` is written to
``OUT/NAME-CLIP.json``. ``OUT/summary.md`` holds the table (and each clip's verdict against the
warp), ``OUT/summary.json`` the same figures, and ``OUT/comparison.png`` the grid: for each clip,
rows of evenly spaced frames, columns driver | each entry. A report that already exists is reused
(``--force`` evaluates again), so an interrupted run continues where it stopped; the grid's crops
are kept beside it in ``OUT/.grids/`` (not committed) for redrawing the picture.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reenact.choices import MOUTH_MODES

log = logging.getLogger("reenact.benchmarks.quality")

FIGURES = (  # (column, report path, format, better)
    ("correlation", ("expression", "blendshape_correlation"), "{:.3f}", "higher"),
    ("identity", ("identity", "distance"), "{:.3f}", "lower"),
    ("PSNR dB", ("pixel", "psnr_db"), "{:.2f}", "higher"),
    ("SSIM", ("pixel", "ssim"), "{:.3f}", "higher"),
    ("stability", ("temporal", "output_levels"), "{:.2f}", "lower"),
    ("driver's stability", ("temporal", "driver_levels"), "{:.2f}", "lower"),
)


@dataclass(frozen=True)
class Entry:
    name: str
    model: str
    checkpoint: str | None = None
    paste: str = "warp"
    mouth: str = "driver"

    @classmethod
    def parse(cls, text: str) -> Entry:
        name, _, spec = text.partition("=") if "=" in text else (text, "", text)
        parts = spec.split(":")
        if not parts[0] or len(parts) > 4:
            raise SystemExit(f"bad entry {text!r}: expected NAME=MODEL[:CHECKPOINT[:PASTE[:MOUTH]]] or MODEL")
        ck = parts[1] if len(parts) > 1 and parts[1] else None
        paste = parts[2] if len(parts) > 2 and parts[2] else "warp"
        mouth = parts[3] if len(parts) > 3 and parts[3] else "driver"
        if paste not in ("warp", "replace"):
            raise SystemExit(f"bad entry {text!r}: paste must be warp or replace")
        if mouth not in MOUTH_MODES:
            raise SystemExit(f"bad entry {text!r}: mouth must be one of {', '.join(MOUTH_MODES)}")
        return cls(name, parts[0], ck, paste, mouth)


def _get(report: dict, path: tuple[str, ...]) -> float:
    v = report
    for k in path:
        v = v.get(k) if isinstance(v, dict) else None
    return float("nan") if v is None else float(v)


def evaluate_entry(entry: Entry, clip: Path, out: Path, max_frames: int | None, force: bool) -> tuple[dict, dict]:
    """(report, grid) of one entry on one clip; the grid images are kept only when evaluated now."""
    from reenact.eval.protocol import evaluate

    dst = out / f"{entry.name}-{clip.stem}.json"
    cache = out / ".grids" / f"{entry.name}-{clip.stem}.npz"  # the grid's crops (not committed)
    if dst.exists() and not force:
        log.info("%s: reusing %s", entry.name, dst)
        grid = {}
        if cache.exists():
            with np.load(cache) as z:
                grid = {k: z[k] for k in z.files}
        return json.loads(dst.read_text()), grid
    cmd = (f"reenact eval --model {entry.model} --driver {clip} --self"
           + (f" --checkpoint {entry.checkpoint}" if entry.checkpoint else "")
           + (f" --paste {entry.paste}" if entry.paste != "warp" else "")
           + (f" --mouth {entry.mouth}" if entry.mouth != "driver" else "")
           + (f" --max-frames {max_frames}" if max_frames else ""))
    log.info("%s on %s: %s", entry.name, clip.name, cmd)
    with tempfile.TemporaryDirectory() as tmp:
        ev = evaluate(entry.model, clip, None, tmp, checkpoint=entry.checkpoint, max_frames=max_frames,
                      command=cmd, options={"paste": entry.paste, "mouth": entry.mouth})
        report = json.loads((Path(tmp) / "report.json").read_text())
    from reenact.utils import atomic_path

    cache.parent.mkdir(exist_ok=True)
    grid = {k: np.asarray(ev.grid[k]) for k in ("t", "driver", "output", "ground_truth")
            if ev.grid.get(k) is not None}
    with atomic_path(cache) as tmp_path:
        with open(tmp_path, "wb") as f:
            np.savez_compressed(f, **grid)
    with atomic_path(dst) as tmp_path:
        tmp_path.write_text(json.dumps(report, indent=1) + "\n")
    return report, grid


def table(entries: list[Entry], clips: list[Path], reports: dict) -> tuple[str, dict]:
    """Markdown table (one row per clip and entry) and the same figures as a dict."""
    head = "| clip | model | " + " | ".join(f[0] for f in FIGURES) + " |"
    lines = [head, "|" + " --- |" * (len(FIGURES) + 2)]
    figures: dict = {}
    for clip in clips:
        for e in entries:
            r = reports.get((e.name, clip.stem))
            if r is None:
                continue
            vals = {f[0]: _get(r, f[1]) for f in FIGURES}
            figures.setdefault(clip.stem, {})[e.name] = vals
            cells = [f[2].format(vals[f[0]]) for f in FIGURES]
            lines.append(f"| {clip.stem} | {e.name} | " + " | ".join(cells) + " |")
    means = {}
    for e in entries:
        rows = [figures[c.stem][e.name] for c in clips if e.name in figures.get(c.stem, {})]
        if rows:
            means[e.name] = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
            cells = [f[2].format(means[e.name][f[0]]) for f in FIGURES]
            lines.append(f"| **mean of {len(rows)}** | {e.name} | " + " | ".join(cells) + " |")
    figures["mean"] = means
    return "\n".join(lines) + "\n", figures


def comparison_grid(entries: list[Entry], clips: list[Path], grids: dict, path: Path, rows_per_clip: int = 3,
                    cell: int = 160) -> Path | None:
    """Rows: evenly spaced frames of each clip; columns: driver | every entry (the output crops
    the figures are measured on)."""
    import cv2
    from PIL import Image, ImageDraw

    from reenact.utils import atomic_path

    have = [c for c in clips if all((e.name, c.stem) in grids and grids[(e.name, c.stem)] for e in entries)]
    if not have:
        return None
    labels = ["driver"] + [e.name for e in entries]
    band = 22
    rows = []
    for clip in have:
        g0 = grids[(entries[0].name, clip.stem)]
        k = len(g0["t"])
        pick = sorted({int(round(x)) for x in np.linspace(1, k - 1, min(rows_per_clip, k - 1))})
        for i in pick:
            cells = [g0["ground_truth"][i] if g0.get("ground_truth") is not None else g0["driver"][i]]
            cells += [grids[(e.name, clip.stem)]["output"][i] for e in entries]
            rows.append(np.concatenate([cv2.resize(np.asarray(c), (cell, cell), interpolation=cv2.INTER_AREA)
                                        for c in cells], 1))
    body = np.concatenate(rows, 0)
    canvas = Image.new("RGB", (body.shape[1], body.shape[0] + band), "white")
    canvas.paste(Image.fromarray(body), (0, band))
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(labels):
        draw.text((j * cell + 4, 4), name, fill="black")
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", required=True, help="driver videos (self-reenactment on each)")
    ap.add_argument("--entries", nargs="+", default=["warp", "gcgan", "lmklabel", "cet2", "exprgan", "cefgan"],
                    help="NAME=MODEL[:CHECKPOINT[:PASTE[:MOUTH]]] or MODEL")
    ap.add_argument("--max-frames", type=int, default=250)
    ap.add_argument("--out", default="benchmarks/results/quality")
    ap.add_argument("--force", action="store_true", help="evaluate again even where a report exists")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    entries = [Entry.parse(t) for t in a.entries]
    clips = [Path(c) for c in a.clips]
    missing = [str(c) for c in clips if not c.is_file()]
    if missing:
        print(f"error: clip not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    reports, grids = {}, {}
    for clip in clips:
        for e in entries:
            reports[(e.name, clip.stem)], grids[(e.name, clip.stem)] = evaluate_entry(e, clip, out, a.max_frames,
                                                                                      a.force)
    md, figures = table(entries, clips, reports)
    from reenact.utils import atomic_path

    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text("# Quality on unseen faces\n\nCommand: `python -m reenact.benchmarks.quality "
                       + " ".join(argv if argv is not None else sys.argv[1:]) + "`\n\n" + md)
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(figures, indent=1, allow_nan=True) + "\n")
    png = comparison_grid(entries, clips, grids, out / "comparison.png")
    print(md)
    if png is None:
        print("(no comparison grid: some reports have no kept crops; run with --force to draw it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
