"""Image loading and validation.

Every image inside the engine is ``uint8`` RGB, ``HxWx3``, C-contiguous. ``load_image``
turns files of any common mode into that form (greyscale, palette, 16-bit, CMYK, RGBA
composited over white, EXIF rotation applied); ``as_rgb`` does the same for arrays and
names the problem when an array cannot be an image.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError, InputFileError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
MAX_PIXELS = 100_000_000
"""Largest image accepted (pixels). Larger files are refused before they are decoded."""


def check_file(path: str | os.PathLike, what: str = "file") -> Path:
    """Return ``path`` as a Path if it is an existing, non-empty regular file."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{what} not found: {p}")
    if p.is_dir():
        raise InputFileError(f"{what} is a folder, not a file: {p}")
    if p.stat().st_size == 0:
        raise InputFileError(f"{what} is empty (0 bytes): {p}")
    return p


def load_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as ``uint8`` RGB ``HxWx3``.

    Raises ImageError (or InputFileError for a missing/empty file) with the file name and
    the reason: not an image, truncated, too large.
    """
    p = check_file(path, "image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageError(
                        f"image is too large: {p} is {w}x{h} ({w * h / 1e6:.0f} MP); the limit is "
                        f"{max_pixels / 1e6:.0f} MP. Downscale it first.")
                im = ImageOps.exif_transpose(im)
                return _pil_to_rgb(im)
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise ImageError(f"not a readable image: {p} ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data
        raise ImageError(f"cannot decode image {p}: {e}") from None


def _pil_to_rgb(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        peak = float(a.max()) if a.size else 0.0
        # 16-bit data uses 0-65535; 8-bit data stored in a wide mode stays as it is
        hi = 255.0 if peak <= 255 else (65535.0 if peak <= 65535 else peak)
        a = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return as_rgb(a)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def as_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate an array image and return it as C-contiguous ``uint8`` RGB ``HxWx3``.

    Accepts ``HxW`` or ``HxWx1`` greyscale (replicated) and ``HxWx4`` RGBA (alpha dropped).
    Anything else (float data, 2 or 5 channels, empty) raises ImageError naming the problem.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageError(
            f"{name} must be uint8 (0-255), got {image.dtype}; convert float images in [0,1] with "
            f"(img * 255).round().astype(np.uint8)")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ImageError(f"{name} must be HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"{name} is empty (shape {image.shape})")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def save_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB image atomically (format from the suffix)."""
    from ..utils import atomic_path

    if Path(path).suffix.lower() not in IMAGE_EXTENSIONS:
        raise ImageError(f"{path}: use an image file name ({', '.join(IMAGE_EXTENSIONS)})")
    image = as_rgb(image)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format=Image.registered_extensions().get(Path(path).suffix.lower(), "PNG"))
    return Path(path)


def is_image_path(path: str | os.PathLike) -> bool:
    """True when ``path`` ends in an image extension (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS
