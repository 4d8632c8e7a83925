"""The streaming runtime: target analysis, driving signals, the per-stream session and the pipeline."""
from .session import DEFAULT_MODEL, FrameOutput, Reenactor, RuntimeOptions, default_weights, load_runtime_model
from ..models.signals import DriverSignal
from .target import PreparedTarget, prepare_target

__all__ = ["DEFAULT_MODEL", "DriverSignal", "FrameOutput", "PreparedTarget", "Reenactor", "RuntimeOptions",
           "default_weights", "load_runtime_model", "prepare_target"]
