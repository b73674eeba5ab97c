"""Optimizers by name: SGD (with momentum / Nesterov), Adam, AdamW, RMSprop and RMSprop as TensorFlow has it.

``build_optimizer(model, name="sgd", ...)`` is what the trainer calls. With ``no_decay_bn_bias``
the parameters are split into two groups, and the second (every norm-layer weight and every
bias, i.e. every parameter with ``ndim <= 1``) gets ``weight_decay=0``: the "no bias decay"
trick of Goyal et al. 2017 ("Accurate, Large Minibatch SGD", §5.1 uses it for BN) and of
He et al. 2019 ("Bag of Tricks", §3.1). Decaying a BN γ only rescales what the next layer sees;
it fights the normalisation instead of regularising the function.

The papers' recipes up to ResNet use plain SGD with momentum 0.9 and L2 weight decay applied to
every parameter, so ``no_decay_bn_bias`` is off by default. MNASNet (Tan et al. 2019, §5) and
EfficientNet (Tan & Le 2019, §5.2) train with TensorFlow's RMSProp (decay 0.9, momentum 0.9,
epsilon 1e-3), which is not PyTorch's :class:`torch.optim.RMSprop` with the same numbers:
:class:`RMSpropTF` is TensorFlow's update (see its docstring).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnzoo.errors import ConfigError

__all__ = ["OPTIMIZERS", "OPTIMIZER_DEFAULTS", "RMSpropTF", "build_optimizer", "param_groups"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "rmsprop_tf")

#: Each optimizer's own ``alpha`` (square-average decay) and ``eps`` when the config leaves them unset:
#: PyTorch's defaults for its optimizers, TensorFlow's (``tf.compat.v1.train.RMSPropOptimizer``) for
#: ``rmsprop_tf``. The EfficientNet/MNASNet recipes set ``eps`` 1e-3 themselves.
OPTIMIZER_DEFAULTS: dict[str, dict[str, float]] = {
    "adam": {"eps": 1e-8},
    "adamw": {"eps": 1e-8},
    "rmsprop": {"alpha": 0.99, "eps": 1e-8},
    "rmsprop_tf": {"alpha": 0.9, "eps": 1e-10},
}


class RMSpropTF(torch.optim.Optimizer):
    """RMSProp as TensorFlow applies it (``tf.compat.v1.train.RMSPropOptimizer``, Hinton's lecture 6e).

    Per parameter, with gradient ``g`` (plus ``weight_decay · p``, L2 as a TF loss term would add)::

        ms  = alpha · ms + (1 - alpha) · g²                 ms starts at 1 (TF), not 0 (PyTorch)
        mom = momentum · mom + lr · g / sqrt(ms + eps)      eps inside the root; lr inside the momentum
        p   = p - mom

    It differs from :class:`torch.optim.RMSprop` in three ways that matter at the EfficientNet settings
    (alpha 0.9, eps 1e-3, momentum 0.9): PyTorch adds ``eps`` outside the root (1e-3 there is ~30×
    smaller than inside it at ``ms`` ≈ 1e-6), starts ``ms`` at 0 (huge first steps, ``g / sqrt(0.1 g²)``),
    and multiplies the momentum buffer by the *current* lr, so a schedule's change of lr rescales the
    whole velocity at once instead of only the new contributions. timm's ``RMSpropTF`` (the reference
    for our tests) does the same with ``lr_in_momentum=True``.

    Args:
        params: parameters or parameter groups.
        lr: the learning rate.
        alpha: the decay of the squared-gradient average (TF's ``decay``).
        eps: added to the average inside the square root (TF's ``epsilon``).
        momentum: TF's momentum (0: ``p -= lr · g / sqrt(ms + eps)``).
        weight_decay: L2 penalty added to the gradient.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.9,
        eps: float = 1e-10,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        if lr <= 0 or eps <= 0 or not 0 <= alpha < 1 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ConfigError(
                f"RMSpropTF needs lr > 0, eps > 0, alpha and momentum in [0, 1), weight decay >= 0; got "
                f"lr={lr}, eps={eps}, alpha={alpha}, momentum={momentum}, weight_decay={weight_decay}"
            )
        super().__init__(
            params, dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay)
        )

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            momentum, wd = group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad if wd == 0 else p.grad.add(p, alpha=wd)
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
                    if momentum > 0:
                        state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                ms = state["square_avg"]
                ms.add_(g * g - ms, alpha=1.0 - alpha)  # TF's order of operations (ApplyRMSProp)
                denom = ms.add(eps).sqrt_()
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf.mul_(momentum).addcdiv_(g, denom, value=lr)
                    p.sub_(buf)
                else:
                    p.addcdiv_(g, denom, value=-lr)
        return loss


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
    alpha: float | None = None,
    eps: float | None = None,
    groups: list[dict[str, Any]] | None = None,
) -> torch.optim.Optimizer:
    """An optimizer for ``model`` by name.

    Args:
        name: ``"sgd"`` (heavy-ball momentum, Nesterov when ``nesterov`` and momentum > 0),
            ``"adam"`` (Kingma & Ba 2015; ``weight_decay`` is L2 added to the gradient),
            ``"adamw"`` (Loshchilov & Hutter 2019: decoupled weight decay), ``"rmsprop"``
            (:class:`torch.optim.RMSprop`) or ``"rmsprop_tf"`` (:class:`RMSpropTF`, TensorFlow's form).
        lr: the base (peak) learning rate; schedules multiply it.
        momentum: SGD and RMSprop momentum (ignored by Adam/AdamW, which use ``betas``).
        nesterov: SGD Nesterov momentum (ignored by the others).
        weight_decay: L2 penalty (SGD, Adam, RMSprop) or decoupled decay (AdamW).
        betas: Adam/AdamW moment coefficients.
        no_decay_bn_bias: exclude norm-layer parameters and biases from weight decay.
        alpha: RMSprop's squared-gradient decay (None: :data:`OPTIMIZER_DEFAULTS`).
        eps: Adam's, AdamW's and RMSprop's epsilon (None: :data:`OPTIMIZER_DEFAULTS`).
        groups: the parameter groups to optimize instead of :func:`param_groups` of ``model``
            (transfer learning's per-stage learning rates); a group without ``lr`` or
            ``weight_decay`` takes ``lr`` and ``weight_decay``.

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
    if groups is None:
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
    own = OPTIMIZER_DEFAULTS[key]
    eps = own["eps"] if eps is None else float(eps)
    if eps <= 0:
        raise ConfigError(f"eps must be > 0, got {eps}")
    if key in ("rmsprop", "rmsprop_tf"):
        alpha = own["alpha"] if alpha is None else float(alpha)
        if not (0 <= alpha < 1 and 0 <= momentum < 1):
            raise ConfigError(f"RMSprop's alpha and momentum must be in [0, 1), got {alpha} and {momentum}")
        cls = torch.optim.RMSprop if key == "rmsprop" else RMSpropTF
        return cls(groups, lr=lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay)
    b1, b2 = (float(b) for b in betas)
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ConfigError(f"betas must both be in [0, 1), got {tuple(betas)}")
    cls = torch.optim.Adam if key == "adam" else torch.optim.AdamW
    return cls(groups, lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay)
