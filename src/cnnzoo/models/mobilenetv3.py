"""MobileNet v3 Large and Small: searched MBConv stacks with h-swish and hard-sigmoid SE.

Howard, Sandler, Chu, Chen, Chen, Tan, Wang, Zhu, Pang, Vasudevan, Le, Adam, "Searching for
MobileNetV3", ICCV 2019, Table 1 (Large) and Table 2 (Small). Each row of the tables is a
:class:`~cnnzoo.models._mbconv.BlockRow` in the paper's columns (kernel, exp size, #out, SE, NL,
s); built by :mod:`cnnzoo.models._mbconv`. A bneck (§5.1, Fig. 4) is the MobileNet v2 bottleneck
with an optional squeeze-and-excite after the depthwise conv, squeezing the expanded width to
``make_divisible(exp / 4, 8)`` with ReLU and gating by the hard sigmoid ``relu6(x + 3) / 6``; the
nonlinearity (NL) is ReLU (RE) or h-swish ``x · relu6(x + 3) / 6`` (HS) per row.

====================  ===========  =========  =========================================
name                  params       MACs @224  Table 3 (top-1, MACs, params)
====================  ===========  =========  =========================================
mobilenet_v3_large    5,483,032    216.6 M    75.2, 219 M, 5.4 M
mobilenet_v3_small    2,542,856    56.5 M     67.4, 56 M, 2.5 M
====================  ===========  =========  =========================================

Both are torchvision's networks parameter for parameter (its ``num_params`` and ``_ops``: 0.217 and
0.057 GMACs) and load its checkpoints through a key map.

Choices and departures:

* **Small's last 1×1 conv**: Table 2 ticks SE on the ``conv2d 1×1, 576`` row after the last
  bneck. No released model has it (TensorFlow's checkpoints, torchvision, timm), and the paper's
  own 2.5 M parameters and 56 M MACs are those of the network without it (an SE there adds
  166,608 parameters: 2.71 M). This follows the released models: no SE there.
* **The head** (§5.3, "Redesigning Expensive Layers"): the last stage's 1×1 conv (960 / 576, BN,
  h-swish) runs at 7×7; after the pool, the table's "conv2d 1×1, NBN" of 1280 / 1024 with h-swish
  is the Linear ``head_fc`` (the same weights on a 1×1 map, torchvision's layout), then dropout
  0.2 (torchvision; §6.1: "dropout of 0.8", read as a keep probability) and the classifier.
* **Rows without expansion** (Large's first bneck, exp 16 on 16 channels; Small's first): no
  1×1 expansion conv, the depthwise conv comes first (torchvision, TF).
* **BN**: eps 0.001, momentum 0.01 (TF's decay 0.99, §6.1: "batch-normalization layers with
  average decay of 0.99"), as torchvision.
* **Counts**: Table 3 cuts the parameters to one decimal (5.48 M is "5.4 M").
* **MACs**: 216.6 M where Table 3 prints 219 M for Large (TF-slim's checkpoint table: 217 M); the
  paper does not say what it counted beyond convs and the classifier. Small: 56.5 M (56 M).

Fashion-MNIST: resized to 64×64 (2×2 maps in the last stage).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from cnnzoo.models._mbconv import BlockRow, MBConvNet, MBConvTable, mbconv_config
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "PAPER",
    "TABLE1_LARGE",
    "TABLE2_SMALL",
    "MobileNetV3Variant",
    "VARIANTS",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
]

PAPER = (
    "A. Howard, M. Sandler, G. Chu, L.-C. Chen, B. Chen, M. Tan, W. Wang, Y. Zhu, R. Pang, "
    "V. Vasudevan, Q. V. Le, H. Adam. Searching for MobileNetV3. ICCV 2019."
)

RE, HS = "relu", "hard_swish"


def _bneck(k: int, exp: int, out: int, se: bool, nl: str, s: int) -> BlockRow:
    """A bneck row in the paper's columns: kernel, exp size, #out, SE, NL, s."""
    return BlockRow("ir", 1, k, s, 0, out, se=0.25 if se else 0.0, act=nl, mid=exp)


_V3_PARTS: dict[str, Any] = dict(act=HS, se_from="mid", se_act=RE, se_gate="hard_sigmoid", se_divisor=8)

# Table 1, grouped into stages as timm groups them (one per resolution, 80 and 112 split)
TABLE1_LARGE = MBConvTable(
    stem=16,
    stages=(
        (_bneck(3, 16, 16, False, RE, 1),),
        (_bneck(3, 64, 24, False, RE, 2), _bneck(3, 72, 24, False, RE, 1)),
        (_bneck(5, 72, 40, True, RE, 2), _bneck(5, 120, 40, True, RE, 1), _bneck(5, 120, 40, True, RE, 1)),
        (
            _bneck(3, 240, 80, False, HS, 2),
            _bneck(3, 200, 80, False, HS, 1),
            _bneck(3, 184, 80, False, HS, 1),
            _bneck(3, 184, 80, False, HS, 1),
        ),
        (_bneck(3, 480, 112, True, HS, 1), _bneck(3, 672, 112, True, HS, 1)),
        (
            _bneck(5, 672, 160, True, HS, 2),
            _bneck(5, 960, 160, True, HS, 1),
            _bneck(5, 960, 160, True, HS, 1),
        ),
    ),
    head=960,
    head_fc=1280,
    **_V3_PARTS,
)

# Table 2; the SE ticked on the last 1×1 conv is left out (module docstring)
TABLE2_SMALL = MBConvTable(
    stem=16,
    stages=(
        (_bneck(3, 16, 16, True, RE, 2),),
        (_bneck(3, 72, 24, False, RE, 2), _bneck(3, 88, 24, False, RE, 1)),
        (_bneck(5, 96, 40, True, HS, 2), _bneck(5, 240, 40, True, HS, 1), _bneck(5, 240, 40, True, HS, 1)),
        (_bneck(5, 120, 48, True, HS, 1), _bneck(5, 144, 48, True, HS, 1)),
        (_bneck(5, 288, 96, True, HS, 2), _bneck(5, 576, 96, True, HS, 1), _bneck(5, 576, 96, True, HS, 1)),
    ),
    head=576,
    head_fc=1024,
    **_V3_PARTS,
)


class MobileNetV3Variant(NamedTuple):
    """One registered network: its table, Table 3's figures and torchvision's MACs."""

    table: MBConvTable
    top1: float
    tv_macs: float
    note: str


VARIANTS: dict[str, MobileNetV3Variant] = {
    "mobilenet_v3_large": MobileNetV3Variant(TABLE1_LARGE, 75.2, 0.217e9, "Table 1; torchvision's network"),
    "mobilenet_v3_small": MobileNetV3Variant(
        TABLE2_SMALL, 67.4, 0.057e9, "Table 2 without the SE on the last 1x1 conv, as every release"
    ),
}


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    weights = "MobileNet_V3_Large" if name.endswith("large") else "MobileNet_V3_Small"
    return mbconv_config(family="mobilenet_v3", paper=PAPER, year=2019, notes=v.note,
                         reported={"top1": v.top1, "source": "Howard et al. 2019, Table 3"},
                         macs={"value": v.tv_macs, "source": f"torchvision {weights}_Weights.IMAGENET1K_V1"})  # fmt: skip


def _create_mobilenet_v3(name: str, **kwargs: Any) -> MBConvNet:
    """The family constructor: the row's table, ``kwargs`` overriding it (see
    :class:`~cnnzoo.models._mbconv.MBConvNet`: ``width``, ``dropout``, ...)."""
    defaults = {"dropout": 0.2, "bn_eps": 1e-3, "bn_momentum": 0.01}
    return MBConvNet(VARIANTS[name].table, **{**defaults, **kwargs})


@register_model(_cfg("mobilenet_v3_large"))
def mobilenet_v3_large(**kwargs: Any) -> MBConvNet:
    """MobileNet v3 Large (Table 1): 5,483,032 params, 217 M MACs, torchvision's network."""
    return _create_mobilenet_v3("mobilenet_v3_large", **kwargs)


@register_model(_cfg("mobilenet_v3_small"))
def mobilenet_v3_small(**kwargs: Any) -> MBConvNet:
    """MobileNet v3 Small (Table 2, no SE on the last 1×1 conv): 2,542,856 params, 57 M MACs."""
    return _create_mobilenet_v3("mobilenet_v3_small", **kwargs)
