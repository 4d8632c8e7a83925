"""Network definitions of 2CET-GAN (cet2) and Cascade EF-GAN (cefgan).

Shapes, split == full equivalence, parameter counts and GFLOPs vs MODELS.md
section 6, condition sensitivity, attention ranges and ONNX export parity.
Width-1.0 figures are computed on the ``meta`` device (no memory, no compute).
"""
from __future__ import annotations

import copy

import onnx
import pytest
import torch

from reenact.models.nets import cefgan, cet2

W = 0.125  # tiny width for everything that actually runs


def _params_m(m: torch.nn.Module) -> float:
    return sum(p.numel() for p in m.parameters()) / 1e6


def _gflops(fn, *args) -> float:
    """2 x MACs of conv / linear layers (the project's one counter)."""
    from reenact.models.nets.common import count

    class _Call(torch.nn.Module):
        def __init__(self, f):
            super().__init__()
            self.f = f if isinstance(f, torch.nn.Module) else None
            self._fn = f

        def forward(self, *a):
            return self._fn(*a)

    return count(_Call(fn), args).flops / 1e9


def _close(value: float, ref: float, rel: float = 0.10) -> bool:
    return abs(value - ref) <= rel * ref


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def cet2_nets():
    torch.manual_seed(0)
    G, E, D = cet2.Cet2Generator(W).eval(), cet2.Cet2Encoder(W).eval(), cet2.Cet2Discriminator(W).eval()
    return G, E, D


@pytest.fixture(scope="module")
def cascade():
    torch.manual_seed(0)
    return cefgan.CascadeEFGAN(width=W).eval()


def _img(b: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, 128, 128) * 2 - 1


# --------------------------------------------------------------------------- cet2


def test_cet2_shapes(cet2_nets):
    G, E, D = cet2_nets
    x, code = _img(2), torch.rand(2, 32) - 0.5
    with torch.no_grad():
        h = G.encode(x)
        assert h.shape == (2, G.h_channels, 16, 16)
        assert G.decode(h, code).shape == (2, 3, 128, 128)
        assert G(x, code).shape == (2, 3, 128, 128)
        assert E(cet2.to_gray(x)).shape == (2, 32)
        logits = D.logits(x)
        assert logits.shape == (2, 2)
        y = torch.tensor([0, 1])
        logit, feats = D(x, y, return_feats=True)
        assert logit.shape == (2,) and len(feats) == 5
        assert torch.equal(logit, logits[torch.arange(2), y])
        assert cet2.Cet2TargetEncoder(G)(x[:1]).shape == (1, G.h_channels, 16, 16)
        assert cet2.Cet2Encode(E)(cet2.to_gray(x[:1])).shape == (1, 32)
        out = cet2.Cet2Decode(G)(h[:1] * 50, code[:1] * 50)
        assert out.shape == (1, 3, 128, 128) and out.abs().max() <= 1.0


def test_cet2_blocks():
    x = torch.randn(2, 16, 8, 8)
    assert cet2.ResBlk(16, 24, norm=True, down=True)(x).shape == (2, 24, 4, 4)
    assert cet2.ResBlk(16, 16)(x).shape == (2, 16, 8, 8)
    c = torch.randn(2, 32)
    assert cet2.AdaResBlk(16, 8, up=True)(x, c).shape == (2, 8, 16, 16)
    assert cet2.AdaIN(32, 16)(x, c).shape == x.shape


def test_cet2_split_equals_full(cet2_nets):
    G, E, _ = cet2_nets
    x, code = _img(), torch.rand(1, 32) - 0.5
    with torch.no_grad():
        full = G(x, code).clamp(-1, 1)
        split = cet2.Cet2Decode(G)(cet2.Cet2TargetEncoder(G, neutralise=False)(x), code)
        torch.testing.assert_close(split, full, atol=1e-5, rtol=0)
        neutral = G(x, torch.zeros(1, 32)).clamp(-1, 1)
        torch.testing.assert_close(cet2.Cet2TargetEncoder(G)(x), G.encode(neutral), atol=1e-5, rtol=0)
        torch.testing.assert_close(cet2.Cet2Encode(E)(cet2.to_gray(x)), E(cet2.to_gray(x)), atol=1e-5, rtol=0)
    # parameters are shared, not copied
    assert cet2.Cet2Decode(G).G is G and cet2.Cet2Encode(E).E is E


def test_cet2_code_changes_output(cet2_nets):
    G, _, _ = cet2_nets
    dec = cet2.Cet2Decode(G)
    with torch.no_grad():
        h = G.encode(_img())
        a = dec(h, torch.full((1, 32), -0.4))
        b = dec(h, torch.full((1, 32), 0.4))
    assert (a - b).abs().mean() > 1e-3


def test_cet2_params_and_flops_width1():
    with torch.device("meta"):
        G, E, D = cet2.Cet2Generator(), cet2.Cet2Encoder(), cet2.Cet2Discriminator()
        # MODELS.md 6: G 33.4M, E 20.7M, D 20.7M
        g, e, d = _params_m(G), _params_m(E), _params_m(D)
        assert _close(g, 33.4) and _close(e, 20.7) and _close(d, 20.7)
        assert abs(g - 33.36) < 0.01 and abs(e - 20.75) < 0.01 and abs(d - 20.74) < 0.01
        # MODELS.md 3.6: 24.6 (encode) + 45.6 (decode) GFLOPs per frame, 101 per target
        f_enc = _gflops(E, torch.zeros(1, 1, 128, 128))
        f_dec = _gflops(G.decode, torch.zeros(1, 512, 16, 16), torch.zeros(1, 32))
        f_tgt = _gflops(cet2.Cet2TargetEncoder(G), torch.zeros(1, 3, 128, 128))
    assert _close(f_enc, 24.6) and _close(f_dec, 45.6) and _close(f_tgt, 101.0)
    assert abs(f_enc - 24.62) < 0.01 and abs(f_dec - 45.65) < 0.01  # measured


# --------------------------------------------------------------------------- cefgan


def test_cefgan_boxes_and_stitch():
    boxes = cefgan.default_boxes()
    assert [(b.h, b.w) for b in boxes] == [(40, 92), (40, 48), (40, 60)]
    for b in boxes:
        assert b.h % 4 == 0 and b.w % 4 == 0
        assert b.top >= 0 and b.left >= 0 and b.top + b.h <= 128 and b.left + b.w <= 128
    with pytest.raises(ValueError):
        cefgan.default_boxes(eyes_center=(10, 64))
    st = cefgan.PatchStitcher(boxes)
    base = torch.zeros(1, 3, 128, 128)
    patches = [torch.full((1, 3, b.h, b.w), float(i + 1)) for i, b in enumerate(boxes)]
    out = st(base, patches)
    inside = torch.zeros(128, 128, dtype=torch.bool)
    for b in boxes:
        inside[b.top:b.top + b.h, b.left:b.left + b.w] = True
    assert (out[:, :, ~inside] == 0).all()  # outside all boxes: the input
    assert (out[:, :, inside] > 0).all()
    eyes, nose, mouth = boxes  # paste order nose, mouth, eyes: eyes and mouth win overlaps
    assert (st.crop(out, 0) == 1).all()
    assert (out[:, :, mouth.top:mouth.top + mouth.h, mouth.left:mouth.left + mouth.w] == 3).all()


def test_cefgan_shapes_and_attention(cascade):
    x, au = _img(2), torch.rand(2, 17)
    stage = cascade.stages[0]
    with torch.no_grad():
        o = stage.run(x, au)
        assert o.img.shape == o.global_img.shape == o.stitched.shape == (2, 3, 128, 128)
        for name, b in zip(("eyes", "nose", "mouth"), stage.boxes):
            assert o.attn[name].shape == (2, 1, b.h, b.w) and o.color[name].shape == (2, 3, b.h, b.w)
        for name in ("global", "refine"):
            assert o.attn[name].shape == (2, 1, 128, 128) and o.color[name].shape == (2, 3, 128, 128)
        for a in o.attn.values():
            assert a.min() >= 0 and a.max() <= 1
        for c in o.color.values():
            assert c.min() >= -1 and c.max() <= 1
        assert o.img.abs().max() <= 1.0
        # stitched canvas equals the input outside the boxes
        mask = sum(stage.stitch.mask(i) for i in range(3)) > 0
        torch.testing.assert_close(o.stitched[:, :, ~mask[0, 0]], x[:, :, ~mask[0, 0]])

        co = cascade.run(x, au, torch.rand(2, 17))
        assert len(co.imgs) == len(co.targets) == len(co.stages) == 3
        for y in co.targets:
            assert y.shape == (2, 17) and y.min() >= 0 and y.max() <= 1
        assert len(cascade.pseudo_targets(au, co.targets[-1])) == 3

        interp, critic = cascade.interp, cefgan.AUCritic(width=W)
        assert interp(au, au).shape == (2, 17) and critic(au).shape == (2,)
        D = cefgan.CEFDiscriminator(width=W)
        critic_map, au_pred, feats = D(x, return_feats=True)
        assert critic_map.shape == (2, 1, 2, 2) and au_pred.shape == (2, 17) and len(feats) == 6


def test_cefgan_stage_k_edits_previous_output(cascade):
    x, a0, a1 = _img(), torch.rand(1, 17), torch.rand(1, 17)
    with torch.no_grad():
        ys = cascade.targets(a0, a1)
        img = x
        for s, y in zip(cascade.stages, ys):
            img = s(img, y)
        torch.testing.assert_close(cascade(x, a0, a1), img, atol=1e-6, rtol=0)
        assert torch.equal(ys[-1], a1)
        fast = cefgan.CascadeEFGAN(width=W, n_stages=1).eval()
        fast.init_from_single(cascade.stages[0])
        torch.testing.assert_close(fast(x, a0, a1), cascade.stages[0](x, a1), atol=1e-6, rtol=0)


def test_cefgan_split_equals_full(cascade):
    x, a0, a1 = _img(), torch.rand(1, 17), torch.rand(1, 17)
    drive = cefgan.CEFGANDrive(cascade)
    assert drive.cascade is cascade
    with torch.no_grad():
        full = cascade.run(x, a0, a1).imgs[-1].clamp(-1, 1)
        torch.testing.assert_close(drive(x, a0, a1), full, atol=1e-5, rtol=0)


def test_cefgan_au_changes_output(cascade):
    drive = cefgan.CEFGANDrive(cascade)
    x, a0 = _img(), torch.rand(1, 17)
    with torch.no_grad():
        a = drive(x, a0, torch.zeros(1, 17))
        b = drive(x, a0, torch.ones(1, 17))
    assert (a - b).abs().mean() > 1e-3


def test_cefgan_params_and_flops_width1():
    with torch.device("meta"):
        casc, fast = cefgan.CascadeEFGAN(), cefgan.CascadeEFGAN(n_stages=1)
        D = cefgan.CEFDiscriminator()
        # MODELS.md 6: 3 x 38.8 = 116.3M + interp 0.08M, D 44.9M
        stage, stages = _params_m(casc.stages[0]), _params_m(casc.stages)
        assert _close(stage, 38.8) and _close(stages, 116.3)
        assert _close(_params_m(casc.interp), 0.08) and _close(_params_m(D), 44.9)
        assert abs(stages - 116.31) < 0.01 and abs(_params_m(D) - 44.86) < 0.01
        # MODELS.md 5.6: 132.6 GFLOPs for 3 stages, 44.2 one stage
        x, au = torch.zeros(1, 3, 128, 128), torch.zeros(1, 17)
        f3 = _gflops(cefgan.CEFGANDrive(casc), x, au, au)
        f1 = _gflops(cefgan.CEFGANDrive(fast), x, au, au)
    assert _close(f3, 132.6) and _close(f1, 44.2)
    assert abs(f3 - 132.62) < 0.01 and abs(f1 - 44.21) < 0.01  # measured


# --------------------------------------------------------------------------- ONNX


def _onnx_parity(module: torch.nn.Module, inputs: dict, path) -> float:
    ort = pytest.importorskip("onnxruntime")
    module = module.eval()
    args = tuple(inputs.values())
    torch.onnx.export(module, args, str(path), input_names=list(inputs), output_names=["out"],
                      opset_version=17, dynamo=False, do_constant_folding=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fed = [i.name for i in sess.get_inputs()]  # the exporter drops unused inputs
    got = sess.run(None, {k: inputs[k].numpy() for k in fed})[0]
    with torch.no_grad():
        ref = module(*args).numpy()
    assert got.shape == ref.shape
    err = float(abs(got - ref).max())
    print(f"onnx {path.name}: max|d| = {err:.2e}")
    return err


def test_onnx_cet2(cet2_nets, tmp_path):
    G, E, _ = cet2_nets
    gray = cet2.to_gray(_img())
    err = _onnx_parity(cet2.Cet2Encode(E), {"drv_gray": gray}, tmp_path / "enc.onnx")
    assert err < 1e-4
    with torch.no_grad():
        h = G.encode(_img())
    err = _onnx_parity(cet2.Cet2Decode(G), {"h": h, "code": torch.rand(1, 32) - 0.5}, tmp_path / "dec.onnx")
    assert err < 1e-4
    err = _onnx_parity(cet2.Cet2TargetEncoder(G), {"crop": _img()}, tmp_path / "tgt.onnx")
    assert err < 1e-4


def test_onnx_cefgan_fast_mode(cascade, tmp_path):
    fast = cefgan.CascadeEFGAN(width=W, n_stages=1).eval()
    fast.init_from_single(cascade.stages[0])
    inputs = {"img_src": _img(), "au_src": torch.rand(1, 17), "au_tgt": torch.rand(1, 17)}
    err = _onnx_parity(cefgan.CEFGANDrive(fast), inputs, tmp_path / "drive1.onnx")
    assert err < 1e-4
    names = [i.name for i in onnx.load(str(tmp_path / "drive1.onnx")).graph.input]
    assert names == ["img_src", "au_tgt"]  # one stage never reads au_src


def test_onnx_cefgan(cascade, tmp_path):
    """3-stage engine. A randomly initialised IN network is chaotic: each stage
    amplifies input perturbations ~5-30x, so over 3 stages PyTorch's own fp32
    result is ~1e-4 away from the float64 one (measured 0.5-1.3e-4 over seeds),
    and ORT lands as close to the float64 result as PyTorch does. The gate is
    1e-4 (measured 8.5e-5 here); only when that is exceeded does it fall back
    to 1e-4 + twice the fp32 floor measured against float64, never above
    MODELS.md 7's 1e-3. Single-stage parity is held at 1e-4 above."""
    drive = cefgan.CEFGANDrive(cascade)
    inputs = {"img_src": _img(), "au_src": torch.rand(1, 17), "au_tgt": torch.rand(1, 17)}
    err = _onnx_parity(drive, inputs, tmp_path / "drive.onnx")
    assert err < 1e-3
    if err >= 1e-4:  # measure PyTorch's own fp32 floor (float64 reference) before failing
        with torch.no_grad():
            ref32 = drive(*inputs.values())
            drive64 = cefgan.CEFGANDrive(copy.deepcopy(cascade).double())
            ref64 = drive64(*(v.double() for v in inputs.values()))
        floor = float((ref32.double() - ref64).abs().max())
        assert err <= 1e-4 + 2 * floor, (err, floor)


def test_training_mode_gradients_reach_all_parameters():
    G, E = cet2.Cet2Generator(W), cet2.Cet2Encoder(W)
    x = _img()
    (G(x, E(cet2.to_gray(x))).mean()).backward()
    assert all(p.grad is not None for p in list(G.parameters()) + list(E.parameters()))
    casc = cefgan.CascadeEFGAN(width=W)
    out = casc.run(_img(), torch.rand(1, 17), torch.rand(1, 17))
    loss = out.imgs[-1].mean() + sum(a.mean() for o in out.stages for a in o.attn.values())
    loss.backward()
    assert all(p.grad is not None for p in casc.parameters())
