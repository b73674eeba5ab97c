"""Xception: Inception's modules taken to the limit, as depthwise-separable convolutions.

Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017. Fig. 5 (the
network), §4.3 (training), Tables 1 and 3 (accuracy, 22,855,952 parameters).

Every convolution after the first two is a :class:`~cnnzoo.layers.mbconv.SeparableConv2d`: a 3×3
depthwise conv then a 1×1 pointwise conv with nothing between them (§4.7 found an intermediate ReLU
hurts). The network is 36 such layers in 14 modules, all but the first and last with a residual
connection, in three flows (Fig. 5):

* **entry flow**: conv1 (32, 3×3/2) and conv2 (64, 3×3), then ``block1``-``block3``: two separable
  convs (128, 256, 728 filters) and a 3×3/2 max-pool, plus a 1×1/2 conv shortcut;
* **middle flow**: ``block4``-``block11``, eight repeats of three ReLU → separable conv (728) with
  an identity shortcut, at 19×19 (299 input);
* **exit flow**: ``block12`` (728 then 1024 filters, max-pool, 1×1/2 conv shortcut), then conv3
  (1536) and conv4 (2048) with their ReLUs, global average pool, dropout 0.5 and the fc.

Every conv is followed by batch norm ("not included in the diagram"). The blocks are rows of
:data:`FLOWS` (:class:`XceptionBlock`). The model has 22,855,952 parameters, Table 3's count, and
takes timm's ``legacy_xception`` checkpoints (the Keras weights port) through a key map
(``cnnzoo/weights.py``: the separable convs' ``conv1``/``pointwise`` become ``conv_dw``/``conv_pw``).

Choices the paper leaves open, and where the layout departs from it:

* **Where each ReLU sits**: before every separable conv of a block (Fig. 5), except the first of
  ``block1``, which follows conv2's ReLU; a block's shortcut takes its input before that ReLU.
* **Padding**: conv1 and conv2 are unpadded ("valid", as Keras), the separable convs and max-pools
  pad by 1. Keras pads its 3×3/2 max-pools TensorFlow's way ("same": 0 before and 1 after on an
  even map), which shifts the pooling window on the even maps of block2 and block12 by one pixel;
  the layout here is timm's (symmetric), so timm's weights give timm's logits.
* **Head**: global average pooling, dropout 0.5 before the classifier (§4.3: "a dropout layer of
  rate 0.5 before the logistic regression layer"; identity at eval), no fully connected layers
  (Fig. 5's optional ones were not used on ImageNet).
* **Init**: He normal (fan-out) convs, BN γ = 1, β = 0 (timm's; the paper names none).
* **MACs**: the paper prints none; at 299 the conv and fc multiply-adds are 8.36 G (the
  ``torch.utils.flop_counter`` count of timm's network, which a test checks).
* **Minimum input**: conv1 and conv2 take 3 and 2 pixels off (s → ⌊(s − 3) / 2⌋ + 1 − 2), and
  the four max-pools halve, rounding up; batch norm in training needs the exit flow's map at
  least 2×2, so 39×39. Fashion-MNIST: resized to 64×64 (2×2 in the exit flow).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.data.constants import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD
from cnnzoo.layers.init import he_normal_init, init_weights_, norm_init
from cnnzoo.layers.mbconv import SeparableConv2d
from cnnzoo.models._config import imagenet_cfg
from cnnzoo.models.base import FeatureInfo, ZooModel
from cnnzoo.registry import ModelConfig, register_model

__all__ = ["XceptionBlock", "XceptionModule", "Xception", "FLOWS", "PAPER", "xception"]

PAPER = "F. Chollet. Xception: Deep Learning with Depthwise Separable Convolutions. CVPR 2017."


class XceptionBlock(NamedTuple):
    """One module of Fig. 5: its name, flow, the separable convs' widths and its stride."""

    name: str
    flow: str  # "entry", "middle" or "exit"
    widths: tuple[int, ...]  # output filters of each separable conv
    stride: int = 1  # 2: a 3x3/2 max-pool ends the module, and a 1x1/2 conv is its shortcut
    start_with_relu: bool = True


#: Fig. 5, entry flow to exit flow (conv1, conv2, conv3 and conv4 are built around these).
FLOWS: tuple[XceptionBlock, ...] = (
    XceptionBlock("block1", "entry", (128, 128), 2, start_with_relu=False),
    XceptionBlock("block2", "entry", (256, 256), 2),
    XceptionBlock("block3", "entry", (728, 728), 2),
    *(XceptionBlock(f"block{i}", "middle", (728, 728, 728)) for i in range(4, 12)),
    XceptionBlock("block12", "exit", (728, 1024), 2),
)


class XceptionModule(nn.Module):
    """[ReLU → separable conv → BN] × n, a 3×3/2 max-pool at stride 2, plus a shortcut (Fig. 5).

    Args:
        in_channels: input width.
        widths: output filters of each separable conv.
        stride: 2 ends the module with a max-pool and makes the shortcut a 1×1/2 conv + BN.
        start_with_relu: put a ReLU before the first separable conv (not in ``block1``).

    Submodules: ``rep`` (the layers, in order: timm's indices), ``skip`` and ``skipbn`` (the
    projection shortcut, where the width or size changes; else ``None``, the identity).
    """

    cost_type = "block"

    def __init__(
        self, in_channels: int, widths: tuple[int, ...], stride: int = 1, start_with_relu: bool = True
    ) -> None:
        super().__init__()
        out = widths[-1]
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            if i or start_with_relu:
                layers.append(nn.ReLU(inplace=i > 0))  # the first keeps the input for the shortcut
            layers += [SeparableConv2d(c, w, 3, padding=1), nn.BatchNorm2d(w)]
            c = w
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, padding=1))
        self.rep = nn.Sequential(*layers)
        project = out != in_channels or stride != 1
        self.skip = nn.Conv2d(in_channels, out, 1, stride=stride, bias=False) if project else None
        self.skipbn = nn.BatchNorm2d(out) if project else None
        self.in_channels, self.out_channels, self.stride = in_channels, out, stride

    def forward(self, x: Tensor) -> Tensor:
        out = self.rep(x)  # before the shortcut: the stages tap rep.0, and the shortcut runs after it
        return out + (x if self.skip is None else self.skipbn(self.skip(x)))

    def cost_details(self) -> dict[str, int | bool]:
        return {"separable": len(self.rep) // 3, "stride": self.stride, "residual": True}


class Xception(ZooModel):
    """Xception (Fig. 5): entry, middle and exit flows of separable convs with residual connections.

    Stages (``feature_info``, timm's): ``act2`` at 2, then the ReLU that starts the next module
    after each stride (``block2.rep.0``, ``block3.rep.0``, ``block12.rep.0`` at 4, 8, 16) and
    ``act4`` at 32. Classifier (``head_name``): ``fc``.

    Args:
        flows: the modules (:data:`FLOWS`).
        num_classes, in_chans: classifier outputs and input channels.
        dropout: before the fc (0.5, §4.3).
    """

    def __init__(
        self,
        flows: tuple[XceptionBlock, ...] = FLOWS,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.conv1 = nn.Conv2d(in_chans, 32, 3, 2, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.act2 = nn.ReLU(inplace=True)
        self.feature_info = [FeatureInfo("act2", 64, 2)]
        self.block_names = [row.name for row in flows]
        c, reduction = 64, 2
        for row, nxt in zip(flows, (*flows[1:], None), strict=True):
            self.add_module(row.name, XceptionModule(c, row.widths, row.stride, row.start_with_relu))
            c = row.widths[-1]
            if row.stride != 1 and nxt is not None:
                reduction *= row.stride
                self.feature_info.append(FeatureInfo(f"{nxt.name}.rep.0", c, reduction))
        self.conv3 = SeparableConv2d(c, 1536, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(1536)
        self.act3 = nn.ReLU(inplace=True)
        self.conv4 = SeparableConv2d(1536, 2048, 3, padding=1)
        self.bn4 = nn.BatchNorm2d(2048)
        self.act4 = nn.ReLU(inplace=True)
        self.feature_info.append(FeatureInfo("act4", 2048, reduction * 2))
        self.num_features = 2048
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2048, num_classes)
        self.head_name = "fc"
        init_weights_(self, {nn.Conv2d: he_normal_init("fan_out", bias=None), nn.BatchNorm2d: norm_init()})

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.act1(self.bn1(self.conv1(x)))  # (N, 32, 149, 149) at 299
        x = self.act2(self.bn2(self.conv2(x)))  # (N, 64, 147, 147)
        for name in self.block_names:
            x = getattr(self, name)(x)  # entry flow to 19x19, middle flow, exit flow to 10x10
        x = self.act3(self.bn3(self.conv3(x)))
        return self.act4(self.bn4(self.conv4(x)))  # (N, 2048, 10, 10)

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.fc(x)


def _cfg(name: str) -> ModelConfig:
    """The registry config of ``xception``."""
    return imagenet_cfg(
        input_size=299,
        min_input_size=39,  # conv1/conv2 (valid) to 17, four ceil-halving pools to 2x2 for batch norm
        mean=IMAGENET_INCEPTION_MEAN,
        std=IMAGENET_INCEPTION_STD,
        paper=PAPER,
        year=2017,
        family="xception",
        notes="Fig. 5; symmetric max-pool padding as timm's legacy_xception (Keras pads TF 'same')",
        extra={
            "reported": {
                "dataset": "imagenet",
                "top1": 79.0,
                "top5": 94.5,
                "crop": 299,
                "source": "Chollet 2017, Table 1 (single crop, single model)",
            },
        },
    )


def _create_xception(name: str, **kwargs: Any) -> Xception:
    """The family constructor (one variant: Fig. 5)."""
    return Xception(**{"flows": FLOWS, **kwargs})


@register_model(_cfg("xception"))
def xception(**kwargs: Any) -> Xception:
    """Xception (Fig. 5): 22,855,952 parameters (Table 3). Options as :class:`Xception`."""
    return _create_xception("xception", **kwargs)
