"""Built-in assets: the default target photo."""
from __future__ import annotations

from pathlib import Path

from .errors import InputFileError


def default_target_path() -> Path:
    """scikit-image's astronaut photo (Eileen Collins, NASA; public domain), shipped in its wheel."""
    import skimage.data

    p = Path(skimage.data.__file__).parent / "astronaut.png"
    if not p.is_file():
        raise InputFileError(f"the built-in default target photo is missing ({p}); reinstall scikit-image")
    return p
