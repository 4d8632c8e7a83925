"""GC-GAN (Qiao et al., CAVW 2018), id ``gcgan``: MODELS.md section 1.

Training networks: :class:`LandmarkEncoder` (L_enc), :class:`LandmarkDecoder` (L_dec),
:class:`GCGANImageEncoder` (G_enc), :class:`GCGANDecoder` (G_dec), :class:`GCGANDiscriminator` (D),
grouped in :class:`GCGANGenerator`. Inference split (1.6): :class:`GCGANTargetEncoder` (once per
target) and :class:`GCGANDrive` (the ``gcgan_drive`` engine); both reuse the generator's modules.

``width`` scales every hidden channel / FC width (``ch``: round, >= 8). Fixed sizes: image 3x64x64,
landmark vector 136, z_g 32, z_i 128, D output 1. PyTorch default init (the paper gives none).
"""
from __future__ import annotations

import torch
from torch import nn

from .common import ch, conv, conv_block, fc_block, tconv_block

RES = 64
N_LMK = 136
Z_G = 32
Z_I = 128


class LandmarkEncoder(nn.Module):
    """L_enc: FC 136->128->64->32, each BN+ReLU [C]. lmk: Bx136 in [-1,1] -> z_g: Bx32 (>= 0)."""

    def __init__(self, width: float = 1.0, n_in: int = N_LMK, z_g: int = Z_G):
        super().__init__()
        h1, h2 = ch(128, width), ch(64, width)
        self.net = nn.Sequential(fc_block(n_in, h1), fc_block(h1, h2), fc_block(h2, z_g))

    def forward(self, lmk: torch.Tensor) -> torch.Tensor:
        return self.net(lmk)


class LandmarkDecoder(nn.Module):
    """L_dec: FC 32->64->128 (BN+ReLU), FC 128->136, tanh [C]. z_g: Bx32 -> g_hat: Bx136 in [-1,1]."""

    def __init__(self, width: float = 1.0, n_out: int = N_LMK, z_g: int = Z_G):
        super().__init__()
        h1, h2 = ch(64, width), ch(128, width)
        self.net = nn.Sequential(fc_block(z_g, h1), fc_block(h1, h2), fc_block(h2, n_out, norm=None, activation="tanh"))

    def forward(self, z_g: torch.Tensor) -> torch.Tensor:
        return self.net(z_g)


class GCGANImageEncoder(nn.Module):
    """G_enc [C]: C5 s2-64 (e1, 32^2) -> C5 s2-128 (e2, 16^2) -> C5 s2-256 (e3, 8^2), each BN ReLU,
    -> FC 16384->1024 BN ReLU -> FC 1024->128 BN ReLU (z_i).

    img: Bx3x64x64 in [-1,1] -> (z_i Bx128, e1 Bx64x32x32, e2 Bx128x16x16, e3 Bx256x8x8) at width 1.
    """

    def __init__(self, width: float = 1.0, z_i: int = Z_I):
        super().__init__()
        c1, c2, c3 = ch(64, width), ch(128, width), ch(256, width)
        self.c1 = conv_block(3, c1, 5, 2)
        self.c2 = conv_block(c1, c2, 5, 2)
        self.c3 = conv_block(c2, c3, 5, 2)
        self.fc = nn.Sequential(nn.Flatten(1), fc_block(c3 * (RES // 8) ** 2, ch(1024, width)),
                                fc_block(ch(1024, width), z_i))

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        e1 = self.c1(img)
        e2 = self.c2(e1)
        e3 = self.c3(e2)
        return self.fc(e3), e1, e2, e3


class GCGANDecoder(nn.Module):
    """G_dec [C]: z = z_i‖z_g (160) -> FC->4x4x256 BN ReLU -> T5 s2-256 BN ReLU +e3 -> T5 s2-128 BN ReLU
    +e2 -> T5 s2-64 BN ReLU +e1 -> T5 s2-64 BN ReLU (64^2) -> C5 s1-3 tanh. Skips are additive.

    z_i: Bx128, z_g: Bx32, e1/e2/e3 as from :class:`GCGANImageEncoder` -> img: Bx3x64x64 in [-1,1].

    Warp-guided (``attention=True``): the skips also add the warp encoder's features ``w``
    (:class:`~reenact.models.nets.warpguided.WarpEncoder`, finest first) and the last conv has a
    fourth channel, the attention logit: ``forward`` then returns (colour in [-1,1], logit).
    """

    def __init__(self, width: float = 1.0, z_i: int = Z_I, z_g: int = Z_G, attention: bool = False):
        super().__init__()
        c1, c2, c3 = ch(64, width), ch(128, width), ch(256, width)
        self.c3 = c3
        self.attention = attention
        self.fc = fc_block(z_i + z_g, 4 * 4 * c3)
        self.t1 = tconv_block(c3, c3, 5)   # 8^2, + e3
        self.t2 = tconv_block(c3, c2, 5)   # 16^2, + e2
        self.t3 = tconv_block(c2, c1, 5)   # 32^2, + e1
        self.t4 = tconv_block(c1, c1, 5)   # 64^2
        self.out = nn.Sequential(conv(c1, 4 if attention else 3, 5, 1), nn.Tanh())

    def forward(self, z_i: torch.Tensor, z_g: torch.Tensor, e1: torch.Tensor, e2: torch.Tensor,
                e3: torch.Tensor, w: tuple[torch.Tensor, ...] | None = None):
        x = self.fc(torch.cat([z_i, z_g], dim=1)).view(-1, self.c3, 4, 4)
        if w is not None:
            e1, e2, e3 = e1 + w[0], e2 + w[1], e3 + w[2]
        x = self.t1(x) + e3
        x = self.t2(x) + e2
        x = self.t3(x) + e1
        h = self.t4(x)
        if not self.attention:
            return self.out(h)
        y = self.out[0](h)
        return torch.tanh(y[:, :3]), y[:, 3:4]


class GCGANGenerator(nn.Module):
    """Container for all generator-side nets (G_enc, G_dec, L_enc, L_dec); parameters 21.4M at width 1.

    ``forward(img, lmk)``: img Bx3x64x64 in [-1,1], lmk Bx136 in [-1,1] -> img_hat Bx3x64x64.
    """

    def __init__(self, width: float = 1.0, warp_guided: bool = False):
        super().__init__()
        self.width = width
        self.warp_guided = warp_guided
        self.g_enc = GCGANImageEncoder(width)
        self.g_dec = GCGANDecoder(width, attention=warp_guided)
        self.l_enc = LandmarkEncoder(width)
        self.l_dec = LandmarkDecoder(width)
        if warp_guided:
            from .warpguided import WarpEncoder

            self.w_enc = WarpEncoder((ch(64, width), ch(128, width), ch(256, width)))
            with torch.no_grad():  # start from the warp: attention sigmoid(2) = 0.88 keeps the warped pixel
                self.g_dec.out[0].bias[3].fill_(2.0)

    def forward(self, img: torch.Tensor, lmk: torch.Tensor, warped: torch.Tensor | None = None,
                hole: torch.Tensor | None = None, *, with_attention: bool = False):
        """Paper mode: ``(img, lmk)``. Warp-guided: also ``warped`` Bx3x64x64 and ``hole`` Bx1x64x64;
        returns the blend of the warped crop and the generated colour (and, with ``with_attention``,
        the attention ``A`` Bx1x64x64: 1 = the warped pixel passes through)."""
        z_i, e1, e2, e3 = self.g_enc(img)
        return self.decode(z_i, self.l_enc(lmk), e1, e2, e3, warped, hole, with_attention=with_attention)

    def decode(self, z_i, z_g, e1, e2, e3, warped=None, hole=None, *, with_attention: bool = False):
        if not self.warp_guided:
            return self.g_dec(z_i, z_g, e1, e2, e3)
        from .warpguided import blend

        if warped is None or hole is None:
            raise ValueError("a warp-guided GC-GAN needs the warped crop and its hole mask")
        colour, logit = self.g_dec(z_i, z_g, e1, e2, e3, self.w_enc(warped, hole))
        out, a = blend(warped, colour, logit)
        return (out, a) if with_attention else out


class GCGANDiscriminator(nn.Module):
    """D (WGAN-GP critic): C5 s2-32 LR(0.2) -> C5 s2-128 LN LR -> C5 s2-256 LN LR -> C5 s2-256 LN LR
    -> C5 s2-1 (2x2 map). LN over (C,H,W) per sample [P]; ReLU/no-LN and the auxiliary classifier of
    the code are omitted [D].

    ``forward(img)``: Bx3x64x64 -> Bx1x2x2 map; ``score(img)``: Bx critic score = sum of the 4 cells.
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        c1, c2, c3 = ch(32, width), ch(128, width), ch(256, width)
        self.net = nn.Sequential(
            conv_block(3, c1, 5, 2, norm=None, activation="lrelu"),
            conv_block(c1, c2, 5, 2, norm="ln", activation="lrelu", bias=True),
            conv_block(c2, c3, 5, 2, norm="ln", activation="lrelu", bias=True),
            conv_block(c3, c3, 5, 2, norm="ln", activation="lrelu", bias=True),
            conv(c3, 1, 5, 2),
        )

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(img)

    def score(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(img).sum(dim=(1, 2, 3))


# ---------------------------------------------------------------- inference split (MODELS.md 1.6)

class GCGANTargetEncoder(nn.Module):
    """Per-target part: G_enc (shared with ``gen``). crop: 1x3x64x64 in [-1,1] ->
    (z_id 1x128, e1 1x64x32x32, e2 1x128x16x16, e3 1x256x8x8)."""

    def __init__(self, gen: GCGANGenerator):
        super().__init__()
        self.g_enc = gen.g_enc

    def forward(self, crop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.g_enc(crop)


class GCGANDrive(nn.Module):
    """Engine ``gcgan_drive``: L_enc + G_dec (shared with ``gen``).

    Inputs (in this order): lmk 1x136 in [-1,1], z_id 1x128, e1 1x64x32x32, e2 1x128x16x16,
    e3 1x256x8x8. Output: img 1x3x64x64 in [-1,1]. 0.51 GFLOPs at width 1.
    """

    input_names = ("lmk", "z_id", "e1", "e2", "e3")
    output_names = ("img",)

    def __init__(self, gen: GCGANGenerator):
        super().__init__()
        self.gen = gen

    def forward(self, lmk: torch.Tensor, z_id: torch.Tensor, e1: torch.Tensor, e2: torch.Tensor,
                e3: torch.Tensor, warped: torch.Tensor | None = None, hole: torch.Tensor | None = None) -> torch.Tensor:
        """Warp-guided generators also take ``warped`` 1x3x64x64 and ``hole`` 1x1x64x64."""
        return self.gen.decode(z_id, self.gen.l_enc(lmk), e1, e2, e3, warped, hole)

    @staticmethod
    def input_shapes(width: float = 1.0) -> dict[str, tuple[int, ...]]:
        """Static engine input shapes for a generator of this ``width``."""
        c1, c2, c3 = ch(64, width), ch(128, width), ch(256, width)
        return {"lmk": (1, N_LMK), "z_id": (1, Z_I), "e1": (1, c1, 32, 32), "e2": (1, c2, 16, 16),
                "e3": (1, c3, 8, 8)}
