"""Landmark-heatmap + label GAN (Li, Qi, Sun, IEEE Access 2021), id ``lmklabel``: MODELS.md section 2.

Generator (:class:`LmkLabelGenerator`, 41.7M params at width 1): image stem and geometry stem
(PATN stems [D]), ``n_blocks`` migration blocks (:class:`MigrationBlock`, PATN block [G]), label
planes concatenated to F^P, decoder (:class:`LmkLabelDecoder`). Discriminators: :class:`LmkLabelDImg`
and :class:`LmkLabelDGeo` (PatchGAN, 14x14 logits). Inference split (2.6):
:class:`LmkLabelTargetEncoder` and :class:`LmkLabelDrive` (the ``lmklabel_drive`` engine).

Deviation [D, allowed by 2.3]: the discriminators end with the C4 s1-1 conv and return logits for
BCE-with-logits; the paper's final BN + sigmoid are dropped.

``width`` scales every hidden channel (round, >= 8). Fixed: 3 image channels, ``n_lmk`` heatmap
channels, ``n_classes`` label planes, 1 D output channel. Init N(0, 0.02) [P] (BN weights N(1, 0.02)).
Convolutions followed by BN have no bias (as PATN), which the exact ``gsrc`` split needs.

Warp-guided (``warp_guided=True``, :mod:`~reenact.models.nets.warpguided`): a
:class:`~reenact.models.nets.warpguided.WarpEncoder` turns [warped ‖ hole] into features at 64^2
(``ch(128)``) and 32^2 (``ch(256)``); the 32^2 ones are added to the image stream F^P before the
migration blocks (``fp0 + w32``: the blocks gate the warped face's features as they gate the
target's), the 64^2 ones to the decoder's first upsampling (a skip). The decoder's last conv has a
fourth channel, the attention logit (bias +2), and the output is ``blend(warped, colour, logit)``.
The condition (H_src, H_tgt, label) is unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...geometry.heatmaps import heatmap_conv_torch
from .common import GaussianHeatmap, ch, conv, conv_block, init_normal_, planes, tconv_block

RES = 128
N_LMK = 68
N_CLASSES = 7
SIGMA = 2.0


class LmkLabelStem(nn.Module):
    """E_ini stem [D, PATN]: ReflPad3 C7 s1-64 BN ReLU -> C3 s2-128 BN ReLU -> C3 s2-256 BN ReLU.
    x: Bx{cin}x128x128 -> Bx256x32x32. ``conv0`` (bias-free) is exposed for the inference split:
    ``forward(x) == tail(conv0(pad(x)))``."""

    def __init__(self, cin: int, width: float = 1.0):
        super().__init__()
        c1, c2, c3 = ch(64, width), ch(128, width), ch(256, width)
        self.conv0 = nn.Conv2d(cin, c1, 7, 1, 0, bias=False)
        self.bn0 = nn.BatchNorm2d(c1)
        self.down = nn.Sequential(nn.ReLU(), conv_block(c1, c2, 3, 2), conv_block(c2, c3, 3, 2))

    @staticmethod
    def pad(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (3, 3, 3, 3), mode="reflect")

    def tail(self, pre: torch.Tensor) -> torch.Tensor:
        """pre: Bx64x128x128 output of conv0 (before BN) -> Bx256x32x32."""
        return self.down(self.bn0(pre))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.conv0(self.pad(x)))


class MigrationBlock(nn.Module):
    """Migration unit t (Table 1 [P], PATN block [G]) at 32^2, dim 256.

    conv_p: ReflPad1 C3-256 BN ReLU Dropout ReflPad1 C3-256 BN.
    conv_s: ReflPad1 C3 (cin->cin, cin = 256 for t=1 else 512) BN ReLU Dropout ReflPad1 C3->256 (no BN).
    M = sigmoid(conv_s(F^S)); F^P' = M * conv_p(F^P) + F^P; F^S' = conv_s(F^S) ‖ F^P'.

    fp: Bx256x32x32, fs: Bx{256|512}x32x32 -> (fp' Bx256x32x32, fs' Bx512x32x32).
    """

    def __init__(self, dim: int, first: bool, dropout: float = 0.5):
        super().__init__()
        cs = dim if first else 2 * dim
        self.conv_p = nn.Sequential(conv_block(dim, dim, 3, pad="reflect"), nn.Dropout(dropout),
                                    conv_block(dim, dim, 3, pad="reflect", activation=None))
        self.conv_s = nn.Sequential(conv_block(cs, cs, 3, pad="reflect"), nn.Dropout(dropout),
                                    conv(cs, dim, 3, pad="reflect"))

    def forward(self, fp: torch.Tensor, fs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.conv_s(fs)
        fp = torch.sigmoid(s) * self.conv_p(fp) + fp
        return fp, torch.cat([s, fp], dim=1)


class LmkLabelDecoder(nn.Module):
    """Decoder (Table 2 [P]): T3 s2 p1 (op1)-128 BN ReLU (64^2) -> T3 s2-64 BN ReLU (128^2)
    -> ReflPad3 C7 s1-3 Tanh. x: Bx(256+K)x32x32 -> Bx3x128x128 in [-1,1].

    Warp-guided (``attention=True``): ``forward(x, w64)`` adds the warp encoder's 64^2 features
    ``w64`` (Bx128x64x64) after the first upsampling, and the last conv has a fourth channel, the
    attention logit: it returns (colour Bx3x128x128 in [-1,1], logit Bx1x128x128)."""

    def __init__(self, cin: int, width: float = 1.0, attention: bool = False):
        super().__init__()
        c1, c2 = ch(64, width), ch(128, width)
        self.attention = attention
        self.net = nn.Sequential(tconv_block(cin, c2, 3), tconv_block(c2, c1, 3),
                                 conv(c1, 4 if attention else 3, 7, pad="reflect"), nn.Tanh())

    def forward(self, x: torch.Tensor, w64: torch.Tensor | None = None):
        if not self.attention:
            return self.net(x)
        h = self.net[0](x)
        if w64 is not None:
            h = h + w64
        y = self.net[2](self.net[1](h))
        return torch.tanh(y[:, :3]), y[:, 3:4]


def _body(geo_stem: LmkLabelStem, blocks: nn.ModuleList, decoder: LmkLabelDecoder, fp: torch.Tensor,
          g_pre: torch.Tensor, label: torch.Tensor, w: tuple[torch.Tensor, ...] | None = None):
    """Shared by the generator and the drive engine: geometry-stem tail, blocks, label concat, decoder.
    ``w``: the warp encoder's (64^2, 32^2) features of a warp-guided generator (then the decoder
    returns (colour, logit))."""
    fs = geo_stem.tail(g_pre)
    if w is not None:
        fp = fp + w[1]
    for blk in blocks:
        fp, fs = blk(fp, fs)
    x = torch.cat([fp, planes(label, fp)], dim=1)
    return decoder(x) if w is None else decoder(x, w[0])


def _warp_decode(m: nn.Module, fp: torch.Tensor, g_pre: torch.Tensor, label: torch.Tensor,
                 warped: torch.Tensor | None, hole: torch.Tensor | None, with_attention: bool,
                 with_colour: bool = False):
    """Blocks and decoder of either mode, the generator's and the drive engine's shared tail (``m``:
    either, with their ``geo_stem``, ``blocks``, ``decoder``, ``warp_guided`` and ``w_enc``)."""
    if not m.warp_guided:
        return _body(m.geo_stem, m.blocks, m.decoder, fp, g_pre, label)
    from .warpguided import blend, generated_colour

    if warped is None or hole is None:
        raise ValueError("a warp-guided lmklabel generator needs the warped crop and its hole mask")
    delta, logit = _body(m.geo_stem, m.blocks, m.decoder, fp, g_pre, label, m.w_enc(warped, hole))
    out, a = blend(warped, delta, logit)
    if with_colour:
        return out, a, generated_colour(warped, delta)
    return (out, a) if with_attention else out


class LmkLabelGenerator(nn.Module):
    """Full generator. ``forward(img, lmk_src, lmk_tgt, label)``:
    img Bx3x128x128 in [-1,1]; lmk_src, lmk_tgt Bx68x2 crop pixels (0..127); label BxK in {-1,+1}
    -> Bx3x128x128 in [-1,1]. ``heatmap(lmk)`` renders the Bx68x128x128 Gaussians (sigma px, peak 1);
    :meth:`forward_heatmaps` takes [H_src, H_tgt] directly.

    Warp-guided (``warp_guided=True``, see the module docstring): both also take ``warped``
    Bx3x128x128 and ``hole`` Bx1x128x128 and return the blend of the warped crop and the generated
    colour (with ``with_attention``, also the attention ``A`` Bx1x128x128: 1 = the warp passes; with
    ``with_colour``, (output, A, C) with C = warped + 2 * delta, the colour A switches to).
    """

    def __init__(self, width: float = 1.0, n_blocks: int = 9, n_classes: int = N_CLASSES, n_lmk: int = N_LMK,
                 sigma: float = SIGMA, dropout: float = 0.5, res: int = RES, warp_guided: bool = False):
        super().__init__()
        self.width, self.n_blocks, self.n_classes, self.n_lmk, self.res = width, n_blocks, n_classes, n_lmk, res
        self.warp_guided = warp_guided
        dim = ch(256, width)
        self.heatmap = GaussianHeatmap(res, sigma)
        self.img_stem = LmkLabelStem(3, width)
        self.geo_stem = LmkLabelStem(2 * n_lmk, width)   # input [H_src ‖ H_tgt]
        self.blocks = nn.ModuleList(MigrationBlock(dim, first=(t == 0), dropout=dropout) for t in range(n_blocks))
        self.decoder = LmkLabelDecoder(dim + n_classes, width, attention=warp_guided)
        if warp_guided:
            from .warpguided import WarpEncoder

            self.w_enc = WarpEncoder((ch(128, width), dim))   # 64^2 (decoder skip), 32^2 (F^P)
        init_normal_(self, 0.02)
        if warp_guided:
            with torch.no_grad():  # start from the warp: attention sigmoid(2) = 0.88 keeps the warped pixel
                self.decoder.net[2][1].bias[3].fill_(2.0)

    def forward_heatmaps(self, img: torch.Tensor, h_src: torch.Tensor, h_tgt: torch.Tensor, label: torch.Tensor,
                         warped: torch.Tensor | None = None, hole: torch.Tensor | None = None, *,
                         with_attention: bool = False, with_colour: bool = False):
        g_pre = self.geo_stem.conv0(self.geo_stem.pad(torch.cat([h_src, h_tgt], dim=1)))
        return _warp_decode(self, self.img_stem(img), g_pre, label, warped, hole, with_attention, with_colour)

    def forward(self, img: torch.Tensor, lmk_src: torch.Tensor, lmk_tgt: torch.Tensor, label: torch.Tensor,
                warped: torch.Tensor | None = None, hole: torch.Tensor | None = None, *,
                with_attention: bool = False, with_colour: bool = False):
        return self.forward_heatmaps(img, self.heatmap(lmk_src), self.heatmap(lmk_tgt), label, warped, hole,
                                     with_attention=with_attention, with_colour=with_colour)


class LmkLabelPatchD(nn.Module):
    """PatchGAN (Table 3 [P]): C4 s2 p1-64 LR(0.2) -> C4 s2 p1-128 BN LR -> C4 s2 p1-256 BN LR
    -> C4 s1 p1-512 BN LR -> C4 s1 p1-1. x: Bx{cin}x128x128 -> Bx1x14x14 logits (no BN/sigmoid, see
    module docstring)."""

    def __init__(self, cin: int, width: float = 1.0):
        super().__init__()
        c1, c2, c3, c4 = ch(64, width), ch(128, width), ch(256, width), ch(512, width)
        lr = dict(activation="lrelu", padding=1)
        self.net = nn.Sequential(
            conv_block(cin, c1, 4, 2, norm=None, **lr),
            conv_block(c1, c2, 4, 2, **lr),
            conv_block(c2, c3, 4, 2, **lr),
            conv_block(c3, c4, 4, 1, **lr),
            conv(c4, 1, 4, 1, padding=1),
        )
        init_normal_(self, 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LmkLabelDImg(LmkLabelPatchD):
    """D_img: ``forward(src, tgt)`` with src, tgt Bx3x128x128 -> Bx1x14x14 logits of [src ‖ tgt]."""

    def __init__(self, width: float = 1.0):
        super().__init__(6, width)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.net(torch.cat([src, tgt], dim=1))


class LmkLabelDGeo(LmkLabelPatchD):
    """D_geo [D]: ``forward(tgt, h_tgt)`` with tgt Bx3x128x128, h_tgt Bx68x128x128 -> Bx1x14x14 logits."""

    def __init__(self, width: float = 1.0, n_lmk: int = N_LMK):
        super().__init__(3 + n_lmk, width)

    def forward(self, tgt: torch.Tensor, h_tgt: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.net(torch.cat([tgt, h_tgt], dim=1))


# ---------------------------------------------------------------- inference split (MODELS.md 2.6)

class LmkLabelTargetEncoder(nn.Module):
    """Per-target part (modules shared with ``gen``).

    crop: 1x3x128x128 in [-1,1], lmk_src: 1x68x2 crop pixels ->
    (fp0 = image stem(crop) 1x256x32x32, gsrc = conv_src(ReflPad3(H_src)) before BN 1x64x128x128).
    conv_src is the source half (input channels 0..67) of the bias-free geometry-stem conv0, computed
    from the separable heatmaps as the drive engine computes the target half.
    """

    def __init__(self, gen: LmkLabelGenerator):
        super().__init__()
        self.n_lmk = gen.n_lmk
        self.heatmap = gen.heatmap
        self.img_stem = gen.img_stem
        self.geo_conv0 = gen.geo_stem.conv0

    def forward(self, crop: torch.Tensor, lmk_src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gsrc = heatmap_conv_torch(lmk_src, self.geo_conv0.weight[:, : self.n_lmk], self.heatmap.size,
                                  self.heatmap.sigma)
        return self.img_stem(crop), gsrc


class LmkLabelDrive(nn.Module):
    """Engine ``lmklabel_drive`` (modules shared with ``gen``).

    Inputs (in this order): fp0 1x256x32x32, gsrc 1x64x128x128, lmk_tgt 1x68x2 (crop pixels 0..127),
    label 1xK (+-1). Adds conv_tgt(ReflPad3(H_tgt)) to gsrc, computed from the separable heatmaps
    without rendering them (:func:`~reenact.geometry.heatmaps.heatmap_conv_torch`, 7x fewer
    multiply-adds than the 7x7 convolution over 68 channels), then BN, ReLU, rest of the geometry
    stem, the blocks, label planes and decoder. Output: img 1x3x128x128 in [-1,1].
    91.9 GFLOPs at width 1 with 9 blocks counted with the convolution (its 7.0 GFLOPs become 1.0).

    Warp-guided generators also take ``warped`` 1x3x128x128 and ``hole`` 1x1x128x128 (after ``label``);
    the warp encoder and skips add 0.16 GFLOPs at width 0.25 (7.27 in all with 9 blocks, 3.65 with 3)
    and 0.52 at width 0.5 (25.3 with 9 blocks, 10.8 with 3).
    """

    input_names = ("fp0", "gsrc", "lmk_tgt", "label")
    output_names = ("img",)

    def __init__(self, gen: LmkLabelGenerator):
        super().__init__()
        self.n_lmk = gen.n_lmk
        self.heatmap = gen.heatmap
        self.geo_stem = gen.geo_stem
        self.blocks = gen.blocks
        self.decoder = gen.decoder
        self.warp_guided = gen.warp_guided
        if gen.warp_guided:
            self.w_enc = gen.w_enc

    def forward(self, fp0: torch.Tensor, gsrc: torch.Tensor, lmk_tgt: torch.Tensor, label: torch.Tensor,
                warped: torch.Tensor | None = None, hole: torch.Tensor | None = None) -> torch.Tensor:
        g_pre = gsrc + heatmap_conv_torch(lmk_tgt, self.geo_stem.conv0.weight[:, self.n_lmk:], self.heatmap.size,
                                          self.heatmap.sigma)
        return _warp_decode(self, fp0, g_pre, label, warped, hole, False)

    @staticmethod
    def input_shapes(width: float = 1.0, n_classes: int = N_CLASSES, n_lmk: int = N_LMK,
                     res: int = RES) -> dict[str, tuple[int, ...]]:
        """Static engine input shapes for a generator of this ``width``."""
        return {"fp0": (1, ch(256, width), res // 4, res // 4), "gsrc": (1, ch(64, width), res, res),
                "lmk_tgt": (1, n_lmk, 2), "label": (1, n_classes)}
