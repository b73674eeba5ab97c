"""LeNet-5 as scratch networks, layer for layer the torch zoo's ``cnnzoo.models.lenet``.

The children carry the torch model's submodule names (``c1, act1, s2, act2, c3, act3, s4, act4, c5,
act5, f6, act6, output``, plus a parameter-free ``flatten``), so ``state_dict`` keys are identical and
weights move between the engines unchanged (:mod:`cnnzoo.scratch.interop`).

* :func:`lenet5` — LeCun et al. 1998: scaled tanh after every layer from C1 to F6 (S2 and S4
  included), trainable subsampling, C3 with the partial connections of Table I (a masked dense
  conv, see :class:`~cnnzoo.scratch.layers.PartialConv2d`), and the Euclidean RBF output with the
  same fixed ±1 prototypes as the torch model (from the torch-free ``cnnzoo.models._lenet_tables``).
  Init U(±2.4/F_in) (Appendix A).
* :func:`lenet5_relu` — the course version: ReLU, 2×2 max-pool, full C3, linear output; PyTorch's
  default init.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cnnzoo.errors import ConfigError
from cnnzoo.models._lenet_tables import C3_TABLE, rbf_prototypes_numpy
from cnnzoo.scratch import init as initializers
from cnnzoo.scratch import layers as L

__all__ = ["lenet5", "lenet5_relu", "create_net", "list_nets"]


def lenet5(
    *, num_classes: int = 10, in_chans: int = 1, seed: int | None = 0, dtype=np.float32
) -> L.Sequential:
    """The 1998 LeNet-5 in NumPy. ``seed=None`` leaves the weights zero (to load a state dict)."""
    rng = np.random.default_rng(seed) if seed is not None else None
    c1 = L.Conv2d(in_chans, 6, 5, rng=None, dtype=dtype)
    c3 = L.PartialConv2d(C3_TABLE, 6, 5, rng=None, dtype=dtype)
    c5 = L.Conv2d(16, 120, 5, rng=None, dtype=dtype)
    f6 = L.Linear(120, 84, rng=None, dtype=dtype)
    if rng is not None:  # Appendix A: U(±2.4/F_in), biases 0 (set by rng=None above)
        for layer in (c1, c5, f6):
            layer.params["weight"][...] = initializers.lecun_uniform(layer.params["weight"].shape, rng, dtype)
        start = 0
        for row in C3_TABLE:  # each C3 map's fan-in is 25 × its number of inputs
            w = c3.params["weight"][start : start + len(row)]
            w[...] = initializers.lecun_uniform(w.shape, rng, dtype, fan_in=25 * len(row))
            start += len(row)
    return L.Sequential(
        [
            ("c1", c1),
            ("act1", L.ScaledTanh()),  # (N, 6, 28, 28)
            ("s2", L.Subsampling(6, dtype=dtype)),
            ("act2", L.ScaledTanh()),  # (N, 6, 14, 14)
            ("c3", c3),
            ("act3", L.ScaledTanh()),  # (N, 16, 10, 10)
            ("s4", L.Subsampling(16, dtype=dtype)),
            ("act4", L.ScaledTanh()),  # (N, 16, 5, 5)
            ("c5", c5),
            ("act5", L.ScaledTanh()),  # (N, 120, 1, 1)
            ("flatten", L.Flatten()),  # (N, 120)
            ("f6", f6),
            ("act6", L.ScaledTanh()),  # (N, 84)
            ("output", L.EuclideanRBF(rbf_prototypes_numpy(num_classes, 84), dtype=dtype)),  # (N, classes)
        ]
    )


def lenet5_relu(
    *, num_classes: int = 10, in_chans: int = 1, seed: int | None = 0, dtype=np.float32
) -> L.Sequential:
    """The course LeNet-5 in NumPy: ReLU, max-pool, full C3, linear output; PyTorch's default init."""
    rng = np.random.default_rng(seed) if seed is not None else None
    return L.Sequential(
        [
            ("c1", L.Conv2d(in_chans, 6, 5, rng=rng, dtype=dtype)),
            ("act1", L.ReLU()),  # (N, 6, 28, 28)
            ("s2", L.MaxPool2d(2)),
            ("act2", L.Identity()),  # (N, 6, 14, 14)
            ("c3", L.Conv2d(6, 16, 5, rng=rng, dtype=dtype)),
            ("act3", L.ReLU()),  # (N, 16, 10, 10)
            ("s4", L.MaxPool2d(2)),
            ("act4", L.Identity()),  # (N, 16, 5, 5)
            ("c5", L.Conv2d(16, 120, 5, rng=rng, dtype=dtype)),
            ("act5", L.ReLU()),  # (N, 120, 1, 1)
            ("flatten", L.Flatten()),  # (N, 120)
            ("f6", L.Linear(120, 84, rng=rng, dtype=dtype)),
            ("act6", L.ReLU()),  # (N, 84)
            ("output", L.Linear(84, num_classes, rng=rng, dtype=dtype)),  # (N, classes)
        ]
    )


_NETS: dict[str, Callable[..., L.Sequential]] = {"lenet5": lenet5, "lenet5_relu": lenet5_relu}


def list_nets() -> list[str]:
    return sorted(_NETS)


def create_net(name: str, **kwargs) -> L.Sequential:
    """Build a scratch network by its zoo name; unknown names get the list of known ones."""
    if name not in _NETS:
        import difflib

        close = difflib.get_close_matches(name, list(_NETS), n=2)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ConfigError(
            f"the NumPy engine has no model {name!r}.{hint} It builds: {', '.join(list_nets())}"
        )
    return _NETS[name](**kwargs)
