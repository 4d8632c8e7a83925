"""Engines: every model exports to ONNX, matches PyTorch in ONNX Runtime, and builds a real
TensorRT engine (TensorRT for RTX compiles ahead of time on the CPU); the cache invalidates."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from reenact.engines import tensorrt as trtx
from reenact.engines.build import build_engine
from reenact.engines.cache import EngineCache
from reenact.engines.export import export_onnx, onnx_parity, weights_hash
from reenact.backends import OnnxRuntimeBackend, PyTorchBackend, select_backend
from reenact.errors import ReenactError
from reenact.models import build_model, list_models
from reenact.models.base import TargetInput

WIDTH = {"gcgan": 0.25, "lmklabel": 0.125, "cet2": 0.125, "exprgan": 0.125, "cefgan": 0.125}
needs_trt = pytest.mark.skipif(trtx.flavour() is None, reason="TensorRT (for RTX) is not installed")


def _model(mid: str):
    torch.manual_seed(0)
    return build_model(mid, width=WIDTH.get(mid, 0.125)).eval()


GENERATORS = [m for m in list_models() if build_model(m).engines()]
"""The models with a network (the warp model has none)."""


def _target(res: int, neutral: bool = False) -> TargetInput:
    g = torch.Generator().manual_seed(1)
    return TargetInput(torch.rand(1, 3, res, res, generator=g) * 2 - 1, torch.rand(1, 68, 2, generator=g) * res,
                       torch.rand(1, 17, generator=g), torch.rand(1, 52, generator=g),
                       torch.tensor([1]), torch.tensor([neutral]))


@pytest.mark.parametrize("mid", GENERATORS)
def test_every_engine_exports_and_matches_pytorch(mid, tmp_path):
    m = _model(mid)
    for spec in m.engines():
        path = export_onnx(spec, tmp_path / f"{spec.name}.onnx")
        assert onnx_parity(spec, path, inputs=lambda g, spec=spec: m.realistic_inputs(spec, g)) < spec.onnx_rtol, \
            spec.name


@pytest.mark.parametrize("neutral", [False, True])
@pytest.mark.parametrize("mid", GENERATORS)
def test_backends_agree_with_the_model(mid, neutral):
    """One inference path: the model's own encode_target / drive are its engines, so they agree
    with every backend, also for a target photo flagged neutral (2CET-GAN then skips G(x, 0))."""
    m = _model(mid)
    t = _target(m.res, neutral)
    with torch.no_grad():
        ref = m.drive(m.encode_target(t), m.condition_from_frame(t))
    for b in (PyTorchBackend(m, device="cpu"), OnnxRuntimeBackend(m)):
        out = b.drive(b.encode_target(t), m.condition_from_frame(t))
        assert out.shape == ref.shape and (out - ref).abs().max() < 1e-3, b.name
    if mid == "cet2":  # the neutral flag reaches the target engine
        other = m.drive(m.encode_target(_target(m.res, not neutral)), m.condition_from_frame(t))
        assert (other - ref).abs().max() > 1e-3


@needs_trt
@pytest.mark.slow
@pytest.mark.parametrize("mid", GENERATORS)
def test_every_model_builds_a_tensorrt_engine(mid, tmp_path):
    m = _model(mid)
    cache = EngineCache(tmp_path)
    for spec in m.engines():
        r = build_engine(m, spec, cache=cache)
        assert not r.cached and r.path.is_file() and r.size_mb > 0.01
        assert r.precision in ("fp16", "fp16-norm32", "fp32")
        if r.fp16_psnr_db is not None:
            assert r.fp16_psnr_db >= spec.min_psnr_db
        side = json.loads(r.path.with_suffix(".json").read_text())
        assert side["key"]["flavour"] == trtx.flavour().name and side["key"]["gpu"] in ("aot",) + (
            (trtx.gpu_compute_capability(),) if trtx.gpu_compute_capability() else ())
        assert build_engine(m, spec, cache=cache).cached


@needs_trt
def test_cache_rebuilds_after_weights_change_and_refuses_bad_files(tmp_path, caplog):
    m = _model("gcgan")
    spec = next(s for s in m.engines() if s.kind == "drive")
    cache = EngineCache(tmp_path)
    first = build_engine(m, spec, cache=cache, precision="fp32")
    assert build_engine(m, spec, cache=cache, precision="fp32").cached
    # new weights: a new key, the old engine is removed as stale, a new one is built
    with torch.no_grad():
        next(m.gen.g_dec.parameters()).add_(0.01)
    second = build_engine(m, spec, cache=cache, precision="fp32")
    assert not second.cached and second.path != first.path and not first.path.exists()
    # a truncated engine is detected and rebuilt, never returned
    data = second.path.read_bytes()
    second.path.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING):
        third = build_engine(m, spec, cache=cache, precision="fp32")
    assert not third.cached and "truncated" in caplog.text
    assert third.path.read_bytes() != data[: len(data) // 2]
    # a foreign engine (sidecar of another key copied in place) is refused
    side = json.loads(third.path.with_suffix(".json").read_text())
    side["key"]["flavour_version"] = "0.0"
    third.path.with_suffix(".json").write_text(json.dumps(side))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert not build_engine(m, spec, cache=cache, precision="fp32").cached
    assert "foreign" in caplog.text


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cache_rebuilds_when_only_the_model_config_changes(tmp_path):
    """Same weights, same shapes, another config (cefgan's mouth crop centre): a new engine, not the cached one."""
    torch.manual_seed(0)
    m1 = build_model("cefgan", width=0.125).eval()
    m2 = build_model("cefgan", width=0.125, mouth_center=(90, 64)).eval()
    m2.load_state_dict(m1.state_dict())
    spec1, spec2 = m1.engines()[-1], m2.engines()[-1]
    assert weights_hash(spec1.build()) == weights_hash(spec2.build())
    cache = EngineCache(tmp_path)
    first = build_engine(m1, spec1, cache=cache, precision="fp32")
    second = build_engine(m2, spec2, cache=cache, precision="fp32")
    assert not second.cached and second.path != first.path
    assert build_engine(m2, spec2, cache=cache, precision="fp32").cached


def test_weights_hash_tracks_weights():
    m = _model("gcgan")
    spec = m.engines()[-1]
    h = weights_hash(spec.build())
    assert h == weights_hash(spec.build())
    with torch.no_grad():
        next(m.gen.l_enc.parameters()).mul_(1.5)
    assert weights_hash(spec.build()) != h


def test_named_backend_that_is_missing_says_what_to_install():
    m = _model("gcgan")
    if not torch.cuda.is_available():
        with pytest.raises(ReenactError, match="pip install"):
            select_backend("tensorrt", m)
    with pytest.raises(ReenactError, match="unknown backend"):
        select_backend("magic", m)
    # auto picks the documented first choice: TensorRT on an NVIDIA GPU when it runs there (else
    # PyTorch on CUDA), ONNX Runtime on a CPU-only machine (it is a core dependency)
    chosen = select_backend("auto", m).name
    if torch.cuda.is_available():
        assert chosen in ("tensorrt", "pytorch"), chosen
    else:
        assert chosen == "onnxruntime", chosen
    assert select_backend("auto", _model("warp")).name == "pytorch"  # nothing to run: no engine backend


@pytest.mark.gpu
def test_tensorrt_engine_runs_on_the_gpu():
    from reenact.engines.runner import EngineRunner

    m = _model("gcgan").cuda()
    spec = next(s for s in m.engines() if s.kind == "drive")
    r = build_engine(m, spec)
    runner = EngineRunner(r.path, cuda_graph=True)
    m.cpu()
    frames = [m.realistic_inputs(spec, torch.Generator().manual_seed(k)) for k in (1, 2)]  # two different conditions
    m.cuda()
    feeds = [{s.name: x.cuda() for s, x in zip(spec.inputs, f)} for f in frames]
    a = runner(**feeds[0])["img"].clone()
    b = runner(**feeds[1])["img"]  # a replay of the captured graph with new inputs: a stale capture would repeat a
    assert a.data_ptr() != b.data_ptr(), "outputs must not alias the engine's buffers"
    with torch.no_grad():
        refs = [spec.build()(*f.values()) for f in feeds]
    assert (refs[0] - refs[1]).abs().max() > 1e-3, "the two conditions must differ for this check to mean anything"
    assert (a.float() - refs[0]).abs().max() < 0.05
    assert (b.float() - refs[1]).abs().max() < 0.05


@needs_trt
@pytest.mark.slow
@pytest.mark.parametrize("weights", sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "reenact" / "weights")
                                           .glob("*.safetensors")))
def test_shipped_weights_export_and_build_tensorrt_engines(weights, tmp_path):
    """Every shipped weight file, its real weights: ONNX parity on inputs in their real value ranges
    (the warp inputs included), then a TensorRT engine build."""
    from reenact.models.weights import load_model

    m = load_model(Path(__file__).resolve().parents[1] / "reenact" / "weights" / f"{weights}.safetensors").eval()
    cache = EngineCache(tmp_path)
    for spec in m.engines():
        path = export_onnx(spec, tmp_path / f"{spec.name}.onnx")
        assert onnx_parity(spec, path, inputs=lambda g, spec=spec: m.realistic_inputs(spec, g)) < spec.onnx_rtol, \
            spec.name
        r = build_engine(m, spec, cache=cache)
        assert r.path.is_file() and r.size_mb > 0.01
        if r.fp16_psnr_db is not None:
            assert r.fp16_psnr_db >= spec.min_psnr_db, (spec.name, r.fp16_psnr_db)
