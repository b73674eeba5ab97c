"""Receptive fields (``cnnzoo.analysis.fields``): the spec's rules, derived by hand in each test.

shared/spec/cost-tables.md: k_eff = d·(k−1)+1; r_out = r_in + (k_eff−1)·j_in; j_out = j_in·s;
start_out = start_in + ((k_eff−1)/2 − p)·j_in; at an add or a concat r is the max over the inputs,
whose jumps must agree.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnzoo.analysis import Field, analyze
from cnnzoo.analysis.fields import columns, merge, shifted, whole, window


def test_window_follows_the_spec_formulas():
    f = Field.of_input(2)
    # 3x3, stride 2, pad 2, dilation 2: k_eff 5, r 5, j 2, start 0 + (2 - 2)·1 = 0
    f = window(f, (3, 3), (2, 2), (2, 2), (2, 2))
    assert f == Field((5, 5), (2, 2), (0.0, 0.0))
    # then 3x1, stride 1, pad 0: r 5 + 2·2 = 9 along H only; start moves by 1·2 along H
    f = window(f, (3, 1), (1, 1), (0, 0), (1, 1))
    assert (f.size, f.jump, f.start) == ((9, 5), (2, 2), (2.0, 0.0))
    assert f.error is None and not f.whole_input


def test_whole_map_and_columns():
    f = whole(window(Field.of_input(2), (3, 3), (2, 2), (1, 1), (1, 1)), (4, 4))
    assert f.whole_input and f.size == (3 + 3 * 2, 3 + 3 * 2)
    assert window(f, (3, 3), (1, 1), (0, 0), (1, 1)) is f  # a whole-input tensor stays so
    c = columns(f)
    assert (c.receptive_field, c.jump, c.whole_input) == (9, 8, True)
    assert columns(None).problem.startswith("receptive field unknown")
    assert columns(Field.unknown("why")).problem == "why"


def test_merge_takes_the_largest_field_and_checks_jumps():
    x = torch.empty(1, 2, 4, 4, device="meta")
    small = Field((3, 3), (1, 1), (0.0, 0.0))
    big = Field((7, 7), (1, 1), (1.0, 1.0))
    assert merge("cat", [(x, small), (x, big)], x) == big
    other_jump = Field((7, 7), (2, 2), (0.0, 0.0))
    bad = merge("add", [(x, small), (x, other_jump)], x)
    assert bad.size is None and "jumps disagree" in bad.error and "1 vs 2" in bad.error
    unknown = Field.unknown("lost")
    assert merge("add", [(x, small), (x, unknown)], x) is unknown


def test_a_broadcast_gate_keeps_the_maps_field():
    """An SE gate (B, C, 1, 1) sees the whole map; the product keeps the field of the map it scales."""
    x = torch.empty(1, 2, 4, 4, device="meta")
    gate = torch.empty(1, 2, 1, 1, device="meta")
    local = Field((3, 3), (1, 1), (0.0, 0.0))
    pooled = whole(local, (4, 4))
    assert merge("mul", [(x, local), (gate, pooled)], x) == local


def test_shifted_moves_the_start_and_scales_the_jump():
    f = Field((3, 3), (2, 2), (1.0, 1.0))
    assert shifted(f, 1, 4, step=3) == Field((3, 3), (2, 6), (1.0, 9.0))


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


def test_residual_block_receptive_field_and_add_rows(tiny_resnet, row):
    r = analyze(tiny_resnet, input_size=(3, 16, 16), batch_size=2)
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


def test_inception_like_concat(row):
    r = analyze(InceptionLike(), input_size=(4, 10, 10))
    cat = row(r, "concat")
    # branches: 1x1 -> 1; 1x1,3x3 -> 3; 1x1,5x5 -> 5; pool 3x3 then 1x1 -> 3; concat = max = 5
    assert (cat.type, cat.receptive_field, cat.jump) == ("concat", 5, 1)
    assert tuple(cat.output_shape) == (2 + 4 + 2 + 2, 10, 10)
    assert cat.flops == 0


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


def test_densenet_like_concat_chain():
    r = analyze(DenseLike(), input_size=(4, 8, 8))
    convs = [x for x in r.layers if x.type == "conv"]
    cats = [x for x in r.layers if x.type == "concat"]
    # each 3x3 sees the concat of everything before: r 3, 5, 7; the final concat takes the max, 7
    assert [c.receptive_field for c in convs] == [3, 5, 7]
    assert len(cats) == 4 and cats[-1].receptive_field == 7
    assert tuple(cats[-1].output_shape) == (4 + 3 * 3, 8, 8)
    assert convs[2].flops == 8 * 8 * 3 * (3 * 3 * 10) * 2


class MismatchedJumps(nn.Module):
    """Two branches with the same 4×4 output but different jumps (2 and 1): the add cannot be told."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2)  # 8x8 -> 4x4, jump 2
        self.conv = nn.Conv2d(1, 1, 5)  # 8x8 -> 4x4, jump 1

    def forward(self, x):
        return self.pool(x) + self.conv(x)


def test_jumps_that_disagree_are_reported_not_guessed(row):
    r = analyze(MismatchedJumps(), input_size=(1, 8, 8))
    add = row(r, "add")
    assert add.receptive_field is None and add.jump is None
    assert "jumps disagree" in add.detail
    assert any("jumps disagree" in n for n in r.notes)
    assert add.flops == 16  # the cost is still counted


def test_alexnet_receptive_fields():
    """Hand-derived: conv1 11×11/4 -> 11; pool1 3×3/2 -> 11 + 2·4 = 19; conv2 5×5 -> 19 + 4·8 = 51."""
    r = analyze("alexnet", input_size=(3, 227, 227))
    convs = [row for row in r.layers if row.type == "conv"]
    pools = [row for row in r.layers if row.type == "pool"]
    assert (convs[0].receptive_field, convs[0].jump) == (11, 4)
    assert (pools[0].receptive_field, pools[0].jump) == (19, 8)
    assert (convs[1].receptive_field, convs[1].jump) == (51, 8)
    assert r.final_receptive_field == 195


def test_resnet_final_receptive_field_through_the_adds():
    """ResNet-50's last feature map sees 427 pixels (the well-known figure); torchscan prints '--'."""
    r = analyze("resnet50", input_size=(3, 224, 224))
    adds = [row for row in r.layers if row.type == "add"]
    assert len(adds) == 16  # one residual add per bottleneck block: 3 + 4 + 6 + 3
    assert all(a.receptive_field is not None for a in adds)
    assert r.final_receptive_field == 427
