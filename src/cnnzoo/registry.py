"""The model registry: ``register_model``, ``list_models`` and ``create_model``.

In the spirit of torchvision's ``models/_api.py`` and timm's ``_registry.py``, but tiny:
a builder function is registered together with a :class:`ModelConfig` that describes the
paper's defaults (input size, normalisation, minimum input size, citation).

Builders are ``@register_model(cfg) def NAME(**kwargs) -> nn.Module`` functions, each calling its
family's one constructor (``_create_resnet(...)``); the registered name is the function's name.
``create_model`` fills ``num_classes`` and ``in_chans`` from the config when they are not given,
and attaches the resolved config to the model as ``model.default_cfg``.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from cnnzoo.data.constants import IMAGENET_MEAN, IMAGENET_STD
from cnnzoo.errors import CnnzooError, ConfigError

if TYPE_CHECKING:  # torch is imported lazily so that `cnnzoo list` starts fast
    from torch import nn

__all__ = [
    "ModelConfig",
    "UnknownModelError",
    "register_model",
    "list_models",
    "create_model",
    "get_model_config",
    "is_model",
    "check_count",
]


@dataclass(frozen=True)
class ModelConfig:
    """A model's defaults, as its paper states them.

    Attributes:
        input_size: (C, H, W) of the paper's input.
        min_input_size: side of the smallest square input that still yields a valid output.
        num_classes: default number of classes (the paper's).
        mean, std: per-channel normalisation of the paper's data (repeated or averaged when
            ``in_chans`` differs).
        paper: full citation.
        year: publication year of the paper.
        family: the family name (``lenet``, ``alexnet``, ``vgg``, ``resnet``...).
        small_input_size: default side for 28×28 grayscale data such as Fashion-MNIST
            (``--input-size`` overrides it).
        small_input_mode: ``"pad"`` (zero-pad 28→32, LeNet's convention) or ``"resize"``.
        notes: where this variant departs from the paper, in one line.
        name: the registry name (filled in by :func:`register_model`).
    """

    input_size: tuple[int, int, int]
    min_input_size: int
    num_classes: int
    paper: str
    year: int
    family: str
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    small_input_size: int | None = None
    small_input_mode: str = "resize"
    notes: str = ""
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "input_size": list(self.input_size),
            "min_input_size": self.min_input_size,
            "num_classes": self.num_classes,
            "mean": list(self.mean),
            "std": list(self.std),
            "small_input_size": self.small_input_size,
            "small_input_mode": self.small_input_mode,
            "paper": self.paper,
            "year": self.year,
            "notes": self.notes,
            **({"extra": dict(self.extra)} if self.extra else {}),
        }


class UnknownModelError(CnnzooError, KeyError):
    """Raised for a model name that is not registered; the message lists the closest names."""

    def __str__(self) -> str:  # KeyError quotes its argument; print the message plainly
        return str(self.args[0]) if self.args else ""


_builders: dict[str, Callable[..., nn.Module]] = {}
_configs: dict[str, ModelConfig] = {}
# Modules that register models when imported. One file per family lives in cnnzoo.models.
_MODEL_PACKAGE = "cnnzoo.models"
_loaded = False


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        importlib.import_module(_MODEL_PACKAGE).import_all()


def register_model(cfg: ModelConfig) -> Callable:
    """Decorator that registers a model builder under its function name, with its default config.

    One style for every model (timm's ``resnet.py``): ``@register_model(_cfg(...)) def resnet50(**kwargs)``
    calling the family's constructor, so that every registered name is a ``def`` you can grep for.
    Registering a name twice is an error, so two families cannot silently shadow each other.
    """

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = fn.__name__
        if key != key.lower() or "." in key or not key.isidentifier():
            raise ValueError(f"model names are lower-case identifiers with no dots, got {key!r}")
        if key in _builders:
            raise ValueError(
                f"model {key!r} is already registered (by {_builders[key].__module__}); pick another name"
            )
        _builders[key] = fn
        _configs[key] = replace(cfg, name=key)
        return fn

    return wrap


def list_models(pattern: str | list[str] = "*", *, family: str | None = None) -> list[str]:
    """Registered model names matching one or more fnmatch wildcards (``"resnet*"``, ``"vgg1?_bn"``)."""
    _ensure_loaded()
    patterns = (
        [pattern]
        if isinstance(pattern, str)
        else list(pattern)
        if isinstance(pattern, list | tuple)
        else [pattern]
    )
    if not all(isinstance(p, str) for p in patterns):
        raise ConfigError(f"list_models takes a wildcard string or a list of them, got {pattern!r}")
    names = [n for n in _builders if any(fnmatch.fnmatchcase(n, p.lower()) for p in patterns)]
    if family is not None:
        names = [n for n in names if _configs[n].family == family]
    return sorted(names, key=_natural_key)


def _natural_key(name: str) -> list[Any]:
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def is_model(name: str) -> bool:
    _ensure_loaded()
    return isinstance(name, str) and name in _builders


def _normalized(name: str) -> str:
    """A name as the registry spells names: lower case, no surrounding or inner spaces, ``_`` for ``-``."""
    return "".join(name.split()).lower().replace("-", "_")


def _check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise UnknownModelError(
            f"a model name is a string such as 'resnet18', got {name!r} ({type(name).__name__}); "
            "run `cnnzoo list` to see the models"
        )
    return name


def _suggestions(name: str) -> list[str]:
    """Registered names close to ``name`` (matched without regard to case, spaces or ``-``/``_``)."""
    key = _normalized(name)
    if key in _builders:
        return [key]
    close = difflib.get_close_matches(key, list(_builders), n=5, cutoff=0.75)
    if not close and len(key) >= 3:  # a family's stem: "mobilenet" -> mobilenet_v2, ...
        close = [n for n in sorted(_builders, key=_natural_key) if n.startswith(key)][:5]
    return close


def _unknown(name: str) -> UnknownModelError:
    close = _suggestions(name)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownModelError(
        f"unknown model {name!r}.{hint} Run `cnnzoo list` to see all {len(_builders)} models."
    )


def _keywords(name: str) -> list[str]:
    """The builder keywords a model takes (its class's constructor's, less the counts)."""
    import inspect

    import torch

    with torch.device("meta"):
        cls = type(_builders[name]())
    params = inspect.signature(cls.__init__).parameters.values()
    skip = {"self", "num_classes", "in_chans"}
    return [p.name for p in params if p.name not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _bad_kwargs(name: str, kwargs: Mapping[str, Any], error: Exception) -> ConfigError:
    """The one-line error of builder keywords that a model refuses (an unknown one, or a bad value)."""
    valid = _keywords(name)
    unknown = [k for k in kwargs if k not in valid]
    takes = f"it takes {', '.join(valid)}" if valid else "it takes no extra keywords"
    if unknown:
        return ConfigError(f"{name} does not take the keyword {unknown[0]!r} (--model-arg); {takes}")
    given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
    return ConfigError(f"{name} cannot be built with {given} ({detail}); {takes}")


def check_count(arg: str, value: Any, owner: str = "") -> int:
    """``value`` as an int if it is a whole number ≥ 1: the check of ``num_classes`` and ``in_chans``.

    A bool, float, string or tensor is refused even where ``int()`` would take it (``True``, 2.5,
    ``"10"``): silently truncating a class count hides a bug. Raises :class:`ConfigError`.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    example = 10 if arg == "num_classes" else 3
    try:  # "10" and 10.0 mean 10
        if not isinstance(value, bool) and float(value).is_integer() and float(value) >= 1:
            example = int(float(value))
    except (TypeError, ValueError, OverflowError):
        pass
    where = f"{owner}: " if owner else ""
    raise ConfigError(
        f"{where}{arg} must be an int of at least 1, got {value!r} ({type(value).__name__}); "
        f"pass an int, e.g. {arg}={example}."
    )


def get_model_config(name: str) -> ModelConfig:
    """The default config of a registered model."""
    _ensure_loaded()
    if _check_name(name) not in _configs:
        raise _unknown(name)
    return _configs[name]


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    weights: str | os.PathLike | Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model, optionally with weights from a file.

    Args:
        name: registry name, e.g. ``"lenet5"`` or ``"resnet50"``.
        num_classes: number of output classes (default: the paper's, or the file's with ``weights``).
        in_chans: number of input channels (default: the paper's, or the file's with ``weights``).
        weights: a checkpoint to load: a torchvision or timm ``state_dict`` (``.pth``, ``.pt``,
            ``.bin`` or ``.safetensors``), a cnnzoo run's ``weights.safetensors``, or such a state
            dict in memory; read safely and loaded through the key maps of :mod:`cnnzoo.weights`.
            A file whose classifier has another class count than ``num_classes`` loads all but the
            head and warns in one line.
        **kwargs: passed to the family's builder (e.g. ``zero_init_residual=True``).

    Raises:
        UnknownModelError: for an unregistered name (or not a string), listing the closest names.
        ConfigError: for a ``num_classes`` or ``in_chans`` that is not an int ≥ 1, or ``kwargs`` that
            the builder refuses (the message lists the keywords it takes).
        cnnzoo.weights.WeightsError: for a weights file that cannot be read or does not fit.
    """
    _ensure_loaded()
    if _check_name(name) not in _builders:
        raise _unknown(name)
    num_classes = None if num_classes is None else check_count("num_classes", num_classes, name)
    in_chans = None if in_chans is None else check_count("in_chans", in_chans, name)
    if weights is not None:  # imported here: torch and safetensors load only when weights are asked for
        from cnnzoo.weights import build_with_weights

        return build_with_weights(name, weights, num_classes=num_classes, in_chans=in_chans, **kwargs)
    cfg = _configs[name]
    num_classes = cfg.num_classes if num_classes is None else num_classes
    in_chans = cfg.input_size[0] if in_chans is None else in_chans
    try:
        model = _builders[name](num_classes=num_classes, in_chans=in_chans, **kwargs)
    except (TypeError, ValueError) as e:
        if isinstance(e, CnnzooError) or not kwargs:
            raise  # already one clear line, or a bug in the builder (not the caller's keywords)
        raise _bad_kwargs(name, kwargs, e) from e
    resolved = replace(cfg, num_classes=num_classes, input_size=(in_chans, *cfg.input_size[1:]))
    model.default_cfg = resolved
    if getattr(model, "min_input_size", None) is None:
        model.min_input_size = cfg.min_input_size
    return model
