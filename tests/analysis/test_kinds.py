"""Row types (``cnnzoo.analysis.kinds``): every zoo row states its type; each type has its FLOPs rule.

A new layer must state its row type (``cost_type``, contracts/cost-rows.md): a zoo model whose
rows include a type outside :data:`ROW_TYPES`, or one typed by its class name, fails here.
"""

from __future__ import annotations

import pytest
from torch import nn

import cnnzoo
from cnnzoo.analysis import COMPOSITE_KINDS, ROW_TYPES, analyze
from cnnzoo.analysis.kinds import ROW_FLOPS, TORCH_MODULE_KINDS, module_kind
from cnnzoo.analysis.meta import build_zoo_model
from cnnzoo.analysis.tracer import trace


@pytest.mark.parametrize("name", cnnzoo.list_models())
def test_every_zoo_row_states_its_type(name):
    notes: list[str] = []
    model = build_zoo_model(name, notes)
    tracer = trace(model, (1, *cnnzoo.get_model_config(name).input_size))
    assert tracer.class_typed == [], f"these modules state no cost_type: {tracer.class_typed}"
    assert {raw.kind for raw in tracer.rows} <= ROW_TYPES
    folded = analyze(name, depth=1)
    assert {r.type for r in folded.layers} <= ROW_TYPES


def test_row_types_cover_every_kind_the_analyzer_knows():
    assert {kind for _, kind in TORCH_MODULE_KINDS} <= set(ROW_FLOPS)
    assert COMPOSITE_KINDS <= ROW_TYPES and {"input", "unused", "params"} <= ROW_TYPES
    # the contract's leaf kinds (contracts/cost-rows.md) and its composite kinds
    assert {"drop_path", "shortcut", "shuffle", "routing", "subsample", "lrn"} <= ROW_TYPES
    assert COMPOSITE_KINDS == {
        "block",
        "stage",
        "inception",
        "residual",
        "sequential",
        "container",
        "stem",
        "se",
        "head",
        "cell",
    }


def test_module_kind_reads_cost_type_then_torch_classes():
    class Gate(nn.Sigmoid):
        cost_type = "se"

    class Mystery(nn.Module):
        pass

    assert module_kind(nn.Conv1d(1, 1, 1)) == "conv"
    assert module_kind(nn.Hardswish()) == "act"
    assert module_kind(nn.Softmax(1)) == "softmax"
    assert module_kind(Gate()) == "se"  # a stated kind wins over the torch base class
    assert module_kind(Mystery()) is None


def test_pool_norm_lrn_softmax_rules():
    m = nn.Sequential(
        nn.Conv2d(2, 6, 1),
        nn.BatchNorm2d(6),
        nn.LocalResponseNorm(5),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(3),
        nn.Flatten(),
        nn.Softmax(dim=1),
    )
    r = analyze(m, input_size=(2, 12, 12), batch_size=2)
    _, _, bn, lrn, mp, ap, _, sm = r.layers
    a = 6 * 12 * 12
    assert bn.flops == 2 * 2 * a
    assert lrn.flops == (2 * 5 + 3) * 2 * a
    assert mp.flops == 2 * (6 * 6 * 6) * 4 and mp.kernel_size == (2, 2) and mp.kernels == 1
    # adaptive 6 -> 3: windows of 2x2, stride 2
    assert ap.flops == 2 * (6 * 3 * 3) * 4 and ap.kernel_size == (2, 2) and ap.stride == (2, 2)
    assert (mp.receptive_field, mp.jump, ap.receptive_field, ap.jump) == (2, 2, 4, 4)
    assert sm.flops == 3 * 2 * 54


def test_group_norm_counts_its_statistics():
    r = analyze(nn.Sequential(nn.Conv2d(1, 4, 1), nn.GroupNorm(2, 4)), input_size=(1, 3, 3), batch_size=2)
    assert r.layers[-1].flops == 4 * 2 * (4 * 3 * 3)


def test_custom_cost_type_modules_of_lenet5():
    r = analyze("lenet5", batch_size=4)
    rows = {x.name: x for x in r.layers}
    assert not r.notes  # the paper's LeNet-5 runs on meta (no fallback)
    assert rows["s2"].type == "pool" and rows["s2"].flops == 4 * 6 * 14 * 14 * 4
    assert rows["c3"].type == "conv" and rows["c3"].params == 1516
    # c3 runs as a dense 5x5 conv over all 6 maps with zeros where Table I has no connection; the
    # analyzer counts the convolution that runs (as FlopCounterMode does): B·A·(5·5·6)·2
    assert rows["c3"].flops == 4 * (16 * 10 * 10) * (5 * 5 * 6) * 2
    assert rows["act1"].type == "act" and rows["act1"].flops == 4 * 6 * 28 * 28
    assert rows["output"].type == "linear" and rows["output"].flops == 4 * 2 * 84 * 10
    assert r.totals["params"] == 60_000
    assert [rows[n].receptive_field for n in ("c1", "s2", "c3", "s4", "c5")] == [5, 6, 14, 16, 32]
