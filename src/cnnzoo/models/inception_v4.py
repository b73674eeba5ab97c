"""Inception-v4 and Inception-ResNet v1 and v2, from the paper's figures, and the released v2.

C. Szegedy, S. Ioffe, V. Vanhoucke, A. Alemi, "Inception-v4, Inception-ResNet and the Impact of
Residual Connections on Learning", AAAI 2017, Figs. 3-20 and Table 1 (the reduction widths k, l,
m, n).

=========================  ========================================================================
name                       layout
=========================  ========================================================================
``inception_v4``           Fig. 9: the stem of Fig. 3, 4× Inception-A (Fig. 4), Reduction-A (Fig. 7,
                           k, l, m, n = 192, 224, 256, 384), 7× Inception-B (Fig. 5), Reduction-B
                           (Fig. 8), 3× Inception-C (Fig. 6), average pool, dropout (keep 0.8)
``inception_resnet_v1``    Fig. 15 with the stem of Fig. 14, 5× Inception-ResNet-A (Fig. 10),
                           Reduction-A (192, 192, 256, 384), 10× -B (Fig. 11), Reduction-B (Fig. 12),
                           5× -C (Fig. 13)
``inception_resnet_v2``    Fig. 15 with the stem of Fig. 3, 5× -A (Fig. 16), Reduction-A (256, 256,
                           384, 384), 10× -B (Fig. 17), Reduction-B (Fig. 18), 5× -C (Fig. 19)
``inception_resnet_v2_tf`` the TF-slim release (timm's ``inception_resnet_v2``): another stem, 10/20/10
                           blocks, the last without its ReLU, and a 1×1 conv to 1,536 before the pool
=========================  ========================================================================

``inception_v4`` is also the released network: the figures and the TF-slim release agree, and
timm's ``inception_v4`` file loads into it (the key map in :mod:`cnnzoo.weights`). Choices and
fixes:

* **Strides.** Fig. 3's last stem conv ("3×3 Conv (192 V)") takes the 71×71 map to the 35×35×384 that
  the figure prints, beside a stride-2 max pool, so it has stride 2 (as the release).
* **1×7 and 7×1.** The figures' "1×7" and "7×1" do not say which axis comes first; cnnzoo takes the
  release's order ("1×7" is one row of seven, ``(1, 7)``). Branch order in each concatenation is the
  release's too (the figures do not order their branches).
* **Inception-ResNet-v2's residual widths** (Figs. 16-19) do not add up: Reduction-A (256, 256, 384,
  384) leaves 384 + 384 + 384 = 1,152 channels, but Fig. 17's linear 1×1 conv has 1,154 filters,
  and Reduction-B leaves 1,152 + 384 + 288 + 320 = 2,144 channels, where Fig. 19's linear 1×1 conv
  has 2,048. A residual sum needs the projection to give back its input's width, so cnnzoo's
  projections are 1,152 and 2,144 wide (Inception-ResNet-v1's widths, 256, 896 and 1,792, add up
  as printed). The release avoids both by a stem of 320 channels (``Mixed_5b``): 1,088 and 2,080.
* **Residual scaling** (§3.3: "scaling factors between 0.1 and 0.3"; the paper does not say which
  block gets which): 0.17, 0.10 and 0.20 for the A, B and C blocks of every Inception-ResNet, the
  release's (``residual_scales`` changes them). BN sits on the branch convs only, never on the
  residual sums (§3.2), and the linear 1×1 projections have a bias.
* **Pooling** inside the modules is a 3×3/1 average that leaves the padding out (TensorFlow's),
  "V" convs and pools are unpadded, the others padded by half the kernel.
* **Silent choices**: BN eps 0.001; weights He-normal from the fan-in (TF-slim's variance-scaling
  initialiser, untruncated), biases 0; dropout 0.2 before the fc ("keep 0.8").

``inception_resnet_v2_tf`` is the release (TF-slim's ``inception_resnet_v2``, timm's
``inception_resnet_v2``): stem 32-32-64, max pool, 80 (1×1), 192, max pool, then ``Mixed_5b``
(96 ‖ 48 → 5×5 64 ‖ 64 → 96 → 96 ‖ avg pool → 64: 320 channels); 10 A blocks (320), Reduction-A
(1,088), 20 B blocks, Reduction-B (2,080), 9 C blocks and a tenth with scale 1.0 and no ReLU, then a
1×1 conv to 1,536. It loads timm's file through a key map. 55,843,464 parameters (timm's).

Every model takes ``transform_input=True`` to map ImageNet-normalised input to the [-1, 1] range
that the TF-slim weights (timm's, mean = std = 0.5) expect.

MACs at 299 (the paper prints none; it says Inception-ResNet-v1 costs about as much as Inception-v3,
and v2 as much as Inception-v4): see the tests and the README. Minimum input 107 for every one (the
8×8 map of 299 is 2×2 there; BN cannot train on 1×1 maps); Fashion-MNIST is resized to 139.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from torch import nn

from cnnzoo.errors import ConfigError
from cnnzoo.layers.inception import BlockSpec, avg_pool, conv, max_pool, split
from cnnzoo.layers.init import he_normal_init, norm_init
from cnnzoo.models._config import imagenet_cfg
from cnnzoo.models._inception import InceptionNet, Row, min_input_side, repeat
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "InceptionV4",
    "InceptionResNet",
    "PAPER",
    "RELEASE_SCALES",
    "VARIANTS",
    "inception_v4",
    "inception_resnet_v1",
    "inception_resnet_v2",
    "inception_resnet_v2_tf",
]

PAPER = (
    "C. Szegedy, S. Ioffe, V. Vanhoucke, A. Alemi. Inception-v4, Inception-ResNet and the Impact of "
    "Residual Connections on Learning. AAAI 2017."
)
RELEASE_SCALES = (0.17, 0.10, 0.20)  # Inception-ResNet A, B, C (TF-slim); §3.3 says 0.1-0.3
Scales = tuple[float, float, float]


# -- the blocks ------------------------------------------------------------------------------------

V = "valid"


def reduction_a(k: int, l: int, m: int, n: int) -> BlockSpec:  # noqa: E741 (the paper's letters)
    """Fig. 7 with Table 1's widths: 3×3/2 conv (n) ‖ 1×1 (k) → 3×3 (l) → 3×3/2 (m) ‖ 3×3/2 max pool."""
    return BlockSpec(((conv(n, 3, 2, V),), (conv(k), conv(l, 3), conv(m, 3, 2, V)), (max_pool(),)))


def _stem_fig3() -> tuple[Row, ...]:
    """Fig. 3, the stem of Inception-v4 and Inception-ResNet-v2: 299 → 35×35×384."""
    return (
        Row("conv1", conv(32, 3, 2, V)),  # 149
        Row("conv2", conv(32, 3, padding=V)),  # 147
        Row("conv3", conv(64, 3)),  # 147x147x64
        Row("mixed_3a", BlockSpec(((max_pool(),), (conv(96, 3, 2, V),)))),  # 73x73x160
        Row("mixed_4a", BlockSpec((
            (conv(64), conv(96, 3, padding=V)),
            (conv(64), conv(64, (1, 7)), conv(64, (7, 1)), conv(96, 3, padding=V)),
        ))),  # 71x71x192
        Row("mixed_5a", BlockSpec(((conv(192, 3, 2, V),), (max_pool(),)))),  # 35x35x384
    )  # fmt: skip


INCEPTION_A = BlockSpec((  # Fig. 4, 35x35x384
    (conv(96),),
    (conv(64), conv(96, 3)),
    (conv(64), conv(96, 3), conv(96, 3)),
    (avg_pool(), conv(96)),
))  # fmt: skip
INCEPTION_B = BlockSpec((  # Fig. 5, 17x17x1024
    (conv(384),),
    (conv(192), conv(224, (1, 7)), conv(256, (7, 1))),
    (conv(192), conv(192, (7, 1)), conv(224, (1, 7)), conv(224, (7, 1)), conv(256, (1, 7))),
    (avg_pool(), conv(128)),
))  # fmt: skip
INCEPTION_C = BlockSpec((  # Fig. 6, 8x8x1536
    (conv(256),),
    (conv(384), split(conv(256, (1, 3)), conv(256, (3, 1)))),
    (conv(384), conv(448, (3, 1)), conv(512, (1, 3)), split(conv(256, (1, 3)), conv(256, (3, 1)))),
    (avg_pool(), conv(256)),
))  # fmt: skip
REDUCTION_B = BlockSpec((  # Fig. 8, 17x17x1024 -> 8x8x1536
    (conv(192), conv(192, 3, 2, V)),
    (conv(256), conv(256, (1, 7)), conv(320, (7, 1)), conv(320, 3, 2, V)),
    (max_pool(),),
))  # fmt: skip


def v4_rows(scales: Scales | None = None) -> tuple[Row, ...]:
    """Fig. 9: Inception-v4."""
    return (
        *_stem_fig3(),
        Row("inception_a", repeat(INCEPTION_A, 4)),
        Row("reduction_a", reduction_a(192, 224, 256, 384)),  # 17x17x1024
        Row("inception_b", repeat(INCEPTION_B, 7)),
        Row("reduction_b", REDUCTION_B),
        Row("inception_c", repeat(INCEPTION_C, 3)),
    )


def _residual(scale: float, *branches: tuple, act: bool = True) -> BlockSpec:
    return BlockSpec(tuple(branches), residual_scale=scale, act=act)


def _reduction_b_resnet(a: int, b: int, c: int, d: int) -> BlockSpec:
    """Figs. 12 and 18: max pool ‖ 1×1 256 → 3×3/2 ``a`` ‖ 1×1 256 → 3×3/2 ``b`` ‖ 1×1 256 → 3×3 ``c``
    → 3×3/2 ``d`` (the release's branch order: the pool last)."""
    return BlockSpec((
        (conv(256), conv(a, 3, 2, V)),
        (conv(256), conv(b, 3, 2, V)),
        (conv(256), conv(c, 3), conv(d, 3, 2, V)),
        (max_pool(),),
    ))  # fmt: skip


def ir_v1_rows(scales: Scales) -> tuple[Row, ...]:
    """Fig. 15 with Figs. 10-14: Inception-ResNet-v1."""
    sa, sb, sc = scales
    a = _residual(sa, (conv(32),), (conv(32), conv(32, 3)), (conv(32), conv(32, 3), conv(32, 3)))
    b = _residual(sb, (conv(128),), (conv(128), conv(128, (1, 7)), conv(128, (7, 1))))
    c = _residual(sc, (conv(192),), (conv(192), conv(192, (1, 3)), conv(192, (3, 1))))
    return (
        Row("conv1", conv(32, 3, 2, V)),  # Fig. 14: 149
        Row("conv2", conv(32, 3, padding=V)),  # 147
        Row("conv3", conv(64, 3)),  # 147
        Row("pool1", max_pool()),  # 73
        Row("conv4", conv(80)),  # 73x73x80
        Row("conv5", conv(192, 3, padding=V)),  # 71
        Row("conv6", conv(256, 3, 2, V)),  # 35x35x256
        Row("inception_resnet_a", repeat(a, 5)),
        Row("reduction_a", reduction_a(192, 192, 256, 384)),  # 17x17x896
        Row("inception_resnet_b", repeat(b, 10)),
        Row("reduction_b", _reduction_b_resnet(384, 256, 256, 256)),  # 8x8x1792
        Row("inception_resnet_c", repeat(c, 5)),
    )


def _ir_v2_blocks(scales: Scales, *, act_last: bool = True) -> tuple[BlockSpec, BlockSpec, BlockSpec]:
    """Figs. 16, 17, 19 (the release's Block35, Block17, Block8): the projections match the input."""
    sa, sb, sc = scales
    a = _residual(sa, (conv(32),), (conv(32), conv(32, 3)), (conv(32), conv(48, 3), conv(64, 3)))
    b = _residual(sb, (conv(192),), (conv(128), conv(160, (1, 7)), conv(192, (7, 1))))
    c = _residual(sc, (conv(192),), (conv(192), conv(224, (1, 3)), conv(256, (3, 1))))
    return a, b, c


def ir_v2_rows(scales: Scales) -> tuple[Row, ...]:
    """Fig. 15 with Figs. 3 and 16-19: Inception-ResNet-v2 (projections 1,152 and 2,144 wide)."""
    a, b, c = _ir_v2_blocks(scales)
    return (
        *_stem_fig3(),
        Row("inception_resnet_a", repeat(a, 5)),
        Row("reduction_a", reduction_a(256, 256, 384, 384)),  # 17x17x1152
        Row("inception_resnet_b", repeat(b, 10)),
        Row("reduction_b", _reduction_b_resnet(384, 288, 288, 320)),  # 8x8x2144
        Row("inception_resnet_c", repeat(c, 5)),
    )


def ir_v2_tf_rows(scales: Scales) -> tuple[Row, ...]:
    """The TF-slim release of Inception-ResNet-v2 (timm's ``inception_resnet_v2``)."""
    a, b, c = _ir_v2_blocks(scales)
    last = BlockSpec(c.branches, residual_scale=1.0, act=False)  # the release's final Block8
    mixed_5b = BlockSpec((
        (conv(96),),
        (conv(48), conv(64, 5)),
        (conv(64), conv(96, 3), conv(96, 3)),
        (avg_pool(), conv(64)),
    ))  # fmt: skip
    return (
        Row("conv1", conv(32, 3, 2, V)),
        Row("conv2", conv(32, 3, padding=V)),
        Row("conv3", conv(64, 3)),
        Row("pool1", max_pool()),
        Row("conv4", conv(80)),
        Row("conv5", conv(192, 3, padding=V)),
        Row("pool2", max_pool()),  # 35x35x192
        Row("mixed_5b", mixed_5b),  # 35x35x320
        Row("inception_resnet_a", repeat(a, 10)),
        Row("reduction_a", reduction_a(256, 256, 384, 384)),  # 17x17x1088
        Row("inception_resnet_b", repeat(b, 20)),
        Row("reduction_b", _reduction_b_resnet(384, 288, 288, 320)),  # 8x8x2080
        Row("inception_resnet_c", repeat(c, 9, last=last)),
        Row("conv6", conv(1536)),  # the release's Conv2d_7b_1x1
    )


# -- the models ------------------------------------------------------------------------------------


class Variant(NamedTuple):
    """One registered network: its rows (a function of the residual scales), note and accuracy."""

    rows: Any  # Callable[[Scales], tuple[Row, ...]]
    residual: bool
    note: str
    reported: dict[str, Any]


def _paper_top(top1: float, top5: float, what: str) -> dict[str, Any]:
    return {"dataset": "imagenet", "top1": top1, "top5": top5, "crop": 299,
            "source": f"Szegedy et al. 2017, Table 2 ({what}, single crop, non-blacklisted validation subset)"}  # fmt: skip


VARIANTS: dict[str, Variant] = {
    "inception_v4": Variant(
        v4_rows, False, "Figs. 3-9 = the TF-slim release (loads timm's)",
        _paper_top(80.0, 95.0, "Inception-v4"),
    ),
    "inception_resnet_v1": Variant(
        ir_v1_rows, True, "Figs. 10-15: 5/10/5 blocks, scales 0.17/0.1/0.2",
        _paper_top(78.7, 94.5, "Inception-ResNet-v1"),
    ),
    "inception_resnet_v2": Variant(
        ir_v2_rows, True, "Figs. 3, 15-19; residuals 1152/2144 wide (figs: 1154/2048)",
        _paper_top(80.1, 95.1, "Inception-ResNet-v2"),
    ),
    "inception_resnet_v2_tf": Variant(
        ir_v2_tf_rows, True, "the TF-slim release (loads timm's inception_resnet_v2)",
        {"dataset": "imagenet", "top1": 80.4, "top5": 95.3, "crop": 299,
         "source": "TF-slim models README, inception_resnet_v2_2016_08_30"},
    ),
}  # fmt: skip

_INIT = {nn.Conv2d: he_normal_init("fan_in", bias=0.0), nn.BatchNorm2d: norm_init()}


class InceptionV4(InceptionNet):
    """Inception-v4 (Fig. 9); see the module docstring.

    Stages (``feature_info``): ``conv3`` at 1/2, ``mixed_4a`` at 1/4, ``inception_a`` at 1/8,
    ``inception_b`` at 1/16, ``inception_c`` at 1/32. Classifier ``fc``.

    Args:
        num_classes: classifier outputs.
        in_chans: input channels.
        dropout: before the classifier (0.2: keep 0.8).
        transform_input: map ImageNet-normalised input to the [-1, 1] of the TF-slim weights.
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.2,
        transform_input: bool = False,
    ) -> None:
        super().__init__(
            v4_rows(), num_classes=num_classes, in_chans=in_chans, dropout=dropout,
            transform_input=transform_input, init=_INIT,
        )  # fmt: skip


class InceptionResNet(InceptionNet):
    """Inception-ResNet v1, v2 (Fig. 15) or the TF-slim release of v2; see the module docstring.

    Stages (``feature_info``): the stem's last layers at 1/2 and 1/4, then ``inception_resnet_a``,
    ``_b`` and ``_c`` (the release: ``conv6``) at 1/8, 1/16 and 1/32. Classifier ``fc``.

    Args:
        variant: ``"inception_resnet_v1"``, ``"inception_resnet_v2"`` or ``"inception_resnet_v2_tf"``.
        num_classes: classifier outputs.
        in_chans: input channels.
        residual_scales: the factors of the A, B and C blocks' residuals (§3.3).
        dropout: before the classifier (0.2: keep 0.8).
        transform_input: map ImageNet-normalised input to the [-1, 1] of the TF-slim weights.

    Raises:
        ConfigError: for residual scales that are not three positive numbers.
    """

    def __init__(
        self,
        variant: str = "inception_resnet_v2",
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        residual_scales: Scales = RELEASE_SCALES,
        dropout: float = 0.2,
        transform_input: bool = False,
    ) -> None:
        scales = tuple(residual_scales) if isinstance(residual_scales, (tuple, list)) else ()
        if len(scales) != 3 or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0
                                       for s in scales):  # fmt: skip
            raise ConfigError(
                f"residual_scales must be three positive numbers (the A, B and C blocks' factors), got "
                f"{residual_scales!r}; the paper uses 0.1 to 0.3, e.g. residual_scales=(0.17, 0.1, 0.2)"
            )
        self.variant, self.residual_scales = variant, scales
        super().__init__(
            VARIANTS[variant].rows(scales), num_classes=num_classes, in_chans=in_chans, dropout=dropout,
            transform_input=transform_input, init=_INIT,
        )  # fmt: skip


def _cfg(name: str) -> ModelConfig:
    v = VARIANTS[name]
    return imagenet_cfg(
        input_size=299,
        min_input_size=min_input_side(v.rows(RELEASE_SCALES)),  # 107: the 8x8 map of 299 is 2x2 there
        paper=PAPER,
        year=2017,
        family="inception_v4",
        small_input_size=139,
        notes=v.note,
        extra={"reported": v.reported},
    )


def _create_inception_v4(name: str, **kwargs: Any) -> InceptionV4 | InceptionResNet:
    """The family constructor: Inception-v4, or the Inception-ResNet row ``name``."""
    if VARIANTS[name].residual:
        return InceptionResNet(name, **kwargs)
    return InceptionV4(**kwargs)


@register_model(_cfg("inception_v4"))
def inception_v4(**kwargs: Any) -> InceptionV4:
    """Inception-v4 (Figs. 3-9; the release, loads timm's ``inception_v4``). Options as :class:`InceptionV4`."""
    return _create_inception_v4("inception_v4", **kwargs)


@register_model(_cfg("inception_resnet_v1"))
def inception_resnet_v1(**kwargs: Any) -> InceptionResNet:
    """Inception-ResNet-v1 (Figs. 10-15). Options as :class:`InceptionResNet`."""
    return _create_inception_v4("inception_resnet_v1", **kwargs)


@register_model(_cfg("inception_resnet_v2"))
def inception_resnet_v2(**kwargs: Any) -> InceptionResNet:
    """Inception-ResNet-v2 (Figs. 3, 15-19; residual widths fixed). Options as :class:`InceptionResNet`."""
    return _create_inception_v4("inception_resnet_v2", **kwargs)


@register_model(_cfg("inception_resnet_v2_tf"))
def inception_resnet_v2_tf(**kwargs: Any) -> InceptionResNet:
    """The TF-slim Inception-ResNet-v2 (loads timm's ``inception_resnet_v2``). Options as :class:`InceptionResNet`."""
    return _create_inception_v4("inception_resnet_v2_tf", **kwargs)
