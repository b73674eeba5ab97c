"""Convolutions: TensorFlow "SAME" padding against timm, make_divisible against torchvision, ConvNormAct."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.layers import residual
from cnnzoo.layers.conv import (
    Conv2dSame,
    ConvNormAct,
    conv1x1,
    conv3x3,
    create_conv2d,
    is_static_same,
    make_divisible,
    pad_same,
    same_padding,
)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(("kernel", "stride", "dilation"), [(3, 2, 1), (5, 2, 1), (3, 1, 1), (4, 1, 1),
                                                              (3, 1, 2), (7, 2, 1), (1, 2, 1), (3, 2, 2)])  # fmt: skip
def test_same_padding_matches_timm_on_odd_and_even_sizes(kernel, stride, dilation):
    from timm.layers import create_conv2d as timm_conv

    torch.manual_seed(0)
    ours = create_conv2d(4, 6, kernel, stride, padding="same", dilation=dilation, bias=True)
    ref = timm_conv(4, 6, kernel, stride=stride, dilation=dilation, padding="same", bias=True)
    ref.load_state_dict(ours.state_dict())  # same keys and shapes
    for h, w in ((15, 15), (16, 16), (17, 18), (32, 33)):
        x = torch.randn(2, 4, h, w)
        with torch.no_grad():
            y = ours(x)
            assert torch.allclose(y, ref(x), atol=1e-6), (h, w)
        assert y.shape[-2:] == (-(-h // stride), -(-w // stride))  # "SAME": ceil(H / s) always


def test_same_is_static_where_it_can_be_and_asymmetric_where_tf_pads_so():
    assert type(create_conv2d(8, 8, 3, 1, padding="same")) is nn.Conv2d  # symmetric 1 on each side
    assert create_conv2d(8, 8, 3, 1, padding="same").padding == (1, 1)
    assert type(create_conv2d(8, 8, 1, 2, padding="same")) is nn.Conv2d  # a 1x1 never pads
    assert isinstance(create_conv2d(8, 8, 3, 2, padding="same"), Conv2dSame)
    assert isinstance(create_conv2d(8, 8, 4, 1, padding="same"), Conv2dSame)  # even kernel: 1 + 2
    assert is_static_same(5, 1, 1) and not is_static_same(5, 2, 1) and is_static_same((1, 3), 1, 1)
    # 3x3/2 on an even side: TF pads 0 before and 1 after; PyTorch's symmetric padding 1 and 1
    assert same_padding(224, 3, 2) == (0, 1) and same_padding(225, 3, 2) == (1, 1)
    assert same_padding(224, 5, 2) == (1, 2) and same_padding(8, 3, 1) == (1, 1)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    padded = pad_same(x, 3, 2)
    assert padded.shape == (1, 1, 5, 5) and torch.equal(padded[0, 0, :4, :4], x[0, 0])
    assert torch.all(padded[0, 0, 4] == 0) and torch.all(padded[0, 0, :, 4] == 0)


def test_same_conv_keeps_nn_conv2d_keys_and_counts():
    same = create_conv2d(16, 32, 3, 2, padding="same", groups=16)
    plain = nn.Conv2d(16, 32, 3, 2, 1, groups=16, bias=False)
    assert same.state_dict().keys() == plain.state_dict().keys() and n_params(same) == n_params(plain)
    assert same.padding == (0, 0) and "SAME" in repr(same)


def test_symmetric_explicit_and_valid_padding():
    assert create_conv2d(3, 8, 3).padding == (1, 1)
    assert create_conv2d(3, 8, 5, 2).padding == (2, 2)
    assert create_conv2d(3, 8, 3, dilation=2).padding == (2, 2)
    assert create_conv2d(3, 8, (1, 7)).padding == (0, 3)  # Inception v3's factorised 1x7
    assert create_conv2d(3, 8, 7, 2, padding=3).padding == (3, 3)
    assert create_conv2d(3, 8, 3, padding="valid").padding == (0, 0)
    assert create_conv2d(3, 8, 3).bias is None and create_conv2d(3, 8, 3, bias=True).bias is not None
    with pytest.raises(CnnzooError, match="padding must be"):
        create_conv2d(3, 8, 3, padding="full")


def test_groups_that_do_not_divide_the_channels_are_one_clear_error():
    dw = create_conv2d(32, 32, 3, groups=32)  # depthwise: one 3x3 filter per channel
    assert n_params(dw) == 32 * 9
    for cin, cout, g in ((10, 32, 4), (32, 10, 4), (8, 8, 0)):
        with pytest.raises(CnnzooError, match="use a group count that divides both") as e:
            create_conv2d(cin, cout, 3, groups=g)
        assert isinstance(e.value, ValueError) and "\n" not in str(e.value)


def test_conv1x1_conv3x3_live_in_conv_and_residual_still_exports_them():
    assert residual.conv1x1 is conv1x1 and residual.conv3x3 is conv3x3
    c = conv3x3(16, 32, 2)
    assert (c.kernel_size, c.stride, c.padding, c.bias) == ((3, 3), (2, 2), (1, 1), None)
    assert conv3x3(16, 16, dilation=2).padding == (2, 2) and conv3x3(32, 32, groups=32).groups == 32
    c1 = conv1x1(16, 64, 2)
    assert (c1.kernel_size, c1.stride, c1.padding, c1.bias) == ((1, 1), (2, 2), (0, 0), None)


def test_make_divisible_matches_torchvision():
    from torchvision.models._utils import _make_divisible

    for divisor in (1, 4, 8, 16):
        for v in [3, 4.5, 7, 8, 11, 12, 17.5, 18, 24 * 0.35, 32 * 0.75, 96 * 1.4, 160 * 0.5, 1280 * 1.1, 333]:
            assert make_divisible(v, divisor) == _make_divisible(v, divisor), (v, divisor)
    assert make_divisible(32 * 0.35) == 16 and make_divisible(18) == 24  # the 10% rule: 16 < 0.9 * 18
    assert make_divisible(11, 8, round_limit=0.0) == 8 and make_divisible(11, 8) == 16
    assert make_divisible(3, 8) == 8 and make_divisible(3, 8, min_value=4) == 4  # the floor, not 0


def test_conv_norm_act_parts_are_passed_in():
    m = ConvNormAct(16, 32, 3, 2)
    assert isinstance(m.conv, nn.Conv2d) and m.conv.bias is None and m.conv.stride == (2, 2)
    assert isinstance(m.bn, nn.BatchNorm2d) and isinstance(m.act, nn.ReLU) and m.act.inplace
    assert n_params(m) == 16 * 32 * 9 + 2 * 32
    assert m(torch.randn(2, 16, 9, 9)).shape == (2, 32, 5, 5)
    # no norm: the conv gets its bias back; no act: a linear output
    bare = ConvNormAct(16, 32, 1, norm_layer=None, act_layer=None)
    assert bare.bn is None and bare.act is None and bare.conv.bias is not None
    assert set(bare.state_dict()) == {"conv.weight", "conv.bias"}
    x = torch.randn(2, 16, 4, 4)
    assert torch.allclose(bare(x), bare.conv(x))
    tf = ConvNormAct(32, 32, 3, 2, groups=32, padding="same", act_layer="swish",
                     norm_layer=functools.partial(nn.BatchNorm2d, eps=1e-3))  # fmt: skip
    assert isinstance(tf.conv, Conv2dSame) and tf.bn.eps == 1e-3 and isinstance(tf.act, nn.SiLU)
    assert n_params(tf) == 32 * 9 + 2 * 32 and tf(torch.randn(2, 32, 16, 16)).shape == (2, 32, 8, 8)
    assert ConvNormAct(3, 8, act_layer=nn.GELU).act.__class__ is nn.GELU
    assert ConvNormAct(3, 8, bias=True).conv.bias is not None


def test_conv_norm_act_builds_on_meta_with_counts():
    with torch.device("meta"):
        m = ConvNormAct(64, 128, 3, groups=4)
    assert all(p.is_meta for p in m.parameters()) and n_params(m) == 64 // 4 * 128 * 9 + 2 * 128
