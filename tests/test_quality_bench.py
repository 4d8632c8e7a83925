"""The quality benchmark's bookkeeping: entries, the table of figures and the comparison grid
(the evaluation itself is ``reenact eval``'s, tested in test_eval_e2e)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reenact.benchmarks.quality import Entry, comparison_grid, table


def test_entries_parse():
    assert Entry.parse("warp") == Entry("warp", "warp", None, "warp")
    assert Entry.parse("gcgan-paper=gcgan:w/gcgan_paper.safetensors:replace") == Entry(
        "gcgan-paper", "gcgan", "w/gcgan_paper.safetensors", "replace")
    assert Entry.parse("mine=cet2:runs/1") == Entry("mine", "cet2", "runs/1", "warp")
    assert Entry.parse("warp-dark=warp:::dark") == Entry("warp-dark", "warp", None, "warp", "dark")
    for bad in ("x=gcgan:a:b:c", "x=:a", "x=gcgan:a:glue", "x=warp:::teeth", "x=warp:a:warp:dark:y"):
        with pytest.raises(SystemExit):
            Entry.parse(bad)


def _report(corr, ident, psnr):
    return {"expression": {"blendshape_correlation": corr}, "identity": {"distance": ident},
            "pixel": {"psnr_db": psnr, "ssim": 0.7}, "temporal": {"output_levels": 1.0, "driver_levels": 1.5}}


def test_table_rows_and_means():
    entries = [Entry.parse("warp"), Entry.parse("gcgan")]
    clips = [Path("a.mp4"), Path("b.mp4")]
    reports = {("warp", "a"): _report(0.7, 0.2, 25.0), ("gcgan", "a"): _report(0.8, 0.3, 26.0),
               ("warp", "b"): _report(0.6, 0.4, 23.0), ("gcgan", "b"): _report(0.7, 0.1, 24.0)}
    md, fig = table(entries, clips, reports)
    assert "| a | gcgan | 0.800 | 0.300 | 26.00 |" in md
    assert fig["mean"]["warp"]["correlation"] == pytest.approx(0.65)
    assert fig["mean"]["gcgan"]["identity"] == pytest.approx(0.2)
    assert "**mean of 2** | gcgan" in md


def test_comparison_grid_columns(tmp_path):
    entries = [Entry.parse("warp"), Entry.parse("gcgan")]
    g = np.random.default_rng(0)
    grid = {"t": np.arange(8) / 8.0, "driver": g.integers(0, 255, (8, 256, 256, 3), np.uint8),
            "output": g.integers(0, 255, (8, 256, 256, 3), np.uint8)}
    grid["ground_truth"] = grid["driver"]
    grids = {(e.name, "a"): grid for e in entries}
    png = comparison_grid(entries, [Path("a.mp4")], grids, tmp_path / "c.png", rows_per_clip=3, cell=64)
    im = np.asarray(Image.open(png))
    assert im.shape[1] == 3 * 64 and im.shape[0] == 3 * 64 + 22
    assert comparison_grid(entries, [Path("b.mp4")], grids, tmp_path / "d.png") is None
