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
    "gcgan": {  # warp-guided, width 0.5, 2,600 steps (reenact/weights/gcgan.md)
        "gcgan_encode": ((1, 128), [0.0, 0.3272, 0.3583, 0.0389, 0.6832, 0.0, 0.6197, 0.147]),
        "gcgan_drive": ((1, 3, 64, 64), [-0.3503, -0.1051, 0.3512, -0.78, 0.5915, -0.6849, -1.0, -0.6586]),
    },
    "cet2": {  # warp-guided, width 0.25, 450 steps (reenact/weights/cet2.md)
        "cet2_target": ((1, 128, 16, 16), [-0.3965, 0.4024, 0.044, -0.7505, 0.365, -0.029, 0.4004, -0.245]),
        "cet2_encode": ((1, 32), [-5726.4458, 7671.3496, 4780.043, -6605.0488, 4947.9053, 6049.3569, 3599.4536, 6255.229]),
        "cet2_decode": ((1, 3, 128, 128), [0.3073, -0.4033, 0.0725, 0.0302, -0.4952, -0.7654, -0.381, -0.491]),
    },
    "cefgan": {  # warp-guided, 1 stage, width 0.25, 1,000 steps (reenact/weights/cefgan.md)
        "cefgan_drive": ((1, 3, 128, 128), [-0.7003, -0.5767, 0.7236, 0.9264, -0.853, -0.0508, -0.4512, -0.7797]),
    },
    "lmklabel": {  # warp-guided, width 0.25, 3 blocks, 1,000 steps (reenact/weights/lmklabel.md)
        "lmklabel_encode": ((1, 64, 32, 32), [0.2687, 0.9721, 0.6919, 0.1877, 0.0, 0.0028, 0.4309, 0.0]),
        "lmklabel_drive": ((1, 3, 128, 128), [-0.8725, 0.3151, -0.9796, 0.5457, -0.2759, -0.8838, -0.2353, 0.4733]),
    },
    "exprgan": {  # warp-guided, width 0.4, 800 steps (reenact/weights/exprgan.md)
        "exprgan_encode": ((1, 50), [1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0]),
        "exprgan_decode": ((1, 3, 128, 128), [-0.1812, -0.6388, -0.7292, -0.8824, 0.8744, 0.8581, 0.4223, -0.6447]),
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
