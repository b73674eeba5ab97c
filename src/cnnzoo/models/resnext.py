"""ResNeXt: aggregated residual transformations, as grouped convolutions.

Xie, Girshick, Dollár, Tu, He, "Aggregated Residual Transformations for Deep Neural Networks",
CVPR 2017, Table 1 and Fig. 3(c): ResNet's bottleneck with its 3×3 conv split into C groups
(the cardinality) of width d, so the inner width is C·d at the first stage and doubles with each
stage. Every network is a :class:`~cnnzoo.models.resnet.ResNet` with ``groups=C`` and
``base_width=d`` (the width is ``floor(planes · d / 64) · C``, :func:`cnnzoo.layers.residual.
bottleneck_width`): ResNeXt is an argument of the shared bottleneck, not a fork.

=======================  ========  =====  ===========  ============================================
name                     stages    C × d  inner width  the paper / library
=======================  ========  =====  ===========  ============================================
``resnext50_32x4d``      3-4-6-3   32×4   128…1024     25.0 M, 4.2 G MACs, 22.2% top-1 err (Tab. 3)
``resnext101_32x4d``     3-4-23-3  32×4   128…1024     21.2% top-1 error (Table 3); timm's layout
``resnext101_32x8d``     3-4-23-3  32×8   256…2048     torchvision's (not in the paper)
``resnext101_64x4d``     3-4-23-3  64×4   256…2048     20.4% / 5.3% (Table 5, 224 crop)
``resnext29_8x64d``      3-3-3     8×64   512…2048     CIFAR, 34.4 M, CIFAR-10 error 3.65% (Tab. 7)
``resnext29_16x64d``     3-3-3     16×64  1024…4096    CIFAR, 68.1 M, CIFAR-10 error 3.58% (Tab. 7)
=======================  ========  =====  ===========  ============================================

Choices:

* **ImageNet**: torchvision's layout and keys (stride in the grouped 3×3, as the authors' code
  facebookresearch/ResNeXt, projection shortcuts with BN where the shape changes), so
  torchvision's and timm's checkpoints load as they are.
* **CIFAR** (§5, "Experiments on CIFAR"; the authors' ``resnext.lua``): a 3×3 conv of 64 filters
  with BN-ReLU, three stages of 3 bottlenecks (29 = 9·3 + 2 layers) with outputs 256, 512, 1024 on
  32², 16², 8² maps, d = 64 at the first stage (the width C·d doubles per stage), projection
  shortcuts (option B), global average pool and fc.
* **MACs**: conv and linear multiply-adds at 224 equal torchvision's published ``_ops``
  (4.23 G, 16.41 G, 15.46 G); the paper rounds ResNeXt-50 to 4.2 G.
* **Init**: He normal (fan-out), BN γ = 1 and β = 0, as :class:`ResNet`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from cnnzoo.models._residual import residual_cfg
from cnnzoo.models.resnet import RESNET_DEPTHS, ResNet
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "PAPER",
    "ResNeXtVariant",
    "VARIANTS",
    "resnext50_32x4d",
    "resnext101_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "resnext29_8x64d",
    "resnext29_16x64d",
]

PAPER = (
    "S. Xie, R. Girshick, P. Dollár, Z. Tu, K. He. Aggregated Residual Transformations for Deep "
    "Neural Networks. CVPR 2017."
)


class ResNeXtVariant(NamedTuple):
    """One registered ResNeXt: depth, cardinality C, bottleneck width d, and the published figures."""

    depth: int
    cardinality: int
    base_width: int
    cifar: bool = False
    reported: dict[str, Any] | None = None
    macs: dict[str, Any] | None = None


def _top1(error: float, table: str, top5_error: float | None = None) -> dict[str, Any]:
    top5 = None if top5_error is None else round(100 - top5_error, 2)
    return {"dataset": "imagenet", "top1": round(100 - error, 2), "top5": top5, "crop": 224,
            "source": f"Xie et al. 2017, {table} (single 224 crop)"}  # fmt: skip


def _tv_macs(weights: str, gmacs: float) -> dict[str, Any]:
    return {"value": gmacs * 1e9, "source": f"torchvision {weights}"}


def _cifar10(error: float) -> dict[str, Any]:
    return {"dataset": "cifar10+", "error": error, "source": "Xie et al. 2017, Table 7"}


_TV_32X8D = "ResNeXt101_32X8D_Weights.IMAGENET1K_V1"

VARIANTS: dict[str, ResNeXtVariant] = {
    "resnext50_32x4d": ResNeXtVariant(
        50, 32, 4, reported=_top1(22.2, "Table 3"),
        macs=_tv_macs("ResNeXt50_32X4D_Weights.IMAGENET1K_V1", 4.23),
    ),
    "resnext101_32x4d": ResNeXtVariant(101, 32, 4, reported=_top1(21.2, "Table 3")),
    "resnext101_32x8d": ResNeXtVariant(
        101, 32, 8,
        reported={"dataset": "imagenet", "top1": 79.312, "top5": 94.526, "crop": 224,
                  "source": f"torchvision {_TV_32X8D}"},
        macs=_tv_macs(_TV_32X8D, 16.414),
    ),
    "resnext101_64x4d": ResNeXtVariant(
        101, 64, 4, reported=_top1(20.4, "Table 5", 5.3),
        macs=_tv_macs("ResNeXt101_64X4D_Weights.IMAGENET1K_V1", 15.46),
    ),
    "resnext29_8x64d": ResNeXtVariant(29, 8, 64, cifar=True, reported=_cifar10(3.65)),
    "resnext29_16x64d": ResNeXtVariant(29, 16, 64, cifar=True, reported=_cifar10(3.58)),
}  # fmt: skip


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    where = "CIFAR layout of resnext.lua" if v.cifar else "torchvision layout and keys"
    return residual_cfg(
        cifar=v.cifar,
        paper=PAPER,
        year=2017,
        family="resnext_cifar" if v.cifar else "resnext",
        notes=f"ResNeXt-{v.depth} ({v.cardinality}×{v.base_width}d), grouped 3×3 convs; {where}",
        extra={"reported": v.reported, "macs": v.macs},
    )


def _create_resnext(name: str, **kwargs: Any) -> ResNet:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    v = VARIANTS[name]
    arch: dict[str, Any] = dict(block="bottleneck", groups=v.cardinality, base_width=v.base_width)
    if v.cifar:
        arch.update(layers=(3, 3, 3), widths=(64, 128, 256), num_classes=10, stem="cifar", stem_width=64)
    else:
        arch.update(layers=RESNET_DEPTHS[v.depth][1])
    return ResNet(**{**arch, **kwargs})


@register_model(_cfg("resnext50_32x4d"))
def resnext50_32x4d(**kwargs: Any) -> ResNet:
    """ResNeXt-50 (32×4d), Table 1: 25.0 M params, 4.2 G MACs. Options as :class:`ResNet`."""
    return _create_resnext("resnext50_32x4d", **kwargs)


@register_model(_cfg("resnext101_32x4d"))
def resnext101_32x4d(**kwargs: Any) -> ResNet:
    """ResNeXt-101 (32×4d), Table 3: 21.2% top-1 error."""
    return _create_resnext("resnext101_32x4d", **kwargs)


@register_model(_cfg("resnext101_32x8d"))
def resnext101_32x8d(**kwargs: Any) -> ResNet:
    """ResNeXt-101 (32×8d), torchvision's: twice the group width of 32×4d."""
    return _create_resnext("resnext101_32x8d", **kwargs)


@register_model(_cfg("resnext101_64x4d"))
def resnext101_64x4d(**kwargs: Any) -> ResNet:
    """ResNeXt-101 (64×4d), Table 5: 20.4% top-1 / 5.3% top-5 error at 224."""
    return _create_resnext("resnext101_64x4d", **kwargs)


@register_model(_cfg("resnext29_8x64d"))
def resnext29_8x64d(**kwargs: Any) -> ResNet:
    """CIFAR ResNeXt-29 (8×64d), Table 7: 34.4 M params, 3.65% CIFAR-10 error."""
    return _create_resnext("resnext29_8x64d", **kwargs)


@register_model(_cfg("resnext29_16x64d"))
def resnext29_16x64d(**kwargs: Any) -> ResNet:
    """CIFAR ResNeXt-29 (16×64d), Table 7: 68.1 M params, 3.58% CIFAR-10 error."""
    return _create_resnext("resnext29_16x64d", **kwargs)
