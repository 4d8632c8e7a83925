"""Small shared helpers: atomic file writes."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    Readers never see a half-written file: the final ``os.replace`` is atomic on POSIX and
    Windows when source and destination are on the same file system, which they are here.
    ``suffix`` defaults to the destination's suffix so writers that pick a format from the
    file name (PyAV, numpy, OpenCV) still do so.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.partial-", suffix=path.suffix if suffix is None else suffix,
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes owner-only files; give the usual permissions
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~umask)  # again: some writers replace the file (e.g. safetensors)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def dataclass_from_dict(cls, d: dict):
    """``cls(**d)`` for a dataclass, naming unknown keys; JSON lists become tuples."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} option(s): {sorted(unknown)}; known: {sorted(names)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
