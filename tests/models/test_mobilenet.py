"""MobileNet v1 (Howard et al. 2017): Table 1 as rows, the width multiplier, resolution, ReLU or
ReLU6, and Table 4's full-convolution twin."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.layers import ConvNormAct, DepthwiseSeparableConv

TABLE6 = {  # name: (params in M, MACs in M), as Table 6 prints them
    "mobilenet_v1": (4.2, 569),
    "mobilenet_v1_075": (2.6, 325),
    "mobilenet_v1_050": (1.3, 149),
    "mobilenet_v1_025": (0.5, 41),
}


def test_alpha_1_is_timms_network_and_table_6_rounds_every_width(meta_model, macs):
    import timm

    with torch.device("meta"):
        timm_count = sum(p.numel() for p in timm.create_model("mobilenetv1_100").parameters())
    assert meta_model("mobilenet_v1").num_params() == timm_count == 4_231_976
    for name, (params, paper_macs) in TABLE6.items():
        m = meta_model(name)
        assert round(m.num_params() / 1e6, 1) == params, name
        assert round(macs(m, 224) / 1e6) == paper_macs, name


def test_the_full_convolution_twin_is_table_4s_conv_mobilenet(meta_model, macs):
    m = meta_model("mobilenet_v1", separable=False)
    assert not any(isinstance(b, DepthwiseSeparableConv) for b in m.modules())
    convs = [b for stage in m.blocks for b in stage]
    assert len(convs) == 13 and all(
        isinstance(b, ConvNormAct) and b.conv.kernel_size == (3, 3) for b in convs
    )
    assert round(m.num_params() / 1e6, 1) == 29.3  # Table 4: 29.3 M
    assert abs(macs(m, 224) / 1e6 - 4866) / 4866 < 5e-4  # Table 4: 4866 M (4867.3 counted)
    assert m(torch.empty(1, 3, 224, 224, device="meta")).shape == (1, 1000)


def test_28_layers_and_table_1s_maps(meta_model):
    """Table 1: conv, 13 × (dw, pw), fc: "MobileNet has 28 layers"; the second-to-last "Conv dw / s2"
    keeps the 7×7 map (stride 1)."""
    m = meta_model("mobilenet_v1")
    layers = [c for c in m.modules() if isinstance(c, nn.Conv2d | nn.Linear)]
    assert len(layers) == 28
    assert m.blocks[4][1].conv_dw.stride == (1, 1) and m.blocks[4][0].conv_dw.stride == (2, 2)
    _, stages = m.forward_intermediates(torch.empty(1, 3, 224, 224, device="meta"))
    assert [tuple(s.shape[1:]) for s in stages] == [(64, 112, 112), (128, 56, 56), (256, 28, 28),
                                                     (512, 14, 14), (1024, 7, 7)]  # fmt: skip
    assert all(not b.has_skip for stage in m.blocks for b in stage)  # v1 has no residuals


def test_any_resolution_table_7(meta_model, macs):
    """Table 7 (resolution multiplier): 1.0 MobileNet at 192, 160, 128: 418, 290, 186 M MACs."""
    m = meta_model("mobilenet_v1")
    for side, paper_macs in ((224, 569), (192, 418), (160, 290), (128, 186)):
        assert abs(macs(m, side) / 1e6 - paper_macs) < 1, side
    assert m(torch.empty(1, 3, 97, 131, device="meta")).shape == (1, 1000)  # any size, not square


def test_relu_by_default_relu6_on_request(meta_model):
    acts = lambda m: {type(c) for c in m.modules() if isinstance(c, nn.ReLU | nn.ReLU6)}  # noqa: E731
    assert acts(meta_model("mobilenet_v1")) == {nn.ReLU}
    assert acts(meta_model("mobilenet_v1_050", act="relu6")) == {nn.ReLU6}
    assert len([c for c in meta_model("mobilenet_v1").modules() if isinstance(c, nn.ReLU)]) == 27


@pytest.mark.parametrize("width", [0.3, 1.3])
def test_other_widths_round_as_tf_slim(width, meta_model):
    m = meta_model("mobilenet_v1", width=width)
    assert m.conv_stem.out_channels == max(int(32 * width), 8)
    assert m.num_features == int(1024 * width)


def test_configs_carry_table_6():
    cfg = cnnzoo.get_model_config("mobilenet_v1_025")
    assert cfg.extra["reported"]["top1"] == 50.6 and cfg.extra["macs"]["value"] == 41e6
    assert cfg.input_size == (3, 224, 224) and cfg.min_input_size == 33 and cfg.year == 2017
