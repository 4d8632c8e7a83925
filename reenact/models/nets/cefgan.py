"""Cascade EF-GAN networks (model E, id ``cefgan``), MODELS.md section 5.

Layers follow GANimation [D] since the paper's supplement is not available.

Training networks
    AttnGenerator   GANimation-style generator body with colour (tanh) and
                    attention (sigmoid) heads; used for the 4 branches and
                    the refiner.
    PatchBox, default_boxes, PatchStitcher
                    fixed eyes / nose / mouth boxes in the 128 crop and the
                    static slice + concat paste into a 128 canvas.
    EFGANStage      one EF-GAN: global + 3 local branches, stitching, refiner.
    AUInterpolator  MLP [y_src || r_k] (34) -> 256 -> 256 -> 17, sigmoid.
    AUCritic        MLP 17 -> 256 -> 256 -> 1 (WGAN-GP critic on AU vectors).
    CEFDiscriminator  image critic (2x2 patch map) + AU regression head.
    CascadeEFGAN    ``n_stages`` EF-GANs (1 = fast mode) + shared interpolator.

Inference module (MODELS.md 5.6)
    CEFGANDrive     engine ``cefgan_drive``: (img_src, au_src, au_tgt) -> img.

Images are NCHW in [-1, 1] at 128x128, AUs are Bx17 in [0, 1]. ``width``
scales hidden channels and FC widths (``round(c * width)``, at least 8); image,
AU and patch sizes are fixed. At width 1.0: one stage 38.8M params / 44.2
GFLOPs, 3 stages 116.3M / 132.6 GFLOPs, interpolator 0.08M, D 44.9M.

Warp-guided (``warp_guided=True``, :mod:`~reenact.models.nets.warpguided`):
every stage already is GANimation-like (colour + attention over its input
image), so the warp enters as that input: stage 1 edits the target crop moved
by the mesh warp (``warped``), stage k > 1 the previous stage's output, as in
the paper's cascade. The warp's hole mask (in [-1,1], one channel) joins the
input of the global and local generators ([I ‖ hole ‖ AU planes], 4 + n_aus
channels) and of the refiner ([I_global ‖ I_stitched ‖ hole], 7 channels) in
every stage. As in every warp-guided generator
(:func:`~reenact.models.nets.warpguided.blend`), each colour head predicts a
change of its blend's base rather than a colour from scratch: a blend is
clip(I_base + M_A · 2 · tanh-output, -1, 1), so a branch with nothing to add
leaves its input as it is. The AU planes are raised inside the hole
(y · (1 + hole)): the instance norm after the first conv removes a spatially
constant input everywhere but at the borders, so the paper's planes reach the
generators only weakly; inside the hole, where the generator must paint (an
opened mouth), the AUs are then seen at full strength, at no cost. The
attention convs get a bias, initialised to -3 (M_A = sigmoid(-3) = 0.05), and
``keep_map`` = prod over stages of (1 - A_global)(1 - A_refine) (the local
branches reach the output only through the refiner) is the attention ``A`` of
the warp-guided models (1 = the warped pixel passes through unchanged): 0.91 at
initialisation for one stage, 0.83 for two. Conditions (AUs, interpolator) and
the local eye / nose / mouth branches are unchanged. The drive engine is
:class:`CEFGANWarpDrive` (au_src, au_tgt, warped, hole).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn as nn

from .common import ch as _ch

RES = 128
N_AUS = 17

__all__ = [
    "PatchBox",
    "default_boxes",
    "AttnGenerator",
    "PatchStitcher",
    "StageOut",
    "EFGANStage",
    "AUInterpolator",
    "AUCritic",
    "CEFDiscriminator",
    "CascadeOut",
    "CascadeEFGAN",
    "CEFGANDrive",
    "CEFGANWarpDrive",
    "keep_map",
    "au_planes",
    "gan_init",
]




def gan_init(module: nn.Module) -> nn.Module:
    """GANimation initialisation: conv / transposed-conv weights ~ N(0, 0.02),
    biases 0 (norm layers and linears keep PyTorch defaults). Returns module."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def au_planes(au: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """au: BxN -> BxNxhxw constant planes (broadcast, no loops)."""
    return au[:, :, None, None].expand(-1, -1, h, w)


# --------------------------------------------------------------------------- patches


class PatchBox(NamedTuple):
    """A fixed box in the crop: rows [top, top+h), cols [left, left+w)."""

    name: str
    top: int
    left: int
    h: int
    w: int


# Patch sizes (H x W) from MODELS.md 5.2.
PATCH_SIZES = {"eyes": (40, 92), "nose": (40, 48), "mouth": (40, 60)}

# Default centres (row, col) in the 128 aligned crop. They assume a
# face-centred crop where the eye centres sit at ~0.39 R, the nose tip at
# ~0.56 R and the mouth centre at ~0.75 R (R = 128), horizontally centred.
# The paper uses the mean keypoint positions of the training set; a project
# aligner whose template differs should pass its own centres:
# eyes = mean of the two eye centres, nose = nose tip, mouth = mean of the
# mouth corners (all in crop pixels).
EYES_CENTER = (50, 64)   # box rows 30..70,  cols 18..110
NOSE_CENTER = (72, 64)   # box rows 52..92,  cols 40..88
MOUTH_CENTER = (96, 64)  # box rows 76..116, cols 34..94


def default_boxes(
    eyes_center: Sequence[int] = EYES_CENTER,
    nose_center: Sequence[int] = NOSE_CENTER,
    mouth_center: Sequence[int] = MOUTH_CENTER,
    res: int = RES,
) -> tuple[PatchBox, PatchBox, PatchBox]:
    """Boxes (eyes, nose, mouth) centred at the given (row, col) pixel centres.

    top = cy - h // 2, left = cx - w // 2; every box must lie inside the
    res x res crop. Sizes are fixed (eyes 40x92, nose 40x48, mouth 40x60).
    """
    boxes = []
    for name, (cy, cx) in zip(("eyes", "nose", "mouth"), (eyes_center, nose_center, mouth_center)):
        h, w = PATCH_SIZES[name]
        top, left = int(cy) - h // 2, int(cx) - w // 2
        if top < 0 or left < 0 or top + h > res or left + w > res:
            raise ValueError(f"{name} box {h}x{w} at centre ({cy}, {cx}) leaves the {res}x{res} crop")
        assert h % 4 == 0 and w % 4 == 0
        boxes.append(PatchBox(name, top, left, h, w))
    return tuple(boxes)  # type: ignore[return-value]


class PatchStitcher(nn.Module):
    """Paste patches into a canvas with static slices and concats (no scatter).

    base: Bx3xRxR (pixels outside all boxes), patches: one Bx3xhxw per box
    -> Bx3xRxR. Patches are pasted in ``paste_order`` (later wins where boxes
    overlap); the default order nose, mouth, eyes keeps the eyes and the
    lips whole.
    """

    def __init__(self, boxes: Sequence[PatchBox], res: int = RES,
                 paste_order: Sequence[str] = ("nose", "mouth", "eyes")):
        super().__init__()
        self.boxes = tuple(boxes)
        self.res = res
        names = [b.name for b in self.boxes]
        self.order = [names.index(n) for n in paste_order if n in names]
        self.order += [i for i in range(len(names)) if i not in self.order]

    def crop(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """x: BxCxRxR -> BxCxhxw, static slice of box i."""
        b = self.boxes[i]
        return x[:, :, b.top:b.top + b.h, b.left:b.left + b.w]

    def mask(self, i: int) -> torch.Tensor:
        """1x1xRxR float mask of box i (for losses / logging)."""
        b = self.boxes[i]
        m = torch.zeros(1, 1, self.res, self.res)
        m[:, :, b.top:b.top + b.h, b.left:b.left + b.w] = 1.0
        return m

    @staticmethod
    def _paste(canvas: torch.Tensor, patch: torch.Tensor, b: PatchBox) -> torch.Tensor:
        band = canvas[:, :, b.top:b.top + b.h]
        row = [band[..., :b.left], patch, band[..., b.left + b.w:]]
        rows = [canvas[:, :, :b.top], torch.cat([r for r in row if r.shape[3] > 0], dim=3),
                canvas[:, :, b.top + b.h:]]
        return torch.cat([r for r in rows if r.shape[2] > 0], dim=2)

    def forward(self, base: torch.Tensor, patches: Sequence[torch.Tensor]) -> torch.Tensor:
        out = base
        for i in self.order:
            out = self._paste(out, patches[i], self.boxes[i])
        return out


# --------------------------------------------------------------------------- generators


class _Res(nn.Module):
    """GANimation residual block: x + (C3 IN ReLU C3 IN)(x)."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.InstanceNorm2d(c, affine=True), nn.ReLU(),
            nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.InstanceNorm2d(c, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _cbr(conv: nn.Module, c: int) -> list[nn.Module]:
    return [conv, nn.InstanceNorm2d(c, affine=True), nn.ReLU()]


class AttnGenerator(nn.Module):
    """GANimation generator body with colour and attention heads.

    C7 s1-64 IN ReLU -> C4 s2-128 IN ReLU -> C4 s2-256 IN ReLU -> n_res x Res(256)
    -> T4 s2-128 IN ReLU -> T4 s2-64 IN ReLU; colour C7-3 tanh, attention C7-1
    sigmoid. Convs without bias (followed by IN) and ``gan_init``, as in GANimation.

    x: Bxin_chxHxW (H, W divisible by 4) -> (color Bx3xHxW in [-1,1],
    attn Bx1xHxW in [0,1]).

    ``attn_bias`` (warp-guided stages): the attention conv gets a bias, initialised to this value
    (None: no bias, as GANimation).
    """

    def __init__(self, in_ch: int, n_res: int = 6, width: float = 1.0, attn_bias: float | None = None):
        super().__init__()
        c1, c2, c3 = _ch(64, width), _ch(128, width), _ch(256, width)
        layers = _cbr(nn.Conv2d(in_ch, c1, 7, 1, 3, bias=False), c1)
        layers += _cbr(nn.Conv2d(c1, c2, 4, 2, 1, bias=False), c2)
        layers += _cbr(nn.Conv2d(c2, c3, 4, 2, 1, bias=False), c3)
        layers += [_Res(c3) for _ in range(n_res)]
        layers += _cbr(nn.ConvTranspose2d(c3, c2, 4, 2, 1, bias=False), c2)
        layers += _cbr(nn.ConvTranspose2d(c2, c1, 4, 2, 1, bias=False), c1)
        self.body = nn.Sequential(*layers)
        self.color = nn.Sequential(nn.Conv2d(c1, 3, 7, 1, 3, bias=False), nn.Tanh())
        self.attn = nn.Sequential(nn.Conv2d(c1, 1, 7, 1, 3, bias=attn_bias is not None), nn.Sigmoid())
        gan_init(self)
        if attn_bias is not None:
            with torch.no_grad():
                self.attn[0].bias.fill_(attn_bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(x)
        return self.color(f), self.attn(f)


def _blend(color: torch.Tensor, attn: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """I = M_A * M_C + (1 - M_A) * base."""
    return attn * color + (1.0 - attn) * base


def _delta_blend(delta: torch.Tensor, attn: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """Warp-guided stages: M_C = base + 2 * delta (the colour head's output as a change of the base,
    as :func:`~reenact.models.nets.warpguided.blend`), I = clip(M_A * M_C + (1 - M_A) * base, -1, 1)."""
    return (base + attn * (2.0 * delta)).clamp(-1.0, 1.0)


class StageOut(NamedTuple):
    """Everything one EF-GAN stage produced (for losses and logging).

    img: refined output Bx3x128x128; global_img: global branch output;
    stitched: local outputs pasted on the input; attn / color: dicts keyed by
    "global", "eyes", "nose", "mouth", "refine" (attn Bx1xhxw in [0,1],
    color Bx3xhxw in [-1,1], patch-sized for the local branches).
    """

    img: torch.Tensor
    global_img: torch.Tensor
    stitched: torch.Tensor
    attn: dict
    color: dict


class EFGANStage(nn.Module):
    """One EF-GAN: global + eyes/nose/mouth branches, stitching, refiner.

    Branch input [I || AU planes] (3 + n_aus channels); each branch outputs
    I_init = M_A*M_C + (1-M_A)*I_in on its region; local outputs are pasted
    on I_in (PatchStitcher); refiner input [I_global || I_stitched] (6 ch, 3
    residual blocks), I_out = A_R*C_R + (1-A_R)*I_global.

    img: Bx3x128x128 in [-1,1], au: Bx17 in [0,1] -> Bx3x128x128 in [-1,1].

    Warp-guided (``warp_guided=True``): ``run`` / ``forward`` also take ``hole`` Bx1x128x128 in
    [0,1]; the branches read [I ‖ 2·hole-1 ‖ AU planes · (1 + hole)], the refiner [I_global ‖ I_stitched ‖
    2·hole-1], every attention conv has a bias initialised to ``ATTN_BIAS`` and the colour heads
    predict changes of their bases (see the module docstring); ``color`` then holds those changes.
    """

    BRANCHES = ("eyes", "nose", "mouth")
    ATTN_BIAS = -3.0  # warp-guided: M_A = sigmoid(-3) = 0.05 at initialisation, the stage starts near its input

    def __init__(self, width: float = 1.0, n_res: int = 6, n_aus: int = N_AUS,
                 boxes: Sequence[PatchBox] | None = None, n_res_refine: int = 3, warp_guided: bool = False):
        super().__init__()
        self.n_aus = n_aus
        self.warp_guided = warp_guided
        self.boxes = tuple(boxes) if boxes is not None else default_boxes()
        assert tuple(b.name for b in self.boxes) == self.BRANCHES
        extra, bias = (1, self.ATTN_BIAS) if warp_guided else (0, None)
        self.global_branch = AttnGenerator(3 + extra + n_aus, n_res, width, bias)
        self.local_branches = nn.ModuleDict(
            {n: AttnGenerator(3 + extra + n_aus, n_res, width, bias) for n in self.BRANCHES})
        self.refiner = AttnGenerator(6 + extra, n_res_refine, width, bias)
        self.stitch = PatchStitcher(self.boxes)

    def run(self, img: torch.Tensor, au: torch.Tensor, hole: torch.Tensor | None = None) -> StageOut:
        """Full stage with all intermediate maps (training)."""
        planes = au_planes(au, img.shape[2], img.shape[3])
        if self.warp_guided:
            if hole is None:
                raise ValueError("a warp-guided EF-GAN stage needs the warp's hole mask")
            h = hole * 2.0 - 1.0
            x = torch.cat([img, h, planes * (1.0 + hole)], dim=1)  # AUs raised inside the hole (module docstring)
        else:
            x = torch.cat([img, planes], dim=1)
        mix = _delta_blend if self.warp_guided else _blend
        attn, color = {}, {}
        color["global"], attn["global"] = self.global_branch(x)
        g = mix(color["global"], attn["global"], img)
        locs = []
        for i, name in enumerate(self.BRANCHES):
            c, a = self.local_branches[name](self.stitch.crop(x, i))
            color[name], attn[name] = c, a
            locs.append(mix(c, a, self.stitch.crop(img, i)))
        stitched = self.stitch(img, locs)
        r_in = [g, stitched, h] if self.warp_guided else [g, stitched]
        color["refine"], attn["refine"] = self.refiner(torch.cat(r_in, dim=1))
        out = mix(color["refine"], attn["refine"], g)
        return StageOut(out, g, stitched, attn, color)

    def forward(self, img: torch.Tensor, au: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor:
        return self.run(img, au, hole).img


# --------------------------------------------------------------------------- AU MLPs


class AUInterpolator(nn.Module):
    """y_k = sigmoid(MLP([y_src || r_k])), MLP 2N -> 256 -> 256 -> N, LR(0.2).

    y_src: BxN in [0,1], r: BxN residual (r_k = y~_k - y_src) -> y_k: BxN in [0,1].
    """

    def __init__(self, n_aus: int = N_AUS, width: float = 1.0):
        super().__init__()
        c = _ch(256, width)
        self.mlp = nn.Sequential(
            nn.Linear(2 * n_aus, c), nn.LeakyReLU(0.2),
            nn.Linear(c, c), nn.LeakyReLU(0.2),
            nn.Linear(c, n_aus), nn.Sigmoid())

    def forward(self, y_src: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([y_src, r], dim=1))


class AUCritic(nn.Module):
    """Wasserstein critic on AU vectors: MLP N -> 256 -> 256 -> 1, LR(0.2).

    au: BxN -> score: B (no sigmoid).
    """

    def __init__(self, n_aus: int = N_AUS, width: float = 1.0):
        super().__init__()
        c = _ch(256, width)
        self.mlp = nn.Sequential(
            nn.Linear(n_aus, c), nn.LeakyReLU(0.2),
            nn.Linear(c, c), nn.LeakyReLU(0.2),
            nn.Linear(c, 1))

    def forward(self, au: torch.Tensor) -> torch.Tensor:
        return self.mlp(au).squeeze(1)


class CEFDiscriminator(nn.Module):
    """Image discriminator: C4 s2 3->64->128->256->512->1024->2048, LR(0.01),
    no norm (128^2 -> 2^2); critic head C3 s1-1, AU head C2 valid-N; ``gan_init``.

    x: Bx3x128x128 in [-1,1] -> (critic Bx1x2x2 patch scores, au BxN).
    ``return_feats=True`` adds the list of the 6 trunk activations.
    """

    def __init__(self, width: float = 1.0, n_aus: int = N_AUS, res: int = RES):
        super().__init__()
        chans = [3] + [_ch(c, width) for c in (64, 128, 256, 512, 1024, 2048)]
        self.trunk = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.01))
            for a, b in zip(chans[:-1], chans[1:]))
        k = res // 2 ** (len(chans) - 1)
        self.critic = nn.Conv2d(chans[-1], 1, 3, 1, 1, bias=False)
        self.au = nn.Conv2d(chans[-1], n_aus, k, 1, 0, bias=False)
        gan_init(self)

    def forward(self, x: torch.Tensor, return_feats: bool = False):
        feats = []
        for blk in self.trunk:
            x = blk(x)
            feats.append(x)
        critic, au = self.critic(x), self.au(x).flatten(1)
        return (critic, au, feats) if return_feats else (critic, au)


# --------------------------------------------------------------------------- cascade


def keep_map(stages: Sequence[StageOut]) -> torch.Tensor:
    """The share of a cascade's input image in its output: prod over the stages of
    (1 - A_global)(1 - A_refine) (the local branches reach the output only through the refiner's
    colour). Bx1xRxR in [0,1]; for a warp-guided cascade, 1 = the warped pixel passes through."""
    keep = None
    for o in stages:
        k = (1.0 - o.attn["global"]) * (1.0 - o.attn["refine"])
        keep = k if keep is None else keep * k
    return keep


class CascadeOut(NamedTuple):
    """imgs: per-stage outputs (last = final); targets: y_k fed to each stage
    (last = y_tgt); stages: per-stage StageOut."""

    imgs: list
    targets: list
    stages: list


class CascadeEFGAN(nn.Module):
    """``n_stages`` EF-GANs in cascade with one shared AU interpolator.

    Stage k (1-based) edits stage k-1's output (stage 1: img_src) toward y_k.
    For k < n: y_k = interp(au_src, r_k), r_k = (k/n)(au_tgt - au_src)
    (the residual of the evenly spaced pseudo-target); y_n = au_tgt.
    n_stages = 1 is the single-stage fast mode (interpolator unused).

    img_src: Bx3x128x128 in [-1,1], au_src, au_tgt: Bx17 in [0,1]
    -> Bx3x128x128 in [-1,1].

    Warp-guided (``warp_guided=True``): ``img_src`` is the warped crop and ``run`` / ``forward``
    also take ``hole`` Bx1x128x128, fed to every stage.
    """

    def __init__(self, width: float = 1.0, n_res: int = 6, n_stages: int = 3, n_aus: int = N_AUS,
                 eyes_center: Sequence[int] = EYES_CENTER, nose_center: Sequence[int] = NOSE_CENTER,
                 mouth_center: Sequence[int] = MOUTH_CENTER, warp_guided: bool = False):
        super().__init__()
        assert n_stages >= 1
        self.n_stages, self.n_aus = n_stages, n_aus
        self.warp_guided = warp_guided
        boxes = default_boxes(eyes_center, nose_center, mouth_center)
        self.stages = nn.ModuleList(EFGANStage(width, n_res, n_aus, boxes, warp_guided=warp_guided)
                                    for _ in range(n_stages))
        self.interp = AUInterpolator(n_aus, width)

    def pseudo_targets(self, au_src: torch.Tensor, au_tgt: torch.Tensor) -> list[torch.Tensor]:
        """Evenly spaced y~_k = au_src + (k/n)(au_tgt - au_src), k = 1..n."""
        n = self.n_stages
        return [au_src + (k / n) * (au_tgt - au_src) for k in range(1, n + 1)]

    def targets(self, au_src: torch.Tensor, au_tgt: torch.Tensor) -> list[torch.Tensor]:
        """AU targets y_1..y_n: interpolator for k < n, au_tgt for k = n."""
        n = self.n_stages
        ys = [self.interp(au_src, (k / n) * (au_tgt - au_src)) for k in range(1, n)]
        return ys + [au_tgt]

    def init_from_single(self, stage: EFGANStage) -> None:
        """Schedule step 2: copy a trained single EF-GAN into every stage."""
        for s in self.stages:
            s.load_state_dict(stage.state_dict())

    def run(self, img_src: torch.Tensor, au_src: torch.Tensor, au_tgt: torch.Tensor,
            hole: torch.Tensor | None = None) -> CascadeOut:
        """Full cascade with per-stage outputs and maps (training)."""
        ys = self.targets(au_src, au_tgt)
        img, imgs, outs = img_src, [], []
        for stage, y in zip(self.stages, ys):
            o = stage.run(img, y, hole)
            img = o.img
            imgs.append(img)
            outs.append(o)
        return CascadeOut(imgs, ys, outs)

    def forward(self, img_src: torch.Tensor, au_src: torch.Tensor, au_tgt: torch.Tensor,
                hole: torch.Tensor | None = None) -> torch.Tensor:
        img = img_src
        for stage, y in zip(self.stages, self.targets(au_src, au_tgt)):
            img = stage(img, y) if hole is None else stage(img, y, hole)
        return img


# --------------------------------------------------------------------------- inference


class CEFGANDrive(nn.Module):
    """Engine ``cefgan_drive``: interpolator + all stages, shares ``cascade``'s parameters.

    img_src: 1x3x128x128 in [-1,1], au_src: 1x17 in [0,1], au_tgt: 1x17 in [0,1]
    -> img: 1x3x128x128 clamped to [-1,1].
    With ``n_stages == 1`` (fast mode) au_src is not read, so the ONNX
    exporter drops it and the graph's inputs are (img_src, au_tgt).
    """

    def __init__(self, cascade: CascadeEFGAN):
        super().__init__()
        self.cascade = cascade

    def forward(self, img_src: torch.Tensor, au_src: torch.Tensor, au_tgt: torch.Tensor) -> torch.Tensor:
        return self.cascade(img_src, au_src, au_tgt).clamp(-1.0, 1.0)


class CEFGANWarpDrive(nn.Module):
    """Engine ``cefgan_drive`` of a warp-guided cascade: interpolator + all stages on the warped crop.

    au_src: 1x17 in [0,1] (the target's own), au_tgt: 1x17 in [0,1], warped: 1x3x128x128 in [-1,1],
    hole: 1x1x128x128 in [0,1] -> img: 1x3x128x128 clamped to [-1,1]. With ``n_stages == 1`` au_src
    is not read (the exported graph drops it), as in :class:`CEFGANDrive`.
    """

    def __init__(self, cascade: CascadeEFGAN):
        super().__init__()
        self.cascade = cascade

    def forward(self, au_src: torch.Tensor, au_tgt: torch.Tensor, warped: torch.Tensor,
                hole: torch.Tensor) -> torch.Tensor:
        return self.cascade(warped, au_src, au_tgt, hole).clamp(-1.0, 1.0)
