"""Finding the face landmarker model: argument, env var, cache, verified download."""
from __future__ import annotations

import functools
import http.server
import shutil
import threading

import pytest

from reenact.errors import ModelFileError
from reenact.tracking import model_file
from reenact.tracking.model_file import FACE_LANDMARKER_SHA256, resolve_face_landmarker

from .conftest import FACE_MODEL


@pytest.fixture()
def server(tmp_path):
    """A loopback HTTP server over tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_explicit_path_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("REENACT_FACE_LANDMARKER", str(tmp_path / "elsewhere.task"))
    assert resolve_face_landmarker(FACE_MODEL) == FACE_MODEL


def test_env_var_then_errors_name_the_source(monkeypatch, tmp_path):
    monkeypatch.setenv("REENACT_FACE_LANDMARKER", str(FACE_MODEL))
    assert resolve_face_landmarker() == FACE_MODEL
    monkeypatch.setenv("REENACT_FACE_LANDMARKER", str(tmp_path / "missing.task"))
    with pytest.raises(ModelFileError, match="REENACT_FACE_LANDMARKER"):
        resolve_face_landmarker()
    empty = tmp_path / "empty.task"
    empty.touch()
    with pytest.raises(ModelFileError, match="empty"):
        resolve_face_landmarker(empty)
    text = tmp_path / "text.task"
    text.write_text("not a model")
    with pytest.raises(ModelFileError, match="not a MediaPipe .task bundle"):
        resolve_face_landmarker(text)


def test_cache_then_download_with_checksum(monkeypatch, tmp_path, server):
    monkeypatch.delenv("REENACT_FACE_LANDMARKER")
    monkeypatch.setenv("REENACT_CACHE_DIR", str(tmp_path / "cache"))
    root, url = server
    shutil.copy(FACE_MODEL, root / "face_landmarker.task")
    got = resolve_face_landmarker(url=f"{url}/face_landmarker.task")
    assert got == tmp_path / "cache" / "face_landmarker.task"
    assert model_file.sha256_of(got) == FACE_LANDMARKER_SHA256
    # second call: served from the cache, no network needed
    assert resolve_face_landmarker(url="http://127.0.0.1:9/unreachable") == got


def test_corrupt_download_leaves_nothing(monkeypatch, tmp_path, server):
    monkeypatch.delenv("REENACT_FACE_LANDMARKER")
    monkeypatch.setenv("REENACT_CACHE_DIR", str(tmp_path / "cache"))
    root, url = server
    (root / "face_landmarker.task").write_bytes(b"tampered" * 1000)
    with pytest.raises(ModelFileError, match="SHA-256"):
        resolve_face_landmarker(url=f"{url}/face_landmarker.task")
    assert not any((tmp_path / "cache").iterdir())


def test_offline_error_says_where_to_put_the_file(monkeypatch, tmp_path):
    monkeypatch.delenv("REENACT_FACE_LANDMARKER")
    monkeypatch.setenv("REENACT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ModelFileError) as e:
        resolve_face_landmarker(url="http://127.0.0.1:9/face_landmarker.task")
    msg = str(e.value)
    assert str(tmp_path / "cache" / "face_landmarker.task") in msg and "REENACT_FACE_LANDMARKER" in msg
