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
    "gcgan": {
        "gcgan_encode": ((1, 128), [0.0, 0.0592, 0.3207, 0.0, 0.0, 0.0, 0.0, 0.0]),
        "gcgan_drive": ((1, 3, 64, 64), [-0.669, 0.7672, -0.4035, 0.1668, 0.5361, -0.5167, 0.3045, -0.3393]),
    },
}


def test_every_shipped_model_has_a_golden_slice():
    shipped = {p.stem for p in WEIGHTS.glob("*.safetensors")}
    assert shipped == set(GOLDEN), "add a golden slice for each shipped model's weights"


@pytest.mark.parametrize("model_id", sorted(GOLDEN))
def test_shipped_weights_give_the_golden_output(model_id):
    from reenact.models.weights import load_model

    m = load_model(WEIGHTS / f"{model_id}.safetensors").eval()
    engines = {s.name: s for s in m.engines()}
    assert set(engines) == set(GOLDEN[model_id])
    for name, (shape, values) in GOLDEN[model_id].items():
        spec = engines[name]
        torch.manual_seed(0)
        inputs = spec.sample_inputs()
        with torch.no_grad():
            out = spec.build()(*inputs)
        out = out[0] if isinstance(out, tuple) else out
        assert tuple(out.shape) == shape, name
        got = out.flatten()[:: max(1, out.numel() // 8)][:8]
        assert torch.allclose(got, torch.tensor(values), atol=2e-3), (name, [round(float(v), 4) for v in got])
