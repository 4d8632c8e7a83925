"""Golden outputs of the weights shipped with the package: a seeded input, a fixed slice of each
engine's output. A change in the network code, the checkpoint loader or the weights shows up here
(update the numbers only together with new weights, and say why)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

WEIGHTS = Path(__file__).resolve().parents[1] / "reenact" / "weights"

# engine name -> (output shape, output.flatten()[::numel // 8][:8]) with torch.manual_seed(0) inputs
GOLDEN = {
    "gcgan": {  # warp-guided, width 0.5, 2000 steps (reenact/weights/gcgan.md)
        "gcgan_encode": ((1, 128), [0.0, 0.0165, 0.1817, 0.0563, 0.5251, 0.0, 0.6482, 0.1139]),
        "gcgan_drive": ((1, 3, 64, 64), [-0.3947, -0.067, 0.3667, -0.7235, 0.5414, -0.6534, -0.9733, -0.7309]),
    },
    "cet2": {  # warp-guided, width 0.25, 300 steps (reenact/weights/cet2.md)
        "cet2_target": ((1, 128, 16, 16), [-0.3631, 0.4622, -0.1183, -0.7591, 0.2649, 0.127, 0.314, -0.265]),
        "cet2_encode": ((1, 32), [-3422.1975, 3767.5293, 2351.0559, -3541.1016, 2289.2017, 2635.6978, 1545.4589, 3570.4014]),
        "cet2_decode": ((1, 3, 128, 128), [0.2721, -0.4074, 0.0391, 0.0419, -0.535, -0.7846, -0.3958, -0.4947]),
    },
    "cefgan": {  # warp-guided, 1 stage, width 0.25, 800 steps (reenact/weights/cefgan.md)
        "cefgan_drive": ((1, 3, 128, 128), [-0.702, -0.5768, 0.7217, 0.9271, -0.852, -0.05, -0.4503, -0.7784]),
    },
    "lmklabel": {  # warp-guided, width 0.25, 3 blocks, 700 steps (reenact/weights/lmklabel.md)
        "lmklabel_encode": ((1, 64, 32, 32), [0.2546, 1.0452, 0.6058, 0.1302, 0.0908, 0.0, 0.4949, 0.0]),
        "lmklabel_drive": ((1, 3, 128, 128), [-0.8693, 0.3263, -0.9676, 0.549, -0.2823, -0.887, -0.2383, 0.469]),
    },
    "exprgan": {  # warp-guided, width 0.4, 600 steps (reenact/weights/exprgan.md)
        "exprgan_encode": ((1, 50), [1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0]),
        "exprgan_decode": ((1, 3, 128, 128), [-0.182, -0.6162, -0.7201, -0.8824, 0.8759, 0.8625, 0.4205, -0.6387]),
    },
    "gcgan_paper": {
        "gcgan_encode": ((1, 128), [0.0, 0.0592, 0.3207, 0.0, 0.0, 0.0, 0.0, 0.0]),
        "gcgan_drive": ((1, 3, 64, 64), [-0.669, 0.7672, -0.4035, 0.1668, 0.5361, -0.5167, 0.3045, -0.3393]),
    },
}


def test_every_shipped_model_has_a_golden_slice():
    shipped = {p.stem for p in WEIGHTS.glob("*.safetensors")}
    assert shipped == set(GOLDEN), "add a golden slice for each shipped model's weights"


@pytest.mark.parametrize("weights", sorted(GOLDEN))
def test_shipped_weights_give_the_golden_output(weights):
    from reenact.models.weights import load_model

    m = load_model(WEIGHTS / f"{weights}.safetensors").eval()
    engines = {s.name: s for s in m.engines()}
    assert set(engines) == set(GOLDEN[weights])
    for name, (shape, values) in GOLDEN[weights].items():
        spec = engines[name]
        torch.manual_seed(0)
        inputs = spec.sample_inputs()
        with torch.no_grad():
            out = spec.build()(*inputs)
        out = out[0] if isinstance(out, tuple) else out
        assert tuple(out.shape) == shape, name
        got = out.flatten()[:: max(1, out.numel() // 8)][:8]
        assert torch.allclose(got, torch.tensor(values), atol=2e-3), (name, [round(float(v), 4) for v in got])
