"""End-to-end evaluation: the protocol on the fixture video, with stand-in runtimes and a tiny model.

Two stand-ins with known answers check the protocol itself: an "oracle" whose output is exactly
the ground truth (PSNR infinite, SSIM 1, the same expression score as the ground truth) and a
"frozen" one that always returns the target crop (no expression at all, no flicker). Then one
real evaluation of an untrained tiny model through ``reenact.runtime``.
"""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

import reenact.commands.evaluate  # noqa: F401  (registers `reenact eval`)
from reenact.commands.evaluate import summary_lines
from reenact.eval.identity import identity_available
from reenact.eval.protocol import evaluate
from reenact.geometry.align import Aligner, warp_to_crop
from reenact.tracking import FaceTracker

from .conftest import FIXTURE_VIDEO

HAS_DLIB, NO_DLIB_REASON = identity_available()
FRAMES = 36  # 1.2 s of the fixture: a neutral start, then the mouth opens


class _StandIn:
    """The runtime's interface (``target``, ``process``, ``commanded_landmarks``) with a fixed rule:
    "oracle" outputs the driver frame itself, "frozen" the target photo unchanged."""

    def __init__(self, target: np.ndarray, mode: str, res: int = 128):
        with FaceTracker(mode="image", max_faces=1) as tr:
            face = tr.track(target).primary
        crop = Aligner(res).crop(target, face.landmarks)
        self.target = SimpleNamespace(image=target, crop=crop.image, M=crop.M, face=face, res=res)
        self.mode = mode

    @classmethod
    def factory(cls, mode: str):
        def create(*, model, target, checkpoint, width, backend, device, face_index, **options):
            return cls(target, mode)
        return create

    def process(self, frame: np.ndarray, t: float):
        tgt = self.target
        image = frame if self.mode == "oracle" else tgt.image
        crop = warp_to_crop(image, tgt.M, tgt.res)
        return SimpleNamespace(image=image, crop=crop, tracked=True, driver_face=None, condition={},
                               times={"generate": 0.001})

    def commanded_landmarks(self, out):
        return None


def _load(out_dir):
    report = json.loads((out_dir / "report.json").read_text())
    assert (out_dir / "grid.png").stat().st_size > 1000
    assert (out_dir / "curves.png").stat().st_size > 1000
    return report


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@pytest.mark.skipif(not HAS_DLIB, reason=f"dlib is not installed: {NO_DLIB_REASON}")
def test_oracle_output_scores_as_ground_truth(tmp_path):
    ev = evaluate("oracle", FIXTURE_VIDEO, None, tmp_path, max_frames=FRAMES, progress=False,
                  reenactor_factory=_StandIn.factory("oracle"))
    r = _load(tmp_path)
    assert r["self_reenactment"] and r["frames"] == FRAMES
    px = r["pixel"]
    assert px["identical_frames"] == FRAMES and px["ssim"] == 1.0 and px["l1_levels"] == 0.0
    assert all(v == "inf" for v in r["per_frame"]["psnr_db"])
    ex = r["expression"]
    # the output is the ground truth, so it re-tracks exactly like it
    assert ex["blendshape_correlation"] == pytest.approx(ex["ground_truth_correlation"], abs=1e-6)
    assert ex["blendshape_correlation"] > 0.6 and len(ex["blendshapes_scored"]) >= 3
    idt = r["identity"]
    assert idt["distance"] == pytest.approx(idt["ground_truth_distance"], abs=1e-4)
    assert idt["distance"] < idt["threshold"]  # the same person throughout
    assert r["checks"]["identity_distance"]["passed"] is True
    tm = r["temporal"]
    assert tm["still_steps"] > 5 and tm["output_levels"] == pytest.approx(tm["driver_levels"])
    assert ev.per_frame["t"].shape == (FRAMES,)


def test_frozen_output_has_no_expression(tmp_path):
    ev = evaluate("frozen", FIXTURE_VIDEO, None, tmp_path, max_frames=FRAMES, progress=False, identity=False,
             reenactor_factory=_StandIn.factory("frozen"))
    r = _load(tmp_path)
    ex = r["expression"]
    assert ex["blendshape_correlation"] == 0.0 and ex["pooled_correlation"] == 0.0
    assert r["checks"]["blendshape_correlation"]["passed"] is False
    assert r["temporal"]["output_levels"] == 0.0 and r["temporal"]["driver_levels"] > 0.0
    assert r["identity"] is None
    # frame 0 is the target itself; later frames differ from the ground truth as the mouth opens
    psnr = r["per_frame"]["psnr_db"]
    assert psnr[0] == "inf" and all(_finite(v) for v in psnr[1:])
    assert psnr[-1] < 40
    table = "\n".join(summary_lines(ev.summary))
    assert "blendshape correlation" in table and "PSNR" in table and "FAIL" in table


def test_eval_command_checks_its_inputs(capsys):
    from reenact.cli import main

    assert main(["eval", "--model", "gcgan", "--driver", str(FIXTURE_VIDEO)]) == 2
    assert "--self" in capsys.readouterr().err
    assert main(["eval", "--model", "gcgan", "--driver", str(FIXTURE_VIDEO), "--self", "--target", "x.jpg"]) == 2
    assert main(["eval", "--model", "gcgan", "--driver", "missing.mp4", "--self", "--no-identity"]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow


def test_tiny_model_end_to_end(tmp_path):
    """An untrained gcgan at width 0.125 through the real runtime on 40 fixture frames."""
    out = tmp_path / "report"
    evaluate("gcgan", FIXTURE_VIDEO, FIXTURE_VIDEO, out, width=0.125, max_frames=40, progress=False,
             identity=HAS_DLIB, command="reenact eval --model gcgan --self")
    r = _load(out)
    assert r["model"] == "gcgan" and r["frames"] == 40 and r["self_reenactment"]
    for key in ("psnr_db", "ssim", "l1_levels"):
        assert _finite(r["pixel"][key]), key
    assert -1 <= r["pixel"]["ssim"] <= 1
    assert _finite(r["temporal"]["output_levels"]) and _finite(r["temporal"]["driver_levels"])
    assert len(r["per_frame"]["ssim"]) == 40
    if HAS_DLIB:
        assert _finite(r["identity"]["distance"]) and _finite(r["identity"]["ground_truth_distance"])
    # landmark-driven model: the commanded landmarks are known (NME is measured where the output re-tracks)
    assert "landmark_nme" in r["expression"]
    assert r["versions"]["reenact"]
