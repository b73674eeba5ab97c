"""What the residual families share besides the ResNet class: their config, and the option checks.

:func:`residual_cfg` is the :class:`~cnnzoo.registry.ModelConfig` of every ImageNet or CIFAR
residual network (ResNet, pre-activation, ResNeXt, Wide ResNet, SE, stochastic depth);
:func:`check_resnet_options` is :class:`~cnnzoo.models.resnet.ResNet`'s validation, one clear line
per option that cannot work.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from cnnzoo.errors import ConfigError
from cnnzoo.models._config import cifar_cfg, imagenet_cfg
from cnnzoo.registry import ModelConfig

__all__ = ["residual_cfg", "check_resnet_options", "is_int", "is_real"]


def residual_cfg(
    *,
    cifar: bool,
    paper: str,
    year: int,
    family: str,
    notes: str,
    min_input_size: int | None = None,
    extra: dict[str, Any] | None = None,
) -> ModelConfig:
    """The config of a residual-family model: CIFAR-10 at 32×32 (28×28 data zero-padded to 32)
    or ImageNet at 224 (28×28 data resized to 64: 2×2 maps in the last stage), as
    :mod:`cnnzoo.models._config` has them; the minimum input is the smallest side whose last map is
    2×2 (see the module docstring), 5 or 33 by default."""
    extra = {k: v for k, v in (extra or {}).items() if v is not None}
    build = cifar_cfg if cifar else imagenet_cfg
    return build(
        paper=paper,
        year=year,
        family=family,
        notes=notes,
        extra=extra,
        min_input_size=min_input_size or (5 if cifar else 33),
    )


def check_resnet_options(
    block: str,
    blocks: Mapping[str, Any],
    layers: tuple[int, ...],
    widths: tuple[int, ...],
    groups: Any,
    base_width: Any,
    dropout: Any,
    drop_path_rate: Any,
    drop_path_mode: str,
) -> None:
    """One clear line (a :class:`ConfigError`) for each option of :class:`~cnnzoo.models.resnet.ResNet`
    that cannot work."""
    if block not in blocks:
        raise ConfigError(f"block must be one of {', '.join(blocks)}, got {block!r}")
    if len(layers) != len(widths) or not all(is_int(n) and n >= 1 for n in layers):
        raise ConfigError(f"need one positive block count per stage width {widths}, got layers={layers}")
    if not all(is_int(w) and w >= 1 for w in widths):
        raise ConfigError(f"stage widths must be positive ints, got widths={widths}")
    if not (is_real(drop_path_rate) and 0.0 <= drop_path_rate < 1.0):
        raise ConfigError(
            f"drop_path_rate is the last block's drop probability 1 - p_L and must be in [0, 1), "
            f"got {drop_path_rate!r}; the paper's is 0.5"
        )
    if drop_path_mode not in ("batch", "sample"):
        raise ConfigError(
            f"drop_path_mode must be 'batch' (the paper) or 'sample' (timm), got {drop_path_mode!r}"
        )
    if not (is_real(dropout) and 0.0 <= dropout < 1.0):
        raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
    if dropout > 0 and block.endswith("bottleneck"):
        raise ConfigError(
            "dropout sits between the two convs of a basic block (Wide ResNet): use block='basic'"
        )
    if not (is_int(groups) and groups >= 1 and is_int(base_width) and base_width >= 1):
        raise ConfigError(
            f"groups (cardinality) and base_width must be positive ints, got groups={groups!r}, "
            f"base_width={base_width!r}"
        )
    if (groups, base_width) != (1, 64) and block.endswith("bottleneck"):
        bad = [w for w in widths if w * base_width % 64]
        if bad:
            raise ConfigError(
                f"base_width={base_width} gives a fractional per-group width planes * base_width / 64 at "
                f"planes={bad[0]}: pick a base_width that makes it whole at every stage width {widths}"
            )


def is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)
