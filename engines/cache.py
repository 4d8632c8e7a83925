"""The engine cache: keyed by everything that invalidates an engine; atomic; never runs a bad file.

Key: model id, engine name, weights hash, the model's full config (heatmap sigma, patch centres,
widths...: they change the exported graph without changing the weights), the exporter (torch
version, ONNX opset), input shapes, precision, TensorRT flavour and version, GPU compute
capability ("aot" when built without a GPU) and this cache's format version. Each
engine file has a JSON sidecar holding its key, size and SHA-256. ``lookup`` returns a path only
when the sidecar's key equals the wanted key and the bytes on disk match the recorded hash: a
truncated, corrupt, foreign (another key copied in place) or stale (weights changed) engine is
removed and reported, and the caller builds a fresh one. A build removes the engines it
supersedes (same model, engine and precision for the same TensorRT flavour and GPU); engines for
another GPU, or built ahead of time without one ("aot"), are kept.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from reenact.tracking.model_file import cache_dir, sha256_of
from reenact.utils import atomic_path

log = logging.getLogger(__name__)

CACHE_FORMAT = 2


@dataclass(frozen=True)
class EngineKey:
    model: str
    engine: str
    weights: str                      # engines.export.weights_hash of the engine's module
    shapes: tuple[tuple[int, ...], ...]
    precision: str                    # "fp32", "fp16" or "fp16-norm32"
    flavour: str                      # "tensorrt" or "tensorrt-rtx"
    flavour_version: str
    gpu: str                          # compute capability, e.g. "8.9", or "aot"
    model_config: str = ""            # the model's config as sorted JSON (what the weights hash misses)
    exporter: str = ""                # e.g. "torch 2.5.1, opset 17"
    format: int = CACHE_FORMAT

    def as_json(self) -> dict:
        d = asdict(self)
        d["shapes"] = [list(s) for s in self.shapes]
        return d

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()[:20]


class EngineCache:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "engines"

    def path_for(self, key: EngineKey) -> Path:
        return self.root / key.model / f"{key.engine}-{key.precision}-{key.digest}.engine"

    def lookup(self, key: EngineKey) -> Path | None:
        """The cached engine for ``key``, or None (after removing anything unusable in its place)."""
        self._drop_stale(key)
        path = self.path_for(key)
        side = path.with_suffix(".json")
        if not path.exists() and not side.exists():
            return None
        problem = self._problem(key, path, side)
        if problem is None:
            return path
        log.warning("engine %s is %s; it will be rebuilt", path.name, problem)
        self._remove(path)
        return None

    def _problem(self, key: EngineKey, path: Path, side: Path) -> str | None:
        if not path.is_file() or not side.is_file():
            return "incomplete (engine or sidecar missing)"
        try:
            meta = json.loads(side.read_text())
        except (OSError, json.JSONDecodeError):
            return "unreadable (corrupt sidecar)"
        if meta.get("key") != key.as_json():
            return "foreign (built for another model, weights, shapes, precision, TensorRT or GPU)"
        if path.stat().st_size != meta.get("size"):
            return f"truncated ({path.stat().st_size} of {meta.get('size')} bytes)"
        if sha256_of(path) != meta.get("sha256"):
            return "corrupt (checksum mismatch)"
        return None

    def _drop_stale(self, key: EngineKey) -> None:
        """Remove engines of the same model/engine/precision built for other keys (older weights...)."""
        folder = self.root / key.model
        if not folder.is_dir():
            return
        keep = self.path_for(key).name
        for p in folder.glob(f"{key.engine}-{key.precision}-*.engine"):
            if p.name == keep:
                continue
            try:
                other = json.loads(p.with_suffix(".json").read_text()).get("key", {})
            except (OSError, json.JSONDecodeError, AttributeError):
                other = None  # no readable sidecar: never usable, remove
            if other is not None and (other.get("flavour"), other.get("gpu")) != (key.flavour, key.gpu):
                continue  # built for another GPU (or ahead of time): not ours to remove
            log.info("removing stale engine %s", p.name)
            self._remove(p)

    @staticmethod
    def _remove(path: Path) -> None:
        for p in (path, path.with_suffix(".json")):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def store(self, key: EngineKey, data: bytes, info: dict | None = None) -> Path:
        """Write the engine then its sidecar, each atomically (a crash leaves no usable half)."""
        path = self.path_for(key)
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        meta = {"key": key.as_json(), "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), **(info or {})}
        with atomic_path(path.with_suffix(".json")) as tmp:
            tmp.write_text(json.dumps(meta, indent=1))
        return path

    def read(self, key: EngineKey) -> bytes | None:
        p = self.lookup(key)
        return None if p is None else p.read_bytes()
