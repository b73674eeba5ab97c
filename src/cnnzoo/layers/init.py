"""The named weight initialisations of the papers, in one place.

Each ``*_init(...)`` returns a *layer init*: a function that fills one layer's ``weight`` (and
``bias``, when asked) in place. :func:`init_weights_` applies layer inits to a model by module
type, in module order (so the random stream is the one a hand-written loop would draw).

=========================  ===================================================  ====================
init                       weights                                              used by
=========================  ===================================================  ====================
:func:`normal_init`        N(0, std²), bias a constant                          AlexNet (std 0.01,
                                                                                biases 0/1), VGG's
                                                                                §3.1 (std 0.1)
:func:`he_normal_init`     N(0, 2 / fan) (He et al., ICCV 2015), fan-out        ResNet, VGG (tv)
                           (torchvision's) or fan-in
:func:`xavier_uniform_init` U(±√(6 / (fan_in + fan_out))) (Glorot & Bengio       GoogLeNet (BVLC), VGG
                           2010)                                                ``glorot``
:func:`lecun_uniform_init` U(±2.4 / fan_in) (LeCun et al. 1998, Appendix A)     LeNet-5
:func:`trunc_normal_init`  N(0, std²) truncated to [a, b]                       GoogLeNet (tv)
:func:`norm_init`          BN γ = 1, β = 0
:func:`zero_init_residual_`  γ = 0 in each block's last BN (Goyal et al. 2017)  ResNet option
=========================  ===================================================  ====================

Meta tensors (a model built on ``torch.device("meta")`` for shapes, parameter counts and cost
tables) are skipped here, once for every init: they hold no values, and ``normal_`` on a meta
tensor takes torch's slow reference path.

:func:`empty_linear` builds an ``nn.Linear`` without PyTorch's default init, for the large fc
layers a paper init overwrites anyway (AlexNet's and VGG's fc6: 38 M and 103 M weights).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import torch
from torch import nn

__all__ = [
    "LayerInit",
    "is_meta",
    "init_weights_",
    "normal_init",
    "he_normal_init",
    "xavier_uniform_init",
    "lecun_uniform_init",
    "trunc_normal_init",
    "norm_init",
    "zero_init_residual_",
    "empty_linear",
]

#: Fills one layer's parameters in place.
LayerInit = Callable[[nn.Module], None]


def is_meta(module: nn.Module) -> bool:
    """Whether the module's parameters live on the meta device (shapes only, nothing to fill)."""
    p = next(module.parameters(), None)
    return p is not None and p.is_meta


def _skips_meta(fn: LayerInit) -> LayerInit:
    @functools.wraps(fn)
    @torch.no_grad()
    def init(layer: nn.Module) -> None:
        if not is_meta(layer):
            fn(layer)

    return init


def _fill_bias(layer: nn.Module, bias: float | None) -> None:
    if bias is not None and getattr(layer, "bias", None) is not None:
        nn.init.constant_(layer.bias, bias)


def normal_init(std: float = 0.01, bias: float | None = 0.0) -> LayerInit:
    """Weights N(0, std²), bias ``bias`` (``None``: leave it)."""

    @_skips_meta
    def init(layer: nn.Module) -> None:
        nn.init.normal_(layer.weight, 0.0, std)
        _fill_bias(layer, bias)

    return init


def he_normal_init(mode: str = "fan_out", nonlinearity: str = "relu", bias: float | None = 0.0) -> LayerInit:
    """He et al. (2015) normal weights, std = gain / √fan (``mode`` ``"fan_out"`` as torchvision's
    ResNet and VGG, or ``"fan_in"``); bias ``bias`` (``None``: leave it)."""

    @_skips_meta
    def init(layer: nn.Module) -> None:
        nn.init.kaiming_normal_(layer.weight, mode=mode, nonlinearity=nonlinearity)
        _fill_bias(layer, bias)

    return init


def xavier_uniform_init(bias: float | None = 0.0) -> LayerInit:
    """Glorot & Bengio (2010) normalised uniform weights; bias ``bias`` (``None``: leave it)."""

    @_skips_meta
    def init(layer: nn.Module) -> None:
        nn.init.xavier_uniform_(layer.weight)
        _fill_bias(layer, bias)

    return init


def lecun_uniform_init(gain: float = 2.4, bias: float | None = 0.0) -> LayerInit:
    """LeNet-5's weights U(−gain / F_in, gain / F_in), F_in the unit's fan-in (Appendix A: 2.4)."""

    @_skips_meta
    def init(layer: nn.Module) -> None:
        bound = gain / layer.weight[0].numel()
        nn.init.uniform_(layer.weight, -bound, bound)
        _fill_bias(layer, bias)

    return init


def trunc_normal_init(
    std: float = 0.01, a: float = -2.0, b: float = 2.0, bias: float | None = None
) -> LayerInit:
    """Weights N(0, std²) truncated to [a, b] (absolute bounds, as ``nn.init.trunc_normal_``)."""

    @_skips_meta
    def init(layer: nn.Module) -> None:
        nn.init.trunc_normal_(layer.weight, mean=0.0, std=std, a=a, b=b)
        _fill_bias(layer, bias)

    return init


def norm_init(weight: float = 1.0, bias: float = 0.0) -> LayerInit:
    """A norm layer's γ = ``weight`` and β = ``bias`` (1 and 0: the identity at the start)."""

    @_skips_meta
    def init(layer: nn.Module) -> None:
        if getattr(layer, "weight", None) is not None:
            nn.init.constant_(layer.weight, weight)
            nn.init.constant_(layer.bias, bias)

    return init


def init_weights_(model: nn.Module, rules: Mapping[type | tuple[type, ...], LayerInit]) -> None:
    """Apply ``rules`` (module type → layer init) to every submodule, in module order.

    The first rule whose type matches a module fills it; modules no rule matches keep their
    parameters. Does nothing for a model on the meta device.
    """
    if is_meta(model):
        return
    items = list(rules.items())
    for m in model.modules():
        for types, init in items:
            if isinstance(m, types):
                init(m)
                break


def zero_init_residual_(model: nn.Module) -> None:
    """Call ``zero_init_last()`` on every block that has one: each residual branch then starts at
    zero and its block as its shortcut (Goyal et al., "Accurate, Large Minibatch SGD", 2017, §5.1)."""
    if is_meta(model):
        return
    with torch.no_grad():
        for m in model.modules():
            zero_last = getattr(m, "zero_init_last", None)
            if callable(zero_last) and m is not model:
                zero_last()


def empty_linear(in_features: int, out_features: int, bias: bool = True) -> nn.Linear:
    """An ``nn.Linear`` with uninitialised memory on the current default device, for an init to fill.

    Skipping PyTorch's default init saves a random pass over the weights (seconds for VGG's fc6).
    Under ``torch.device("meta")`` it stays on the meta device.
    """
    return nn.Linear(in_features, out_features, bias, device="meta").to_empty(device=torch.empty(0).device)
