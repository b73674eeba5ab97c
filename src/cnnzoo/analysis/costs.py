"""``analyze``: the lecture's per-layer cost table for any ``nn.Module``, without real compute.

The rules (FLOPs, memory, receptive field) are those of ``shared/spec/cost-tables.md``; the user
docs are ``docs/cost-tables.md``.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import torch
from torch import Tensor, nn

from cnnzoo.analysis.report import CostReport, LayerCost
from cnnzoo.analysis.tracer import FastMetaInit, Frame, RawRow, TraceError, Tracer, _first_tensor
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


def _meta_state(module: nn.Module) -> dict[str, Tensor]:
    """Meta stand-ins for a module's parameters and buffers, by qualified name (tied ones stay tied).

    The user's module is run with these swapped in (``torch.func.functional_call``), so its weights
    are never copied and the module itself is left as it was.
    """
    made: dict[int, Tensor] = {}
    state: dict[str, Tensor] = {}
    named = itertools.chain(
        module.named_parameters(remove_duplicate=False), module.named_buffers(remove_duplicate=False)
    )
    for n, t in named:
        if t is None:
            continue
        mt = made.get(id(t))
        if mt is None:
            mt = torch.empty_like(t, device="meta")
            if isinstance(t, nn.Parameter):
                mt = nn.Parameter(mt, requires_grad=t.requires_grad)
            made[id(t)] = mt
        state[n] = mt
    return state


def _trace(
    model: nn.Module, shape: tuple[int, ...], device: str, state: dict[str, Tensor] | None = None
) -> Tracer:
    names = {id(m): n for n, m in model.named_modules()}
    tracer = Tracer(names, model)
    if device == "meta":
        x = torch.empty(shape, device="meta")
    else:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    tracer.mark_input(x)
    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    h1 = register_module_forward_pre_hook(tracer.pre_hook)
    h2 = register_module_forward_hook(tracer.post_hook)
    try:
        with torch.no_grad(), tracer:
            if state is None:
                model(x)
            else:
                torch.func.functional_call(model, state, (x,), strict=False, tie_weights=True)
    except CnnzooError:
        raise
    except Exception as e:
        name, typ = tracer.current_module()
        raise TraceError(name, typ, e) from e
    finally:
        h1.remove()
        h2.remove()
        for m, t in flags:
            m.training = t
    return tracer


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
    op, so residual ``+`` / ``torch.add`` and ``torch.cat`` inside ``forward`` become rows.

    Args:
        model_or_name: a registry name (built on the meta device) or any ``nn.Module`` (never
            modified: it is copied with its weights replaced by meta tensors).
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
    if optimizer not in OPTIMIZER_STATES:
        raise ConfigError(f"unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZER_STATES)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if depth is not None and (not isinstance(depth, int) or depth < 1):
        raise ConfigError(f"depth must be a positive integer (1 = the model's children), got {depth!r}")
    dt = _resolve_dtype(dtype)
    notes: list[str] = []

    user_module: nn.Module | None = None
    state: dict[str, Tensor] | None = None
    if isinstance(model_or_name, str):
        from cnnzoo.registry import create_model, get_model_config

        name = model_or_name
        cfg = get_model_config(name)  # unknown names raise with suggestions
        try:
            with torch.device("meta"), FastMetaInit():
                model = create_model(name)
            model.to("meta")  # tensors a builder made without the device context (e.g. torch.tensor)
        except CnnzooError:
            raise
        except Exception as e:  # a builder that cannot run on meta
            notes.append(
                f"the model could not be built on the meta device ({type(e).__name__}: {e}); "
                "it was built on the CPU"
            )
            model = create_model(name)
    elif isinstance(model_or_name, nn.Module):
        user_module = model_or_name
        cfg = getattr(user_module, "default_cfg", None)
        name = (
            (getattr(cfg, "name", "") or type(user_module).__name__)
            if cfg is not None
            else type(user_module).__name__
        )
        model = user_module
        state = _meta_state(user_module)
    else:
        raise ConfigError(f"analyze() takes a model name or an nn.Module, got {type(model_or_name).__name__}")

    if input_size is None:
        if cfg is None:
            raise ConfigError(
                f"{name} has no default config, so analyze() needs input_size=(C, H, W), "
                "e.g. analyze(model, input_size=(3, 224, 224))"
            )
        input_size = tuple(cfg.input_size)
    input_size = parse_input_size(input_size)
    shape = (batch_size, *input_size)

    check = getattr(model, "check_input", None)
    if callable(check):
        check(torch.empty(shape, device="meta"))  # the model's own InputShapeError, as-is

    trace_batch = batch_size
    try:
        tracer = _trace(model, shape, "meta", state)
        named_params = [(n, state[n]) for n, _ in model.named_parameters()] if state else None
    except TraceError as meta_error:
        # fall back to a real forward at batch 1 on the CPU
        trace_batch = 1
        if isinstance(model_or_name, str):
            model = create_model(model_or_name)
        try:
            tracer = _trace(model, (1, *input_size), "cpu")
        except TraceError as e:
            raise AnalysisError(str(e)) from e.cause
        named_params = None
        notes.append(
            f"shapes could not be traced on the meta device ({meta_error}); the figures come from a real "
            f"forward pass at batch 1 on the CPU, scaled to batch {batch_size}"
        )

    k = OPTIMIZER_STATES[optimizer]
    if named_params is None:
        named_params = list(model.named_parameters())
    layers = _build_rows(
        tracer,
        named_params,
        input_size,
        batch_size,
        trace_batch,
        dt.itemsize,
        k,
        depth,
        notes,
        include_activations,
    )
    # cost-tables.md: after global pooling, flatten and linear layers "r becomes the whole input"
    # (the window arithmetic would run past the image: AlexNet's 6x6 pool5 map gives 355 > 227).
    whole = tuple(int(v) for v in input_size[1:])
    for row in layers:
        if row.whole_input and row.receptive_field is not None:
            row.receptive_field, row.receptive_field_hw = max(whole), whole
    return CostReport(
        model=name,
        input_size=tuple(input_size),
        batch_size=batch_size,
        dtype=_dtype_name(dt),
        optimizer=optimizer,
        layers=layers,
        include_activations=include_activations,
        depth=depth,
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------
# rows


def _two(v: tuple | None) -> tuple | None:
    if v is None:
        return None
    v = tuple(int(a) if float(a).is_integer() else a for a in v)
    if len(v) == 1:
        return (1, v[0])
    return v


def _rf(info: tuple | None) -> tuple[int | None, int | None, tuple | None, tuple | None, str | None, bool]:
    """(receptive_field, jump, start, per-axis r, problem, whole_input) of a tensor's Info."""
    if info is None:
        return (
            None,
            None,
            None,
            None,
            "receptive field unknown: the output does not depend on the input",
            False,
        )
    r, j, s, err, flat = info
    if err:
        return None, None, None, None, err, False
    if not r:
        return None, None, None, None, None, flat
    rr = tuple(int(round(v)) for v in r)
    jump: int | None = int(max(j)) if all(float(v).is_integer() for v in j) else None
    problem = None if jump is not None else "uneven adaptive-pooling windows: the jump is not an integer"
    return max(rr), jump, tuple(s), rr, problem, flat


def _lrn_size(module: nn.Module | None) -> int | None:
    for attr in ("size", "n", "local_size"):
        v = getattr(module, attr, None)
        if isinstance(v, int):
            return v
    return None


def _row_flops(raw: RawRow, kind: str, numel_out: int, n_inputs: int) -> int:
    """FLOPs of a row at the traced batch, by the spec's rules (docs/cost-tables.md)."""
    if kind in ("conv", "linear", "matmul"):
        return raw.mm_flops or (raw.pool_flops + raw.other_flops)
    if kind == "pool":
        return raw.pool_flops or raw.other_flops
    if kind == "act":
        return numel_out
    if kind == "norm":
        bn = isinstance(raw.module, nn.modules.batchnorm._BatchNorm) or (raw.op or "").find("batch_norm") >= 0
        return (2 if bn else 4) * numel_out
    if kind == "lrn":
        n = _lrn_size(raw.module)
        return (2 * n + 3) * numel_out if n else raw.other_flops + raw.pool_flops
    if kind == "softmax":
        return 3 * numel_out
    if kind == "add":
        return max(1, n_inputs - 1) * numel_out
    if kind in ("concat", "flatten", "view", "identity", "pad", "dropout", "copy"):
        return 0
    return raw.mm_flops + raw.pool_flops + raw.other_flops


def _build_rows(
    tracer: Tracer,
    named_params: list[tuple[str, Tensor]],
    input_size: tuple[int, ...],
    batch: int,
    trace_batch: int,
    nbytes: int,
    k: int,
    depth: int | None,
    notes: list[str],
    include_activations: bool = True,
) -> list[LayerCost]:
    scale = batch // trace_batch  # trace_batch is batch (meta) or 1 (fallback)
    a_in = math.prod(input_size)
    n_sp = max(len(input_size) - 1, 0)
    rows: list[LayerCost] = [
        LayerCost(
            name="input",
            type="input",
            kernels=None,
            kernel_size=None,
            stride=None,
            padding=None,
            output_shape=tuple(input_size),
            activations=a_in,
            params=0,
            flops=0,
            activation_memory_bytes=batch * a_in * nbytes,
            parameter_memory_bytes=0,
            receptive_field=1 if n_sp else None,
            jump=1 if n_sp else None,
            start_offset=(0.0,) * n_sp,
            receptive_field_hw=(1,) * n_sp,
        )
    ]
    per_raw: list[LayerCost] = []
    for raw in tracer.rows:
        per_raw.append(
            _make_row(tracer, raw, raw.name, raw.kind, raw.out, batch, trace_batch, scale, nbytes, k)
        )
    if depth is None:
        rows += per_raw
    else:
        rows += _fold(tracer, per_raw, depth, trace_batch, include_activations)
    rows += _unused_rows(tracer, named_params, nbytes, k, notes)
    for r in rows:
        if r.detail and r.detail.startswith(("receptive field", "jumps", "uneven")):
            notes.append(f"{r.name}: {r.detail}")
    return rows


def _make_row(
    tracer: Tracer,
    raw: RawRow,
    name: str,
    kind: str,
    out: Any,
    batch: int,
    trace_batch: int,
    scale: int,
    nbytes: int,
    k: int,
) -> LayerCost:
    o = _first_tensor(out)
    numel = o.numel() if o is not None else 0
    a = numel // trace_batch
    shape = tuple(o.shape[1:]) if o is not None else ()
    n_in = len(raw.inputs)
    flops = _row_flops(raw, kind, numel, n_in) * scale
    # activation memory: the output and its gradient, unless the row only aliases its input
    alias = False
    if o is not None and raw.inputs:
        root = tracer.root_of(o)
        alias = any(tracer.root_of(t) == root for t in raw.inputs)
    if kind == "dropout":
        alias = bool(getattr(raw.module, "inplace", False))
    elif kind in ("flatten", "view", "identity"):
        alias = alias or raw.module is not None
    act_mem = 0 if alias else 2 * batch * a * nbytes
    kernels = kernel = stride = pad = None
    if kind == "conv" and o is not None and o.dim() >= 2:
        kernels = int(o.shape[1])
    elif kind in ("linear", "matmul") and o is not None:
        kernels = int(o.shape[-1])
        kernel, stride, pad = (1, 1), (1, 1), (0, 0)
    elif kind == "pool":
        kernels = 1
    if raw.geom is not None and kind in ("conv", "pool"):
        kernel, stride, pad = (_two(g) for g in raw.geom)
    rf, jump, start, rhw, problem, flat = _rf(tracer.info.get(id(o)) if o is not None else None)
    return LayerCost(
        name=name,
        type=kind,
        kernels=kernels,
        kernel_size=kernel,
        stride=stride,
        padding=pad,
        output_shape=shape,
        activations=a,
        params=raw.params,
        flops=flops,
        activation_memory_bytes=act_mem,
        parameter_memory_bytes=(2 + k) * raw.params * nbytes,
        receptive_field=rf,
        jump=jump,
        start_offset=start,
        receptive_field_hw=rhw,
        detail=problem,
        whole_input=flat,
    )


# -- folding (depth=K) ------------------------------------------------------------------------


def _fold(
    tracer: Tracer, per_raw: list[LayerCost], depth: int, trace_batch: int, include_activations: bool
) -> list[LayerCost]:
    """One row per module call at call depth ``depth``: the sums of the rows inside it.

    With ``include_activations=False`` the activation-function rows inside are left out of the
    sums, as they are left out of the totals.
    """
    out: list[LayerCost] = []
    groups: dict[int, tuple[Frame, list[int]]] = {}
    order: list[Any] = []
    for i, raw in enumerate(tracer.rows):
        eff = len(raw.chain) + (1 if raw.functional else 0)
        if eff > depth and len(raw.chain) >= depth:
            f = raw.chain[depth - 1]
            if id(f) not in groups:
                groups[id(f)] = (f, [])
                order.append(("g", id(f)))
            groups[id(f)][1].append(i)
        else:
            order.append(("r", i))
    for tag, key in order:
        if tag == "r":
            out.append(per_raw[key])
            continue
        frame, idx = groups[key]
        members = [per_raw[i] for i in idx if include_activations or per_raw[i].type != "act"]
        o = _first_tensor(frame.out)
        numel = o.numel() if o is not None else 0
        rf, jump, start, rhw, problem, flat = _rf(tracer.info.get(id(o)) if o is not None else None)
        kind, detail = _block_kind(frame, [tracer.rows[i] for i in idx])
        out.append(
            LayerCost(
                name=frame.name,
                type=kind,
                kernels=None,
                kernel_size=None,
                stride=None,
                padding=None,
                output_shape=tuple(o.shape[1:]) if o is not None else (),
                activations=numel // trace_batch,
                params=sum(m.params for m in members),
                flops=sum(m.flops for m in members),
                activation_memory_bytes=sum(m.activation_memory_bytes for m in members),
                parameter_memory_bytes=sum(m.parameter_memory_bytes for m in members),
                receptive_field=rf,
                jump=jump,
                start_offset=start,
                receptive_field_hw=rhw,
                detail=detail or problem,
                whole_input=flat,
            )
        )
    return out


INCEPTION_FIELDS = ("ch1x1", "ch3x3red", "ch3x3", "ch5x5red", "ch5x5", "pool_proj")
INCEPTION_LABELS = ("#1×1", "#3×3 reduce", "#3×3", "#5×5 reduce", "#5×5", "pool proj")


def inception_widths(module: nn.Module) -> tuple[int, ...] | None:
    """The six branch widths of a GoogLeNet Inception module, or None if it is not one.

    Read from ``module.branch_widths`` (a 6-tuple or a dict keyed like :data:`INCEPTION_FIELDS`),
    from attributes named as in :data:`INCEPTION_FIELDS`, or from the structure of a module with
    four ``branch*`` children (torchvision's GoogLeNet): 1 conv, 2 convs, 2 convs, pool + 1 conv.
    """
    bw = getattr(module, "widths", None)
    if not (isinstance(bw, tuple) and len(bw) == 6):
        bw = getattr(module, "branch_widths", None)
    if callable(bw):
        bw = bw()
    if isinstance(bw, dict):
        bw = tuple(bw.get(f) for f in INCEPTION_FIELDS)
    if isinstance(bw, tuple | list) and len(bw) == 6 and all(isinstance(v, int | None) for v in bw):
        return tuple(bw)
    vals = tuple(getattr(module, f, None) for f in INCEPTION_FIELDS)
    if all(isinstance(v, int) for v in vals):
        return vals
    branches = [m for n, m in module.named_children() if n.startswith("branch")]
    if len(branches) == 4:
        convs = [[c.out_channels for c in b.modules() if isinstance(c, nn.Conv2d)] for b in branches]
        if [len(c) for c in convs] == [1, 2, 2, 1]:
            return (convs[0][0], convs[1][0], convs[1][1], convs[2][0], convs[2][1], convs[3][0])
    return None


def _block_kind(frame: Frame, raws: list[RawRow]) -> tuple[str, str | None]:
    widths = inception_widths(frame.module)
    if widths is not None:
        return "inception", ", ".join(
            f"{lab} {'—' if w is None else format(w, ',')}"
            for lab, w in zip(INCEPTION_LABELS, widths, strict=True)
        )
    residual = any(r.kind == "add" and r.functional and r.chain and r.chain[-1] is frame for r in raws)
    cls = type(frame.module).__name__.lower()
    if residual or (any(r.kind == "add" for r in raws) and re.search("block|bottleneck|residual", cls)):
        stage = getattr(frame.module, "stage", None)
        block = getattr(frame.module, "block_index", None)
        parts = frame.name.split(".")
        if stage is None and len(parts) >= 2:
            m = re.search(r"(\d+)$", parts[-2])
            stage = int(m.group(1)) if m else None
        if block is None and parts[-1].isdigit():
            block = int(parts[-1])
        bits = [
            f"stage {stage}" if stage is not None else None,
            f"block {block}" if block is not None else None,
        ]
        text = ", ".join(b for b in bits if b)
        return "block", ("residual " + text) if text else "residual block"
    return "block", None


def _unused_rows(
    tracer: Tracer, named_params: list[tuple[str, Tensor]], nbytes: int, k: int, notes: list[str]
) -> list[LayerCost]:
    """Parameters no row used (modules the forward never calls, such as GoogLeNet's aux heads)."""
    called = {f.name for f in tracer.frames}
    groups: dict[str, int] = {}
    for pname, p in named_params:
        if id(p) in tracer.seen_params:
            continue
        parts = pname.split(".")[:-1]
        key = ".".join(parts) or "(model)"
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix not in called:
                key = prefix
                break
        groups[key] = groups.get(key, 0) + p.numel()
    rows = []
    for key, n in groups.items():
        kind = "unused" if key not in called else "params"
        rows.append(
            LayerCost(
                name=key,
                type=kind,
                kernels=None,
                kernel_size=None,
                stride=None,
                padding=None,
                output_shape=(),
                activations=0,
                params=n,
                flops=0,
                activation_memory_bytes=0,
                parameter_memory_bytes=(2 + k) * n * nbytes,
                receptive_field=None,
                jump=None,
            )
        )
    unused = [r.name for r in rows if r.type == "unused"]
    if unused:
        notes.append(
            f"{', '.join(unused)}: not run by the inference forward pass (e.g. auxiliary heads); "
            "their parameters count in the totals (they are trained) but not their FLOPs or activations"
        )
    other = [r.name for r in rows if r.type == "params"]
    if other:
        notes.append(f"{', '.join(other)}: parameters used outside any row (counted once, on their own row)")
    return rows
