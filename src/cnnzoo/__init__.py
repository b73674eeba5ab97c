"""cnnzoo: the landmark convolutional networks, real, inspectable, trainable and verifiable."""

from cnnzoo.registry import ModelConfig, UnknownModelError, create_model, get_model_config, list_models, register_model

__version__ = "0.1.0"

__all__ = [
    "ModelConfig",
    "UnknownModelError",
    "create_model",
    "get_model_config",
    "list_models",
    "register_model",
    "__version__",
]
