"""From a trace to the table: one :class:`~cnnzoo.analysis.report.LayerCost` per row.

Three kinds of rows come out of a :class:`~cnnzoo.analysis.tracer.Tracer`:

* a row per traced row (a leaf module call or a functional op), by the spec's rules;
* with ``depth=K``, a row per module call at depth K, the sums of the rows inside it, typed by
  the module's ``cost_type`` and described by its ``cost_details()`` (Inception branch widths, a
  residual block's stage and index);
* a row per group of parameters that no row used (GoogLeNet's aux heads in eval).

A traced training step (:mod:`cnnzoo.analysis.step`) books its saved bytes and backward FLOPs on
the rows of the same names (:func:`book_step`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from torch import Tensor, nn

from cnnzoo.analysis.fields import FieldColumns, columns
from cnnzoo.analysis.kinds import COMPOSITE_KINDS, module_kind, row_flops
from cnnzoo.analysis.report import LayerCost
from cnnzoo.analysis.tracer import Frame, RawRow, Tracer, first_tensor, frame_output

if TYPE_CHECKING:
    from cnnzoo.analysis.step import StepTrace

__all__ = [
    "Units",
    "input_row",
    "input_rows",
    "traced_rows",
    "fold",
    "unused_rows",
    "book_step",
    "render_details",
    "block_details",
]


class Units(NamedTuple):
    """What turns traced counts into the table's numbers."""

    batch: int  # the minibatch B the table is for
    trace_batch: int  # the batch traced: B on meta, 1 for the CPU fallback
    itemsize: int  # bytes per value of the training dtype
    optimizer_states: int  # k in (2 + k) · params · bytes

    @property
    def scale(self) -> int:
        return self.batch // self.trace_batch


def _two(v: tuple | None) -> tuple | None:
    if v is None:
        return None
    v = tuple(int(a) if float(a).is_integer() else a for a in v)
    if len(v) == 1:
        return (1, v[0])
    return v


def _with_field(row: LayerCost, f: FieldColumns, detail: str | None = None) -> LayerCost:
    row.receptive_field, row.jump = f.receptive_field, f.jump
    row.start_offset, row.receptive_field_hw = f.start_offset, f.receptive_field_hw
    row.detail, row.whole_input = detail or f.problem, f.whole_input
    return row


def input_rows(sizes: Any, units: Units) -> list[LayerCost]:
    """One ``input`` row, or one per tensor argument (``input.<name>``) for several inputs."""
    if isinstance(sizes, dict):
        named = list(sizes.items())
    elif sizes and isinstance(sizes[0], tuple):
        named = [(str(i), s) for i, s in enumerate(sizes)]
    else:
        return [input_row(tuple(sizes), units)]
    rows = []
    for name, size in named:
        row = input_row(tuple(size), units)
        row.name = f"input.{name}"
        rows.append(row)
    return rows


def input_row(input_size: tuple[int, ...], units: Units) -> LayerCost:
    """The network input: stored for the forward pass, with no gradient."""
    a = 1
    for v in input_size:
        a *= v
    n = max(len(input_size) - 1, 0)
    return LayerCost(
        name="input",
        type="input",
        kernels=None,
        kernel_size=None,
        stride=None,
        padding=None,
        output_shape=tuple(input_size),
        activations=a,
        params=0,
        flops=0,
        activation_memory_bytes=units.batch * a * units.itemsize,
        parameter_memory_bytes=0,
        receptive_field=1 if n else None,
        jump=1 if n else None,
        start_offset=(0.0,) * n,
        receptive_field_hw=(1,) * n,
    )


def _only_aliases(tracer: Tracer, raw: RawRow, o: Tensor | None) -> bool:
    """Whether the row's output shares storage with one of its inputs (a view, an in-place op)."""
    if raw.kind == "dropout":
        return bool(getattr(raw.module, "inplace", False))
    alias = False
    if o is not None and raw.inputs:
        root = tracer.root_of(o)
        alias = any(tracer.root_of(t) == root for t in raw.inputs)
    if raw.kind in ("flatten", "view", "identity"):
        alias = alias or raw.module is not None
    return alias


def _geometry(raw: RawRow, o: Tensor | None) -> tuple[int | None, tuple | None, tuple | None, tuple | None]:
    """(kernels, kernel, stride, padding): a linear layer counts as a 1×1 kernel, stride 1, pad 0."""
    kind = raw.kind
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
    return kernels, kernel, stride, pad


def traced_row(tracer: Tracer, raw: RawRow, units: Units) -> LayerCost:
    """One traced row by the spec's rules (shared/spec/cost-tables.md)."""
    o = first_tensor(raw.out)
    numel = o.numel() if o is not None else 0
    a = numel // units.trace_batch
    flops = row_flops(raw, raw.kind, numel, len(raw.inputs)) * units.scale
    act_mem = 0 if _only_aliases(tracer, raw, o) else 2 * units.batch * a * units.itemsize
    kernels, kernel, stride, pad = _geometry(raw, o)
    row = LayerCost(
        name=raw.name,
        type=raw.kind,
        kernels=kernels,
        kernel_size=kernel,
        stride=stride,
        padding=pad,
        output_shape=tuple(o.shape[1:]) if o is not None else (),
        activations=a,
        params=raw.params,
        flops=flops,
        activation_memory_bytes=act_mem,
        parameter_memory_bytes=(2 + units.optimizer_states) * raw.params * units.itemsize,
        receptive_field=None,
        jump=None,
        groups=raw.groups if raw.kind == "conv" else None,
        macs=raw.mm_flops // 2 * units.scale,
    )
    return _with_field(row, columns(tracer.fields.get(id(o)) if o is not None else None))


def traced_rows(tracer: Tracer, units: Units) -> list[LayerCost]:
    return [traced_row(tracer, raw, units) for raw in tracer.rows]


# -- folding (depth=K) ------------------------------------------------------------------------


def _groups(tracer: Tracer, depth: int) -> list[int | tuple[Frame, list[int]]]:
    """The table's order at ``depth``: a row index, or (the frame at depth, its rows' indices)."""
    order: list[int | tuple[Frame, list[int]]] = []
    groups: dict[int, tuple[Frame, list[int]]] = {}
    for i, raw in enumerate(tracer.rows):
        eff = len(raw.chain) + (1 if raw.functional else 0)
        if eff > depth and len(raw.chain) >= depth:
            f = raw.chain[depth - 1]
            if id(f) not in groups:
                groups[id(f)] = (f, [])
                order.append(groups[id(f)])
            groups[id(f)][1].append(i)
        else:
            order.append(i)
    return order


def fold(
    tracer: Tracer, per_raw: list[LayerCost], depth: int, trace_batch: int, include_activations: bool
) -> list[LayerCost]:
    """One row per module call at call depth ``depth``: the sums of the rows inside it.

    With ``include_activations=False`` the activation-function rows inside are left out of the
    sums, as they are left out of the totals.
    """
    out: list[LayerCost] = []
    for item in _groups(tracer, depth):
        if isinstance(item, int):
            out.append(per_raw[item])
            continue
        frame, idx = item
        members = [per_raw[i] for i in idx if include_activations or per_raw[i].type != "act"]
        o = frame_output(tracer, frame)
        kind, detail = block_details(frame, [tracer.rows[i] for i in idx])
        row = LayerCost(
            name=frame.name,
            type=kind,
            kernels=None,
            kernel_size=None,
            stride=None,
            padding=None,
            output_shape=o.shape[1:],
            activations=o.numel // trace_batch,
            params=sum(m.params for m in members),
            flops=sum(m.flops for m in members),
            activation_memory_bytes=sum(m.activation_memory_bytes for m in members),
            parameter_memory_bytes=sum(m.parameter_memory_bytes for m in members),
            receptive_field=None,
            jump=None,
            macs=sum(m.macs for m in members),
            saved_bytes=_sum_known(m.saved_bytes for m in members),
            backward_flops=_sum_known(m.backward_flops for m in members),
        )
        out.append(_with_field(row, columns(o.field if o.shape else None), detail))
    return out


def _sum_known(values: Any) -> int | None:
    """The sum of the values that are known; None if none is (no training step traced)."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def book_step(rows: list[LayerCost], step: StepTrace) -> dict[str, tuple[int, int]]:
    """Put the step's saved bytes and backward FLOPs on the traced rows of the same name.

    Returns what ran under other names, (saved bytes, backward FLOPs) by name: the rows of a
    training-only forward (auxiliary heads), for the caller to place. The loss (``(loss)``) and
    the autograd engine's own ops (no row) are left to the totals.
    """
    from cnnzoo.analysis.step import LOSS_ROW

    by_name = {r.name: r for r in rows}
    for r in rows:
        r.saved_bytes = step.saved.get(r.name, 0)
        r.backward_flops = step.backward_flops.get(r.name, 0)
    left: dict[str, tuple[int, int]] = {}
    for name in {*step.saved, *step.backward_flops}:
        if name and name != LOSS_ROW and name not in by_name:
            left[name] = (step.saved.get(name, 0), step.backward_flops.get(name, 0))
    return left


def _position(name: str) -> str | None:
    """``layer2.0`` -> ``stage 2, block 0``: the stage and block index in a qualified name."""
    parts = name.split(".")
    stage = block = None
    if len(parts) >= 2:
        m = re.search(r"(\d+)$", parts[-2])
        stage = int(m.group(1)) if m else None
    if parts[-1].isdigit():
        block = int(parts[-1])
    bits = [f"stage {stage}" if stage is not None else None, f"block {block}" if block is not None else None]
    return ", ".join(b for b in bits if b) or None


def render_details(details: Mapping[str, Any], name: str) -> str | None:
    """A module's ``cost_details()`` as the row's detail text (contracts/cost-rows.md).

    ``"{key} {value:,}"`` for ints, ``"{key} {value}"`` for strs, ``"{key} —"`` for None, ``"{key}"``
    for True (False is left out); a ``residual`` entry carries the block's position in the network.
    """
    parts = []
    for key, value in details.items():
        if value is False:
            continue
        if value is True:
            parts.append(f"residual {_position(name) or 'block'}" if key == "residual" else key)
        elif value is None:
            parts.append(f"{key} —")
        elif isinstance(value, int):
            parts.append(f"{key} {value:,}")
        else:
            parts.append(f"{key} {value}")
    return ", ".join(parts) or None


def block_details(frame: Frame, raws: list[RawRow]) -> tuple[str, str | None]:
    """(row type, detail) of a folded module: its own kind and ``cost_details()``.

    A module that states no kind (torch containers, other libraries' blocks) is read by its
    structure: a residual add in its own forward, or torchvision's four Inception branches.
    """
    module = frame.module
    kind = module_kind(module)
    describe = getattr(module, "cost_details", None)
    if callable(describe):
        details = describe()
    elif kind is None:
        kind, details = _structure(frame, raws)
    else:
        details = {}
    if kind is None or kind not in COMPOSITE_KINDS:
        kind = "block"
    return kind, render_details(details, frame.name)


INCEPTION_LABELS = ("#1×1", "#3×3 reduce", "#3×3", "#5×5 reduce", "#5×5", "pool proj")


def _structure(frame: Frame, raws: list[RawRow]) -> tuple[str | None, dict[str, Any]]:
    branches = [m for n, m in frame.module.named_children() if n.startswith("branch")]
    if len(branches) == 4:  # torchvision's Inception: 1 conv; 2 convs; 2 convs; pool + 1 conv
        convs = [[c.out_channels for c in b.modules() if isinstance(c, nn.Conv2d)] for b in branches]
        if [len(c) for c in convs] == [1, 2, 2, 1]:
            widths = (convs[0][0], convs[1][0], convs[1][1], convs[2][0], convs[2][1], convs[3][0])
            return "inception", dict(zip(INCEPTION_LABELS, widths, strict=True))
    if any(r.kind == "add" and r.functional and r.chain and r.chain[-1] is frame for r in raws):
        return None, {"residual": True}
    return None, {}


def unused_rows(
    tracer: Tracer, named_params: list[tuple[str, Tensor]], units: Units, notes: list[str]
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
    rows = [
        LayerCost(
            name=key,
            type="unused" if key not in called else "params",
            kernels=None,
            kernel_size=None,
            stride=None,
            padding=None,
            output_shape=(),
            activations=0,
            params=n,
            flops=0,
            activation_memory_bytes=0,
            parameter_memory_bytes=(2 + units.optimizer_states) * n * units.itemsize,
            receptive_field=None,
            jump=None,
        )
        for key, n in groups.items()
    ]
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
