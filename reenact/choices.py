"""Names the command line offers as choices, without importing the modules that define them
(torch, MediaPipe): ``reenact --help`` must not pay for those. Tests check each list against the
registry it mirrors (``reenact.models.list_models()``, the runtime's constants)."""
from __future__ import annotations

from typing import Literal, get_args

ModelName = Literal["warp", "gcgan", "lmklabel", "cet2", "exprgan", "cefgan"]
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
DEFAULT_MODEL: ModelName = "warp"
"""The model ``reenact run`` and the demo use without ``--model``: the mesh warp. Some warp-guided
generators beat it narrowly on the figures (README, "Quality"), but with no driver mouth to show
(the built-in script) none paints an opened mouth that looks right (GC-GAN's is grey: 0.54 of the
lips' brightness on the built-in photo, the warp's fill 0.13)."""

BackendName = Literal["auto", "pytorch", "onnxruntime", "tensorrt"]
PasteMode = Literal["warp", "replace"]
MouthMode = Literal["driver", "dark"]
MOUTH_MODES: tuple[str, ...] = get_args(MouthMode)
Precision = Literal["fp16", "fp32"]

SCRIPT_NAMES: tuple[str, ...] = ("demo", "emotions", "talk", "blink")   # reenact.runtime.scripts.SCRIPTS
MAX_FPS = 240.0                                                          # reenact.runtime.io.MAX_FPS
