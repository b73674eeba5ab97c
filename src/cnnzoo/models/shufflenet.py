"""ShuffleNet (v1): pointwise group convolutions and channel shuffle.

Zhang, Zhou, Lin, Sun, "ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile
Devices", CVPR 2018. Table 1 (the layers and the widths per group count), Fig. 2 (the units),
Table 2 (widths 0.5× and 0.25×).

A ShuffleNet unit (Fig. 2b) is a bottleneck whose 1×1 convolutions are grouped: 1×1 GConv → BN →
ReLU → channel shuffle → 3×3 depthwise conv → BN → 1×1 GConv → BN, added to the input and passed
through a ReLU. The stride-2 unit (Fig. 2c) strides the depthwise conv, takes a 3×3/2 average pool
as its shortcut and concatenates the two instead of adding them, so a stage's first unit widens
the map for free. The shuffle (:class:`~cnnzoo.layers.shuffle.ChannelShuffle`) lets the second
grouped conv see every group of the first.

The network (Table 1): conv1 3×3/2 with 24 filters, a 3×3/2 max-pool, stages 2-4 of 4, 8 and 4
units (each starting with a stride-2 unit) at 28², 14² and 7² (224 input), global average pool, fc.
The stage widths depend on the group count g (:data:`TABLE1`), chosen so that the complexity stays
near 140 M MACs:

====================  ================  ===========  ===============  ===========================
name                  g; stage widths   params       MACs at 224      Table 1 MACs; top-1 error
====================  ================  ===========  ===============  ===========================
``shufflenet_v1_g1``  1; 144-288-576    1,531,936    143.1 M          143 M; 33.6 % (Table 2)
``shufflenet_v1_g2``  2; 200-400-800    1,733,848    140.8 M          140 M; 32.7 %
``shufflenet_v1_g3``  3; 240-480-960    1,865,728    137.5 M          137 M; 32.6 %
``shufflenet_v1_g4``  4; 272-544-1088   1,968,344    134.3 M          133 M; 32.8 %
``shufflenet_v1_g8``  8; 384-768-1536   2,434,768    138.4 M          137 M; 32.4 %
====================  ================  ===========  ===============  ===========================

The paper prints no parameter counts. Choices the paper leaves open, and where we depart from it:

* **Bottleneck width**: a quarter of the unit's output width (§3.3), of the whole output also in a
  stride-2 unit, whose residual branch then makes ``out − in`` channels (the authors' release,
  ``megvii-model/ShuffleNet-Series``, does both).
* **Stage 2's first unit** has an ungrouped first 1×1 conv ("the number of input channels is
  relatively small", §3.3); its shuffle is kept, as the authors' release keeps it.
* **Where the ReLU sits in a stride-2 unit**: after the concatenation (Fig. 2c). The shortcut is an
  average of the previous unit's (non-negative) output, so this is the authors' release, which
  applies it to the branch alone.
* **MACs** (conv and fc multiply-adds) agree with Table 1 to within 1 % at 1× (g = 1, 2, 3 to the
  whole MFLOP; 134.3 M against 133 M for g = 4 and 138.4 M against 137 M for g = 8, a difference
  the paper does not explain).
* **Width** ``s`` (Table 2's "ShuffleNet s×" scales "the number of filters" by s): every width is
  scaled, conv1's 24 included (the authors' release does the same: 12 filters at 0.5×). The paper
  does not say how it rounds widths the groups do not divide (0.5× with g = 2 asks for 100
  channels, a bottleneck of 25 in 2 groups): conv1 is rounded to the nearest multiple of g and
  stage 2 to the nearest multiple of 4·g (:func:`~cnnzoo.layers.conv.make_divisible`; the
  bottleneck is a quarter, split into g groups), and stages 3 and 4 double stage 2. ``width=1``
  gives Table 1 exactly. MACs: 38-41 M at 0.5× and 10-12 M at 0.25×, against Table 2's 38 M and
  13 M (one rounded figure for every g).
* **Init**: He normal (fan-out) convs, BN γ = 1, β = 0, fc N(0, 0.01²) (the paper gives none).
* **Minimum input**: every stride-2 layer pads, so the last map is ceil(s / 32); batch norm in
  training needs at least 2×2 there, so 33×33 (as ResNet). Fashion-MNIST: resized to 64×64.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.errors import ConfigError
from cnnzoo.layers.conv import ConvNormAct, make_divisible
from cnnzoo.layers.init import he_normal_init, init_weights_, norm_init, normal_init
from cnnzoo.layers.shuffle import ChannelShuffle
from cnnzoo.models._config import imagenet_cfg
from cnnzoo.models.base import FeatureInfo, ZooModel
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "ShuffleUnit",
    "ShuffleNetV1",
    "ShuffleNetV1Variant",
    "TABLE1",
    "VARIANTS",
    "PAPER",
    "stage_widths",
    "shufflenet_v1_g1",
    "shufflenet_v1_g2",
    "shufflenet_v1_g3",
    "shufflenet_v1_g4",
    "shufflenet_v1_g8",
]

PAPER = (
    "X. Zhang, X. Zhou, M. Lin, J. Sun. ShuffleNet: An Extremely Efficient Convolutional Neural "
    "Network for Mobile Devices. CVPR 2018."
)

#: Table 1: group count -> output width of stages 2, 3, 4 at 1x.
TABLE1: dict[int, tuple[int, int, int]] = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
#: Table 1: units per stage (the first of each with stride 2).
STAGE_UNITS = (4, 8, 4)
STEM_WIDTH = 24


class ShuffleUnit(nn.Module):
    """The ShuffleNet unit (Fig. 2b; Fig. 2c at stride 2).

    Args:
        in_channels, out_channels: the unit's widths (at stride 2 the branch makes ``out − in``).
        stride: 1 (add the input) or 2 (concatenate a 3×3/2 average pool of it).
        groups: g of the grouped 1×1 convs and the shuffle.
        first_groups: groups of the first 1×1 conv (1 in stage 2's first unit, else ``groups``).

    Submodules: ``conv1`` (1×1 GConv, BN, ReLU), ``shuffle``, ``conv2`` (3×3 depthwise, BN),
    ``conv3`` (1×1 GConv, BN), ``shortcut`` (the average pool, at stride 2), ``act``.
    """

    cost_type = "block"

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, groups: int, first_groups: int
    ) -> None:
        super().__init__()
        mid = out_channels // 4
        branch = out_channels - in_channels if stride == 2 else out_channels
        self.stride, self.groups = stride, groups
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv1 = ConvNormAct(in_channels, mid, 1, groups=first_groups)
        self.shuffle = ChannelShuffle(groups, mid)
        self.conv2 = ConvNormAct(mid, mid, 3, stride, groups=mid, act_layer=None)
        self.conv3 = ConvNormAct(mid, branch, 1, groups=groups, act_layer=None)
        self.shortcut = nn.AvgPool2d(3, 2, padding=1) if stride == 2 else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv3(self.conv2(self.shuffle(self.conv1(x))))
        if self.shortcut is not None:
            out = torch.cat([self.shortcut(x), out], 1)
        else:
            out = out + x
        return self.act(out)

    def cost_details(self) -> dict[str, int | bool]:
        details: dict[str, int | bool] = {"groups": self.groups, "stride": self.stride}
        details["concat" if self.stride == 2 else "residual"] = True
        return details


def _check_width(width: Any) -> float:
    if isinstance(width, bool) or not isinstance(width, numbers.Real) or not width > 0:
        raise ConfigError(
            f"ShuffleNet width must be a positive number (1.0 for 1x, 0.5, 0.25), got {width!r}"
        )
    return float(width)


def stage_widths(groups: int, width: float = 1.0) -> tuple[int, tuple[int, int, int]]:
    """conv1's width and Table 1's stage widths for ``groups``, scaled by ``width``.

    At ``width=1`` Table 1's row, exactly. Otherwise conv1's 24 and stage 2's width are scaled and
    rounded to the nearest multiple of g and of 4·g (:func:`~cnnzoo.layers.conv.make_divisible`),
    and stages 3 and 4 double stage 2 (see the module docstring).

    Raises:
        ConfigError: for a group count Table 1 does not list, or a width that is not positive.
    """
    width = _check_width(width)
    if isinstance(groups, bool) or groups not in TABLE1:
        raise ConfigError(
            f"Table 1 has ShuffleNet widths for groups {sorted(TABLE1)}, not groups={groups!r}; "
            "pick one of those or pass channels=(c2, c3, c4) divisible by 4 x groups"
        )
    stem, c2 = STEM_WIDTH, TABLE1[groups][0]
    if width != 1.0:
        stem, c2 = make_divisible(stem * width, groups), make_divisible(c2 * width, 4 * groups)
    return stem, (c2, 2 * c2, 4 * c2)


def _check_channels(channels: tuple[int, ...], groups: int, stem: int) -> None:
    """Each unit's bottleneck (width / 4) and branch (width − input at stride 2) split into groups."""
    inputs = (stem, *channels[:-1])
    if not all(
        c % (4 * groups) == 0 and (c - i) % groups == 0 and c > i
        for c, i in zip(channels, inputs, strict=True)
    ):
        raise ConfigError(
            f"ShuffleNet with groups={groups} needs stage widths divisible by 4 x groups = {4 * groups} "
            f"(a bottleneck of width / 4 in {groups} groups), each above the one before: got "
            f"channels={tuple(channels)}; pass such widths, or width= to round Table 1's"
        )


class ShuffleNetV1(ZooModel):
    """ShuffleNet v1: conv1, max-pool, three stages of shuffle units, global average pool, fc.

    Stages (``feature_info``): ``conv1`` at 2, ``maxpool`` at 4, ``stage2``-``stage4`` at 8, 16,
    32. Classifier (``head_name``): ``fc``.

    Args:
        groups: g of the pointwise group convolutions (Table 1: 1, 2, 3, 4, 8).
        width: the multiplier s of "ShuffleNet s×" (Table 2); rounds stage widths to fit the groups.
        channels: the stage widths, overriding Table 1 (each divisible by 4·g; ``width`` is then ignored).
        num_classes, in_chans: classifier outputs and input channels.
        stem_width: filters of conv1 (default: 24, scaled by ``width``).
        dropout: dropout before the fc (0: the paper has none).

    Raises:
        ConfigError: for a width ≤ 0, or widths that ``groups`` does not divide.
    """

    def __init__(
        self,
        groups: int = 3,
        *,
        width: float = 1.0,
        channels: tuple[int, int, int] | None = None,
        num_classes: int = 1000,
        in_chans: int = 3,
        stem_width: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        if channels is None:
            stem, channels = stage_widths(groups, width)
            stem_width = stem if stem_width is None else stem_width
        elif isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ConfigError(f"ShuffleNet groups must be an int of at least 1, got {groups!r}")
        stem_width = STEM_WIDTH if stem_width is None else stem_width
        _check_channels(tuple(channels), groups, stem_width)
        self.groups, self.stage_channels = groups, tuple(channels)
        self.conv1 = ConvNormAct(in_chans, stem_width, 3, 2)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        self.feature_info = [FeatureInfo("conv1", stem_width, 2), FeatureInfo("maxpool", stem_width, 4)]
        c_in, reduction = stem_width, 4
        for i, (n, c) in enumerate(zip(STAGE_UNITS, channels, strict=True)):
            units = [ShuffleUnit(c_in, c, 2, groups, 1 if i == 0 else groups)]
            units += [ShuffleUnit(c, c, 1, groups, groups) for _ in range(n - 1)]
            self.add_module(f"stage{i + 2}", nn.Sequential(*units))
            c_in, reduction = c, reduction * 2
            self.feature_info.append(FeatureInfo(f"stage{i + 2}", c, reduction))
        self.num_features = c_in
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout else None
        self.fc = nn.Linear(c_in, num_classes)
        self.head_name = "fc"
        init_weights_(
            self,
            {
                nn.Conv2d: he_normal_init("fan_out", bias=None),
                nn.BatchNorm2d: norm_init(),
                nn.Linear: normal_init(0.01),
            },
        )

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))  # (N, 24, 56, 56) at 224
        return self.stage4(self.stage3(self.stage2(x)))  # (N, c4, 7, 7)

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        if self.dropout is not None:
            x = self.dropout(x)
        return x if pre_logits else self.fc(x)


class ShuffleNetV1Variant(NamedTuple):
    """One registered ShuffleNet v1 at 1x: its group count and Table 1/2's figures."""

    groups: int
    table1_macs: float  # Table 1's complexity at 1x, in MACs ("MFLOPs")
    top1_error: float  # Table 2, 1x


VARIANTS: dict[str, ShuffleNetV1Variant] = {
    "shufflenet_v1_g1": ShuffleNetV1Variant(1, 143e6, 33.6),
    "shufflenet_v1_g2": ShuffleNetV1Variant(2, 140e6, 32.7),
    "shufflenet_v1_g3": ShuffleNetV1Variant(3, 137e6, 32.6),
    "shufflenet_v1_g4": ShuffleNetV1Variant(4, 133e6, 32.8),
    "shufflenet_v1_g8": ShuffleNetV1Variant(8, 137e6, 32.4),
}
#: Table 2's complexity per width (the same for every group count), in MACs.
TABLE2_MACS: dict[float, float] = {1.0: 140e6, 0.5: 38e6, 0.25: 13e6}


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    source = "Zhang et al. 2018, Table 2 (1x, single crop; the paper gives top-1 error)"
    return imagenet_cfg(  # min input 33: the last map ceil(s / 32) >= 2 for batch norm in training
        paper=PAPER,
        year=2018,
        family="shufflenet_v1",
        notes=f"Table 1 with g={v.groups} at 1x; width= rounds conv1 to g and stage 2 to 4g (not in the paper)",
        extra={
            "reported": {
                "dataset": "imagenet",
                "top1": round(100 - v.top1_error, 1),
                "crop": 224,
                "source": source,
            },
            "macs": {"value": v.table1_macs, "source": "Zhang et al. 2018, Table 1"},
        },
    )


def _create_shufflenet_v1(name: str, **kwargs: Any) -> ShuffleNetV1:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    return ShuffleNetV1(**{"groups": VARIANTS[name].groups, **kwargs})


@register_model(_cfg("shufflenet_v1_g1"))
def shufflenet_v1_g1(**kwargs: Any) -> ShuffleNetV1:
    """ShuffleNet 1× with g = 1 (Table 1: 144-288-576). Options as :class:`ShuffleNetV1` (``width``)."""
    return _create_shufflenet_v1("shufflenet_v1_g1", **kwargs)


@register_model(_cfg("shufflenet_v1_g2"))
def shufflenet_v1_g2(**kwargs: Any) -> ShuffleNetV1:
    """ShuffleNet 1× with g = 2 (Table 1: 200-400-800)."""
    return _create_shufflenet_v1("shufflenet_v1_g2", **kwargs)


@register_model(_cfg("shufflenet_v1_g3"))
def shufflenet_v1_g3(**kwargs: Any) -> ShuffleNetV1:
    """ShuffleNet 1× with g = 3 (Table 1: 240-480-960), the paper's usual setting."""
    return _create_shufflenet_v1("shufflenet_v1_g3", **kwargs)


@register_model(_cfg("shufflenet_v1_g4"))
def shufflenet_v1_g4(**kwargs: Any) -> ShuffleNetV1:
    """ShuffleNet 1× with g = 4 (Table 1: 272-544-1088)."""
    return _create_shufflenet_v1("shufflenet_v1_g4", **kwargs)


@register_model(_cfg("shufflenet_v1_g8"))
def shufflenet_v1_g8(**kwargs: Any) -> ShuffleNetV1:
    """ShuffleNet 1× with g = 8 (Table 1: 384-768-1536)."""
    return _create_shufflenet_v1("shufflenet_v1_g8", **kwargs)
