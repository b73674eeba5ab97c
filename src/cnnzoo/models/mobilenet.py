"""MobileNet (v1): depthwise-separable convolutions, a width multiplier and any resolution.

Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto, Adam, "MobileNets: Efficient
Convolutional Neural Networks for Mobile Vision Applications", arXiv 1704.04861, 2017, Table 1:
a 3×3/2 conv of 32, thirteen depthwise-separable convs (Fig. 3: 3×3 depthwise → BN → ReLU → 1×1
pointwise → BN → ReLU), global average pool and the classifier. Built by
:mod:`cnnzoo.models._mbconv` (rows of kind ``ds``).

================  =====  ===========  =========  ==================================================
name              α      params       MACs @224  Table 6 (top-1, MACs, params)
================  =====  ===========  =========  ==================================================
mobilenet_v1      1.0    4,231,976    568.7 M    70.6, 569 M, 4.2 M (Table 4 and 8 too)
mobilenet_v1_075  0.75   2,585,560    325.4 M    68.4, 325 M, 2.6 M
mobilenet_v1_050  0.5    1,331,592    149.5 M    63.7, 149 M, 1.3 M
mobilenet_v1_025  0.25   470,072      41.0 M     50.6, 41 M, 0.5 M
(separable=False) 1.0    29,294,088   4867.3 M   Table 4's "Conv MobileNet": 71.7, 4866 M, 29.3 M
================  =====  ===========  =========  ==================================================

Options (keyword arguments of every name):

* ``width`` (α, §3.3): every width becomes ``max(int(c · α), 8)``, TF-slim's rule for its released
  checkpoints (``min_depth=8``); the paper's α = 0.75, 0.5, 0.25 give whole numbers anyway.
* **Resolution** (ρ, §3.4): any input side ≥ 33 (global pooling before the classifier); the cost
  falls with the square of the side (``cnnzoo summary mobilenet_v1 --input 3x128x128``).
* ``act``: the paper's ReLU by default. TensorFlow's release, and timm's ``mobilenetv1_100``
  trained from it, use ReLU6: ``act="relu6"`` is that network, and loads timm's checkpoint with
  the same logits (a timm file loaded into the ReLU model loads, with a notice that its outputs
  will differ).
* ``separable=False``: Table 4's full-convolution twin: every depthwise-separable pair becomes one
  3×3 conv of the same stride and width (→ BN → ReLU), for the separable-cost experiment.

Choices the paper leaves open:

* **Table 1's second-to-last "Conv dw / s2"** takes a 7×7 input to a 7×7 output, so its stride is
  1: the table's "s2" is a misprint (the TF-slim and timm networks use stride 1; with stride 2 the
  MACs would not add up to 569 M).
* **No dropout** before the classifier (the paper names none; TF-slim keeps 0.999 of the units).
* Parameters include BN's γ and β (4,231,976 = 4.2 M as Table 8 prints it). MACs count the
  convs and the classifier: 568.7 M (Table 4: 569 M) and, for the full-conv twin, 4867.3 M where
  Table 4 prints 4866 M (0.03% apart; the paper does not say how it rounds).

Fashion-MNIST: resized to 64×64 (2×2 maps in the last stage).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from cnnzoo.models._mbconv import BlockRow, MBConvNet, MBConvTable, mbconv_config
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "PAPER",
    "TABLE1",
    "full_conv_table",
    "MobileNetV1Variant",
    "VARIANTS",
    "mobilenet_v1",
    "mobilenet_v1_075",
    "mobilenet_v1_050",
    "mobilenet_v1_025",
]

PAPER = (
    "A. G. Howard, M. Zhu, B. Chen, D. Kalenichenko, W. Wang, T. Weyand, M. Andreetto, H. Adam. "
    "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications. arXiv:1704.04861, 2017."
)


def _dw_pw(n: int, stride: int, channels: int) -> BlockRow:
    """``n`` rows of Table 1's "Conv dw / s, Conv / s1" pairs ending at ``channels``."""
    return BlockRow("ds", n, 3, stride, 1, channels)


# Table 1, one stage per resolution: 112² (64), 56² (128), 28² (256), 14² (512), 7² (1024)
TABLE1 = MBConvTable(
    stem=32,
    stages=(
        (_dw_pw(1, 1, 64),),
        (_dw_pw(2, 2, 128),),
        (_dw_pw(2, 2, 256),),
        (_dw_pw(6, 2, 512),),
        (_dw_pw(2, 2, 1024),),  # the second "Conv dw / s2" is stride 1 (module docstring)
    ),
    act="relu",
    width_rounding="floor",
)


def full_conv_table(table: MBConvTable) -> MBConvTable:
    """Table 4's "Conv MobileNet": each depthwise-separable row as full 3×3 convs of its stride."""
    stages = tuple(tuple(r._replace(kind="conv") for r in stage) for stage in table.stages)
    return table._replace(stages=stages)


class MobileNetV1Variant(NamedTuple):
    """One registered width α and what Table 6 reports for it."""

    width: float
    top1: float
    macs: float
    note: str


VARIANTS: dict[str, MobileNetV1Variant] = {
    "mobilenet_v1": MobileNetV1Variant(
        1.0, 70.6, 569e6, "the paper's ReLU; act='relu6' for TF's release (timm)"
    ),
    "mobilenet_v1_075": MobileNetV1Variant(0.75, 68.4, 325e6, "width multiplier 0.75 (Table 6)"),
    "mobilenet_v1_050": MobileNetV1Variant(0.5, 63.7, 149e6, "width multiplier 0.5 (Table 6)"),
    "mobilenet_v1_025": MobileNetV1Variant(0.25, 50.6, 41e6, "width multiplier 0.25 (Table 6)"),
}


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    source = "Howard et al. 2017, Table 6"
    return mbconv_config(family="mobilenet_v1", paper=PAPER, year=2017, notes=v.note,
                         reported={"top1": v.top1, "source": source},
                         macs={"value": v.macs, "source": source})  # fmt: skip


def _create_mobilenet_v1(name: str, *, separable: bool = True, **kwargs: Any) -> MBConvNet:
    """The family constructor: Table 1 (or its full-conv twin) at the row's width, ``kwargs``
    overriding it (see :class:`~cnnzoo.models._mbconv.MBConvNet`: ``width``, ``act``, ...)."""
    table = TABLE1 if separable else full_conv_table(TABLE1)
    return MBConvNet(table, **{"width": VARIANTS[name].width, "dropout": 0.0, **kwargs})


@register_model(_cfg("mobilenet_v1"))
def mobilenet_v1(**kwargs: Any) -> MBConvNet:
    """MobileNet 1.0 (Table 1): 4,231,976 params, 569 M MACs. ``act``, ``width``, ``separable``."""
    return _create_mobilenet_v1("mobilenet_v1", **kwargs)


@register_model(_cfg("mobilenet_v1_075"))
def mobilenet_v1_075(**kwargs: Any) -> MBConvNet:
    """MobileNet 0.75 (Table 6): α = 0.75, 2.6 M params, 325 M MACs."""
    return _create_mobilenet_v1("mobilenet_v1_075", **kwargs)


@register_model(_cfg("mobilenet_v1_050"))
def mobilenet_v1_050(**kwargs: Any) -> MBConvNet:
    """MobileNet 0.5 (Table 6): α = 0.5, 1.3 M params, 149 M MACs."""
    return _create_mobilenet_v1("mobilenet_v1_050", **kwargs)


@register_model(_cfg("mobilenet_v1_025"))
def mobilenet_v1_025(**kwargs: Any) -> MBConvNet:
    """MobileNet 0.25 (Table 6): α = 0.25, 0.5 M params, 41 M MACs."""
    return _create_mobilenet_v1("mobilenet_v1_025", **kwargs)
