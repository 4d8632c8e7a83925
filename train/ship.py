"""Package trained weights for the runtime: FP16 generator weights + JSON + a sample grid.

    python -m reenact.train.ship runs/00003-gcgan --out reenact/weights
    python -m reenact.train.ship runs/00003-gcgan/checkpoints/step-0002000.safetensors --live

Writes ``<model>.safetensors`` (the generator side only, in FP16: the EMA weights, or the live
weights with ``--live`` when a short run's EMA still lags), ``<model>.json`` (model config,
alignment template, provenance) and ``<model>.png`` (validation samples: target, generated with its
own condition, another frame, generated with that frame's condition; for warp-guided models:
target u, u warped to frame v, v itself, generated). ``reenact run`` and the demo load ``reenact/weights/<model>.safetensors`` by default.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from reenact.models.weights import load_model
from reenact.utils import atomic_path

from .checkpoint import FORMAT, VERSION, read_meta


def _latest(path: Path) -> Path:
    if path.is_dir():
        cks = sorted(path.glob("checkpoints/step-*.safetensors"))
        if not cks:
            raise SystemExit(f"no checkpoints in {path}")
        return cks[-1]
    return path


def ship(checkpoint: str | Path, out_dir: str | Path, *, live: bool = False, dataset: str | None = None,
         note: str = "") -> Path:
    ck = _latest(Path(checkpoint))
    meta = read_meta(ck)
    model = load_model(ck, use_ema=not live)
    gen = set(model.generator_names)
    out: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        top = k.split(".")[0]
        if top in gen:
            out[f"ema.{k}"] = v.detach().half().contiguous() if v.is_floating_point() else v.contiguous()
        elif "." not in k:  # top-level buffers (statistics the runtime reads)
            out[f"model.{k}"] = v.detach().float().contiguous()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = meta["model"]
    dst = out_dir / f"{name}.safetensors"
    with atomic_path(dst) as tmp:
        save_file(out, str(tmp), metadata={"format": FORMAT, "version": str(VERSION)})
    info = {"format": FORMAT, "version": VERSION, "model": name, "model_config": meta["model_config"],
            "template": meta.get("template"), "res": meta.get("res"), "step": meta.get("step"),
            "weights": "live" if live else "ema", "dtype": "float16", "source_checkpoint": ck.name,
            "recipe_config": meta.get("recipe_config"), "features": meta.get("features"), "note": note,
            "params": int(sum(v.numel() for k, v in out.items() if k.startswith("ema."))),
            "bytes": int(dst.stat().st_size)}
    with atomic_path(dst.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(info, indent=1))
    if dataset:
        _sample_grid(dst, dataset, out_dir / f"{name}.png")
    print(f"{name}: {info['params'] / 1e6:.2f} M parameters, {info['bytes'] / 1e6:.1f} MB -> {dst}")
    return dst


@torch.no_grad()
def _sample_grid(weights: Path, dataset: str, png: Path, n: int = 8) -> None:
    from PIL import Image

    from .data import TrainData
    from .dataset import load_dataset

    m = load_model(weights)
    d = TrainData(load_dataset(dataset), m.res, "val")
    idx = torch.from_numpy(np.linspace(0, len(d) - 1, n).round().astype(np.int64))
    t = d.target_input(idx)
    if m.warp_inputs():  # warp-guided: target u, u warped to v, v (truth), output
        from reenact.models.base import TargetInput

        from .warp_pairs import WarpPairs

        pairs = WarpPairs(d, d.ds)
        wb = pairs.batch(idx, pairs.partners(idx, offset=7))
        v = TargetInput(wb.truth, wb.lmk68, wb.aus, wb.blend, wb.label, torch.zeros_like(wb.label, dtype=torch.bool))
        feeds = {**m.condition_from_frame(v).as_dict(), "warped": wb.warped, "hole": wb.hole}
        out = m.drive(m.encode_target(t), feeds)
        rows = [torch.cat(list(x), 2) for x in (wb.target, wb.warped, wb.truth, out)]
    else:
        src = d.target_input(idx.roll(1))  # each target re-rendered with another frame's condition
        gen = m.drive(m.encode_target(t), m.condition_from_frame(t))
        cross = m.drive(m.encode_target(t), m.condition_from_frame(src))
        rows = [torch.cat(list(x), 2) for x in (t.crop, gen, src.crop, cross)]
    g = ((torch.cat(rows, 1).permute(1, 2, 0) + 1) * 127.5).clamp(0, 255).byte().numpy()
    with atomic_path(png) as tmp:
        Image.fromarray(g).save(tmp, format="PNG")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", help="run folder or step-N.safetensors")
    ap.add_argument("--out", default="reenact/weights")
    ap.add_argument("--live", action="store_true", help="ship the live weights instead of the EMA")
    ap.add_argument("--data", help="prepared dataset: draw a validation sample grid")
    ap.add_argument("--note", default="")
    a = ap.parse_args(argv)
    ship(a.checkpoint, a.out, live=a.live, dataset=a.data, note=a.note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
