"""2CET-GAN networks (model C, id ``cet2``), MODELS.md section 3.

StarGAN v2 residual modules without the mapping network; the 32-d expression
code is fed straight into AdaIN (layer list from [C:xiaohanghu/2CET-GAN]).

Training networks
    Cet2Generator      G(x, code) -> img, split at the cache point h:
                       ``encode(x) -> h`` and ``decode(h, code) -> img``.
                       No output tanh; outputs are clamped only by the
                       inference modules.
    Cet2Encoder        E(gray) -> code (grey input, code 0 = neutral).
    Cet2Discriminator  D(x, y) -> logit of face type y (0 neutral, 1 emotional).

Inference modules (MODELS.md 3.6; they hold the training networks as
submodules, so parameters are shared)
    Cet2TargetEncoder  crop -> h       per target (neutralise, then encode)
    Cet2Encode         drv_gray -> code_raw      engine ``cet2_encode``
    Cet2Decode         (h, code) -> img          engine ``cet2_decode``

All images are NCHW in [-1, 1] at 128x128. ``width`` scales every hidden
channel count (``round(c * width)``, at least 8); image, code and logit sizes
are fixed. At width 1.0: G 33.4M params, E 20.7M, D 20.7M; per frame
E 24.6 GFLOPs, G.decode 45.6 GFLOPs (2 x MACs of conv/linear layers).

Warp-guided (``warp_guided=True``, :mod:`~reenact.models.nets.warpguided`):
a :class:`~reenact.models.nets.warpguided.WarpEncoder` turns [warped ‖ hole]
into features at 64^2, 32^2 and 16^2 (C1, C2, C3 channels: 128, 256, 512 x
width); the 16^2 one is added to ``h`` before the first AdaResBlk, the 32^2 one,
widened to C3 by a 1x1 conv, to the output of the third (first upsampling)
block and the 64^2 one, widened to C2, to the output of the fourth. (The
encoder at the decoder's own widths C2, C3, C3 would cost 2.5x: 0.68 instead of
0.27 GFLOPs at width 0.25.) ``to_rgb``'s 1x1 conv has a fourth channel, the
attention logit (bias +2), and the output is ``blend(warped, tanh(delta),
logit)``: the three colour channels, through a tanh (the paper's G has none),
are the change of the warped crop that ``blend`` expects. The target is encoded as it is
(``h = G.encode(crop)``, no G(x, 0) neutralisation: a warp-guided G cannot run
without a warp); E and the code are unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import ch as _ch

RES = 128
CODE_DIM = 32

__all__ = [
    "ResBlk",
    "AdaIN",
    "AdaResBlk",
    "Cet2Generator",
    "Cet2Encoder",
    "Cet2Discriminator",
    "Cet2TargetEncoder",
    "Cet2Encode",
    "Cet2Decode",
    "to_gray",
]




def to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """Grey input of E: channel mean. rgb: Bx3xHxW in [-1,1] -> Bx1xHxW."""
    return rgb.mean(dim=1, keepdim=True)


class ResBlk(nn.Module):
    """Pre-activation residual block (StarGAN v2).

    residual: [IN affine], LR(0.2), C3 a->a, [avgpool2], [IN affine], LR, C3 a->b
    shortcut: [C1 a->b, no bias] (only if a != b), [avgpool2]
    output = (residual + shortcut) / sqrt(2)

    x: Bxaxhxw -> Bxbx(h/2)x(w/2) if ``down`` else Bxbxhxw.
    """

    def __init__(self, dim_in: int, dim_out: int, norm: bool = False, down: bool = False):
        super().__init__()
        self.norm, self.down = norm, down
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if norm:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        self.sc = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else None
        self.actv = nn.LeakyReLU(0.2)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.sc is not None:
            x = self.sc(x)
        if self.down:
            x = F.avg_pool2d(x, 2)
        return x

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm:
            x = self.norm1(x)
        x = self.conv1(self.actv(x))
        if self.down:
            x = F.avg_pool2d(x, 2)
        if self.norm:
            x = self.norm2(x)
        return self.conv2(self.actv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2)


class AdaIN(nn.Module):
    """AdaIN(c, C) = (1 + gamma) * IN(x) + beta, [gamma, beta] = FC(code_dim -> 2C)(c).

    x: BxCxhxw, code: Bxcode_dim -> BxCxhxw.
    """

    def __init__(self, code_dim: int, num_features: int):
        super().__init__()
        self.c = num_features
        self.fc = nn.Linear(code_dim, 2 * num_features)
        self.norm = nn.InstanceNorm2d(num_features, affine=False)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        gb = self.fc(code)[:, :, None, None]
        gamma, beta = gb[:, :self.c], gb[:, self.c:]
        return (1 + gamma) * self.norm(x) + beta


class AdaResBlk(nn.Module):
    """Code-conditioned residual block (StarGAN v2 AdainResBlk, no high-pass).

    residual: AdaIN(a), LR(0.2), [up2], C3 a->b, AdaIN(b), LR, C3 b->b
    shortcut: [up2], [C1 a->b, no bias] (only if a != b)
    output = (residual + shortcut) / sqrt(2)

    x: Bxaxhxw, code: Bxcode_dim -> Bxbx(2h)x(2w) if ``up`` else Bxbxhxw.
    """

    def __init__(self, dim_in: int, dim_out: int, code_dim: int = CODE_DIM, up: bool = False):
        super().__init__()
        self.up = up
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(code_dim, dim_in)
        self.norm2 = AdaIN(code_dim, dim_out)
        self.sc = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else None
        self.actv = nn.LeakyReLU(0.2)

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.up else x

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        sc = self._up(x)
        if self.sc is not None:
            sc = self.sc(sc)
        r = self._up(self.actv(self.norm1(x, code)))
        r = self.conv1(r)
        r = self.conv2(self.actv(self.norm2(r, code)))
        return (r + sc) / math.sqrt(2)


class Cet2Generator(nn.Module):
    """G(x, code): C3-128 -> ResBlk 128->256 down -> 256->512 down -> 512->512 down
    -> 2x ResBlk 512 -> [h: Bx512x16x16] -> 2x AdaResBlk 512 -> AdaResBlk 512->512 up
    -> 512->256 up -> 256->128 up -> IN(affine), LR, C1-3 (no tanh).

    Channel counts are at width 1.0 (scaled by ``width``).

    Warp-guided (``warp_guided=True``, see the module docstring): ``forward`` and :meth:`decode`
    also take ``warped`` Bx3x128x128 and ``hole`` Bx1x128x128 and return the blend of the warped
    crop and the generated colour (with ``with_attention``, also the attention ``A`` Bx1x128x128:
    1 = the warped pixel passes through).
    """

    def __init__(self, width: float = 1.0, code_dim: int = CODE_DIM, warp_guided: bool = False):
        super().__init__()
        c1, c2, c3 = _ch(128, width), _ch(256, width), _ch(512, width)
        self.code_dim = code_dim
        self.h_channels = c3
        self.warp_guided = warp_guided
        self.from_rgb = nn.Conv2d(3, c1, 3, 1, 1)
        self.enc_blocks = nn.Sequential(
            ResBlk(c1, c2, norm=True, down=True),  # 64^2
            ResBlk(c2, c3, norm=True, down=True),  # 32^2
            ResBlk(c3, c3, norm=True, down=True),  # 16^2
            ResBlk(c3, c3, norm=True),
            ResBlk(c3, c3, norm=True),
        )
        self.dec_blocks = nn.ModuleList([
            AdaResBlk(c3, c3, code_dim),
            AdaResBlk(c3, c3, code_dim),
            AdaResBlk(c3, c3, code_dim, up=True),  # 32^2
            AdaResBlk(c3, c2, code_dim, up=True),  # 64^2
            AdaResBlk(c2, c1, code_dim, up=True),  # 128^2
        ])
        self.to_rgb = nn.Sequential(
            nn.InstanceNorm2d(c1, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(c1, 4 if warp_guided else 3, 1, 1, 0))
        if warp_guided:
            from .warpguided import WarpEncoder

            self.w_enc = WarpEncoder((c1, c2, c3))  # 64^2, 32^2, 16^2
            # widen the two finer features to the decoder's widths there (64^2: C2, 32^2: C3)
            self.w_proj = nn.ModuleList([nn.Conv2d(c1, c2, 1, bias=False), nn.Conv2d(c2, c3, 1, bias=False)])
            self.init_attention()

    @torch.no_grad()
    def init_attention(self) -> None:
        """Start from the warp: attention sigmoid(2) = 0.88 keeps the warped pixel (call again after
        re-initialising the weights, e.g. ``init="he"``, which zeroes the biases)."""
        if self.warp_guided:
            self.to_rgb[2].bias[3].fill_(2.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: Bx3x128x128 in [-1,1] -> h: BxCx16x16 (C = 512 at width 1)."""
        return self.enc_blocks(self.from_rgb(x))

    def decode(self, h: torch.Tensor, code: torch.Tensor, warped: torch.Tensor | None = None,
               hole: torch.Tensor | None = None, *, with_attention: bool = False):
        """h: BxCx16x16, code: Bx32 -> img: Bx3x128x128 (not clamped). Warp-guided: also ``warped``
        and ``hole``; returns the blend (and the attention with ``with_attention``)."""
        if not self.warp_guided:
            for blk in self.dec_blocks:
                h = blk(h, code)
            return self.to_rgb(h)
        from .warpguided import blend

        if warped is None or hole is None:
            raise ValueError("a warp-guided 2CET-GAN needs the warped crop and its hole mask")
        w64, w32, w16 = self.w_enc(warped, hole)
        w64, w32 = self.w_proj[0](w64), self.w_proj[1](w32)
        h = h + w16
        for i, blk in enumerate(self.dec_blocks):
            h = blk(h, code)
            if i == 2:      # 32^2
                h = h + w32
            elif i == 3:    # 64^2
                h = h + w64
        y = self.to_rgb(h)
        out, a = blend(warped, torch.tanh(y[:, :3]), y[:, 3:4])  # the colour channels: a change of the warped crop
        return (out, a) if with_attention else out

    def forward(self, x: torch.Tensor, code: torch.Tensor, warped: torch.Tensor | None = None,
                hole: torch.Tensor | None = None, *, with_attention: bool = False):
        """x: Bx3x128x128 in [-1,1], code: Bx32 (0 = neutral) -> Bx3x128x128 (not clamped)."""
        return self.decode(self.encode(x), code, warped, hole, with_attention=with_attention)


def _trunk(in_ch: int, width: float) -> tuple[nn.Sequential, int]:
    """Shared E/D trunk: C3 in->128, 5x ResBlk down (no norm)
    128->256->512->512->512->512 (4^2), LR, C4 valid 512->512 (1^2), LR."""
    chans = [_ch(c, width) for c in (128, 256, 512, 512, 512, 512)]
    layers: list[nn.Module] = [nn.Conv2d(in_ch, chans[0], 3, 1, 1)]
    layers += [ResBlk(a, b, norm=False, down=True) for a, b in zip(chans[:-1], chans[1:])]
    layers += [nn.LeakyReLU(0.2), nn.Conv2d(chans[-1], chans[-1], 4, 1, 0), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers), chans[-1]


class Cet2Encoder(nn.Module):
    """E(gray) -> code: trunk on grey -> FC 512->code_dim.

    gray: Bx1x128x128 in [-1,1] (``to_gray`` of the RGB crop) -> code: Bx32.
    """

    def __init__(self, width: float = 1.0, code_dim: int = CODE_DIM):
        super().__init__()
        self.trunk, c = _trunk(1, width)
        self.fc = nn.Linear(c, code_dim)

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        return self.fc(self.trunk(gray).flatten(1))


class Cet2Discriminator(nn.Module):
    """D(x, y): trunk on RGB -> C1 512->2, one logit per face type, pick by y.

    x: Bx3x128x128 in [-1,1], y: B long (0 neutral, 1 emotional) -> logit: B.
    ``return_feats=True`` also returns the trunk's intermediate maps (list, for
    discriminator feature matching).
    """

    def __init__(self, width: float = 1.0, num_types: int = 2):
        super().__init__()
        self.trunk, c = _trunk(3, width)
        self.head = nn.Conv2d(c, num_types, 1, 1, 0)

    def logits(self, x: torch.Tensor, return_feats: bool = False):
        """x: Bx3x128x128 -> Bx2 (and the feature list)."""
        feats = []
        h = x
        for layer in self.trunk:
            h = layer(h)
            if isinstance(layer, ResBlk):
                feats.append(h)
        out = self.head(h).flatten(1)
        return (out, feats) if return_feats else out

    def forward(self, x: torch.Tensor, y: torch.Tensor, return_feats: bool = False):
        out, feats = self.logits(x, return_feats=True)
        logit = out.gather(1, y.long().view(-1, 1)).squeeze(1)
        return (logit, feats) if return_feats else logit


# --------------------------------------------------------------------------- inference


class Cet2TargetEncoder(nn.Module):
    """Per-target cache: crop -> h = G.encode(clamp(G(crop, 0))).

    crop: Bx3x128x128 in [-1,1] -> h: BxCx16x16 (C = 512 at width 1).
    ``neutralise=False`` skips the G(x, 0) pass (target already neutral) and
    returns G.encode(crop). With ``skip_neutral``, a second input ``neutral`` (Bx1, 1 = the
    photo looks neutral) picks G.encode(crop) for neutral photos and the neutralised encoding
    for the others (both are computed: it runs once per target). Shares parameters with ``G``.
    """

    def __init__(self, G: Cet2Generator, neutralise: bool = True, skip_neutral: bool = False):
        super().__init__()
        self.G = G
        self.neutralise = neutralise
        self.skip_neutral = skip_neutral

    def forward(self, crop: torch.Tensor, neutral: torch.Tensor | None = None) -> torch.Tensor:
        if not self.neutralise:
            return self.G.encode(crop)
        zero = torch.zeros(crop.shape[0], self.G.code_dim, dtype=crop.dtype, device=crop.device)
        h = self.G.encode(self.G(crop, zero).clamp(-1.0, 1.0))
        if self.skip_neutral and neutral is not None:
            w = (neutral.reshape(-1, 1, 1, 1) > 0.5).to(h.dtype)
            h = w * self.G.encode(crop) + (1.0 - w) * h
        return h


class Cet2Encode(nn.Module):
    """Engine ``cet2_encode``: drv_gray 1x1x128x128 in [-1,1] -> code_raw 1x32."""

    def __init__(self, E: Cet2Encoder):
        super().__init__()
        self.E = E

    def forward(self, drv_gray: torch.Tensor) -> torch.Tensor:
        return self.E(drv_gray)


class Cet2Decode(nn.Module):
    """Engine ``cet2_decode``: h 1xCx16x16, code 1x32 -> img 1x3x128x128 clamped to [-1,1].
    A warp-guided G also takes ``warped`` 1x3x128x128 and ``hole`` 1x1x128x128."""

    def __init__(self, G: Cet2Generator):
        super().__init__()
        self.G = G

    def forward(self, h: torch.Tensor, code: torch.Tensor, warped: torch.Tensor | None = None,
                hole: torch.Tensor | None = None) -> torch.Tensor:
        if not self.G.warp_guided:
            return self.G.decode(h, code).clamp(-1.0, 1.0)
        return self.G.decode(h, code, warped, hole).clamp(-1.0, 1.0)
