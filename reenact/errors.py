"""Errors the engine raises for bad input.

Every error names the problem and, where it helps, what to do about it. The CLI prints
``ReenactError`` messages without a traceback and exits with status 2.
"""
from __future__ import annotations


class ReenactError(Exception):
    """Base class for every error the user can cause and fix."""


class InputFileError(ReenactError):
    """A file is missing, empty, unreadable or not what it claims to be."""


class ImageError(InputFileError):
    """An image cannot be used: unreadable, wrong mode, too small or too large."""


class VideoError(InputFileError):
    """A video cannot be opened or decoded."""


class ModelFileError(ReenactError):
    """A model file (face landmarker, checkpoint, engine) is missing or fails its check."""


class NoFaceError(ReenactError):
    """No face was found where one is required (for example in the target photo)."""


class OutputError(ReenactError):
    """An output path cannot be used: not writable, the wrong kind (file vs folder), or an input."""


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM, SIGHUP). A ``KeyboardInterrupt``, so every writer that
    finalises or removes its file on Ctrl-C does the same here."""
