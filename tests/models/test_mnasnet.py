"""MnasNet (Tan et al. CVPR 2019): A1 with SE (timm's semnasnet_100), B1 and its widths (torchvision)."""

from __future__ import annotations

import pytest
import torch
import torchvision

from cnnzoo.layers import DepthwiseSeparableConv

B1 = {"mnasnet_b1_050": "mnasnet0_5", "mnasnet_b1_075": "mnasnet0_75", "mnasnet_b1": "mnasnet1_0",
      "mnasnet_b1_130": "mnasnet1_3"}  # fmt: skip


def test_a1_is_the_papers_model_and_timms_semnasnet_100(meta_model, macs):
    import timm

    with torch.device("meta"):
        count = sum(p.numel() for p in timm.create_model("semnasnet_100").parameters())
    m = meta_model("mnasnet_a1")
    assert m.num_params() == count == 3_887_038
    assert round(m.num_params() / 1e6, 1) == 3.9 and round(macs(m, 224) / 1e6) == 312  # Table 1
    se = [b.se is not None for stage in m.blocks for b in stage]
    assert se == [False] * 3 + [True] * 3 + [False] * 4 + [True] * 5 + [False]  # Fig. 7(a)
    assert [b.se.rd_channels for b in m.blocks[2]] == [6, 10, 10]  # a quarter of the input width
    assert isinstance(m.blocks[0][0], DepthwiseSeparableConv) and m.blocks[0][0].act2 is None


@pytest.mark.parametrize("name", list(B1))
def test_b1_widths_are_torchvisions(name, meta_model, macs):
    meta = torchvision.models.get_model_weights(B1[name]).DEFAULT.meta
    m = meta_model(name)
    assert m.num_params() == meta["num_params"]
    assert round(macs(m, 224) / 1e9, 3) == meta["_ops"]
    assert m.conv_head.out_channels == 1280 and not any(b.se for stage in m.blocks for b in stage)
    assert m.default_cfg.extra["reported"]["top1"] == meta["_metrics"]["ImageNet-1K"]["acc@1"]
