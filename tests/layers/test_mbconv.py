"""SeparableConv2d, the depthwise-separable block and the MBConv, against torchvision and timm."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.layers.conv import Conv2dSame
from cnnzoo.layers.drop import DropPath
from cnnzoo.layers.mbconv import DepthwiseSeparableConv, InvertedResidual, SeparableConv2d


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def load_in_order(ours: nn.Module, ref: nn.Module) -> None:
    """A positional key map: both state_dicts list the same tensors in the same order."""
    src, dst = list(ref.state_dict().items()), list(ours.state_dict())
    assert len(src) == len(dst)
    mapped = {}
    for k, (rk, v) in zip(dst, src, strict=True):
        assert ours.state_dict()[k].shape == v.shape, (k, rk)
        mapped[k] = v
    ours.load_state_dict(mapped, strict=True)


def perturb_bn(m: nn.Module) -> None:
    """Non-trivial BN statistics and affine parameters, so eval-mode BN is really compared."""
    with torch.no_grad():
        for bn in m.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)


@pytest.mark.parametrize(("cin", "cout", "stride", "t"), [(16, 24, 2, 6), (24, 24, 1, 6), (32, 16, 1, 1),
                                                           (64, 96, 1, 6), (160, 320, 1, 6)])  # fmt: skip
def test_inverted_residual_matches_torchvision_mobilenet_v2(cin, cout, stride, t):
    from torchvision.models.mobilenetv2 import InvertedResidual as TVInvertedResidual

    torch.manual_seed(0)
    ref = TVInvertedResidual(cin, cout, stride, t).eval()
    ours = InvertedResidual(cin, cout, 3, stride, expand_ratio=t).eval()
    assert n_params(ours) == n_params(ref)
    assert ours.has_skip == ref.use_res_connect == (stride == 1 and cin == cout)
    assert (ours.conv_pw is None) == (t == 1)  # t = 1: no expansion conv, as torchvision
    perturb_bn(ref)
    load_in_order(ours, ref)
    x = torch.randn(2, cin, 14, 14)
    with torch.no_grad():
        y = ours(x)
        assert y.shape == (2, cout, 14 // stride, 14 // stride)
        assert torch.allclose(y, ref(x), atol=1e-5)


def test_inverted_residual_matches_torchvision_mobilenet_v3_with_hard_sigmoid_se():
    from torchvision.models.mobilenetv3 import InvertedResidual as TVv3
    from torchvision.models.mobilenetv3 import InvertedResidualConfig

    torch.manual_seed(0)
    cnf = InvertedResidualConfig(40, 5, 240, 40, True, "HS", 1, 1, 1.0)  # a Large bneck row of Table 1
    ref = TVv3(cnf, nn.BatchNorm2d).eval()
    ours = InvertedResidual(40, 40, 5, 1, mid_channels=240, act_layer="hard_swish", se_ratio=0.25,
                            se_from="mid", se_act="relu", se_gate="hard_sigmoid", se_divisor=8).eval()  # fmt: skip
    assert ours.se.rd_channels == 64 and n_params(ours) == n_params(ref)
    perturb_bn(ref)
    load_in_order(ours, ref)
    x = torch.randn(2, 40, 7, 7)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-5)
    assert ours.cost_details() == {"expansion": 6, "kernel": 5, "stride": 1, "se": True, "residual": True}


def test_mbconv_matches_torchvision_efficientnet_se_of_the_input_width():
    from torchvision.models.efficientnet import MBConv, MBConvConfig

    torch.manual_seed(0)
    ref = MBConv(MBConvConfig(6, 5, 2, 24, 40, 1), 0.0, nn.BatchNorm2d).eval()  # B0 stage 4's first block
    ours = InvertedResidual(24, 40, 5, 2, expand_ratio=6, act_layer="swish", se_ratio=0.25).eval()
    assert ours.se.rd_channels == 6 and ours.se.channels == 144  # 24 / 4, on the 144 expanded channels
    assert n_params(ours) == n_params(ref)
    perturb_bn(ref)
    load_in_order(ours, ref)
    x = torch.randn(2, 24, 16, 16)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-5)


def test_timm_keys_load_unchanged():
    """Our MBConv and DS block use timm's submodule names: its state_dicts load with strict=True."""
    from timm.models._efficientnet_blocks import DepthwiseSeparableConv as TimmDS
    from timm.models._efficientnet_blocks import InvertedResidual as TimmIR

    torch.manual_seed(0)
    ref = TimmIR(24, 24, 3, 1, exp_ratio=6.0, act_layer=nn.ReLU6).eval()
    ours = InvertedResidual(24, 24, 3, 1, expand_ratio=6).eval()
    perturb_bn(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 24, 9, 9)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-5)
    ref_ds = TimmDS(32, 16, 3, 1, act_layer=nn.ReLU).eval()
    ours_ds = DepthwiseSeparableConv(32, 16, 3, 1).eval()
    perturb_bn(ref_ds)
    ours_ds.load_state_dict(ref_ds.state_dict(), strict=True)
    x32 = torch.randn(2, 32, 9, 9)
    with torch.no_grad():
        assert torch.allclose(ours_ds(x32), ref_ds(x32), atol=1e-5)


def test_mobilenet_v1_depthwise_separable_block():
    """Howard et al. Fig. 3: 3x3 depthwise conv, BN, ReLU, 1x1 conv, BN, ReLU; Table 2's counts."""
    blk = DepthwiseSeparableConv(512, 512, 3, 1, pw_act=True, skip=False)
    assert not blk.has_skip and blk.act2 is not None and blk.se is None
    assert n_params(blk) == 512 * 9 + 2 * 512 + 512 * 512 + 2 * 512
    x = torch.randn(2, 512, 4, 4)
    assert torch.all(blk(x) >= 0)  # ends in a ReLU
    linear = DepthwiseSeparableConv(32, 16, se_ratio=0.25, act_layer="swish")  # EfficientNet-B0's first
    assert linear.act2 is None and linear.se.rd_channels == 8 and isinstance(linear.act1, nn.SiLU)
    assert linear.cost_details() == {"kernel": 3, "stride": 1, "se": True, "residual": False}


def test_separable_conv_is_depthwise_then_pointwise_with_nothing_between():
    torch.manual_seed(0)
    sep = SeparableConv2d(64, 128, 3)
    assert sep.conv_dw.groups == 64 and sep.conv_pw.kernel_size == (1, 1)
    assert n_params(sep) == 64 * 9 + 64 * 128  # Xception: no biases, BN follows
    x = torch.randn(2, 64, 6, 6)
    with torch.no_grad():
        dense = nn.functional.conv2d(nn.functional.conv2d(x, sep.conv_dw.weight, padding=1, groups=64),
                                     sep.conv_pw.weight)  # fmt: skip
        assert torch.allclose(sep(x), dense, atol=1e-5)
    assert SeparableConv2d(8, 8, 3, 2)(torch.randn(1, 8, 9, 9)).shape == (1, 8, 5, 5)
    assert SeparableConv2d.cost_type == "block"


def test_tensorflow_same_padding_and_eps():
    tf = InvertedResidual(16, 24, 3, 2, padding="same", act_layer="swish",
                          norm_layer=functools.partial(nn.BatchNorm2d, eps=1e-3))  # fmt: skip
    assert isinstance(tf.conv_dw, Conv2dSame) and type(tf.conv_pw) is nn.Conv2d
    assert tf.bn2.eps == 1e-3 and tf(torch.randn(1, 16, 15, 15)).shape == (1, 24, 8, 8)


def test_drop_connect_is_per_sample_and_only_with_a_skip():
    torch.manual_seed(0)
    blk = InvertedResidual(16, 16, 3, 1, drop_path=0.2)
    assert blk.drop_path.mode == "sample" and blk.drop_path.scale == "train"
    assert InvertedResidual(16, 24, 3, 2, drop_path=0.2).drop_path is None  # no skip: rate ignored
    blk.eval()
    x = torch.randn(2, 16, 5, 5)
    plain = InvertedResidual(16, 16, 3, 1).eval()
    plain.load_state_dict(blk.state_dict())
    with torch.no_grad():
        assert torch.allclose(blk(x), plain(x))  # eval is the identity, library logits match
    batch = InvertedResidual(16, 16, 3, 1, drop_path=DropPath(0.99, mode="batch")).train()
    ran = []
    batch.conv_dw.register_forward_hook(lambda *a: ran.append(1))
    assert torch.equal(batch(x), x) and not ran  # batch mode skips the whole branch


def test_bad_settings_are_clear_errors():
    with pytest.raises(CnnzooError, match="se_from must be"):
        InvertedResidual(16, 16, se_ratio=0.25, se_from="out")
    with pytest.raises(CnnzooError, match="expanded width >= 1"):
        InvertedResidual(16, 16, expand_ratio=0.0)


def test_cost_details():
    assert InvertedResidual(16, 24, 5, 2).cost_details() == {
        "expansion": 6, "kernel": 5, "stride": 2, "se": False, "residual": False,
    }  # fmt: skip
    assert InvertedResidual(24, 24, mid_channels=88).cost_details()["expansion"] == "3.67"  # MBv3-Small
