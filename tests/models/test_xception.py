"""Xception (Chollet 2017): Fig. 5's flows, Table 3's count, timm's legacy_xception file."""

from __future__ import annotations

import pytest
import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnzoo import analyze, create_model
from cnnzoo.layers.mbconv import SeparableConv2d
from cnnzoo.models.xception import FLOWS


def _meta(**kw):
    with torch.device("meta"):
        return create_model("xception", **kw)


def test_table3_parameter_count_and_timms():
    with torch.device("meta"):
        ref = timm.create_model("legacy_xception")
    n = _meta().num_params()
    assert n == 22_855_952 == sum(p.numel() for p in ref.parameters())


def test_macs_equal_torch_flop_count_of_timms_network(macs):
    """The paper prints no MACs; the same network in timm, counted by torch, gives ours: 8.36 G."""
    with torch.device("meta"):
        ref = timm.create_model("legacy_xception").eval()
        with FlopCounterMode(display=False) as counter:
            ref(torch.empty(1, 3, 299, 299))
    assert macs("xception") == counter.get_total_flops() / 2
    assert macs("xception") == pytest.approx(8.36e9, rel=1e-3)


def test_fig5_flows():
    assert [b.flow for b in FLOWS] == ["entry"] * 3 + ["middle"] * 8 + ["exit"]
    assert all(b.widths == (728, 728, 728) and b.stride == 1 for b in FLOWS[3:11])
    m = _meta()
    seps = [s for s in m.modules() if isinstance(s, SeparableConv2d)]
    assert len(seps) == 34 and all(s.conv_dw.groups == s.in_channels for s in seps)  # + conv1, conv2: 36
    assert all(m.get_submodule(f"block{i}").skip is None for i in range(4, 12))  # identity shortcuts
    rows = {r.name: r.output_shape for r in analyze("xception", depth=1).layers}
    assert rows["conv2"] == (64, 147, 147) and rows["block3"] == (728, 19, 19)
    assert rows["block11"] == (728, 19, 19) and rows["block12"] == (1024, 10, 10)
    assert rows["act4"] == (2048, 10, 10)
    detail = [r.detail for r in analyze("xception", depth=1).layers if r.name == "block4"]
    assert detail == ["separable 3, stride 1, residual block"]


def test_timm_file_loads_with_the_same_logits(library_roundtrip):
    torch.manual_seed(0)
    library_roundtrip(timm.create_model("legacy_xception"), "xception", 64)


def test_a_block_adds_its_shortcut_after_its_layers():
    torch.manual_seed(0)
    m = create_model("xception", num_classes=10).eval()
    x = torch.randn(1, 728, 5, 5)
    kept = x.clone()
    with torch.no_grad():
        out = m.block5(x)
        assert torch.equal(x, kept)  # the first ReLU is not in place: the shortcut needs the input
        assert torch.allclose(out, m.block5.rep(x) + x)
