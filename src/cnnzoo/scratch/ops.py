"""Functional ops of the NumPy engine, each forward next to its backward (the micrograd habit).

Every op is a pair ``op_forward(x, ...) -> (y, cache)`` and ``op_backward(dy, cache) -> grads``.
Arrays are NCHW, convolution weights OIHW, like PyTorch; every op keeps its input's dtype, so the
same code runs in float64 (gradient checks) and float32 (training).

The convolution has two implementations that give the same numbers:

* ``impl="fast"`` (the default): im2col + one BLAS matmul per group. The column matrix is built by
  k×k vectorised slice copies (one per kernel offset), and col2im scatters back the same way, so no
  Python loop runs over images or pixels. Internally the channel axis leads (C, N, H, W): then the
  forward, dW and dX are each *one* matmul with no transposes, and the output is handed back as an
  NCHW-shaped view of that memory (NumPy's ufuncs follow memory order, so the next ops do not care).
* ``impl="reference"``: the lectures' derivation written plainly, in
  :mod:`cnnzoo.scratch.conv_reference` (dW by valid cross-correlation of the input with dY, dX by the
  full convolution of dY with the 180°-rotated kernel, stride by dilating dY with zeros).

Nothing here imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "conv_output_size",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "avgpool2d_forward",
    "avgpool2d_backward",
    "subsampling_forward",
    "subsampling_backward",
    "relu_forward",
    "relu_backward",
    "tanh_forward",
    "tanh_backward",
    "scaled_tanh_forward",
    "scaled_tanh_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "linear_forward",
    "linear_backward",
    "dropout_forward",
    "dropout_backward",
    "batchnorm2d_forward",
    "batchnorm2d_backward",
    "flatten_forward",
    "flatten_backward",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "log_softmax",
    "rbf_forward",
    "rbf_backward",
]

Cache = dict[str, Any]

#: stride-1 convs whose padded width is at most this many times the output width use the "wide"
#: im2col (contiguous copies, computes wp/ow more columns than needed); others the general one.
WIDE_MAX_RATIO = 1.5


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(v, int | np.integer):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """floor((size + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1, as in PyTorch."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _window(start: int, count: int, step: int) -> slice:
    """The slice that picks ``count`` positions ``start, start+step, ...``."""
    return slice(start, start + step * (count - 1) + 1, step)


# ============================================================================ convolution
def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    *,
    impl: str = "fast",
) -> tuple[np.ndarray, Cache]:
    """2-D cross-correlation (what deep learning calls convolution), NCHW input, OIHW weight.

    ``y[n, o] = b[o] + Σ_c Σ_ij x_pad[n, c, s·p + d·i, s·q + d·j] · w[o, c, i, j]`` over the input
    maps ``c`` of ``o``'s group. Returns ``(y, cache)``; ``y`` has shape (N, O, OH, OW).
    """
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d wants x (N,C,H,W) and w (O,C/groups,kH,kW), got {x.shape} and {w.shape}")
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if c % groups or o % groups or cg != c // groups:
        raise ValueError(f"conv2d: {c} input maps, {o} filters of depth {cg} do not fit groups={groups}")
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    oh, ow = conv_output_size(h, kh, sh, ph, dh), conv_output_size(wd, kw, sw, pw, dw)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"conv2d: a {kh}x{kw} kernel (dilation {dh},{dw}) does not fit a padded "
            f"{h + 2 * ph}x{wd + 2 * pw} input"
        )
    geom = dict(
        stride=(sh, sw),
        padding=(ph, pw),
        dilation=(dh, dw),
        groups=groups,
        x_shape=x.shape,
        w_shape=w.shape,
        out_hw=(oh, ow),
    )
    if impl == "reference":
        from cnnzoo.scratch import conv_reference

        y = conv_reference.conv2d_forward_reference(x, w, b, **_ref_kwargs(geom))
        return y, {"impl": "reference", "x": x, "w": w, "has_bias": b is not None, **geom}
    if impl != "fast":
        raise ValueError(f"impl must be 'fast' or 'reference', got {impl!r}")

    xc = x.transpose(1, 0, 2, 3)  # (C, N, H, W) view of the input
    hp, wp = h + 2 * ph, wd + 2 * pw
    wm = w.reshape(groups, o // groups, cg * kh * kw)
    if sh == 1 and sw == 1 and wp <= WIDE_MAX_RATIO * ow:
        # "Wide" im2col (stride 1): lay each padded image out as one flat row-major run and compute
        # the output on the full padded width wp; then every kernel offset (i, j) is ONE contiguous
        # slice of that run, starting at i·d·wp + j·d. The wp − ow extra columns per output row
        # read across the row end; they are computed and dropped (a wp/ow overhead in the GEMM).
        flat = hp * wp + dw * (kw - 1)  # the tail keeps the last offset's slice in bounds
        xf = np.zeros((c, n, flat), dtype=x.dtype)
        xf[:, :, : hp * wp].reshape(c, n, hp, wp)[:, :, ph : ph + h, pw : pw + wd] = xc
        cols = np.empty((c, kh, kw, n, oh * wp), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                off = i * dh * wp + j * dw
                cols[:, i, j] = xf[:, :, off : off + oh * wp]
        cols = cols.reshape(groups, cg * kh * kw, n * oh * wp)
        y = np.matmul(wm, cols).reshape(o, n, oh, wp)
        if b is not None:
            y += b.reshape(o, 1, 1, 1)
        cache = {"impl": "fast", "wide": True, "cols": cols, "w": w, "has_bias": b is not None, **geom}
        return y[:, :, :, :ow].transpose(1, 0, 2, 3), cache

    # general im2col: cols[c, i, j, n, p, q] = x_pad[n, c, s·p + d·i, s·q + d·j], one copy per offset
    if ph or pw:
        xp = np.zeros((c, n, hp, wp), dtype=x.dtype)
        xp[:, :, ph : ph + h, pw : pw + wd] = xc
    else:
        xp = xc
    cols = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xp[:, :, _window(i * dh, oh, sh), _window(j * dw, ow, sw)]
    cols = cols.reshape(groups, cg * kh * kw, n * oh * ow)
    y = np.matmul(wm, cols).reshape(o, n, oh, ow)  # (G, O/G, CgKK) @ (G, CgKK, NP): one GEMM per group
    if b is not None:
        y += b.reshape(o, 1, 1, 1)
    cache = {"impl": "fast", "wide": False, "cols": cols, "w": w, "has_bias": b is not None, **geom}
    return y.transpose(1, 0, 2, 3), cache


def conv2d_backward(
    dy: np.ndarray, cache: Cache, *, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients ``(dx, dw, db)`` of :func:`conv2d_forward` (``db`` is None without a bias).

    ``need_dx=False`` skips the input gradient (a network's first layer does not need it).
    """
    if cache["impl"] == "reference":
        from cnnzoo.scratch import conv_reference

        dx, dw, db = conv_reference.conv2d_backward_reference(
            dy, cache["x"], cache["w"], **_ref_kwargs(cache)
        )
        return (dx if need_dx else None), dw, (db if cache["has_bias"] else None)

    n, c, h, wd = cache["x_shape"]
    o, cg, kh, kw = cache["w_shape"]
    oh, ow = cache["out_hw"]
    (sh, sw), (ph, pw), (dh, dw_) = cache["stride"], cache["padding"], cache["dilation"]
    hp, wp = h + 2 * ph, wd + 2 * pw
    g = cache["groups"]
    cols, w = cache["cols"], cache["w"]
    dyc = dy.transpose(1, 0, 2, 3)  # (O, N, OH, OW), channel-major like the forward's output
    if cache["wide"]:
        dyw = np.zeros((o, n, oh, wp), dtype=dy.dtype)  # zeros in the dropped columns: they add nothing
        dyw[:, :, :, :ow] = dyc
        dym = dyw.reshape(g, o // g, n * oh * wp)
    else:  # a copy only if dy came in another layout
        dym = np.ascontiguousarray(dyc).reshape(g, o // g, n * oh * ow)
    db = dym.sum(axis=2).reshape(o) if cache["has_bias"] else None
    # dW = dY · colsᵀ: the valid cross-correlation of the input with dY, as one GEMM per group
    dw = np.matmul(dym, cols.transpose(0, 2, 1)).reshape(o, cg, kh, kw)
    if not need_dx:
        return None, dw, db
    # dX: dcols = Wᵀ · dY, then col2im adds each kernel offset's slab back where it was read from
    dcols = np.matmul(w.reshape(g, o // g, cg * kh * kw).transpose(0, 2, 1), dym)
    if cache["wide"]:
        dcols = dcols.reshape(c, kh, kw, n, oh * wp)
        dxf = np.zeros((c, n, hp * wp + dw_ * (kw - 1)), dtype=dy.dtype)
        for i in range(kh):
            for j in range(kw):
                off = i * dh * wp + j * dw_
                dxf[:, :, off : off + oh * wp] += dcols[:, i, j]
        dxp = dxf[:, :, : hp * wp].reshape(c, n, hp, wp)
    else:
        dcols = dcols.reshape(c, kh, kw, n, oh, ow)
        dxp = np.zeros((c, n, hp, wp), dtype=dy.dtype)
        for i in range(kh):
            for j in range(kw):
                dxp[:, :, _window(i * dh, oh, sh), _window(j * dw_, ow, sw)] += dcols[:, i, j]
    dx = dxp[:, :, ph : ph + h, pw : pw + wd].transpose(1, 0, 2, 3)
    return dx, dw, db


def _ref_kwargs(geom: Cache) -> dict[str, Any]:
    return {k: geom[k] for k in ("stride", "padding", "dilation", "groups")}


# ============================================================================ pooling
def _pool_geometry(x: np.ndarray, kernel_size, stride, padding) -> tuple[tuple[int, int], ...]:
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = _pair(stride if stride is not None else (kh, kw))
    (ph, pw) = _pair(padding)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"pool padding {padding} must be at most half the kernel {kernel_size}")
    h, w = x.shape[-2:]
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    if oh < 1 or ow < 1:
        raise ValueError(f"a {kh}x{kw} pool does not fit a {h}x{w} input")
    return (kh, kw), (sh, sw), (ph, pw), (oh, ow)


def _channel_major(shape: tuple[int, ...], dtype, fill: float = 0.0) -> np.ndarray:
    """An NCHW-shaped array stored channel-major (C, N, H, W), the layout the fast conv produces."""
    n, c, h, w = shape
    return np.full((c, n, h, w), fill, dtype=dtype).transpose(1, 0, 2, 3)


def _padded(x: np.ndarray, ph: int, pw: int, fill: float) -> np.ndarray:
    if not (ph or pw):
        return x
    n, c, h, w = x.shape
    xp = _channel_major((n, c, h + 2 * ph, w + 2 * pw), x.dtype, fill)
    xp[:, :, ph : ph + h, pw : pw + w] = x
    return xp


def maxpool2d_forward(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> tuple[np.ndarray, Cache]:
    """Max over each window (padding counts as −∞). Ties go to the first position in scan order,
    as in PyTorch; the cache keeps that winning offset for the backward pass."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = _pool_geometry(x, kernel_size, stride, padding)
    xp = _padded(x, ph, pw, -np.inf)
    y = xp[:, :, _window(0, oh, sh), _window(0, ow, sw)].copy(order="K")
    arg = np.zeros(y.shape, dtype=np.int16)
    # running max over the k·k window offsets, vectorised over everything else. Plain arithmetic
    # (no np.where / masked copies, which are several times slower than a multiply by a bool array)
    for i in range(kh):
        for j in range(kw):
            if i or j:
                s = xp[:, :, _window(i, oh, sh), _window(j, ow, sw)]
                better = s > y  # strict: an equal later value does not steal the gradient
                np.maximum(y, s, out=y)
                arg += better * (np.int16(i * kw + j) - arg)
    cache = {"x_shape": x.shape, "arg": arg, "kernel": (kh, kw), "stride": (sh, sw), "padding": (ph, pw)}
    return y, cache


def maxpool2d_backward(dy: np.ndarray, cache: Cache) -> np.ndarray:
    """Each output's gradient goes to the input position that won its max (and nowhere else)."""
    n, c, h, w = cache["x_shape"]
    (kh, kw), (sh, sw), (ph, pw) = cache["kernel"], cache["stride"], cache["padding"]
    oh, ow = dy.shape[-2:]
    arg = cache["arg"]
    dxp = _channel_major((n, c, h + 2 * ph, w + 2 * pw), dy.dtype)
    overlap = sh < kh or sw < kw
    for i in range(kh):
        for j in range(kw):
            routed = dy * (arg == i * kw + j)
            view = dxp[:, :, _window(i, oh, sh), _window(j, ow, sw)]
            if overlap:
                view += routed
            else:  # windows do not overlap: each input is written at most once
                view[...] = routed
    return dxp[:, :, ph : ph + h, pw : pw + w]


def avgpool2d_forward(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> tuple[np.ndarray, Cache]:
    """Mean over each window; zero padding is counted in the divisor (PyTorch's default)."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = _pool_geometry(x, kernel_size, stride, padding)
    y = _window_sum(_padded(x, ph, pw, 0.0), (kh, kw), (sh, sw), (oh, ow))
    y *= 1.0 / (kh * kw)
    return y, {"x_shape": x.shape, "kernel": (kh, kw), "stride": (sh, sw), "padding": (ph, pw)}


def avgpool2d_backward(dy: np.ndarray, cache: Cache) -> np.ndarray:
    """Each input of a window receives 1/(kh·kw) of the window's gradient."""
    kh, kw = cache["kernel"]
    return _window_sum_backward(dy * (1.0 / (kh * kw)), cache)


def _window_sum(xp: np.ndarray, kernel, stride, out_hw) -> np.ndarray:
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    y = xp[:, :, _window(0, oh, sh), _window(0, ow, sw)].copy(order="K")
    for i in range(kh):
        for j in range(kw):
            if i or j:
                y += xp[:, :, _window(i, oh, sh), _window(j, ow, sw)]
    return y


def _window_sum_backward(dy: np.ndarray, cache: Cache) -> np.ndarray:
    n, c, h, w = cache["x_shape"]
    (kh, kw), (sh, sw), (ph, pw) = cache["kernel"], cache["stride"], cache["padding"]
    oh, ow = dy.shape[-2:]
    dxp = _channel_major((n, c, h + 2 * ph, w + 2 * pw), dy.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, _window(i, oh, sh), _window(j, ow, sw)] += dy
    return dxp[:, :, ph : ph + h, pw : pw + w]


def subsampling_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray, kernel_size: int = 2
) -> tuple[np.ndarray, Cache]:
    """LeNet-5's trainable subsampling (S2, S4): ``y = weight[c] · Σ_window x + bias[c]``.

    Non-overlapping k×k windows (stride k), one coefficient and one bias per map (LeCun et al.
    1998, §II.B).
    """
    k = int(kernel_size)
    h, w = x.shape[-2:]
    s = _window_sum(x, (k, k), (k, k), (h // k, w // k))  # (N, C, H/k, W/k) window sums
    y = s * weight.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)
    return y, {
        "s": s,
        "weight": weight,
        "x_shape": x.shape,
        "kernel": (k, k),
        "stride": (k, k),
        "padding": (0, 0),
    }


def subsampling_backward(dy: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dweight, dbias)``: dweight[c] = Σ dy·s, dbias[c] = Σ dy, dx = dy·weight on every window cell."""
    dweight = np.einsum("nchw,nchw->c", dy, cache["s"])
    dbias = dy.sum(axis=(0, 2, 3))
    dx = _window_sum_backward(dy * cache["weight"].reshape(1, -1, 1, 1), cache)
    return dx, dweight, dbias


# ============================================================================ activations
def relu_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """max(x, 0)."""
    y = np.maximum(x, 0)
    return y, {"y": y}


def relu_backward(dy: np.ndarray, cache: Cache) -> np.ndarray:
    """dy where the unit was on (y > 0), else 0 (PyTorch's choice at exactly 0)."""
    return dy * (cache["y"] > 0)  # a multiply by a bool mask: much faster than np.where


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    y = np.tanh(x)
    return y, {"y": y}


def tanh_backward(dy: np.ndarray, cache: Cache) -> np.ndarray:
    """dy · (1 − tanh²)."""
    y = cache["y"]
    return dy * (1 - y * y)


def scaled_tanh_forward(
    x: np.ndarray, amplitude: float = 1.7159, slope: float = 2.0 / 3.0
) -> tuple[np.ndarray, Cache]:
    """LeCun's squashing function f(a) = A·tanh(S·a), A = 1.7159, S = 2/3 (1998, Appendix A)."""
    t = np.tanh(x * x.dtype.type(slope))
    return t * x.dtype.type(amplitude), {"t": t, "amplitude": amplitude, "slope": slope}


def scaled_tanh_backward(dy: np.ndarray, cache: Cache) -> np.ndarray:
    """dy · A·S·(1 − tanh²(S·a))."""
    t = cache["t"]
    return dy * (dy.dtype.type(cache["amplitude"] * cache["slope"]) * (1 - t * t))


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """1 / (1 + e^−x), computed as ½(1 + tanh(x/2)), which never overflows."""
    y = 0.5 * (1 + np.tanh(0.5 * x))
    return y.astype(x.dtype, copy=False), {"y": y}


def sigmoid_backward(dy: np.ndarray, cache: Cache) -> np.ndarray:
    """dy · σ(1 − σ)."""
    y = cache["y"]
    return dy * (y * (1 - y))


# ============================================================================ linear, flatten, dropout
def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> tuple[np.ndarray, Cache]:
    """y = x·Wᵀ + b with W (out, in), as ``nn.Linear``."""
    y = x @ w.T
    if b is not None:
        y += b
    return y, {"x": x, "w": w, "has_bias": b is not None}


def linear_backward(
    dy: np.ndarray, cache: Cache, *, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(dx, dw, db)``: dx = dy·W, dW = dyᵀ·x, db = Σ_n dy."""
    dw = dy.T @ cache["x"]
    db = dy.sum(axis=0) if cache["has_bias"] else None
    dx = dy @ cache["w"] if need_dx else None
    return dx, dw, db


def flatten_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """(N, ...) -> (N, prod(...)), as ``torch.flatten(x, 1)``."""
    return x.reshape(x.shape[0], -1), {"x_shape": x.shape}


def flatten_backward(dy: np.ndarray, cache: Cache) -> np.ndarray:
    return dy.reshape(cache["x_shape"])


def dropout_forward(
    x: np.ndarray,
    p: float = 0.5,
    *,
    training: bool = True,
    rng: np.random.Generator | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, Cache]:
    """Inverted dropout: zero each unit with probability ``p``, scale the rest by 1/(1−p).

    ``mask`` (booleans, True = kept) may be given, e.g. to replay a draw; otherwise it is drawn
    from ``rng``. In eval mode (``training=False``) or with p = 0 it is the identity.
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x, {"scale": None}
    if mask is None:
        rng = rng if rng is not None else np.random.default_rng()
        mask = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64) >= p
    scale = mask * x.dtype.type(1.0 / (1.0 - p))
    return x * scale, {"scale": scale}


def dropout_backward(dy: np.ndarray, cache: Cache) -> np.ndarray:
    return dy if cache["scale"] is None else dy * cache["scale"]


# ============================================================================ batch norm
def batchnorm2d_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    *,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, Cache]:
    """Batch normalisation over (N, H, W) per channel (Ioffe & Szegedy 2015), as ``nn.BatchNorm2d``.

    In training the batch statistics normalise (biased variance) and ``running_mean``/``running_var``
    are updated in place with the unbiased variance; in eval the running statistics are used.
    """
    shape = (1, -1, 1, 1)
    if training:
        m = x.shape[0] * x.shape[2] * x.shape[3]
        mean = x.mean(axis=(0, 2, 3))
        xc = x - mean.reshape(shape)
        var = (xc * xc).mean(axis=(0, 2, 3))
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += momentum * var * (m / max(m - 1, 1))
    else:
        mean, var = running_mean, running_var
        xc = x - mean.reshape(shape)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = xc * inv_std.reshape(shape).astype(x.dtype, copy=False)
    y = xhat * gamma.reshape(shape) + beta.reshape(shape)
    return y, {
        "xhat": xhat,
        "inv_std": inv_std.astype(x.dtype, copy=False),
        "gamma": gamma,
        "training": training,
    }


def batchnorm2d_backward(dy: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dgamma, dbeta)``. Train mode: the batch statistics depend on x too, giving
    dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂)); eval mode: dx = γ/σ · dy."""
    shape = (1, -1, 1, 1)
    xhat = cache["xhat"]
    dbeta = dy.sum(axis=(0, 2, 3))
    dgamma = (dy * xhat).sum(axis=(0, 2, 3))
    scale = (cache["gamma"] * cache["inv_std"]).reshape(shape)
    if not cache["training"]:
        return dy * scale, dgamma, dbeta
    m = dy.shape[0] * dy.shape[2] * dy.shape[3]
    dx = scale * (dy - (dbeta / m).reshape(shape) - xhat * (dgamma / m).reshape(shape))
    return dx, dgamma, dbeta


# ============================================================================ losses and RBF output
def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax along the last axis, shifted by the max so exp never overflows."""
    zs = z - z.max(axis=-1, keepdims=True)
    return zs - np.log(np.exp(zs).sum(axis=-1, keepdims=True))


def softmax_cross_entropy(logits: np.ndarray, target: np.ndarray) -> tuple[float, Cache]:
    """Mean cross-entropy of integer targets under softmax(logits), numerically stable.

    Returns ``(loss, cache)``; :func:`softmax_cross_entropy_backward` gives d loss / d logits.
    """
    if logits.ndim != 2 or target.shape != (logits.shape[0],):
        raise ValueError(
            f"cross-entropy wants logits (N, K) and targets (N,), got {logits.shape}, {target.shape}"
        )
    logp = log_softmax(logits)
    n = logits.shape[0]
    loss = -logp[np.arange(n), target].mean()
    return float(loss), {"logp": logp, "target": target}


def softmax_cross_entropy_backward(cache: Cache, dloss: float = 1.0) -> np.ndarray:
    """(softmax − onehot) / N, times the upstream gradient ``dloss``."""
    logp, target = cache["logp"], cache["target"]
    n = logp.shape[0]
    g = np.exp(logp)
    g[np.arange(n), target] -= 1
    g *= logp.dtype.type(dloss / n)
    return g


def rbf_forward(x: np.ndarray, prototypes: np.ndarray) -> tuple[np.ndarray, Cache]:
    """LeNet-5's Euclidean RBF output, negated: ``y_i = −Σ_j (x_j − w_ij)²`` (1998, Eq. 7).

    The prototypes are fixed (no gradient). Negative distances make ``argmax`` the prediction and
    let ordinary cross-entropy train the network, as in the torch zoo's ``EuclideanRBF``.
    """
    p = prototypes.astype(x.dtype, copy=False)
    d = (x * x).sum(axis=1, keepdims=True) - 2 * (x @ p.T) + (p * p).sum(axis=1)
    return -d, {"x": x, "p": p}


def rbf_backward(dy: np.ndarray, cache: Cache) -> np.ndarray:
    """d/dx of −Σ_j (x_j − w_ij)² is −2(x − w_i): dx = −2(x·Σ_i dy_i − dy·W)."""
    x, p = cache["x"], cache["p"]
    return -2 * (x * dy.sum(axis=1, keepdims=True) - dy @ p)
