"""Squeeze-and-Excitation ResNets and ResNeXts.

Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018, Fig. 3 and Table 1: every residual
block's branch is rescaled channel by channel before the addition, by global average pool →
FC C/r → ReLU → FC C → sigmoid, r = 16 (:class:`~cnnzoo.layers.squeeze_excite.SqueezeExcite`,
its FCs written as 1×1 convs with bias). Every network is a :class:`~cnnzoo.models.resnet.ResNet`
with ``attn_layer=SqueezeExcite``: SE is an argument of the shared blocks, not a fork.

========================  ===========  =================  =========================================
name                      blocks       stride in          the paper (Table 2, single 224 crop)
========================  ===========  =================  =========================================
``seresnet18``/``34``     basic        —                  (later TPAMI version; no figure quoted)
``seresnet50``/101/152    bottleneck   3×3 (timm)         23.29/6.62, 22.38/6.07, 21.57/5.73 error†
``seresnext50_32x4d``     32×4d        grouped 3×3        21.10/5.49 error, 27.6 M
``seresnext101_32x4d``    32×4d        grouped 3×3        20.70/5.01 error
``seresnet50_v1``         bottleneck   first 1×1          the authors' release: 28.1 M, 3.87 G MACs
========================  ===========  =================  =========================================

† The paper's SE-ResNets stride the first 1×1 of a stage (``seresnet50_v1``); ``seresnet50``…
follow ``resnet50``'s layout and timm's ``seresnet*`` (the stride in the 3×3), which costs more
MACs (4.1 G rather than 3.87 G for depth 50) and is quoted with the paper's figures for lack of
its own.

Choices:

* **Squeeze width**: C/16 exactly, as the paper (4 at 64 channels in SE-ResNet-18/34). timm's
  ``seresnet18``/``34`` round it up to a multiple of 8; at depth ≥ 50 every width is a multiple
  of 128 and both agree, so timm's ``seresnet50`` and ``seresnext50_32x4d`` files load as they are.
* ``seresnet50_v1`` is the authors' Caffe network as timm's ``legacy_seresnet50`` ports it: the
  stride in the first 1×1 conv, and the stem's 3×3/2 max-pool unpadded in ceil mode (Caffe's
  rounding; the same 56×56 map at 224, one pixel more at some other sizes; minimum input 35).
* **MACs**: the SE FCs add 2·C²/16 multiply-adds per block, 2.5 M at depth 50, so the conv and
  linear MACs are 3.8605 G for ``seresnet50_v1`` against ``resnet50_v1``'s 3.8580 G. Table 2's
  3.87 G against 3.86 G counts the whole SE block: with its pooling and its channel scaling (one
  operation per value each, 5.5 M apiece) it is 3.8715 G.
* **Init**: He normal (fan-out) for convs (the SE FCs included), BN γ = 1 and β = 0.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from cnnzoo.layers.squeeze_excite import SqueezeExcite
from cnnzoo.models._residual import residual_cfg
from cnnzoo.models.resnet import RESNET_DEPTHS, ResNet
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "PAPER",
    "SENetVariant",
    "VARIANTS",
    "seresnet18",
    "seresnet34",
    "seresnet50",
    "seresnet101",
    "seresnet152",
    "seresnext50_32x4d",
    "seresnext101_32x4d",
    "seresnet50_v1",
]

PAPER = "J. Hu, L. Shen, G. Sun. Squeeze-and-Excitation Networks. CVPR 2018."


class SENetVariant(NamedTuple):
    """One registered SE network: depth, cardinality and width, layout, and the paper's figures."""

    depth: int
    note: str
    groups: int = 1
    base_width: int = 64
    v1: bool = False  # the authors' layout: stride in the first 1x1, Caffe's ceil-mode stem pool
    reported: dict[str, Any] | None = None
    macs: dict[str, Any] | None = None


def _table2(top1_error: float, top5_error: float, layout: str = "") -> dict[str, Any]:
    return {
        "dataset": "imagenet",
        "top1": round(100 - top1_error, 2),
        "top5": round(100 - top5_error, 2),
        "crop": 224,
        "source": f"Hu et al. 2018, Table 2 (single 224 crop){layout}",
    }


_V1_LAYOUT = "; the paper's layout strides the first 1x1, this variant the 3x3"
_TIMM = "timm seresnet* layout (stride in the 3x3)"

VARIANTS: dict[str, SENetVariant] = {
    "seresnet18": SENetVariant(18, f"{_TIMM}; squeeze C/16 exactly (timm rounds to 8)"),
    "seresnet34": SENetVariant(34, f"{_TIMM}; squeeze C/16 exactly (timm rounds to 8)"),
    "seresnet50": SENetVariant(50, _TIMM, reported=_table2(23.29, 6.62, _V1_LAYOUT)),
    "seresnet101": SENetVariant(101, _TIMM, reported=_table2(22.38, 6.07, _V1_LAYOUT)),
    "seresnet152": SENetVariant(152, _TIMM, reported=_table2(21.57, 5.73, _V1_LAYOUT)),
    "seresnext50_32x4d": SENetVariant(50, "ResNeXt-50 32x4d + SE (timm keys)", 32, 4, reported=_table2(21.10, 5.49)),
    "seresnext101_32x4d": SENetVariant(101, "ResNeXt-101 32x4d + SE (timm keys)", 32, 4, reported=_table2(20.70, 5.01)),
    "seresnet50_v1": SENetVariant(
        50, "the authors' release: stride in the first 1x1, ceil-mode stem pool (timm legacy_seresnet50)",
        v1=True, reported=_table2(23.29, 6.62), macs={"value": 3.87e9, "source": "Hu et al. 2018, Table 2"},
    ),
}  # fmt: skip


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    return residual_cfg(
        cifar=False,
        paper=PAPER,
        year=2018,
        family="senet",
        notes=v.note,
        min_input_size=35 if v.v1 else None,  # the ceil-mode pool needs 2 more pixels (see ResNet)
        extra={"reported": v.reported, "macs": v.macs},
    )


def _create_senet(name: str, **kwargs: Any) -> ResNet:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    v = VARIANTS[name]
    block, layers = RESNET_DEPTHS[v.depth]
    arch: dict[str, Any] = dict(block=block, layers=layers, attn_layer=SqueezeExcite)
    if v.groups > 1:
        arch.update(groups=v.groups, base_width=v.base_width)
    if v.v1:
        arch.update(stride_in_1x1=True, stem_pool="ceil")
    return ResNet(**{**arch, **kwargs})


@register_model(_cfg("seresnet18"))
def seresnet18(**kwargs: Any) -> ResNet:
    """SE-ResNet-18: ResNet-18 with an SE block (r = 16) on every branch. Options as :class:`ResNet`."""
    return _create_senet("seresnet18", **kwargs)


@register_model(_cfg("seresnet34"))
def seresnet34(**kwargs: Any) -> ResNet:
    """SE-ResNet-34: ResNet-34 with an SE block (r = 16) on every branch."""
    return _create_senet("seresnet34", **kwargs)


@register_model(_cfg("seresnet50"))
def seresnet50(**kwargs: Any) -> ResNet:
    """SE-ResNet-50 in ``resnet50``'s layout (timm's ``seresnet50``): 28.1 M params."""
    return _create_senet("seresnet50", **kwargs)


@register_model(_cfg("seresnet101"))
def seresnet101(**kwargs: Any) -> ResNet:
    """SE-ResNet-101 in ``resnet101``'s layout (timm's ``seresnet101``)."""
    return _create_senet("seresnet101", **kwargs)


@register_model(_cfg("seresnet152"))
def seresnet152(**kwargs: Any) -> ResNet:
    """SE-ResNet-152 in ``resnet152``'s layout (timm's ``seresnet152``)."""
    return _create_senet("seresnet152", **kwargs)


@register_model(_cfg("seresnext50_32x4d"))
def seresnext50_32x4d(**kwargs: Any) -> ResNet:
    """SE-ResNeXt-50 (32×4d): ResNeXt-50 with SE blocks (timm's ``seresnext50_32x4d``)."""
    return _create_senet("seresnext50_32x4d", **kwargs)


@register_model(_cfg("seresnext101_32x4d"))
def seresnext101_32x4d(**kwargs: Any) -> ResNet:
    """SE-ResNeXt-101 (32×4d): ResNeXt-101 with SE blocks (timm's ``seresnext101_32x4d``)."""
    return _create_senet("seresnext101_32x4d", **kwargs)


@register_model(_cfg("seresnet50_v1"))
def seresnet50_v1(**kwargs: Any) -> ResNet:
    """SE-ResNet-50 as the authors released it (timm's ``legacy_seresnet50``): 28.1 M, 3.87 G MACs."""
    return _create_senet("seresnet50_v1", **kwargs)
