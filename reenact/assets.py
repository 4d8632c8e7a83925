"""Built-in assets: the default target photo."""
from __future__ import annotations

from pathlib import Path

from .errors import InputFileError

DEFAULT_TARGET = Path(__file__).resolve().parent / "data" / "astronaut.png"


def default_target_path() -> Path:
    """The astronaut photo (Eileen Collins, NASA, 1999; public domain; the copy scikit-image also
    ships), installed with the package."""
    if not DEFAULT_TARGET.is_file():
        raise InputFileError(f"the built-in default target photo is missing ({DEFAULT_TARGET}); reinstall reenact")
    return DEFAULT_TARGET
