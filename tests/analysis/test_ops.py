"""The op table (``cnnzoo.analysis.ops``): one rule per op, shapes equal to torch's, costs by the spec."""

from __future__ import annotations

import collections

import pytest
import torch
from torch import nn

from cnnzoo.analysis import ROW_TYPES, analyze, ops
from cnnzoo.analysis.ops import OP_RULES, OpCost, rule_of

aten = torch.ops.aten


def test_every_op_is_named_once_in_the_table():
    names = collections.Counter(n for line, _ in ops._TABLE for n in line.split())
    assert [n for n, c in names.items() if c > 1] == []
    # the families a CNN is made of resolve on this torch build
    for name in ("convolution", "max_pool2d_with_indices", "relu_", "native_batch_norm", "cat", "split"):
        assert getattr(aten, name) in OP_RULES, name


def test_every_row_type_the_table_can_give_is_a_known_row_type():
    meta = torch.empty(2, 4, 6, 6, device="meta")
    flat = torch.empty(2, 144, device="meta")
    for rule in set(OP_RULES.values()) | {ops.VIEW, ops.ELEMENTWISE_OP}:
        if isinstance(rule.row, str):
            assert rule.row in ROW_TYPES, rule
    assert ops.view_or_flatten(aten.view, meta, flat, ops.NO_COST) == "flatten"
    shuffled = torch.empty(2, 2, 2, 6, 6, device="meta")
    assert ops.view_or_flatten(aten.view, shuffled, meta, ops.NO_COST) == "view"
    assert {ops.linear_or_matmul(aten.mm, flat, t, ops.NO_COST) for t in (flat, meta)} == {"linear", "matmul"}
    assert ops.pool_or_reduction(aten.mean, meta, flat, OpCost(pool=1)) == "pool"


def test_ops_outside_the_table():
    # a view op the table does not name is a view; an op torch tags pointwise is elementwise;
    # anything else has no cost rule and is reported, not counted as a silent zero
    assert rule_of(aten.permute.default) is ops.VIEW
    assert rule_of(aten.clamp.default) is ops.ELEMENTWISE_OP
    assert rule_of(aten._fft_r2c.default) is ops.UNSUPPORTED and not ops.UNSUPPORTED.supported
    assert all(rule.supported for rule in OP_RULES.values())
    # a product only torch's flop_registry knows is a matmul row costed by torch's formula
    sdpa = rule_of(aten._scaled_dot_product_flash_attention.default)
    assert sdpa.row is ops.linear_or_matmul and sdpa.supported
    assert rule_of(aten.split.Tensor).every_output and rule_of(aten.unbind.int).every_output
    assert not rule_of(aten.native_batch_norm.default).every_output  # its statistics are not followed


def _real(func, *args):
    """Torch's own meta kernel, outside any dispatch mode."""
    out = func(*args)
    return [tuple(t.shape) for t in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize(
    "func,args",
    [
        (
            aten.convolution.default,
            ((2, 4, 9, 9), (6, 2, 3, 3), None, [2, 2], [1, 1], [1, 1], False, [0, 0], 2),
        ),
        (aten.native_batch_norm.default, ((2, 4, 5, 5), (4,), (4,), (4,), (4,), False, 0.1, 1e-5)),
        (aten.add.Tensor, ((2, 4, 5, 5), (1, 4, 1, 1))),
        (aten.mul.Tensor, ((2, 4, 5, 5), 0.5)),
        (aten.relu.default, ((2, 4, 5, 5),)),
        (aten.relu_.default, ((2, 4, 5, 5),)),
        (aten.max_pool2d_with_indices.default, ((1, 2, 13, 13), [3, 3], [2, 2], [1, 1], [1, 1], True)),
        (aten.avg_pool2d.default, ((1, 2, 8, 8), [2, 2], [1, 1], [1, 1], True)),
    ],
)
def test_shape_rules_equal_torchs_meta_kernels(func, args):
    real = tuple(torch.empty(a, device="meta") if isinstance(a, tuple) and a else a for a in args)
    mine = OP_RULES[func._overloadpacket].shape(real, {})
    mine = mine if isinstance(mine, tuple) else (mine,)
    assert [tuple(t.shape) for t in mine] == _real(func, *real)
    assert all(t.device.type == "meta" for t in mine)


def test_shape_rules_step_aside_for_what_they_do_not_cover():
    x = torch.empty(1, 2, 5, 5, device="meta")
    w = torch.empty(3, 2, 3, 3, device="meta")
    transposed = (x, w, None, [1, 1], [0, 0], [1, 1], True, [0, 0], 1)
    assert ops.conv_shape(transposed, {}) is None  # torch's own kernel decides
    assert ops.binary_shape((x, torch.empty(1, 2, 5, 5, device="meta", dtype=torch.float16)), {}) is None


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


def test_uneven_adaptive_pool_counts_the_windows_it_uses():
    # 5 -> 3 windows: [0,2), [1,4), [3,5) -> sizes 2, 3, 2 per axis; sum over the 3x3 outputs = 7·7
    r = analyze(nn.Sequential(nn.AdaptiveAvgPool2d(3)), input_size=(1, 5, 5))
    assert r.layers[1].flops == 7 * 7
    assert r.layers[1].jump is None and "uneven" in r.layers[1].detail


def test_a_spatial_mean_is_a_global_pool_row():
    class MeanPool(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 3, 3)

        def forward(self, x):
            return self.conv(x).mean((2, 3))

    r = analyze(MeanPool(), input_size=(1, 6, 6), batch_size=2)
    pool = r.layers[-1]
    assert (pool.name, pool.type, pool.kernel_size, pool.flops) == ("pool", "pool", (4, 4), 2 * 3 * 16)
    assert pool.whole_input and pool.receptive_field == 6  # r becomes the whole input
