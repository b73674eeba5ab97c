"""EfficientNet B0-B7: B0's Table 1 scaled by the released compound coefficients.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019.
B0 is Table 1: a 3×3/2 conv of 32, seven stages of MBConv blocks (MBConv1 k3 → 16; MBConv6 k3 ×2 →
24; k5 ×2 → 40; k3 ×3 → 80; k5 ×3 → 112; k5 ×4 → 192; k3 ×1 → 320), a 1×1 conv of 1280, pooling
and the classifier. Every MBConv has a squeeze-and-excite of a quarter of its *input* width
(swish inside, sigmoid gate) and swish activations. B1-B7 scale it by the coefficients of the
official code (``efficientnet_builder.efficientnet_params``), hand-set near the compound rule
(§3.3: depth 1.2^φ, width 1.1^φ, resolution 1.15^φ, see :func:`compound_rule`) rather than
computed from it, written here as data (:data:`COEFFICIENTS`): width (channels
``make_divisible(c · w, 8)``), depth (repeats ``ceil(n · d)``), resolution and dropout. Built by
:mod:`cnnzoo.models._mbconv`.

====  =====  =====  ====  =======  ===========  ===========  =========  ============================
B     width  depth  res   dropout  params       MACs @res    Table 2    top-1 (Table 2)
====  =====  =====  ====  =======  ===========  ===========  =========  ============================
B0    1.0    1.0    224   0.2      5,288,548    0.386 G      5.3 M  0.39 B  76.3
B1    1.0    1.1    240   0.2      7,794,184    0.687 G      7.8 M  0.70 B  78.8
B2    1.1    1.2    260   0.3      9,109,994    0.994 G      9.2 M  1.0 B   79.8
B3    1.2    1.4    300   0.3      12,233,232   1.827 G      12 M   1.8 B   81.1
B4    1.4    1.8    380   0.4      19,341,616   4.394 G      19 M   4.2 B   82.6
B5    1.6    2.2    456   0.4      30,389,784   10.266 G     30 M   9.9 B   83.3
B6    1.8    2.6    528   0.5      43,040,704   19.068 G     43 M   19 B    84.0
B7    2.0    3.1    600   0.5      66,347,960   37.746 G     66 M   37 B    84.4
====  =====  =====  ====  =======  ===========  ===========  =========  ============================

Two layouts of the same networks:

* ``efficientnet_b0`` … ``b7``: torchvision's (``num_params`` and ``_ops`` equal; its checkpoints
  load through a key map): PyTorch's symmetric padding, BN eps 1e-5 for B0-B4 and 1e-3 (momentum
  0.01) for B5-B7, which torchvision ported from TensorFlow's checkpoints.
* ``tf_efficientnet_b0`` … ``b7``: the official TensorFlow checkpoints' layout, timm's
  ``tf_efficientnet_*`` (the same logits): TensorFlow's asymmetric "SAME" padding (a stride-2 conv
  on an even input pads 0 before and 1 after, where PyTorch pads 1 and 1, so every later map is
  shifted by a pixel) and BN eps 1e-3, momentum 0.01 (TF's decay 0.99).

Choices and departures:

* **Drop connect** (the official ``drop_connect_rate`` 0.2; §5.2 "stochastic depth with survival
  probability 0.8"): block i of N drops its residual branch per sample with probability
  0.2 · i / N, scaled by 1/keep in training, the identity at eval (``drop_path_rate=``).
* **The MACs of Table 2** are the network's to within 3% for B0-B3 and B6-B7 (0.386 vs 0.39 …
  37.7 vs 37), but 4.6% and 3.7% below what B4 (4.39 G vs 4.2 B) and B5 (10.27 G vs 9.9 B)
  count. The networks here are the released ones: their parameters agree with Table 2 to the
  printed digit, and torchvision's ``_ops`` and timm's ``tf_efficientnet_*`` count the same MACs.
  No nearby resolution explains the table either: B5 counts 9.40 G at 448 and 10.23 G at 450
  (its 1/32 map grows from 14 to 15), never 9.9; the paper does not say how the column was
  computed. B2's torchvision figure (1.088) is at its weights' 288 crop; at the paper's 260 the
  network counts 0.994 G.
* **B2's parameters**: 9,109,994 where Table 2 prints 9.2 M (the other seven round to the table;
  torchvision and timm count the same 9,109,994).
* **Head width** 1280 · w (timm's rounding; torchvision's 4 × the last stage's width is the same
  number at every coefficient).
* **Reported accuracy**: Table 2 of the ICML 2019 paper (single crop at each resolution); the
  later arXiv version (v5, retrained with AutoAugment) prints 77.1 … 84.3.

Fashion-MNIST: every variant is resized to 64×64 (2×2 maps in the last stage); the paper's
resolutions are far too slow for a CPU.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from cnnzoo.models._mbconv import BlockRow, MBConvNet, MBConvTable, mbconv_config
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "PAPER",
    "TABLE1",
    "Coefficients",
    "COEFFICIENTS",
    "compound_rule",
    "EfficientNetVariant",
    "VARIANTS",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "tf_efficientnet_b0",
    "tf_efficientnet_b1",
    "tf_efficientnet_b2",
    "tf_efficientnet_b3",
    "tf_efficientnet_b4",
    "tf_efficientnet_b5",
    "tf_efficientnet_b6",
    "tf_efficientnet_b7",
]

PAPER = (
    "M. Tan, Q. V. Le. EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks. ICML 2019."
)


def _mbconv(t: float, k: int, s: int, c: int, n: int) -> BlockRow:
    """A stage of Table 1: MBConv{t}, k×k, stride s, c channels, n layers; SE 0.25 everywhere."""
    return BlockRow("ir", n, k, s, t, c, se=0.25)


# Table 1, stages 2-8 (stage 1 is the stem, stage 9 the head)
TABLE1 = MBConvTable(
    stem=32,
    stages=(
        (_mbconv(1, 3, 1, 16, 1),),
        (_mbconv(6, 3, 2, 24, 2),),
        (_mbconv(6, 5, 2, 40, 2),),
        (_mbconv(6, 3, 2, 80, 3),),
        (_mbconv(6, 5, 1, 112, 3),),
        (_mbconv(6, 5, 2, 192, 4),),
        (_mbconv(6, 3, 1, 320, 1),),
    ),
    act="swish",
    head=1280,
    head_scaling="width",
    se_from="in",
)


class Coefficients(NamedTuple):
    """One network's scaling of B0: width and depth multipliers, input side, dropout."""

    width: float
    depth: float
    resolution: int
    dropout: float


#: the official code's ``efficientnet_params``: (width, depth, resolution, dropout)
COEFFICIENTS: dict[str, Coefficients] = {
    "b0": Coefficients(1.0, 1.0, 224, 0.2),
    "b1": Coefficients(1.0, 1.1, 240, 0.2),
    "b2": Coefficients(1.1, 1.2, 260, 0.3),
    "b3": Coefficients(1.2, 1.4, 300, 0.3),
    "b4": Coefficients(1.4, 1.8, 380, 0.4),
    "b5": Coefficients(1.6, 2.2, 456, 0.4),
    "b6": Coefficients(1.8, 2.6, 528, 0.5),
    "b7": Coefficients(2.0, 3.1, 600, 0.5),
}


def compound_rule(phi: float, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15) -> Coefficients:
    """§3.3's compound scaling: depth α^φ, width β^φ, resolution 224 · γ^φ (α · β² · γ² ≈ 2).

    The released B1-B7 are hand-set near it (:data:`COEFFICIENTS`); dropout is not part of the
    rule and is returned as B0's 0.2.
    """
    return Coefficients(beta**phi, alpha**phi, round(224 * gamma**phi), 0.2)


class EfficientNetVariant(NamedTuple):
    """One registered network: which B, which layout, and what is reported for it."""

    b: str
    tf: bool  # TensorFlow "SAME" padding and BN eps 1e-3 (the official checkpoints, timm tf_*)
    top1: float
    top5: float
    macs: float  # the published MACs at the paper's resolution
    macs_source: str


_TABLE2 = "Tan & Le 2019, Table 2"
_REPORTED = {  # Table 2 (ICML 2019): top-1, top-5, MACs (the paper's "FLOPs")
    "b0": (76.3, 93.2, 0.39e9),
    "b1": (78.8, 94.4, 0.70e9),
    "b2": (79.8, 94.9, 1.0e9),
    "b3": (81.1, 95.5, 1.8e9),
    "b4": (82.6, 96.3, 4.2e9),
    "b5": (83.3, 96.7, 9.9e9),
    "b6": (84.0, 96.8, 19e9),
    "b7": (84.4, 97.1, 37e9),
}
_TV_MACS = {"b0": 0.386, "b1": 0.687, "b3": 1.827, "b4": 4.394, "b5": 10.266, "b6": 19.068, "b7": 37.746}


def _variant(b: str, tf: bool) -> EfficientNetVariant:
    top1, top5, paper_macs = _REPORTED[b]
    if tf or b not in _TV_MACS:  # torchvision's B2 figure is at 288, not the paper's 260
        return EfficientNetVariant(b, tf, top1, top5, paper_macs, _TABLE2)
    source = f"torchvision EfficientNet_{b.upper()}_Weights.IMAGENET1K_V1"
    return EfficientNetVariant(b, tf, top1, top5, _TV_MACS[b] * 1e9, source)


VARIANTS: dict[str, EfficientNetVariant] = {
    **{f"efficientnet_{b}": _variant(b, tf=False) for b in COEFFICIENTS},
    **{f"tf_efficientnet_{b}": _variant(b, tf=True) for b in COEFFICIENTS},
}


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    c = COEFFICIENTS[v.b]
    layout = "TensorFlow SAME padding, BN eps 1e-3 (timm tf_)" if v.tf else "torchvision's BN eps"
    return mbconv_config(
        family="efficientnet",
        paper=PAPER,
        year=2019,
        input_size=c.resolution,
        notes=f"B0 scaled by width {c.width}, depth {c.depth}; {layout}",
        reported={"top1": v.top1, "top5": v.top5, "source": _TABLE2},
        macs={"value": v.macs, "source": v.macs_source},
    )


def _create_efficientnet(name: str, **kwargs: Any) -> MBConvNet:
    """The family constructor: Table 1 under the row's coefficients, ``kwargs`` overriding them
    (see :class:`~cnnzoo.models._mbconv.MBConvNet`: ``width``, ``depth``, ``drop_path_rate``, ...)."""
    v = VARIANTS[name]
    c = COEFFICIENTS[v.b]
    bn_eps, bn_momentum = (1e-3, 0.01) if v.tf or v.b in ("b5", "b6", "b7") else (1e-5, 0.1)
    defaults = dict(width=c.width, depth=c.depth, dropout=c.dropout, drop_path_rate=0.2, bn_eps=bn_eps,
                    bn_momentum=bn_momentum, padding="same" if v.tf else None)  # fmt: skip
    return MBConvNet(TABLE1, **{**defaults, **kwargs})


@register_model(_cfg("efficientnet_b0"))
def efficientnet_b0(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B0 (Table 1): 5,288,548 params, 0.386 G MACs at 224; torchvision's network."""
    return _create_efficientnet("efficientnet_b0", **kwargs)


@register_model(_cfg("efficientnet_b1"))
def efficientnet_b1(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B1: B0 at depth 1.1, 240 px, dropout 0.2."""
    return _create_efficientnet("efficientnet_b1", **kwargs)


@register_model(_cfg("efficientnet_b2"))
def efficientnet_b2(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B2: B0 at width 1.1, depth 1.2, 260 px, dropout 0.3."""
    return _create_efficientnet("efficientnet_b2", **kwargs)


@register_model(_cfg("efficientnet_b3"))
def efficientnet_b3(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B3: B0 at width 1.2, depth 1.4, 300 px, dropout 0.3."""
    return _create_efficientnet("efficientnet_b3", **kwargs)


@register_model(_cfg("efficientnet_b4"))
def efficientnet_b4(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B4: B0 at width 1.4, depth 1.8, 380 px, dropout 0.4."""
    return _create_efficientnet("efficientnet_b4", **kwargs)


@register_model(_cfg("efficientnet_b5"))
def efficientnet_b5(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B5: B0 at width 1.6, depth 2.2, 456 px, dropout 0.4; BN eps 1e-3."""
    return _create_efficientnet("efficientnet_b5", **kwargs)


@register_model(_cfg("efficientnet_b6"))
def efficientnet_b6(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B6: B0 at width 1.8, depth 2.6, 528 px, dropout 0.5; BN eps 1e-3."""
    return _create_efficientnet("efficientnet_b6", **kwargs)


@register_model(_cfg("efficientnet_b7"))
def efficientnet_b7(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B7: B0 at width 2.0, depth 3.1, 600 px, dropout 0.5; BN eps 1e-3."""
    return _create_efficientnet("efficientnet_b7", **kwargs)


@register_model(_cfg("tf_efficientnet_b0"))
def tf_efficientnet_b0(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B0 in the official checkpoints' layout: TF "SAME" padding, BN eps 1e-3."""
    return _create_efficientnet("tf_efficientnet_b0", **kwargs)


@register_model(_cfg("tf_efficientnet_b1"))
def tf_efficientnet_b1(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B1, TensorFlow layout (timm's tf_efficientnet_b1)."""
    return _create_efficientnet("tf_efficientnet_b1", **kwargs)


@register_model(_cfg("tf_efficientnet_b2"))
def tf_efficientnet_b2(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B2, TensorFlow layout (timm's tf_efficientnet_b2)."""
    return _create_efficientnet("tf_efficientnet_b2", **kwargs)


@register_model(_cfg("tf_efficientnet_b3"))
def tf_efficientnet_b3(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B3, TensorFlow layout (timm's tf_efficientnet_b3)."""
    return _create_efficientnet("tf_efficientnet_b3", **kwargs)


@register_model(_cfg("tf_efficientnet_b4"))
def tf_efficientnet_b4(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B4, TensorFlow layout (timm's tf_efficientnet_b4)."""
    return _create_efficientnet("tf_efficientnet_b4", **kwargs)


@register_model(_cfg("tf_efficientnet_b5"))
def tf_efficientnet_b5(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B5, TensorFlow layout (timm's tf_efficientnet_b5)."""
    return _create_efficientnet("tf_efficientnet_b5", **kwargs)


@register_model(_cfg("tf_efficientnet_b6"))
def tf_efficientnet_b6(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B6, TensorFlow layout (timm's tf_efficientnet_b6)."""
    return _create_efficientnet("tf_efficientnet_b6", **kwargs)


@register_model(_cfg("tf_efficientnet_b7"))
def tf_efficientnet_b7(**kwargs: Any) -> MBConvNet:
    """EfficientNet-B7, TensorFlow layout (timm's tf_efficientnet_b7)."""
    return _create_efficientnet("tf_efficientnet_b7", **kwargs)
