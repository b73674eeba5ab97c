"""The tracer (``cnnzoo.analysis.tracer``): every op seen, every output of a split followed.

Expected numbers are derived by hand in each test from shared/spec/cost-tables.md (B = batch,
A = #activations of the row's output, per sample).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo.analysis import AnalysisError, analyze
from cnnzoo.analysis.tracer import trace

# -- split, chunk, unbind, tensor_split: every output is followed -------------------------------------


class ChunkBranches(nn.Module):
    """``chunk`` the channels in two; the second half gets the larger kernel; concatenate."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.left = nn.Conv2d(2, 2, 3, padding=1)
        self.right = nn.Conv2d(2, 2, 7, padding=3)

    def forward(self, x):
        a, b = self.stem(x).chunk(2, 1)
        return torch.cat([self.left(a), self.right(b)], 1)


def test_chunk_follows_both_halves_and_the_concat_takes_the_larger_field(row):
    r = analyze(ChunkBranches(), input_size=(1, 12, 12), batch_size=2)
    assert [x.name for x in r.layers] == ["input", "stem", "view", "view_1", "left", "right", "concat"]
    # each half is a view row of its own: 2 of the 4 channels, no FLOPs, no memory (it aliases)
    for half in (row(r, "view"), row(r, "view_1")):
        assert (half.type, tuple(half.output_shape), half.receptive_field, half.jump) == (
            "view",
            (2, 12, 12),
            3,
            1,
        )
        assert half.flops == 0 and half.activation_memory_bytes == 0
    # stem 3x3: r 3; left 3x3: 3 + 2 = 5; right 7x7 on the second half: 3 + 6 = 9
    assert row(r, "left").receptive_field == 5
    right = row(r, "right")
    assert (right.receptive_field, right.jump) == (9, 1)
    assert right.flops == 2 * (2 * 12 * 12) * (7 * 7 * 2) * 2
    cat = row(r, "concat")
    assert (cat.receptive_field, cat.jump, tuple(cat.output_shape)) == (9, 1, (4, 12, 12))
    assert not r.notes


class SplitSizes(nn.Module):
    """``torch.split`` with sizes [1, 3] over the channels, a branch each, then an add."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(1, 4, 1)
        self.conv_b = nn.Conv2d(3, 4, 5, padding=2)

    def forward(self, x):
        a, b = torch.split(x, [1, 3], 1)
        return self.conv_a(a) + self.conv_b(b)


def test_split_with_sizes_gives_each_output_its_shape_and_field(row):
    r = analyze(SplitSizes(), input_size=(4, 6, 6), batch_size=3)
    assert tuple(row(r, "view").output_shape) == (1, 6, 6)
    assert tuple(row(r, "view_1").output_shape) == (3, 6, 6)
    assert row(r, "conv_b").flops == 3 * (4 * 6 * 6) * (5 * 5 * 3) * 2
    add = row(r, "add")
    assert (add.receptive_field, add.flops) == (5, 3 * 4 * 6 * 6)


class SpatialSplit(nn.Module):
    """A split along the height: the second part's first unit starts 4 rows down."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.conv_b = nn.Conv2d(2, 2, 3)

    def forward(self, x):
        top, bottom = torch.split(self.conv(x), [4, 8], dim=2)
        return top, self.conv_b(bottom)


def test_a_spatial_split_shifts_each_outputs_window(row):
    r = analyze(SpatialSplit(), input_size=(1, 12, 12))
    top, bottom = row(r, "view"), row(r, "view_1")
    assert (tuple(top.output_shape), top.start_offset) == ((2, 4, 12), (0.0, 0.0))
    assert (tuple(bottom.output_shape), bottom.start_offset) == ((2, 8, 12), (4.0, 0.0))
    # conv_b 3x3, pad 0 on the bottom part: r 3 + 2 = 5; its first window's centre 1 pixel further in
    conv_b = row(r, "conv_b")
    assert (conv_b.receptive_field, conv_b.start_offset) == (5, (5.0, 1.0))


class Unbind(nn.Module):
    """Two channel groups as a new dim, ``unbind`` into them; the second gets a 5x5 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 5, padding=2)

    def forward(self, x):
        b, c, h, w = x.shape
        first, second = x.view(b, 2, c // 2, h, w).unbind(1)
        return first + self.conv(second)


def test_unbind_follows_every_output(row):
    r = analyze(Unbind(), input_size=(6, 8, 8), batch_size=2)
    assert [x.name for x in r.layers] == ["input", "view", "view_1", "view_2", "conv", "add"]
    assert tuple(row(r, "view").output_shape) == (2, 3, 8, 8)
    for name in ("view_1", "view_2"):
        part = row(r, name)
        assert (tuple(part.output_shape), part.receptive_field, part.activation_memory_bytes) == (
            (3, 8, 8),
            1,
            0,
        )
    assert row(r, "conv").receptive_field == 5
    add = row(r, "add")
    assert (add.receptive_field, add.flops) == (5, 2 * 3 * 8 * 8)


class TensorSplit(nn.Module):
    """``tensor_split`` into three channel groups (one ``slice`` each), 1x1, 3x3 and 5x5 convs."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(2, 2, k, padding=k // 2) for k in (1, 3, 5))

    def forward(self, x):
        parts = torch.tensor_split(x, 3, dim=1)
        return torch.cat([conv(p) for conv, p in zip(self.convs, parts, strict=True)], 1)


def test_tensor_split_makes_a_view_row_per_output(row):
    r = analyze(TensorSplit(), input_size=(6, 7, 7))
    views = [x for x in r.layers if x.type == "view"]
    assert [tuple(v.output_shape) for v in views] == [(2, 7, 7)] * 3
    assert all(v.activation_memory_bytes == 0 and v.receptive_field == 1 for v in views)
    assert [row(r, f"convs.{i}").receptive_field for i in range(3)] == [1, 3, 5]
    assert row(r, "concat").receptive_field == 5


# -- ShuffleNet v2's unit and an SE gate, with exact costs ---------------------------------------------


class ShuffleUnit(nn.Module):
    """ShuffleNet v2's basic unit (Ma et al., ECCV 2018, Fig. 3c): channel split, 1x1 → depthwise
    3x3 → 1x1 on one half, concat with the other half, channel shuffle (reshape, transpose, reshape)."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        h = c // 2
        self.branch2 = nn.Sequential(
            nn.Conv2d(h, h, 1, bias=False),
            nn.BatchNorm2d(h),
            nn.ReLU(inplace=True),
            nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False),
            nn.BatchNorm2d(h),
            nn.Conv2d(h, h, 1, bias=False),
            nn.BatchNorm2d(h),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        out = torch.cat((x1, self.branch2(x2)), dim=1)
        b, c, h, w = out.shape
        return out.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


class ShuffleNetLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.stage2 = ShuffleUnit(8)

    def forward(self, x):
        return self.stage2(self.conv1(x))


def test_shufflenet_v2_unit_costs_and_receptive_fields(row):
    B = 2
    r = analyze(ShuffleNetLike(), input_size=(3, 16, 16), batch_size=B)
    names = [x.name for x in r.layers]
    unit = [n for n in names if n.startswith("stage2.")]
    assert unit == [
        "stage2.view",  # x1
        "stage2.view_1",  # x2
        *(f"stage2.branch2.{i}" for i in range(8)),
        "stage2.concat",
        "stage2.view_2",  # (B, 2, 4, H, W)
        "stage2.view_3",  # transpose
        "stage2.copy",  # contiguous
        "stage2.view_4",  # (B, 8, H, W)
    ]
    # conv1 3x3/2 p1 on 16x16: 8x8, r 3, j 2; the branch: 1x1 (3), depthwise 3x3 (3 + 2·2 = 7), 1x1 (7)
    assert (row(r, "stage2.view_1").receptive_field, row(r, "stage2.view_1").jump) == (3, 2)
    assert row(r, "stage2.branch2.3").receptive_field == 7
    assert (row(r, "stage2.concat").receptive_field, row(r, "stage2.concat").jump) == (7, 2)
    # the shuffle keeps the field, costs no FLOPs, and its copy holds memory (the reshapes alias)
    shuffle = [row(r, n) for n in unit[-4:]]
    assert all((x.receptive_field, x.jump, x.flops) == (7, 2, 0) for x in shuffle)
    assert [x.activation_memory_bytes for x in shuffle] == [0, 0, 2 * B * (8 * 8 * 8) * 4, 0]
    assert tuple(shuffle[-1].output_shape) == (8, 8, 8) and shuffle[-1].type == "view"
    # FLOPs, A = 4·8·8 = 256 per half: 1x1 B·A·4·2; depthwise B·A·(9·4/4)·2; BN 2·B·A; ReLU B·A
    a = 4 * 8 * 8
    branch = [row(r, f"stage2.branch2.{i}").flops for i in range(8)]
    assert branch == [
        B * a * 4 * 2,
        2 * B * a,
        B * a,
        B * a * 9 * 2,
        2 * B * a,
        B * a * 4 * 2,
        2 * B * a,
        B * a,
    ]
    assert sum(x.flops for x in r.layers if x.name.startswith("stage2.")) == 21_504
    assert row(r, "conv1").flops == B * (8 * 8 * 8) * (3 * 3 * 3) * 2
    assert not r.notes


class ChannelShuffle(nn.Module):
    """A shuffle as one leaf module that states its kind (as cnnzoo's layers do)."""

    cost_type = "shuffle"

    def forward(self, x):
        b, c, h, w = x.shape
        return x.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


def test_a_shuffle_module_is_one_row_a_copy_with_no_flops(row):
    m = nn.Sequential(nn.Conv2d(1, 4, 3), ChannelShuffle())
    r = analyze(m, input_size=(1, 6, 6), batch_size=3)
    sh = row(r, "1")
    assert (sh.type, sh.flops, sh.receptive_field, tuple(sh.output_shape)) == ("shuffle", 0, 3, (4, 4, 4))
    assert sh.activation_memory_bytes == 2 * 3 * (4 * 4 * 4) * 4


class SqueezeExcite(nn.Module):
    """Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018: global pool, two 1x1 convs, a
    sigmoid gate, and the channel-wise multiply."""

    def __init__(self, c: int = 8, r: int = 4) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(c // r, c, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class SENet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.se = SqueezeExcite(8, 4)
        self.conv2 = nn.Conv2d(8, 8, 3)

    def forward(self, x):
        return self.conv2(self.se(self.conv1(x)))


def test_se_gate_costs_and_keeps_the_receptive_field(row):
    B = 2
    r = analyze(SENet(), input_size=(3, 10, 10), batch_size=B)
    a = 8 * 10 * 10
    expected = {
        "se.pool": B * 8 * (10 * 10),  # B·A_out·Kh·Kw, the window being the whole 10x10 map
        "se.fc1": B * 2 * (1 * 1 * 8) * 2,
        "se.act": B * 2,
        "se.fc2": B * 8 * (1 * 1 * 2) * 2,
        "se.gate": B * 8,
        "se.mul": B * a,  # the channel-wise multiply: B·A
    }
    assert {n: row(r, n).flops for n in expected} == expected
    mul = row(r, "se.mul")
    assert (mul.type, tuple(mul.output_shape), mul.activation_memory_bytes) == (
        "mul",
        (8, 10, 10),
        2 * B * a * 4,
    )
    # the gate sees the whole map, but the product keeps the field of the map it scales: 3, then 5
    assert (mul.receptive_field, mul.jump, mul.whole_input) == (3, 1, False)
    assert row(r, "conv2").receptive_field == 5
    assert not r.notes


def test_an_se_block_that_states_its_kind_folds_as_se(row):
    class SE(SqueezeExcite):
        cost_type = "se"

    m = SENet()
    m.se = SE(8, 4)
    leaf = analyze(m, input_size=(3, 10, 10), batch_size=2)
    folded = analyze(m, input_size=(3, 10, 10), batch_size=2, depth=1)
    se = row(folded, "se")
    assert se.type == "se" and se.flops == sum(x.flops for x in leaf.layers if x.name.startswith("se."))
    assert se.receptive_field == 3


# -- the trace itself ----------------------------------------------------------------------------------


def test_leaf_modules_of_other_libraries_are_typed_by_class_and_recorded():
    class Swish(nn.Module):  # states no cost_type
        def forward(self, x):
            return x * torch.sigmoid(x)

    m = nn.Sequential(nn.Conv2d(1, 2, 3), Swish())
    tracer = trace(m, (1, 1, 8, 8))
    assert [(raw.name, raw.kind) for raw in tracer.rows] == [("0", "conv"), ("1", "swish")]
    assert tracer.class_typed == ["1"]
    # a leaf kind with no rule of its own: the aten ops inside it (sigmoid + multiply, B·A each)
    assert tracer.rows[1].other_flops == 2 * (2 * 6 * 6)


def test_module_called_twice_gets_two_rows():
    conv = nn.Conv2d(2, 2, 3, padding=1)

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = conv

        def forward(self, x):
            return self.conv(self.conv(x))

    tracer = trace(Twice(), (1, 2, 5, 5))
    assert [raw.name for raw in tracer.rows] == ["conv", "conv#2"]
    assert [raw.params for raw in tracer.rows] == [2 * 2 * 9 + 2, 0]  # shared weights count once
    assert tracer.fields[id(tracer.rows[1].out)].size == (5, 5)


def test_failing_module_is_named():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(10, 2))
    with pytest.raises(AnalysisError, match=r"inside module '2' \(Linear\)"):
        analyze(m, input_size=(3, 8, 8))


class NeedsRealTensors(nn.Module):
    """``.item()`` cannot run on the meta device: the analyzer must fall back to a real forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if x.abs().sum().item() >= 0:
            x = self.conv(x)
        return x


def test_fallback_to_a_real_forward_is_scaled_and_said(row):
    r1 = analyze(NeedsRealTensors(), input_size=(3, 6, 6), batch_size=1)
    r8 = analyze(NeedsRealTensors(), input_size=(3, 6, 6), batch_size=8)
    assert any("real forward" in n and "batch 8" in n for n in r8.notes)
    assert any("NeedsRealTensors" in n or "item" in n for n in r8.notes)
    conv = row(r8, "conv")
    assert conv.flops == 8 * row(r1, "conv").flops == 8 * (4 * 4 * 4) * 27 * 2
    assert conv.activation_memory_bytes == 2 * 8 * 64 * 4
    assert tuple(conv.output_shape) == (4, 4, 4)
