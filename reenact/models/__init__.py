"""The five expression-transfer models behind one registry and one interface."""
from .base import (Condition, EngineSpec, ModelConfig, ReenactModel, TargetCache, TargetInput, TensorSpec,
                   build_model, list_models, model_class, register_model)

__all__ = ["Condition", "EngineSpec", "ModelConfig", "ReenactModel", "TargetCache", "TargetInput", "TensorSpec",
           "build_model", "list_models", "model_class", "register_model"]
