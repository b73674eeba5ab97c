"""Row types: which kind of row a module makes, and how a row of each kind totals its FLOPs.

Every module cnnzoo defines states its kind as a ``cost_type`` class attribute (the contract in
``contracts/cost-rows.md``): a composite kind (:data:`COMPOSITE_KINDS`) holds the rows of its children
and folds into one row with ``depth=K``; any other kind makes the module one row, whose FLOPs follow
:data:`ROW_FLOPS`. Torch's own leaf modules map to a kind through :data:`TORCH_MODULE_KINDS`.

A leaf module of another library that states no kind still gets a row, typed by its lower-cased
class name; :data:`ROW_TYPES` is every type the analyzer emits otherwise, and a test holds every zoo
model to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from cnnzoo.analysis.tracer import RawRow

__all__ = ["COMPOSITE_KINDS", "ROW_FLOPS", "ROW_TYPES", "TORCH_MODULE_KINDS", "module_kind", "row_flops"]

#: ``cost_type`` values of modules that hold other rows: such a module with children is not a row
#: itself, and ``depth=K`` folds it into one row of its kind
COMPOSITE_KINDS = frozenset(
    {"block", "stage", "inception", "residual", "sequential", "container", "stem", "se", "head", "cell"}
)

_ACT_MODULES = tuple(
    c
    for c in vars(nn.modules.activation).values()
    if isinstance(c, type)
    and issubclass(c, nn.Module)
    and c.__module__ == nn.modules.activation.__name__
    and c.__name__ not in ("MultiheadAttention", "Softmax", "Softmin", "LogSoftmax", "Softmax2d", "Module")
)

#: torch leaf module classes -> their kind (the first base that matches wins)
TORCH_MODULE_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
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


def module_kind(module: nn.Module) -> str | None:
    """The row type of a module: its ``cost_type`` if it declares one, else a torch class's kind."""
    cls = type(module)
    if cls in _kind_cache:
        return _kind_cache[cls]
    kind = getattr(cls, "cost_type", None)
    if kind is None:
        for base, k in TORCH_MODULE_KINDS:
            if issubclass(cls, base):
                kind = k
                break
    _kind_cache[cls] = kind
    return kind


# -- FLOPs of a row, by its type (shared/spec/cost-tables.md, "Rules") ---------------------------
# (row, output values at the traced batch, number of traced inputs) -> FLOPs at the traced batch
RowFlops = Callable[["RawRow", int, int], int]


def _ops_inside(raw: RawRow, numel: int, n_in: int) -> int:
    """A kind with no rule of its own: the costs of the aten ops that ran inside it."""
    return raw.mm_flops + raw.pool_flops + raw.other_flops


def _matrix(raw: RawRow, numel: int, n_in: int) -> int:
    return raw.mm_flops or (raw.pool_flops + raw.other_flops)


def _window(raw: RawRow, numel: int, n_in: int) -> int:
    return raw.pool_flops or raw.other_flops


def _per_output(k: int) -> RowFlops:
    def flops(raw: RawRow, numel: int, n_in: int) -> int:
        return k * numel

    return flops


def _norm(raw: RawRow, numel: int, n_in: int) -> int:
    """Batch norm at inference is a scale and a shift (2 per value); other norms also compute
    their statistics (4 per value)."""
    bn = isinstance(raw.module, nn.modules.batchnorm._BatchNorm) or "batch_norm" in (raw.op or "")
    return (2 if bn else 4) * numel


def _lrn_size(module: nn.Module | None) -> int | None:
    for attr in ("size", "n", "local_size"):
        v = getattr(module, attr, None)
        if isinstance(v, int):
            return v
    return None


def _lrn(raw: RawRow, numel: int, n_in: int) -> int:
    """A sum of n squares, a power and a divide per value: (2n + 3) per value."""
    n = _lrn_size(raw.module)
    return (2 * n + 3) * numel if n else raw.other_flops + raw.pool_flops


def _add(raw: RawRow, numel: int, n_in: int) -> int:
    return max(1, n_in - 1) * numel


def _free(raw: RawRow, numel: int, n_in: int) -> int:
    return 0


#: row type -> how its FLOPs are totalled; every leaf kind the analyzer knows by name
ROW_FLOPS: dict[str, RowFlops] = {
    "conv": _matrix,
    "linear": _matrix,
    "matmul": _matrix,
    "pool": _window,
    "act": _per_output(1),
    "norm": _norm,
    "lrn": _lrn,
    "softmax": _per_output(3),
    "add": _add,
    "mul": _ops_inside,  # elementwise: B·A (an SE gate's channel-wise multiply included)
    "concat": _free,
    "flatten": _free,
    "view": _free,
    "identity": _free,
    "pad": _free,
    "dropout": _free,
    "copy": _free,
    "shuffle": _free,  # a reshape and a transpose: a copy in memory, no arithmetic
    "drop_path": _ops_inside,
    "shortcut": _ops_inside,
    "routing": _ops_inside,
    "subsample": _ops_inside,
}

#: every row type the analyzer emits for a model whose modules state their kinds
ROW_TYPES = frozenset(ROW_FLOPS) | COMPOSITE_KINDS | {"input", "unused", "params"}


def row_flops(raw: RawRow, kind: str, numel: int, n_inputs: int) -> int:
    """FLOPs of a row at the traced batch, by the spec's rules for its type."""
    return ROW_FLOPS.get(kind, _ops_inside)(raw, numel, n_inputs)
