"""The evaluation report folder: ``report.json``, ``grid.png`` and ``curves.png``.

``report.json`` holds every figure of ``Evaluation.summary``, the per-frame series
(``per_frame``: lists over frames, ``null`` where a figure could not be measured) and the scored
blendshape traces. JSON has no infinity: an infinite PSNR (identical images) is written as the
string ``"inf"``. Every file is written atomically: a report is either complete or absent.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..utils import atomic_path

REPORT_VERSION = 1
GRID_CELL = 160  # pixels per grid image


def to_json(value: Any, digits: int = 6) -> Any:
    """Plain JSON values: numpy scalars/arrays to Python, NaN to None, +-inf to "inf"/"-inf",
    floats rounded to ``digits`` significant digits."""
    if isinstance(value, dict):
        return {str(k): to_json(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v, digits) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist(), digits)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return float(f"{v:.{digits}g}")
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return str(value)
    return str(value)


def report_dict(ev) -> dict[str, Any]:
    """The content of ``report.json`` for an ``Evaluation``."""
    return to_json({
        "report_version": REPORT_VERSION,
        **ev.summary,
        "per_frame": ev.per_frame,
        "blendshape_traces": {
            "names": ev.blendshapes["names"],
            "correlation": ev.blendshapes["correlation"],
            "driver": np.asarray(ev.blendshapes["driver"]).T,  # [K, N]: one list per blendshape
            "output": np.asarray(ev.blendshapes["output"]).T,
            "note": "baseline-subtracted; rows follow names, columns follow per_frame.t"},
        "grid_frames": ev.grid["index"],
    }, digits=6)


def write_json(path: str | os.PathLike, data: dict[str, Any]) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    return path


# --------------------------------------------------------------------------- pictures


def _fit(image: np.ndarray, size: int) -> np.ndarray:
    """Letterbox an RGB image into a ``size`` x ``size`` black square."""
    h, w = image.shape[:2]
    s = size / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    img = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    out = np.zeros((size, size, 3), np.uint8)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = img
    return out


def _figure(w_in: float, h_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w_in, h_in), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def write_grid(ev, path: str | os.PathLike) -> Path:
    """Rows driver / output / ground truth (self-reenactment), columns evenly spaced times."""
    g = ev.grid
    rows = [("driver", g["driver"]), ("output", g["output"])]
    if g.get("ground_truth") is not None:
        rows.append(("ground truth", g["ground_truth"]))
    cols = len(g["t"])
    cell = GRID_CELL / 100
    fig = _figure(cols * cell + 0.5, len(rows) * cell + 0.4)
    fig.subplots_adjust(left=0.5 / (cols * cell + 0.5), right=1, bottom=0, top=1 - 0.4 / (len(rows) * cell + 0.4),
                        wspace=0.02, hspace=0.02)
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, (name, images) in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.imshow(_fit(np.asarray(images[c]), GRID_CELL))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t = {g['t'][c]:.2f} s", fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=10)
    return _save(fig, Path(path))


def _shade_still(ax, t: np.ndarray, still: np.ndarray) -> None:
    for i in np.nonzero(still)[0]:
        if i > 0:
            ax.axvspan(t[i - 1], t[i], color="0.9", lw=0, zorder=0)


def write_curves(ev, path: str | os.PathLike, top_k: int = 3) -> Path:
    """Per-frame curves: pixel metrics, blendshapes driver vs output, identity, frame change."""
    pf = ev.per_frame
    t = np.asarray(pf["t"])
    s = ev.summary
    panels = []
    if "psnr_db" in pf:
        panels.append("pixel")
    panels.append("expression")
    if "identity_distance" in pf:
        panels.append("identity")
    panels.append("temporal")
    fig = _figure(10, 2.3 * len(panels) + 0.3)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    fig.subplots_adjust(left=0.08, right=0.9, top=0.96, bottom=0.06, hspace=0.35)
    for ax, kind in zip(axes, panels):
        if kind == "pixel":
            p = np.where(np.isfinite(pf["psnr_db"]), pf["psnr_db"], np.nan)
            ax.plot(t, p, color="C0", label="PSNR (dB)")
            ax.set_ylabel("PSNR (dB)", color="C0")
            ax2 = ax.twinx()
            ax2.plot(t, pf["ssim"], color="C1", label="SSIM")
            ax2.set_ylabel("SSIM", color="C1")
            px = s["pixel"]
            if not np.isfinite(p).any():
                ax.text(0.5, 0.5, "every output equals its ground truth (PSNR infinite)", ha="center",
                        va="center", transform=ax.transAxes)
            ax.set_title(f"self-reenactment: PSNR {px['psnr_db']:.2f} dB, SSIM {px['ssim']:.3f}, "
                         f"L1 {px['l1_levels']:.2f} levels", fontsize=10)
        elif kind == "expression":
            b = ev.blendshapes
            names = b["names"]
            drv, out = np.asarray(b["driver"]), np.asarray(b["output"])
            if names:
                order = np.argsort(-np.nan_to_num(np.nanstd(drv, axis=0)))[:top_k]
                for j, k in enumerate(order):
                    ax.plot(t, drv[:, k], color=f"C{j}", lw=1.5, label=f"{names[k]} driver")
                    ax.plot(t, out[:, k], color=f"C{j}", lw=1.2, ls="--", label=f"{names[k]} output")
                ax.legend(fontsize=7, ncol=top_k, loc="upper left")
            corr = s["expression"]["blendshape_correlation"]
            corr_txt = "n/a" if corr is None or not np.isfinite(corr) else f"{corr:.2f}"
            ax.set_title(f"blendshapes minus baseline, driver (solid) vs output (dashed); "
                         f"mean correlation {corr_txt} over {len(names)} blendshapes", fontsize=10)
            ax.set_ylabel("blendshape")
        elif kind == "identity":
            ax.plot(t, pf["identity_distance"], color="C3", label="output vs target")
            if "ground_truth_identity_distance" in pf:
                ax.plot(t, pf["ground_truth_identity_distance"], color="0.5", ls=":", label="ground truth vs target")
            ax.axhline(s["identity"]["threshold"], color="k", lw=0.8, ls="--", label="same-person threshold")
            ax.set_ylabel("dlib distance")
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=7, loc="upper left")
            ax.set_title(f"identity: mean descriptor distance {s['identity']['distance']:.3f}", fontsize=10)
        else:
            _shade_still(ax, t, np.asarray(pf["still"]) > 0)
            ax.plot(t, pf["output_frame_change"], color="C2", label="output")
            ax.plot(t, pf["driver_frame_change"], color="0.4", lw=1, label="driver")
            ax.set_ylabel("levels (0-255)")
            ax.legend(fontsize=7, loc="upper left")
            tm = s["temporal"]
            o, d = tm["output_levels"], tm["driver_levels"]
            fmt = lambda v: "n/a" if v is None or not np.isfinite(v) else f"{v:.2f}"  # noqa: E731
            ax.set_title(f"frame-to-frame change in the face (grey: driver still): output {fmt(o)}, "
                         f"driver {fmt(d)} levels while still", fontsize=10)
    axes[-1].set_xlabel("time (s)")
    return _save(fig, Path(path))


def write_report(ev, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write report.json, grid.png and curves.png into ``out_dir`` (created if needed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {"report": write_json(out / "report.json", report_dict(ev)),
            "grid": write_grid(ev, out / "grid.png"),
            "curves": write_curves(ev, out / "curves.png")}
