"""Network definitions of gcgan, lmklabel and exprgan (MODELS.md sections 1, 2, 4, 6)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from reenact.models.nets import exprgan as X
from reenact.models.nets import gcgan as A
from reenact.models.nets import lmklabel as B
from reenact.models.nets.common import GaussianHeatmap, ch, count_flops, count_params, render_heatmaps

W = 0.125  # tiny width for runtime tests


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN non-trivial running stats and affine, so eval-mode tests exercise them."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            m.weight.data.copy_(1 + 0.1 * torch.randn(n, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(n, generator=g))
    return model.eval()


def _img(res: int, seed: int = 0, b: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, res, res, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _lmk68(seed: int = 0, b: int = 1, res: int = 128) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 68, 2, generator=g) * (res * 0.6) + res * 0.2


def _label(cls: int, k: int = 7, b: int = 1) -> torch.Tensor:
    y = -torch.ones(b, k)
    y[:, cls] = 1
    return y


def _onehot(cls: int, k: int = 6, b: int = 1) -> torch.Tensor:
    y = torch.zeros(b, k)
    y[:, cls] = 1
    return y


# ----------------------------------------------------------------------------- common

def test_ch_rounding():
    assert ch(256, 1.0) == 256 and ch(256, 0.125) == 32 and ch(16, 0.125) == 8 and ch(100, 0.333) == 33


def test_heatmap_peak_and_sigma():
    lmk = torch.tensor([[[10.0, 20.0], [127.0, 0.0]]])
    h = render_heatmaps(lmk, 128, sigma=2.0)
    assert h.shape == (1, 2, 128, 128)
    assert h[0, 0, 20, 10] == 1.0 and h[0, 1, 0, 127] == 1.0
    assert h.max() == 1.0 and h.min() >= 0
    assert torch.argmax(h[0, 0]).item() == 20 * 128 + 10  # row y, column x
    # value at distance r is exp(-r^2 / (2 sigma^2))
    assert math.isclose(h[0, 0, 20, 11].item(), math.exp(-1 / 8), rel_tol=1e-6)
    assert math.isclose(h[0, 0, 22, 10].item(), math.exp(-4 / 8), rel_tol=1e-6)
    assert math.isclose(h[0, 0, 23, 14].item(), math.exp(-25 / 8), rel_tol=1e-6)
    # sub-pixel landmark: peak below 1, centred between pixels
    h2 = render_heatmaps(torch.tensor([[[10.5, 20.0]]]), 128, sigma=3.0)
    assert math.isclose(h2[0, 0, 20, 10].item(), math.exp(-0.25 / 18), rel_tol=1e-6)
    assert torch.equal(h2[0, 0, :, 10], h2[0, 0, :, 11])
    # module form equals the function
    hm = GaussianHeatmap(128, 2.0)
    assert torch.allclose(hm(lmk), h)
    # same convention as the data-side renderer in reenact.geometry
    from reenact.geometry.heatmaps import gaussian_heatmaps_torch

    pts = _lmk68(3, 2)
    torch.testing.assert_close(render_heatmaps(pts, 128, 2.0), gaussian_heatmaps_torch(pts, 128, 2.0), atol=1e-6, rtol=0)


@pytest.mark.parametrize("k", [7, 3])
def test_heatmap_conv_equals_the_convolution_of_the_padded_heatmaps(k):
    """The separable form the lmklabel engines use: corners, edges (reflect padding), sub-pixel and
    off-crop landmarks, and a batch; it also never produces subnormal floats (slow on CPUs)."""
    from reenact.geometry.heatmaps import heatmap_conv_torch

    torch.manual_seed(0)
    pts = torch.cat([_lmk68(5, 2), torch.tensor([[[0.0, 0.0], [127.0, 127.0], [1.5, 126.2], [-4.0, 60.0],
                                                    [131.0, -2.0], [64.25, 0.5]]]).expand(2, 6, 2)], dim=1)
    w = torch.randn(12, pts.shape[1], k, k) * 0.05
    ref = torch.nn.functional.conv2d(
        torch.nn.functional.pad(render_heatmaps(pts, 128, 2.0), (k // 2,) * 4, mode="reflect"), w)
    out = heatmap_conv_torch(pts, w, 128, 2.0)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    tiny = (out != 0) & (out.abs() < torch.finfo(torch.float32).tiny)
    assert not tiny.any()
    with pytest.raises(ValueError, match="odd square kernel"):
        heatmap_conv_torch(pts, torch.zeros(4, pts.shape[1], 4, 4), 128, 2.0)


def test_count_flops_is_2macs_of_conv_and_linear():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 10))
    assert count_flops(m.eval(), torch.zeros(1, 3, 4, 4)) == 2 * (3 * 8 * 9 * 16 + 128 * 10)
    t = nn.ConvTranspose2d(4, 2, 5, 2, padding=2, output_padding=1)  # MACs counted on the input grid
    assert count_flops(t, torch.zeros(1, 4, 3, 3)) == 2 * (4 * 2 * 25 * 9)


# ----------------------------------------------------------------------------- shapes

def test_gcgan_shapes():
    g = A.GCGANGenerator(W).eval()
    img, lmk = _img(64, b=2), torch.rand(2, 136) * 2 - 1
    z, e1, e2, e3 = g.g_enc(img)
    c1, c2, c3 = ch(64, W), ch(128, W), ch(256, W)
    assert z.shape == (2, 128) and e1.shape == (2, c1, 32, 32) and e2.shape == (2, c2, 16, 16) and e3.shape == (2, c3, 8, 8)
    zg = g.l_enc(lmk)
    assert zg.shape == (2, 32) and g.l_dec(zg).shape == (2, 136)
    assert g.l_dec(zg).abs().max() <= 1
    out = g(img, lmk)
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1
    d = A.GCGANDiscriminator(W).eval()
    assert d(img).shape == (2, 1, 2, 2) and d.score(img).shape == (2,)
    assert torch.allclose(d.score(img), d(img).sum(dim=(1, 2, 3)))
    assert {k: tuple(v) for k, v in A.GCGANDrive.input_shapes(W).items()} == {
        "lmk": (1, 136), "z_id": (1, 128), "e1": (1, c1, 32, 32), "e2": (1, c2, 16, 16), "e3": (1, c3, 8, 8)}


def test_gcgan_train_mode_backward():
    g, d = A.GCGANGenerator(W).train(), A.GCGANDiscriminator(W).train()
    out = g(_img(64, b=4), torch.rand(4, 136) * 2 - 1)
    d.score(out).mean().backward()
    assert all(p.grad is not None for p in g.g_dec.parameters())


def test_lmklabel_shapes():
    g = B.LmkLabelGenerator(W, n_blocks=2).eval()
    img, ls, lt = _img(128, b=2), _lmk68(0, 2), _lmk68(1, 2)
    out = g(img, ls, lt, _label(3, b=2))
    assert out.shape == (2, 3, 128, 128) and out.abs().max() <= 1
    assert g.img_stem(img).shape == (2, ch(256, W), 32, 32)
    h = g.heatmap(lt)
    assert h.shape == (2, 68, 128, 128)
    assert g.geo_stem(torch.cat([g.heatmap(ls), h], 1)).shape == (2, ch(256, W), 32, 32)
    assert len(g.blocks) == 2
    d_img, d_geo = B.LmkLabelDImg(W).eval(), B.LmkLabelDGeo(W).eval()
    assert d_img(img, out).shape == (2, 1, 14, 14)
    assert d_geo(out, h).shape == (2, 1, 14, 14)
    enc = B.LmkLabelTargetEncoder(g)
    fp0, gsrc = enc(img[:1], ls[:1])
    shapes = B.LmkLabelDrive.input_shapes(W)
    assert tuple(fp0.shape) == shapes["fp0"] and tuple(gsrc.shape) == shapes["gsrc"]


def test_lmklabel_block_and_init():
    blk1, blk2 = B.MigrationBlock(16, first=True).eval(), B.MigrationBlock(16, first=False).eval()
    fp, fs = blk1(torch.randn(1, 16, 8, 8), torch.randn(1, 16, 8, 8))
    assert fp.shape == (1, 16, 8, 8) and fs.shape == (1, 32, 8, 8)
    fp, fs = blk2(fp, fs)
    assert fp.shape == (1, 16, 8, 8) and fs.shape == (1, 32, 8, 8)
    g = B.LmkLabelGenerator(0.5, n_blocks=1)
    w = g.blocks[0].conv_p[0][0][1].weight
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    assert g.geo_stem.conv0.bias is None  # bias-free: the gsrc split is exact
    bn = g.img_stem.bn0
    assert abs(bn.weight.mean().item() - 1) < 0.02 and bn.bias.abs().max() == 0


def test_exprgan_shapes_and_fctrl():
    g = X.ExprGANGenerator(W).eval()
    img = _img(128, b=2)
    z = g.enc(img)
    assert z.shape == (2, 50) and z.abs().max() < 1
    y = torch.stack([_onehot(1)[0], _onehot(4)[0]])
    zy = torch.tensor([[0.5, -0.2, 0.9, -1.0, 0.0]] * 2)
    c = X.f_ctrl(y, zy)
    assert c.shape == (2, 30)
    assert torch.equal(c[0, 5:10], zy[0].abs()) and torch.equal(c[0, :5], -zy[0].abs())
    assert torch.equal(c[1, 20:25], zy[1].abs()) and torch.equal(c[1, 25:30], -zy[1].abs())
    c_rand = X.f_ctrl(y)
    assert c_rand.shape == (2, 30) and c_rand.abs().max() <= 1
    out = g(img, c)
    assert out.shape == (2, 3, 128, 128) and out.abs().max() <= 1
    d = X.ExprGANDiscriminator(W).eval()
    logit, q = d(out, y)
    assert logit.shape == (2, 1) and q.shape == (2, 30) and q.abs().max() <= 1
    assert torch.allclose(d.q(out, y), q)
    d2 = X.ExprGANDiscriminator(W, q_shared=128, q_tanh=False).eval()
    assert d2(out, y)[1].shape == (2, 30)
    assert X.ExprGANDz(W).eval()(z).shape == (2, 1)


# ----------------------------------------------------------------------------- split == full generator

def test_gcgan_split_equals_full():
    torch.manual_seed(0)
    g = _randomize_bn(A.GCGANGenerator(W))
    img, lmk = _img(64), torch.rand(1, 136) * 2 - 1
    with torch.no_grad():
        full = g(img, lmk)
        split = A.GCGANDrive(g)(lmk, *A.GCGANTargetEncoder(g)(img))
    torch.testing.assert_close(split, full, atol=1e-5, rtol=0)


def test_lmklabel_split_equals_full():
    torch.manual_seed(0)
    g = _randomize_bn(B.LmkLabelGenerator(W, n_blocks=3))
    img, ls, lt, lab = _img(128), _lmk68(0), _lmk68(1), _label(2)
    enc, drive = B.LmkLabelTargetEncoder(g), B.LmkLabelDrive(g)
    with torch.no_grad():
        full = g(img, ls, lt, lab)
        fp0, gsrc = enc(img, ls)
        split = drive(fp0, gsrc, lt, lab)
        # the linear split of the geometry stem's first conv is exact
        pre_full = g.geo_stem.conv0(g.geo_stem.pad(torch.cat([g.heatmap(ls), g.heatmap(lt)], 1)))
        pre_tgt = torch.nn.functional.conv2d(g.geo_stem.pad(g.heatmap(lt)), g.geo_stem.conv0.weight[:, 68:])
    torch.testing.assert_close(gsrc + pre_tgt, pre_full, atol=1e-5, rtol=0)
    torch.testing.assert_close(split, full, atol=1e-5, rtol=0)
    # the split modules hold the generator's own parameters (no copies)
    assert drive.geo_stem.conv0.weight is g.geo_stem.conv0.weight and enc.img_stem is g.img_stem


def test_exprgan_split_equals_full():
    torch.manual_seed(0)
    g = X.ExprGANGenerator(W).eval()
    img, code = _img(128), X.f_ctrl(_onehot(3), torch.rand(1, 5) * 2 - 1)
    with torch.no_grad():
        full = g(img, code)
        split = X.ExprGANDecode(g)(X.ExprGANTargetEncoder(g)(img), code)
    torch.testing.assert_close(split, full, atol=1e-5, rtol=0)
    d = _randomize_bn(X.ExprGANDiscriminator(W))
    with torch.no_grad():
        torch.testing.assert_close(X.ExprGANQ(d)(img, _onehot(3)), d(img, _onehot(3))[1], atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- condition matters

def _calibrate_bn(model: nn.Module, *inputs: torch.Tensor) -> nn.Module:
    """BN running stats := statistics of one random batch (no optimisation step), then eval mode."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        model.train()(*inputs)
    return model.eval()


def test_condition_changes_output():
    # With freshly initialised BN (running mean 0, var 1) eval-mode BN is the identity and the
    # N(0, 0.02) init of lmklabel shrinks the heatmap signal by ~1e-2 per conv: at that state the
    # landmarks move the output by only ~1e-9 (the label by ~4e-3). So the GC-GAN and lmklabel
    # generators first get BN statistics from one random batch (still untrained weights), as any
    # trained model has; ExprGAN's generator has no BN.
    torch.manual_seed(0)
    big = 1e-2
    with torch.no_grad():
        g = _calibrate_bn(A.GCGANGenerator(W), _img(64, 5, 4), torch.rand(4, 136) * 2 - 1)
        img = _img(64)
        a, b = g(img, torch.rand(1, 136) * 2 - 1), g(img, torch.rand(1, 136) * 2 - 1)
        assert (a - b).abs().max() > big

        g = B.LmkLabelGenerator(W, n_blocks=2)
        base0 = g.eval()(_img(128), _lmk68(0), _lmk68(1), _label(0))
        assert (base0 - g(_img(128), _lmk68(0), _lmk68(1), _label(5))).abs().max() > 1e-4  # label, pure init
        _calibrate_bn(g, _img(128, 5, 4), _lmk68(5, 4), _lmk68(6, 4), torch.stack([_label(i)[0] for i in range(4)]))
        img, ls = _img(128), _lmk68(0)
        base = g(img, ls, _lmk68(1), _label(0))
        assert (base - g(img, ls, _lmk68(2), _label(0))).abs().max() > big  # landmarks
        assert (base - g(img, ls, _lmk68(1), _label(5))).abs().max() > big  # label

        g = X.ExprGANGenerator(W).eval()
        img, z = _img(128), torch.full((1, 5), 0.7)
        a, b = g(img, X.f_ctrl(_onehot(0), z)), g(img, X.f_ctrl(_onehot(4), z))
        c = g(img, X.f_ctrl(_onehot(0), z * 0.2))
        assert (a - b).abs().max() > big and (a - c).abs().max() > big


# ----------------------------------------------------------------------------- width 1.0 cost vs MODELS.md 6

def _close(x: float, ref: float, tol: float = 0.10) -> bool:
    return abs(x - ref) <= tol * ref


def test_param_counts_width1():
    M = 1e6
    with torch.device("meta"):
        ga, da = A.GCGANGenerator(), A.GCGANDiscriminator()
        gb, dbi, dbg = B.LmkLabelGenerator(), B.LmkLabelDImg(), B.LmkLabelDGeo()
        gx, dx, dz = X.ExprGANGenerator(), X.ExprGANDiscriminator(), X.ExprGANDz()
    # gcgan: 21.4M (G_enc 17.9, G_dec 3.4, L 0.06) [D 2.6M]
    assert count_params(ga) == 21_430_731 and _close(count_params(ga) / M, 21.4)
    assert _close(count_params(ga.g_enc) / M, 17.9) and _close(count_params(ga.g_dec) / M, 3.4)
    assert _close(count_params([ga.l_enc, ga.l_dec]) / M, 0.06)
    # D: the LN affine is per channel (TF layer_norm on NHWC); a full (C,H,W) affine would add 0.1M.
    assert count_params(da) == 2_570_753 and _close(count_params(da) / M, 2.6)
    # lmklabel: 41.7M [2 x D 5.6M]
    assert count_params(gb) == 41_689_731 and _close(count_params(gb) / M, 41.7)
    assert _close((count_params(dbi) + count_params(dbg)) / M, 5.6)
    # 6 blocks instead of 9 is a knob (2.9); three 512-input blocks fewer
    with torch.device("meta"):
        assert count_params(B.LmkLabelGenerator(n_blocks=6)) < count_params(gb) - 3 * 4.7e6
    # exprgan: 29.6M (enc 18.2, dec 11.3) [D_img/Q 9.5M, D_z 6k]
    assert count_params(gx) == 29_565_119 and _close(count_params(gx) / M, 29.6)
    assert _close(count_params(gx.enc) / M, 18.2) and _close(count_params(gx.dec) / M, 11.3)
    assert _close(count_params(dx) / M, 9.5) and _close(count_params(dz), 6000)


def _zeros(shapes: dict) -> list[torch.Tensor]:
    return [torch.zeros(s) for s in shapes.values()]


def test_gflops_width1():
    G = 1e9
    with torch.device("meta"):
        ga = A.GCGANGenerator().eval()
        fa = count_flops(A.GCGANDrive(ga), *_zeros(A.GCGANDrive.input_shapes()))
        fa_enc = count_flops(A.GCGANTargetEncoder(ga), torch.zeros(1, 3, 64, 64))
        gb = B.LmkLabelGenerator().eval()
        fb = count_flops(B.LmkLabelDrive(gb), *_zeros(B.LmkLabelDrive.input_shapes()))
        fb_stem = count_flops(gb.img_stem, torch.zeros(1, 3, 128, 128))
        fp, fs1, fs = torch.zeros(1, 256, 32, 32), torch.zeros(1, 256, 32, 32), torch.zeros(1, 512, 32, 32)
        fb_blocks = count_flops(gb.blocks[0], fp, fs1) + 8 * count_flops(gb.blocks[1], fp, fs)
        gx = X.ExprGANGenerator().eval()
        fx = count_flops(X.ExprGANDecode(gx), torch.zeros(1, 50), torch.zeros(1, 30))
        fx_enc = count_flops(X.ExprGANTargetEncoder(gx), torch.zeros(1, 3, 128, 128))
        fq = count_flops(X.ExprGANQ(X.ExprGANDiscriminator().eval()), torch.zeros(1, 3, 128, 128), torch.zeros(1, 6))
    assert _close(fa / G, 0.51) and _close(fa_enc / G, 0.25)
    assert _close(fb / G, 91.9) and _close(fb_stem / G, 1.5)
    assert _close(fb_blocks / G, 82)  # 2.9: the 9 migration blocks take 82 GFLOPs
    assert _close(fx / G, 3.9) and _close(fx_enc / G, 1.7) and _close(fq / G, 0.14)


# ----------------------------------------------------------------------------- ONNX export of the engines

def _onnx_roundtrip(module: nn.Module, inputs: list[torch.Tensor], names, out_names, path) -> None:
    ort = pytest.importorskip("onnxruntime")
    module = module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, tuple(inputs), str(path), input_names=list(names), output_names=list(out_names),
                          opset_version=17, dynamo=False, do_constant_folding=True)
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"ScatterND", "ScatterElements", "Loop", "If", "Pow"}, ops
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == list(names)
    got = sess.run(None, {n: x.numpy() for n, x in zip(names, inputs)})[0]
    with torch.no_grad():
        ref = module(*inputs).numpy()
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 1e-4


def test_onnx_gcgan_drive(tmp_path):
    torch.manual_seed(0)
    g = _randomize_bn(A.GCGANGenerator(W))
    ins = list(A.GCGANTargetEncoder(g)(_img(64)))
    with torch.no_grad():
        ins = [torch.rand(1, 136) * 2 - 1] + [t.detach() for t in ins]
    _onnx_roundtrip(A.GCGANDrive(g), ins, A.GCGANDrive.input_names, A.GCGANDrive.output_names, tmp_path / "a.onnx")


def test_onnx_lmklabel_drive(tmp_path):
    torch.manual_seed(0)
    g = _randomize_bn(B.LmkLabelGenerator(W, n_blocks=2))
    with torch.no_grad():
        fp0, gsrc = B.LmkLabelTargetEncoder(g)(_img(128), _lmk68(0))
    ins = [fp0, gsrc, _lmk68(1), _label(4)]
    _onnx_roundtrip(B.LmkLabelDrive(g), ins, B.LmkLabelDrive.input_names, B.LmkLabelDrive.output_names,
                    tmp_path / "b.onnx")


def test_onnx_exprgan_decode_and_q(tmp_path):
    torch.manual_seed(0)
    g = X.ExprGANGenerator(W)
    with torch.no_grad():
        z = X.ExprGANTargetEncoder(g.eval())(_img(128))
    code = X.f_ctrl(_onehot(2), torch.rand(1, 5) * 2 - 1)
    _onnx_roundtrip(X.ExprGANDecode(g), [z, code], X.ExprGANDecode.input_names, X.ExprGANDecode.output_names,
                    tmp_path / "x.onnx")
    d = _randomize_bn(X.ExprGANDiscriminator(W))
    _onnx_roundtrip(X.ExprGANQ(d), [_img(128, 1), _onehot(2)], X.ExprGANQ.input_names, X.ExprGANQ.output_names,
                    tmp_path / "q.onnx")
