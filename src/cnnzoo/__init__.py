"""cnnzoo: the landmark convolutional networks, real, inspectable, trainable and verifiable."""

from cnnzoo.registry import (
    ModelConfig,
    UnknownModelError,
    create_model,
    get_model_config,
    list_models,
    register_model,
)

__version__ = "0.1.0"


def analyze(*args, **kwargs):
    """Per-layer cost table of a model; see :func:`cnnzoo.analysis.analyze` (imported lazily)."""
    from cnnzoo.analysis import analyze as _analyze

    return _analyze(*args, **kwargs)


__all__ = [
    "ModelConfig",
    "analyze",
    "UnknownModelError",
    "create_model",
    "get_model_config",
    "list_models",
    "register_model",
    "__version__",
]
