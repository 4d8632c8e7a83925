"""The streaming runtime: target analysis, driving signals, the per-stream session and the pipeline."""
from .session import DEFAULT_MODEL, FrameOutput, Reenactor, RuntimeOptions, default_weights, load_runtime_model
from .signals import DriverSignal, make_signal
from .target import PreparedTarget, prepare_target

__all__ = ["DEFAULT_MODEL", "DriverSignal", "FrameOutput", "PreparedTarget", "Reenactor", "RuntimeOptions",
           "default_weights", "load_runtime_model", "make_signal", "prepare_target"]
