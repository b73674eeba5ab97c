"""ShuffleNet v2: channel split, two branches, concat, channel shuffle.

Ma, Zhang, Zheng, Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
ECCV 2018. Table 5 (the layers and widths), Fig. 3c/d (the units), Table 8 (accuracy).

The paper's point is that FLOPs are not speed: memory access cost and the degree of parallelism
matter too (its guidelines G1-G4: equal widths in and out of a 1×1 conv, few groups, little
fragmentation, few element-wise ops). Its basic unit (Fig. 3c) therefore **splits** the channels
in two halves: one passes unchanged, the other runs 1×1 conv → BN → ReLU → 3×3 depthwise conv → BN →
1×1 conv → BN → ReLU with equal widths throughout; the halves are concatenated (no add) and
**shuffled** with two groups, so that the next unit's split mixes them. The down-sampling unit
(Fig. 3d) drops the split: both branches see the whole input and stride by 2 (the left one a 3×3
depthwise conv → BN → 1×1 conv → BN → ReLU), and the concat doubles the width.

The network (Table 5): conv1 3×3/2 with 24 filters and a 3×3/2 max-pool, stages 2-4 of 4, 8 and 4
units (the first of each down-sampling), conv5 1×1, global average pool, fc.

======================  =======================  =========  ==============  ============================
name                    stage widths, conv5      params     MACs at 224     Table 5; top-1 (Table 8)
======================  =======================  =========  ==============  ============================
``shufflenet_v2_x0_5``  48-96-192, 1024          1,366,792  40.5 M (tv 40)  1.4 M, 41 M; 60.3 %
``shufflenet_v2_x1_0``  116-232-464, 1024        2,278,604  144.9 M (145)   2.3 M, 146 M; 69.4 %
``shufflenet_v2_x1_5``  176-352-704, 1024        3,503,624  295.8 M (296)   3.5 M, 299 M; 72.6 %
``shufflenet_v2_x2_0``  244-488-976, 2048        7,393,996  583.3 M (583)   7.4 M, 591 M; 74.9 %
======================  =======================  =========  ==============  ============================

Choices, and where torchvision's layout (which loads here) sits:

* The layout is torchvision's ``shufflenet_v2_x*``, which is the paper's; its files load through a
  key map (``cnnzoo/weights.py``: ``branch2.0`` → ``branch2.pw1.conv`` and so on) and the
  parameter counts and MACs equal torchvision's (``num_params``, ``_ops``).
* **MACs**: 41 M, 146 M, 299 M and 591 M in Table 5 against conv + fc multiply-adds of 40.5, 144.9,
  295.8 and 583.3 M here. The paper counts a little more than the convolutions (it does not say
  what; the shuffles and concatenations cost no multiply-adds); torchvision's figures are ours, rounded (0.04, 0.145, 0.296, 0.583 G).
* **The split** is ``x.chunk(2, dim=1)``: the first half passes, the second is convolved (the
  official code, ``megvii-model/ShuffleNet-Series``, and torchvision). The cost analyzer follows
  both outputs of the split, so the passing half keeps its receptive field and the convolved half
  grows its own; the concat takes the larger.
* **Init**: PyTorch's defaults, as torchvision (the paper gives none).
* **Minimum input**: every stride-2 layer pads, so the last map is ceil(s / 32); batch norm in
  training needs at least 2×2 there, so 33×33. Fashion-MNIST: resized to 64×64.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.layers.conv import ConvNormAct
from cnnzoo.layers.shuffle import ChannelShuffle
from cnnzoo.models._config import imagenet_cfg
from cnnzoo.models.base import FeatureInfo, ZooModel
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "ShuffleV2Unit",
    "ShuffleNetV2",
    "ShuffleNetV2Variant",
    "STAGE_UNITS",
    "VARIANTS",
    "PAPER",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
]

PAPER = (
    "N. Ma, X. Zhang, H.-T. Zheng, J. Sun. ShuffleNet V2: Practical Guidelines for Efficient CNN "
    "Architecture Design. ECCV 2018."
)

#: Table 5: units per stage (the first of each down-sampling).
STAGE_UNITS = (4, 8, 4)


class ShuffleV2Unit(nn.Module):
    """ShuffleNet v2's basic unit (Fig. 3c, stride 1) or down-sampling unit (Fig. 3d, stride 2).

    Args:
        in_channels, out_channels: the unit's widths (equal at stride 1; each branch makes half).
        stride: 1 (split the channels, convolve one half) or 2 (both branches on the whole input).

    Submodules: ``branch1`` (stride 2 only: ``dw`` 3×3 depthwise + BN, ``pw`` 1×1 + BN + ReLU),
    ``branch2`` (``pw1`` 1×1 + BN + ReLU, ``dw`` 3×3 depthwise + BN, ``pw2`` 1×1 + BN + ReLU),
    ``shuffle`` (two groups).
    """

    cost_type = "block"

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        half = out_channels // 2
        self.stride = stride
        self.in_channels, self.out_channels = in_channels, out_channels
        self.branch1 = None
        if stride == 2:
            self.branch1 = nn.Sequential(OrderedDict(
                dw=ConvNormAct(in_channels, in_channels, 3, 2, groups=in_channels, act_layer=None),
                pw=ConvNormAct(in_channels, half, 1),
            ))  # fmt: skip
        self.branch2 = nn.Sequential(OrderedDict(
            pw1=ConvNormAct(in_channels if stride == 2 else half, half, 1),
            dw=ConvNormAct(half, half, 3, stride, groups=half, act_layer=None),
            pw2=ConvNormAct(half, half, 1),
        ))  # fmt: skip
        self.shuffle = ChannelShuffle(2, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        if self.branch1 is None:
            x1, x2 = x.chunk(2, dim=1)  # the channel split: x1 passes, x2 is convolved
            out = torch.cat([x1, self.branch2(x2)], 1)
        else:
            out = torch.cat([self.branch1(x), self.branch2(x)], 1)
        return self.shuffle(out)

    def cost_details(self) -> dict[str, int | bool]:
        return {"stride": self.stride, "split": self.stride == 1}


class ShuffleNetV2(ZooModel):
    """ShuffleNet v2: conv1, max-pool, three stages of units, conv5, global average pool, fc.

    Stages (``feature_info``): ``conv1`` at 2, ``maxpool`` at 4, ``stage2`` and ``stage3`` at 8
    and 16, ``conv5`` at 32. Classifier (``head_name``): ``fc``.

    Args:
        channels: output widths of stages 2-4 and of conv5 (Table 5).
        num_classes, in_chans: classifier outputs and input channels.
        stem_width: filters of conv1 (24).
    """

    def __init__(
        self,
        channels: tuple[int, int, int, int],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        stem_width: int = 24,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.conv1 = ConvNormAct(in_chans, stem_width, 3, 2)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        self.feature_info = [FeatureInfo("conv1", stem_width, 2), FeatureInfo("maxpool", stem_width, 4)]
        c_in, reduction = stem_width, 4
        for i, (n, c) in enumerate(zip(STAGE_UNITS, channels[:3], strict=True)):
            units = [ShuffleV2Unit(c_in, c, 2), *(ShuffleV2Unit(c, c, 1) for _ in range(n - 1))]
            self.add_module(f"stage{i + 2}", nn.Sequential(*units))
            c_in, reduction = c, reduction * 2
            if i < 2:  # stage 4's map is conv5's, whose output ends the stage
                self.feature_info.append(FeatureInfo(f"stage{i + 2}", c, reduction))
        self.conv5 = ConvNormAct(c_in, channels[3], 1)
        self.feature_info.append(FeatureInfo("conv5", channels[3], reduction))
        self.num_features = channels[3]
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels[3], num_classes)
        self.head_name = "fc"

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))  # (N, 24, 56, 56) at 224
        x = self.stage4(self.stage3(self.stage2(x)))  # (N, c4, 7, 7)
        return self.conv5(x)

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)


class ShuffleNetV2Variant(NamedTuple):
    """One registered ShuffleNet v2: Table 5's widths and the figures the sources print."""

    channels: tuple[int, int, int, int]
    top1_error: float  # Table 8
    tv_ops: float  # torchvision's meta["_ops"], GMACs
    tv_weights: str


VARIANTS: dict[str, ShuffleNetV2Variant] = {
    "shufflenet_v2_x0_5": ShuffleNetV2Variant((48, 96, 192, 1024), 39.7, 0.04, "ShuffleNet_V2_X0_5_Weights"),
    "shufflenet_v2_x1_0": ShuffleNetV2Variant(
        (116, 232, 464, 1024), 30.6, 0.145, "ShuffleNet_V2_X1_0_Weights"
    ),
    "shufflenet_v2_x1_5": ShuffleNetV2Variant(
        (176, 352, 704, 1024), 27.4, 0.296, "ShuffleNet_V2_X1_5_Weights"
    ),
    "shufflenet_v2_x2_0": ShuffleNetV2Variant(
        (244, 488, 976, 2048), 25.1, 0.583, "ShuffleNet_V2_X2_0_Weights"
    ),
}


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    reported = {"dataset": "imagenet", "top1": round(100 - v.top1_error, 1), "crop": 224,
                "source": "Ma et al. 2018, Table 8 (top-1 error, single crop)"}  # fmt: skip
    return imagenet_cfg(  # min input 33: the last map ceil(s / 32) >= 2 for batch norm in training
        paper=PAPER,
        year=2018,
        family="shufflenet_v2",
        notes="Table 5; torchvision's layout (its files load through a key map)",
        extra={
            "reported": reported,
            "macs": {"value": v.tv_ops * 1e9, "source": f"torchvision {v.tv_weights}.IMAGENET1K_V1"},
        },
    )


def _create_shufflenet_v2(name: str, **kwargs: Any) -> ShuffleNetV2:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    return ShuffleNetV2(**{"channels": VARIANTS[name].channels, **kwargs})


@register_model(_cfg("shufflenet_v2_x0_5"))
def shufflenet_v2_x0_5(**kwargs: Any) -> ShuffleNetV2:
    """ShuffleNet v2 0.5× (Table 5: 48-96-192, 1.4 M, 41 M MACs). Options as :class:`ShuffleNetV2`."""
    return _create_shufflenet_v2("shufflenet_v2_x0_5", **kwargs)


@register_model(_cfg("shufflenet_v2_x1_0"))
def shufflenet_v2_x1_0(**kwargs: Any) -> ShuffleNetV2:
    """ShuffleNet v2 1× (Table 5: 116-232-464, 2.3 M, 146 M MACs)."""
    return _create_shufflenet_v2("shufflenet_v2_x1_0", **kwargs)


@register_model(_cfg("shufflenet_v2_x1_5"))
def shufflenet_v2_x1_5(**kwargs: Any) -> ShuffleNetV2:
    """ShuffleNet v2 1.5× (Table 5: 176-352-704, 3.5 M, 299 M MACs)."""
    return _create_shufflenet_v2("shufflenet_v2_x1_5", **kwargs)


@register_model(_cfg("shufflenet_v2_x2_0"))
def shufflenet_v2_x2_0(**kwargs: Any) -> ShuffleNetV2:
    """ShuffleNet v2 2× (Table 5: 244-488-976, conv5 2048; 7.4 M, 591 M MACs)."""
    return _create_shufflenet_v2("shufflenet_v2_x2_0", **kwargs)
