"""Channel shuffle (ShuffleNet, Zhang et al. 2018, Fig. 1): the reshape-transpose, as a function and a row."""

from __future__ import annotations

import pytest
import torch

from cnnzoo.errors import CnnzooError
from cnnzoo.layers.shuffle import ChannelShuffle, channel_shuffle


def reference(x: torch.Tensor, g: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.reshape(n, g, c // g, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


@pytest.mark.parametrize(("channels", "groups"), [(12, 3), (24, 2), (240, 8), (7, 1), (6, 6)])
def test_equals_the_reshape_transpose_reference(channels, groups):
    x = torch.randn(2, channels, 3, 5)
    y = channel_shuffle(x, groups)
    assert torch.equal(y, reference(x, groups)) and y.is_contiguous()
    # channel i*n + j of group i moves to position j*g + i
    n = channels // groups
    order = [
        int(v) for v in channel_shuffle(torch.arange(channels).float().view(1, -1, 1, 1), groups).flatten()
    ]
    assert order == [i * n + j for j in range(n) for i in range(groups)]
    # shuffling by n undoes shuffling by g
    assert torch.equal(channel_shuffle(y, n), x)


def test_matches_torchvision_shufflenet_v2():
    from torchvision.models.shufflenetv2 import channel_shuffle as tv_shuffle

    x = torch.randn(2, 116, 7, 7)
    assert torch.equal(channel_shuffle(x, 2), tv_shuffle(x, 2))


def test_module_is_a_parameter_free_row():
    m = ChannelShuffle(3, channels=12)
    x = torch.randn(1, 12, 2, 2)
    assert torch.equal(m(x), channel_shuffle(x, 3)) and not list(m.parameters())
    assert ChannelShuffle.cost_type == "shuffle" and "groups=3" in repr(m)


def test_groups_that_do_not_divide_the_channels_are_one_clear_error():
    with pytest.raises(CnnzooError, match="cannot split 10 channels into 3 groups") as e:
        channel_shuffle(torch.randn(1, 10, 2, 2), 3)
    assert isinstance(e.value, ValueError) and "divides the channels" in str(e.value)
    with pytest.raises(CnnzooError):
        ChannelShuffle(3, channels=10)
    with pytest.raises(CnnzooError):
        ChannelShuffle(0)
