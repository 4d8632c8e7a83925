"""Finding the MediaPipe Face Landmarker model file.

Order, as users expect from tools that need a model file:

1. an explicit path (``--face-model`` / ``model_path=``),
2. the ``REENACT_FACE_LANDMARKER`` environment variable,
3. the user cache: ``$REENACT_CACHE_DIR`` or ``$XDG_CACHE_HOME/reenact`` or ``~/.cache/reenact``,
4. a one-time download from MediaPipe's official address into that cache, verified by SHA-256.

Without network and without a file the error says where to put one.
"""
from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from ..errors import ModelFileError
from ..utils import atomic_path

log = logging.getLogger(__name__)

FACE_LANDMARKER_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task")
FACE_LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
FACE_LANDMARKER_NAME = "face_landmarker.task"
ENV_VAR = "REENACT_FACE_LANDMARKER"


def cache_dir() -> Path:
    """The user cache folder for downloaded models and built engines."""
    if os.environ.get("REENACT_CACHE_DIR"):
        return Path(os.environ["REENACT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "reenact"


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _check_task_file(path: Path, origin: str) -> Path:
    if not path.is_file():
        raise ModelFileError(f"face landmarker model not found: {path} (from {origin})")
    if path.stat().st_size == 0:
        raise ModelFileError(f"face landmarker model is empty (0 bytes): {path} (from {origin})")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path} (from {origin}) is not a MediaPipe .task bundle; expected the Face Landmarker "
            f"model from {FACE_LANDMARKER_URL}")
    return path


_OVERRIDE: dict[str, tuple[Path, str]] = {}


def set_face_model(path: str | os.PathLike | None, origin: str = "--face-model") -> None:
    """Use ``path`` for every tracker this process opens without an explicit path (what a command's
    ``--face-model`` does); errors then name ``origin``. None clears it."""
    if path is None:
        _OVERRIDE.pop("path", None)
    else:
        _OVERRIDE["path"] = (Path(path).expanduser(), origin)
        _check_task_file(_OVERRIDE["path"][0], origin)


def resolve_face_landmarker(path: str | os.PathLike | None = None, *, download: bool = True,
                            url: str = FACE_LANDMARKER_URL, sha256: str = FACE_LANDMARKER_SHA256) -> Path:
    """Return the path of a usable ``face_landmarker.task`` (see the module docstring for the order)."""
    if path is not None:
        return _check_task_file(Path(path).expanduser(), "the path given")
    if "path" in _OVERRIDE:
        return _check_task_file(*_OVERRIDE["path"])
    if os.environ.get(ENV_VAR):
        return _check_task_file(Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}")
    cached = cache_dir() / FACE_LANDMARKER_NAME
    if cached.is_file():
        if sha256_of(cached) == sha256:
            return cached
        log.warning("cached %s fails its checksum; fetching it again", cached)
        cached.unlink()
    if not download:
        raise ModelFileError(_missing_message(cached, "downloads are disabled"))
    try:
        return download_file(url, cached, sha256)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise ModelFileError(_missing_message(cached, f"download failed: {e}")) from None


def _missing_message(cached: Path, why: str) -> str:
    return (f"the MediaPipe Face Landmarker model is needed and was not found ({why}). Download "
            f"{FACE_LANDMARKER_URL} once and either save it as {cached}, set {ENV_VAR}=/path/to/"
            f"{FACE_LANDMARKER_NAME}, or pass --face-model PATH.")


def download_file(url: str, dest: str | os.PathLike, sha256: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` atomically, with a progress bar, and verify its SHA-256.

    On a checksum mismatch nothing is left at ``dest`` and ModelFileError is raised.
    """
    from tqdm import tqdm

    dest = Path(dest)
    log.info("downloading %s -> %s", url, dest)
    with atomic_path(dest) as tmp:
        h = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}", leave=False) as bar:
                while block := r.read(1 << 16):
                    f.write(block)
                    h.update(block)
                    bar.update(len(block))
        if h.hexdigest() != sha256:
            raise ModelFileError(
                f"downloaded {url} has SHA-256 {h.hexdigest()}, expected {sha256}; nothing was saved")
    return dest
