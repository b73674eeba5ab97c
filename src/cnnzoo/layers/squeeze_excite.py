"""Squeeze-and-Excitation: a per-channel gate computed from the global average of each channel.

Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018, §3 and Fig. 2-3: squeeze (global
average pool) → FC to C/r → ReLU → FC back to C → sigmoid → scale the C input channels, r = 16.
The two FCs act on a 1×1 map, so they are written as 1×1 convs with bias (same parameters as
``nn.Linear``: C·C/r + C/r and C/r·C + C), as torchvision and timm write them.

The later families use the same block with other parts:

=================  ===========================  ==============  ====================================
family             squeeze width                act → gate      where
=================  ===========================  ==============  ====================================
SENet (r = 16)     C / 16                       relu → sigmoid  on the residual branch before the add
MnasNet-A1         0.25 × the block's input     relu → sigmoid  in the MBConv, after the depthwise conv
MobileNet v3       make_divisible(exp / 4, 8)   relu → h-sigm.  in the MBConv, after the depthwise conv
EfficientNet       0.25 × the block's *input*   swish → sigmoid in the MBConv, after the depthwise conv
=================  ===========================  ==============  ====================================

The squeeze width is ``rd_channels`` when given, else ``make_divisible(channels · rd_ratio,
rd_divisor)`` (``rd_divisor=1`` rounds to the nearest integer, at least 1). For EfficientNet's
input-relative width, pass ``rd_channels`` (the MBConv block does).
"""

from __future__ import annotations

from torch import Tensor, nn

from cnnzoo.errors import ConfigError
from cnnzoo.layers.activations import ActLayer, create_act
from cnnzoo.layers.conv import make_divisible

__all__ = ["SqueezeExcite"]


class SqueezeExcite(nn.Module):
    """The SE block: ``x · gate(fc2(act(fc1(avgpool(x)))))``.

    Args:
        channels: C, the width of the input and of the gate.
        rd_ratio: squeeze ratio 1/r (1/16 in SENet, 0.25 in the MBConv line).
        rd_channels: the squeeze width itself (overrides ``rd_ratio``).
        rd_divisor: round the squeeze width to a multiple of this (8 in MobileNet v3).
        act_layer: the activation between the FCs (ReLU; EfficientNet uses swish).
        gate_layer: the gate (sigmoid; MobileNet v3 uses hard sigmoid).

    Submodules ``pool``, ``fc1``, ``act``, ``fc2``, ``gate`` (torchvision's and timm's ``fc1``/``fc2``).
    """

    cost_type = "se"

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1 / 16,
        *,
        rd_channels: int | None = None,
        rd_divisor: int = 1,
        act_layer: ActLayer = "relu",
        gate_layer: ActLayer = "sigmoid",
    ) -> None:
        super().__init__()
        if rd_channels is None:
            if not rd_ratio > 0:
                raise ConfigError(f"SqueezeExcite needs rd_ratio > 0 or rd_channels, got rd_ratio={rd_ratio}")
            rd_channels = make_divisible(channels * rd_ratio, rd_divisor)
        if rd_channels < 1:
            raise ConfigError(
                f"SqueezeExcite needs a squeeze width of at least 1, got rd_channels={rd_channels}"
            )
        self.channels, self.rd_channels = channels, rd_channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, rd_channels, 1)
        self.act = create_act(act_layer, inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, 1)
        self.gate = create_act(gate_layer)

    def forward(self, x: Tensor) -> Tensor:
        s = self.fc1(self.pool(x))  # (N, C/r, 1, 1)
        if self.act is not None:
            s = self.act(s)
        s = self.fc2(s)  # (N, C, 1, 1)
        if self.gate is not None:
            s = self.gate(s)
        return x * s

    def cost_details(self) -> dict[str, int]:
        return {"squeeze": self.rd_channels}

    def extra_repr(self) -> str:
        return f"channels={self.channels}, rd_channels={self.rd_channels}"
