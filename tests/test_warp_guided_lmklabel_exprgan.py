"""Warp-guided lmklabel and ExprGAN (as tests/test_warp_guided.py for GC-GAN): one training step on
warp pairs, the engines (their split, shapes and ONNX export), and (slow) on 8 real frames with a
mouth box to paint each halves its loss, beats the warp it is given and follows both the warp and
its condition."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reenact.models import build_model
from reenact.train.config import TrainOptions
from reenact.train.loop import Trainer

from .test_training import tiny_dataset  # noqa: F401  (session fixture)

# model -> (model options, recipe options). lmklabel's CPU cost is its 136-channel 7x7 geometry conv
# at 128^2, hence its small batch; ExprGAN trains the reconstruction stage (the one with the watched
# loss) with a short refinement stage after it.
TINY = {
    "lmklabel": ({"width": 0.125, "n_blocks": 2}, {"batch": 2, "lr": 1e-3, "w_gan": 0.5}),
    "exprgan": ({"width": 0.125, "d": 1}, {"batch": 4, "lr": 1e-3, "w_id": 0.1, "w_q": 0.01,
                                            "stages": (0.0, 0.85, 0.15)}),
}
DRIVE = {"lmklabel": "lmklabel_drive", "exprgan": "exprgan_decode"}


def _opts(model: str, data, tmp_path, **kw) -> TrainOptions:
    mo, ro = TINY[model]
    base = dict(model=model, data=str(data), steps=10, seed=0, out=str(tmp_path / "runs"), device="cpu",
                sample_every=0, ckpt_every=0, log_every=1, model_options={**mo, "warp_guided": True},
                recipe_options=ro)
    base.update(kw)
    return TrainOptions(**base)


def _generate(model: str, m, pairs, wb, warped=None, swap: bool = False, colour: bool = False) -> torch.Tensor:
    """The generator's output for warp batch ``wb`` (``warped`` in place of its warp; ``swap``: the
    condition of the samples in reverse order, i.e. another frame's; ``colour``: its generated colour
    instead of the blend)."""
    warped = wb.warped if warped is None else warped
    flip = (lambda x: x.flip(0)) if swap else (lambda x: x)
    if model == "lmklabel":
        from reenact.models.lmklabel import label_planes_vector

        lmk_src = pairs.data.batch(wb.a).lmk68
        out = m.gen(wb.target, lmk_src, flip(wb.lmk68), flip(label_planes_vector(wb.label)), warped, wb.hole,
                    with_colour=True)
    else:
        code = m.code(wb.label, m.intensity(wb.blend, wb.label))
        out = m.gen(wb.target, flip(code), warped, wb.hole, with_colour=True)
    return out[2] if colour else out[0]


@pytest.mark.parametrize("model", sorted(TINY))
def test_one_warp_guided_step_and_the_engines(model, tiny_dataset, tmp_path):  # noqa: F811
    tr = Trainer(_opts(model, tiny_dataset, tmp_path))
    stats = tr.train_step()
    assert all(np.isfinite(v) for v in stats.values()), stats
    assert "G/att_generated" in stats and "G/warp_rec" in stats, stats
    m = tr.model.eval()
    assert m.warp_inputs() == ("warped", "hole")
    drive = [s for s in m.engines() if s.kind == "drive"]
    assert [s.name for s in drive] == [DRIVE[model]]
    assert [(s.name, s.shape) for s in drive[0].inputs[-2:]] == [("warped", (1, 3, 128, 128)), ("hole", (1, 1, 128, 128))]
    with torch.no_grad():
        for spec in m.engines():
            outs = spec.build()(*spec.sample_inputs())
            outs = outs if isinstance(outs, tuple) else (outs,)
            assert [tuple(o.shape) for o in outs] == [s.shape for s in spec.outputs], spec.name
        # the split engines are the generator: target engine + drive engine == one forward
        pairs = tr.recipe.warp_pairs()
        wb = pairs.batch(torch.tensor([0]), torch.tensor([3]))
        full = _generate(model, m, pairs, wb)
        from reenact.models.base import TargetInput

        b = tr.data.batch(wb.a)
        target = TargetInput(wb.target, b.lmk68, b.aus, b.blend, b.label, b.neutral.reshape(-1))
        frame = TargetInput(wb.truth, wb.lmk68, wb.aus, wb.blend, wb.label, b.neutral.reshape(-1))
        state = m.encode_target(target)
        split = m.drive(state, {**m.condition_from_frame(frame).as_dict(), "warped": wb.warped, "hole": wb.hole})
        assert (split - full).abs().max() < 1e-4
        # the attention starts on the warp: at initialisation the output is mostly the warped crop
        fresh = build_model(model, **{**TINY[model][0], "warp_guided": True}).eval()
        out, a = (fresh.gen(wb.target, b.lmk68, wb.lmk68, fresh.label_vector(wb.label), wb.warped, wb.hole,
                            with_attention=True) if model == "lmklabel" else
                  fresh.gen(wb.target, fresh.code(wb.label, torch.ones(1)), wb.warped, wb.hole, with_attention=True))
        assert 0.8 < float(a.mean()) < 0.95 and out.shape == (1, 3, 128, 128)


@pytest.mark.parametrize("model", sorted(TINY))
def test_warp_guided_engines_export_to_onnx(model, tmp_path):
    from reenact.engines.export import export_onnx, onnx_parity

    torch.manual_seed(0)
    m = build_model(model, **{**TINY[model][0], "warp_guided": True}).eval()
    for spec in m.engines():
        path = export_onnx(spec, tmp_path / f"{spec.name}.onnx")
        assert onnx_parity(spec, path, inputs=lambda g, spec=spec: m.realistic_inputs(spec, g)) < spec.onnx_rtol, \
            spec.name


def test_paper_mode_has_no_warp_inputs():
    for model in TINY:
        m = build_model(model, **TINY[model][0])
        assert m.warp_inputs() == () and not hasattr(m.gen, "w_enc")


# steps and overrides of the learning runs on 8 real frames (the mouth-box task of
# tests/test_warp_guided_cet2_cefgan.py: a mouth-and-chin box without source texture to paint in,
# the warp kept elsewhere). lmklabel's condition is landmarks here (the 8 frames are all labelled
# neutral), whose path its N(0, 0.02) init attenuates: it is measured on the generated colour.
LEARN = {
    "lmklabel": (150, {}, {"batch": 4}),
    "exprgan": (300, {}, {}),
}


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(TINY))
def test_warp_guided_model_learns_and_follows_the_warp_and_the_condition(model, tiny_dataset, tmp_path):  # noqa: F811
    """On 8 real frames with a mouth-and-chin box blanked out of every other warp pair (see
    ``_blank_mouth_box``), the reconstruction loss falls at least by half and ends well below the
    warp's own; the output follows the warped crop and the condition, and on unmodified pairs it keeps
    what the warp got right."""
    from .test_warp_guided_cet2_cefgan import train_on_mouth_box

    steps, mo, ro = LEARN[model]
    tr = Trainer(_opts(model, tiny_dataset, tmp_path, steps=steps, limit=8,
                       model_options={**TINY[model][0], **mo, "warp_guided": True},
                       recipe_options={**TINY[model][1], **ro}))
    pairs, plain, first, last, warp_rec = train_on_mouth_box(tr, steps)
    m = tr.model.eval()
    a = torch.arange(4)
    b = pairs.partners(a, offset=3)
    wb = pairs.batch(a, b)
    with torch.no_grad():
        out = _generate(model, m, pairs, wb)
        shifted = _generate(model, m, pairs, wb, warped=torch.roll(wb.warped, 4, dims=3))
        other = _generate(model, m, pairs, wb, swap=True)
        c_out = _generate(model, m, pairs, wb, colour=True)
        c_other = _generate(model, m, pairs, wb, swap=True, colour=True)
        real = plain(a, b)  # the unmodified pairs
        out_real = _generate(model, m, pairs, real)
    effect = (c_out - c_other).abs()
    numbers = (f"{model}: rec {first:.4f} -> {last:.4f}, the warp's own {warp_rec:.4f}; shift "
               f"{(out - shifted).abs().mean():.4f}, condition {(out - other).abs().mean():.5f} (colour "
               f"{effect.mean():.5f}); boxed pairs {(out - wb.truth).abs().mean():.4f} vs the warp's "
               f"{(wb.warped - wb.truth).abs().mean():.4f}; real pairs {(out_real - real.truth).abs().mean():.4f} "
               f"vs the warp's {(real.warped - real.truth).abs().mean():.4f}")
    print(numbers)
    assert last <= 0.5 * first, numbers
    assert last < 0.7 * warp_rec, numbers
    assert (out - shifted).abs().mean() > 0.02, "the output ignores the warped crop: " + numbers
    assert effect.mean() > COLOUR_FOLLOWS[model] and (out - other).abs().mean() > 0, \
        "the output ignores the condition: " + numbers
    assert (out - wb.truth).abs().mean() < 0.5 * (wb.warped - wb.truth).abs().mean(), numbers
    assert (out_real - real.truth).abs().mean() < 1.4 * (real.warped - real.truth).abs().mean(), numbers


# the smallest effect of swapping the condition between samples on the generated colour after the
# tiny run (lmklabel: landmarks only, attenuated by its init; ExprGAN's code reaches every decoder layer)
COLOUR_FOLLOWS = {"lmklabel": 1e-4, "exprgan": 3e-3}
