"""ShuffleNet v2 (Ma et al. 2018): Table 5's counts, torchvision's figures and files, the channel split."""

from __future__ import annotations

import pytest
import torch
import torchvision

from cnnzoo import analyze, create_model, get_model_config
from cnnzoo.models.shufflenet_v2 import VARIANTS, ShuffleV2Unit

# Table 5: params (M) and FLOPs (multiply-adds, M), as the paper rounds them
TABLE5 = {
    "shufflenet_v2_x0_5": (1.4, 41e6),
    "shufflenet_v2_x1_0": (2.3, 146e6),
    "shufflenet_v2_x1_5": (3.5, 299e6),
    "shufflenet_v2_x2_0": (7.4, 591e6),
}


def _meta(name, **kw):
    with torch.device("meta"):
        return create_model(name, **kw)


@pytest.mark.parametrize("name", list(TABLE5))
def test_counts_equal_torchvision_and_table5(name, macs):
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    params, paper_macs = TABLE5[name]
    n = _meta(name).num_params()
    assert n == meta["num_params"] and round(n / 1e6, 1) == params
    ours = macs(name)
    assert round(ours / 1e9, 3) == meta["_ops"] == VARIANTS[name].tv_ops
    assert get_model_config(name).extra["macs"]["value"] == pytest.approx(meta["_ops"] * 1e9)
    assert ours == pytest.approx(paper_macs, rel=0.015)  # the paper counts a little more


@pytest.mark.parametrize("name", list(TABLE5))
def test_torchvision_file_loads_with_the_same_logits(library_roundtrip, name):
    torch.manual_seed(0)
    library_roundtrip(torchvision.models.get_model(name, weights=None), name, 64)


def test_the_analyzer_follows_the_channel_split_on_both_branches():
    """In a basic unit the first half passes and keeps its receptive field; the second half is
    convolved at half the width (its FLOPs) and grows its field; the concat takes the larger."""
    rows = {r.name: r for r in analyze("shufflenet_v2_x1_0").layers}
    rf_in = rows["stage2.0.shuffle"].receptive_field  # the unit's input: 15 px at jump 8
    assert (rf_in, rows["stage2.0.shuffle"].jump) == (15, 8)
    halves = [rows["stage2.1.view"], rows["stage2.1.view_1"]]
    assert [(h.output_shape, h.receptive_field, h.flops) for h in halves] == [((58, 28, 28), 15, 0)] * 2
    hw = 28 * 28
    assert rows["stage2.1.branch2.pw1.conv"].flops == 2 * hw * 58 * 58  # half the width in and out
    assert rows["stage2.1.branch2.dw.conv"].flops == 2 * hw * 58 * 9
    assert rows["stage2.1.branch2.dw.conv"].receptive_field == 15 + 2 * 8
    assert rows["stage2.1.concat"].receptive_field == 31 and rows["stage2.1.concat"].output_shape == (
        116,
        28,
        28,
    )
    assert rows["stage2.1.shuffle"].flops == 0
    unit = [r for r in analyze("shufflenet_v2_x1_0", depth=2).layers if r.name == "stage2.1"][0]
    assert unit.detail == "stride 1, split"


def test_basic_unit_passes_the_first_half_and_shuffles():
    torch.manual_seed(0)
    unit = ShuffleV2Unit(8, 8, 1).eval()
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        out = unit(x)
        convolved = unit.branch2(x[:, 4:])
    # channel shuffle with 2 groups interleaves the halves: out = [x0, c0, x1, c1, ...]
    assert torch.equal(out[:, 0::2], x[:, :4]) and torch.allclose(out[:, 1::2], convolved)
    down = ShuffleV2Unit(8, 16, 2)
    assert down.branch1 is not None and down.branch2.dw.conv.stride == (2, 2)
    assert down(x).shape == (1, 16, 3, 3)


def test_stages_and_head():
    m = _meta("shufflenet_v2_x1_0")
    assert [(f.module, f.channels, f.reduction) for f in m.feature_info] == [
        ("conv1", 24, 2), ("maxpool", 24, 4), ("stage2", 116, 8), ("stage3", 232, 16), ("conv5", 1024, 32)
    ]  # fmt: skip
    assert [len(getattr(m, f"stage{i}")) for i in (2, 3, 4)] == [4, 8, 4]


@pytest.mark.slow
def test_shufflenet_v2_learns_fashion_mnist(fashion_short_run):
    """100 steps of 32 images at 64×64: well above chance (10 %)."""
    assert fashion_short_run("shufflenet_v2_x0_5", steps=100, lr=0.05) > 0.6
