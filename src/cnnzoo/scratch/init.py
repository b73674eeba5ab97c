"""Weight initialisers (NumPy, seeded by a ``np.random.Generator``).

* :func:`torch_default` / :func:`torch_default_bias`: what ``nn.Conv2d``/``nn.Linear`` do by default
  (Kaiming-uniform with a = √5, i.e. U(±1/√fan_in), for weights and biases alike).
* :func:`lecun_uniform`: LeNet-5's U(±2.4/F_in) (LeCun et al. 1998, Appendix A).
* :func:`kaiming_normal`: He et al. 2015, N(0, 2/fan_in), for ReLU networks.
* :func:`xavier_uniform`: Glorot & Bengio 2010, U(±√(6/(fan_in+fan_out))).

With ``rng=None`` a weight is all zeros (useful before loading a state dict).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "fan_in_out",
    "uniform",
    "torch_default",
    "torch_default_bias",
    "lecun_uniform",
    "kaiming_normal",
    "xavier_uniform",
]


def fan_in_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight (out, in, *kernel) as PyTorch counts them."""
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def uniform(
    shape: tuple[int, ...], bound: float, rng: np.random.Generator | None, dtype=np.float32
) -> np.ndarray:
    """U(−bound, bound), or zeros when ``rng`` is None."""
    if rng is None:
        return np.zeros(shape, dtype)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def torch_default(shape: tuple[int, ...], rng: np.random.Generator | None, dtype=np.float32) -> np.ndarray:
    """PyTorch's default weight init for conv and linear layers: U(±1/√fan_in)."""
    return uniform(shape, 1.0 / math.sqrt(fan_in_out(shape)[0]), rng, dtype)


def torch_default_bias(
    weight_shape: tuple[int, ...], n: int, rng: np.random.Generator | None, dtype=np.float32
) -> np.ndarray:
    """PyTorch's default bias init: U(±1/√fan_in) of the layer's weight."""
    return uniform((n,), 1.0 / math.sqrt(fan_in_out(weight_shape)[0]), rng, dtype)


def lecun_uniform(
    shape: tuple[int, ...], rng: np.random.Generator | None, dtype=np.float32, fan_in: int | None = None
) -> np.ndarray:
    """LeNet-5's init, U(±2.4/F_in), F_in the unit's fan-in (1998, Appendix A)."""
    return uniform(shape, 2.4 / (fan_in or fan_in_out(shape)[0]), rng, dtype)


def kaiming_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """He et al. 2015: N(0, 2/fan_in)."""
    return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in_out(shape)[0])).astype(dtype)


def xavier_uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """Glorot & Bengio 2010: U(±√(6/(fan_in + fan_out)))."""
    fi, fo = fan_in_out(shape)
    return uniform(shape, math.sqrt(6.0 / (fi + fo)), rng, dtype)
