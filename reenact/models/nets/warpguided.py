"""Warp-guided generation: what the generators add to the mesh warp.

A warp-guided generator reads, besides its paper's condition, the target crop moved by the mesh
warp (``warped``, Bx3xRxR in [-1,1]) and the warp's hole mask (``hole``, Bx1xRxR in [0,1]: pixels
with no source texture, the inside of an opened mouth). A small encoder turns the two into
features added to the generator's own skip features, and the generator predicts a colour image
and an attention logit. The output blends the two (as GANimation and Cascade EF-GAN do):

    A = sigmoid(logit);  C = warped + 2 * delta;  out = clip(A * warped + (1 - A) * C, -1, 1)

The colour C is predicted as a change ``delta`` (the generator's tanh output) of the warped crop,
not from scratch: trained on a few dozen people, a colour from scratch is a blurry average face
that costs identity wherever the attention leaks, while a change is near zero where the network
has nothing to add (measured on validation pairs, see the model cards), and the factor 2 lets it
still reach any colour (a dark mouth interior over a pale lip).

so identity passes through wherever the warp is right and the network spends its capacity where
it is not (teeth, eyelids, creases, the warp's own errors). The attention regularisers of the
recipes keep A from collapsing to "all warp" or "all generated".
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .common import conv_block


class WarpEncoder(nn.Module):
    """[warped ‖ hole] (4 channels) -> features at 1/2, 1/4, 1/8 ... of the crop, ``channels`` each
    (one C5 s2 BN ReLU per scale, like the generators' own encoders)."""

    def __init__(self, channels: Sequence[int], in_ch: int = 4):
        super().__init__()
        blocks, c_in = [], in_ch
        for c in channels:
            blocks.append(conv_block(c_in, c, 5, 2))
            c_in = c
        self.blocks = nn.ModuleList(blocks)

    def forward(self, warped: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = torch.cat([warped, hole * 2.0 - 1.0], dim=1)
        out = []
        for b in self.blocks:
            x = b(x)
            out.append(x)
        return tuple(out)


def blend(warped: torch.Tensor, delta: torch.Tensor, logit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, A): ``out = A * warped + (1 - A) * (warped + 2 * delta)`` clipped to [-1, 1], with
    A = sigmoid(logit) (1 = the warped pixel passes through) and ``delta`` in [-1, 1] the
    generator's change of the warped colour."""
    a = torch.sigmoid(logit)
    return (warped + (1.0 - a) * (2.0 * delta)).clamp(-1.0, 1.0), a


def generated_colour(warped: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """C = warped + 2 * delta clipped to [-1, 1]: the colour the attention switches to where A < 1
    (what a recipe's colour term compares with the truth; ``blend``'s output is A * warped + (1 - A) * C
    before its own clip)."""
    return (warped + 2.0 * delta).clamp(-1.0, 1.0)


def attention_losses(a: torch.Tensor, free: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sparsity, smoothness) of an attention map ``A`` Bx1xRxR (GANimation's regularisers, with
    A = 1 meaning "keep the warp"): the mean share of generated pixels, each weighted by 1 - free
    (``free`` Bx1xRxR in [0,1]: where generating costs nothing, e.g. the warp's hole; training's
    ``WarpBatch.free``), so the network generates only where it must; and the total variation of A."""
    gen = (1.0 - a) * (1.0 - free)
    sparsity = gen.mean()
    tv = (a[..., 1:, :] - a[..., :-1, :]).abs().mean() + (a[..., :, 1:] - a[..., :, :-1]).abs().mean()
    return sparsity, tv
