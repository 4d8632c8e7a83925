"""The pluggable perceptual / identity feature network (MODELS.md, first section).

With a local VGG19 file (the state dict layout torchvision publishes: ``features.N.weight``),
``FeatureLoss`` compares VGG19 activations of fake and real images. Without one (pretrained
weights cannot be downloaded by this project), it falls back to discriminator feature
matching: L1 between the discriminator's intermediate features on real and fake. Every run
records which one it used.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from reenact.errors import ModelFileError

# torchvision vgg19().features: conv layer indices; a ReLU follows each conv, max-pools at 4, 9, 18, 27, 36.
_VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
VGG_LAYERS = {"conv1_2": 2, "conv2_2": 7, "conv3_2": 12, "conv4_2": 21, "conv5_2": 30}
"""Index of the *output* of each named conv in ``features`` (before its ReLU)."""

_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def vgg19_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in _VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
            cin = v
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """Frozen VGG19 trunk returning the named conv outputs (pre-ReLU) for ImageNet-normalised input."""

    def __init__(self, path: str | os.PathLike, layers: Sequence[str] = ("conv1_2",)):
        super().__init__()
        p = Path(path)
        if not p.is_file():
            raise ModelFileError(f"VGG19 weights not found: {p}")
        want = "expected torchvision's VGG19 state dict (vgg19-dcbb9e9d.pth or a .safetensors of it)"
        try:
            if p.suffix == ".safetensors":
                from safetensors.torch import load_file
                sd = load_file(str(p))
            else:
                sd = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # torch's weights_only message is pages long; name the file instead
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise ModelFileError(f"--vgg19 {p} cannot be read as a state dict ({first}); {want}") from None
        if not isinstance(sd, dict):
            raise ModelFileError(f"--vgg19 {p} holds a {type(sd).__name__}, not a state dict; {want}")
        feats = {k[len("features."):]: v for k, v in sd.items()
                 if isinstance(k, str) and k.startswith("features.") and torch.is_tensor(v)}
        if not feats:
            raise ModelFileError(f"--vgg19 {p} holds no 'features.N.weight' keys; {want}")
        self.features = vgg19_features()[: max(VGG_LAYERS[n] for n in layers) + 1]
        try:
            self.features.load_state_dict({k: v for k, v in feats.items()
                                           if k.split(".")[0].isdigit() and int(k.split(".")[0]) < len(self.features)},
                                          strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0][:160]
            raise ModelFileError(f"--vgg19 {p} does not fit VGG19 ({first}); {want}") from None
        self.layers = tuple(layers)
        self.requires_grad_(False).eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - _MEAN.to(x)) / _STD.to(x)
        out, want = [], {VGG_LAYERS[n] for n in self.layers}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in want:
                out.append(x)
        return out


class FeatureLoss:
    """``loss(fake, real, disc_features)``: mean L1 over feature maps of VGG19 (if given) or of the discriminator."""

    def __init__(self, vgg19_path: str | os.PathLike | None = None, layers: Sequence[str] = ("conv1_2",),
                 device: str | torch.device = "cpu"):
        self.vgg = VGG19Features(vgg19_path, layers).to(device) if vgg19_path else None
        self.kind = "vgg19" if self.vgg is not None else "discriminator-feature-matching"
        self.source = str(vgg19_path) if vgg19_path else None

    def loss(self, fake: torch.Tensor, real: torch.Tensor,
             disc_features: Callable[[torch.Tensor], list[torch.Tensor]]) -> torch.Tensor:
        net = self.vgg if self.vgg is not None else disc_features
        with torch.no_grad():
            f_real = [f.detach() for f in net(real)]
        f_fake = net(fake)
        return sum((a - b).abs().mean() for a, b in zip(f_fake, f_real)) / len(f_fake)
