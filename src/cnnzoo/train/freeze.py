"""Freezing parameters for transfer learning, BatchNorm's running statistics included.

A frozen parameter has ``requires_grad=False``: it gets no gradient, so the optimizer skips it (its
momentum and weight decay included) while it stays in the optimizer's groups, and unfreezing it
later (gradual unfreezing) keeps the optimizer's state of everything else.

Freezing a BatchNorm's γ and β is not enough to freeze the layer: in train mode it normalises with
the batch's statistics and updates its running mean and variance, so a "frozen" extractor would
still drift towards the new data (and a few-label batch gives noisy statistics). A BatchNorm whose
parameters are all frozen is therefore put in eval mode and *kept* there: its ``train()`` is
replaced, on that instance, by one that stays in eval mode, so ``model.train()`` (which the trainer
calls after every evaluation) leaves it alone. This is timm's ``freeze_batch_norm_2d`` effect
without swapping the module's class, so the state_dict keys, and ``cnnzoo eval``, are unchanged.
A BatchNorm without affine parameters (``affine=False``) has nothing to freeze and is left as it is.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from torch import nn

from cnnzoo.errors import ConfigError

__all__ = ["set_frozen", "frozen_names", "match_names", "is_frozen_norm"]


def _stay_in_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    return nn.Module.train(self, False)


def is_frozen_norm(module: nn.Module) -> bool:
    """Whether ``module`` is a BatchNorm held in eval mode by :func:`set_frozen`."""
    return "train" in vars(module)


def _lock(module: nn.Module) -> None:
    module.train = types.MethodType(_stay_in_eval, module)  # an instance attribute: shadows the method
    nn.Module.train(module, False)


def _unlock(module: nn.Module, training: bool) -> None:
    if is_frozen_norm(module):
        del module.train
    nn.Module.train(module, training)


def set_frozen(model: nn.Module, frozen: Iterable[str]) -> None:
    """Freeze exactly the parameters named in ``frozen`` (``named_parameters()`` names); unfreeze the rest.

    Every BatchNorm whose affine parameters are all frozen is held in eval mode (see the module
    docstring); one with a trainable parameter follows ``model.training`` again.

    Raises:
        ConfigError: a name that is not a parameter of ``model``.
    """
    frozen = set(frozen)
    params = dict(model.named_parameters())
    unknown = sorted(frozen - set(params))
    if unknown:
        raise ConfigError(f"cannot freeze {unknown[:3]}: not parameters of {type(model).__name__}")
    for name, p in params.items():
        p.requires_grad_(name not in frozen)
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.modules.batchnorm._BatchNorm):
            continue
        own = [f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters(recurse=False)]
        if own and all(n in frozen for n in own):
            _lock(module)
        else:
            _unlock(module, model.training)


def frozen_names(model: nn.Module) -> list[str]:
    """The names of the parameters of ``model`` that are frozen (``requires_grad=False``)."""
    return [n for n, p in model.named_parameters() if not p.requires_grad]


def match_names(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """The parameter names matching any fnmatch pattern (``conv1.*``, ``layer1.*``, ``*.bn*``).

    Raises:
        ConfigError: a pattern that matches no parameter (the message shows a few names).
    """
    names = [n for n, _ in model.named_parameters()]
    for pattern in patterns:
        if not any(fnmatchcase(n, pattern) for n in names):
            shown = ", ".join(names[:4])
            raise ConfigError(
                f"--freeze {pattern!r} matches no parameter of {type(model).__name__} (its names look like "
                f"{shown}, ...); use an fnmatch pattern such as 'conv1.*'"
            )
    return [n for n in names if any(fnmatchcase(n, p) for p in patterns)]
