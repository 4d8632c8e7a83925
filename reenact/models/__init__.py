"""The models behind one registry and one interface: the mesh warp and five expression-transfer GANs."""
from .base import (Condition, EngineSpec, ModelConfig, ReenactModel, TargetCache, TargetInput, TensorFields,
                   TensorSpec, build_model, list_models, model_class, register_model)

__all__ = ["Condition", "EngineSpec", "ModelConfig", "ReenactModel", "TargetCache", "TargetInput", "TensorFields",
           "TensorSpec", "build_model", "list_models", "model_class", "register_model"]
