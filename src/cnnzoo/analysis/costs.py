"""``analyze``: the lecture's per-layer cost table for any ``nn.Module``, and what a training step
really holds and costs, without real compute.

The rules (FLOPs, memory, receptive field) are those of ``shared/spec/cost-tables.md``; the user
docs are ``docs/cost-tables.md``. ``analyze`` runs as named steps: check the options, get the
subject (a zoo model built on meta, or meta stand-ins for a user's weights), read the inputs,
trace the forward (the lecture's table), then trace a training step (peak memory, saved tensors,
backward FLOPs) and book it on the table's rows.
"""

from __future__ import annotations

import gc
import inspect
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.analysis.memory import OPTIMIZERS, Fit, fit_batch, parse_bytes, training_memory
from cnnzoo.analysis.meta import build_zoo_model, meta_state
from cnnzoo.analysis.report import CostReport, LayerCost, Training
from cnnzoo.analysis.rows import Units, book_step, fold, input_rows, traced_rows, unused_rows
from cnnzoo.analysis.step import StepTrace, same_in_train_and_eval, trace_step
from cnnzoo.analysis.tracer import Inputs, Modules, TraceError, Tracer, trace
from cnnzoo.errors import CnnzooError, ConfigError

__all__ = [
    "analyze",
    "fit_batch_size",
    "AnalysisError",
    "OPTIMIZER_STATES",
    "parse_input_size",
    "parse_input_sizes",
]

#: optimizer-state tensors per parameter (k in (2 + k) · params · bytes)
OPTIMIZER_STATES = {name: opt.states for name, opt in OPTIMIZERS.items()}

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

#: one sample's size, several (positional inputs), or several by argument name
InputSizes = tuple[int, ...] | tuple[tuple[int, ...], ...] | dict[str, tuple[int, ...]]


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
    """``"3x224x224"`` (or a tuple) -> ``(3, 224, 224)``; a tuple may have any number of dims
    (``(16,)`` for an MLP's features), a string at least two."""
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
    if len(vals) < 1 or any(v < 1 for v in vals):
        raise ConfigError(f"input size must be positive C x H x W (e.g. 3x224x224), got {text!r}")
    if len(vals) < 2 and isinstance(text, str):
        raise ConfigError(f"input size must be C x H x W (e.g. 3x224x224), got {text!r}")
    return vals


def parse_input_sizes(sizes: Any) -> InputSizes:
    """One size (``"3x224x224"``, ``(3, 224, 224)``), a tuple of sizes for a forward that takes
    several tensors (``((3, 224, 224), (10,))``), or a dict of argument name -> size."""
    if isinstance(sizes, Mapping):
        if not sizes:
            raise ConfigError("input_size is an empty dict; give one size per tensor argument of forward")
        return {str(k): parse_input_size(v) for k, v in sizes.items()}
    if isinstance(sizes, list | tuple) and sizes and all(isinstance(v, list | tuple | str) for v in sizes):
        return tuple(parse_input_size(v) for v in sizes)
    return parse_input_size(sizes)


def analyze(
    model_or_name: str | nn.Module,
    input_size: Any = None,
    batch_size: int = 1,
    dtype: torch.dtype | str = torch.float32,
    optimizer: str = "momentum",
    depth: int | None = None,
    *,
    include_activations: bool = True,
    backward: bool = True,
    set_to_none: bool = True,
) -> CostReport:
    """The per-layer cost table of a model, as deep-learning lectures draw it, and what one
    training step really holds and costs.

    One forward pass runs on the meta device (shapes only, no compute); a dispatch mode sees every
    op, so residual ``+`` / ``torch.add``, ``torch.cat`` and ``x.chunk`` inside ``forward`` become
    rows. Then (``backward=True``) one training step runs there too, forward in train mode, the
    loss and ``loss.backward()``, and what autograd saves, frees and computes is booked on the rows:
    ``saved_bytes`` and ``backward_flops`` per row, ``peak_training_bytes``, ``backward_flops`` and
    ``training_step_flops`` in the totals.

    Args:
        model_or_name: a registry name (built on the meta device) or any ``nn.Module`` (never
            modified: it runs with its weights replaced by meta tensors).
        input_size: (C, H, W) of one sample, or ``"CxHxW"``; for a forward that takes several
            tensors, a tuple of sizes (positional) or a dict of argument name -> size. Defaults to
            the model's config.
        batch_size: the minibatch B that FLOPs and memory are given for.
        dtype: the training dtype (float32, float16, bfloat16): bytes per value.
        optimizer: ``sgd`` (no state), ``momentum`` (1 state tensor), ``adam`` / ``adamw`` (2),
            ``rmsprop`` (1) or ``rmsprop_momentum`` (2).
        depth: fold every module below this call depth into one row (``None``: leaf rows).
        include_activations: whether activation-function rows count in the lecture's totals.
        backward: trace the training step too (the default); False keeps the forward-only trace
            (the lecture's columns, faster) and leaves the training figures None.
        set_to_none: the step follows ``zero_grad(set_to_none=True)`` (torch's default: the
            previous step's gradients are freed); False keeps them, zeroed in place.

    Raises:
        UnknownModelError: an unregistered name (with the closest names).
        InputShapeError: an input the model cannot take (e.g. below its minimum size).
        AnalysisError: a forward pass that fails; the message names the module.
    """
    with _paused_gc():
        return _analyze(
            model_or_name,
            input_size,
            batch_size,
            dtype,
            optimizer,
            depth,
            include_activations,
            backward,
            set_to_none,
        )


@contextmanager
def _paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while tracing: the trace makes tens of thousands of small
    objects that refcounting frees, and each collection would walk them all (15-20% of the time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _analyze(
    model_or_name: str | nn.Module,
    input_size: Any,
    batch_size: int,
    dtype: Any,
    optimizer: str,
    depth: int | None,
    include_activations: bool,
    backward: bool,
    set_to_none: bool,
) -> CostReport:
    """:func:`analyze` as named steps."""
    dt = _check_options(optimizer, batch_size, depth, dtype)
    notes: list[str] = []
    subject = _subject(model_or_name, notes)
    sizes = _input_sizes(input_size, subject)
    inputs = _batched(sizes, batch_size)
    _check_inputs(subject, sizes, inputs)
    units = Units(batch_size, batch_size, dt.itemsize, OPTIMIZER_STATES[optimizer])
    traced, per_raw, step = _traces(subject, inputs, dt, units, backward, notes)
    units = units._replace(trace_batch=traced.batch)
    leftovers = book_step(per_raw, step) if step is not None else {}
    layers = _rows(
        traced.tracer, per_raw, traced.named_params, sizes, units, depth, include_activations, notes
    )
    training = None
    if step is not None:
        training = _training(step, optimizer, set_to_none)
        _book_leftovers(layers, leftovers, notes)
    _note_unsupported(traced.tracer.unsupported, step, notes)
    return CostReport(
        model=subject.name,
        input_size=sizes,
        batch_size=batch_size,
        dtype=_dtype_name(dt),
        optimizer=optimizer,
        layers=layers,
        include_activations=include_activations,
        depth=depth,
        notes=notes,
        training=training,
    )


def fit_batch_size(
    model_or_name: str | nn.Module,
    memory: str | int,
    input_size: Any = None,
    dtype: torch.dtype | str = torch.float32,
    optimizer: str = "momentum",
    *,
    set_to_none: bool = True,
) -> Fit:
    """The largest batch whose predicted training peak (``peak_training_bytes``) fits ``memory``.

    ``memory`` is bytes or a size as written: ``"16GiB"`` is 16·2^30 bytes, ``"16GB"`` 16·10^9.
    The peak is affine in the batch at every moment of the step, so two traced steps give the
    answer and two more (at it and the batch after it) check it (:func:`~cnnzoo.analysis.memory.fit_batch`).

    Raises:
        ConfigError: an unreadable memory size or option.
        AnalysisError: a training step that cannot be traced (the message names the module).
    """
    budget = parse_bytes(memory)
    dt = _check_options(optimizer, 1, None, dtype)
    notes: list[str] = []
    subject = _subject(model_or_name, notes)
    sizes = _input_sizes(input_size, subject)
    _check_inputs(subject, sizes, _batched(sizes, 1))
    model, state = _in_dtype(subject, dt)

    def peak_at(batch: int):
        try:
            step = trace_step(model, _batched(sizes, batch), state, dt, subject.modules)
        except TraceError as e:
            raise AnalysisError(f"the training step at batch {batch} could not be traced: {e}") from e.cause
        return training_memory(step, optimizer, set_to_none), step

    with _paused_gc():
        return fit_batch(peak_at, budget, set_to_none)


class _Subject(NamedTuple):
    """The model to trace: a zoo model built on meta, or a user's module with meta stand-ins."""

    name: str
    model: nn.Module
    cfg: Any  # the registry's ModelConfig (or a module's ``default_cfg``), if any
    state: dict[str, Tensor] | None  # meta stand-ins for a user's weights
    registry_name: str | None
    modules: Modules  # its modules, walked once


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
        model = build_zoo_model(model_or_name, notes)
        return _Subject(model_or_name, model, cfg, None, model_or_name, Modules.of(model))
    if isinstance(model_or_name, nn.Module):
        cfg = getattr(model_or_name, "default_cfg", None)
        name = (getattr(cfg, "name", "") if cfg is not None else "") or type(model_or_name).__name__
        return _Subject(name, model_or_name, cfg, meta_state(model_or_name), None, Modules.of(model_or_name))
    raise ConfigError(f"analyze() takes a model name or an nn.Module, got {type(model_or_name).__name__}")


def _input_sizes(input_size: Any, subject: _Subject) -> InputSizes:
    if input_size is None:
        if subject.cfg is None:
            raise ConfigError(
                f"{subject.name} has no default config, so analyze() needs input_size=(C, H, W), "
                "e.g. analyze(model, input_size=(3, 224, 224))"
            )
        input_size = tuple(subject.cfg.input_size)
    return parse_input_sizes(input_size)


def _batched(sizes: InputSizes, batch: int) -> Inputs:
    if isinstance(sizes, dict):
        return Inputs((), {k: (batch, *v) for k, v in sizes.items()})
    if sizes and isinstance(sizes[0], tuple):
        return Inputs(tuple((batch, *v) for v in sizes), {})
    return Inputs(((batch, *sizes),), {})


def _check_inputs(subject: _Subject, sizes: InputSizes, inputs: Inputs) -> None:
    """The sizes must match the forward's tensor arguments; a zoo model checks its own input."""
    _match_forward(subject, inputs)
    check = getattr(subject.model, "check_input", None)
    if callable(check) and len(inputs.args) == 1 and not inputs.kwargs:
        check(torch.empty(inputs.args[0], device="meta"))  # the model's own InputShapeError


def _match_forward(subject: _Subject, inputs: Inputs) -> None:
    try:
        sig = inspect.signature(subject.model.forward)
    except (TypeError, ValueError):  # a forward without a signature: let the call decide
        return
    params = list(sig.parameters.values())
    kinds = inspect.Parameter
    positional = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
    named = {p.name for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)}
    var_pos = any(p.kind == kinds.VAR_POSITIONAL for p in params)
    var_kw = any(p.kind == kinds.VAR_KEYWORD for p in params)
    n = len(inputs.args)
    given = {p.name for p in positional[:n]} | set(inputs.kwargs)
    required = {
        p.name
        for p in params
        if p.default is p.empty and p.kind not in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD)
    }
    problems = []
    if n > len(positional) and not var_pos:
        problems.append(f"{n} sizes for {len(positional)} positional argument(s)")
    unknown = [k for k in inputs.kwargs if k not in named and not var_kw]
    if unknown:
        problems.append(f"no argument named {', '.join(unknown)}")
    missing = sorted(required - given)
    if missing:
        problems.append(f"no size for {', '.join(missing)}")
    if problems:
        args = ", ".join(p.name for p in params)
        raise ConfigError(
            f"{subject.name}.forward({args}) does not match input_size ({'; '.join(problems)}): give one size "
            "per tensor argument, as a tuple in order or a dict by name, e.g. input_size=((3, 32, 32), (10,))"
        )


def _trace_or_fall_back(subject: _Subject, inputs: Inputs, notes: list[str]) -> _Traced:
    """The trace on meta at the batch, else of a real forward at batch 1.

    Some forwards cannot run on meta (``.item()``, data-dependent shapes); their figures come from
    a real CPU forward at batch 1, scaled to the batch (every rule is linear in B).
    """
    model, state = subject.model, subject.state
    try:
        tracer = trace(model, inputs, "meta", state, modules=subject.modules)
        return _Traced(tracer, _batch_of(inputs), _named_params(subject.modules, state))
    except TraceError as meta_error:
        if subject.registry_name is not None:
            from cnnzoo.registry import create_model

            model = create_model(subject.registry_name)
        one = Inputs(
            tuple((1, *s[1:]) for s in inputs.args), {k: (1, *s[1:]) for k, s in inputs.kwargs.items()}
        )
        try:
            tracer = trace(model, one, "cpu")
        except TraceError as e:
            raise AnalysisError(str(e)) from e.cause
        notes.append(
            f"shapes could not be traced on the meta device ({meta_error}); the figures come from a real "
            f"forward pass at batch 1 on the CPU, scaled to batch {_batch_of(inputs)}"
        )
        return _Traced(tracer, 1, list(model.named_parameters()))


def _batch_of(inputs: Inputs) -> int:
    return inputs.shapes()[0][0]


def _traces(
    subject: _Subject, inputs: Inputs, dt: torch.dtype, units: Units, backward: bool, notes: list[str]
) -> tuple[_Traced, list[LayerCost], StepTrace | None]:
    """The table's trace, its rows, and the training step's trace (None with ``backward=False``).

    Where the model's forward runs the same rows in train and eval mode (the zoo's ResNets, VGGs:
    :func:`~cnnzoo.analysis.step.same_in_train_and_eval`), the step's train-mode forward also
    makes the table, and one trace does for both; else (auxiliary heads, stochastic depth) the
    table comes from an eval-mode trace of its own.
    """
    model, state = _in_dtype(subject, dt)
    failed = None
    if backward and same_in_train_and_eval(subject.modules):
        try:
            step = trace_step(model, inputs, state, dt, subject.modules, units)
            return (
                _Traced(step.tracer, _batch_of(inputs), _named_params(subject.modules, state)),
                step.tracer.costs,
                step,
            )
        except TraceError as e:  # the step cannot run (batch norm of one value): the table still can
            failed = e
    traced = _trace_or_fall_back(subject, inputs, notes)
    per_raw = traced_rows(traced.tracer, units._replace(trace_batch=traced.batch))
    if not backward:
        return traced, per_raw, None
    if traced.batch != _batch_of(inputs):
        notes.append("the training step was not traced: the model does not run on the meta device")
        return traced, per_raw, None
    if failed is None:
        try:
            return traced, per_raw, trace_step(model, inputs, state, dt, subject.modules)
        except TraceError as e:
            failed = e
    notes.append(
        f"the training step could not be traced at batch {_batch_of(inputs)} ({failed}); its figures "
        "(peak_training_bytes, saved_bytes, backward_flops) are left out"
    )
    return traced, per_raw, None


def _named_params(modules: Modules, state: dict[str, Tensor] | None) -> list[tuple[str, Tensor]]:
    return [(n, state[n]) for n, _ in modules.params] if state else list(modules.params)


def _in_dtype(subject: _Subject, dt: torch.dtype) -> tuple[nn.Module, dict[str, Tensor] | None]:
    """The model and meta stand-ins in the training dtype (a zoo model on meta is ours to cast)."""
    model, state = subject.model, subject.state
    if dt != torch.float32:
        if state is None:
            model = model.to(dt)
        else:
            state = {k: _cast(v, dt) for k, v in state.items()}
    return model, state


def _cast(t: Tensor, dt: torch.dtype) -> Tensor:
    if not t.is_floating_point():
        return t
    c = t.to(dt)
    return nn.Parameter(c, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else c


def _rows(
    tracer: Tracer,
    per_raw: list[LayerCost],
    named_params: list[tuple[str, Tensor]],
    sizes: InputSizes,
    units: Units,
    depth: int | None,
    include_activations: bool,
    notes: list[str],
) -> list[LayerCost]:
    """The input rows, the traced (or folded) rows and the unused parameters, in table order."""
    rows = input_rows(sizes, units)
    rows += per_raw if depth is None else fold(tracer, per_raw, depth, units.trace_batch, include_activations)
    rows += unused_rows(tracer, named_params, units, notes)
    for r in rows:
        if r.detail and r.detail.startswith(("receptive field", "jumps", "uneven")):
            notes.append(f"{r.name}: {r.detail}")
    # cost-tables.md: after global pooling, flatten and linear layers "r becomes the whole input"
    # (the window arithmetic would run past the image: AlexNet's 6x6 pool5 map gives 355 > 227).
    whole = tuple(int(v) for v in _first_size(sizes)[1:])
    for row in rows:
        if row.whole_input and row.receptive_field is not None and whole:
            row.receptive_field, row.receptive_field_hw = max(whole), whole
    return rows


def _first_size(sizes: InputSizes) -> tuple[int, ...]:
    if isinstance(sizes, dict):
        return next(iter(sizes.values()))
    return sizes[0] if isinstance(sizes[0], tuple) else sizes


def _training(step: StepTrace, optimizer: str, set_to_none: bool) -> Training:
    """The step's totals: the peak with gradients freed and kept, and the FLOPs of each phase."""
    chosen = training_memory(step, optimizer, set_to_none)
    other = training_memory(step, optimizer, not set_to_none)
    freed, kept = (chosen, other) if set_to_none else (other, chosen)
    return Training(
        optimizer=optimizer,
        set_to_none=set_to_none,
        loss=step.loss,
        memory=chosen,
        peak_set_to_none=freed.peak,
        peak_grads_kept=kept.peak,
        saved_bytes=step.saved_total,
        forward_flops=step.forward_flops,
        loss_flops=step.loss_flops,
        backward_flops=sum(step.backward_flops.values()),
        optimizer_flops=OPTIMIZERS[optimizer].flops * step.fixed.n_trainable,
    )


def _book_leftovers(layers: list[LayerCost], leftovers: dict[str, tuple[int, int]], notes: list[str]) -> None:
    """Training rows the inference table does not have (auxiliary heads) go to the row of the
    module they run in (its ``unused`` row); the loss and the engine's own ops stay in the totals."""
    names = {r.name: r for r in layers}
    for r in layers:  # the rows the step has nothing for (the input, unused heads) hold nothing
        if r.saved_bytes is None:
            r.saved_bytes, r.backward_flops = 0, 0
    missed = []
    for name, (saved, flops) in leftovers.items():
        target = _owner(name, names)
        if target is None:
            if saved or flops:
                missed.append(name)
            continue
        target.saved_bytes += saved
        target.backward_flops += flops
    if missed:
        notes.append(
            f"{', '.join(missed[:5])}{' ...' if len(missed) > 5 else ''}: run only in training and outside "
            "any row of the table; their saved bytes and backward FLOPs count in the totals only"
        )


def _owner(name: str, rows: dict[str, LayerCost]) -> LayerCost | None:
    parts = name.split("#")[0].split(".")
    for i in range(len(parts) - 1, 0, -1):
        row = rows.get(".".join(parts[:i]))
        if row is not None and row.type in ("unused", "params"):
            return row
    return None


def _note_unsupported(forward: dict[str, list[str]], step: StepTrace | None, notes: list[str]) -> None:
    """Ops with no cost rule, by name and where they ran: they count 0 FLOPs, which is said."""
    seen: dict[str, list[str]] = {k: list(v) for k, v in forward.items()}
    if step is not None:
        for k, v in step.unsupported.items():
            seen.setdefault(k, []).extend(w for w in v if w not in seen.get(k, []))
    for op, where in seen.items():
        places = ", ".join(where[:4]) + (" ..." if len(where) > 4 else "")
        notes.append(f"unsupported op {op} (no cost rule, counted as 0 FLOPs) in {places}")
