"""Layers with parameters and gradients, and a :class:`Sequential` that chains them.

Each layer wraps one op pair of :mod:`cnnzoo.scratch.ops`: ``forward(x)`` stores the op's cache,
``backward(dy)`` consumes it, writes the parameter gradients into ``layer.grads`` (overwriting, not
accumulating: one backward per forward) and returns the input gradient.

Names follow PyTorch so that weights move between the engines unchanged: a layer's ``params`` and
``buffers`` use ``nn.Module``'s attribute names (``weight``, ``bias``, ``running_mean``, ...) and a
:class:`Sequential`'s children are named like the torch model's submodules (``c1``, ``s2``, ...),
giving ``state_dict`` keys such as ``c1.weight``. No torch here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from cnnzoo.errors import CnnzooError
from cnnzoo.scratch import init as initializers
from cnnzoo.scratch import ops

__all__ = [
    "Layer",
    "Sequential",
    "Conv2d",
    "PartialConv2d",
    "Linear",
    "ReLU",
    "Tanh",
    "ScaledTanh",
    "Sigmoid",
    "MaxPool2d",
    "AvgPool2d",
    "Subsampling",
    "BatchNorm2d",
    "Dropout",
    "Flatten",
    "Identity",
    "EuclideanRBF",
    "StateDictError",
]


class StateDictError(CnnzooError, KeyError):
    """A state dict does not fit the network (missing or unexpected keys, wrong shapes)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Layer:
    """Base class: ``params`` and ``grads`` (same keys), ``buffers`` (saved state without gradient)."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.training = True
        self.needs_input_grad = True  # a network's first layer is told it may skip dx
        self.cache: Any = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    __call__ = forward

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def num_params(self) -> int:
        return sum(p.size for p in self.params.values())

    def _set_grads(self, **g: np.ndarray | None) -> None:
        for k, v in g.items():
            if v is not None:
                self.grads[k] = v


class Sequential(Layer):
    """Named layers applied in order; ``backward`` runs them in reverse.

    Args:
        layers: ``(name, layer)`` pairs (the names become the ``state_dict`` prefixes).
    """

    def __init__(self, layers: Iterable[tuple[str, Layer]]) -> None:
        super().__init__()
        self.layers: dict[str, Layer] = dict(layers)
        first = next(iter(self.layers.values()), None)
        if first is not None:
            first.needs_input_grad = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        for layer in reversed(self.layers.values()):
            dy = layer.backward(dy)
            if dy is None:
                break
        return dy

    def __getitem__(self, name: str) -> Layer:
        return self.layers[name]

    def __iter__(self) -> Iterator[tuple[str, Layer]]:
        return iter(self.layers.items())

    def train(self, mode: bool = True) -> Sequential:
        self.training = mode
        for layer in self.layers.values():
            layer.training = mode
        return self

    def eval(self) -> Sequential:
        return self.train(False)

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        for name, layer in self.layers.items():
            for k, p in layer.params.items():
                yield f"{name}.{k}", p

    def named_grads(self) -> Iterator[tuple[str, np.ndarray | None]]:
        for name, layer in self.layers.items():
            for k in layer.params:
                yield f"{name}.{k}", layer.grads.get(k)

    def num_params(self) -> int:
        return sum(p.size for _, p in self.named_parameters())

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers under torch's key names (``c1.weight``, ``output.prototypes``)."""
        out: dict[str, np.ndarray] = {}
        for name, layer in self.layers.items():
            for k, v in {**layer.params, **layer.buffers}.items():
                out[f"{name}.{k}"] = v
        return out

    def load_state_dict(self, state: dict[str, Any], *, strict: bool = True) -> None:
        """Copy ``state`` (arrays, or anything ``np.asarray`` takes) into the network in place.

        Raises:
            StateDictError: with ``strict``, naming the missing/unexpected keys and shape mismatches.
        """
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        bad = [k for k in own.keys() & state.keys() if tuple(np.shape(state[k])) != own[k].shape]
        if bad or (strict and (missing or unexpected)):
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if unexpected:
                parts.append(f"unexpected {unexpected}")
            parts += [f"{k}: expected shape {own[k].shape}, got {tuple(np.shape(state[k]))}" for k in bad]
            raise StateDictError("state dict does not fit the network: " + "; ".join(parts))
        for k in own.keys() & state.keys():
            own[k][...] = np.asarray(state[k])

    def astype(self, dtype) -> Sequential:
        """Cast every parameter and floating buffer to ``dtype`` (e.g. float64 for gradient checks)."""
        for layer in self.layers.values():
            for d in (layer.params, layer.buffers):
                for k, v in d.items():
                    if np.issubdtype(v.dtype, np.floating):
                        d[k] = v.astype(dtype)
        return self

    def extra_repr(self) -> str:
        return ", ".join(f"{n}={layer!r}" for n, layer in self.layers.items())

    def __repr__(self) -> str:
        body = "\n".join(f"  ({n}): {layer!r}" for n, layer in self.layers.items())
        return f"Sequential(\n{body}\n)  # {self.num_params():,} parameters"


# ----------------------------------------------------------------------------- convolutions
class Conv2d(Layer):
    """``nn.Conv2d`` in NumPy: weight (O, C/groups, k, k) and bias (O).

    ``impl`` picks the convolution path: ``"fast"`` (im2col + BLAS, default) or ``"reference"`` (the
    lectures' derivation, slow). Init is PyTorch's default, U(±1/√fan_in), unless ``rng`` is None
    (zeros).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        impl: str = "fast",
        rng: np.random.Generator | None = None,
        dtype=np.float32,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.dilation, self.groups, self.impl = (
            stride,
            padding,
            dilation,
            groups,
            impl,
        )
        shape = (out_channels, in_channels // groups, kernel_size, kernel_size)
        self.params["weight"] = initializers.torch_default(shape, rng, dtype)
        if bias:
            self.params["bias"] = initializers.torch_default_bias(shape, out_channels, rng, dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self.cache = ops.conv2d_forward(
            x,
            self.params["weight"],
            self.params.get("bias"),
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            impl=self.impl,
        )
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dx, dw, db = ops.conv2d_backward(dy, self.cache, need_dx=self.needs_input_grad)
        self._set_grads(weight=dw, bias=db)
        self.cache = None
        return dx

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}"
        )


class PartialConv2d(Layer):
    """LeNet-5's C3: output map j sees only the input maps ``table[j]`` (the paper's Table I).

    Parameters as the torch zoo's ``PartialConv2d``: ``weight`` (connections, 1, k, k), one kernel per
    connection in table order (60 for C3), and ``bias`` (out). **Implementation choice: a masked
    dense convolution.** The connection kernels are scattered into a dense (out, in, k, k) weight
    with zeros where the table has no connection, the ordinary fast conv runs, and the dense weight
    gradient is gathered back at the connections. That costs 96 instead of 60 kernels per image,
    but reuses one well-tested, BLAS-backed op.
    """

    def __init__(
        self,
        table: tuple[tuple[int, ...], ...],
        in_channels: int,
        kernel_size: int = 5,
        *,
        rng: np.random.Generator | None = None,
        dtype=np.float32,
    ) -> None:
        super().__init__()
        self.table = tuple(tuple(row) for row in table)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, len(self.table), kernel_size
        self.src = np.array([i for row in self.table for i in row])
        self.dst = np.array([j for j, row in enumerate(self.table) for _ in row])
        if self.src.max() >= in_channels:
            raise ValueError(
                f"connection table names input map {self.src.max()} but in_channels={in_channels}"
            )
        shape = (len(self.src), 1, kernel_size, kernel_size)
        self.params["weight"] = (
            initializers.uniform(shape, 0.1, rng, dtype) if rng is not None else np.zeros(shape, dtype)
        )
        self.params["bias"] = np.zeros(self.out_channels, dtype)

    def dense_weight(self) -> np.ndarray:
        """The (out, in, k, k) weight with zeros where the table has no connection."""
        w = self.params["weight"]
        dense = np.zeros((self.out_channels, self.in_channels, self.kernel_size, self.kernel_size), w.dtype)
        dense[self.dst, self.src] = w[:, 0]
        return dense

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self.cache = ops.conv2d_forward(x, self.dense_weight(), self.params["bias"])
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dx, dw_dense, db = ops.conv2d_backward(dy, self.cache, need_dx=self.needs_input_grad)
        self._set_grads(weight=dw_dense[self.dst, self.src][:, None], bias=db)
        self.cache = None
        return dx

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={len(self.src)}"
        )


class Linear(Layer):
    """``nn.Linear``: weight (out, in), bias (out), PyTorch's default init."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        rng: np.random.Generator | None = None,
        dtype=np.float32,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        shape = (out_features, in_features)
        self.params["weight"] = initializers.torch_default(shape, rng, dtype)
        if bias:
            self.params["bias"] = initializers.torch_default_bias(shape, out_features, rng, dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self.cache = ops.linear_forward(x, self.params["weight"], self.params.get("bias"))
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dx, dw, db = ops.linear_backward(dy, self.cache, need_dx=self.needs_input_grad)
        self._set_grads(weight=dw, bias=db)
        self.cache = None
        return dx

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


# ----------------------------------------------------------------------------- parameter-free layers
class _Stateless(Layer):
    """A layer around a ``(forward, backward)`` op pair without parameters."""

    _fwd: Any = None
    _bwd: Any = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self.cache = type(self)._fwd(x)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dx = type(self)._bwd(dy, self.cache)
        self.cache = None
        return dx


class ReLU(_Stateless):
    _fwd, _bwd = ops.relu_forward, ops.relu_backward


class Tanh(_Stateless):
    _fwd, _bwd = ops.tanh_forward, ops.tanh_backward


class ScaledTanh(_Stateless):
    """LeCun's f(a) = 1.7159·tanh(2a/3)."""

    _fwd, _bwd = ops.scaled_tanh_forward, ops.scaled_tanh_backward

    def extra_repr(self) -> str:
        return "amplitude=1.7159, slope=0.6667"


class Sigmoid(_Stateless):
    _fwd, _bwd = ops.sigmoid_forward, ops.sigmoid_backward


class Flatten(_Stateless):
    _fwd, _bwd = ops.flatten_forward, ops.flatten_backward


class Identity(Layer):
    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        return dy


class MaxPool2d(Layer):
    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self.cache = ops.maxpool2d_forward(x, self.kernel_size, self.stride, self.padding)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dx = ops.maxpool2d_backward(dy, self.cache)
        self.cache = None
        return dx

    def extra_repr(self) -> str:
        stride = self.stride or self.kernel_size
        return f"kernel_size={self.kernel_size}, stride={stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self.cache = ops.avgpool2d_forward(x, self.kernel_size, self.stride, self.padding)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dx = ops.avgpool2d_backward(dy, self.cache)
        self.cache = None
        return dx


class Subsampling(Layer):
    """LeNet-5's S2/S4: 2×2 window sum × trainable ``weight`` + trainable ``bias``, per map."""

    def __init__(self, channels: int, kernel_size: int = 2, *, dtype=np.float32) -> None:
        super().__init__()
        self.channels, self.kernel_size = channels, kernel_size
        self.params["weight"] = np.ones(channels, dtype)
        self.params["bias"] = np.zeros(channels, dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self.cache = ops.subsampling_forward(
            x, self.params["weight"], self.params["bias"], self.kernel_size
        )
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dx, dw, db = ops.subsampling_backward(dy, self.cache)
        self._set_grads(weight=dw, bias=db)
        self.cache = None
        return dx

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}"


class BatchNorm2d(Layer):
    """``nn.BatchNorm2d`` (affine, tracking running statistics, momentum 0.1, eps 1e-5)."""

    def __init__(self, channels: int, *, momentum: float = 0.1, eps: float = 1e-5, dtype=np.float32) -> None:
        super().__init__()
        self.channels, self.momentum, self.eps = channels, momentum, eps
        self.params["weight"] = np.ones(channels, dtype)
        self.params["bias"] = np.zeros(channels, dtype)
        self.buffers["running_mean"] = np.zeros(channels, dtype)
        self.buffers["running_var"] = np.ones(channels, dtype)
        self.buffers["num_batches_tracked"] = np.zeros((), np.int64)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.training:
            self.buffers["num_batches_tracked"] += 1
        y, self.cache = ops.batchnorm2d_forward(
            x,
            self.params["weight"],
            self.params["bias"],
            self.buffers["running_mean"],
            self.buffers["running_var"],
            training=self.training,
            momentum=self.momentum,
            eps=self.eps,
        )
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dx, dg, db = ops.batchnorm2d_backward(dy, self.cache)
        self._set_grads(weight=dg, bias=db)
        self.cache = None
        return dx

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps}, momentum={self.momentum}"


class Dropout(Layer):
    """Inverted dropout with its own generator (``seed``); the identity in eval mode."""

    def __init__(self, p: float = 0.5, *, seed: int | None = None) -> None:
        super().__init__()
        self.p = p
        self.rng = np.random.default_rng(seed)

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self.cache = ops.dropout_forward(x, self.p, training=self.training, rng=self.rng)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dx = ops.dropout_backward(dy, self.cache)
        self.cache = None
        return dx

    def extra_repr(self) -> str:
        return f"p={self.p}"


class EuclideanRBF(Layer):
    """LeNet-5's output: negative squared distances to fixed ±1 ``prototypes`` (a buffer, no gradient)."""

    def __init__(self, prototypes: np.ndarray, *, dtype=np.float32) -> None:
        super().__init__()
        self.buffers["prototypes"] = np.asarray(prototypes, dtype=dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self.cache = ops.rbf_forward(x, self.buffers["prototypes"])
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dx = ops.rbf_backward(dy, self.cache)
        self.cache = None
        return dx

    def extra_repr(self) -> str:
        k, d = self.buffers["prototypes"].shape
        return f"in_features={d}, out_features={k}, fixed prototypes"
