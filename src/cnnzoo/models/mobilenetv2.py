"""MobileNet v2: inverted residuals with linear bottlenecks, at five widths.

Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018, Table 2: a 3×3/2 conv of 32, seven rows of bottlenecks (t, c, n, s), a 1×1 conv of
1280, global average pool and the classifier. A bottleneck (Table 1, Fig. 4d) is a 1×1 expansion
by t with ReLU6, a 3×3 depthwise conv with ReLU6 and a *linear* 1×1 projection; the identity is
added where the stride is 1 and the widths match. Built by :mod:`cnnzoo.models._mbconv`.

==================  =====  ===========  ==========  ==========================================
name                width  params       MACs @224   reported top-1 (source)
==================  =====  ===========  ==========  ==========================================
mobilenet_v2_035    0.35   1,677,128    59.3 M      60.3 (TF-slim checkpoint table: 1.66 M, 59 M)
mobilenet_v2_050    0.5    1,968,680    97.1 M      65.4 (TF-slim: 1.95 M, 97 M)
mobilenet_v2_075    0.75   2,636,424    209.1 M     69.8 (TF-slim: 2.61 M, 209 M)
mobilenet_v2        1.0    3,504,872    300.8 M     72.0 (Table 4: 3.4 M, 300 M)
mobilenet_v2_140    1.4    6,108,776    582.2 M     74.7 (Table 4: 6.9 M, 585 M)
==================  =====  ===========  ==========  ==========================================

Every width is torchvision's ``mobilenet_v2(width_mult=...)``, parameter for parameter, and
``mobilenet_v2`` loads torchvision's checkpoints (``mobilenet_v2``: 3,504,872 params, 0.301 GMACs).

Choices and departures:

* **Width** (§6.1): every width is ``make_divisible(c · α, 8)``, as TF-slim and torchvision
  round it, and the last 1×1 conv keeps its 1280 below α = 1 ("we apply width multiplier to all
  layers except the very last convolutional layer ... for multipliers less than one"); at 1.4 it
  is 1792.
* **1.4× at 6.9 M**: Table 4 prints 6.9 M parameters and 585 M MACs for MobileNetV2 (1.4), but
  the network it describes has 6.11 M and 582 M (TF-slim's 1.4 checkpoint: "6.06 M", 582 M;
  torchvision's ``width_mult=1.4``: the same 6,108,776). The counts here are the network's. The
  TF-slim parameter column is lower at every width (1.66 M for 1,677,128) because it counts no
  BatchNorm parameters: the counts here less BN's γ and β (1,663,048 … 6,060,840) give its
  figures to the printed digit. Table 4's "3.4 M" is that BN-free 3.47 M cut to one decimal.
* **Dropout** 0.2 before the classifier (torchvision; the paper does not give one).
* **t = 1**: the first row's bottleneck has no expansion conv (t = 1 would be an identity 1×1),
  so it is the depthwise-separable block with a linear output, as in torchvision and TF-slim.

Fashion-MNIST: resized to 64×64 (2×2 maps in the last stage).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from cnnzoo.models._mbconv import BlockRow, MBConvNet, MBConvTable, mbconv_config
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "PAPER",
    "TABLE2",
    "MobileNetV2Variant",
    "VARIANTS",
    "mobilenet_v2",
    "mobilenet_v2_035",
    "mobilenet_v2_050",
    "mobilenet_v2_075",
    "mobilenet_v2_140",
]

PAPER = (
    "M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen. MobileNetV2: Inverted Residuals and "
    "Linear Bottlenecks. CVPR 2018."
)
_TF_SLIM = "TF-slim MobileNet v2 README (tensorflow/models research/slim/nets/mobilenet), checkpoint table"


def _bottleneck(t: float, c: int, n: int, s: int) -> BlockRow:
    """A row of Table 2 in the paper's column order (t, c, n, s); 3×3 depthwise everywhere."""
    return BlockRow("ir", n, 3, s, t, c)


# Table 2: one stage per row, t (expansion), c (channels), n (repeats), s (first stride)
TABLE2 = MBConvTable(
    stem=32,
    stages=(
        (_bottleneck(1, 16, 1, 1),),
        (_bottleneck(6, 24, 2, 2),),
        (_bottleneck(6, 32, 3, 2),),
        (_bottleneck(6, 64, 4, 2),),
        (_bottleneck(6, 96, 3, 1),),
        (_bottleneck(6, 160, 3, 2),),
        (_bottleneck(6, 320, 1, 1),),
    ),
    act="relu6",
    head=1280,
    head_scaling="width_above_1",
)


class MobileNetV2Variant(NamedTuple):
    """One registered width: the multiplier, what the source reports, and where it departs."""

    width: float
    reported: dict[str, Any]
    macs: dict[str, Any]
    note: str


VARIANTS: dict[str, MobileNetV2Variant] = {
    "mobilenet_v2_035": MobileNetV2Variant(
        0.35, {"top1": 60.3, "top5": 82.9, "source": _TF_SLIM}, {"value": 59e6, "source": _TF_SLIM},
        "width 0.35 (the paper's Fig. 5 sweep; TF-slim checkpoint)",
    ),
    "mobilenet_v2_050": MobileNetV2Variant(
        0.5, {"top1": 65.4, "top5": 86.4, "source": _TF_SLIM}, {"value": 97e6, "source": _TF_SLIM},
        "width 0.5 (the paper's Fig. 5 sweep; TF-slim checkpoint)",
    ),
    "mobilenet_v2_075": MobileNetV2Variant(
        0.75, {"top1": 69.8, "top5": 89.6, "source": _TF_SLIM}, {"value": 209e6, "source": _TF_SLIM},
        "width 0.75 (the paper's Fig. 5 sweep; TF-slim checkpoint)",
    ),
    "mobilenet_v2": MobileNetV2Variant(
        1.0, {"top1": 72.0, "source": "Sandler et al. 2018, Table 4"},
        {"value": 0.301e9, "source": "torchvision MobileNet_V2_Weights.IMAGENET1K_V1"},
        "the paper's network; torchvision's layout through a key map",
    ),
    "mobilenet_v2_140": MobileNetV2Variant(
        1.4, {"top1": 74.7, "source": "Sandler et al. 2018, Table 4"},
        {"value": 582e6, "source": _TF_SLIM},
        "width 1.4 (last conv 1792); Table 4's 6.9 M params, 585 M MACs are 6.1 M, 582 M in the network",
    ),
}  # fmt: skip


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    return mbconv_config(family="mobilenet_v2", paper=PAPER, year=2018, notes=v.note, reported=v.reported,
                         macs=v.macs)  # fmt: skip


def _create_mobilenet_v2(name: str, **kwargs: Any) -> MBConvNet:
    """The family constructor: Table 2 at the row's width, ``kwargs`` overriding it (see
    :class:`~cnnzoo.models._mbconv.MBConvNet`: ``width``, ``act``, ``dropout``, ...)."""
    return MBConvNet(TABLE2, **{"width": VARIANTS[name].width, "dropout": 0.2, **kwargs})


@register_model(_cfg("mobilenet_v2"))
def mobilenet_v2(**kwargs: Any) -> MBConvNet:
    """MobileNet v2 1.0 (Table 2): 3,504,872 params, 301 M MACs at 224, torchvision's network."""
    return _create_mobilenet_v2("mobilenet_v2", **kwargs)


@register_model(_cfg("mobilenet_v2_035"))
def mobilenet_v2_035(**kwargs: Any) -> MBConvNet:
    """MobileNet v2 0.35: Table 2 at width 0.35 (last conv kept at 1280)."""
    return _create_mobilenet_v2("mobilenet_v2_035", **kwargs)


@register_model(_cfg("mobilenet_v2_050"))
def mobilenet_v2_050(**kwargs: Any) -> MBConvNet:
    """MobileNet v2 0.5: Table 2 at width 0.5 (last conv kept at 1280)."""
    return _create_mobilenet_v2("mobilenet_v2_050", **kwargs)


@register_model(_cfg("mobilenet_v2_075"))
def mobilenet_v2_075(**kwargs: Any) -> MBConvNet:
    """MobileNet v2 0.75: Table 2 at width 0.75 (last conv kept at 1280)."""
    return _create_mobilenet_v2("mobilenet_v2_075", **kwargs)


@register_model(_cfg("mobilenet_v2_140"))
def mobilenet_v2_140(**kwargs: Any) -> MBConvNet:
    """MobileNet v2 1.4 (Table 4): Table 2 at width 1.4, the last conv 1792 wide."""
    return _create_mobilenet_v2("mobilenet_v2_140", **kwargs)
