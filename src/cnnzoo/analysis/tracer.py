"""The tracer behind :func:`cnnzoo.analysis.analyze`: one forward pass, recorded op by op.

A :class:`~torch.utils._python_dispatch.TorchDispatchMode` sees every aten op of the forward pass
(``+``, ``torch.add`` and ``torch.cat`` written inside ``forward`` included, which module hooks
alone miss), and global module pre/post hooks say which module each op runs in. On the meta
device the pass computes shapes only, so batch 128 at 224×224 costs nothing.

Per tensor the tracer keeps three things, keyed by ``id`` (the tensors are kept alive, so ids
are never reused during a trace):

* its receptive-field state ``Info = (r, j, start, err, flat)``: per spatial axis the receptive
  field ``r``, the jump ``j`` and the start offset (centre of the first unit's window, in input
  pixels, the first pixel's centre being 0); ``err`` says why it is unknown; ``flat`` marks a
  tensor that has lost its spatial layout (after global pooling or flatten) and sees the whole
  input;
* the id of the storage it aliases (views and in-place ops share their input's), so that rows
  which only alias their input cost no activation memory.

Rows are leaf modules (or modules with a ``cost_type``, whose ops all count for them) and
functional ops that run in a non-leaf module's own ``forward`` (residual adds, concats, flatten,
functional activations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

__all__ = ["Tracer", "RawRow", "Frame", "TraceError", "module_kind", "FastMetaInit"]

aten = torch.ops.aten

Info = tuple  # (r, j, start, err, flat)


class TraceError(RuntimeError):
    """The forward pass failed; ``module`` names the innermost module that was running."""

    def __init__(self, module: str, module_type: str, cause: BaseException) -> None:
        self.module = module
        self.module_type = module_type
        self.cause = cause
        where = f"inside module {module!r} ({module_type})" if module else "in the model's own forward"
        super().__init__(f"analysis failed {where}: {type(cause).__name__}: {cause}")


# ---------------------------------------------------------------------------------------------
# Op categories


def _packets(*names: str) -> list:
    out = []
    for n in names:
        p = getattr(aten, n, None)
        if p is not None:
            out.append(p)
    return out


_CAT: dict[Any, str] = {}


def _register(cat: str, *names: str) -> None:
    for p in _packets(*names):
        _CAT[p] = cat


_register("conv", "convolution", "_convolution", "conv2d", "conv1d", "conv3d")
_register(
    "maxpool",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
    "max_pool1d_with_indices",
)
_register("avgpool", "avg_pool1d", "avg_pool2d", "avg_pool3d")
_register(
    "adaptive",
    "_adaptive_avg_pool2d",
    "_adaptive_avg_pool3d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
)
_register("reduce", "mean", "sum", "amax", "amin", "max", "min", "std", "var", "logsumexp")
_register(
    "act",
    "relu",
    "relu_",
    "relu6",
    "sigmoid",
    "sigmoid_",
    "tanh",
    "tanh_",
    "gelu",
    "gelu_",
    "silu",
    "silu_",
    "hardswish",
    "hardswish_",
    "hardsigmoid",
    "hardsigmoid_",
    "hardtanh",
    "hardtanh_",
    "leaky_relu",
    "leaky_relu_",
    "elu",
    "elu_",
    "selu",
    "selu_",
    "celu",
    "celu_",
    "mish",
    "mish_",
    "softplus",
    "_prelu_kernel",
    "prelu",
    "rrelu",
    "threshold",
    "threshold_",
    "log_sigmoid",
    "softsign",
    "tanhshrink",
    "hardshrink",
    "softshrink",
)
_register(
    "bn",
    "native_batch_norm",
    "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training",
    "batch_norm",
    "_batch_norm_impl_index",
    "_native_batch_norm_legit_functional",
)
_register(
    "norm",
    "native_layer_norm",
    "native_group_norm",
    "layer_norm",
    "group_norm",
    "instance_norm",
    "rms_norm",
    "_fused_rms_norm",
)
_register("add", "add", "add_")
_register("mul", "mul", "mul_", "div", "div_", "sub", "sub_", "rsub")
_register("concat", "cat", "stack", "concat", "concatenate")
_register("softmax", "_softmax", "_log_softmax", "softmax", "log_softmax")
_register(
    "pad",
    "constant_pad_nd",
    "pad",
    "reflection_pad1d",
    "reflection_pad2d",
    "reflection_pad3d",
    "replication_pad1d",
    "replication_pad2d",
    "replication_pad3d",
    "zero_pad2d",
)
_register("dropout", "dropout", "native_dropout", "feature_dropout", "alpha_dropout", "bernoulli_")
_register(
    "copy",
    "clone",
    "contiguous",
    "_to_copy",
    "to",
    "copy_",
    "detach",
    "alias",
    "lift_fresh",
    "lift_fresh_copy",
    "index_select",
    "gather",
    "index_add",
    "index_add_",
    "index",
    "slice_scatter",
    "new_zeros",
    "new_empty",
    "new_ones",
    "zeros_like",
    "empty_like",
    "ones_like",
    "fill_",
    "zero_",
    "scatter",
    "scatter_add",
    "index_put",
    "index_put_",
    "masked_fill",
    "where",
    "roll",
    "flip",
    "repeat",
    "tile",
    "narrow",
)
# views that are not flagged ``is_view`` on every build
_register("view", "reshape", "_unsafe_view", "flatten", "unflatten")

_CONV_FAST = set(_packets("convolution"))
_INPLACE_FAST = set(
    _packets(
        "relu_",
        "add_",
        "mul_",
        "hardtanh_",
        "sigmoid_",
        "silu_",
        "hardswish_",
        "leaky_relu_",
        "elu_",
        "clamp_",
        "clamp_min_",
        "div_",
        "sub_",
    )
)
_UNARY_FAST = set(
    _packets(
        "relu",
        "sigmoid",
        "tanh",
        "gelu",
        "silu",
        "hardswish",
        "hardsigmoid",
        "elu",
        "leaky_relu",
        "hardtanh",
        "mish",
        "softplus",
        "clone",
    )
)
_BINARY_FAST = set(_packets("add", "mul", "sub", "div"))
_POOL_FAST = set(_packets("max_pool2d_with_indices", "max_pool2d", "avg_pool2d"))
_BN_FAST = set(
    _packets("native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training")
)

# type names for functional rows
_FUNC_TYPES = {
    "conv": "conv",
    "maxpool": "pool",
    "avgpool": "pool",
    "adaptive": "pool",
    "act": "act",
    "bn": "norm",
    "norm": "norm",
    "add": "add",
    "mul": "mul",
    "concat": "concat",
    "softmax": "softmax",
    "pad": "pad",
    "dropout": "dropout",
    "copy": "copy",
    "view": "view",
}
# ops that never make a functional row of their own
_SKIP = set(
    _packets(
        "detach",
        "alias",
        "lift_fresh",
        "lift_fresh_copy",
        "t",
        "_to_copy",
        "to",
        "contiguous",
        "expand",
        "unsqueeze",
        "squeeze",
        "select",
        "slice",
        "new_zeros",
        "new_empty",
        "zeros_like",
        "empty_like",
        "ones_like",
        "size",
        "sym_size",
        "stride",
    )
)

# ---------------------------------------------------------------------------------------------
# Module kinds (the row's ``type``)

_ACT_MODULES = tuple(
    c
    for c in vars(nn.modules.activation).values()
    if isinstance(c, type)
    and issubclass(c, nn.Module)
    and c.__module__ == nn.modules.activation.__name__
    and c.__name__ not in ("MultiheadAttention", "Softmax", "Softmin", "LogSoftmax", "Softmax2d", "Module")
)

_MODULE_KINDS: tuple[tuple[type, str], ...] = (
    (nn.modules.conv._ConvNd, "conv"),
    (nn.Linear, "linear"),
    (nn.Bilinear, "linear"),
    (nn.modules.pooling._MaxPoolNd, "pool"),
    (nn.modules.pooling._AvgPoolNd, "pool"),
    (nn.modules.pooling._AdaptiveAvgPoolNd, "pool"),
    (nn.modules.pooling._AdaptiveMaxPoolNd, "pool"),
    (nn.modules.pooling._LPPoolNd, "pool"),
    (nn.modules.batchnorm._BatchNorm, "norm"),
    (nn.modules.instancenorm._InstanceNorm, "norm"),
    (nn.GroupNorm, "norm"),
    (nn.LayerNorm, "norm"),
    (nn.LocalResponseNorm, "lrn"),
    (nn.CrossMapLRN2d, "lrn"),
    (nn.modules.dropout._DropoutNd, "dropout"),
    (nn.Flatten, "flatten"),
    (nn.Unflatten, "flatten"),
    (nn.Softmax, "softmax"),
    (nn.LogSoftmax, "softmax"),
    (nn.Softmin, "softmax"),
    (nn.Softmax2d, "softmax"),
    (nn.Identity, "identity"),
    (nn.modules.padding._ConstantPadNd, "pad"),
    (nn.modules.padding._ReflectionPadNd, "pad"),
    (nn.modules.padding._ReplicationPadNd, "pad"),
    (_ACT_MODULES, "act"),
)

_kind_cache: dict[type, str | None] = {}

#: ``cost_type`` values of modules that hold other rows (a module with children and one of these is
#: not a row itself; ``depth=K`` folds it)
COMPOSITE_KINDS = frozenset({"block", "stage", "inception", "residual", "sequential", "container", "stem"})


def module_kind(module: nn.Module) -> str | None:
    """The row type of a module: its ``cost_type`` if it declares one, else a known torch class's."""
    cls = type(module)
    if cls in _kind_cache:
        return _kind_cache[cls]
    kind = getattr(cls, "cost_type", None)
    if kind is None:
        for base, k in _MODULE_KINDS:
            if issubclass(cls, base):
                kind = k
                break
    _kind_cache[cls] = kind
    return kind


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(eq=False)
class Frame:
    """One call of a named module."""

    name: str
    module: nn.Module
    parent: Frame | None
    depth: int  # call depth below the root (root = 0)
    inputs: list[Tensor] = field(default_factory=list)
    out: Any = None
    first_row: int = -1


@dataclass(eq=False)
class RawRow:
    """One row as traced: a leaf module call or a functional op in a non-leaf forward."""

    name: str
    kind: str  # row type
    chain: tuple[Frame, ...]  # enclosing (non-root) frames, outermost first; a module row's own last
    module: nn.Module | None
    op: str | None = None
    inputs: list[Tensor] = field(default_factory=list)
    out: Any = None
    mm_flops: int = 0  # convolutions and matrix products, 2 per multiply-add (FlopCounterMode's count)
    pool_flops: int = 0
    other_flops: int = 0  # everything else, by the per-op rules
    geom: tuple | None = None  # (kernel, stride, padding) of the first conv/pool op
    params: int = 0
    n_ops: int = 0

    @property
    def functional(self) -> bool:
        return self.module is None


def _tuple(v: Any, n: int) -> tuple:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(v)
    if len(v) == 1 and n > 1:
        return v * n
    return v


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _first_tensor(x: Any) -> Tensor | None:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, list | tuple):
        for v in x:
            t = _first_tensor(v)
            if t is not None:
                return t
    if isinstance(x, dict):
        for v in x.values():
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


def _whole(info: Info, spatial: tuple[int, ...]) -> Info:
    """A unit that sees the whole map: as if a kernel the size of the map, stride = size."""
    r, j, s, err, flat = info
    if err or flat:
        return info if flat else (r, j, s, err, True)
    n = len(r)
    sp = spatial[-n:] if len(spatial) >= n else (1,) * n
    nr = tuple(r[i] + (sp[i] - 1) * j[i] for i in range(n))
    ns = tuple(s[i] + (sp[i] - 1) / 2 * j[i] for i in range(n))
    nj = tuple(j[i] * sp[i] for i in range(n))
    return (nr, nj, ns, None, True)


def _window(info: Info, k: tuple, st: tuple, p: tuple, d: tuple) -> Info:
    r, j, s, err, flat = info
    if err or flat:
        return info
    n = len(r)
    k, st, p, d = k[-n:], st[-n:], p[-n:], d[-n:]
    keff = [d[i] * (k[i] - 1) + 1 for i in range(n)]
    nr = tuple(r[i] + (keff[i] - 1) * j[i] for i in range(n))
    ns = tuple(s[i] + ((keff[i] - 1) / 2 - p[i]) * j[i] for i in range(n))
    nj = tuple(j[i] * st[i] for i in range(n))
    return (nr, nj, ns, None, False)


def _empty(shape, x: Tensor) -> Tensor:
    return torch.empty(shape, device="meta", dtype=x.dtype)


def _pool_size(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    num = size + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def _fast_meta(pk, args: tuple, kwargs: dict) -> Any:
    """Output shapes for the ops that make up nearly all of a CNN's trace.

    Under a dispatch mode torch runs its Python meta kernels (about 1 ms for ``relu_``, 7 ms for
    batch norm); these shapes are simple to compute directly. Returns None to run torch's meta
    kernel instead, which also raises torch's own error for anything invalid.
    """
    if not args or not isinstance(args[0], Tensor) or not args[0].is_meta or kwargs:
        return None
    x = args[0]
    if pk in _INPLACE_FAST:
        other = args[1] if len(args) > 1 else None
        if isinstance(other, Tensor) and (
            other.dtype != x.dtype
            or not other.is_meta
            or torch.broadcast_shapes(x.shape, other.shape) != x.shape
        ):
            return None
        return x
    if pk in _UNARY_FAST:
        return _empty(x.shape, x)
    if pk in _BINARY_FAST and len(args) >= 2 and x.is_floating_point():
        other = args[1]
        if isinstance(other, Tensor):
            if other.dtype != x.dtype or not other.is_meta:
                return None
            return _empty(torch.broadcast_shapes(x.shape, other.shape), x)
        if isinstance(other, float) and x.is_floating_point():
            return _empty(x.shape, x)
        return None
    if pk in _BN_FAST:
        c = x.shape[1] if x.dim() > 1 else 0
        return (_empty(x.shape, x), _empty((c,), x), _empty((c,), x))
    if pk in _CONV_FAST and len(args) >= 9:
        w = args[1]
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
    if pk in _POOL_FAST and x.dim() == 4:
        k = list(args[1])
        st = list(args[2]) if len(args) > 2 and len(args[2]) else k
        p = list(args[3]) if len(args) > 3 else [0]
        max_pool = pk is not aten.avg_pool2d
        d = list(args[4]) if max_pool and len(args) > 4 else [1]
        ci = 5 if max_pool else 4
        ceil = bool(args[ci]) if len(args) > ci else False
        k, st, p, d = (v * 2 if len(v) == 1 else v for v in (k, st, p, d))
        if len(k) != 2 or any(2 * p[i] > k[i] for i in range(2)):
            return None
        size = [_pool_size(x.shape[2 + i], k[i], st[i], p[i], d[i], ceil) for i in range(2)]
        if min(size) < 1:
            return None
        out = _empty((*x.shape[:2], *size), x)
        if pk is aten.max_pool2d_with_indices:
            return (out, torch.empty(out.shape, device="meta", dtype=torch.int64))
        return out
    return None


def _err(msg: str) -> Info:
    return (None, None, None, msg, False)


class Tracer(TorchDispatchMode):
    """Records rows while a model runs under it; see the module docstring."""

    def __init__(self, names: dict[int, str], root: nn.Module) -> None:
        super().__init__()
        self.names = names
        self.root = root
        self.info: dict[int, Info] = {}
        self.alias: dict[int, int] = {}
        self.keep: list[Tensor] = []
        self.rows: list[RawRow] = []
        self.frames: list[Frame] = []
        self.stack: list[Frame] = []
        self.name_stack: list[tuple[str, nn.Module]] = []
        self.row: RawRow | None = None
        self.row_depth = 0
        self.seen_params: set[int] = set()
        self.func_count: dict[tuple[str, str], int] = {}
        self.notes: list[str] = []

    # -- tensors -------------------------------------------------------------------------------
    def mark_input(self, x: Tensor) -> None:
        n = max(x.dim() - 2, 0)
        self.info[id(x)] = ((1,) * n, (1,) * n, (0.0,) * n, None, n == 0)
        self.keep.append(x)

    def info_of(self, x: Any) -> Info | None:
        t = _first_tensor(x)
        return None if t is None else self.info.get(id(t))

    def root_of(self, t: Tensor) -> int:
        i = id(t)
        return self.alias.get(i, i)

    # -- hooks -----------------------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        name = self.names.get(id(module))
        if name is None:
            return
        self.name_stack.append((name, module))
        if self.row_depth:
            self.row_depth += 1
            return
        if module is self.root:
            return
        parent = self.stack[-1] if self.stack else None
        frame = Frame(name, module, parent, (parent.depth if parent else 0) + 1)
        frame.inputs = [a for a in args if isinstance(a, Tensor)]
        frame.first_row = len(self.rows)
        self.stack.append(frame)
        self.frames.append(frame)
        kind = module_kind(module)
        leaf = next(iter(module.children()), None) is None
        if leaf or (kind is not None and kind not in COMPOSITE_KINDS):
            if kind is None:
                kind = type(module).__name__.lower()
            calls = self.func_count.get(("#", name), 0) + 1
            self.func_count[("#", name)] = calls
            row = RawRow(name if calls == 1 else f"{name}#{calls}", kind, tuple(self._chain()), module)
            row.inputs = frame.inputs
            n = 0
            for p in module.parameters():
                if id(p) not in self.seen_params:
                    self.seen_params.add(id(p))
                    n += p.numel()
            row.params = n
            self.row = row
            self.row_depth = 1

    def post_hook(self, module: nn.Module, args: tuple, out: Any) -> None:
        if id(module) not in self.names:
            return
        if self.name_stack:
            self.name_stack.pop()
        if self.row_depth > 1:
            self.row_depth -= 1
            return
        if module is self.root:
            return
        frame = self.stack.pop()
        frame.out = out
        if self.row_depth == 1:
            row = self.row
            row.out = out
            self.row = None
            self.row_depth = 0
            if row.kind != "identity":
                self.rows.append(row)

    def _chain(self) -> list[Frame]:
        return list(self.stack)

    def current_module(self) -> tuple[str, str]:
        if not self.name_stack:
            return "", type(self.root).__name__
        name, mod = self.name_stack[-1]
        return name, type(mod).__name__

    # -- ops -------------------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        pk = func._overloadpacket
        try:
            out = _fast_meta(pk, args, kwargs)
        except Exception:  # a shape rule that does not fit: torch's own meta kernel decides
            out = None
        if out is None:
            out = func(*args, **kwargs)
        fl = flop_registry.get(pk)
        mm = int(fl(*args, **kwargs, out_val=out)) if fl is not None else 0
        info = self.info
        ins: list[tuple[Tensor, Info]] = []
        for a in args:
            if isinstance(a, Tensor):
                i = info.get(id(a))
                if i is not None:
                    ins.append((a, i))
            elif isinstance(a, list | tuple) and a and isinstance(a[0], Tensor):
                for b in a:
                    i = info.get(id(b))
                    if i is not None:
                        ins.append((b, i))
        row = self.row
        if not ins:
            if mm and row is not None:
                row.mm_flops += mm
            return out
        o = out if isinstance(out, Tensor) else _first_tensor(out)
        if o is None:
            return out
        cat = _CAT.get(pk)
        if cat is None and func.is_view:
            cat = "view"
        x0 = ins[0][0]
        # receptive field of the output
        try:
            oinfo = self._propagate(cat, func, args, kwargs, ins, o)
        except Exception as e:  # never let bookkeeping break a trace
            oinfo = _err(f"receptive field not tracked through {func}: {e}")
        info[id(o)] = oinfo
        self.keep.append(o)
        # storage aliasing: views and in-place ops share their input's storage
        if cat == "view" or func.is_view or o is x0 or (args and o is args[0]):
            base = args[0] if args and isinstance(args[0], Tensor) else x0
            self.alias[id(o)] = self.root_of(base)
        # cost
        pool = other = 0
        geom = None
        if mm:
            if cat == "conv":
                geom = self._conv_geom(args, kwargs)
        elif cat in ("maxpool", "avgpool"):
            pool, geom = self._pool_cost(cat, args, kwargs, x0, o)
        elif cat == "adaptive":
            pool, geom = self._adaptive_cost(x0, o)
        elif cat == "reduce":
            if self._reduces_spatial(args, x0):
                pool = x0.numel()
                n = x0.dim() - 2
                geom = (tuple(x0.shape[2:]), tuple(x0.shape[2:]), (0,) * n)
            else:
                other = x0.numel()
        else:
            other = self._other_cost(cat, o, x0)
        if row is not None:
            row.mm_flops += mm
            row.pool_flops += pool
            row.other_flops += other
            row.n_ops += 1
            if geom is not None and row.geom is None:
                row.geom = geom
            return out
        if pk in _SKIP:
            return out
        # a functional op in a non-leaf forward: a row of its own
        kind = _FUNC_TYPES.get(cat or "", None)
        if cat == "reduce" and pool:
            kind = "pool"
        if kind == "view" and o.dim() < x0.dim():
            kind = "flatten"
        if kind is None:
            kind = pk.__name__.rstrip("_") if mm == 0 else ("linear" if o.dim() == 2 else "matmul")
        if cat is None and mm:
            kind = "linear" if o.dim() == 2 else "matmul"
        parent = self.stack[-1] if self.stack else None
        prefix = f"{parent.name}." if parent else ""
        base = kind
        key = (prefix, base)
        c = self.func_count.get(key, 0)
        self.func_count[key] = c + 1
        name = f"{prefix}{base}" + (f"_{c}" if c else "")
        row = RawRow(name, kind, tuple(self.stack), None, op=str(func))
        row.inputs = [t for t, _ in ins]
        row.out = o
        row.mm_flops, row.pool_flops, row.other_flops, row.geom, row.n_ops = mm, pool, other, geom, 1
        n = 0
        for a in args:
            if isinstance(a, nn.Parameter) and id(a) not in self.seen_params:
                self.seen_params.add(id(a))
                n += a.numel()
        row.params = n
        self.rows.append(row)
        return out

    # -- rules -----------------------------------------------------------------------------------
    @staticmethod
    def _conv_geom(args: tuple, kwargs: dict) -> tuple | None:
        w = args[1]
        n = w.dim() - 2
        if n < 1:
            return None
        st = _tuple(_arg(args, kwargs, 3, "stride", 1), n)
        p = _tuple(_arg(args, kwargs, 4, "padding", 0), n)
        return (tuple(w.shape[2:]), st, p)

    @staticmethod
    def _pool_params(cat: str, args: tuple, kwargs: dict) -> tuple:
        k = _arg(args, kwargs, 1, "kernel_size", 1)
        n = 1 if isinstance(k, int) else len(k)
        k = _tuple(k, n)
        st = _arg(args, kwargs, 2, "stride", None)
        st = k if st is None or (not isinstance(st, int) and len(st) == 0) else _tuple(st, n)
        p = _tuple(_arg(args, kwargs, 3, "padding", 0), n)
        d = _tuple(_arg(args, kwargs, 4, "dilation", 1), n) if cat == "maxpool" else (1,) * n
        return k, st, p, d

    def _pool_cost(self, cat: str, args: tuple, kwargs: dict, x: Tensor, o: Tensor) -> tuple[int, tuple]:
        k, st, p, _ = self._pool_params(cat, args, kwargs)
        return o.numel() * math.prod(k), (k, st, p)

    @staticmethod
    def _adaptive_cost(x: Tensor, o: Tensor) -> tuple[int, tuple]:
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
        return total, (tuple(ks), tuple(sts), (0,) * n)

    @staticmethod
    def _reduces_spatial(args: tuple, x: Tensor) -> bool:
        if x.dim() < 3:
            return False
        dims = args[1] if len(args) > 1 else None
        if dims is None or (isinstance(dims, list | tuple) and len(dims) == 0):
            return False
        dims = [dims] if isinstance(dims, int) else list(dims)
        nd = x.dim()
        dims = {d % nd for d in dims}
        return set(range(2, nd)) <= dims and 0 not in dims and 1 not in dims

    @staticmethod
    def _other_cost(cat: str | None, o: Tensor, x: Tensor) -> int:
        if cat in ("view", "concat", "pad", "copy", "dropout") or not o.is_floating_point():
            return 0
        if cat == "bn":
            return 2 * o.numel()
        if cat == "norm":
            return 4 * o.numel()
        if cat == "softmax":
            return 3 * o.numel()
        return o.numel()

    def _propagate(self, cat, func, args, kwargs, ins, o: Tensor) -> Info:
        x, xi = ins[0]
        if xi[3]:
            return xi
        if cat == "conv":
            if _arg(args, kwargs, 6, "transposed", False):
                return _err("receptive field not tracked through a transposed convolution")
            w = args[1]
            n = w.dim() - 2
            k = tuple(w.shape[2:])
            st = _tuple(_arg(args, kwargs, 3, "stride", 1), n)
            p = _tuple(_arg(args, kwargs, 4, "padding", 0), n)
            d = _tuple(_arg(args, kwargs, 5, "dilation", 1), n)
            return _window(xi, k, st, p, d)
        if cat in ("maxpool", "avgpool"):
            k, st, p, d = self._pool_params(cat, args, kwargs)
            return _window(xi, k, st, p, d)
        if cat == "adaptive":
            n = len(xi[0])
            ins_, outs = tuple(x.shape[-n:]), tuple(o.shape[-n:])
            if all(v == 1 for v in outs):
                return _whole(xi, ins_)
            if any(i_ % o_ for i_, o_ in zip(ins_, outs, strict=True)):
                r, j, s, _, flat = xi
                if flat:
                    return xi
                ks = [-(-i_ // o_) + (1 if i_ % o_ else 0) for i_, o_ in zip(ins_, outs, strict=True)]
                return (
                    tuple(r[i] + (ks[i] - 1) * j[i] for i in range(n)),
                    tuple(j[i] * ins_[i] / outs[i] for i in range(n)),
                    tuple(s[i] + (ks[i] - 1) / 2 * j[i] for i in range(n)),
                    None,
                    False,
                )
            k = tuple(i_ // o_ for i_, o_ in zip(ins_, outs, strict=True))
            return _window(xi, k, k, (0,) * n, (1,) * n)
        if cat == "reduce" and self._reduces_spatial(args, x):
            return _whole(xi, tuple(x.shape[2:]))
        if pk_is(func, "slice") and not xi[4]:
            dim = _arg(args, kwargs, 1, "dim", 0)
            r, j, s, _, _ = xi
            n = len(r)
            a = (dim % x.dim()) - (x.dim() - n)
            if a < 0:
                return xi
            start = _arg(args, kwargs, 2, "start", 0) or 0
            step = _arg(args, kwargs, 4, "step", 1) or 1
            if start < 0:
                start += x.shape[dim]
            nj, ns = list(j), list(s)
            ns[a] = s[a] + start * j[a]
            nj[a] = j[a] * step
            return (r, tuple(nj), tuple(ns), None, False)
        if cat == "pad" and len(ins) == 1 and not xi[4]:
            pad = _arg(args, kwargs, 1, "pad", [])
            r, j, s, _, _ = xi
            n = len(r)
            pads = list(pad)
            before = [0] * n
            for a in range(min(n, len(pads) // 2)):  # pairs run from the last dim backwards
                before[n - 1 - a] = pads[2 * a]
            if tuple(o.shape[-n:]) == tuple(x.shape[-n:]) or pads:
                return (r, j, tuple(s[i] - before[i] * j[i] for i in range(n)), None, False)
        return self._merge(func, ins, o)

    @staticmethod
    def _merge(func, ins, o: Tensor) -> Info:
        """Elementwise ops, adds and concats: max r over the inputs, whose jumps must agree."""
        for _, i in ins:
            if i[3]:
                return i
        if len(ins) == 1:
            x, xi = ins[0]
            if xi[4]:
                return xi
            n = len(xi[0])
            if n == 0 or (o.dim() >= n + 2 and tuple(o.shape[-n:]) == tuple(x.shape[-n:])):
                return xi
            if o.dim() < x.dim() and o.dim() <= 2:  # flattened
                return _whole(xi, tuple(x.shape[2:]))
            if o.dim() >= n + 2 and math.prod(o.shape[-n:]) == 1:
                return _whole(xi, tuple(x.shape[-n:]))
            return _err(f"receptive field not tracked through {func} (it changes the spatial size)")
        full, other = [], []
        for x, i in ins:
            n = len(i[0])
            if i[4] or n == 0:
                other.append(i)
            elif o.dim() >= n + 2 and tuple(x.shape[-n:]) == tuple(o.shape[-n:]):
                full.append(i)
            elif x.dim() >= n + 2 and math.prod(x.shape[-n:]) == 1:
                other.append(i)  # broadcast over the map (a squeeze-excitation scale)
            else:
                return _err(f"receptive field not tracked through {func} (inputs of different sizes)")
        if not full:
            best = max(other, key=lambda i: max(i[0]))
            return best
        j0 = full[0][1]
        for i in full[1:]:
            if i[1] != j0:
                return _err(f"jumps disagree at {func}: {_fmt(j0)} vs {_fmt(i[1])}")
        n = len(j0)
        r = tuple(max(i[0][a] for i in full + other if len(i[0]) == n) for a in range(n))
        best = max(full, key=lambda i: i[0])
        return (r, j0, best[2], None, False)


def pk_is(func, name: str) -> bool:
    return func._overloadpacket is getattr(aten, name, None)


def _fmt(t: tuple) -> str:
    vals = [int(v) if float(v).is_integer() else round(v, 2) for v in t]
    return str(vals[0]) if len(set(vals)) == 1 else "x".join(map(str, vals))


_T = torch.Tensor
_INIT_NAMES = tuple(
    n
    for n in (
        "uniform_",
        "normal_",
        "fill_",
        "zero_",
        "bernoulli_",
        "exponential_",
        "random_",
        "erfinv_",
        "mul_",
        "add_",
        "sub_",
        "div_",
        "clamp_",
        "clamp_min_",
        "clamp_max_",
        "copy_",
        "log_normal_",
        "geometric_",
        "cauchy_",
        "addcmul_",
        "addcdiv_",
        "sqrt_",
        "abs_",
        "neg_",
        "exp_",
        "log_",
        "fmod_",
        "remainder_",
        "floor_",
    )
    if hasattr(_T, n)
)


class FastMetaInit:
    """Builds models on the meta device fast: in-place initialisers on meta tensors are skipped.

    ``nn.init`` functions run Python decompositions on meta (about 2 ms per ``uniform_``), which
    is most of the time to build a deep network; on meta they compute nothing anyway. For the
    duration of the ``with`` block the in-place tensor methods that initialisers use return
    ``self`` untouched on meta tensors (and run normally on real ones). Patching these few methods
    costs nothing per call elsewhere, unlike a TorchFunctionMode that sees every torch call.
    Not thread-safe: meant for a build in one thread.
    """

    def __enter__(self) -> FastMetaInit:
        self._saved: list[tuple[str, Any, bool]] = []
        for n in _INIT_NAMES:
            orig = getattr(_T, n)
            self._saved.append((n, orig, n in _T.__dict__))

            def skip(self_: Tensor, *args: Any, _orig: Any = orig, **kwargs: Any) -> Any:
                return self_ if self_.is_meta else _orig(self_, *args, **kwargs)

            setattr(_T, n, skip)
        return self

    def __exit__(self, *exc: object) -> None:
        for n, orig, own in self._saved:
            if own:
                setattr(_T, n, orig)
            else:
                delattr(_T, n)
