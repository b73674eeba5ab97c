"""BN-Inception: GoogLeNet with batch normalisation (the network some decks call "Inception v2").

S. Ioffe, C. Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing Internal
Covariate Shift", ICML 2015, §4.2 and the appendix's Figure 5 (the network's table). The decks'
"history of Inception" labels this network Inception v2; Szegedy et al. 2016 ("Rethinking the
Inception Architecture", :mod:`cnnzoo.models.inception_v3`) use "Inception-v2" for another one, the
v3 network without its last refinements, and call this one BN-Inception, as cnnzoo does.

The changes from GoogLeNet (the appendix's list):

* batch norm after every convolution, before its ReLU (§3.2; the convs have no bias, which BN's
  shift makes redundant), and no LRN (§4.2.1);
* each 5×5 conv replaced by two 3×3 convs (the "double #3×3" columns of Fig. 5), with up to 128
  filters more in the 28×28 modules;
* three 28×28 modules (3a, 3b, 3c) instead of two;
* average pooling in the pool branch of most modules, max pooling in 5b (the table's "avg" and
  "max" entries);
* no pooling layer between the Inception groups: modules 3c and 4e reduce the grid themselves,
  with stride 2 in their last 3×3 convs and a 3×3/2 max pool that passes its input through;
* the first conv is separable, "with depth multiplier 8" (the appendix: a 7×7/2 depthwise conv
  making 8 maps per input channel, then a 1×1 conv to 64, then BN and ReLU, as in TensorFlow's
  separable convolution); ``separable_stem=False`` gives the plain 7×7 conv of the Caffe
  reproduction;
* no dropout (§4.2.1 "Remove Dropout"); ``dropout`` adds it back.

Where Fig. 5 does not add up or is silent:

* **Widths.** The table prints output depths of 576, 576 and 1024 for 4c, 4d and 4e, but their
  branch columns sum to 160 + 160 + 160 + 128 = 608, 96 + 192 + 192 + 128 = 608, and
  192 + 256 + 608 = 1,056 (4e passes 4d's 608 channels through its pool). cnnzoo follows the
  columns, as the Caffe reproduction does (its 4d and 5a take 608 and 1,056 channels); 5a then
  brings the width back to 1,024.
* **Stride-2 modules.** The table lists 3c and 4e at the input size (28×28, 14×14); their outputs
  are 14×14 and 7×7. Their stride-2 3×3 convs pad by 1 (Caffe), and their max pool pads by 1 too,
  so both give ceil(n / 2) at every input size (Caffe's unpadded ceil-mode pool agrees with the
  convs at even sizes only).
* **Pools.** The stem's 3×3/2 max pools round up (Caffe's ``ceil_mode``), so 224 gives
  112 → 56 → 28 as the table has it; the modules' average pools leave the zero padding out of the
  mean (TensorFlow's), and their max pools are 3×3/1 with padding.
* **BN** eps 0.001 (TensorFlow's); **init** He-normal (fan-in) for convs, PyTorch's default for the
  fc, BN γ = 1, β = 0: the paper does not give one (BN makes the network insensitive to it, §3.3).
* **Head**: global average pooling (the table's 7×7 at 224) and the fc.

Minimum input 39 (the last map 2×2: BN cannot train on 1×1 maps, see :mod:`cnnzoo.models.resnet`);
Fashion-MNIST is resized to 96×96 (3×3 last maps).

Reported: 25.2% top-1 / 7.82% top-5 error, single crop (Table 2, "BN-Inception single crop"); the
cost is 2.0 billion multiply-adds (Szegedy et al. 2016, Table 3).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from torch import Tensor, nn

from cnnzoo.layers.conv import create_conv2d
from cnnzoo.layers.inception import HW, BlockSpec, avg_pool, conv, max_pool, out_side
from cnnzoo.layers.init import he_normal_init, norm_init
from cnnzoo.models._config import imagenet_cfg
from cnnzoo.models._inception import InceptionNet, Row, min_input_side
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "BNInception",
    "Fig5Row",
    "FIG5",
    "SeparableStem",
    "SeparableStemSpec",
    "bn_inception_rows",
    "PAPER",
    "bn_inception",
]

PAPER = (
    "S. Ioffe, C. Szegedy. Batch Normalization: Accelerating Deep Network Training by Reducing "
    "Internal Covariate Shift. ICML 2015."
)


class Fig5Row(NamedTuple):
    """One Inception module of Fig. 5. ``n1x1 = 0`` and ``pool_proj = None``: the stride-2 modules
    (no 1×1 branch; the pool passes its input through)."""

    name: str
    n1x1: int
    n3x3_reduce: int
    n3x3: int
    double_reduce: int
    double_3x3: int
    pool: str  # "avg" or "max"
    pool_proj: int | None
    stride: int = 1


FIG5: tuple[Fig5Row, ...] = (
    Fig5Row("inception3a", 64, 64, 64, 64, 96, "avg", 32),
    Fig5Row("inception3b", 64, 64, 96, 64, 96, "avg", 64),
    Fig5Row("inception3c", 0, 128, 160, 64, 96, "max", None, stride=2),
    Fig5Row("inception4a", 224, 64, 96, 96, 128, "avg", 128),
    Fig5Row("inception4b", 192, 96, 128, 96, 128, "avg", 128),
    Fig5Row("inception4c", 160, 128, 160, 128, 160, "avg", 128),
    Fig5Row("inception4d", 96, 128, 192, 160, 192, "avg", 128),
    Fig5Row("inception4e", 0, 128, 192, 192, 256, "max", None, stride=2),
    Fig5Row("inception5a", 352, 192, 320, 160, 224, "avg", 128),
    Fig5Row("inception5b", 352, 192, 320, 192, 224, "max", 128),
)


def _module(row: Fig5Row) -> BlockSpec:
    """The branches of one Fig. 5 row: 1×1; 1×1 → 3×3; 1×1 → 3×3 → 3×3; pool (→ 1×1)."""
    s = row.stride
    branches = [] if not row.n1x1 else [(conv(row.n1x1),)]
    branches.append((conv(row.n3x3_reduce), conv(row.n3x3, 3, s)))
    branches.append((conv(row.double_reduce), conv(row.double_3x3, 3), conv(row.double_3x3, 3, s)))
    if row.pool_proj is None:  # a stride-2 module: the pool passes the input through
        branches.append((max_pool(3, 2, 1),))
        proj = "max + pass through"
    else:
        branches.append(((avg_pool() if row.pool == "avg" else max_pool(3, 1, 1)), conv(row.pool_proj)))
        proj = f"{row.pool} + {row.pool_proj}"
    details = (
        ("#1×1", row.n1x1 or None),
        ("#3×3 reduce", row.n3x3_reduce),
        ("#3×3", row.n3x3),
        ("double #3×3 reduce", row.double_reduce),
        ("double #3×3", row.double_3x3),
        ("pool proj", proj),
    ) + ((("stride", 2),) if s == 2 else ())
    return BlockSpec(tuple(branches), details=details)


class SeparableStemSpec(NamedTuple):
    """The appendix's first conv: a depthwise 7×7/2 with depth multiplier 8, then a 1×1 conv."""

    out: int = 64
    kernel: int = 7
    stride: int = 2
    multiplier: int = 8

    def out_channels(self, in_channels: int) -> int:
        return self.out

    def out_hw(self, hw: HW) -> HW:
        h, w = (out_side(n, self.kernel, self.stride, self.kernel // 2) for n in hw)
        return h, w

    def build(self, in_channels: int, norm: bool = True) -> nn.Module:
        return SeparableStem(in_channels, self)


class SeparableStem(nn.Module):
    """Depthwise k×k/s conv (``multiplier`` maps per input channel) → 1×1 conv → BN → ReLU.

    No BN or ReLU between the two convs, as TensorFlow's ``separable_conv2d`` with a normaliser.
    Submodules ``conv_dw``, ``conv_pw``, ``bn``, ``act``.
    """

    cost_type = "block"

    def __init__(self, in_channels: int, spec: SeparableStemSpec) -> None:
        super().__init__()
        mid = in_channels * spec.multiplier
        self.conv_dw = create_conv2d(in_channels, mid, spec.kernel, spec.stride, groups=in_channels)
        self.conv_pw = create_conv2d(mid, spec.out, 1)
        self.bn = nn.BatchNorm2d(spec.out, eps=0.001)
        self.act = nn.ReLU(inplace=True)
        self.multiplier = spec.multiplier

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv_pw(self.conv_dw(x))))

    def cost_details(self) -> dict[str, int | str]:
        k = self.conv_dw.kernel_size
        return {"separable": f"{k[0]}×{k[1]}/{self.conv_dw.stride[0]}", "depth multiplier": self.multiplier}


def bn_inception_rows(separable_stem: bool = True) -> tuple[Row, ...]:
    """Fig. 5 as rows: the stem, then the ten modules (no pools between the groups)."""
    stem = SeparableStemSpec() if separable_stem else conv(64, 7, 2)
    return (
        Row("conv1", stem),
        Row("maxpool1", max_pool(3, 2, ceil_mode=True)),
        Row("conv2", conv(64)),  # the table's "#3×3 reduce" of the stem's 3×3 conv
        Row("conv3", conv(192, 3)),
        Row("maxpool2", max_pool(3, 2, ceil_mode=True)),
        *(Row(r.name, _module(r)) for r in FIG5),
    )


class BNInception(InceptionNet):
    """BN-Inception (Ioffe & Szegedy 2015, Fig. 5); see the module docstring.

    Stages (``feature_info``): ``conv1`` at 1/2, ``conv3`` at 1/4, ``inception3b`` at 1/8,
    ``inception4d`` at 1/16, ``inception5b`` at 1/32. Classifier ``fc``.

    Args:
        num_classes: classifier outputs.
        in_chans: input channels.
        separable_stem: the appendix's separable first conv (depth multiplier 8); ``False``: a
            plain 7×7/2 conv (the Caffe reproduction).
        dropout: before the classifier (0: §4.2.1 removes it).
    """

    def __init__(
        self, *, num_classes: int = 1000, in_chans: int = 3, separable_stem: bool = True, dropout: float = 0.0
    ) -> None:
        rules = {nn.Conv2d: he_normal_init("fan_in", bias=None), nn.BatchNorm2d: norm_init()}
        super().__init__(
            bn_inception_rows(separable_stem), num_classes=num_classes, in_chans=in_chans, dropout=dropout,
            init=rules,
        )  # fmt: skip
        self.separable_stem = separable_stem


def _cfg() -> ModelConfig:
    return imagenet_cfg(
        min_input_size=min_input_side(bn_inception_rows()),  # 39: the 7x7 map of 224 is 2x2 there
        paper=PAPER,
        year=2015,
        family="bn_inception",
        small_input_size=96,
        notes="Fig. 5, widths as its columns sum (608/608/1056)",
        extra={
            "reported": {
                "dataset": "imagenet",
                "top1": 74.8,
                "top5": 92.18,
                "crop": 224,
                "source": "Ioffe & Szegedy 2015, Table 2 (BN-Inception, single crop)",
            },
            "macs": {"value": 2.0e9, "source": "Szegedy et al. 2016 (Rethinking), Table 3"},
        },
    )


def _create_bn_inception(**kwargs: Any) -> BNInception:
    return BNInception(**kwargs)


@register_model(_cfg())
def bn_inception(**kwargs: Any) -> BNInception:
    """BN-Inception (Ioffe & Szegedy 2015, Fig. 5). Options as :class:`BNInception`."""
    return _create_bn_inception(**kwargs)
