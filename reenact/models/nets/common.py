"""Building blocks shared by the GC-GAN, lmklabel and ExprGAN networks.

Everything here is static-shape friendly and exports to ONNX opset 17: no data-dependent
control flow, no scatter, no loops over landmarks.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ...geometry.heatmaps import gaussian_heatmaps_torch

__all__ = [
    "ch", "act", "conv", "tconv", "conv_block", "tconv_block", "fc_block", "LayerNorm2d", "Up2",
    "GaussianHeatmap", "render_heatmaps", "planes", "init_normal_", "count_params", "count_flops",
    "Counts", "count", "BYTES_PER",
]


def ch(n: int, width: float = 1.0, minimum: int = 8) -> int:
    """Hidden width ``n`` scaled by ``width``, rounded, at least ``minimum``."""
    return max(minimum, int(round(n * width)))


def act(name: str | None, slope: float = 0.2) -> nn.Module:
    """``"relu" | "lrelu" | "tanh" | "sigmoid" | None`` -> activation module (Identity for None)."""
    if name is None:
        return nn.Identity()
    return {"relu": lambda: nn.ReLU(inplace=False), "lrelu": lambda: nn.LeakyReLU(slope),
            "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[name]()


def _norm2d(name: str | None, c: int) -> nn.Module:
    if name is None:
        return nn.Identity()
    return {"bn": lambda: nn.BatchNorm2d(c), "in": lambda: nn.InstanceNorm2d(c), "ln": lambda: LayerNorm2d(c)}[name]()


def conv(cin: int, cout: int, k: int, s: int = 1, bias: bool = True, pad: str = "zeros",
         padding: int | None = None) -> nn.Module:
    """``Ck sS-cout``. ``pad="reflect"`` puts a ReflectionPad2d(k//2) in front ("ReflPad + C");
    otherwise zero padding ``padding`` (default k//2, i.e. TF SAME size)."""
    if pad == "reflect":
        return nn.Sequential(nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, s, 0, bias=bias))
    return nn.Conv2d(cin, cout, k, s, k // 2 if padding is None else padding, bias=bias)


def tconv(cin: int, cout: int, k: int, s: int = 2, bias: bool = True) -> nn.ConvTranspose2d:
    """``Tk sS-cout`` that multiplies the size by ``s`` exactly (MODELS.md 0.1 padding rule)."""
    if k % 2 == 1:
        return nn.ConvTranspose2d(cin, cout, k, s, padding=k // 2, output_padding=s - 1, bias=bias)
    return nn.ConvTranspose2d(cin, cout, k, s, padding=(k - s) // 2, bias=bias)


def conv_block(cin: int, cout: int, k: int, s: int = 1, norm: str | None = "bn", activation: str | None = "relu",
               pad: str = "zeros", padding: int | None = None, bias: bool | None = None) -> nn.Sequential:
    """conv -> norm -> act. Bias defaults to off when a norm follows (it would be cancelled)."""
    bias = norm is None if bias is None else bias
    return nn.Sequential(conv(cin, cout, k, s, bias, pad, padding), _norm2d(norm, cout), act(activation))


def tconv_block(cin: int, cout: int, k: int, s: int = 2, norm: str | None = "bn",
                activation: str | None = "relu", bias: bool | None = None) -> nn.Sequential:
    """transposed conv (size x s) -> norm -> act."""
    bias = norm is None if bias is None else bias
    return nn.Sequential(tconv(cin, cout, k, s, bias), _norm2d(norm, cout), act(activation))


def fc_block(fin: int, fout: int, norm: str | None = "bn", activation: str | None = "relu",
             bias: bool | None = None) -> nn.Sequential:
    """Linear -> BatchNorm1d (``norm="bn"``) -> act."""
    bias = norm is None if bias is None else bias
    layers: list[nn.Module] = [nn.Linear(fin, fout, bias=bias)]
    if norm == "bn":
        layers.append(nn.BatchNorm1d(fout))
    elif norm is not None:
        raise ValueError(f"unsupported 1d norm {norm!r}")
    layers.append(act(activation))
    return nn.Sequential(*layers)


class LayerNorm2d(nn.Module):
    """Layer norm over (C,H,W) of each sample, with a per-channel affine (like TF's ``layer_norm``
    on NHWC, whose gamma/beta live on the last axis). x: BxCxHxW -> BxCxHxW."""

    def __init__(self, c: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(dim=(1, 2, 3), keepdim=True)
        var = (x - mu).pow(2).mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mu) * torch.rsqrt(var + self.eps)
        return x * self.weight[None, :, None, None] + self.bias[None, :, None, None]


class Up2(nn.Module):
    """Nearest-neighbour upsample x2 (``↑2``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest")


def render_heatmaps(lmk: torch.Tensor, size: int, sigma: float = 2.0) -> torch.Tensor:
    """One Gaussian per landmark: BxNx2 pixels (centres at integers) -> BxNxSxS, peak 1.

    The project's one renderer (``reenact.geometry.heatmaps``), used by training data and
    engines alike; Sub/Mul/Exp only, no scatter, no loop over landmarks.
    """
    return gaussian_heatmaps_torch(lmk, size, sigma)


class GaussianHeatmap(nn.Module):
    """Module form of :func:`render_heatmaps`. lmk: BxNx2 pixels -> BxNxSxS in [0,1]."""

    def __init__(self, size: int, sigma: float = 2.0):
        super().__init__()
        self.size, self.sigma = size, float(sigma)

    def forward(self, lmk: torch.Tensor) -> torch.Tensor:
        return gaussian_heatmaps_torch(lmk, self.size, self.sigma)

    def extra_repr(self) -> str:
        return f"size={self.size}, sigma={self.sigma}"


def planes(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a vector to constant planes. v: BxK, like: Bx?xHxW -> BxKxHxW."""
    ones = torch.ones(1, 1, int(like.shape[2]), int(like.shape[3]), dtype=v.dtype, device=v.device)
    return v[:, :, None, None] * ones  # a Mul by a constant in ONNX (no Shape/Expand ops)


def init_normal_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """pix2pix-style init: conv/linear weights ~ N(0, std), biases 0; norm weights ~ N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, LayerNorm2d)) and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def count_params(module: nn.Module | Iterable[nn.Module], trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; shared parameters are counted once. Works on ``meta``."""
    mods = [module] if isinstance(module, nn.Module) else list(module)
    seen: dict[int, int] = {}
    for m in mods:
        for p in m.parameters():
            if p.requires_grad or not trainable_only:
                seen[id(p)] = p.numel()
    return sum(seen.values())


aten = torch.ops.aten
BYTES_PER = {"fp32": 4, "fp16": 2}


@dataclass
class Counts:
    """Work and traffic of one forward pass (element counts; bytes depend on the precision)."""

    flops: int = 0                 # 2 x MACs of conv / linear / matmul layers
    layers: int = 0                # how many such layers ran
    layer_weight_elems: int = 0    # sum over those layers of their weight (and bias) elements
    layer_act_elems: int = 0       # sum over those layers of their input + output activation elements
    param_elems: int = 0           # every parameter and buffer of the module, once
    io_elems: int = 0              # the forward's inputs and outputs

    def bytes(self, precision: str = "fp32") -> int:
        """Per-layer traffic: weights + input/output activations of each counted layer."""
        return BYTES_PER[precision] * (self.layer_weight_elems + self.layer_act_elems)

    def bytes_strict(self, precision: str = "fp32") -> int:
        """Every weight once plus the forward's inputs and outputs."""
        return BYTES_PER[precision] * (self.param_elems + self.io_elems)

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{k: v + getattr(other, k) for k, v in asdict(self).items()})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gflops"] = self.flops / 1e9
        for p in BYTES_PER:
            d[f"mbytes_{p}"] = self.bytes(p) / 1e6
            d[f"mbytes_strict_{p}"] = self.bytes_strict(p) / 1e6
        return d


def _numel(x: Any) -> int:
    return x.numel() if isinstance(x, torch.Tensor) else 0


def _mm_macs(a: torch.Tensor, b: torch.Tensor) -> int:
    return math.prod(a.shape) * b.shape[-1]  # [.., n, k] @ [.., k, m] -> n * k * m (times batch)


class _CountMode(TorchDispatchMode):
    """Counts FLOPs and traffic of the matrix-rate layers as the aten ops go by."""

    def __init__(self, weights: set[int]):
        super().__init__()
        self.weights = weights
        self.c = Counts()

    def _is_weight(self, t: Any) -> bool:
        if not isinstance(t, torch.Tensor):
            return False
        base = t._base if t._base is not None else t  # e.g. ``weight.t()`` inside ``linear``
        return id(t) in self.weights or id(base) in self.weights

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func.overloadpacket
        macs = None
        if packet in (aten.convolution, aten._convolution):
            x, w, transposed = args[0], args[1], bool(args[6])
            # plain: every output element sums Cin/groups x kernel products (w: [Cout, Cin/g, *k]);
            # transposed: every input element scatters into Cout/groups x kernel outputs (w: [Cin, Cout/g, *k])
            macs = (x.numel() if transposed else out.numel()) * math.prod(w.shape[1:])
            tensors = [x, w, args[2]]
        elif packet in (aten.mm, aten.bmm):
            macs = _mm_macs(args[0], args[1])
            tensors = [args[0], args[1]]
        elif packet in (aten.addmm, aten.baddbmm):
            macs = _mm_macs(args[1], args[2])
            tensors = [args[0], args[1], args[2]]
        if macs is not None:
            c = self.c
            c.flops += 2 * macs
            c.layers += 1
            for t in tensors:
                if self._is_weight(t):
                    c.layer_weight_elems += _numel(t)
                else:
                    c.layer_act_elems += _numel(t)
            c.layer_act_elems += _numel(out)
        return out


def count(module: nn.Module, inputs: Sequence[torch.Tensor]) -> Counts:
    """FLOPs and traffic of ``module(*inputs)`` (works on ``meta`` modules and tensors)."""
    tensors = {id(t): t for t in list(module.parameters()) + list(module.buffers())}
    mode = _CountMode(set(tensors))
    with torch.no_grad(), mode:
        out = module(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    c = mode.c
    c.param_elems = sum(t.numel() for t in tensors.values())
    c.io_elems = sum(_numel(x) for x in inputs) + sum(_numel(o) for o in outs)
    return c


def count_flops(module: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs = 2 x multiply-accumulates of conv / linear layers (MODELS.md 0.1) for one forward.
    Norms, activations, resampling and biases are not counted. Works with ``meta`` tensors,
    so full-size models can be counted without allocating them."""
    return count(module, inputs).flops
