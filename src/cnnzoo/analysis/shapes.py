"""Output shapes on the meta device, for the ops that make up nearly all of a CNN's training step.

Torch runs many of its meta kernels in Python (``torch._refs``, ``torch._decomp``,
``torch._meta_registrations``): 0.5-9 ms an op under a dispatch mode (``native_layer_norm``,
``cat``, ``mean``, the activation gradients), and the first of them in a process imports
``torch._dynamo`` and ``sympy`` (4 s). Their cached first-call paths also leave reference
cycles that hold the op's tensors, which would make the traced lifetimes of the first analysis
differ from the next. The shapes here are simple to compute directly.

A rule is ``(args, kwargs) -> output`` on meta, or None to let torch's kernel decide (which also
raises torch's own error for anything invalid); the tracer calls it only when the first argument
is a meta tensor. Outputs are contiguous: a CPU kernel may return another memory format, which
holds the same bytes. A view op's rule must return a view of its input (``as_strided``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["ShapeRule", "empty_like_of", "broadcast", "pool_size"]

#: (args, kwargs) -> the output on the meta device, or None for torch's own meta kernel
ShapeRule = Callable[[tuple, dict], Any]

_aten = torch.ops.aten
_FACTORY_KWARGS = {"dtype", "layout", "device", "pin_memory", "memory_format", "requires_grad"}


def empty_like_of(shape: Any, x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """A meta tensor of ``shape`` with ``x``'s dtype (or ``dtype``)."""
    dt = dtype or x.dtype
    # naming the default dtype costs a third of the call: only name another one
    if dt is torch.get_default_dtype():
        return torch.empty(shape, device="meta")
    return torch.empty(shape, device="meta", dtype=dt)


_empty = empty_like_of


def broadcast(a: Any, b: Any) -> tuple[int, ...] | None:
    """The broadcast of two shapes, or None if they do not broadcast (``torch.broadcast_shapes``
    walks symbolic-shape guards: 25 µs a call, as long as the op itself)."""
    if a == b:
        return tuple(a)
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b, strict=True):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(out)


def _meta(*ts: Any) -> bool:
    return all(isinstance(t, Tensor) and t.is_meta for t in ts)


def _factory(kwargs: dict) -> torch.dtype | None | bool:
    """The dtype a factory's kwargs ask for (None: the input's); False if they ask for anything
    this module does not reproduce (another device, a layout, pinned memory)."""
    if not set(kwargs) <= _FACTORY_KWARGS:
        return False
    device = kwargs.get("device")
    if device is not None and torch.device(device).type != "meta":
        return False
    if kwargs.get("layout") not in (None, torch.strided) or kwargs.get("pin_memory"):
        return False
    return kwargs.get("dtype")


# -- elementwise ---------------------------------------------------------------------------------


def unary_shape(args: tuple, kwargs: dict) -> Tensor | None:
    """An output shaped and typed as the first argument (``relu``, ``neg``, ``clone``)."""
    if kwargs and set(kwargs) != {"memory_format"}:
        return None
    return _empty(args[0].shape, args[0])


def float_unary_shape(args: tuple, kwargs: dict) -> Tensor | None:
    """As :func:`unary_shape`, for floating inputs only (``pow(x, 2)``: an int tensor may promote)."""
    x = args[0]
    if kwargs or not x.is_floating_point() or (len(args) > 1 and isinstance(args[1], Tensor)):
        return None
    return _empty(x.shape, x)


def like_arg(i: int) -> ShapeRule:
    """A gradient shaped as argument ``i`` (the forward input of a pooling or activation), typed
    as the first argument (the output gradient)."""

    def shape(args: tuple, kwargs: dict) -> Tensor | None:
        t = args[i] if len(args) > i else None
        if kwargs or not _meta(t, args[0]):
            return None
        return _empty(t.shape, args[0])

    return shape


def like_factory(args: tuple, kwargs: dict) -> Tensor | None:
    """``empty_like``, ``zeros_like``, ``ones_like`` ... (the fill value does not matter on meta)."""
    dtype = _factory(kwargs)
    if dtype is False:
        return None
    return _empty(args[0].shape, args[0], dtype)


def inplace_shape(args: tuple, kwargs: dict) -> Tensor | None:
    """An in-place op returns its first argument."""
    x = args[0]
    other = args[1] if len(args) > 1 else None
    if isinstance(other, Tensor) and (
        other.dtype != x.dtype or not other.is_meta or broadcast(x.shape, other.shape) != tuple(x.shape)
    ):
        return None
    return x


def binary_shape(args: tuple, kwargs: dict) -> Tensor | None:
    """``add``/``mul``/``sub``/``div`` of floats of one dtype, or of a float tensor and a number."""
    x = args[0]
    if len(args) < 2 or not x.is_floating_point() or set(kwargs) - {"alpha"}:
        return None
    other = args[1]
    if isinstance(other, Tensor):
        shape = broadcast(x.shape, other.shape)
        if other.dtype != x.dtype or not other.is_meta or shape is None:
            return None
        return _empty(shape, x)
    if isinstance(other, float | int) and not isinstance(other, bool):
        return _empty(x.shape, x)  # a Python scalar keeps a float tensor's dtype
    return None


# -- reductions, concatenation, padding, views -------------------------------------------------------


def reduce_shape(args: tuple, kwargs: dict) -> Tensor | None:
    """``sum``/``mean`` over dims of a float tensor (``keepdim`` honoured)."""
    x = args[0]
    if set(kwargs) - {"keepdim"} or not x.is_floating_point() or len(args) > 3:
        return None
    dims = args[1] if len(args) > 1 else None
    keep = bool(args[2]) if len(args) > 2 else bool(kwargs.get("keepdim", False))
    nd = x.dim()
    if dims is None or (isinstance(dims, list | tuple) and len(dims) == 0):
        dims = list(range(nd))
    dims = {d % max(nd, 1) for d in ([dims] if isinstance(dims, int) else dims)}
    shape = (
        [1 if i in dims else s for i, s in enumerate(x.shape)]
        if keep
        else [s for i, s in enumerate(x.shape) if i not in dims]
    )
    return _empty(shape, x)


def cat_shape(args: tuple, kwargs: dict) -> Tensor | None:
    ts = args[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    if not ts or set(kwargs) - {"dim"} or not _meta(*ts):
        return None
    x = ts[0]
    nd = x.dim()
    if nd == 0 or any(t.dim() != nd or t.dtype != x.dtype for t in ts):
        return None  # legacy 1-d empties and type promotion: torch decides
    d = dim % nd
    shape = list(x.shape)
    if any(tuple(t.shape[:d]) + tuple(t.shape[d + 1 :]) != tuple(shape[:d] + shape[d + 1 :]) for t in ts):
        return None
    shape[d] = sum(t.shape[d] for t in ts)
    return _empty(shape, x)


def pad_shape(args: tuple, kwargs: dict) -> Tensor | None:
    """``constant_pad_nd(x, pad)``: pairs (before, after) from the last dim backwards."""
    x, pad = args[0], list(args[1])
    if kwargs or len(pad) % 2 or len(pad) // 2 > x.dim():
        return None
    shape = list(x.shape)
    for i in range(len(pad) // 2):
        shape[-1 - i] += pad[2 * i] + pad[2 * i + 1]
    if min(shape, default=1) < 0:
        return None
    return _empty(shape, x)


def _contiguous_strides(shape: list[int]) -> list[int]:
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= max(s, 1)
    return strides[::-1]


def view_shape(args: tuple, kwargs: dict) -> Tensor | None:
    """``view(x, shape)`` of a contiguous tensor: an ``as_strided`` alias (torch's view kernel on
    meta goes through Python reference code)."""
    x, size = args[0], list(args[1])
    if kwargs or not x.is_contiguous():
        return None
    if size.count(-1) == 1:
        known = math.prod(s for s in size if s != -1)
        if known == 0:
            return None
        size[size.index(-1)] = x.numel() // known
    if math.prod(size) != x.numel():
        return None
    return _aten.as_strided.default(x, size, _contiguous_strides(size), x.storage_offset())


# -- convolution, pooling, normalisation, products -----------------------------------------------------


def conv_shape(args: tuple, kwargs: dict) -> Tensor | None:
    if len(args) < 9 or kwargs:
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


def pool_shape(max_pool: bool, indices: bool) -> ShapeRule:
    """Max or average pooling over as many spatial dims as the kernel has (1, 2 or 3)."""

    def shape(args: tuple, kwargs: dict) -> Any:
        x = args[0]
        if kwargs:
            return None
        k = list(args[1])
        n = 3 if len(k) == 3 else (2 if x.dim() - 2 >= 2 and len(k) <= 2 else len(k))
        if x.dim() not in (n + 1, n + 2) or x.dim() < 3:
            return None
        st = list(args[2]) if len(args) > 2 and len(args[2]) else k
        p = list(args[3]) if len(args) > 3 else [0]
        d = list(args[4]) if max_pool and len(args) > 4 else [1]
        ci = 5 if max_pool else 4
        ceil = bool(args[ci]) if len(args) > ci else False
        k, st, p, d = (v * n if len(v) == 1 else v for v in (k, st, p, d))
        if any(len(v) != n for v in (k, st, p, d)) or any(2 * p[i] > k[i] for i in range(n)):
            return None
        lead = x.shape[: x.dim() - n]
        size = [pool_size(x.shape[-n + i], k[i], st[i], p[i], d[i], ceil) for i in range(n)]
        if min(size) < 1:
            return None
        out = _empty((*lead, *size), x)
        if indices:
            return (out, torch.empty(out.shape, device="meta", dtype=torch.int64))
        return out

    return shape


def adaptive_shape(args: tuple, kwargs: dict) -> Tensor | None:
    """``_adaptive_avg_pool2d(x, output_size)``: the leading dims, then the output size."""
    x, size = args[0], list(args[1])
    if kwargs or x.dim() < len(size) + 1:
        return None
    return _empty((*x.shape[: x.dim() - len(size)], *size), x)


def batch_norm_shape(args: tuple, kwargs: dict) -> tuple[Tensor, Tensor, Tensor] | None:
    if kwargs:
        return None
    x = args[0]
    c = x.shape[1] if x.dim() > 1 else 0
    return (_empty(x.shape, x), _empty((c,), x), _empty((c,), x))


def layer_norm_shape(args: tuple, kwargs: dict) -> tuple[Tensor, Tensor, Tensor] | None:
    """``native_layer_norm(x, normalized_shape, w, b, eps)``: (out, mean, rstd), statistics over
    the normalised trailing dims kept as size 1."""
    x, norm = args[0], list(args[1])
    if kwargs or x.dim() < len(norm):
        return None
    stats = (*x.shape[: x.dim() - len(norm)], *([1] * len(norm)))
    return (_empty(x.shape, x), _empty(stats, x), _empty(stats, x))


def group_norm_shape(args: tuple, kwargs: dict) -> tuple[Tensor, Tensor, Tensor] | None:
    """``native_group_norm(x, w, b, N, C, HxW, group, eps)``: (out, mean (N, G), rstd (N, G))."""
    if kwargs or len(args) < 7:
        return None
    x, n, g = args[0], args[3], args[6]
    return (_empty(x.shape, x), _empty((n, g), x), _empty((n, g), x))


def _matrices(a: Any, b: Any, n: int) -> bool:
    return _meta(a, b) and a.dim() == n == b.dim() and a.dtype == b.dtype and a.shape[-1] == b.shape[-2]


def mm_shape(args: tuple, kwargs: dict) -> Tensor | None:
    """``mm(a, b)``, ``addmm(c, a, b)``: (m, n). On meta torch runs ``addmm``'s Python decomposition."""
    if set(kwargs) - {"beta", "alpha"}:
        return None
    a, b = (args[1], args[2]) if len(args) >= 3 and isinstance(args[2], Tensor) else (args[0], args[1])
    if not _matrices(a, b, 2):
        return None
    return _empty((a.shape[0], b.shape[1]), a)


def bmm_shape(args: tuple, kwargs: dict) -> Tensor | None:
    if set(kwargs) - {"beta", "alpha"}:
        return None
    a, b = (args[1], args[2]) if len(args) >= 3 and isinstance(args[2], Tensor) else (args[0], args[1])
    if not _matrices(a, b, 3) or a.shape[0] != b.shape[0]:
        return None
    return _empty((a.shape[0], a.shape[1], b.shape[2]), a)


def nll_shape(args: tuple, kwargs: dict) -> tuple[Tensor, Tensor] | None:
    """``nll_loss_forward(x, target, weight, reduction, ignore_index)``: (loss, total weight)."""
    if kwargs or len(args) < 4 or not isinstance(args[1], Tensor):
        return None
    x, target, reduction = args[0], args[1], args[3]
    shape = tuple(target.shape) if reduction == 0 else ()
    return (_empty(shape, x), _empty((), x))


# -- the backward pass --------------------------------------------------------------------------------


def conv_backward_shape(args: tuple, kwargs: dict) -> tuple | None:
    """(grad input, grad weight, grad bias), None where ``output_mask`` says so."""
    if len(args) < 11 or kwargs:
        return None
    grad, inp, w = args[0], args[1], args[2]
    mask = args[10]
    if not _meta(grad, inp, w):
        return None
    return (
        _empty(inp.shape, grad) if mask[0] else None,
        _empty(w.shape, grad) if mask[1] else None,
        _empty((grad.shape[1],), grad) if mask[2] else None,
    )


def batch_norm_backward_shape(args: tuple, kwargs: dict) -> tuple | None:
    """``native_batch_norm_backward``: (grad input, grad γ, grad β), None where masked off."""
    if len(args) < 10 or kwargs:
        return None
    grad, x, w = args[0], args[1], args[2]
    mask = args[9]
    if not _meta(grad, x) or x.dim() < 2:
        return None
    c = (x.shape[1],)
    return (
        _empty(x.shape, grad) if mask[0] else None,
        _empty(c, grad) if mask[1] and w is not None else None,
        _empty(c, grad) if mask[2] and w is not None else None,
    )


def layer_norm_backward_shape(args: tuple, kwargs: dict) -> tuple | None:
    """``native_layer_norm_backward(grad, x, shape, mean, rstd, w, b, mask)``."""
    if len(args) < 8 or kwargs or not _meta(args[0], args[1]):
        return None
    grad, x, w, b, mask = args[0], args[1], args[5], args[6], args[7]
    return (
        _empty(x.shape, grad) if mask[0] else None,
        _empty(w.shape, grad) if mask[1] and w is not None else None,
        _empty(b.shape, grad) if mask[2] and b is not None else None,
    )


def sized_grad(i: int) -> ShapeRule:
    """A gradient whose shape argument ``i`` names (``slice_backward``, ``select_backward``)."""

    def shape(args: tuple, kwargs: dict) -> Tensor | None:
        if kwargs or not isinstance(args[0], Tensor):
            return None
        return _empty(tuple(args[i]), args[0])

    return shape


def empty_shape(args: tuple, kwargs: dict) -> Tensor | None:
    """``empty(size, dtype=...)`` and ``zeros``/``ones`` on meta (batch norm's reserve, autograd's
    zero gradients)."""
    dtype = _factory(kwargs)
    if dtype is False or kwargs.get("device") is None:
        return None
    return torch.empty(tuple(args[0]), device="meta", dtype=dtype)


def index_put_shape(args: tuple, kwargs: dict) -> Tensor | None:
    """``index_put(x, indices, values)``: a copy of ``x`` (LeNet-5's sparse C3 weight)."""
    if kwargs or len(args) < 3 or not _meta(args[0], args[2]):
        return None
    return _empty(args[0].shape, args[0])


def index_shape(args: tuple, kwargs: dict) -> Tensor | None:
    """``x[i, j]`` with integer index tensors on the leading dims: the indices' broadcast shape,
    then the remaining dims (other indexing, boolean masks, ``None``: torch decides)."""
    x, idx = args[0], args[1]
    if (
        kwargs
        or not idx
        or any(not isinstance(t, Tensor) or t.dtype not in (torch.long, torch.int) for t in idx)
    ):
        return None
    shape: tuple[int, ...] = tuple(idx[0].shape)
    for t in idx[1:]:
        shape = broadcast(shape, t.shape)
        if shape is None:
            return None
    return _empty((*shape, *x.shape[len(idx) :]), x)


def returns_self(args: tuple, kwargs: dict) -> Tensor:
    """An in-place fill (``bernoulli_``, ``uniform_``, ``zero_``): nothing to compute on meta."""
    return args[0]
