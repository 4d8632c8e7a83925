"""The latency benchmarks: statistics, the FLOP / byte counter, and a quick end-to-end run."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch
from torch import nn

from reenact.benchmarks import latency
from reenact.benchmarks.common import Timer, markdown_table, summarize
from reenact.benchmarks.floor import Counts, count, floor_ms
from reenact.models.nets.common import count_flops


def test_summarize_known_array():
    st = summarize(np.arange(1, 101, dtype=float))  # 1, 2, ..., 100 ms
    assert st["n"] == 100
    assert st["median_ms"] == pytest.approx(50.5)
    assert st["p95_ms"] == pytest.approx(95.05)   # linear interpolation: 1 + 0.95 * 99
    assert st["p99_ms"] == pytest.approx(99.01)
    assert st["mean_ms"] == pytest.approx(50.5)
    assert st["min_ms"] == 1 and st["max_ms"] == 100
    assert st["fps"] == pytest.approx(1000 / 50.5)
    odd = summarize([5.0, 1.0, 3.0])
    assert odd["median_ms"] == 3.0 and odd["p99_ms"] == pytest.approx(4.96)
    with pytest.raises(ValueError):
        summarize([])


def test_conv_and_linear_flops_and_bytes_by_hand():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    c = count(conv, [torch.zeros(1, 3, 16, 16)])
    # every one of the 8*16*16 outputs sums 3*3*3 products: 2 FLOPs each
    assert c.flops == 2 * (8 * 16 * 16) * (3 * 3 * 3) == 110592
    assert c.layers == 1
    assert c.layer_weight_elems == 8 * 3 * 9 + 8          # weights + bias
    assert c.layer_act_elems == 3 * 16 * 16 + 8 * 16 * 16  # input + output
    assert c.bytes("fp32") == 4 * (224 + 768 + 2048) and c.bytes("fp16") == 2 * (224 + 768 + 2048)

    lin = nn.Linear(10, 4)
    c = count(lin, [torch.zeros(3, 10)])
    assert c.flops == 2 * 3 * 10 * 4
    assert c.layer_weight_elems == 44 and c.layer_act_elems == 30 + 12
    assert c.param_elems == 44 and c.io_elems == 42

    tconv = nn.ConvTranspose2d(4, 2, 3, stride=2, bias=False)
    c = count(tconv, [torch.zeros(1, 4, 5, 5)])
    # every one of the 4*5*5 inputs is scattered into 2*3*3 outputs
    assert c.flops == 2 * (4 * 5 * 5) * (2 * 3 * 3)

    # torch's own FlopCounterMode agrees on plain layers, and meta tensors count the same
    from torch.utils.flop_counter import FlopCounterMode

    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 7 * 7, 5))
    x = torch.zeros(2, 3, 16, 16)
    with FlopCounterMode(display=False) as fc:
        net(x)
    assert count(net, [x]).flops == count_flops(net, x) == fc.get_total_flops()
    with torch.device("meta"):
        meta_net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 7 * 7, 5))
    assert count(meta_net, [torch.empty(2, 3, 16, 16, device="meta")]).flops == count_flops(net, x)


def test_floor_is_the_larger_of_compute_and_memory():
    c = Counts(flops=2_000_000_000, layer_weight_elems=250_000_000, layer_act_elems=0)
    peak = {"rate_for": {"fp32": 100.0, "fp16": None}, "bandwidth_gbs": 10.0}
    f = floor_ms(c, peak, "fp32")
    assert f["compute_ms"] == pytest.approx(20.0)    # 2 GFLOP at 100 GFLOP/s
    assert f["memory_ms"] == pytest.approx(100.0)    # 1 GB at 10 GB/s
    assert f["floor_ms"] == pytest.approx(100.0) and f["bound"] == "memory"
    assert floor_ms(c, peak, "fp16") is None         # no FP16 rate measured


def test_timer_respects_budget_and_excludes_warmup():
    calls = []
    samples, info = Timer("cpu").repeat({"a": lambda: calls.append(time.sleep(0.01))}, warmup=10, iters=50,
                                        budget_s=0.05, min_iters=3)
    assert info["iters"] == 3 and info["warmup"] == 1
    assert len(samples["a"]) == len(samples["total"]) == 3
    assert len(calls) == info["warmup"] + info["iters"]
    assert all(s >= 9 for s in samples["total"])


def test_markdown_table():
    t = markdown_table(["model", "ms"], [["gcgan", 1.23456], ["cefgan", None]])
    assert t.splitlines()[1] == "| :--- | ---: |"
    assert "| gcgan | 1.23 |" in t and "| cefgan | – |" in t


def test_missing_part_is_none(monkeypatch):
    assert {"generator", "pipeline"} <= set(latency.PARTS)
    monkeypatch.setitem(latency.PARTS, "nothing", "reenact.benchmarks._no_such_part")
    assert latency.load_part("nothing") is None
    assert latency.load_part("generator") is not None


def test_quick_generator_run_writes_results(tmp_path):
    rc = latency.main(["--part", "generator", "--quick", "--models", "gcgan", "--width", "0.125",
                       "--backends", "pytorch", "onnxruntime", "tensorrt-fp32", "--threads", "1",
                       "--out-dir", str(tmp_path), "--name", "smoke"])
    assert rc == 0
    data = json.loads((tmp_path / "smoke.json").read_text())
    for key in ("machine", "gpu", "versions", "command", "settings", "git", "parts"):
        assert key in data
    assert data["machine"]["cores_usable"] >= 1 and len(data["machine"]["load_average_1_5_15"]) == 3
    assert data["versions"]["torch"] == torch.__version__
    assert data["command"].startswith("python -m reenact.benchmarks.latency --part generator --quick")
    gen = data["parts"]["generator"]
    assert gen["settings"]["width"] == 0.125 and gen["peak"]["bandwidth_gbs"] > 0
    m = gen["models"]["gcgan"]
    assert m["res"] == 64 and m["flops"]["per_frame"]["gflops"] > 0
    for b in ("pytorch", "onnxruntime"):
        r = m["backends"][b]
        assert r["status"] == "ok", r
        pf = r["per_frame"]
        assert 0 < pf["min_ms"] <= pf["median_ms"] <= pf["p99_ms"] <= pf["max_ms"]
        assert pf["n"] == len(pf["samples_ms"]) >= 3
        assert set(r["engines"]) == {"gcgan_drive"} and r["target"]["median_ms"] > 0
        assert r["floor"]["floor_ms"] > 0 and math.isfinite(r["measured_over_floor"])
        assert [row["batch"] for row in m["batch"][b]] == [1, 2]
        assert all(row["status"] == "ok" and row["throughput_fps"] > 0 for row in m["batch"][b])
    trt = m["backends"]["tensorrt-fp32"]
    if not torch.cuda.is_available():
        assert trt["status"] == "skipped" and "GPU" in trt["reason"]
    md = (tmp_path / "smoke.md").read_text()
    assert "| gcgan | 64 |" in md and "onnxruntime" in md and "Hardware floor" in md
    for png in ("smoke_generator.png", "smoke_generator_cdf.png", "smoke_batch.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the tables and plots can be rewritten from the JSON alone
    (tmp_path / "smoke.md").unlink()
    assert latency.main(["--replot", str(tmp_path / "smoke.json"), "--no-plots"]) == 0
    assert (tmp_path / "smoke.md").read_text() == md


def test_quick_pipeline_run_writes_results(tmp_path):
    from reenact.benchmarks.pipeline import STAGES
    from tests.conftest import FIXTURE_VIDEO

    rc = latency.main(["--part", "pipeline", "--quick", "--models", "gcgan", "--width", "0.125",
                       "--backends", "pytorch", "--resolutions", "640x480", "--warmup", "2", "--iters", "4",
                       "--budget", "30", "--threads", "1", "--driver", str(FIXTURE_VIDEO),
                       "--out-dir", str(tmp_path), "--name", "pipe"])
    assert rc == 0
    data = json.loads((tmp_path / "pipe.json").read_text())
    for key in ("machine", "gpu", "versions", "command", "settings", "git", "parts"):
        assert key in data
    part = data["parts"]["pipeline"]
    assert part["settings"]["width"] == 0.125 and part["driver"]["name"] == FIXTURE_VIDEO.name
    (r,) = part["runs"]
    assert r["status"] == "ok", r
    assert (r["model"], r["backend"], r["resolution"], r["width"], r["weights"]) == (
        "gcgan", "pytorch", "640x480", 0.125, "untrained")
    assert r["warmup"] == 2 and r["n"] == 4 and r["frames_run"] == 6   # warm-up frames run, not counted
    assert set(r["stages"]) == set(STAGES)
    for key in ("end_to_end", "serial"):
        st = r[key]
        assert 0 < st["min_ms"] <= st["median_ms"] <= st["p95_ms"] <= st["p99_ms"] <= st["max_ms"]
        assert len(st["samples_ms"]) == 4
    # serial is the sum of the stages; end to end adds the queueing between threads
    assert r["serial"]["max_ms"] == pytest.approx(max(r["serial"]["samples_ms"]), abs=1e-3)
    assert sum(r["stages"][k]["min_ms"] for k in STAGES) <= r["serial"]["max_ms"] + 1e-6
    assert r["end_to_end"]["median_ms"] >= r["stages"]["generate"]["median_ms"]
    assert r["sustained_fps"] > 0 and r["calibrating_timed"] == 0 and r["output_bytes"] > 0
    md = (tmp_path / "pipe.md").read_text()
    assert "| gcgan | pytorch | 640x480 |" in md and "Per stage" in md and "serial" in md
    for png in ("pipe_stages.png", "pipe_pipeline_cdf.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "pipe.md").unlink()
    assert latency.main(["--replot", str(tmp_path / "pipe.json"), "--no-plots"]) == 0
    assert (tmp_path / "pipe.md").read_text() == md
