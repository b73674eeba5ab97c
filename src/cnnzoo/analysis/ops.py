"""The op table: what the tracer does with each aten op, one line per family of ops.

As fvcore's ``flop_count.py`` maps an op to its handler (``_DEFAULT_SUPPORTED_OPS``), :data:`OP_RULES`
maps an aten op to an :class:`OpRule`: the type of the row it makes when it runs in a module's own
``forward``, its cost, how it moves the receptive field, and (for the few ops that make up nearly
all of a CNN's trace) its output shape on the meta device. Adding an op is one line in
:data:`_TABLE`, e.g. ``("hardswish hardswish_", ACT)``.

The table covers the backward pass too: ``convolution_backward``, ``native_batch_norm_backward``,
the pooling and activation gradients. They never make a row of their own (``row=None``); their
FLOPs count for the forward row whose autograd node runs them (:mod:`cnnzoo.analysis.step`).

Ops not in the table: torch's ``FlopCounterMode`` ops (other matrix products) are :data:`MATMUL`,
other views :data:`VIEW`, ops torch tags ``pointwise`` :data:`ELEMENTWISE_OP` (one FLOP per output
value, a row typed by the op's name; zoo models must not reach that, see
``tests/analysis/test_kinds.py``), and anything else :data:`UNSUPPORTED`: no cost rule, so the
analyzer lists it by name in the report's notes rather than count it as a silent zero.

Convolutions and matrix products count 2 FLOPs per multiply-add, with the formulas of torch's
``FlopCounterMode`` (computed here directly: its shape wrapper walks every argument through
``pytree``, a quarter of the trace's time). One departure, in the backward pass: FlopCounterMode
counts a grouped convolution's weight gradient ``groups`` times over (its formula treats every
input channel as seen by every filter); here each gradient of a convolution costs exactly the
multiply-adds of its forward.

What autograd saves per op is not a column: the step trace observes it (saved-tensor hooks), so
it is what torch really keeps, not what a table says it should.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.utils.flop_counter import flop_registry

from cnnzoo.analysis import fields
from cnnzoo.analysis.fields import Field
from cnnzoo.analysis.shapes import (
    ShapeRule,
    adaptive_shape,
    batch_norm_backward_shape,
    batch_norm_shape,
    binary_shape,
    bmm_shape,
    cat_shape,
    conv_backward_shape,
    conv_shape,
    empty_shape,
    float_unary_shape,
    group_norm_shape,
    index_put_shape,
    index_shape,
    inplace_shape,
    layer_norm_backward_shape,
    layer_norm_shape,
    like_arg,
    like_factory,
    mm_shape,
    nll_shape,
    pad_shape,
    pool_shape,
    reduce_shape,
    returns_self,
    sized_grad,
    unary_shape,
    view_shape,
)

__all__ = [
    "OpRule",
    "OpCost",
    "Geometry",
    "OP_RULES",
    "UNSUPPORTED",
    "rule_of",
    "arg",
    "as_tuple",
    "conv_scratch",
    "conv_shape",
    "binary_shape",
]

aten = torch.ops.aten


class Geometry(NamedTuple):
    """Kernel, stride and padding of a conv or pool op, per spatial axis."""

    kernel: tuple
    stride: tuple
    padding: tuple


class OpCost(NamedTuple):
    """The FLOPs of one op, by kind, and the window it slides."""

    pool: int = 0  # window reductions: B·A·Kh·Kw
    other: int = 0  # elementwise and normalising ops, by the per-op rules
    geom: Geometry | None = None
    mm: int = 0  # convolutions and matrix products, 2 per multiply-add
    groups: int | None = None  # of a convolution

    @property
    def flops(self) -> int:
        return self.mm + self.pool + self.other


NO_COST = OpCost()

#: (args, kwargs, x, out) -> OpCost; x is the first input the tracer follows (the first tensor
#: argument for an op of the backward pass), out the first output
CostRule = Callable[[tuple, dict, Tensor, Tensor], OpCost]
#: (func, args, kwargs, [(input, its field)], out) -> the output's field; the first input's field
#: is known (the tracer passes an unknown one straight through). Ops with ``every_output`` get the
#: list of outputs and return one field per output.
FieldRule = Callable[[Any, tuple, dict, list, Any], Any]
#: (op packet, x, out, cost) -> the row type
RowRule = Callable[[Any, Tensor, Tensor, OpCost], str]
#: (args, out) -> bytes the op's kernel holds beside its inputs and outputs while it runs
ScratchRule = Callable[[tuple, Any], int]


class OpRule(NamedTuple):
    """What the tracer does with one aten op.

    ``row`` is the type of the row the op makes when it runs in a composite module's own
    ``forward`` (a str, a :data:`RowRule`, or None: never a row of its own, as ``detach`` or any
    op of the backward pass). ``aliases``: its output shares its input's storage (no activation
    memory). ``every_output``: each of its outputs is followed (``split``, ``unbind``); otherwise
    only the first. ``scratch``: the workspace its kernel allocates and frees while it runs (a
    transient of the training step). ``supported``: False for an op the table has no cost rule
    for (:data:`UNSUPPORTED`), which the report names in its notes.
    """

    row: str | RowRule | None
    cost: CostRule
    field: FieldRule
    shape: ShapeRule | None = None
    aliases: bool = False
    every_output: bool = False
    scratch: ScratchRule | None = None
    supported: bool = True


# -- argument helpers ----------------------------------------------------------------------------


def arg(args: tuple, kwargs: dict, i: int, name: str, default: Any) -> Any:
    """Argument ``i`` of an aten call, positional or by keyword."""
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def as_tuple(v: Any, n: int) -> tuple:
    """An int or a 1-tuple broadcast to ``n`` axes."""
    if isinstance(v, int):
        return (v,) * n
    v = tuple(v)
    if len(v) == 1 and n > 1:
        return v * n
    return v


# -- cost rules ----------------------------------------------------------------------------------


def no_cost(args: tuple, kwargs: dict, x: Tensor, o: Tensor) -> OpCost:
    return NO_COST


def per_output(k: int) -> CostRule:
    """``k`` FLOPs per output value (floating-point outputs only)."""

    def cost(args: tuple, kwargs: dict, x: Tensor, o: Tensor) -> OpCost:
        return OpCost(other=k * o.numel()) if o.is_floating_point() else NO_COST

    return cost


def per_input(k: int, i: int = 0) -> CostRule:
    """``k`` FLOPs per value of tensor argument ``i`` (a gradient's, a target's)."""

    def cost(args: tuple, kwargs: dict, x: Tensor, o: Tensor) -> OpCost:
        t = args[i] if len(args) > i else None
        return OpCost(other=k * t.numel()) if isinstance(t, Tensor) else NO_COST

    return cost


elementwise = per_output(1)


def conv_macs(x_shape: Any, w_shape: Any, out_shape: Any, transposed: bool) -> int:
    """Multiply-adds of a convolution (FlopCounterMode's ``conv_flop_count``, halved): every
    output position (every input position if transposed) meets the whole filter bank."""
    positions = math.prod((x_shape if transposed else out_shape)[2:])
    return x_shape[0] * positions * math.prod(w_shape)


def conv_cost(args: tuple, kwargs: dict, x: Tensor, o: Tensor) -> OpCost:
    """2 FLOPs per multiply-add; the row shows the kernel, stride, padding and groups."""
    inp, w = args[0], args[1]
    transposed = bool(arg(args, kwargs, 6, "transposed", False))
    mm = 2 * conv_macs(inp.shape, w.shape, o.shape, transposed)
    n = w.dim() - 2
    if n < 1:
        return OpCost(mm=mm)
    st = as_tuple(arg(args, kwargs, 3, "stride", 1), n)
    p = as_tuple(arg(args, kwargs, 4, "padding", 0), n)
    groups = int(arg(args, kwargs, 8, "groups", 1))
    return OpCost(geom=Geometry(tuple(w.shape[2:]), st, p), mm=mm, groups=groups)


def conv_backward_cost(args: tuple, kwargs: dict, x: Tensor, o: Any) -> OpCost:
    """Each gradient a convolution's backward computes costs the multiply-adds of its forward:
    the input's (a transposed convolution of the output gradient) and the weight's (a
    convolution of the input with the output gradient); the bias's is one add per output
    gradient value, as a linear layer's bias gradient (a sum) is."""
    grad, inp, w = args[0], args[1], args[2]
    transposed = bool(arg(args, kwargs, 7, "transposed", False))
    mask = arg(args, kwargs, 10, "output_mask", (True, True, True))
    fwd = 2 * conv_macs(inp.shape, w.shape, grad.shape, transposed)
    return OpCost(mm=fwd * (int(bool(mask[0])) + int(bool(mask[1]))), other=grad.numel() if mask[2] else 0)


def _mm_cost(first: int) -> CostRule:
    """``mm``/``addmm``: 2·m·n·k; ``bmm``/``baddbmm``: 2·b·m·n·k (FlopCounterMode's formulas)."""

    def cost(args: tuple, kwargs: dict, x: Tensor, o: Tensor) -> OpCost:
        a, b = args[first], args[first + 1]
        return OpCost(mm=2 * math.prod(a.shape) * b.shape[-1])

    return cost


def _registry_rule(packet: Any) -> CostRule:
    """A product the table does not name but torch's ``flop_registry`` counts (attention, ...)."""
    formula = flop_registry[packet]

    def cost(args: tuple, kwargs: dict, x: Tensor, o: Any) -> OpCost:
        return OpCost(mm=int(formula(*args, **kwargs, out_val=o)))

    return cost


def pool_params(args: tuple, kwargs: dict, dilated: bool) -> tuple[tuple, tuple, tuple, tuple]:
    """(kernel, stride, padding, dilation) of a max or average pool (stride defaults to kernel)."""
    k = arg(args, kwargs, 1, "kernel_size", 1)
    n = 1 if isinstance(k, int) else len(k)
    k = as_tuple(k, n)
    st = arg(args, kwargs, 2, "stride", None)
    st = k if st is None or (not isinstance(st, int) and len(st) == 0) else as_tuple(st, n)
    p = as_tuple(arg(args, kwargs, 3, "padding", 0), n)
    d = as_tuple(arg(args, kwargs, 4, "dilation", 1), n) if dilated else (1,) * n
    return k, st, p, d


def _pool_cost(dilated: bool) -> CostRule:
    def cost(args: tuple, kwargs: dict, x: Tensor, o: Tensor) -> OpCost:
        k, st, p, _ = pool_params(args, kwargs, dilated)
        return OpCost(pool=o.numel() * math.prod(k), geom=Geometry(k, st, p))

    return cost


def adaptive_cost(args: tuple, kwargs: dict, x: Tensor, o: Tensor) -> OpCost:
    """B·C·(sum of the window sizes actually used): B·A·Kh·Kw when the windows are even."""
    n = o.dim() - 2
    ins, outs = x.shape[-n:], o.shape[-n:]
    total = o.numel() // max(math.prod(outs), 1)
    ks, sts = [], []
    for i_, o_ in zip(ins, outs, strict=True):
        sizes = [-(-((j + 1) * i_) // o_) - (j * i_) // o_ for j in range(o_)]
        total *= sum(sizes)
        ks.append(max(sizes))
        sts.append(i_ // o_ if i_ % o_ == 0 else i_ / o_)
    return OpCost(pool=total, geom=Geometry(tuple(ks), tuple(sts), (0,) * n))


def reduces_spatial(args: tuple, x: Tensor) -> bool:
    """A reduction over every spatial dim and no other (a global pool written as ``x.mean((2, 3))``)."""
    if x.dim() < 3:
        return False
    dims = args[1] if len(args) > 1 else None
    if dims is None or (isinstance(dims, list | tuple) and len(dims) == 0):
        return False
    dims = [dims] if isinstance(dims, int) else list(dims)
    nd = x.dim()
    dims = {d % nd for d in dims}
    return set(range(2, nd)) <= dims and 0 not in dims and 1 not in dims


def reduce_cost(args: tuple, kwargs: dict, x: Tensor, o: Tensor) -> OpCost:
    if reduces_spatial(args, x):
        sp = tuple(x.shape[2:])
        return OpCost(pool=x.numel(), geom=Geometry(sp, sp, (0,) * len(sp)))
    return OpCost(other=x.numel())


# -- costs of the backward pass ------------------------------------------------------------------


def batch_norm_backward_cost(args: tuple, kwargs: dict, x: Tensor, o: Any) -> OpCost:
    """The arithmetic of ATen's CPU kernel (``batch_norm_backward_cpu_template``), per value: the
    two sums Σdy and Σ(x − μ)·dy (4), then dx = (dy − mean(dy) − (x − μ)·k)·σ⁻¹γ (5): 9 with the
    input's gradient, 4 (the sums, which give γ's and β's gradients) without."""
    mask = arg(args, kwargs, 9, "output_mask", (True, True, True))
    return OpCost(other=(9 if mask[0] else 4) * args[1].numel())


def norm_backward_cost(args: tuple, kwargs: dict, x: Tensor, o: Any) -> OpCost:
    """Layer and group norm: as batch norm's, 9 per value of the input."""
    return OpCost(other=9 * args[1].numel())


def max_pool_backward_cost(args: tuple, kwargs: dict, x: Tensor, o: Any) -> OpCost:
    """Each output gradient is added to the one input position its index names: B·A_out."""
    return OpCost(other=args[0].numel())


def avg_pool_backward_cost(args: tuple, kwargs: dict, x: Tensor, o: Any) -> OpCost:
    """Each output gradient is spread over its window, as the forward summed it: B·A_out·Kh·Kw."""
    k, _, _, _ = pool_params(args[1:], {}, dilated=False)
    return OpCost(pool=args[0].numel() * math.prod(k))


def adaptive_backward_cost(args: tuple, kwargs: dict, x: Tensor, o: Any) -> OpCost:
    """The windows the forward summed, spread back: the forward's count."""
    return OpCost(pool=adaptive_cost((), {}, args[1], args[0]).pool)


# -- receptive-field rules -------------------------------------------------------------------------


def same_field(func: Any, args: tuple, kwargs: dict, ins: list, o: Tensor) -> Field:
    return fields.merge(func, ins, o)


def view_field(func: Any, args: tuple, kwargs: dict, ins: list, o: Tensor) -> Field:
    """A view that keeps the map's trailing dims keeps its field (a channel shuffle's reshapes); one
    that moves the positions off them (a flatten, or CapsNet's capsules laid out position-major)
    makes them entries that the next op may mix, as after a flatten: the whole map's field."""
    x, f = ins[0]
    n = len(f.size)
    keeps = o.dim() >= n + 2 and tuple(o.shape[-n:]) == tuple(x.shape[-n:])
    if len(ins) != 1 or f.error or f.whole_input or n == 0 or keeps or o.numel() != x.numel():
        return fields.merge(func, ins, o)
    return fields.whole(f, tuple(x.shape[-n:]))


def conv_field(func: Any, args: tuple, kwargs: dict, ins: list, o: Tensor) -> Field:
    if arg(args, kwargs, 6, "transposed", False):
        return Field.unknown("receptive field not tracked through a transposed convolution")
    w = args[1]
    n = w.dim() - 2
    st = as_tuple(arg(args, kwargs, 3, "stride", 1), n)
    p = as_tuple(arg(args, kwargs, 4, "padding", 0), n)
    d = as_tuple(arg(args, kwargs, 5, "dilation", 1), n)
    return fields.window(ins[0][1], tuple(w.shape[2:]), st, p, d)


def _pool_field(dilated: bool) -> FieldRule:
    def field(func: Any, args: tuple, kwargs: dict, ins: list, o: Tensor) -> Field:
        return fields.window(ins[0][1], *pool_params(args, kwargs, dilated))

    return field


def adaptive_field(func: Any, args: tuple, kwargs: dict, ins: list, o: Tensor) -> Field:
    x, f = ins[0]
    n = len(f.size)
    i_sz, o_sz = tuple(x.shape[-n:]), tuple(o.shape[-n:])
    if all(v == 1 for v in o_sz):
        return fields.whole(f, i_sz)
    if any(i_ % o_ for i_, o_ in zip(i_sz, o_sz, strict=True)):
        return fields.uneven_window(f, i_sz, o_sz)
    k = tuple(i_ // o_ for i_, o_ in zip(i_sz, o_sz, strict=True))
    return fields.window(f, k, k, (0,) * n, (1,) * n)


def reduce_field(func: Any, args: tuple, kwargs: dict, ins: list, o: Tensor) -> Field:
    x, f = ins[0]
    if reduces_spatial(args, x):
        return fields.whole(f, tuple(x.shape[2:]))
    return fields.merge(func, ins, o)


def slice_field(func: Any, args: tuple, kwargs: dict, ins: list, o: Tensor) -> Field:
    """``x[..., start::step]`` along a spatial dim keeps every step-th unit from start on."""
    x, f = ins[0]
    dim = arg(args, kwargs, 1, "dim", 0)
    a = fields.spatial_axis(f, x, dim)
    if a is None:
        return fields.merge(func, ins, o)
    start = arg(args, kwargs, 2, "start", 0) or 0
    step = arg(args, kwargs, 4, "step", 1) or 1
    if start < 0:
        start += x.shape[dim]
    return fields.shifted(f, a, start, step)


def pad_field(func: Any, args: tuple, kwargs: dict, ins: list, o: Tensor) -> Field:
    """Padding moves the first unit's centre back by the padding before it (in input pixels)."""
    x, f = ins[0]
    if len(ins) != 1 or f.whole_input:
        return fields.merge(func, ins, o)
    n = len(f.size)
    pads = list(arg(args, kwargs, 1, "pad", []))
    before = [0] * n
    for a in range(min(n, len(pads) // 2)):  # pairs run from the last dim backwards
        before[n - 1 - a] = pads[2 * a]
    if tuple(o.shape[-n:]) == tuple(x.shape[-n:]) or pads:
        return Field(f.size, f.jump, tuple(f.start[i] - before[i] * f.jump[i] for i in range(n)))
    return fields.merge(func, ins, o)


def split_fields(func: Any, args: tuple, kwargs: dict, ins: list, outs: list[Tensor]) -> list[Field]:
    """``split``/``chunk``: output k starts where outputs 0..k-1 end along the split dim."""
    x, f = ins[0]
    dim = arg(args, kwargs, 2, "dim", 0)
    a = fields.spatial_axis(f, x, dim)
    if a is None:  # a channel split: every output sees what the input saw
        return [f] * len(outs)
    out, offset = [], 0
    for o in outs:
        out.append(fields.shifted(f, a, offset))
        offset += o.shape[dim]
    return out


def unbind_fields(func: Any, args: tuple, kwargs: dict, ins: list, outs: list[Tensor]) -> list[Field]:
    """``unbind``: along a spatial dim, output k is row k of the map, with that axis gone."""
    x, f = ins[0]
    a = fields.spatial_axis(f, x, arg(args, kwargs, 1, "dim", 0))
    if a is None:
        return [f] * len(outs)

    def drop(t: tuple) -> tuple:
        return t[:a] + t[a + 1 :]

    return [Field(drop(f.size), drop(f.jump), drop(fields.shifted(f, a, k).start)) for k in range(len(outs))]


# -- workspaces (transients of the training step) -----------------------------------------------------
# x86 CPUs run float convolutions through oneDNN, which works in a blocked layout whose channels
# are padded to the vector width (16 floats with AVX-512, 8 with AVX2): the forward writes its
# output there and reorders it out; the backward reorders the output gradient in and writes the
# input gradient there. Measured with the torch profiler (benchmarks/analyzer_memory.py), these
# buffers decide the peak of small nets (LeNet-5's 6-channel C1: 16/6 of its output).


def _cpu_block() -> int:
    try:
        return 16 if "AVX512" in torch.backends.cpu.get_cpu_capability() else 8
    except Exception:  # pragma: no cover - builds without the query
        return 8


_BLOCK = _cpu_block()


def _blocked_bytes(t: Tensor | None) -> int:
    if t is None or t.dim() < 3 or not t.is_floating_point():
        return 0
    c = -(-t.shape[1] // _BLOCK) * _BLOCK
    return t.numel() // max(t.shape[1], 1) * c * t.element_size()


def conv_scratch(args: tuple, out: Any) -> int:
    """A convolution's blocked-layout output while it runs (oneDNN, see above)."""
    return _blocked_bytes(out if isinstance(out, Tensor) else None)


def conv_backward_scratch(args: tuple, out: Any) -> int:
    """The blocked output gradient, and the blocked input gradient when it is computed."""
    grad_in = out[0] if isinstance(out, tuple | list) and out else None
    return _blocked_bytes(args[0]) + _blocked_bytes(grad_in)


# -- row-type rules ----------------------------------------------------------------------------------


def op_name(pk: Any, x: Tensor, o: Tensor, cost: OpCost) -> str:
    return pk.__name__.rstrip("_")


def linear_or_matmul(pk: Any, x: Tensor, o: Tensor, cost: OpCost) -> str:
    return "linear" if o.dim() == 2 else "matmul"


def pool_or_reduction(pk: Any, x: Tensor, o: Tensor, cost: OpCost) -> str:
    return "pool" if cost.pool else op_name(pk, x, o, cost)


def view_or_flatten(pk: Any, x: Tensor, o: Tensor, cost: OpCost) -> str:
    """A view that drops the map's trailing dims is a flatten; one that keeps them (the reshapes
    of a channel shuffle) is a view."""
    if o.dim() < x.dim() and (o.dim() <= 2 or tuple(o.shape[-2:]) != tuple(x.shape[-2:])):
        return "flatten"
    return "view"


# -- the table -------------------------------------------------------------------------------------

CONV = OpRule("conv", conv_cost, conv_field, scratch=conv_scratch)
MAX_POOL = OpRule("pool", _pool_cost(dilated=True), _pool_field(dilated=True))
AVG_POOL = OpRule("pool", _pool_cost(dilated=False), _pool_field(dilated=False))
ADAPTIVE_POOL = OpRule("pool", adaptive_cost, adaptive_field)
REDUCE = OpRule(pool_or_reduction, reduce_cost, reduce_field)
ACT = OpRule("act", elementwise, same_field)
BATCH_NORM = OpRule("norm", per_output(2), same_field)
NORM = OpRule("norm", per_output(4), same_field)
ADD = OpRule("add", elementwise, same_field)
MUL = OpRule("mul", elementwise, same_field)
CONCAT = OpRule("concat", no_cost, same_field)
SOFTMAX = OpRule("softmax", per_output(3), same_field)
PAD = OpRule("pad", no_cost, pad_field)
DROPOUT = OpRule("dropout", no_cost, same_field)
COPY = OpRule("copy", no_cost, same_field)
VIEW = OpRule(view_or_flatten, no_cost, view_field, aliases=True)
SLICE = OpRule("view", no_cost, slice_field, aliases=True)
SPLIT = OpRule("view", no_cost, split_fields, aliases=True, every_output=True)
UNBIND = OpRule("view", no_cost, unbind_fields, aliases=True, every_output=True)
MATMUL = OpRule(linear_or_matmul, no_cost, same_field)
LOSS = OpRule(op_name, per_input(3), same_field)
ELEMENTWISE_OP = OpRule(op_name, elementwise, same_field)
#: an op with no cost rule: 0 FLOPs, and the report's notes name it
UNSUPPORTED = OpRule(op_name, no_cost, same_field, supported=False)


def _no_row(rule: OpRule) -> OpRule:
    """Bookkeeping ops (detach, dtype casts, broadcasting views) and the backward pass's ops count
    inside a row, never as one."""
    return rule._replace(row=None)


def _shape(rule: OpRule, shape: ShapeRule) -> OpRule:
    return rule._replace(shape=shape)


def _grad(cost: CostRule, shape: ShapeRule | None = None, scratch: ScratchRule | None = None) -> OpRule:
    """An op of the backward pass: no row of its own, its cost, optionally a meta shape."""
    return OpRule(None, cost, same_field, shape=shape, scratch=scratch)


# fmt: off
_TABLE: tuple[tuple[str, OpRule], ...] = (
    ("convolution", _shape(CONV, conv_shape)),
    ("_convolution conv1d conv2d conv3d", CONV),
    ("max_pool2d max_pool3d", _shape(MAX_POOL, pool_shape(max_pool=True, indices=False))),
    ("max_pool2d_with_indices max_pool3d_with_indices",
     _shape(MAX_POOL, pool_shape(max_pool=True, indices=True))),
    ("max_pool1d max_pool1d_with_indices", MAX_POOL),
    ("avg_pool2d avg_pool3d", _shape(AVG_POOL, pool_shape(max_pool=False, indices=False))),
    ("avg_pool1d", AVG_POOL),
    ("_adaptive_avg_pool2d _adaptive_avg_pool3d", _shape(ADAPTIVE_POOL, adaptive_shape)),
    ("adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d "
     "adaptive_max_pool3d", ADAPTIVE_POOL),
    ("mean sum", _shape(REDUCE, reduce_shape)),
    ("amax amin max min std var logsumexp norm linalg_vector_norm argmax argmin prod", REDUCE),
    ("relu sigmoid tanh gelu silu hardswish hardsigmoid elu leaky_relu hardtanh mish softplus",
     _shape(ACT, unary_shape)),
    ("relu_ sigmoid_ silu_ hardswish_ leaky_relu_ elu_ hardtanh_", _shape(ACT, inplace_shape)),
    ("relu6 tanh_ gelu_ hardsigmoid_ selu selu_ celu celu_ mish_ _prelu_kernel prelu rrelu threshold "
     "threshold_ log_sigmoid log_sigmoid_forward softsign tanhshrink hardshrink softshrink", ACT),
    ("native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_no_training",
     _shape(BATCH_NORM, batch_norm_shape)),
    ("batch_norm _batch_norm_impl_index _native_batch_norm_legit_functional _batch_norm_with_update "
     "_batch_norm_no_update", BATCH_NORM),
    ("native_layer_norm", _shape(NORM, layer_norm_shape)),
    ("native_group_norm", _shape(NORM, group_norm_shape)),
    ("layer_norm group_norm instance_norm rms_norm _fused_rms_norm", NORM),
    ("add", _shape(ADD, binary_shape)),
    ("add_", _shape(ADD, inplace_shape)),
    ("mul sub div", _shape(MUL, binary_shape)),
    ("mul_ sub_ div_", _shape(MUL, inplace_shape)),
    ("rsub", MUL),
    ("clamp_ clamp_min_", _shape(ELEMENTWISE_OP, inplace_shape)),
    ("cat", _shape(CONCAT, cat_shape)),
    ("stack concat concatenate", CONCAT),
    ("_softmax _log_softmax _safe_softmax", _shape(SOFTMAX, unary_shape)),
    ("softmax log_softmax", SOFTMAX),
    ("constant_pad_nd", _shape(PAD, pad_shape)),
    ("pad reflection_pad1d reflection_pad2d reflection_pad3d replication_pad1d replication_pad2d "
     "replication_pad3d zero_pad2d", PAD),
    ("bernoulli_", _shape(DROPOUT, returns_self)),
    ("dropout native_dropout feature_dropout alpha_dropout bernoulli", DROPOUT),
    ("clone", _shape(COPY, unary_shape)),
    ("neg pow", _shape(ELEMENTWISE_OP, float_unary_shape)),
    ("index_put", _shape(COPY, index_put_shape)),
    ("index", _shape(COPY, index_shape)),
    ("copy_ index_select gather index_add index_add_ slice_scatter new_ones scatter "
     "scatter_add index_put_ masked_fill masked_fill_ where roll flip repeat tile narrow one_hot "
     "embedding "
     "upsample_nearest1d upsample_nearest2d upsample_nearest3d", COPY),
    ("zeros_like empty_like ones_like rand_like randn_like", _no_row(_shape(COPY, like_factory))),
    ("empty zeros ones", _no_row(_shape(COPY, empty_shape))),
    ("uniform_ normal_ fill_ zero_", _no_row(_shape(COPY, returns_self))),
    ("detach alias lift_fresh lift_fresh_copy _to_copy to contiguous new_zeros new_empty new_full "
     "full_like empty_strided new_empty_strided empty_permuted full arange scalar_tensor rand randn randint "
     "randperm linspace eye _local_scalar_dense", _no_row(COPY)),
    ("view", _shape(VIEW, view_shape)),
    # views that are not flagged ``is_view`` on every build
    ("reshape _unsafe_view flatten unflatten", VIEW),
    ("t expand unsqueeze squeeze select size sym_size stride", _no_row(VIEW)),
    ("slice", SLICE),
    # every output of a split is followed: ``chunk`` and ``torch.split`` dispatch as ``split``,
    # ``tensor_split`` as one ``slice`` per output
    ("split split_with_sizes unsafe_split unsafe_split_with_sizes", SPLIT),
    ("unbind", UNBIND),
    ("mm", MATMUL._replace(cost=_mm_cost(0), shape=mm_shape)),
    ("addmm", MATMUL._replace(cost=_mm_cost(1), shape=mm_shape)),
    ("bmm", MATMUL._replace(cost=_mm_cost(0), shape=bmm_shape)),
    ("baddbmm", MATMUL._replace(cost=_mm_cost(1), shape=bmm_shape)),
    ("nll_loss_forward", LOSS._replace(cost=per_input(1, 1), shape=nll_shape)),
    ("nll_loss2d_forward nll_loss nll_loss2d", LOSS._replace(cost=per_input(1, 1))),
    ("mse_loss l1_loss smooth_l1_loss huber_loss binary_cross_entropy binary_cross_entropy_with_logits "
     "soft_margin_loss kl_div", LOSS),
    # -- the backward pass ----------------------------------------------------------------------
    ("convolution_backward",
     _grad(conv_backward_cost, conv_backward_shape, conv_backward_scratch)),
    ("native_batch_norm_backward batch_norm_backward",
     _grad(batch_norm_backward_cost, batch_norm_backward_shape)),
    ("native_layer_norm_backward", _grad(norm_backward_cost, layer_norm_backward_shape)),
    ("native_group_norm_backward", _grad(norm_backward_cost)),
    ("max_pool2d_with_indices_backward max_pool3d_with_indices_backward adaptive_max_pool2d_backward "
     "adaptive_max_pool3d_backward", _grad(max_pool_backward_cost, like_arg(1))),
    ("avg_pool2d_backward avg_pool3d_backward", _grad(avg_pool_backward_cost, like_arg(1))),
    ("_adaptive_avg_pool2d_backward _adaptive_avg_pool3d_backward", _grad(adaptive_backward_cost, like_arg(1))),
    ("threshold_backward hardswish_backward hardsigmoid_backward elu_backward leaky_relu_backward "
     "hardtanh_backward softplus_backward mish_backward log_sigmoid_backward softshrink_backward "
     "hardshrink_backward gelu_backward silu_backward sigmoid_backward tanh_backward native_dropout_backward",
     _grad(elementwise, like_arg(0))),
    ("_prelu_kernel_backward rrelu_with_noise_backward", _grad(elementwise)),
    ("_softmax_backward_data _log_softmax_backward_data", _grad(per_output(3), like_arg(0))),
    ("nll_loss_backward", _grad(per_input(1, 2), like_arg(1))),
    ("nll_loss2d_backward", _grad(per_input(1, 2))),
    ("mse_loss_backward l1_loss_backward smooth_l1_loss_backward huber_loss_backward "
     "binary_cross_entropy_backward", _grad(per_input(3, 1))),
    ("select_backward slice_backward", _grad(no_cost, sized_grad(1))),
    ("index_select_backward embedding_dense_backward reflection_pad1d_backward reflection_pad2d_backward "
     "replication_pad1d_backward replication_pad2d_backward upsample_nearest2d_backward", _grad(no_cost)),
)
# fmt: on


def _build(table: tuple[tuple[str, OpRule], ...]) -> dict[Any, OpRule]:
    rules: dict[Any, OpRule] = {}
    for names, rule in table:
        for name in names.split():
            packet = getattr(aten, name, None)
            if packet is not None:  # ops this torch build does not have are left out
                rules[packet] = rule
    for packet in flop_registry:  # what torch counts as multiply-adds and the table does not name
        rules.setdefault(packet, MATMUL._replace(cost=_registry_rule(packet)))
    return rules


#: aten op packet -> its rule
OP_RULES: dict[Any, OpRule] = _build(_TABLE)


def rule_of(func: Any) -> OpRule:
    """The rule of an aten op overload: its packet's, else a view's, an elementwise op's (torch
    tags it ``pointwise``), or :data:`UNSUPPORTED`."""
    rule = OP_RULES.get(func._overloadpacket)
    if rule is None:
        if func.is_view:
            rule = VIEW
        elif torch.Tag.pointwise in func.tags:
            rule = ELEMENTWISE_OP
        else:
            rule = UNSUPPORTED
    return rule
