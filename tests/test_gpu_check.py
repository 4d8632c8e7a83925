"""The GPU readiness check (benchmarks/gpu_check.py) runs end to end on the CPU (--dry-run).

The dry run must produce every step with real figures or a recorded reason, and must mark what
needs CUDA (CUDA events, TensorRT engines, bf16 autocast) as skipped rather than invent numbers.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reenact.benchmarks.gpu_check import JSON_NAME, STEPS

from .conftest import FACE_MODEL, FIXTURE_VIDEO

REPO = Path(__file__).resolve().parents[1]


def _run(out: Path, *extra: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [sys.executable, "-m", "reenact.benchmarks.gpu_check", "--dry-run", "--out", str(out), "--fixture",
           str(FIXTURE_VIDEO), "--face-model", str(FACE_MODEL), *extra]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))
    return p, time.perf_counter() - t0


def _reason(rec: dict) -> str:
    assert isinstance(rec.get("reason"), str) and rec["reason"].strip(), rec
    return rec["reason"]


def _has_result_or_reason(rec: dict) -> None:
    assert rec.get("status") in ("ok", "skipped", "error"), rec
    if rec["status"] == "ok":
        assert "result" in rec or "runs" in rec or "per_frame" in rec or "paths" in rec or "backends" in rec, rec
    else:
        _reason(rec)


@pytest.mark.slow
def test_dry_run_measures_every_step_and_skips_cuda_parts(tmp_path):
    from reenact.models import build_model, list_models

    out = tmp_path / "check"
    p, wall = _run(out)
    assert p.returncode == 0, p.stderr[-3000:]
    data = json.loads((out / JSON_NAME).read_text())
    assert data["dry_run"] is True and data["finished"] is True
    assert data["command"].startswith("python -m reenact.benchmarks.gpu_check --dry-run")
    assert data["elapsed_s"] <= wall

    # every step ran, with its own wall time
    for name in STEPS:
        st = data["steps"][name]
        assert st["status"] == "ok", (name, st)
        assert "result" in st and st["wall_s"] > 0

    models = list_models()
    with_engines = [m for m in models if build_model(m, width=0.125).engines()]

    env = data["steps"]["environment"]["result"]
    assert env["device"] == "cpu" and env["cuda"]["available"] is False and _reason(env["cuda"])
    assert set(env["imports"]) >= {"mediapipe", "av", "onnx", "tensorrt", "tensorrt_rtx_bindings"}
    probe = env["tensorrt"]["probe"]
    assert probe["runs"] is False and probe["status"] in ("skipped", "error") and _reason(probe)
    assert {c["model"] for c in env["models"]} == set(models)

    # generator: host-clock figures on the CPU; CUDA events and TensorRT skipped with the reason
    gen = data["steps"]["generator"]["result"]
    assert gen["timing"]["cuda_events"]["status"] == "skipped" and "GPU" in _reason(gen["timing"]["cuda_events"])
    cases = gen["cases"]
    assert {c["model"] for c in cases.values()} == set(models)
    for name, c in cases.items():
        if c["model"] not in with_engines:
            assert c["status"] == "skipped" and "no engines" in _reason(c)
            continue
        pt = c["backends"]["pytorch"]
        assert pt["status"] == "ok", (name, pt)
        pf = pt["per_frame"]
        assert 0 < pf["min_ms"] <= pf["median_ms"] <= pf["p99_ms"] <= pf["max_ms"] and pf["n"] >= 3
        assert pf["n"] == len(pf["samples_ms"]) and pt["clock"].startswith("perf_counter")
        assert pt["floor"]["floor_ms"] > 0 and math.isfinite(pt["measured_over_floor"])
        trt = c["backends"]["tensorrt-fp16"]
        assert trt["status"] == "skipped" and "GPU" in _reason(trt) and "per_frame" not in trt
    assert any(c.get("weights") == "shipped" for c in cases.values())

    # parity: finite PSNR for every model with engines; TensorRT skipped with the reason
    par = data["steps"]["parity"]["result"]
    for name, c in par["cases"].items():
        if c["model"] not in with_engines:
            assert c["status"] == "skipped" and _reason(c)
            continue
        assert c["status"] == "ok" and c["n"] >= 1, (name, c)
        assert c["paths"]["tensorrt-fp16"]["status"] == "skipped" and _reason(c["paths"]["tensorrt-fp16"])
        ok = [r for r in c["paths"].values() if r["status"] == "ok"]
        assert ok, c
        for r in ok:
            assert r["n"] == c["n"] and math.isfinite(r["psnr_db"]["min"]) and r["psnr_db"]["min"] > 0
            assert len(r["per_frame_db"]) == r["n"]

    # pipeline: every model, models without engines included, at 640x480
    pipe = data["steps"]["pipeline"]["result"]
    assert set(pipe["models"]) == set(models)
    for mid, m in pipe["models"].items():
        assert m["status"] == "ok", (mid, m)
        runs = {r["backend"]: r for r in m["runs"]}
        r = runs["pytorch"] if "pytorch" in runs else runs["none"]  # "none": a model without a network (warp)
        assert r["status"] == "ok" and r["resolution"] == "640x480"
        e2e = r["end_to_end"]
        assert 0 < e2e["median_ms"] <= e2e["p99_ms"] and r["sustained_fps"] > 0 and r["n"] >= 3
        if "tensorrt" in runs:
            assert runs["tensorrt"]["status"] != "ok" and _reason(runs["tensorrt"])

    # training: the one loop, real images/s; bf16 autocast is CUDA-only and says so
    tr = data["steps"]["training"]["result"]
    assert tr["steps"] >= 2 and tr["images_per_s"] > 0 and tr["batch"] >= 1 and tr["train_frames"] > 0
    assert tr["precision"]["status"] == "skipped" and "CUDA" in _reason(tr["precision"])

    # torch.compile: measured for the cheapest model, the others skipped with the reason
    comp = data["steps"]["compile"]["result"]["cases"]
    assert set(comp) == set(cases)
    for name, r in comp.items():
        _has_result_or_reason(r)
        if r["status"] == "ok":
            assert r["per_frame"]["median_ms"] > 0 and r["compile_s"] > 0

    goals = data["goals"]
    assert goals["applies"] is False and set(goals["models"]) == set(models)

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert data["plots"]["status"] == "skipped" and _reason(data["plots"])
    else:
        assert data["plots"]["status"] == "ok" and "errors" not in data["plots"]
        for png in ("gpu_check_generator.png", "gpu_check_pipeline_cdf.png", "gpu_check_parity.png",
                    "gpu_check_training.png"):
            assert png in data["plots"]["files"]
            assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*partial*")), "a temporary file was left behind"


def test_budget_skips_remaining_steps_with_the_reason(tmp_path):
    out = tmp_path / "check"
    p, _ = _run(out, "--budget-s", "25", "--reserve-s", "24.9", "--no-plots", timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    data = json.loads((out / JSON_NAME).read_text())
    assert data["steps"]["environment"]["status"] == "ok"  # always runs: it says what the machine is
    for name in STEPS[1:]:
        st = data["steps"][name]
        assert st["status"] == "skipped" and "time budget" in _reason(st), (name, st)
        assert st["wall_s"] >= 0
    assert "plots" not in data


def test_without_a_gpu_the_full_check_says_so_and_measures_nothing(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    out = tmp_path / "check"
    cmd = [sys.executable, "-m", "reenact.benchmarks.gpu_check", "--out", str(out), "--fixture", str(FIXTURE_VIDEO),
           "--face-model", str(FACE_MODEL), "--no-plots"]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert p.returncode == 0, p.stderr[-3000:]
    data = json.loads((out / JSON_NAME).read_text())
    env = data["steps"]["environment"]
    assert env["status"] == "error" and "no CUDA GPU" in _reason(env) and "--dry-run" in env["reason"]
    for name in STEPS[1:]:
        st = data["steps"][name]
        assert st["status"] == "skipped" and "no CUDA GPU" in _reason(st) and "result" not in st
