"""Stopping and caching: SIGTERM finalises or removes outputs; the engine cache key sees the model config."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import FACE_MODEL, FIXTURE_VIDEO

ROOT = Path(__file__).resolve().parents[1]


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "REENACT_FACE_LANDMARKER": str(FACE_MODEL), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "reenact", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(pattern: str, folder: Path, proc: subprocess.Popen, timeout: float = 180) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if list(folder.glob(pattern)):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".partial" in p.name]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigterm_during_a_file_run_leaves_a_playable_file_or_none(tmp_path):
    from reenact.io.video import VideoReader

    out = tmp_path / "out.mp4"
    proc = _start(["run", "--driver", str(FIXTURE_VIDEO), "--out", str(out), "--no-progress"], tmp_path)
    started = _wait_for(".out.partial-*", tmp_path, proc)
    assert started, proc.communicate()[1][-2000:]
    time.sleep(0.5)  # some frames encoded
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 143), err[-2000:]
    assert "Traceback" not in err
    assert _leftovers(tmp_path) == []
    if out.exists():  # finalised: a playable file
        with VideoReader(out) as r:
            assert sum(1 for _ in r) > 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigterm_during_track_removes_its_outputs(tmp_path):
    proc = _start(["track", str(FIXTURE_VIDEO), "--out", "t.npz", "--preview", "p.mp4"], tmp_path)
    assert _wait_for(".p.partial-*", tmp_path, proc), proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "reenact track: terminated" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _key(**kw):
    from reenact.engines.cache import EngineKey

    base = dict(model="cefgan", engine="cefgan_drive", weights="w" * 16, shapes=((1, 3, 128, 128),),
                precision="fp16", flavour="tensorrt-rtx", flavour_version="1.7", gpu="aot",
                model_config='{"width": 0.25}', exporter="torch 2.x, opset 17")
    base.update(kw)
    return EngineKey(**base)


def test_engine_key_covers_model_config_and_exporter():
    a = _key()
    assert a.digest != _key(model_config='{"width": 0.25, "mouth_center": [64, 100]}').digest
    assert a.digest != _key(exporter="torch 9.0, opset 18").digest


def test_engine_key_of_a_real_model_changes_with_its_config():
    if not _has_trt():
        pytest.skip("no TensorRT installed")
    from reenact.engines.build import engine_key
    from reenact.engines.export import weights_hash
    from reenact.models import build_model

    m1 = build_model("cefgan", width=0.125)
    m2 = build_model("cefgan", width=0.125, mouth_center=(64, 96))
    spec = m1.engines()[-1]
    w = weights_hash(spec.build())
    assert engine_key(m1, spec, "fp32", w) != engine_key(m2, m2.engines()[-1], "fp32", w)


def _has_trt() -> bool:
    from reenact.engines.tensorrt import flavour

    return flavour() is not None


def test_a_build_keeps_engines_of_other_gpus(tmp_path):
    from reenact.engines.cache import EngineCache

    cache = EngineCache(tmp_path)
    aot = cache.store(_key(gpu="aot"), b"aot engine")
    ampere_old = cache.store(_key(gpu="8.6", weights="o" * 16), b"old weights on 8.6")
    assert cache.lookup(_key(gpu="8.6")) is None      # a build for 8.6 with new weights...
    assert aot.exists()                               # ...keeps the ahead-of-time engine
    assert not ampere_old.exists()                    # ...and removes the one it supersedes
    assert cache.lookup(_key(gpu="aot")) == aot
