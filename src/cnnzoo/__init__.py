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


def export_onnx(model, path, input_size=None, **kwargs):
    """Export a model to ONNX with a dynamic batch; see :func:`cnnzoo.export.export_onnx` (imported lazily)."""
    from cnnzoo.export import export_onnx as _export_onnx

    return _export_onnx(model, path, input_size, **kwargs)


__all__ = [
    "ModelConfig",
    "analyze",
    "UnknownModelError",
    "create_model",
    "export_onnx",
    "get_model_config",
    "list_models",
    "register_model",
    "__version__",
]
