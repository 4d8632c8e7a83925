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


# -- output paths ------------------------------------------------------------------------------
def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file or folder (links and relative paths resolved)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.expanduser().resolve() == b.expanduser().resolve()


def _inside(child: Path, folder: Path) -> bool:
    try:
        child.expanduser().resolve().relative_to(folder.expanduser().resolve())
        return True
    except ValueError:
        return False


def _probe_writable(folder: Path) -> str | None:
    """None if a file can be created in ``folder`` (a real try: permission bits lie for root and on
    read-only mounts), else the reason."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".reenact-probe-", dir=folder)
    except OSError as e:
        return e.strerror or str(e)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return None


def check_output(path: str | os.PathLike, *, flag: str = "--out", kind: str = "file",
                 inputs: dict[str, object] | None = None, replaces: bool = False,
                 writes: tuple[str, ...] = ()) -> Path:
    """Refuse an output path before any work starts; returns it as a ``Path``.

    ``kind``: "file" (a file is written there) or "dir" (a folder is written or filled). ``inputs``:
    {description: path or None} of everything the command reads (driver, target, checkpoint,
    dataset...); an output that is one of them, or (``replaces``: the output folder is replaced
    as a whole) holds one of them, is refused; so is a file named in ``writes`` (written inside an
    output folder) that is one of them. The folder that will receive the output must accept
    a new file (tried for real). Errors are ``OutputError`` with one line naming the problem.
    """
    from .errors import OutputError

    p = Path(path).expanduser()
    for what, inp in (inputs or {}).items():
        if inp is None or str(inp) == "":
            continue
        ip = Path(str(inp)).expanduser()
        if same_path(p, ip):
            raise OutputError(f"{flag} {path} is the {what} itself; writing it would destroy the input: "
                              f"choose another output path")
        if kind == "dir" and replaces and ip.exists() and _inside(ip, p):
            raise OutputError(f"{flag} {path} holds the {what} ({inp}) and is replaced as a whole: "
                              f"choose another output folder")
        for name in writes:
            if same_path(p / name, ip):
                raise OutputError(f"{flag} {path} would overwrite the {what} ({inp}) with its {name}: "
                                  f"choose another output folder")
    if kind == "file":
        if p.is_dir():
            raise OutputError(f"{flag} {path} is an existing folder; give a file name")
        folder = p.parent
    elif kind == "dir":
        if p.exists() and not p.is_dir():
            raise OutputError(f"{flag} {path} is an existing file; give a folder")
        folder = p if p.is_dir() and not replaces else p.parent
    else:
        raise ValueError(f"kind must be 'file' or 'dir', got {kind!r}")
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise OutputError(f"{flag} {path}: {existing} is a file, not a folder")
    why = _probe_writable(existing)
    if why is not None:
        raise OutputError(f"{flag} {path}: cannot write in {existing} ({why})")
    return p
