"""The op table: what the tracer does with each aten op, one line per family of ops.

As fvcore's ``flop_count.py`` maps an op to its handler (``_DEFAULT_SUPPORTED_OPS``), :data:`OP_RULES`
maps an aten op to an :class:`OpRule`: the type of the row it makes when it runs in a module's own
``forward``, its cost, how it moves the receptive field, and (for the few ops that make up nearly
all of a CNN's trace) its output shape on the meta device. Adding an op is one line in
:data:`_TABLE`, e.g. ``("hardswish hardswish_", ACT)``.

Ops not in the table: torch's ``FlopCounterMode`` ops (matrix products) are :data:`MATMUL`, other
views are :data:`VIEW`, anything else :data:`ELEMENTWISE_OP` (one FLOP per output value, a row
typed by the op's name; zoo models must not reach that, see ``tests/analysis/test_kinds.py``).

Conv and matrix-product FLOPs come from torch's own ``flop_registry`` (2 per multiply-add), not
from this table. Issue 16 adds what autograd saves per op as one more column of :class:`OpRule`.
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

__all__ = ["OpRule", "OpCost", "Geometry", "OP_RULES", "rule_of", "arg", "as_tuple"]

aten = torch.ops.aten


class Geometry(NamedTuple):
    """Kernel, stride and padding of a conv or pool op, per spatial axis."""

    kernel: tuple
    stride: tuple
    padding: tuple


class OpCost(NamedTuple):
    """The FLOPs of one op beyond torch's matrix-product count, and the window it slides."""

    pool: int = 0  # window reductions: B·A·Kh·Kw
    other: int = 0  # elementwise and normalising ops, by the per-op rules
    geom: Geometry | None = None


NO_COST = OpCost()

#: (args, kwargs, x, out) -> OpCost; x is the first input the tracer follows, out the first output
CostRule = Callable[[tuple, dict, Tensor, Tensor], OpCost]
#: (func, args, kwargs, [(input, its field)], out) -> the output's field; the first input's field
#: is known (the tracer passes an unknown one straight through). Ops with ``every_output`` get the
#: list of outputs and return one field per output.
FieldRule = Callable[[Any, tuple, dict, list, Any], Any]
#: args -> the output on the meta device, or None to run torch's meta kernel (which also raises
#: torch's own error for anything invalid); only called with a meta first argument and no kwargs
ShapeRule = Callable[[tuple], Any]
#: (op packet, x, out, cost) -> the row type
RowRule = Callable[[Any, Tensor, Tensor, OpCost], str]


class OpRule(NamedTuple):
    """What the tracer does with one aten op.

    ``row`` is the type of the row the op makes when it runs in a composite module's own
    ``forward`` (a str, a :data:`RowRule`, or None: never a row of its own, as ``detach``).
    ``aliases``: its output shares its input's storage (no activation memory). ``every_output``:
    each of its outputs is followed (``split``, ``unbind``); otherwise only the first.
    """

    row: str | RowRule | None
    cost: CostRule
    field: FieldRule
    shape: ShapeRule | None = None
    aliases: bool = False
    every_output: bool = False


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


def _empty(shape: Any, x: Tensor) -> Tensor:
    return torch.empty(shape, device="meta", dtype=x.dtype)


# -- cost rules ----------------------------------------------------------------------------------


def no_cost(args: tuple, kwargs: dict, x: Tensor, o: Tensor) -> OpCost:
    return NO_COST


def per_output(k: int) -> CostRule:
    """``k`` FLOPs per output value (floating-point outputs only)."""

    def cost(args: tuple, kwargs: dict, x: Tensor, o: Tensor) -> OpCost:
        return OpCost(other=k * o.numel()) if o.is_floating_point() else NO_COST

    return cost


elementwise = per_output(1)


def conv_geometry(args: tuple, kwargs: dict, x: Tensor, o: Tensor) -> OpCost:
    """The FLOPs are torch's count; the row shows the kernel, stride and padding."""
    w = args[1]
    n = w.dim() - 2
    if n < 1:
        return NO_COST
    st = as_tuple(arg(args, kwargs, 3, "stride", 1), n)
    p = as_tuple(arg(args, kwargs, 4, "padding", 0), n)
    return OpCost(geom=Geometry(tuple(w.shape[2:]), st, p))


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


# -- receptive-field rules -------------------------------------------------------------------------


def same_field(func: Any, args: tuple, kwargs: dict, ins: list, o: Tensor) -> Field:
    return fields.merge(func, ins, o)


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


# -- shape rules (meta device) ---------------------------------------------------------------------
# Under a dispatch mode torch runs its Python meta kernels (about 1 ms for ``relu_``, 7 ms for
# batch norm); these shapes are simple to compute directly.


def unary_shape(args: tuple) -> Tensor:
    return _empty(args[0].shape, args[0])


def inplace_shape(args: tuple) -> Tensor | None:
    x = args[0]
    other = args[1] if len(args) > 1 else None
    if isinstance(other, Tensor) and (
        other.dtype != x.dtype or not other.is_meta or torch.broadcast_shapes(x.shape, other.shape) != x.shape
    ):
        return None
    return x


def binary_shape(args: tuple) -> Tensor | None:
    x = args[0]
    if len(args) < 2 or not x.is_floating_point():
        return None
    other = args[1]
    if isinstance(other, Tensor):
        if other.dtype != x.dtype or not other.is_meta:
            return None
        return _empty(torch.broadcast_shapes(x.shape, other.shape), x)
    if isinstance(other, float):
        return _empty(x.shape, x)
    return None


def batch_norm_shape(args: tuple) -> tuple[Tensor, Tensor, Tensor]:
    x = args[0]
    c = x.shape[1] if x.dim() > 1 else 0
    return (_empty(x.shape, x), _empty((c,), x), _empty((c,), x))


def conv_shape(args: tuple) -> Tensor | None:
    if len(args) < 9:
        return None
    x, w = args[0], args[1]
    stride, padding, dilation, transposed, _, groups = args[3:9]
    n = w.dim() - 2
    if transposed or x.dim() != n + 2 or not w.is_meta or w.shape[1] * groups != x.shape[1]:
        return None
    if len(stride) != n or len(padding) != n or len(dilation) != n or w.dtype != x.dtype:
        return None
    size = [
        (x.shape[2 + i] + 2 * padding[i] - dilation[i] * (w.shape[2 + i] - 1) - 1) // stride[i] + 1
        for i in range(n)
    ]
    if min(size) < 1:
        return None
    return _empty((x.shape[0], w.shape[0], *size), x)


def pool_size(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    """One side of a pool's output, ``ceil_mode`` included (a window may not start in the padding)."""
    num = size + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool2d_shape(max_pool: bool, indices: bool) -> ShapeRule:
    def shape(args: tuple) -> Any:
        x = args[0]
        if x.dim() != 4:
            return None
        k = list(args[1])
        st = list(args[2]) if len(args) > 2 and len(args[2]) else k
        p = list(args[3]) if len(args) > 3 else [0]
        d = list(args[4]) if max_pool and len(args) > 4 else [1]
        ci = 5 if max_pool else 4
        ceil = bool(args[ci]) if len(args) > ci else False
        k, st, p, d = (v * 2 if len(v) == 1 else v for v in (k, st, p, d))
        if len(k) != 2 or any(2 * p[i] > k[i] for i in range(2)):
            return None
        size = [pool_size(x.shape[2 + i], k[i], st[i], p[i], d[i], ceil) for i in range(2)]
        if min(size) < 1:
            return None
        out = _empty((*x.shape[:2], *size), x)
        if indices:
            return (out, torch.empty(out.shape, device="meta", dtype=torch.int64))
        return out

    return shape


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

CONV = OpRule("conv", conv_geometry, conv_field)
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
VIEW = OpRule(view_or_flatten, no_cost, same_field, aliases=True)
SLICE = OpRule("view", no_cost, slice_field, aliases=True)
SPLIT = OpRule("view", no_cost, split_fields, aliases=True, every_output=True)
UNBIND = OpRule("view", no_cost, unbind_fields, aliases=True, every_output=True)
MATMUL = OpRule(linear_or_matmul, no_cost, same_field)
ELEMENTWISE_OP = OpRule(op_name, elementwise, same_field)


def _no_row(rule: OpRule) -> OpRule:
    """Bookkeeping ops (detach, dtype casts, broadcasting views) count inside a row, never as one."""
    return rule._replace(row=None)


def _shape(rule: OpRule, shape: ShapeRule) -> OpRule:
    return rule._replace(shape=shape)


# fmt: off
_TABLE: tuple[tuple[str, OpRule], ...] = (
    ("convolution", _shape(CONV, conv_shape)),
    ("_convolution conv1d conv2d conv3d", CONV),
    ("max_pool2d", _shape(MAX_POOL, _pool2d_shape(max_pool=True, indices=False))),
    ("max_pool2d_with_indices", _shape(MAX_POOL, _pool2d_shape(max_pool=True, indices=True))),
    ("max_pool1d max_pool3d max_pool1d_with_indices max_pool3d_with_indices", MAX_POOL),
    ("avg_pool2d", _shape(AVG_POOL, _pool2d_shape(max_pool=False, indices=False))),
    ("avg_pool1d avg_pool3d", AVG_POOL),
    ("_adaptive_avg_pool2d _adaptive_avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d "
     "adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d", ADAPTIVE_POOL),
    ("mean sum amax amin max min std var logsumexp", REDUCE),
    ("relu sigmoid tanh gelu silu hardswish hardsigmoid elu leaky_relu hardtanh mish softplus",
     _shape(ACT, unary_shape)),
    ("relu_ sigmoid_ silu_ hardswish_ leaky_relu_ elu_ hardtanh_", _shape(ACT, inplace_shape)),
    ("relu6 tanh_ gelu_ hardsigmoid_ selu selu_ celu celu_ mish_ _prelu_kernel prelu rrelu threshold "
     "threshold_ log_sigmoid softsign tanhshrink hardshrink softshrink", ACT),
    ("native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_no_training",
     _shape(BATCH_NORM, batch_norm_shape)),
    ("batch_norm _batch_norm_impl_index _native_batch_norm_legit_functional", BATCH_NORM),
    ("native_layer_norm native_group_norm layer_norm group_norm instance_norm rms_norm _fused_rms_norm",
     NORM),
    ("add", _shape(ADD, binary_shape)),
    ("add_", _shape(ADD, inplace_shape)),
    ("mul sub div", _shape(MUL, binary_shape)),
    ("mul_ sub_ div_", _shape(MUL, inplace_shape)),
    ("rsub", MUL),
    ("clamp_ clamp_min_", _shape(ELEMENTWISE_OP, inplace_shape)),
    ("cat stack concat concatenate", CONCAT),
    ("_softmax _log_softmax softmax log_softmax", SOFTMAX),
    ("constant_pad_nd pad reflection_pad1d reflection_pad2d reflection_pad3d replication_pad1d "
     "replication_pad2d replication_pad3d zero_pad2d", PAD),
    ("dropout native_dropout feature_dropout alpha_dropout bernoulli_", DROPOUT),
    ("clone", _shape(COPY, unary_shape)),
    ("copy_ index_select gather index_add index_add_ index slice_scatter new_ones fill_ zero_ scatter "
     "scatter_add index_put index_put_ masked_fill where roll flip repeat tile narrow", COPY),
    ("detach alias lift_fresh lift_fresh_copy _to_copy to contiguous new_zeros new_empty zeros_like "
     "empty_like ones_like", _no_row(COPY)),
    # views that are not flagged ``is_view`` on every build
    ("reshape _unsafe_view flatten unflatten", VIEW),
    ("t expand unsqueeze squeeze select size sym_size stride", _no_row(VIEW)),
    ("slice", SLICE),
    # every output of a split is followed: ``chunk`` and ``torch.split`` dispatch as ``split``,
    # ``tensor_split`` as one ``slice`` per output
    ("split split_with_sizes unsafe_split unsafe_split_with_sizes", SPLIT),
    ("unbind", UNBIND),
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
        rules.setdefault(packet, MATMUL)
    return rules


#: aten op packet -> its rule
OP_RULES: dict[Any, OpRule] = _build(_TABLE)


def rule_of(func: Any) -> OpRule:
    """The rule of an aten op overload: its packet's, else a view's or an elementwise op's."""
    rule = OP_RULES.get(func._overloadpacket)
    if rule is None:
        rule = VIEW if func.is_view else ELEMENTWISE_OP
    return rule
