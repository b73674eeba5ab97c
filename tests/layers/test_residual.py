"""Residual blocks (basic, bottleneck, pre-activation; ResNeXt, SE, WRN options), shortcut options
A/B/C, ResNet-C's deep stem and ResNet-D's shortcut."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.layers.conv import conv3x3
from cnnzoo.layers.drop import DropPath
from cnnzoo.layers.residual import (
    AvgPoolProjection,
    BasicBlock,
    Bottleneck,
    DeepStem,
    PreActBasicBlock,
    PreActBottleneck,
    Projection,
    ZeroPadShortcut,
    bottleneck_width,
    make_shortcut,
)
from cnnzoo.layers.squeeze_excite import SqueezeExcite


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


def test_resnext_bottleneck_width_counts_and_output_against_timm():
    """ResNeXt-50 32x4d, stage 1 (Xie et al. Table 1): planes 64 -> width 64·4/64·32 = 128, 3x3 in
    32 groups, output 256."""
    from timm.models.resnet import Bottleneck as TimmBottleneck
    from timm.models.resnet import downsample_conv

    assert bottleneck_width(64, 32, 4) == 128 and bottleneck_width(512, 32, 8) == 2048
    assert bottleneck_width(64) == 64 and bottleneck_width(64, 1, 128) == 128  # WRN-50-2
    torch.manual_seed(0)
    ours = Bottleneck(64, 64, 1, groups=32, base_width=4)
    ref = TimmBottleneck(64, 64, cardinality=32, base_width=4, downsample=downsample_conv(64, 256, 1))
    assert ours.width == 128 and ours.conv2.groups == 32 and ours.out_channels == 256
    body = 64 * 128 + 9 * 128 * 128 // 32 + 128 * 256 + 2 * (128 + 128 + 256)
    assert n_params(ours) == n_params(ref) == body + 64 * 256 + bn(256)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x), ref.eval()(x), atol=1e-5)
    assert ours.cost_details() == {"residual": True, "cardinality": 32}


def test_se_bottleneck_applies_attention_before_the_addition_as_timm():
    from timm.layers import SEModule
    from timm.models.resnet import Bottleneck as TimmBottleneck
    from timm.models.resnet import downsample_conv

    torch.manual_seed(0)
    ours = Bottleneck(256, 128, 2, attn_layer=SqueezeExcite)  # SE-ResNet-50's first block of stage 2
    ref = TimmBottleneck(256, 128, 2, attn_layer=SEModule, downsample=downsample_conv(256, 512, 1, 2))
    ours.load_state_dict(ref.state_dict(), strict=True)  # se.fc1 / se.fc2 keys as timm's
    assert ours.se.rd_channels == 512 // 16
    x = torch.randn(2, 256, 7, 7)
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x), ref.eval()(x), atol=1e-5)
    assert ours.cost_details() == {"residual": True, "se": True}


def test_preact_basic_unit_is_the_papers_formula():
    torch.manual_seed(0)
    u = PreActBasicBlock(16, 16).eval()
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        f = u.conv2(torch.relu(u.bn2(u.conv1(torch.relu(u.bn1(x))))))
        assert torch.allclose(u(x), f + x, atol=1e-6)  # nothing after the addition
    assert [n for n, _ in u.named_children()] == ["bn1", "relu", "conv1", "bn2", "conv2"]
    # a projection is a bare 1x1 conv on the pre-activated input (resnet-1k-layers, timm)
    p = PreActBasicBlock(16, 32, 2).eval()
    assert isinstance(p.downsample, Projection) and len(p.downsample) == 1
    assert n_params(p) == bn(16) + 9 * 16 * 32 + bn(32) + 9 * 32 * 32 + 16 * 32
    with torch.no_grad():
        pre = torch.relu(p.bn1(x))
        f = p.conv2(torch.relu(p.bn2(p.conv1(pre))))
        assert torch.allclose(p(x), f + p.downsample(pre), atol=1e-6)


def test_preact_bottleneck_and_wide_dropout():
    torch.manual_seed(0)
    u = PreActBottleneck(64, 16, stride_in_1x1=True)  # resnet-1k-layers' CIFAR unit: 64 -> 16 -> 64
    assert u.downsample is None and u.out_channels == 64 and u.conv1.stride == (1, 1)
    assert n_params(u) == bn(64) + 64 * 16 + bn(16) + 9 * 16 * 16 + bn(16) + 16 * 64
    x = torch.randn(2, 64, 5, 5)
    with torch.no_grad():
        u.eval()
        h = u.conv1(torch.relu(u.bn1(x)))
        h = u.conv2(torch.relu(u.bn2(h)))
        assert torch.allclose(u(x), u.conv3(torch.relu(u.bn3(h))) + x, atol=1e-5)
    s = PreActBottleneck(64, 32, 2, stride_in_1x1=True)
    assert s.conv1.stride == (2, 2) and s(torch.randn(2, 64, 8, 8)).shape == (2, 128, 4, 4)
    wide = PreActBasicBlock(16, 160, 1, dropout=0.3)  # WRN-28-10's first unit
    assert isinstance(wide.dropout, nn.Dropout) and wide.dropout.p == 0.3
    assert BasicBlock(16, 16).dropout is None and "dropout" not in dict(BasicBlock(16, 16).named_children())
    zero = PreActBottleneck(64, 16)
    zero.zero_init_last()
    with torch.no_grad():
        assert torch.allclose(zero.eval()(x), x)


def test_preact_units_skip_their_branch_under_batch_drop_path():
    torch.manual_seed(0)
    u = PreActBasicBlock(8, 16, 2, drop_path=DropPath(0.99, mode="batch")).train()
    ran = []
    u.conv1.register_forward_hook(lambda *a: ran.append(1))
    x = torch.randn(2, 8, 6, 6)
    y = u(x)
    assert not ran and y.shape == (2, 16, 3, 3)  # the shortcut alone: projection of the pre-activation


def test_cardinality_errors_are_one_clear_line():
    with pytest.raises(CnnzooError, match="use Bottleneck") as e:
        BasicBlock(64, 64, groups=32, base_width=4)
    assert isinstance(e.value, ValueError) and "\n" not in str(e.value)
    with pytest.raises(CnnzooError, match="no channels per group"):
        Bottleneck(64, 16, groups=32, base_width=2)  # 16 * 2 / 64 = 0.5 channels per group
    with pytest.raises(CnnzooError, match="no channels per group"):
        bottleneck_width(64, 0)
    with pytest.raises(CnnzooError, match="divides both"):
        conv3x3(64, 63, groups=4)  # what a hand-made grouped block would hit


def test_blocks_take_norm_and_activation():
    blk = Bottleneck(32, 16, act_layer="relu6", norm_layer=lambda c: nn.GroupNorm(4, c))
    assert isinstance(blk.relu, nn.ReLU6) and blk.relu.inplace
    assert all(isinstance(m, nn.GroupNorm) for m in (blk.bn1, blk.bn2, blk.bn3, blk.downsample[1]))
    assert blk(torch.randn(2, 32, 4, 4)).shape == (2, 64, 4, 4)


def test_cost_details_and_types():
    assert BasicBlock(8, 8).cost_details() == {"residual": True}
    assert BasicBlock(8, 8, residual=False).cost_details() == {}
    assert Bottleneck(16, 4, drop_path=0.05).cost_details() == {"residual": True, "drop path": "0.05"}
    assert BasicBlock.cost_type == PreActBottleneck.cost_type == "block"
    assert ZeroPadShortcut.cost_type == "shortcut"
    assert Projection.cost_type == AvgPoolProjection.cost_type == DeepStem.cost_type == "block"
