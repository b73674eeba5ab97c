"""Wide Residual Networks: WRN-n-k on CIFAR, and the wide bottleneck ResNets on ImageNet.

Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016. Table 1: a 3×3 conv of 16 filters,
then three groups of N = (n − 4) / 6 pre-activation basic blocks B(3,3) of widths 16k, 32k, 64k
on 32², 16², 8² maps, a BN-ReLU, global average pool and fc; optional dropout between the two
convs of every block (§2.4). Every network is a :class:`~cnnzoo.models.resnet.ResNet` with
``block="preact_basic"`` and wider ``widths``: WRN is an argument, not a fork.

======================  ==============  =========  ===============================================
name                    blocks × group  widths     the paper
======================  ==============  =========  ===============================================
``wrn16_8``             2               128-256-512  11.0 M, CIFAR-10 error 4.27% (Table 5)
``wrn28_10``            4               160-320-640  36.5 M, CIFAR-10 error 4.00% (Table 5)
``wrn40_4``             6               64-128-256   8.9 M, CIFAR-10 error 4.53% (Table 5)
``wide_resnet50_2``     3-4-6-3         bottleneck   WRN-50-2-bottleneck (§4, ImageNet): 68.9 M
``wide_resnet101_2``    3-4-23-3        bottleneck   the same widening of ResNet-101 (torchvision)
======================  ==============  =========  ===============================================

Choices (the authors' code, szagoruyko/wide-residual-networks):

* **CIFAR**: the 16-filter stem is a bare conv; the first block of each group changes the width,
  so its BN-ReLU is shared by the branch and a bare 1×1 projection shortcut (stride in the first
  3×3 conv and in the projection); every other shortcut is the identity. ``dropout`` (0.3 in the
  paper's dropout rows, Table 6) is off by default: Table 5's errors are without it.
  ``widen_factor=`` rebuilds a registered depth at another k (e.g. ``wrn28_10(widen_factor=2)``,
  the reduced instance the learn-check uses on a CPU).
* **ImageNet**: the wide bottleneck doubles the inner width of every ResNet bottleneck (the 1×1
  and 3×3 convs; outputs stay 256-2048), which is ``base_width=128``; torchvision's layout and
  keys (stride in the 3×3), so torchvision's checkpoints load as they are.
* **Init**: He normal (fan-out), BN γ = 1 and β = 0, as :class:`ResNet`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from cnnzoo.errors import ConfigError
from cnnzoo.models._residual import is_int, residual_cfg
from cnnzoo.models.resnet import RESNET_DEPTHS, ResNet
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "PAPER",
    "WRNVariant",
    "VARIANTS",
    "wrn_widths",
    "wrn16_8",
    "wrn28_10",
    "wrn40_4",
    "wide_resnet50_2",
    "wide_resnet101_2",
]

PAPER = "S. Zagoruyko, N. Komodakis. Wide Residual Networks. BMVC 2016."


class WRNVariant(NamedTuple):
    """One registered wide ResNet: depth n and widening factor k (CIFAR) or the ImageNet depth."""

    depth: int
    widen_factor: int
    cifar: bool
    reported: dict[str, Any] | None = None
    macs: dict[str, Any] | None = None


def _table5(error: float) -> dict[str, Any]:
    return {
        "dataset": "cifar10+",
        "error": error,
        "source": "Zagoruyko & Komodakis 2016, Table 5 (no dropout)",
    }


def _tv(weights: str, top1: float, top5: float, gmacs: float) -> tuple[dict[str, Any], dict[str, Any]]:
    src = f"torchvision {weights}"
    return (
        {"dataset": "imagenet", "top1": top1, "top5": top5, "crop": 224, "source": src},
        {"value": gmacs * 1e9, "source": src},
    )


_WRN50 = _tv("Wide_ResNet50_2_Weights.IMAGENET1K_V1", 78.468, 94.086, 11.398)
_WRN101 = _tv("Wide_ResNet101_2_Weights.IMAGENET1K_V1", 78.848, 94.284, 22.753)

VARIANTS: dict[str, WRNVariant] = {
    "wrn16_8": WRNVariant(16, 8, True, _table5(4.27)),
    "wrn28_10": WRNVariant(28, 10, True, _table5(4.00)),
    "wrn40_4": WRNVariant(40, 4, True, _table5(4.53)),
    "wide_resnet50_2": WRNVariant(50, 2, False, *_WRN50),
    "wide_resnet101_2": WRNVariant(101, 2, False, *_WRN101),
}


def wrn_widths(depth: int, widen_factor: Any) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(blocks per group, group widths) of WRN-``depth``-``widen_factor`` (Table 1).

    Raises:
        ConfigError: for a depth that is not 6N + 4 or a widening factor that is not an int ≥ 1.
    """
    if (depth - 4) % 6 or depth < 10:
        raise ConfigError(f"a WRN's depth is 6N + 4 (10, 16, 22, 28, 40...), got {depth}")
    if not (is_int(widen_factor) and widen_factor >= 1):
        raise ConfigError(
            f"widen_factor k must be an int of at least 1 (widths 16k, 32k, 64k), got {widen_factor!r}"
        )
    n = (depth - 4) // 6
    k = int(widen_factor)
    return (n, n, n), (16 * k, 32 * k, 64 * k)


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    if v.cifar:
        notes = f"WRN-{v.depth}-{v.widen_factor}: pre-activation basic blocks, widths ×{v.widen_factor}"
    else:
        notes = "ResNet bottlenecks with twice the inner width; torchvision layout and keys"
    return residual_cfg(
        cifar=v.cifar,
        paper=PAPER,
        year=2016,
        family="wrn_cifar" if v.cifar else "wide_resnet",
        notes=notes,
        extra={"reported": v.reported, "macs": v.macs},
    )


def _create_wide_resnet(name: str, **kwargs: Any) -> ResNet:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it
    (``widen_factor=`` rebuilds a CIFAR WRN's widths at another k)."""
    v = VARIANTS[name]
    if v.cifar:
        layers, widths = wrn_widths(v.depth, kwargs.pop("widen_factor", v.widen_factor))
        arch: dict[str, Any] = dict(block="preact_basic", layers=layers, widths=widths, num_classes=10,
                                    stem="cifar", stem_width=16, stem_act=False)  # fmt: skip
    else:
        arch = dict(block="bottleneck", layers=RESNET_DEPTHS[v.depth][1], base_width=64 * v.widen_factor)
    return ResNet(**{**arch, **kwargs})


@register_model(_cfg("wrn16_8"))
def wrn16_8(**kwargs: Any) -> ResNet:
    """WRN-16-8 (CIFAR, N = 2, widths 128-256-512): 11.0 M params. Options as :class:`ResNet`."""
    return _create_wide_resnet("wrn16_8", **kwargs)


@register_model(_cfg("wrn28_10"))
def wrn28_10(**kwargs: Any) -> ResNet:
    """WRN-28-10 (CIFAR, N = 4, widths 160-320-640): 36.5 M params, 4.00% CIFAR-10 error."""
    return _create_wide_resnet("wrn28_10", **kwargs)


@register_model(_cfg("wrn40_4"))
def wrn40_4(**kwargs: Any) -> ResNet:
    """WRN-40-4 (CIFAR, N = 6, widths 64-128-256): 8.9 M params."""
    return _create_wide_resnet("wrn40_4", **kwargs)


@register_model(_cfg("wide_resnet50_2"))
def wide_resnet50_2(**kwargs: Any) -> ResNet:
    """WRN-50-2-bottleneck (ImageNet): ResNet-50 with twice the bottleneck width, 68.9 M params."""
    return _create_wide_resnet("wide_resnet50_2", **kwargs)


@register_model(_cfg("wide_resnet101_2"))
def wide_resnet101_2(**kwargs: Any) -> ResNet:
    """WRN-101-2-bottleneck (ImageNet): ResNet-101 with twice the bottleneck width (torchvision)."""
    return _create_wide_resnet("wide_resnet101_2", **kwargs)
