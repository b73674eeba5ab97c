"""SqueezeExcite: SENet's counts and outputs against torchvision and timm, the MBConv-line variants."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.layers.squeeze_excite import SqueezeExcite


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("channels", [64, 256, 2048])
def test_senet_block_counts_and_output(channels):
    """Hu et al. §3, r = 16: two FCs C -> C/16 -> C with biases: 2·C²/16 + C/16 + C parameters."""
    se = SqueezeExcite(channels)
    rd = channels // 16
    assert se.rd_channels == rd and n_params(se) == 2 * channels * rd + rd + channels
    x = torch.randn(2, channels, 5, 5)
    with torch.no_grad():
        s = x.mean((2, 3))  # squeeze
        s = torch.sigmoid(se.fc2.weight[:, :, 0, 0] @ torch.relu(se.fc1.weight[:, :, 0, 0] @ s.T
                          + se.fc1.bias[:, None]) + se.fc2.bias[:, None]).T  # fmt: skip
        assert torch.allclose(se(x), x * s[:, :, None, None], atol=1e-5)
    assert se.cost_details() == {"squeeze": rd}


def test_matches_torchvision_squeeze_excitation():
    from torchvision.ops import SqueezeExcitation

    torch.manual_seed(0)
    ref = SqueezeExcitation(96, 24, scale_activation=nn.Hardsigmoid)  # MobileNet v3's form
    ours = SqueezeExcite(96, rd_channels=24, gate_layer="hard_sigmoid")
    assert ours.state_dict().keys() == ref.state_dict().keys()  # fc1.*, fc2.*
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 96, 7, 7)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-6)


def test_matches_timm_se_module_of_seresnet():
    from timm.layers import SEModule

    torch.manual_seed(0)
    ref = SEModule(256, rd_ratio=1 / 16)  # timm's seresnet50: 256 -> 16 -> 256
    ours = SqueezeExcite(256)
    assert n_params(ours) == n_params(ref) == 8464
    ours.load_state_dict(ref.state_dict())  # fc1/fc2 keys as timm's (its bn is an Identity)
    x = torch.randn(2, 256, 4, 4)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-6)


def test_mbconv_line_widths_and_parts():
    # MobileNet v3: a quarter of the expanded width, rounded to a multiple of 8 (72 -> 18 -> 24)
    v3 = SqueezeExcite(72, 0.25, rd_divisor=8, gate_layer="hard_sigmoid")
    assert v3.rd_channels == 24 and isinstance(v3.gate, nn.Hardsigmoid) and isinstance(v3.act, nn.ReLU)
    # EfficientNet: a quarter of the block's *input* width (16), on the expanded 96 channels
    eff = SqueezeExcite(96, rd_channels=4, act_layer="swish")
    assert n_params(eff) == 96 * 4 + 4 + 4 * 96 + 96 and isinstance(eff.act, nn.SiLU)
    assert SqueezeExcite(24, 1 / 16).rd_channels == 2  # 1.5 rounds half up
    assert SqueezeExcite(8, 1 / 16).rd_channels == 1  # never below one channel


def test_bad_widths_are_clear_errors():
    with pytest.raises(CnnzooError, match="rd_ratio > 0"):
        SqueezeExcite(64, 0.0)
    with pytest.raises(CnnzooError, match="at least 1") as e:
        SqueezeExcite(64, rd_channels=0)
    assert isinstance(e.value, ValueError)
