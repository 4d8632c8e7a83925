"""The weight-shipping and expression-basis tools on a tiny real dataset."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reenact.train.config import TrainOptions
from reenact.train.loop import Trainer

from .test_training import tiny_dataset  # noqa: F401  (session fixture)


def test_fit_basis_maps_blendshapes_to_mesh_motion(tiny_dataset):  # noqa: F811
    from reenact.train.fit_basis import fit_basis

    B, info = fit_basis(str(tiny_dataset))
    assert B.shape == (52, 478, 3) and np.isfinite(B).all()
    assert info["frames"] > 50 and 0.3 < info["r2"] <= 1.0
    # jawOpen moves the chin down (image y grows) more than the forehead
    from reenact.tracking import BLENDSHAPE_INDEX

    jaw = B[BLENDSHAPE_INDEX["jawOpen"]]
    assert jaw[152, 1] > 0.05 and abs(jaw[10, 1]) < 0.5 * jaw[152, 1]


@pytest.mark.slow
def test_ship_writes_fp16_weights_the_runtime_loads_with_a_sample_grid(tiny_dataset, tmp_path):  # noqa: F811
    from reenact.models.weights import load_model
    from reenact.train.ship import ship

    opts = TrainOptions(model="gcgan", data=str(tiny_dataset), steps=2, seed=0, out=str(tmp_path / "runs"),
                        device="cpu", sample_every=0, ckpt_every=0, log_every=1, model_options={"width": 0.25},
                        recipe_options={"batch": 4, "n_critic": 1})
    tr = Trainer(opts, run_dir=tmp_path / "run")
    tr.train_step()
    ck = tr.save_checkpoint()
    dst = ship(ck, tmp_path / "weights", dataset=str(tiny_dataset))
    info = json.loads(dst.with_suffix(".json").read_text())
    assert info["model"] == "gcgan" and info["dtype"] == "float16" and info["weights"] == "ema"
    assert (tmp_path / "weights" / "gcgan.png").stat().st_size > 1000
    shipped, full = load_model(dst).eval(), load_model(ck).eval()
    t = full.reference_input()
    with torch.no_grad():
        a = shipped.drive(shipped.encode_target(t), shipped.condition_from_frame(t))
        b = full.drive(full.encode_target(t), full.condition_from_frame(t))
    assert (a - b).abs().max() < 0.02  # FP16 storage of the same EMA weights


def test_model_card_from_a_run(tiny_dataset, tmp_path):  # noqa: F811
    """The card states the run's facts, draws its curves and puts the entry beside the warp."""
    from reenact.train.card import card
    from reenact.train.ship import ship

    opts = TrainOptions(model="gcgan", data=str(tiny_dataset), steps=4, seed=0, out=str(tmp_path / "runs"),
                        device="cpu", sample_every=0, ckpt_every=0, log_every=1,
                        model_options={"width": 0.25, "warp_guided": True}, recipe_options={"batch": 4, "n_critic": 1})
    tr = Trainer(opts, run_dir=tmp_path / "run")
    run = tr.run(progress=False)
    dst = ship(run, tmp_path / "weights")
    q = tmp_path / "quality"
    q.mkdir()
    row = {"correlation": 0.7, "identity": 0.25, "PSNR dB": 25.0, "SSIM": 0.7, "stability": 0.5,
           "driver's stability": 0.6}
    (q / "summary.json").write_text(json.dumps({"clip_a": {"warp": row, "gcgan": {**row, "PSNR dB": 26.5}},
                                                "mean": {}}))
    md = card(run, dst, q, "gcgan", "It beats nothing yet.", "2 CPU cores", "reenact train gcgan ...")
    text = md.read_text()
    assert "warp-guided" in text and "4 steps" in text and "It beats nothing yet." in text
    assert "| clip_a | gcgan | 0.700 | 0.250 | 26.50 |" in text and "| clip_a | warp |" in text
    assert (tmp_path / "weights" / "gcgan_curves.png").stat().st_size > 1000
