"""Optimizers by name: SGD (with momentum / Nesterov), Adam and AdamW.

``build_optimizer(model, name="sgd", ...)`` is what the trainer calls. With ``no_decay_bn_bias``
the parameters are split into two groups, and the second (every norm-layer weight and every
bias, i.e. every parameter with ``ndim <= 1``) gets ``weight_decay=0``: the "no bias decay"
trick of Goyal et al. 2017 ("Accurate, Large Minibatch SGD", §5.1 uses it for BN) and of
He et al. 2019 ("Bag of Tricks", §3.1). Decaying a BN γ only rescales what the next layer sees;
it fights the normalisation instead of regularising the function.

The papers' recipes all use plain SGD with momentum 0.9 and L2 weight decay applied to every
parameter, so ``no_decay_bn_bias`` is off by default.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnzoo.errors import ConfigError

__all__ = ["OPTIMIZERS", "build_optimizer", "param_groups"]

OPTIMIZERS = ("sgd", "adam", "adamw")

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm1d/2d/3d, SyncBatchNorm, InstanceNorm
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,  # no parameters, listed for completeness
)


def param_groups(
    model: nn.Module, weight_decay: float, *, no_decay_bn_bias: bool = False
) -> list[dict[str, Any]]:
    """Parameter groups for an optimizer.

    Args:
        model: the module whose trainable parameters (``requires_grad``) are optimized.
        weight_decay: the decay of the first (or only) group.
        no_decay_bn_bias: put every norm-layer parameter and every bias (any parameter with
            ``ndim <= 1``) in a second group with ``weight_decay=0``.

    Returns:
        One group (``no_decay_bn_bias=False``) or two: ``[decay, no_decay]``; empty groups are dropped.
    """
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not no_decay_bn_bias:
        return [{"params": [p for _, p in params], "weight_decay": weight_decay}]
    norm_params: set[int] = set()
    for m in model.modules():
        if isinstance(m, _NORM_TYPES):
            norm_params.update(id(p) for p in m.parameters(recurse=False))
    decay, no_decay = [], []
    for _, p in params:
        (no_decay if p.ndim <= 1 or id(p) in norm_params else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(
    model: nn.Module,
    *,
    name: str,
    lr: float,
    momentum: float,
    nesterov: bool,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
    no_decay_bn_bias: bool = False,
) -> torch.optim.Optimizer:
    """An optimizer for ``model`` by name.

    Args:
        name: ``"sgd"`` (heavy-ball momentum, Nesterov when ``nesterov`` and momentum > 0),
            ``"adam"`` (Kingma & Ba 2015; ``weight_decay`` is L2 added to the gradient) or
            ``"adamw"`` (Loshchilov & Hutter 2019: decoupled weight decay).
        lr: the base (peak) learning rate; schedules multiply it.
        momentum: SGD momentum (ignored by Adam/AdamW, which use ``betas``).
        nesterov: SGD Nesterov momentum (ignored by Adam/AdamW).
        weight_decay: L2 penalty (SGD, Adam) or decoupled decay (AdamW).
        betas: Adam/AdamW moment coefficients.
        no_decay_bn_bias: exclude norm-layer parameters and biases from weight decay.

    Raises:
        ConfigError: an unknown name or an impossible value; the message lists the valid names.
    """
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if lr <= 0:
        raise ConfigError(f"lr must be > 0, got {lr}")
    if weight_decay < 0:
        raise ConfigError(f"weight decay must be >= 0, got {weight_decay}")
    groups = param_groups(model, weight_decay, no_decay_bn_bias=no_decay_bn_bias)
    if not groups:
        raise ConfigError(f"{type(model).__name__} has no trainable parameters to optimize")
    if key == "sgd":
        if not 0 <= momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum}")
        return torch.optim.SGD(
            groups,
            lr=lr,
            momentum=momentum,
            nesterov=bool(nesterov and momentum > 0),
            weight_decay=weight_decay,
        )
    b1, b2 = (float(b) for b in betas)
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ConfigError(f"betas must both be in [0, 1), got {tuple(betas)}")
    cls = torch.optim.Adam if key == "adam" else torch.optim.AdamW
    return cls(groups, lr=lr, betas=(b1, b2), weight_decay=weight_decay)
