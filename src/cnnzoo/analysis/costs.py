"""``analyze``: the lecture's per-layer cost table for any ``nn.Module``, without real compute.

The rules (FLOPs, memory, receptive field) are those of ``shared/spec/cost-tables.md``; the user
docs are ``docs/cost-tables.md``.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.analysis.meta import build_zoo_model, meta_state
from cnnzoo.analysis.report import CostReport, LayerCost
from cnnzoo.analysis.rows import Units, fold, input_row, traced_rows, unused_rows
from cnnzoo.analysis.tracer import TraceError, Tracer, trace
from cnnzoo.errors import CnnzooError, ConfigError

__all__ = ["analyze", "AnalysisError", "OPTIMIZER_STATES"]

#: optimizer-state tensors per parameter (k in (2 + k) · params · bytes)
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float64": torch.float64,
    "fp64": torch.float64,
    "double": torch.float64,
}


class AnalysisError(CnnzooError, RuntimeError):
    """The forward pass could not be followed; the message names the module where it failed."""


def _resolve_dtype(dtype: Any) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    key = str(dtype).lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of float32, float16, bfloat16")
    return _DTYPES[key]


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def parse_input_size(text: str | tuple | list | int) -> tuple[int, ...]:
    """``"3x224x224"`` (or a tuple) -> ``(3, 224, 224)``."""
    if isinstance(text, int):
        raise ConfigError(
            f"input_size must be (C, H, W), got the single number {text}; e.g. (3, {text}, {text})"
        )
    if isinstance(text, str):
        parts = re.split(r"[x×,\s]+", text.strip().lower())
        try:
            vals = tuple(int(p) for p in parts if p)
        except ValueError:
            raise ConfigError(
                f"cannot read the input size {text!r}; write it as CxHxW, e.g. 3x224x224"
            ) from None
    else:
        vals = tuple(int(v) for v in text)
    if len(vals) < 2 or any(v < 1 for v in vals):
        raise ConfigError(f"input size must be positive C x H x W (e.g. 3x224x224), got {text!r}")
    return vals


def analyze(
    model_or_name: str | nn.Module,
    input_size: tuple[int, ...] | str | None = None,
    batch_size: int = 1,
    dtype: torch.dtype | str = torch.float32,
    optimizer: str = "momentum",
    depth: int | None = None,
    *,
    include_activations: bool = True,
) -> CostReport:
    """The per-layer cost table of a model, as deep-learning lectures draw it.

    One forward pass runs on the meta device (shapes only, no compute); a dispatch mode sees every
    op, so residual ``+`` / ``torch.add``, ``torch.cat`` and ``x.chunk`` inside ``forward`` become rows.

    Args:
        model_or_name: a registry name (built on the meta device) or any ``nn.Module`` (never
            modified: it runs with its weights replaced by meta tensors).
        input_size: (C, H, W) of one sample, or ``"CxHxW"``; defaults to the model's config.
        batch_size: the minibatch B that FLOPs and memory are given for.
        dtype: the training dtype (float32, float16, bfloat16): bytes per value.
        optimizer: ``sgd`` (no state), ``momentum`` (1 state tensor) or ``adam`` (2).
        depth: fold every module below this call depth into one row (``None``: leaf rows).
        include_activations: whether activation-function rows count in the totals.

    Raises:
        UnknownModelError: an unregistered name (with the closest names).
        InputShapeError: an input the model cannot take (e.g. below its minimum size).
        AnalysisError: a forward pass that fails; the message names the module.
    """
    dt = _check_options(optimizer, batch_size, depth, dtype)
    notes: list[str] = []
    subject = _subject(model_or_name, notes)
    input_size = _input_size(input_size, subject)
    check = getattr(subject.model, "check_input", None)
    if callable(check):
        check(torch.empty((batch_size, *input_size), device="meta"))  # the model's own InputShapeError
    traced = _trace_or_fall_back(subject, batch_size, input_size, notes)
    units = Units(batch_size, traced.batch, dt.itemsize, OPTIMIZER_STATES[optimizer])
    layers = _rows(traced.tracer, traced.named_params, input_size, units, depth, include_activations, notes)
    return CostReport(
        model=subject.name,
        input_size=tuple(input_size),
        batch_size=batch_size,
        dtype=_dtype_name(dt),
        optimizer=optimizer,
        layers=layers,
        include_activations=include_activations,
        depth=depth,
        notes=notes,
    )


class _Subject(NamedTuple):
    """The model to trace: a zoo model built on meta, or a user's module with meta stand-ins."""

    name: str
    model: nn.Module
    cfg: Any  # the registry's ModelConfig (or a module's ``default_cfg``), if any
    state: dict[str, Tensor] | None  # meta stand-ins for a user's weights
    registry_name: str | None


class _Traced(NamedTuple):
    tracer: Tracer
    batch: int  # the batch traced: the table's on meta, 1 for a real forward
    named_params: list[tuple[str, Tensor]]  # the parameters the trace ran with


def _check_options(optimizer: str, batch_size: int, depth: int | None, dtype: Any) -> torch.dtype:
    if optimizer not in OPTIMIZER_STATES:
        raise ConfigError(f"unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZER_STATES)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if depth is not None and (not isinstance(depth, int) or depth < 1):
        raise ConfigError(f"depth must be a positive integer (1 = the model's children), got {depth!r}")
    return _resolve_dtype(dtype)


def _subject(model_or_name: str | nn.Module, notes: list[str]) -> _Subject:
    if isinstance(model_or_name, str):
        from cnnzoo.registry import get_model_config

        cfg = get_model_config(model_or_name)  # unknown names raise with suggestions
        return _Subject(model_or_name, build_zoo_model(model_or_name, notes), cfg, None, model_or_name)
    if isinstance(model_or_name, nn.Module):
        cfg = getattr(model_or_name, "default_cfg", None)
        name = (getattr(cfg, "name", "") if cfg is not None else "") or type(model_or_name).__name__
        return _Subject(name, model_or_name, cfg, meta_state(model_or_name), None)
    raise ConfigError(f"analyze() takes a model name or an nn.Module, got {type(model_or_name).__name__}")


def _input_size(input_size: tuple[int, ...] | str | None, subject: _Subject) -> tuple[int, ...]:
    if input_size is None:
        if subject.cfg is None:
            raise ConfigError(
                f"{subject.name} has no default config, so analyze() needs input_size=(C, H, W), "
                "e.g. analyze(model, input_size=(3, 224, 224))"
            )
        input_size = tuple(subject.cfg.input_size)
    return parse_input_size(input_size)


def _trace_or_fall_back(
    subject: _Subject, batch_size: int, input_size: tuple[int, ...], notes: list[str]
) -> _Traced:
    """The trace on meta at the batch, else of a real forward at batch 1.

    Some forwards cannot run on meta (``.item()``, data-dependent shapes); their figures come from
    a real CPU forward at batch 1, scaled to the batch (every rule is linear in B).
    """
    model, state = subject.model, subject.state
    try:
        tracer = trace(model, (batch_size, *input_size), "meta", state)
        params = model.named_parameters()
        return _Traced(tracer, batch_size, [(n, state[n]) for n, _ in params] if state else list(params))
    except TraceError as meta_error:
        if subject.registry_name is not None:
            from cnnzoo.registry import create_model

            model = create_model(subject.registry_name)
        try:
            tracer = trace(model, (1, *input_size), "cpu")
        except TraceError as e:
            raise AnalysisError(str(e)) from e.cause
        notes.append(
            f"shapes could not be traced on the meta device ({meta_error}); the figures come from a real "
            f"forward pass at batch 1 on the CPU, scaled to batch {batch_size}"
        )
        return _Traced(tracer, 1, list(model.named_parameters()))


def _rows(
    tracer: Tracer,
    named_params: list[tuple[str, Tensor]],
    input_size: tuple[int, ...],
    units: Units,
    depth: int | None,
    include_activations: bool,
    notes: list[str],
) -> list[LayerCost]:
    """The input row, the traced (or folded) rows and the unused parameters, in table order."""
    rows = [input_row(input_size, units)]
    per_raw = traced_rows(tracer, units)
    rows += per_raw if depth is None else fold(tracer, per_raw, depth, units.trace_batch, include_activations)
    rows += unused_rows(tracer, named_params, units, notes)
    for r in rows:
        if r.detail and r.detail.startswith(("receptive field", "jumps", "uneven")):
            notes.append(f"{r.name}: {r.detail}")
    # cost-tables.md: after global pooling, flatten and linear layers "r becomes the whole input"
    # (the window arithmetic would run past the image: AlexNet's 6x6 pool5 map gives 355 > 227).
    whole = tuple(int(v) for v in input_size[1:])
    for row in rows:
        if row.whole_input and row.receptive_field is not None:
            row.receptive_field, row.receptive_field_hw = max(whole), whole
    return rows
