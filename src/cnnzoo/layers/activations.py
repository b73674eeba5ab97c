"""One way to name an activation: :func:`get_act` and :func:`create_act`.

Blocks take their activation as ``act_layer``: a name from :data:`ACTIVATIONS`, an ``nn.Module``
class (or any factory returning a module), or ``None`` for none. The names are the papers':

==================  ===========================  ==============================================
name                module                       used by
==================  ===========================  ==============================================
``relu``            ``nn.ReLU``                  AlexNet onwards; ResNet, MobileNet v1 (paper)
``relu6``           ``nn.ReLU6``                 MobileNet v1 (TF release), v2; min(max(x, 0), 6)
``hard_swish``      ``nn.Hardswish``             MobileNet v3: x · relu6(x + 3) / 6
``hard_sigmoid``    ``nn.Hardsigmoid``           MobileNet v3's SE gate: relu6(x + 3) / 6
``swish``/``silu``  ``nn.SiLU``                  EfficientNet: x · σ(x)
``sigmoid``         ``nn.Sigmoid``               the SE gate of SENet and EfficientNet
``gelu``            ``nn.GELU``                  (exact erf form)
``tanh``            ``nn.Tanh``
``identity``        ``nn.Identity``              a linear layer (the MBConv's projection)
==================  ===========================  ==============================================

MobileNet v3's hard sigmoid is ``relu6(x + 3) / 6`` (the paper's Eq. 2 and torchvision's), not
the ``0.2x + 0.5`` of Keras' older ``hard_sigmoid``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from cnnzoo.errors import ConfigError

__all__ = ["ACTIVATIONS", "ActLayer", "UnknownActivationError", "get_act", "create_act"]

#: A block's ``act_layer``: a name, a module class / factory, or ``None`` (no activation).
ActLayer = str | Callable[..., nn.Module] | None

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hard_swish": nn.Hardswish,
    "hard_sigmoid": nn.Hardsigmoid,
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}
# torch's spellings of the same functions
_ALIASES = {"hardswish": "hard_swish", "hardsigmoid": "hard_sigmoid", "none": "identity"}
# the modules that can overwrite their input (the others take no ``inplace`` argument)
_INPLACE = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU)


class UnknownActivationError(ConfigError):
    """An activation name cnnzoo does not know; the message lists the known ones."""


def get_act(name: ActLayer) -> Callable[..., nn.Module] | None:
    """The module class (or factory) of an activation.

    Args:
        name: a name from :data:`ACTIVATIONS` (case-insensitive; torch's ``hardswish``,
            ``hardsigmoid`` also work), an ``nn.Module`` class or factory (returned unchanged),
            or ``None`` (returned unchanged: no activation).

    Raises:
        UnknownActivationError: for any other name, listing the valid ones.
    """
    if name is None or callable(name):
        return name
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        raise UnknownActivationError(
            f"unknown activation {name!r}; use one of {', '.join(ACTIVATIONS)} (or pass an nn.Module class)"
        )
    return ACTIVATIONS[key]


def create_act(name: ActLayer, *, inplace: bool = False) -> nn.Module | None:
    """An activation module, or ``None`` for ``name=None``.

    ``inplace`` is passed to the activations that support it (ReLU, ReLU6, hard swish, hard
    sigmoid, SiLU) and ignored for the others, so a block can ask for it whatever its activation.
    """
    factory = get_act(name)
    if factory is None:
        return None
    if inplace and isinstance(factory, type) and issubclass(factory, _INPLACE):
        return factory(inplace=True)
    return factory()
