"""ONNX export: ``export_onnx(model, path)`` writes a file that onnxruntime runs at any batch size.

The exporter is PyTorch's ``torch.export``-based one (``torch.onnx.export(..., dynamo=True)``, which
needs onnxscript). We chose it deliberately: in torch 2.9+ the TorchScript exporter warns that it
will be removed, and with a dynamic batch it cannot export ``adaptive_avg_pool2d`` (AlexNet's, VGG's
and ResNet's pooling before the classifier: "input size not accessible"), while the dynamo exporter
exports every wave-1 family, LRN and the Inception branches included, with outputs within 1e-6 of
PyTorch's (``tests/test_export.py``; the sweep over every model is in ``benchmarks/README.md``).

The batch dimension is symbolic (named ``batch``); height and width are fixed at ``input_size``. The
model is traced at batch 2, since a batch of 1 would let the tracer specialise the dimension to a
constant. The file is written atomically (:func:`cnnzoo.io.atomic_write`), with the weights inside it
(no external-data side file), so a model of up to 2 GB exports to one file.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.io import atomic_write

__all__ = ["ExportError", "export_onnx", "default_input_size"]

#: the batch the exporter traces with; any batch runs in the exported file
TRACE_BATCH = 2


class ExportError(CnnzooError, ValueError):
    """A model that cannot be exported as asked (an input size it cannot take, an op ONNX lacks)."""


def default_input_size(model: nn.Module) -> tuple[int, int, int]:
    """The ``(C, H, W)`` a model is exported at by default: its config's input size, with its
    ``in_chans`` (a Fashion-MNIST run's 1-channel LeNet exports at 1×32×32)."""
    cfg = getattr(model, "default_cfg", None)
    if cfg is None:
        raise ExportError(
            f"{type(model).__name__} has no default_cfg to take an input size from; "
            "pass input_size=(C, H, W) to export_onnx"
        )
    _, h, w = cfg.input_size
    return (int(getattr(model, "in_chans", cfg.input_size[0])), int(h), int(w))


def _check_size(model: nn.Module, size: Sequence[int]) -> tuple[int, int, int]:
    if len(size) != 3 or not all(isinstance(s, int) and s >= 1 for s in size):
        raise ExportError(f"input_size must be (C, H, W) of positive ints, e.g. (3, 224, 224); got {size!r}")
    c, h, w = size
    in_chans = getattr(model, "in_chans", None)
    if in_chans is not None and c != in_chans:
        raise ExportError(
            f"input_size has {c} channels and the model takes {in_chans}; use ({in_chans}, {h}, {w})"
        )
    low = getattr(model, "min_input_size", None)
    if low is not None and min(h, w) < low:
        raise ExportError(
            f"input_size {h}x{w} is below the model's minimum {low}x{low}; export at {low} or more"
        )
    return (c, h, w)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    input_size: Sequence[int] | None = None,
    *,
    opset: int | None = None,
) -> Path:
    """Export ``model`` (in eval mode) to an ONNX file with a dynamic batch dimension.

    Args:
        model: any module taking one ``(N, C, H, W)`` image batch; a zoo model's input is checked
            against its ``in_chans`` and ``min_input_size`` first.
        path: the ``.onnx`` file to write (atomically; its directory is created).
        input_size: ``(C, H, W)``; default: :func:`default_input_size`. Small sizes (down to the
            model's minimum) export the same graph, faster.
        opset: the ONNX opset (default: the exporter's).

    Returns:
        The path written. The graph's input is named ``x`` (``batch``, C, H, W), its output
        ``logits`` (``batch``, num_classes).

    Raises:
        ExportError: a bad ``input_size``, or an op the exporter cannot express (its first line).
    """
    size = _check_size(model, tuple(input_size) if input_size is not None else default_input_size(model))
    was_training = model.training
    model.eval()
    x = torch.randn(TRACE_BATCH, *size, device=next(iter(model.parameters()), torch.empty(0)).device)
    try:
        program = _export(model, x, opset)
    finally:
        model.train(was_training)
    return atomic_write(Path(path), lambda tmp: program.save(tmp, external_data=False))


def _export(model: nn.Module, x: torch.Tensor, opset: int | None):
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(f"ONNX export needs {' and '.join(missing)}: pip install onnx onnxscript")
    kwargs = {} if opset is None else {"opset_version": opset}
    chatter = io.StringIO()  # the exporter prints its progress on stdout
    try:
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.onnx.export(
                model,
                (x,),
                dynamo=True,
                input_names=["x"],
                output_names=["logits"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                report=False,
                verbose=False,
                **kwargs,
            )
    except Exception as e:  # the exporter fails with many types; the user needs the root cause
        root = e
        while root.__cause__ is not None:  # torch.export's error wraps the model's own
            root = root.__cause__
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(root)).strip()  # the exporter colours its messages
        first = (text.splitlines() or [type(root).__name__])[0][:240]
        raise ExportError(
            f"{type(model).__name__} could not be exported to ONNX ({type(root).__name__}: {first}); "
            "export it with CNNZOO_DEBUG=1 to see the exporter's report"
        ) from e
