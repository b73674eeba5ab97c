"""MobileNet v3 Large and Small (Howard et al. 2019): Tables 1-2 as rows, torchvision's networks."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnzoo
from cnnzoo.layers import DepthwiseSeparableConv, SqueezeExcite

PAPER = {"mobilenet_v3_large": (5.4, 219), "mobilenet_v3_small": (2.5, 56)}  # Table 3: params M, MACs M


@pytest.mark.parametrize("name", list(PAPER))
def test_torchvisions_figures_exactly_and_the_papers_rounded(name, meta_model, macs):
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    m = meta_model(name)
    assert m.num_params() == meta["num_params"]
    counted = macs(m, 224)
    assert round(counted / 1e9, 3) == meta["_ops"]
    params, paper_macs = PAPER[name]
    assert int(m.num_params() / 1e5) / 10 == params  # the table cuts 5.48 M to "5.4 M"
    assert abs(counted / 1e6 - paper_macs) / paper_macs < 0.015  # 216.6 vs 219, 56.5 vs 56


def _block_table(m: nn.Module) -> list[tuple[int, int, bool, str]]:
    """(kernel, exp size, SE, NL) of every bneck, read off the built network."""
    rows = []
    for stage in m.blocks:
        for b in stage:
            dw = b.conv_dw
            act = b.act1 if isinstance(b, DepthwiseSeparableConv) else b.act2
            nl = "RE" if isinstance(act, nn.ReLU) else "HS"
            rows.append((dw.kernel_size[0], dw.in_channels, b.se is not None, nl))
    return rows


def test_the_bnecks_are_table_1_and_table_2(meta_model):
    assert _block_table(meta_model("mobilenet_v3_large")) == [
        (3, 16, False, "RE"), (3, 64, False, "RE"), (3, 72, False, "RE"), (5, 72, True, "RE"),
        (5, 120, True, "RE"), (5, 120, True, "RE"), (3, 240, False, "HS"), (3, 200, False, "HS"),
        (3, 184, False, "HS"), (3, 184, False, "HS"), (3, 480, True, "HS"), (3, 672, True, "HS"),
        (5, 672, True, "HS"), (5, 960, True, "HS"), (5, 960, True, "HS"),
    ]  # fmt: skip
    assert _block_table(meta_model("mobilenet_v3_small")) == [
        (3, 16, True, "RE"), (3, 72, False, "RE"), (3, 88, False, "RE"), (5, 96, True, "HS"),
        (5, 240, True, "HS"), (5, 240, True, "HS"), (5, 120, True, "HS"), (5, 144, True, "HS"),
        (5, 288, True, "HS"), (5, 576, True, "HS"), (5, 576, True, "HS"),
    ]  # fmt: skip


def test_the_se_is_hard_sigmoid_and_small_has_none_after_the_last_bneck(meta_model):
    m = meta_model("mobilenet_v3_small")
    ses = [c for c in m.modules() if isinstance(c, SqueezeExcite)]
    assert ses and all(isinstance(s.gate, nn.Hardsigmoid) and isinstance(s.act, nn.ReLU) for s in ses)
    assert ses[3].rd_channels == 64  # make_divisible(240 / 4, 8)
    assert not any(isinstance(c, SqueezeExcite) for c in m.conv_head.modules())  # as every release
    assert (m.conv_head.out_channels, m.head_fc.out_features) == (576, 1024)
    big = meta_model("mobilenet_v3_large")
    assert (big.conv_head.out_channels, big.head_fc.out_features, big.num_features) == (960, 1280, 1280)
    assert isinstance(big.conv_stem.act, nn.Hardswish) and isinstance(big.head_act, nn.Hardswish)


def test_pre_logits_are_the_head_fc_output():
    torch.manual_seed(0)
    m = cnnzoo.create_model("mobilenet_v3_small", num_classes=3).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = m.forward_features(x)
        pre = m.forward_head(feats, pre_logits=True)
        assert pre.shape == (2, 1024)
        torch.testing.assert_close(m.classifier(pre), m(x))
