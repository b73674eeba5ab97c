"""NASNet-A (Zoph et al. 2018): the cells as tables, Table 2's counts, the wiring, timm's file."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnzoo import analyze, create_model
from cnnzoo.errors import ConfigError
from cnnzoo.models.base import InputShapeError
from cnnzoo.models.nasnet import (
    NORMAL_CELL,
    REDUCTION_CELL,
    CellBlock,
    CellOp,
    CellSpec,
    NASNet,
    NASNetCell,
    ReLUConvBN,
)

# The release's nasnet_utils.py, verbatim: operations in (left, right) pairs per block, the
# hidden-state index of each (0 the cell's own input after its 1x1, 1 the previous cell's).
RELEASE = {
    "normal": (
        ["separable_5x5_2", "separable_3x3_2", "separable_5x5_2", "separable_3x3_2", "avg_pool_3x3",
         "none", "avg_pool_3x3", "avg_pool_3x3", "separable_3x3_2", "none"],
        [0, 1, 1, 1, 0, 1, 1, 1, 0, 0],
    ),
    "reduction": (
        ["separable_5x5_2", "separable_7x7_2", "max_pool_3x3", "separable_7x7_2", "avg_pool_3x3",
         "separable_5x5_2", "none", "avg_pool_3x3", "separable_3x3_2", "max_pool_3x3"],
        [0, 1, 0, 1, 0, 1, 3, 2, 2, 0],
    ),
}  # fmt: skip
RELEASE_NAMES = {"separable_3x3_2": "sep_3x3", "separable_5x5_2": "sep_5x5", "separable_7x7_2": "sep_7x7",
                 "avg_pool_3x3": "avg_3x3", "max_pool_3x3": "max_3x3", "none": "identity"}  # fmt: skip


def _meta(name, **kw):
    with torch.device("meta"):
        return create_model(name, **kw)


def _bn_stats(model: nn.Module) -> int:
    return sum(
        v.numel() for k, v in model.state_dict().items() if k.endswith(("running_mean", "running_var"))
    )


@pytest.mark.parametrize("spec", [NORMAL_CELL, REDUCTION_CELL], ids=lambda s: s.name)
def test_cells_are_the_releases_tables(spec):
    ops, inputs = RELEASE[spec.name]
    flat = [op for block in spec.blocks for op in (block.left, block.right)]
    assert [o.op for o in flat] == [RELEASE_NAMES[o] for o in ops]
    assert [o.input for o in flat] == inputs
    assert all(b.combine == "add" for b in spec.blocks)
    # the output concatenates h_{i-1} and every block (normal), or the blocks no block reads (reduction)
    assert spec.output == ((1, 2, 3, 4, 5, 6) if spec.name == "normal" else (3, 4, 5, 6))


@pytest.mark.parametrize(
    "name, params, stats, macs_paper",
    [("nasnet_a_mobile", 5_289_978, 36_738, 564e6), ("nasnet_a_large", 88_753_150, 196_668, 23.8e9)],
)
def test_table2_counts(name, params, stats, macs_paper, macs):
    """Table 2's 5.3 M and 88.9 M count the BN running statistics too (Keras: 5,326,716 in all)."""
    m = _meta(name)
    assert (m.num_params(), _bn_stats(m)) == (params, stats)
    paper_params = {"nasnet_a_mobile": 5.3, "nasnet_a_large": 88.9}[name]
    assert round((params + stats) / 1e6, 1) == paper_params
    assert macs(name) == pytest.approx(macs_paper, rel=0.005)  # 563.6 M and 23.78 G


def test_large_equals_timms_network_in_params_and_flops(macs):
    import timm

    with torch.device("meta"):
        ref = timm.create_model("nasnetalarge").eval()
        with FlopCounterMode(display=False) as counter:
            ref(torch.empty(1, 3, 331, 331))
    assert sum(p.numel() for p in ref.parameters()) == 88_753_150
    assert macs("nasnet_a_large") == counter.get_total_flops() / 2


def test_wiring_follows_the_release():
    large, mobile = _meta("nasnet_a_large"), _meta("nasnet_a_mobile")
    names = [layer.name for layer in large.wiring]
    assert names[:3] == ["cell_stem_0", "cell_stem_1", "cell_0"] and len(names) == 2 + 18 + 2
    assert names.index("reduction_cell_0") == 2 + 6 and names.index("reduction_cell_1") == 2 + 13
    src = {layer.name: layer for layer in large.wiring}
    out = {layer.name: i + 1 for i, layer in enumerate(large.wiring)}  # output 0 is conv0's
    # skip_reduction_layer_input=1: the cell after a reduction takes the output before the reduction's input
    assert (src["cell_6"].cur, src["cell_6"].prev) == (out["reduction_cell_0"], out["cell_4"])
    assert (src["reduction_cell_0"].cur, src["reduction_cell_0"].prev) == (out["cell_5"], out["cell_4"])
    msrc = {layer.name: layer for layer in mobile.wiring}
    mout = {layer.name: i + 1 for i, layer in enumerate(mobile.wiring)}
    assert (msrc["cell_4"].cur, msrc["cell_4"].prev) == (mout["reduction_cell_0"], mout["cell_3"])
    # h_{i-1} is adjusted where it differs: halved after a reduction, a 1x1 conv elsewhere, raw in stem 0
    assert large.cell_6.reduce_prev is not None and large.cell_7.conv_prev_1x1 is not None
    assert large.cell_stem_0.reduce_prev is None and large.cell_stem_0.conv_prev_1x1 is None
    assert [c.filters for c in (large.cell_stem_0, large.cell_stem_1, large.cell_0, large.cell_17)] == [
        42,
        84,
        168,
        672,
    ]


def test_cells_show_as_cell_rows():
    rows = {r.name: r for r in analyze("nasnet_a_mobile", depth=1).layers}
    assert rows["cell_stem_0"].type == "cell" and rows["cell_stem_0"].detail == "cell reduction, filters 11"
    assert rows["cell_0"].detail == "cell normal, filters 44" and rows["cell_0"].output_shape == (264, 28, 28)
    assert rows["reduction_cell_1"].output_shape == (704, 7, 7) and rows["cell_11"].output_shape == (
        1056,
        7,
        7,
    )


def test_timm_file_loads_with_the_same_logits(library_roundtrip):
    """The same key map at a narrow width (the full size is the slow test below): every cell kind."""
    import timm.models.nasnet as tn

    torch.manual_seed(0)
    ref = tn.NASNetALarge(num_classes=10, stem_size=12, num_features=24 * 16)  # 16 filters
    library_roundtrip(ref, "nasnet_a_large", 64, num_classes=10, num_filters=16, stem_filters=12)


@pytest.mark.slow
def test_timm_nasnetalarge_file_loads_with_the_same_logits(library_roundtrip):
    import timm

    torch.manual_seed(0)
    library_roundtrip(timm.create_model("nasnetalarge"), "nasnet_a_large", 71)


def test_a_cell_is_data():
    """Any table builds: an identity that strides or widens becomes ReLU → 1×1 conv → BN (the release)."""
    spec = CellSpec(
        "toy", True, (CellBlock(CellOp("identity", 0), CellOp("max_3x3", 1)),
                      CellBlock(CellOp("identity", 2), CellOp("sep_3x3", 2))), output=(2, 3),
    )  # fmt: skip
    cell = NASNetCell(spec, 12, 20, 8).eval()
    assert isinstance(cell.comb_iter_0_left, ReLUConvBN) and cell.comb_iter_0_left.conv.stride == (2, 2)
    assert isinstance(cell.comb_iter_1_left, nn.Identity) and cell.conv_prev_1x1 is not None
    out = cell(torch.randn(2, 12, 9, 9), torch.randn(2, 20, 9, 9))
    assert out.shape == (2, 16, 5, 5)


@pytest.mark.parametrize(
    "spec, match",
    [
        (
            CellSpec("bad", False, (CellBlock(CellOp("sep_3x3", 2), CellOp("identity", 0)),), (2,)),
            "blocks 0..-1",
        ),
        (
            CellSpec("bad", False, (CellBlock(CellOp("conv_9x9", 0), CellOp("identity", 0)),), (2,)),
            "an operation in",
        ),
        (
            CellSpec(
                "bad", False, (CellBlock(CellOp("identity", 0), CellOp("identity", 1), "concat"),), (2,)
            ),
            "add",
        ),
        (CellSpec("bad", False, (CellBlock(CellOp("identity", 0), CellOp("identity", 1)),), (4,)), "output"),
    ],
)
def test_bad_cell_tables_are_refused_in_one_line(spec, match):
    with pytest.raises(ConfigError, match=match) as e:
        NASNetCell(spec, 8, 8, 8)
    assert "\n" not in str(e.value)


def test_minimum_input_is_35_for_both():
    for name in ("nasnet_a_mobile", "nasnet_a_large"):
        m = _meta(name).train()
        assert m.min_input_size == 35
        final = m.forward_features(torch.empty(2, 3, 35, 35, device="meta"))
        assert final.shape[-2:] == (2, 2)  # 35 -> 17 -> 9 -> 5 -> 3 -> 2
        with pytest.raises(InputShapeError, match="at least 35x35"):
            m(torch.empty(1, 3, 34, 34, device="meta"))
    with pytest.raises(ConfigError, match="num_cells=3N"):
        NASNet(num_cells=10)


def test_drop_path_rises_with_depth_and_skips_identities():
    m = _meta("nasnet_a_mobile", drop_path_rate=0.3)
    rates = [getattr(m, layer.name).drop_path.drop_prob for layer in m.wiring]
    assert rates == sorted(rates) and rates[-1] == pytest.approx(0.3) and rates[0] == pytest.approx(0.3 / 16)
    torch.manual_seed(0)
    cell = NASNetCell(NORMAL_CELL, 16, 16, 8, drop_path=0.5).eval()
    x, prev = torch.randn(2, 16, 6, 6), torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        assert torch.equal(cell(x, prev), cell(x, prev))  # identity at eval
    assert _meta("nasnet_a_mobile").cell_0.drop_path is None  # off by default: no module
