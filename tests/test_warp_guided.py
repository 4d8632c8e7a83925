"""Warp-guided generators: warp pairs on real frames, and a warp-guided model that learns on them
and follows both the warp and its condition."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reenact.train.config import TrainOptions
from reenact.train.loop import Trainer

from .test_training import tiny_dataset  # noqa: F401  (session fixture)


def _opts(data, tmp_path, **kw) -> TrainOptions:
    base = dict(model="gcgan", data=str(data), steps=10, seed=0, out=str(tmp_path / "runs"), device="cpu",
                sample_every=0, ckpt_every=0, log_every=1, model_options={"width": 0.25, "warp_guided": True},
                recipe_options={"batch": 8, "n_critic": 1, "lr": 1e-3})
    base.update(kw)
    return TrainOptions(**base)


def test_warp_pairs_move_frame_u_toward_frame_v(tiny_dataset, tmp_path):  # noqa: F811
    """The warp of u to v's mesh is closer to v (in u's crop) than u itself, on real frames."""
    from reenact.train.warp_pairs import WarpPairs

    tr = Trainer(_opts(tiny_dataset, tmp_path))
    pairs = WarpPairs(tr.data, tr.data.ds)
    a, b = pairs.sample(48, torch.Generator().manual_seed(3))
    wb = pairs.batch(a, b)
    assert wb.warped.shape == wb.truth.shape == wb.target.shape == (48, 3, 64, 64) and wb.hole.shape == (48, 1, 64, 64)
    keep = 1.0 - wb.hole  # the hole has no source texture: the generator's job, not the warp's
    err_warp = ((wb.warped - wb.truth).abs() * keep).mean((1, 2, 3))
    err_still = ((wb.target - wb.truth).abs() * keep).mean((1, 2, 3))
    moved = err_still > 0.03  # pairs where v differs from u at all
    assert moved.sum() > 10
    print(f"warp {err_warp[moved].mean():.4f} vs unmoved {err_still[moved].mean():.4f}, "
          f"better in {(err_warp[moved] < err_still[moved]).float().mean():.2f}")
    assert (err_warp[moved] < err_still[moved]).float().mean() > 0.75
    assert err_warp[moved].mean() < 0.9 * err_still[moved].mean()
    assert float(wb.hole.amax()) <= 1.0 and float(wb.hole.amin()) >= 0.0


def test_warp_pairs_fill_the_opened_mouth_as_the_runtime_does(tiny_dataset, tmp_path):  # noqa: F811
    """Where v opens a mouth u shows closed, the warped crop shows v's own interior (the runtime's
    default, the driver's mouth; here the driver is v), or the plain dark fill with
    ``mouth="dark"``; everywhere else the two are the same."""
    from reenact.train.warp_pairs import WarpPairs

    tr = Trainer(_opts(tiny_dataset, tmp_path))
    pairs, dark = WarpPairs(tr.data, tr.data.ds), WarpPairs(tr.data, tr.data.ds, mouth="dark")
    found = 0
    for u, v in [(i, j) for i in range(0, 40, 3) for j in range(40)]:
        w, hole, truth, _ = pairs.one(u, v)
        if (hole > 0.9).sum() < 12:
            continue
        wd, _, _, _ = dark.one(u, v)
        deep = hole > 0.9
        assert np.array_equal(w[hole == 0], wd[hole == 0])
        err = np.abs(w[deep].astype(float) - truth[deep]).mean()
        err_dark = np.abs(wd[deep].astype(float) - truth[deep]).mean()
        assert err < 0.5 * err_dark and err < 12, (u, v, err, err_dark)
        found += 1
        if found == 3:
            break
    assert found == 3, "no pair in the first frames opens the mouth"
    with pytest.raises(ValueError, match="mouth"):
        WarpPairs(tr.data, tr.data.ds, mouth="teeth")


def test_one_warp_guided_step_and_export(tiny_dataset, tmp_path):  # noqa: F811
    tr = Trainer(_opts(tiny_dataset, tmp_path))
    stats = tr.train_step()
    assert all(np.isfinite(v) for v in stats.values()) and "G/att_generated" in stats, stats
    m = tr.model.eval()
    assert m.warp_inputs() == ("warped", "hole")
    with torch.no_grad():
        for spec in m.engines():
            outs = spec.build()(*spec.sample_inputs())
            outs = outs if isinstance(outs, tuple) else (outs,)
            assert [tuple(o.shape) for o in outs] == [s.shape for s in spec.outputs], spec.name


@pytest.mark.slow
def test_warp_guided_gcgan_learns_and_follows_the_warp_and_the_condition(tiny_dataset, tmp_path):  # noqa: F811
    """On 8 consecutive frames the warp is already at the frames' own noise, so, as for the other
    models (test_warp_guided_cet2_cefgan), a mouth-and-chin box without source texture is the
    generator's job: its reconstruction must halve, end clearly below the warp, and follow both the
    warped crop and the landmarks."""
    from .test_warp_guided_cet2_cefgan import train_on_mouth_box

    steps = 300
    tr = Trainer(_opts(tiny_dataset, tmp_path, steps=steps, limit=8))
    pairs, plain, first, last, warp_rec = train_on_mouth_box(tr, steps)
    print(f"gcgan: rec {first:.4f} -> {last:.4f}, the warp's own {warp_rec:.4f}")
    assert last <= 0.5 * first, f"rec {first:.4f} -> {last:.4f}"
    assert last < 0.7 * warp_rec, f"rec {last:.4f} vs the warp's own {warp_rec:.4f}"
    m = tr.model.eval()
    a = torch.arange(4)
    b = pairs.partners(a, offset=3)
    wb = pairs.batch(a, b)
    from reenact.models.gcgan import lmk_to_vector

    with torch.no_grad():
        g = lmk_to_vector(wb.lmk68, m.res)
        out = m.gen(wb.target, g, wb.warped, wb.hole)
        shifted = m.gen(wb.target, g, torch.roll(wb.warped, 4, dims=3), wb.hole)
        other = m.gen(wb.target, g.flip(0), wb.warped, wb.hole)
        real = plain(a, b)
        out_real = m.gen(real.target, lmk_to_vector(real.lmk68, m.res), real.warped, real.hole)
    assert (out - shifted).abs().mean() > 0.02, "the output ignores the warped crop"
    effect = (out - other).abs()
    assert float((effect * wb.hole).sum() / (wb.hole.sum() * 3)) > 0.003, "the output ignores the landmarks"
    # on the unmodified pairs it keeps what the warp got right
    assert (out_real - real.truth).abs().mean() < 1.4 * (real.warped - real.truth).abs().mean()
