"""MobileNet v2 (Sandler et al. 2018): Table 2's rows at five widths, torchvision's network."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

from cnnzoo.layers import DepthwiseSeparableConv, InvertedResidual

WIDTHS = {"mobilenet_v2_035": 0.35, "mobilenet_v2_050": 0.5, "mobilenet_v2_075": 0.75, "mobilenet_v2": 1.0,
          "mobilenet_v2_140": 1.4}  # fmt: skip
TF_SLIM = {  # the TF-slim checkpoint table: params (M, no BN), MACs (M)
    "mobilenet_v2_035": (1.66, 59),
    "mobilenet_v2_050": (1.95, 97),
    "mobilenet_v2_075": (2.61, 209),
    "mobilenet_v2": (3.47, 300),
    "mobilenet_v2_140": (6.06, 582),
}


def _bn_params(m: nn.Module) -> int:
    return sum(p.numel() for c in m.modules() if isinstance(c, nn.BatchNorm2d) for p in c.parameters())


@pytest.mark.parametrize("name", list(WIDTHS))
def test_every_width_is_torchvisions_network(name, meta_model):
    with torch.device("meta"):
        tv = torchvision.models.mobilenet_v2(width_mult=WIDTHS[name])
    assert meta_model(name).num_params() == sum(p.numel() for p in tv.parameters())


def test_torchvisions_published_figures(meta_model, macs):
    meta = torchvision.models.get_model_weights("mobilenet_v2").DEFAULT.meta
    assert meta_model("mobilenet_v2").num_params() == meta["num_params"] == 3_504_872
    assert round(macs("mobilenet_v2", 224) / 1e9, 3) == meta["_ops"]


@pytest.mark.parametrize("name", list(WIDTHS))
def test_tf_slim_and_paper_figures(name, meta_model, macs):
    """TF-slim counts no BN parameters; Table 4 prints 3.4 M and 300 M for 1.0, 585 M for 1.4."""
    m = meta_model(name)
    params, slim_macs = TF_SLIM[name]
    assert round((m.num_params() - _bn_params(m)) / 1e6, 2) == params
    assert abs(macs(m, 224) / 1e6 - slim_macs) < 1  # to the printed digit: 300.8 M is "300"
    if name == "mobilenet_v2":
        assert math.floor((m.num_params() - _bn_params(m)) / 1e5) / 10 == 3.4
    if name == "mobilenet_v2_140":
        assert abs(macs(m, 224) / 1e6 - 585) / 585 < 0.01


def test_table_2_rows_and_the_last_conv(meta_model):
    m = meta_model("mobilenet_v2")
    blocks = [b for stage in m.blocks for b in stage]
    assert len(blocks) == 17 and isinstance(blocks[0], DepthwiseSeparableConv) and blocks[0].act2 is None
    assert all(isinstance(b, InvertedResidual) and b.mid_channels == 6 * b.in_channels for b in blocks[1:])
    assert [b.out_channels for b in blocks[::4]] == [16, 32, 64, 96, 320]
    assert sum(b.has_skip for b in blocks) == 10  # every repeat after a row's first
    assert {type(c) for c in m.modules() if isinstance(c, nn.ReLU | nn.ReLU6)} == {nn.ReLU6}
    # §6.1: the last 1×1 conv keeps 1280 below width 1, and scales above it
    assert meta_model("mobilenet_v2_035").conv_head.out_channels == 1280
    assert meta_model("mobilenet_v2_140").conv_head.out_channels == 1792
    assert meta_model("mobilenet_v2_035").conv_stem.out_channels == 16  # make_divisible(11.2) = 16
