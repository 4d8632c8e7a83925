"""ExprGAN (Ding, Sricharan, Chellappa, AAAI 2018), id ``exprgan``: MODELS.md section 4.

Networks: :class:`ExprGANEncoder` (G_enc), :class:`ExprGANDecoder` (G_dec), grouped in
:class:`ExprGANGenerator`; :func:`f_ctrl` (the expression controller); :class:`ExprGANDiscriminator`
(D_img and Q on one shared trunk, :class:`ExprGANTrunk` + :class:`ExprGANQHead`); :class:`ExprGANDz`
(latent discriminator D_z).
Inference split (4.6): :class:`ExprGANTargetEncoder`, :class:`ExprGANDecode` (``exprgan_decode``)
and the optional :class:`ExprGANQ` (``exprgan_q``), all sharing the training modules.

Discriminator heads (D_img, D_z) return logits; the paper's sigmoid belongs to the BCE-with-logits
loss (same model, numerically safer). ``width`` scales every hidden channel / FC width (round, >= 8).
Fixed: image 3x128x128, g 50, K = 6, d = 5 (code 30), tile 8. PyTorch default init.

Warp-guided (``warp_guided=True``, :mod:`~reenact.models.nets.warpguided`): a
:class:`~reenact.models.nets.warpguided.WarpEncoder` turns [warped ‖ hole] into features at 64^2,
32^2, 16^2 and 8^2 (``ch(64)``, ``ch(128)``, ``ch(256)``, ``ch(512)``), added to G_dec's upsampling
blocks of the same size and width (after each block's ReLU, before its c-planes are concatenated);
G_dec's last conv has a fourth channel, the attention logit (bias +2), and the output is
``blend(warped, colour, logit)``. z_id and the code are unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from .common import Up2, act, ch, conv, conv_block, fc_block, planes

RES = 128
Z_DIM = 50
K = 6
D = 5
TILE = 8


def f_ctrl(y: torch.Tensor, z: torch.Tensor | None = None, d: int = D) -> torch.Tensor:
    """Expression controller F_ctrl [P, C]: c_i = |z_y| * (2 y_i - 1), z_y shared by all K blocks.

    y: BxK one-hot (0/1); z: Bxd in [-1,1] (sampled from U(-1,1) when None) -> code: Bx(K*d), block
    i = y's class is +|z|, every other block -|z|.
    """
    if z is None:
        z = torch.rand(y.shape[0], d, dtype=y.dtype, device=y.device) * 2 - 1
    return (z.abs()[:, None, :] * (2 * y - 1)[:, :, None]).flatten(1)


class ExprGANEncoder(nn.Module):
    """G_enc: C5 s2 64, 128, 256, 512, 1024 each + ReLU (no BN [C]) -> 4x4x1024 -> FC->50 -> tanh.
    img: Bx3x128x128 in [-1,1] -> g: Bx50 in (-1,1)."""

    def __init__(self, width: float = 1.0, z_dim: int = Z_DIM):
        super().__init__()
        cs = [3] + [ch(c, width) for c in (64, 128, 256, 512, 1024)]
        self.convs = nn.Sequential(*(conv_block(a, b, 5, 2, norm=None) for a, b in zip(cs[:-1], cs[1:])))
        self.fc = nn.Sequential(nn.Flatten(1), nn.Linear(cs[-1] * (RES // 32) ** 2, z_dim), nn.Tanh())

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(img))


class ExprGANDecoder(nn.Module):
    """G_dec [P/C]: [g ‖ tile(c, 8)] (290) -> FC->4x4x1024 -> ReLU -> ‖c-planes; then for 512, 256, 128,
    64, 32: {↑2, C3 (no bias), ReLU, ‖c} (4^2 -> 128^2); then C3->16, ReLU, ‖c -> C3->3 -> tanh.

    z_id: Bx50, code: Bx30 -> img: Bx3x128x128 in [-1,1].

    Warp-guided (``attention=True``): ``forward(z_id, code, w)`` adds the warp encoder's features
    ``w`` (finest first: 64^2, 32^2, 16^2, 8^2) to the outputs of the upsampling blocks of that size,
    and the last conv has a fourth channel, the attention logit: it returns (colour, logit Bx1x128x128).
    """

    def __init__(self, width: float = 1.0, z_dim: int = Z_DIM, n_code: int = K * D, tile: int = TILE,
                 attention: bool = False):
        super().__init__()
        self.attention = attention
        self.tile, self.c0 = tile, ch(1024, width)
        self.fc = nn.Sequential(nn.Linear(z_dim + tile * n_code, 16 * self.c0), nn.ReLU())
        cs = [self.c0] + [ch(c, width) for c in (512, 256, 128, 64, 32)]
        self.ups = nn.ModuleList(
            nn.Sequential(Up2(), conv(a + n_code, b, 3, bias=False), nn.ReLU()) for a, b in zip(cs[:-1], cs[1:]))
        c16 = ch(16, width)
        self.conv16 = nn.Sequential(conv(cs[-1] + n_code, c16, 3), nn.ReLU())
        self.out = nn.Sequential(conv(c16 + n_code, 4 if attention else 3, 3), nn.Tanh())

    def forward(self, z_id: torch.Tensor, code: torch.Tensor, w: tuple[torch.Tensor, ...] | None = None):
        x = self.fc(torch.cat([z_id] + [code] * self.tile, dim=1)).view(-1, self.c0, 4, 4)
        for i, up in enumerate(self.ups):
            x = up(torch.cat([x, planes(code, x)], dim=1))
            j = len(self.ups) - 2 - i   # ups[0] -> 8^2 = the last (coarsest) warp feature ... ups[3] -> 64^2 = w[0]
            if w is not None and 0 <= j < len(w):
                x = x + w[j]
        x = self.conv16(torch.cat([x, planes(code, x)], dim=1))
        x = torch.cat([x, planes(code, x)], dim=1)
        if not self.attention:
            return self.out(x)
        y = self.out[0](x)
        return torch.tanh(y[:, :3]), y[:, 3:4]


class ExprGANGenerator(nn.Module):
    """G_enc + G_dec (29.6M params at width 1). ``forward(img, code)``: img Bx3x128x128 in [-1,1],
    code Bx30 (from :func:`f_ctrl` or Q) -> Bx3x128x128 in [-1,1].

    Warp-guided (``warp_guided=True``): ``forward`` and :meth:`decode` also take ``warped``
    Bx3x128x128 and ``hole`` Bx1x128x128 and return the blend of the warped crop and the generated
    colour (with ``with_attention``, also the attention ``A`` Bx1x128x128: 1 = the warp passes; with
    ``with_colour``, (output, A, C) with C = warped + 2 * delta, the colour A switches to)."""

    def __init__(self, width: float = 1.0, k: int = K, d: int = D, z_dim: int = Z_DIM, warp_guided: bool = False):
        super().__init__()
        self.width, self.k, self.d, self.z_dim = width, k, d, z_dim
        self.warp_guided = warp_guided
        self.enc = ExprGANEncoder(width, z_dim)
        self.dec = ExprGANDecoder(width, z_dim, k * d, attention=warp_guided)
        if warp_guided:
            from .warpguided import WarpEncoder

            self.w_enc = WarpEncoder(tuple(ch(c, width) for c in (64, 128, 256, 512)))  # 64^2 .. 8^2
            with torch.no_grad():  # start from the warp: attention sigmoid(2) = 0.88 keeps the warped pixel
                self.dec.out[0].bias[3].fill_(2.0)

    def forward(self, img: torch.Tensor, code: torch.Tensor, warped: torch.Tensor | None = None,
                hole: torch.Tensor | None = None, *, with_attention: bool = False, with_colour: bool = False):
        return self.decode(self.enc(img), code, warped, hole, with_attention=with_attention, with_colour=with_colour)

    def decode(self, z_id: torch.Tensor, code: torch.Tensor, warped: torch.Tensor | None = None,
               hole: torch.Tensor | None = None, *, with_attention: bool = False, with_colour: bool = False):
        """G_dec of either mode: z_id Bx50, code Bx(K*d) (and the warp inputs when warp-guided)."""
        return _decode(self, z_id, code, warped, hole, with_attention, with_colour)


def _decode(m: nn.Module, z_id: torch.Tensor, code: torch.Tensor, warped: torch.Tensor | None,
            hole: torch.Tensor | None, with_attention: bool, with_colour: bool = False):
    """G_dec of the generator or the decode engine (``m``: either, with ``dec``, ``warp_guided``, ``w_enc``)."""
    if not m.warp_guided:
        return m.dec(z_id, code)
    from .warpguided import blend, generated_colour

    if warped is None or hole is None:
        raise ValueError("a warp-guided ExprGAN needs the warped crop and its hole mask")
    delta, logit = m.dec(z_id, code, m.w_enc(warped, hole))
    out, a = blend(warped, delta, logit)
    if with_colour:
        return out, a, generated_colour(warped, delta)
    return (out, a) if with_attention else out


class ExprGANTrunk(nn.Module):
    """Shared D_img / Q trunk [P]: [img ‖ y-planes] -> C5 s2 16, 32, 64, 128, each BN + LR(0.2), y-planes
    re-concatenated after every layer (8x8x134) -> FC 8576->1024 BN LR -> ‖y.
    img: Bx3x128x128, y: BxK -> h: Bx(1024+K)."""

    def __init__(self, width: float = 1.0, k: int = K):
        super().__init__()
        cs = [3] + [ch(c, width) for c in (16, 32, 64, 128)]
        self.convs = nn.ModuleList(conv_block(a + k, b, 5, 2, activation="lrelu") for a, b in zip(cs[:-1], cs[1:]))
        self.out_dim = ch(1024, width) + k
        self.fc = nn.Sequential(nn.Flatten(1), fc_block((cs[-1] + k) * (RES // 16) ** 2, self.out_dim - k,
                                                        activation="lrelu"))

    def features(self, img: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """The trunk's intermediate activations (for feature matching / the identity loss): the four
        conv block outputs (B x c x 64^2 .. 8^2) and the FC output (B x 1024·width, before ‖y)."""
        feats, x = [], img
        for c in self.convs:
            x = c(torch.cat([x, planes(y, x)], dim=1))
            feats.append(x)
        feats.append(self.fc(torch.cat([x, planes(y, x)], dim=1)))
        return feats

    def forward(self, img: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.features(img, y)[-1], y], dim=1)


class ExprGANQHead(nn.Module):
    """Q head [P]: K branches FC->64 BN LR -> FC->d, concatenated. ``shared`` > 0 adds the code's shared
    FC (BN LR) of that width before the branches [C]; ``tanh`` is the code's per-branch tanh [C] (no
    parameters; keeps the code in [-1,1]). h: Bxcin -> code: Bx(K*d)."""

    def __init__(self, cin: int, width: float = 1.0, k: int = K, d: int = D, shared: int = 0, tanh: bool = True):
        super().__init__()
        self.shared = fc_block(cin, ch(shared, width), activation="lrelu") if shared else nn.Identity()
        cin = ch(shared, width) if shared else cin
        qh = ch(64, width)
        self.branches = nn.ModuleList(
            nn.Sequential(fc_block(cin, qh, activation="lrelu"), nn.Linear(qh, d), act("tanh" if tanh else None))
            for _ in range(k))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.shared(h)
        return torch.cat([b(h) for b in self.branches], dim=1)


class ExprGANDiscriminator(nn.Module):
    """D_img and Q on one shared trunk (:class:`ExprGANTrunk`). D head: FC->1 logit; Q head:
    :class:`ExprGANQHead` (``q_shared``, ``q_tanh`` as there; defaults = paper layout + tanh).

    ``forward(img, y)``: img Bx3x128x128 in [-1,1], y BxK -> (d_logit Bx1, q_code Bx(K*d)).
    """

    def __init__(self, width: float = 1.0, k: int = K, d: int = D, q_shared: int = 0, q_tanh: bool = True):
        super().__init__()
        self.k, self.d = k, d
        self.trunk = ExprGANTrunk(width, k)
        self.d_head = nn.Linear(self.trunk.out_dim, 1)
        self.q_head = ExprGANQHead(self.trunk.out_dim, width, k, d, q_shared, q_tanh)

    def q(self, img: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Q only: -> code Bx(K*d)."""
        return self.q_head(self.trunk(img, y))

    def forward(self, img: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(img, y)
        return self.d_head(h), self.q_head(h)


class ExprGANDz(nn.Module):
    """D_z [P]: FC 50->64->32->16 (BN + LR(0.2) each) -> FC->1 logit. g: Bx50 -> Bx1."""

    def __init__(self, width: float = 1.0, z_dim: int = Z_DIM):
        super().__init__()
        hs = [z_dim] + [ch(c, width) for c in (64, 32, 16)]
        self.net = nn.Sequential(*(fc_block(a, b, activation="lrelu") for a, b in zip(hs[:-1], hs[1:])),
                                 nn.Linear(hs[-1], 1))

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.net(g)


# ---------------------------------------------------------------- inference split (MODELS.md 4.6)

class ExprGANTargetEncoder(nn.Module):
    """Per-target part: G_enc (shared). crop: 1x3x128x128 in [-1,1] -> z_id: 1x50."""

    def __init__(self, gen: ExprGANGenerator):
        super().__init__()
        self.enc = gen.enc

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        return self.enc(crop)


class ExprGANDecode(nn.Module):
    """Engine ``exprgan_decode``: G_dec (shared). Inputs z_id 1x50, code 1x30 -> img 1x3x128x128.
    3.9 GFLOPs at width 1. Warp-guided generators also take ``warped`` 1x3x128x128 and ``hole``
    1x1x128x128 (the warp encoder and G_dec, blended through the attention): 0.60 GFLOPs at width
    0.25 (paper mode 0.49), 1.59 at width 0.5 (1.24)."""

    input_names = ("z_id", "code")
    output_names = ("img",)

    def __init__(self, gen: ExprGANGenerator):
        super().__init__()
        self.dec = gen.dec
        self.warp_guided = gen.warp_guided
        if gen.warp_guided:
            self.w_enc = gen.w_enc

    def forward(self, z_id: torch.Tensor, code: torch.Tensor, warped: torch.Tensor | None = None,
                hole: torch.Tensor | None = None) -> torch.Tensor:
        return _decode(self, z_id, code, warped, hole, False)

    @staticmethod
    def input_shapes(z_dim: int = Z_DIM, k: int = K, d: int = D) -> dict[str, tuple[int, ...]]:
        return {"z_id": (1, z_dim), "code": (1, k * d)}


class ExprGANQ(nn.Module):
    """Optional engine ``exprgan_q``: shared trunk + Q head of ``disc`` (no D head).
    Inputs drv_rgb 1x3x128x128 in [-1,1], y 1xK -> code 1x(K*d). 0.14 GFLOPs at width 1."""

    input_names = ("drv_rgb", "y")
    output_names = ("code",)

    def __init__(self, disc: ExprGANDiscriminator):
        super().__init__()
        self.trunk, self.q_head = disc.trunk, disc.q_head

    def forward(self, drv_rgb: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.q_head(self.trunk(drv_rgb, y))

    @staticmethod
    def input_shapes(k: int = K) -> dict[str, tuple[int, ...]]:
        return {"drv_rgb": (1, 3, RES, RES), "y": (1, k)}
