"""Channel shuffle: ShuffleNet's permutation that lets grouped convolutions talk to each other.

Zhang, Zhou, Lin, Sun, "ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile
Devices", CVPR 2018, §3.1 and Fig. 1: with g groups of n channels each, reshape the channels to
(g, n), transpose to (n, g) and flatten, so that the next grouped conv's every group receives
channels from every group of the previous one. ShuffleNet v2 (Ma et al., ECCV 2018) shuffles with
g = 2 after concatenating its two branches.
"""

from __future__ import annotations

from torch import Tensor, nn

from cnnzoo.errors import ConfigError

__all__ = ["channel_shuffle", "ChannelShuffle"]


def _check(channels: int, groups: int) -> None:
    if groups < 1 or channels % groups:
        raise ConfigError(
            f"channel shuffle cannot split {channels} channels into {groups} groups: "
            f"use a group count that divides the channels"
        )


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Shuffle the channels of ``x`` (N, C, H, W): channel ``i·n + j`` moves to ``j·g + i``."""
    n, c, h, w = x.shape
    _check(c, groups)
    x = x.view(n, groups, c // groups, h, w)  # (N, g, C/g, H, W)
    return x.transpose(1, 2).contiguous().view(n, c, h, w)


class ChannelShuffle(nn.Module):
    """:func:`channel_shuffle` as a module (one row of the cost table, no parameters).

    Args:
        groups: g, the number of groups of the grouped conv before it.
        channels: the width it will see, if known, to check ``groups`` at build time.
    """

    cost_type = "shuffle"

    def __init__(self, groups: int, channels: int | None = None) -> None:
        super().__init__()
        _check(groups if channels is None else channels, groups)
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
