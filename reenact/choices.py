"""Names the command line offers as choices, without importing the modules that define them
(torch, MediaPipe): ``reenact --help`` must not pay for those. Tests check each list against the
registry it mirrors (``reenact.models.list_models()``, the runtime's constants)."""
from __future__ import annotations

from typing import Literal, get_args

ModelName = Literal["warp", "gcgan", "lmklabel", "cet2", "exprgan", "cefgan"]
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
DEFAULT_MODEL: ModelName = "gcgan"
"""The model ``reenact run`` and the demo use without ``--model``: of the models that run at 30 fps or
more on two CPU cores, the one that scores best on the fixture and the validation people (README,
"Quality"): warp-guided GC-GAN (the mesh warp alone if no generator beat it)."""

BackendName = Literal["auto", "pytorch", "onnxruntime", "tensorrt"]
PasteMode = Literal["warp", "replace"]
Precision = Literal["fp16", "fp32"]

SCRIPT_NAMES: tuple[str, ...] = ("demo", "emotions", "talk", "blink")   # reenact.runtime.scripts.SCRIPTS
MAX_FPS = 240.0                                                          # reenact.runtime.io.MAX_FPS
