"""The training loop itself: checkpoints, exact resume, run folders, DDP, bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from reenact.errors import InputFileError, ReenactError
from reenact.train import checkpoint
from reenact.train.config import TrainOptions
from reenact.train.features import FeatureLoss, vgg19_features
from reenact.train.loop import Trainer

from .conftest import IMAGES
from .test_training import tiny_dataset  # noqa: F401  (session fixture)

MODEL = "gcgan"


def _opts(data, tmp_path, **kw) -> TrainOptions:
    base = dict(model=MODEL, data=str(data), steps=6, seed=3, out=str(tmp_path / "runs"), device="cpu",
                sample_every=0, ckpt_every=0, log_every=1, model_options={"width": 0.125},
                recipe_options={"batch": 4, "n_critic": 2})
    base.update(kw)
    return TrainOptions(**base)


def _params(tr: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in tr.model.state_dict().items()}


def test_checkpoint_round_trip_is_exact(tiny_dataset, tmp_path):
    tr = Trainer(_opts(tiny_dataset, tmp_path), run_dir=tmp_path / "run")
    for _ in range(3):
        tr.train_step()
    path = tr.save_checkpoint()
    assert path.suffix == ".safetensors" and path.with_suffix(".json").is_file()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["model"] == MODEL and meta["step"] == 3 and meta["features"] == "discriminator-feature-matching"
    other = Trainer(_opts(tiny_dataset, tmp_path, seed=99), run_dir=tmp_path / "other")
    checkpoint.load(path, model=other.model, ema=other.ema, optimizers=other.plan.optimizers)
    a, b = _params(tr), _params(other)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for name in tr.ema:
        for pa, pb in zip(tr.ema[name].parameters(), other.ema[name].parameters()):
            assert torch.equal(pa, pb)
    for name, opt in tr.plan.optimizers.items():
        sa, sb = opt.state_dict()["state"], other.plan.optimizers[name].state_dict()["state"]
        assert sa.keys() == sb.keys()
        for pid in sa:
            for k in sa[pid]:
                assert torch.equal(torch.as_tensor(sa[pid][k]), torch.as_tensor(sb[pid][k])), (name, pid, k)


def test_resume_continues_with_the_same_losses(tiny_dataset, tmp_path):
    full = Trainer(_opts(tiny_dataset, tmp_path, steps=6), run_dir=tmp_path / "full")
    for _ in range(6):
        full.train_step()
    part = Trainer(_opts(tiny_dataset, tmp_path, steps=6), run_dir=tmp_path / "part")
    for _ in range(3):
        part.train_step()
    part.save_checkpoint()
    resumed = Trainer(_opts(tiny_dataset, tmp_path, steps=6, resume=str(tmp_path / "part")))
    assert resumed.step == 3
    for _ in range(3):
        resumed.train_step()
    for a, b in zip(full.history[3:], resumed.history):
        assert a == b, (a, b)
    fa, fb = _params(full), _params(resumed)
    assert all(torch.equal(fa[k], fb[k]) for k in fa)


def test_run_folder_holds_options_samples_checkpoints_and_scalars(tiny_dataset, tmp_path):
    tr = Trainer(_opts(tiny_dataset, tmp_path, steps=4, sample_every=2, ckpt_every=2, tag="smoke"))
    run = tr.run(progress=False)
    assert run.name == "00000-gcgan-smoke" and run.parent == tmp_path / "runs"
    opts = json.loads((run / "options.json").read_text())
    assert opts["options"]["steps"] == 4 and opts["model_config"]["width"] == 0.125
    assert opts["features"] == "discriminator-feature-matching"
    assert sorted(p.name for p in (run / "checkpoints").glob("*.safetensors")) == \
        ["step-0000002.safetensors", "step-0000004.safetensors"]
    grid = Image.open(run / "samples" / "step-0000004.png")
    assert grid.size[0] > 64 * 4 and grid.size[1] >= 3 * 64  # rows: source, target, output
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    # a second run gets the next number
    tr2 = Trainer(_opts(tiny_dataset, tmp_path, steps=1))
    assert tr2.run(progress=False).name == "00001-gcgan"


def test_vgg19_file_is_used_when_given(tmp_path):
    sd = {f"features.{k}": v for k, v in vgg19_features().state_dict().items()}
    path = tmp_path / "vgg19.pth"
    torch.save(sd, path)
    fl = FeatureLoss(path, layers=("conv1_2", "conv2_2"))
    assert fl.kind == "vgg19"
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert fl.loss(x, x, disc_features=None) == 0
    assert fl.loss(x, x.flip(-1), disc_features=None) > 0
    bad = tmp_path / "bad.pth"
    torch.save({"classifier.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(Exception, match="features"):
        FeatureLoss(bad)


def test_bad_inputs(tiny_dataset, tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        Trainer(_opts(tmp_path / "nope", tmp_path))
    old = tmp_path / "old"
    old.mkdir()
    (old / "meta.json").write_text(json.dumps({"format": "reenact-dataset", "version": 99}))
    with pytest.raises(InputFileError, match="99"):
        Trainer(_opts(old, tmp_path))
    with pytest.raises(KeyError, match="unknown model"):
        Trainer(_opts(tiny_dataset, tmp_path, model="nosuch"))
    with pytest.raises(ValueError, match="unknown GCGANRecipeConfig option"):
        Trainer(_opts(tiny_dataset, tmp_path, recipe_options={"batchsize": 4}))


def test_pair_model_on_one_photo_per_person_is_refused(tmp_path):
    from reenact.train.dataset import prepare_dataset

    photos = prepare_dataset([IMAGES / "sadtalker_sad.png", IMAGES / "skimage_astronaut.png"],
                             tmp_path / "photos", sizes=(64,), val_fraction=0.0, progress=False)
    with pytest.raises(ReenactError, match="pairs of frames of the same person"):
        Trainer(_opts(photos.path, tmp_path))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_process_ddp_gives_identical_replicas(tiny_dataset, tmp_path):
    """torchrun --nproc_per_node=2 with the gloo backend on CPU; each rank saves its weights."""
    script = tmp_path / "ddp.py"
    script.write_text(f'''
import os, sys, torch
from reenact.train.config import TrainOptions
from reenact.train.loop import Trainer
opts = TrainOptions(model="{MODEL}", data={str(tiny_dataset)!r}, steps=3, seed=5, device="cpu",
                    out={str(tmp_path / "runs")!r}, sample_every=0, ckpt_every=0,
                    model_options={{"width": 0.125}}, recipe_options={{"batch": 4, "n_critic": 1}})
tr = Trainer(opts)
tr.run(progress=False)
rank = int(os.environ["RANK"])
torch.save({{k: v for k, v in tr.model.state_dict().items()}}, {str(tmp_path)!r} + f"/rank{{rank}}.pt")
print("rank", rank, "world", tr.dist.world, "loss", tr.history[-1]["G/loss"])
''')
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        str(script)], capture_output=True, text=True, timeout=280, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert r.stdout.count("world 2") == 2
    w0, w1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    losses = [float(line.split("loss")[1]) for line in r.stdout.splitlines() if line.startswith("rank")]
    assert losses[0] != losses[1], "the two ranks should see different batches"
    assert len(list((tmp_path / "runs").iterdir())) == 1, "only rank 0 writes a run folder"


def test_cli_train_dry_run_and_short_run(tiny_dataset, tmp_path, capsys):
    from reenact.cli import main

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model": {"width": 0.125}, "recipe": {"batch": 4}}))
    assert main(["train", MODEL, "--data", str(tiny_dataset), "--config", str(cfg), "--set", "n_critic=1",
                 "--dry-run"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["model_options"] == {"width": 0.125} and shown["recipe_options"] == {"batch": 4, "n_critic": 1}
    assert main(["train", MODEL, "--data", str(tiny_dataset), "--config", str(cfg), "--set", "n_critic=1",
                 "--steps", "2", "--out", str(tmp_path / "runs"), "--device", "cpu"]) == 0
    assert "trained gcgan for 2 steps" in capsys.readouterr().out
    assert (tmp_path / "runs" / "00000-gcgan" / "checkpoints" / "step-0000002.safetensors").is_file()
    assert main(["train", MODEL, "--data", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
