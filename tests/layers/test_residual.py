"""Residual blocks, shortcut options A/B/C, ResNet-C's deep stem and ResNet-D's shortcut."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo.layers.residual import (
    AvgPoolProjection,
    BasicBlock,
    Bottleneck,
    DeepStem,
    Projection,
    ZeroPadShortcut,
    make_shortcut,
)


def n_params(m: nn.Module | None) -> int:
    return 0 if m is None else sum(p.numel() for p in m.parameters())


def bn(c: int) -> int:
    return 2 * c  # gamma and beta


def test_option_a_subsamples_and_zero_pads_without_params():
    sc = ZeroPadShortcut(16, 32, stride=2)
    x = torch.randn(2, 16, 7, 7)
    y = sc(x)
    assert y.shape == (2, 32, 4, 4)  # ceil(7 / 2): the size a 3x3/2 conv with padding 1 gives
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
    assert torch.all(y[:, 16:] == 0)
    assert n_params(sc) == 0 and not list(sc.buffers())
    with pytest.raises(ValueError, match="cannot reduce"):
        ZeroPadShortcut(32, 16)


@pytest.mark.parametrize(
    ("cin", "cout", "stride", "expected"),
    [
        # (option A, option B, option C): None means a plain identity
        (64, 64, 1, (None, None, Projection)),
        (64, 128, 2, (ZeroPadShortcut, Projection, Projection)),
        (64, 256, 1, (ZeroPadShortcut, Projection, Projection)),  # bottleneck stage 1: width changes
    ],
)
def test_make_shortcut_options(cin, cout, stride, expected):
    for option, kind in zip("ABC", expected, strict=True):
        sc = make_shortcut(option, cin, cout, stride)
        assert (sc is None) if kind is None else isinstance(sc, kind), option
        if isinstance(sc, Projection):
            assert n_params(sc) == cin * cout + bn(cout)  # 1x1 conv without bias, then BN
            assert sc[0].stride == (stride, stride)
        else:
            assert n_params(sc) == 0
    with pytest.raises(ValueError, match="shortcut option"):
        make_shortcut("D", 1, 1)


def test_avg_pool_projection_resnet_d():
    sc = make_shortcut("B", 256, 512, 2, avg_down=True)
    assert isinstance(sc, AvgPoolProjection)
    assert isinstance(sc[0], nn.AvgPool2d) and sc[1].stride == (1, 1)
    assert n_params(sc) == 256 * 512 + bn(512)
    x = torch.randn(2, 256, 7, 7)
    y = sc.eval()(x)
    assert y.shape == (2, 512, 4, 4)  # ceil mode: matches the main path's ceil(7 / 2)
    # the projection sees the 2x2 means of the input (not every 4th pixel, as a strided 1x1 does)
    pooled = nn.functional.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)
    assert torch.allclose(y, sc[2](sc[1](pooled)), atol=1e-6)
    assert isinstance(make_shortcut("B", 64, 256, 1, avg_down=True)[0], nn.Identity)


@pytest.mark.parametrize("option", ["A", "B", "C"])
def test_basic_block_shapes_and_counts(option):
    cin, planes = 64, 128
    proj = cin * planes + bn(planes)
    for stride, cin_ in ((2, cin), (1, planes)):
        blk = BasicBlock(cin_, planes, stride, shortcut=option)
        body = 9 * cin_ * planes + 9 * planes * planes + 2 * bn(planes)
        changes = stride != 1 or cin_ != planes
        shortcut = {"A": 0, "B": proj if changes else 0, "C": cin_ * planes + bn(planes)}[option]
        assert n_params(blk) == body + shortcut
        assert n_params(blk.downsample) == shortcut
        side = 5 if stride == 2 else 9
        assert blk(torch.randn(2, cin_, 9, 9)).shape == (2, planes, side, side)


@pytest.mark.parametrize("stride_in_1x1", [False, True])
def test_bottleneck_shapes_counts_and_stride_position(stride_in_1x1):
    blk = Bottleneck(256, 128, 2, stride_in_1x1=stride_in_1x1)
    body = 256 * 128 + 9 * 128 * 128 + 128 * 512 + bn(128) * 2 + bn(512)
    assert n_params(blk) == body + 256 * 512 + bn(512)
    assert blk.out_channels == 512
    assert blk.conv1.stride == ((2, 2) if stride_in_1x1 else (1, 1))
    assert blk.conv2.stride == ((1, 1) if stride_in_1x1 else (2, 2))
    assert blk(torch.randn(2, 256, 7, 7)).shape == (2, 512, 4, 4)
    a = Bottleneck(256, 128, 2, shortcut="A")
    assert n_params(a) == body and a(torch.randn(2, 256, 7, 7)).shape == (2, 512, 4, 4)


def test_residual_false_is_the_plain_block():
    torch.manual_seed(0)
    res = BasicBlock(32, 32).eval()
    plain = BasicBlock(32, 32, residual=False).eval()
    plain.load_state_dict(res.state_dict())
    x = torch.randn(2, 32, 6, 6)
    with torch.no_grad():
        pre = res.bn2(res.conv2(torch.relu(res.bn1(res.conv1(x)))))
        assert torch.allclose(res(x), torch.relu(pre + x), atol=1e-6)
        assert torch.allclose(plain(x), torch.relu(pre), atol=1e-6)
    assert BasicBlock(16, 32, 2, residual=False).downsample is None


def test_zero_init_last_makes_the_block_its_shortcut():
    for blk in (BasicBlock(64, 64), Bottleneck(256, 64)):
        blk.zero_init_last()
        x = torch.relu(torch.randn(2, blk.in_channels, 5, 5))
        with torch.no_grad():
            assert torch.allclose(blk.eval()(x), x)


def test_deep_stem():
    stem = DeepStem(3)
    kinds = [type(m).__name__ for m in stem]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d"]
    assert [m.stride for m in stem if isinstance(m, nn.Conv2d)] == [(2, 2), (1, 1), (1, 1)]
    assert n_params(stem) == 27 * 32 + bn(32) + 9 * 32 * 32 + bn(32) + 9 * 32 * 64
    assert stem(torch.randn(2, 3, 224, 224)).shape == (2, 64, 112, 112)  # same as the 7x7/2 conv
    assert DeepStem(1)(torch.randn(2, 1, 28, 28)).shape == (2, 64, 14, 14)
