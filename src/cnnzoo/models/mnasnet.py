"""MnasNet: the platform-aware searched mobile networks, A1 (with SE) and B1 (torchvision's).

Tan, Chen, Pang, Vasudevan, Sandler, Howard, Le, "MnasNet: Platform-Aware Neural Architecture
Search for Mobile", CVPR 2019. Built by :mod:`cnnzoo.models._mbconv`: a 3×3/2 conv of 32, a
SepConv (3×3 depthwise → BN → ReLU → 1×1 linear projection → BN) to 16, six stages of MBConv
blocks (1×1 expansion by t → depthwise k×k → [SE] → linear 1×1, identity where the shapes allow),
a 1×1 conv of 1280, global average pool, dropout 0.2, classifier. ReLU everywhere.

================  =====  ===========  =========  =============================================
name              width  params       MACs @224  reported top-1 (source)
================  =====  ===========  =========  =============================================
mnasnet_a1        1.0    3,887,038    311.6 M    75.2 (Fig. 7 and Table 1: 3.9 M, 312 M)
mnasnet_b1_050    0.5    2,218,512    104.5 M    67.734 (torchvision ``mnasnet0_5`` weights)
mnasnet_b1_075    0.75   3,170,208    215.5 M    71.180 (torchvision ``mnasnet0_75``)
mnasnet_b1        1.0    4,383,312    314.4 M    73.456 (torchvision ``mnasnet1_0``)
mnasnet_b1_130    1.3    6,282,256    526.4 M    76.506 (torchvision ``mnasnet1_3``)
================  =====  ===========  =========  =============================================

**MnasNet-A1** is the paper's model (Fig. 7(a)): SepConv 16; MBConv6 k3 ×2 → 24; MBConv3 k5 SE
×3 → 40; MBConv6 k3 ×4 → 80; MBConv6 k3 SE ×2 → 112; MBConv6 k5 SE ×3 → 160; MBConv6 k3 ×1 →
320. Its SE squeezes to a quarter of the block's *input* width with ReLU and a sigmoid gate
(the TensorFlow release); it is timm's ``semnasnet_100`` and loads its checkpoint.

**MnasNet-B1** is the search's network without SE, released with the TensorFlow code and carried
by torchvision as ``mnasnet1_0``: SepConv 16; MBConv3 k3 ×3 → 24; MBConv3 k5 ×3 → 40; MBConv6 k5
×3 → 80; MBConv6 k3 ×2 → 96; MBConv6 k5 ×4 → 192; MBConv6 k3 ×1 → 320. The paper reports no
accuracy for it, so its config quotes torchvision's weights. Its widths are torchvision's
``mnasnet0_5``/``0_75``/``1_3`` parameter for parameter (its ``num_params`` and ``_ops``): every
width but the 1280 of the last conv is ``make_divisible(c · α, 8)`` (torchvision's
``_round_to_multiple_of``, the same rule; its "version 2" layout, which also scales the stem).

Choices and departures:

* **Counts of A1**: 3,887,038 parameters and 311.6 M MACs (the SE blocks' 1×1 convs and the
  classifier included), the paper's 3.9 M and 312 M.
* **BN**: eps 1e-5 (torchvision, timm); momentum 3e-4 in B1 (torchvision's, TF's decay 0.9997),
  PyTorch's 0.1 in A1 (timm's). Neither changes the eval outputs.
* **No drop connect** by default (the paper trains without; ``drop_path_rate`` is an option).

Fashion-MNIST: resized to 64×64 (2×2 maps in the last stage).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from cnnzoo.models._mbconv import BlockRow, MBConvNet, MBConvTable, mbconv_config
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "PAPER",
    "MNASNET_A1",
    "MNASNET_B1",
    "MnasNetVariant",
    "VARIANTS",
    "mnasnet_a1",
    "mnasnet_b1",
    "mnasnet_b1_050",
    "mnasnet_b1_075",
    "mnasnet_b1_130",
]

PAPER = (
    "M. Tan, B. Chen, R. Pang, V. Vasudevan, M. Sandler, A. Howard, Q. V. Le. MnasNet: Platform-Aware "
    "Neural Architecture Search for Mobile. CVPR 2019."
)


def _mbconv(t: float, k: int, n: int, c: int, s: int, se: bool = False) -> BlockRow:
    """An "MBConv{t} (k×k)[, SE] ×n → c" stage of Fig. 7, first stride s (t = 1: the SepConv)."""
    return BlockRow("ir", n, k, s, t, c, se=0.25 if se else 0.0)


# Fig. 7(a), one stage per block type
MNASNET_A1 = MBConvTable(
    stem=32,
    stages=(
        (_mbconv(1, 3, 1, 16, 1),),
        (_mbconv(6, 3, 2, 24, 2),),
        (_mbconv(3, 5, 3, 40, 2, se=True),),
        (_mbconv(6, 3, 4, 80, 2),),
        (_mbconv(6, 3, 2, 112, 1, se=True),),
        (_mbconv(6, 5, 3, 160, 2, se=True),),
        (_mbconv(6, 3, 1, 320, 1),),
    ),
    act="relu",
    head=1280,
    head_scaling="fixed",
)

# the TF release's mnasnet-b1 (torchvision's MNASNet): no SE
MNASNET_B1 = MBConvTable(
    stem=32,
    stages=(
        (_mbconv(1, 3, 1, 16, 1),),
        (_mbconv(3, 3, 3, 24, 2),),
        (_mbconv(3, 5, 3, 40, 2),),
        (_mbconv(6, 5, 3, 80, 2),),
        (_mbconv(6, 3, 2, 96, 1),),
        (_mbconv(6, 5, 4, 192, 2),),
        (_mbconv(6, 3, 1, 320, 1),),
    ),
    act="relu",
    head=1280,
    head_scaling="fixed",
)


class MnasNetVariant(NamedTuple):
    """One registered network: table, width, BN momentum, reported figures and a note."""

    table: MBConvTable
    width: float
    bn_momentum: float
    reported: dict[str, Any]
    macs: dict[str, Any]
    note: str


def _tv(weights: str, top1: float, top5: float, gmacs: float) -> tuple[dict[str, Any], dict[str, Any]]:
    source = f"torchvision {weights}.IMAGENET1K_V1"
    return {"top1": top1, "top5": top5, "source": source}, {"value": gmacs * 1e9, "source": source}


_A1 = "Tan et al. 2019, Table 1"
_TV_MOMENTUM = 1 - 0.9997  # torchvision's _BN_MOMENTUM, TF's BN decay 0.9997

VARIANTS: dict[str, MnasNetVariant] = {
    "mnasnet_a1": MnasNetVariant(
        MNASNET_A1, 1.0, 0.1, {"top1": 75.2, "top5": 92.5, "source": _A1}, {"value": 312e6, "source": _A1},
        "the paper's MnasNet-A1 (with SE); timm's semnasnet_100 through a key map",
    ),
    "mnasnet_b1_050": MnasNetVariant(
        MNASNET_B1, 0.5, _TV_MOMENTUM, *_tv("MNASNet0_5_Weights", 67.734, 87.49, 0.104),
        "MnasNet-B1 (no SE) at width 0.5, torchvision's mnasnet0_5",
    ),
    "mnasnet_b1_075": MnasNetVariant(
        MNASNET_B1, 0.75, _TV_MOMENTUM, *_tv("MNASNet0_75_Weights", 71.18, 90.496, 0.215),
        "MnasNet-B1 (no SE) at width 0.75, torchvision's mnasnet0_75",
    ),
    "mnasnet_b1": MnasNetVariant(
        MNASNET_B1, 1.0, _TV_MOMENTUM, *_tv("MNASNet1_0_Weights", 73.456, 91.51, 0.314),
        "MnasNet-B1 (no SE, the TF release), torchvision's mnasnet1_0",
    ),
    "mnasnet_b1_130": MnasNetVariant(
        MNASNET_B1, 1.3, _TV_MOMENTUM, *_tv("MNASNet1_3_Weights", 76.506, 93.522, 0.526),
        "MnasNet-B1 (no SE) at width 1.3, torchvision's mnasnet1_3",
    ),
}  # fmt: skip


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    return mbconv_config(family="mnasnet", paper=PAPER, year=2019, notes=v.note, reported=v.reported,
                         macs=v.macs)  # fmt: skip


def _create_mnasnet(name: str, **kwargs: Any) -> MBConvNet:
    """The family constructor: the row's table and width, ``kwargs`` overriding them (see
    :class:`~cnnzoo.models._mbconv.MBConvNet`: ``width``, ``dropout``, ``drop_path_rate``, ...)."""
    v = VARIANTS[name]
    return MBConvNet(v.table, **{"width": v.width, "dropout": 0.2, "bn_momentum": v.bn_momentum, **kwargs})


@register_model(_cfg("mnasnet_a1"))
def mnasnet_a1(**kwargs: Any) -> MBConvNet:
    """MnasNet-A1 (Fig. 7a, with SE): 3,887,038 params, timm's semnasnet_100."""
    return _create_mnasnet("mnasnet_a1", **kwargs)


@register_model(_cfg("mnasnet_b1"))
def mnasnet_b1(**kwargs: Any) -> MBConvNet:
    """MnasNet-B1 (no SE): 4,383,312 params, 314 M MACs, torchvision's mnasnet1_0."""
    return _create_mnasnet("mnasnet_b1", **kwargs)


@register_model(_cfg("mnasnet_b1_050"))
def mnasnet_b1_050(**kwargs: Any) -> MBConvNet:
    """MnasNet-B1 at width 0.5, torchvision's mnasnet0_5."""
    return _create_mnasnet("mnasnet_b1_050", **kwargs)


@register_model(_cfg("mnasnet_b1_075"))
def mnasnet_b1_075(**kwargs: Any) -> MBConvNet:
    """MnasNet-B1 at width 0.75, torchvision's mnasnet0_75."""
    return _create_mnasnet("mnasnet_b1_075", **kwargs)


@register_model(_cfg("mnasnet_b1_130"))
def mnasnet_b1_130(**kwargs: Any) -> MBConvNet:
    """MnasNet-B1 at width 1.3, torchvision's mnasnet1_3."""
    return _create_mnasnet("mnasnet_b1_130", **kwargs)
