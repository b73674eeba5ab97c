"""Table rows (``cnnzoo.analysis.rows``): memory rules, folding with ``depth``, blocks' own details."""

from __future__ import annotations

import json

import torch
from torch import nn

import cnnzoo
from cnnzoo.analysis import analyze
from cnnzoo.analysis.rows import render_details


def test_memory_rules_input_inplace_views_and_dtype():
    m = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 10)
    )
    r = analyze(m, input_size=(3, 8, 8), batch_size=5)
    inp, conv, relu_inplace, relu, flat, fc = r.layers
    assert inp.activation_memory_bytes == 5 * 192 * 4  # no gradient for the input
    assert conv.activation_memory_bytes == 2 * 5 * 144 * 4
    assert relu_inplace.activation_memory_bytes == 0 and relu_inplace.flops == 5 * 144
    assert relu.activation_memory_bytes == 2 * 5 * 144 * 4
    assert flat.activation_memory_bytes == 0 and flat.flops == 0 and flat.type == "flatten"
    assert fc.flops == 5 * 2 * 144 * 10 and fc.kernel_size == (1, 1) and fc.kernels == 10
    assert fc.parameter_memory_bytes == 3 * (144 * 10 + 10) * 4
    half = analyze(m, input_size=(3, 8, 8), batch_size=5, dtype="float16", optimizer="adam")
    assert half.layers[1].activation_memory_bytes == conv.activation_memory_bytes // 2
    assert half.layers[-1].parameter_memory_bytes == 4 * (144 * 10 + 10) * 2
    sgd = analyze(m, input_size=(3, 8, 8), optimizer="sgd")
    assert sgd.totals["parameter_memory_bytes"] == 2 * sum(p.numel() for p in m.parameters()) * 4


def test_activation_switch_and_totals():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3), nn.ReLU())
    on = analyze(m, input_size=(1, 9, 9))
    off = analyze(m, input_size=(1, 9, 9), include_activations=False)
    acts = [x for x in on.layers if x.type == "act"]
    assert len(acts) == 2
    for key in ("flops", "activation_memory_bytes"):
        assert on.totals[key] == sum(getattr(x, key) for x in on.layers)
        assert off.totals[key] == on.totals[key] - sum(getattr(a, key) for a in acts)
    assert "except the 2 activation-function rows" in off.totals_rows
    assert "activation-function rows included" in on.totals_rows
    assert json.loads(off.to_json())["totals"] == off.totals


def test_depth_folds_sums_and_keeps_outputs(tiny_resnet, row):
    leaf = analyze(tiny_resnet, input_size=(3, 16, 16), batch_size=2)
    folded = analyze(tiny_resnet, input_size=(3, 16, 16), batch_size=2, depth=1)
    b2 = row(folded, "block2")
    inside = [x for x in leaf.layers if x.name.startswith("block2.")]
    for key in ("params", "flops", "activation_memory_bytes", "parameter_memory_bytes"):
        assert getattr(b2, key) == sum(getattr(x, key) for x in inside)
    assert tuple(b2.output_shape) == (8, 8, 8) and b2.receptive_field == 13
    # a block of another library states no details: its own residual add says what it is
    assert (b2.type, b2.detail) == ("block", "residual block")
    assert folded.totals == leaf.totals


def test_render_details_follows_the_contract():
    details = {"#1×1": 1024, "#3×3 reduce": None, "kernel": "5x5", "se": True, "skip": False}
    assert render_details(details, "inception3a") == "#1×1 1,024, #3×3 reduce —, kernel 5x5, se"
    assert render_details({"residual": True}, "layer2.0") == "residual stage 2, block 0"
    assert render_details({"residual": True}, "features.3") == "residual block 3"
    assert render_details({"residual": True}, "block") == "residual block"
    assert (
        render_details({"residual": True, "expansion": 6}, "stages.1.2")
        == "residual stage 1, block 2, expansion 6"
    )
    assert render_details({}, "layer1.0") is None


class Described(nn.Module):
    """A block that states its kind and describes itself (as cnnzoo's blocks do)."""

    cost_type = "block"

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return x + self.conv(x)  # a residual add, but the block's own details are what count

    def cost_details(self):
        return {"growth": 32, "bottleneck": True}


class Undescribed(Described):
    cost_details = None  # states a kind, describes nothing: no guessing from its structure


def test_folded_blocks_show_their_own_cost_details(row):
    m = nn.Sequential(Described(), Undescribed())
    r = analyze(m, input_size=(2, 5, 5), depth=1)
    assert (row(r, "0").type, row(r, "0").detail) == ("block", "growth 32, bottleneck")
    assert (row(r, "1").type, row(r, "1").detail) == ("block", None)


class TorchvisionInception(nn.Module):
    """torchvision's Inception layout, no cost_type: read from its four ``branch`` children."""

    def __init__(self) -> None:
        super().__init__()
        self.branch1 = nn.Conv2d(4, 1, 1)
        self.branch2 = nn.Sequential(nn.Conv2d(4, 2, 1), nn.Conv2d(2, 3, 3, padding=1))
        self.branch3 = nn.Sequential(nn.Conv2d(4, 4, 1), nn.Conv2d(4, 5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(4, 6, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def test_an_inception_module_of_another_library_is_read_by_structure(row):
    r = analyze(nn.Sequential(TorchvisionInception()), input_size=(4, 6, 6), depth=1)
    inc = row(r, "0")
    assert inc.type == "inception"
    assert inc.detail == "#1×1 1, #3×3 reduce 2, #3×3 3, #5×5 reduce 4, #5×5 5, pool proj 6"


def test_googlenet_inception_rows_show_branch_widths():
    r = analyze("googlenet", depth=1)
    inc = {row.name: row for row in r.layers if row.type == "inception"}
    assert len(inc) == 9
    assert inc["inception3a"].detail == (
        "#1×1 64, #3×3 reduce 96, #3×3 128, #5×5 reduce 16, #5×5 32, pool proj 32"
    )
    assert tuple(inc["inception3a"].output_shape) == (256, 28, 28)
    naive = analyze("googlenet_naive", depth=1)
    assert next(x for x in naive.layers if x.name == "inception3a").detail == (
        "#1×1 64, #3×3 reduce —, #3×3 128, #5×5 reduce —, #5×5 32, pool proj —"
    )
    leaf = analyze("googlenet")
    assert r.totals == leaf.totals  # folding moves numbers between rows, never changes the sums


def test_resnet_blocks_show_stage_and_index():
    r = analyze("resnet20", depth=2)
    blocks = [row for row in r.layers if row.type == "block"]
    assert [b.name for b in blocks[:4]] == ["layer1.0", "layer1.1", "layer1.2", "layer2.0"]
    assert blocks[3].detail == "residual stage 2, block 0"
    assert analyze("resnet20").totals == r.totals
    plain = analyze("plain20", depth=2)  # residual=False: the same blocks, no shortcut
    assert all(b.detail is None for b in plain.layers if b.type == "block")


def test_parameters_no_row_used_are_their_own_rows():
    r = analyze("googlenet")
    unused = [x for x in r.layers if x.type == "unused"]
    assert {x.name for x in unused} == {"aux1", "aux2"}
    assert all(x.flops == 0 and x.activation_memory_bytes == 0 for x in unused)
    assert any("aux1, aux2: not run by the inference forward pass" in n for n in r.notes)
    with torch.device("meta"):
        m = cnnzoo.create_model("googlenet")
    assert r.totals["params"] == sum(p.numel() for p in m.parameters())
