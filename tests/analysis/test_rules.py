"""The spec's rules on small hand-written modules: any ``nn.Module``, not only the zoo.

Every expected number below is derived by hand in the test, from shared/spec/cost-tables.md.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnzoo
from cnnzoo.analysis import AnalysisError, CostReport, analyze
from cnnzoo.errors import CnnzooError, ConfigError
from cnnzoo.models.base import InputShapeError

SPEC_LAYER_KEYS = {
    "name",
    "type",
    "kernels",
    "kernel_size",
    "stride",
    "padding",
    "output_shape",
    "activations",
    "params",
    "flops",
    "activation_memory_bytes",
    "parameter_memory_bytes",
    "receptive_field",
    "jump",
}


def row(report: CostReport, name: str):
    return next(r for r in report.layers if r.name == name)


# -- hand-written models ---------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """ResNet basic block with the residual written as ``+`` in forward (no module for it)."""

    def __init__(self, c: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.down = nn.Conv2d(c, c, 1, stride, bias=False) if stride > 1 else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.down is None else self.down(x)
        return F.relu(out + sc)


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1)
        self.block1 = BasicBlock(8)
        self.block2 = BasicBlock(8, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        x = torch.add(x, 1.0)  # a functional torch.add with a scalar: an elementwise row
        return self.fc(torch.flatten(self.pool(x), 1))


class InceptionLike(nn.Module):
    """Four branches on one input, concatenated with torch.cat."""

    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(c, 2, 1)
        self.b2 = nn.Sequential(nn.Conv2d(c, 3, 1), nn.Conv2d(3, 4, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(c, 1, 1), nn.Conv2d(1, 2, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c, 2, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class DenseLike(nn.Module):
    """A DenseNet-like chain: every layer sees the concat of all earlier outputs."""

    def __init__(self, c: int = 4, growth: int = 3, n: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Conv2d(c + i * growth, growth, 3, padding=1) for i in range(n))

    def forward(self, x):
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, 1)))
        return torch.cat(feats, 1)


class MismatchedJumps(nn.Module):
    """Two branches with the same 4×4 output but different jumps (2 and 1): the add cannot be told."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2)  # 8x8 -> 4x4, jump 2
        self.conv = nn.Conv2d(1, 1, 5)  # 8x8 -> 4x4, jump 1

    def forward(self, x):
        return self.pool(x) + self.conv(x)


class NeedsRealTensors(nn.Module):
    """``.item()`` cannot run on the meta device: the analyzer must fall back to a real forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if x.abs().sum().item() >= 0:
            x = self.conv(x)
        return x


# -- receptive fields ------------------------------------------------------------------------------


def test_three_stacked_3x3_convs_see_7():
    m = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3))
    r = analyze(m, input_size=(1, 16, 16))
    assert [x.receptive_field for x in r.layers] == [1, 3, 5, 7]
    assert [x.jump for x in r.layers] == [1, 1, 1, 1]


def test_grouped_dilated_strided_conv():
    m = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=2, dilation=2, groups=2), nn.Conv2d(8, 8, 3))
    r = analyze(m, input_size=(4, 17, 17), batch_size=3)
    c0, c1 = r.layers[1], r.layers[2]
    # k_eff = 2·(3-1)+1 = 5: r = 1 + 4 = 5, j = 2, start = 0 + (2 - 2)·1 = 0; output (17+4-5)/2+1 = 9
    assert (c0.receptive_field, c0.jump, c0.start_offset) == (5, 2, (0.0, 0.0))
    assert tuple(c0.output_shape) == (8, 9, 9)
    # FLOPs = B·A·(Kh·Kw·Cin/groups)·2 = 3·(8·9·9)·(3·3·4/2)·2
    assert c0.flops == 3 * 8 * 81 * 18 * 2
    assert c0.params == 8 * 2 * 9 + 8
    # the next 3x3 sees 5 + 2·2 = 9 input pixels; its first window starts at 0 + 1·2 = 2
    assert (c1.receptive_field, c1.jump, c1.start_offset) == (9, 2, (2.0, 2.0))


def test_residual_block_receptive_field_and_add_rows():
    r = analyze(TinyResNet(), input_size=(3, 16, 16), batch_size=2)
    # stem 3x3: r 3. block1: conv 3x3 -> 5, conv 3x3 -> 7; shortcut x has r 3; add = max = 7.
    assert row(r, "block1.conv2").receptive_field == 7
    add1 = row(r, "block1.add")
    assert (add1.type, add1.receptive_field, add1.jump) == ("add", 7, 1)
    # block2: conv 3x3/2 p1 -> 7 + 2 = 9 (j 2), conv 3x3 -> 9 + 2·2 = 13; shortcut 1x1/2 -> 7 (j 2).
    assert row(r, "block2.conv2").receptive_field == 13
    assert row(r, "block2.down").receptive_field == 7
    add2 = row(r, "block2.add")
    assert (add2.receptive_field, add2.jump) == (13, 2)
    # the add's cost: B·A, with A = 8·8·8
    assert add2.flops == 2 * 8 * 8 * 8
    assert add2.activation_memory_bytes == 2 * 2 * 512 * 4
    # torch.add(x, 1.0) is a row too. The global pool covers the whole 8x8 map; window arithmetic
    # would give 13 + 7·2 = 27 > 16, and cost-tables.md says r becomes the whole input: 16.
    assert row(r, "add").type == "add"
    pool = row(r, "pool")
    assert (pool.receptive_field, pool.kernel_size, pool.flops) == (16, (8, 8), 2 * 8 * 64)
    assert pool.whole_input and r.final_receptive_field == 13
    # F.relu in the block's own forward is a row (type act) named after the block
    assert row(r, "block1.act").type == "act"


def test_inception_like_concat():
    r = analyze(InceptionLike(), input_size=(4, 10, 10))
    cat = row(r, "cat") if any(x.name == "cat" for x in r.layers) else row(r, "concat")
    # branches: 1x1 -> 1; 1x1,3x3 -> 3; 1x1,5x5 -> 5; pool 3x3 then 1x1 -> 3; concat = max = 5
    assert (cat.type, cat.receptive_field, cat.jump) == ("concat", 5, 1)
    assert tuple(cat.output_shape) == (2 + 4 + 2 + 2, 10, 10)
    assert cat.flops == 0


def test_densenet_like_concat_chain():
    r = analyze(DenseLike(), input_size=(4, 8, 8))
    convs = [x for x in r.layers if x.type == "conv"]
    cats = [x for x in r.layers if x.type == "concat"]
    # each 3x3 sees the concat of everything before: r 3, 5, 7; the final concat takes the max, 7
    assert [c.receptive_field for c in convs] == [3, 5, 7]
    assert len(cats) == 4 and cats[-1].receptive_field == 7
    assert tuple(cats[-1].output_shape) == (4 + 3 * 3, 8, 8)
    assert convs[2].flops == 8 * 8 * 3 * (3 * 3 * 10) * 2


def test_jumps_that_disagree_are_reported_not_guessed():
    r = analyze(MismatchedJumps(), input_size=(1, 8, 8))
    add = row(r, "add")
    assert add.receptive_field is None and add.jump is None
    assert "jumps disagree" in add.detail
    assert any("jumps disagree" in n for n in r.notes)
    assert add.flops == 16  # the cost is still counted


# -- costs and memory --------------------------------------------------------------------------------


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


def test_uneven_adaptive_pool_counts_the_windows_it_uses():
    # 5 -> 3 windows: [0,2), [1,4), [3,5) -> sizes 2, 3, 2 per axis; sum over the 3x3 outputs = 7·7
    r = analyze(nn.Sequential(nn.AdaptiveAvgPool2d(3)), input_size=(1, 5, 5))
    assert r.layers[1].flops == 7 * 7


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


def test_custom_cost_type_modules_of_lenet5():
    r = analyze("lenet5", batch_size=4)
    assert not r.notes  # the paper's LeNet-5 runs on meta (no fallback)
    assert row(r, "s2").type == "pool" and row(r, "s2").flops == 4 * 6 * 14 * 14 * 4
    assert row(r, "c3").type == "conv" and row(r, "c3").params == 1516
    # c3 runs as a dense 5x5 conv over all 6 maps with zeros where Table I has no connection; the
    # analyzer counts the convolution that runs (as FlopCounterMode does): B·A·(5·5·6)·2
    assert row(r, "c3").flops == 4 * (16 * 10 * 10) * (5 * 5 * 6) * 2
    assert row(r, "act1").type == "act" and row(r, "act1").flops == 4 * 6 * 28 * 28
    assert row(r, "output").type == "linear" and row(r, "output").flops == 4 * 2 * 84 * 10
    assert r.totals["params"] == 60_000
    assert [row(r, n).receptive_field for n in ("c1", "s2", "c3", "s4", "c5")] == [5, 6, 14, 16, 32]


def test_depth_folds_sums_and_keeps_outputs():
    m = TinyResNet()
    leaf = analyze(m, input_size=(3, 16, 16), batch_size=2)
    folded = analyze(m, input_size=(3, 16, 16), batch_size=2, depth=1)
    b2 = row(folded, "block2")
    inside = [x for x in leaf.layers if x.name.startswith("block2.")]
    for key in ("params", "flops", "activation_memory_bytes", "parameter_memory_bytes"):
        assert getattr(b2, key) == sum(getattr(x, key) for x in inside)
    assert tuple(b2.output_shape) == (8, 8, 8) and b2.receptive_field == 13
    assert b2.type == "block" and "residual" in b2.detail
    assert folded.totals == leaf.totals


def test_user_module_is_left_untouched():
    m = TinyResNet().train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    analyze(m, input_size=(3, 16, 16), batch_size=64)
    assert m.training and all(x.training for x in m.modules())
    assert all(p.device.type == "cpu" for p in m.parameters())
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_fallback_to_a_real_forward_is_scaled_and_said():
    r1 = analyze(NeedsRealTensors(), input_size=(3, 6, 6), batch_size=1)
    r8 = analyze(NeedsRealTensors(), input_size=(3, 6, 6), batch_size=8)
    assert any("real forward" in n and "batch 8" in n for n in r8.notes)
    assert any("NeedsRealTensors" in n or "item" in n for n in r8.notes)
    conv = row(r8, "conv")
    assert conv.flops == 8 * row(r1, "conv").flops == 8 * (4 * 4 * 4) * 27 * 2
    assert conv.activation_memory_bytes == 2 * 8 * 64 * 4
    assert tuple(conv.output_shape) == (4, 4, 4)


# -- errors ---------------------------------------------------------------------------------------


def test_input_below_the_minimum_names_the_minimum():
    with pytest.raises(InputShapeError, match=r"at least 67x67") as e:
        analyze("alexnet", input_size=(3, 32, 32))
    assert "meta" not in str(e.value) and "dispatch" not in str(e.value)


def test_unknown_model_gets_a_suggestion():
    with pytest.raises(cnnzoo.UnknownModelError, match="Did you mean: .*resnet50"):
        analyze("resnet5O")


def test_failing_module_is_named():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(10, 2))
    with pytest.raises(AnalysisError, match=r"inside module '2' \(Linear\)"):
        analyze(m, input_size=(3, 8, 8))


def test_plain_module_needs_an_input_size():
    with pytest.raises(ConfigError, match="input_size"):
        analyze(nn.Conv2d(1, 1, 3))
    with pytest.raises(ConfigError, match="CxHxW"):
        analyze("lenet5", input_size="one by 32")
    with pytest.raises(ConfigError, match="optimizer"):
        analyze("lenet5", optimizer="rmsprop")


# -- exports ---------------------------------------------------------------------------------------


def test_json_shape_is_the_spec():
    r = analyze("lenet5_relu", batch_size=3)
    d = json.loads(r.to_json())
    assert {"model", "input_size", "batch_size", "dtype", "optimizer", "layers", "totals"} <= set(d)
    assert (d["model"], d["input_size"], d["batch_size"], d["dtype"], d["optimizer"]) == (
        "lenet5_relu",
        [1, 32, 32],
        3,
        "float32",
        "momentum",
    )
    assert set(d["totals"]) == {"params", "flops", "activation_memory_bytes", "parameter_memory_bytes"}
    for layer in d["layers"]:
        assert SPEC_LAYER_KEYS <= set(layer)
        for k in ("activations", "params", "flops", "activation_memory_bytes", "parameter_memory_bytes"):
            assert type(layer[k]) is int
        for k in ("kernel_size", "stride", "padding"):
            assert layer[k] is None or (len(layer[k]) == 2 and all(type(v) is int for v in layer[k]))
    c1 = next(x for x in d["layers"] if x["name"] == "c1")
    assert c1["kernel_size"] == [5, 5] and c1["output_shape"] == [6, 28, 28] and c1["receptive_field"] == 5
    assert d["totals"]["params"] == 61_706


def test_csv_markdown_latex_dataframe():
    import csv
    import io

    r = analyze("lenet5_relu", batch_size=2)
    rows = list(csv.DictReader(io.StringIO(r.to_csv())))
    assert rows[-1]["name"] == "total" and int(rows[-1]["flops"]) == r.totals["flops"]
    assert int(next(x for x in rows if x["name"] == "c3")["params"]) == 2416
    md = r.to_markdown()
    assert "| c3 | conv | 16 | 5 | 1 | 0 | 10×10×16 |" in md and "**total**" in md
    tex = r.to_latex()
    assert "\\begin{tabular}" in tex and "10$\\times$10$\\times$16" in tex and "\\bottomrule" in tex
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(CnnzooError, match="pip install pandas"):
            r.to_dataframe()
    else:
        df = r.to_dataframe()
        assert int(df["flops"].sum()) == r.totals["flops"]


@pytest.mark.parametrize(
    "k,s,p,d,ceil",
    [(3, 2, 1, 1, True), (3, 2, 0, 1, True), (2, 2, 0, 1, False), (3, 1, 1, 1, True), (3, 2, 1, 2, False)],
)
@pytest.mark.parametrize("side", [7, 8, 13])
def test_pool_shapes_match_a_real_forward(k, s, p, d, ceil, side):
    """The tracer computes pooling and conv shapes itself (torch's meta kernels are slow under a
    dispatch mode); they must equal what a real forward gives, ceil_mode included."""
    m = nn.Sequential(
        nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil),
        nn.Conv2d(2, 3, 3, padding=1, stride=2),
        nn.AvgPool2d(2, 1, 1, ceil_mode=ceil),
    )
    shapes = []
    x = torch.zeros(1, 2, side, side)
    for layer in m:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    r = analyze(m, input_size=(2, side, side))
    assert [tuple(x.output_shape) for x in r.layers[1:]] == shapes
    assert not r.notes
