"""Model card of shipped weights: what they are, how they were trained, the curves, the figures.

    python -m reenact.train.card runs/00003-gcgan --weights reenact/weights/gcgan.safetensors \\
        --quality benchmarks/results/quality --entry gcgan --verdict verdict.md

Writes ``<weights stem>.md`` and ``<weights stem>_curves.png`` beside the weights. The facts come
from the run (``options.json``, its TensorBoard scalars: steps, wall time, the watched
reconstruction against the warp's own, the attention's generated share), the weights' JSON
sidecar (parameters, bytes) and the quality benchmark's ``summary.json`` (this entry and the
``warp`` entry on every clip). The verdict is a person's: a Markdown file.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

from reenact.utils import atomic_path

PAPERS = {
    "gcgan": "GC-GAN (Qiao et al., CAVW 2018)",
    "lmklabel": "the landmark-heatmap + label GAN (Li, Qi, Sun, IEEE Access 2021)",
    "cet2": "2CET-GAN (Hu et al., 2022)",
    "exprgan": "ExprGAN (Ding, Sricharan, Chellappa, AAAI 2018)",
    "cefgan": "Cascade EF-GAN (Wu et al., CVPR 2020)",
}


DRIVER_STABILITY = "driver's stability"  # the quality benchmark's column names


def scalars(run: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """TensorBoard scalars of a run: tag -> (steps, values, wall times)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    ea.Reload()
    out = {}
    for tag in ea.Tags()["scalars"]:
        ev = ea.Scalars(tag)
        out[tag] = (np.array([e.step for e in ev]), np.array([e.value for e in ev]), np.array([e.wall_time for e in ev]))
    return out


def training_hours(sc: dict, gap_s: float = 1800.0) -> float:
    """Hours of training in a run's scalars: the wall time between consecutive logged events,
    leaving out pauses longer than ``gap_s`` (a run resumed in another session)."""
    t = np.unique(np.concatenate([v[2] for v in sc.values()]))
    d = np.diff(t)
    return float(d[d <= gap_s].sum()) / 3600


def _smooth(v: np.ndarray, k: int = 5) -> np.ndarray:
    if len(v) < k:
        return v
    return np.convolve(np.pad(v, (k // 2, k - 1 - k // 2), mode="edge"), np.ones(k) / k, mode="valid")


def curves(sc: dict, watch: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec = next((t for t in sc if t.endswith("/" + watch)), None)
    warp = next((t for t in sc if t.endswith("/warp_rec")), None)
    att = next((t for t in sc if t.endswith("/att_generated")), None)
    fig, axes = plt.subplots(1, 2 if att else 1, figsize=(10 if att else 5.5, 3.4), squeeze=False)
    ax = axes[0][0]
    if rec:
        ax.plot(sc[rec][0], _smooth(sc[rec][1]), label=f"output ({rec})")
    if warp:
        ax.plot(sc[warp][0], _smooth(sc[warp][1]), label="the warp's own", color="gray")
    ax.set_xlabel("step")
    ax.set_ylabel("L1 to the truth (training pairs)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if att:
        ax = axes[0][1]
        ax.plot(sc[att][0], _smooth(sc[att][1]), color="tab:red")
        ax.set_xlabel("step")
        ax.set_ylabel("generated share outside the hole")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def card(run: Path, weights: Path, quality: Path | None, entry: str, verdict: str, hardware: str,
         command: str) -> Path:
    opts = json.loads((run / "options.json").read_text())
    info = json.loads(weights.with_suffix(".json").read_text())
    model = info["model"]
    sc = scalars(run)
    watch = "rec"
    steps = int(info.get("step") or 0)
    hours = training_hours(sc)
    png = curves(sc, watch, weights.with_name(weights.stem + "_curves.png"))
    rc = opts["recipe_config"]
    mc = info["model_config"]
    mode = "warp-guided" if mc.get("warp_guided") else "paper-faithful"
    lines = [
        f"# {model}: {mode} weights",
        "",
        f"The weights `reenact run --model {model}`, `reenact eval` and the demo use when no `--checkpoint` is given.",
        "",
        "| | |",
        "|---|---|",
        f"| model | {PAPERS.get(model, model)}, `{model}`, {info.get('res')} px crops, {mode} |",
        f"| width | {mc.get('width')} (every channel count x {mc.get('width')}); {info['params'] / 1e6:.2f} M generator "
        f"parameters; FP16, {info['bytes'] / 1e6:.1f} MB |",
        f"| data | `{Path(opts['dataset']).name}` prepared from the project's training clips: {opts['train_frames']} "
        "training frames; the validation people were never trained on |",
        f"| training | {steps} steps, batch {rc.get('batch')}, lr {rc.get('lr')}; recipe options "
        + ", ".join(f"{k} {v}" for k, v in rc.items() if k.startswith("w_")) + " |",
        f"| weights shipped | {info.get('weights')} |",
        f"| hardware, time | {hardware}; {hours:.2f} h of training (pauses between resumed sessions left out) |",
        f"| command | `{command}` |",
        "",
        f"![training curves]({png.name})",
        "",
        f"`{png.name}`: left, the L1 of the output to the truth on training pairs against the warp's own "
        "(what the generator adds to the warp); right, the share of pixels outside the mouth hole the "
        "attention gives to generated colour.",
        "",
    ]
    if quality is not None and (quality / "summary.json").exists():
        fig = json.loads((quality / "summary.json").read_text())
        lines += ["## Evaluation", "",
                  "`reenact eval --self` (self-reenactment: each clip's first frame is the target; every figure "
                  f"on the full-resolution output), from `{quality.as_posix()}/summary.md`:", "",
                  "| clip | model | correlation | identity | PSNR dB | SSIM | stability (driver's) |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for clip, per in fig.items():
            for name in ("warp", entry):
                if name in per:
                    v = per[name]
                    lines.append(f"| {clip} | {name} | {v['correlation']:.3f} | {v['identity']:.3f} | "
                                 f"{v['PSNR dB']:.2f} | {v['SSIM']:.3f} | {v['stability']:.2f} "
                                 f"({v[DRIVER_STABILITY]:.2f}) |")
        lines.append("")
    if weights.with_suffix(".png").exists():
        lines += [f"![validation samples]({weights.stem}.png)", "",
                  f"`{weights.stem}.png`: validation people; rows: the target u, u moved by the mesh warp to "
                  "another frame v, v itself (the truth), the output.", ""]
    lines += ["## Verdict", "", verdict.strip(), ""]
    dst = weights.with_suffix(".md")
    with atomic_path(dst) as tmp:
        tmp.write_text("\n".join(lines))
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="the run folder the weights were shipped from")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--quality", default="benchmarks/results/quality", help="quality benchmark folder")
    ap.add_argument("--entry", help="the weights' entry name in the quality benchmark (default: the model)")
    ap.add_argument("--verdict", required=True, help="Markdown file with the honest verdict")
    ap.add_argument("--hardware", default=f"{platform.machine()} CPU")
    ap.add_argument("--command", default="", help="the training command, as run")
    a = ap.parse_args(argv)
    weights = Path(a.weights)
    model = json.loads(weights.with_suffix(".json").read_text())["model"]
    dst = card(Path(a.run), weights, Path(a.quality) if a.quality else None, a.entry or model,
               Path(a.verdict).read_text(), a.hardware, a.command)
    print(dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
