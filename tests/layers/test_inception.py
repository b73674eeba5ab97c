"""The Inception module (Szegedy et al. 2015, Fig. 2), with reductions and naive; the factorised
modules of the later Inception networks as data (BlockSpec, InceptionBlock)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo.layers.inception import (
    BasicConv2d,
    BlockSpec,
    Inception,
    InceptionBlock,
    NaiveInception,
    ParallelConvs,
    avg_pool,
    conv,
    max_pool,
    out_side,
    split,
)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_inception_3a_widths_shape_and_count():
    m = Inception(192, 64, 96, 128, 16, 32, 32)  # Table 1, inception (3a)
    x = torch.randn(2, 192, 28, 28)
    y = m(x)
    assert y.shape == (2, 256, 28, 28) and m.out_channels == 256
    assert tuple(m.widths) == (64, 96, 128, 16, 32, 32)
    weights = 192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32
    biases = 64 + 96 + 128 + 16 + 32 + 32
    assert n_params(m) == weights + biases == 163_696
    # the output is the four branches, concatenated in order: 1x1, 3x3, 5x5, pool proj
    with torch.no_grad():
        parts = [m.branch1(x), m.branch2(x), m.branch3(x), m.branch4(x)]
    assert [p.shape[1] for p in parts] == [64, 128, 32, 32]
    assert torch.equal(y, torch.cat(parts, 1))
    assert torch.all(y >= 0)  # every branch ends in a ReLU


def test_inception_torchvision_options():
    m = Inception(192, 64, 96, 128, 16, 32, 32, norm=True, kernel_5x5=3)
    assert m.branch3[1].conv.kernel_size == (3, 3) and m.branch3[1].conv.padding == (1, 1)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert all(c.bias is None for c in convs)
    bns = [b for b in m.modules() if isinstance(b, nn.BatchNorm2d)]
    assert len(bns) == 6 and all(b.eps == 0.001 for b in bns)
    assert m(torch.randn(2, 192, 9, 9)).shape == (2, 256, 9, 9)


def test_naive_module_passes_the_pool_through():
    m = NaiveInception(256, 128, 192, 96)  # the lectures' example: 28x28x256 in
    x = torch.randn(2, 256, 28, 28)
    y = m(x)
    assert y.shape == (2, 128 + 192 + 96 + 256, 28, 28) == (2, 672, 28, 28)
    assert torch.equal(y[:, -256:], nn.functional.max_pool2d(x, 3, 1, 1))
    assert n_params(m) == 256 * 128 + 9 * 256 * 192 + 25 * 256 * 96 + 128 + 192 + 96
    assert m.widths.n3x3_reduce is None and m.widths.pool_proj is None
    # with reductions (64-wide 1x1s in front of 3x3/5x5, pool proj 64) the same widths cost far less
    reduced = Inception(256, 128, 64, 192, 64, 96, 64)
    assert n_params(m) > 3 * n_params(reduced)


def test_basic_conv2d():
    plain = BasicConv2d(3, 8, 3, padding=1)
    assert plain.bn is None and plain.conv.bias is not None
    bn = BasicConv2d(3, 8, 3, padding=1, norm=True)
    assert bn.conv.bias is None and bn.bn.eps == 0.001
    y = plain(torch.randn(2, 3, 5, 5))
    assert y.shape == (2, 8, 5, 5) and torch.all(y >= 0)


# -- the factorised modules as data (BN-Inception, Inception v3/v4, Inception-ResNet) ----------------


def test_conv_helper_paddings():
    assert conv(64, 3) == (64, (3, 3), 1, (1, 1))  # "same": k // 2
    assert conv(64, (1, 7)).padding == (0, 3) and conv(64, (7, 1)).padding == (3, 0)
    assert conv(384, 3, 2, "valid").padding == (0, 0)
    assert conv(8, 5, padding=1).padding == (1, 1)


@pytest.mark.parametrize("side", [7, 8, 15, 16, 35])
@pytest.mark.parametrize(
    "spec",
    [
        conv(4, 3, 2, "valid"),
        conv(4, 3, 2),
        conv(4, (1, 7)),
        max_pool(),
        max_pool(3, 2, 1),
        max_pool(3, 2, ceil_mode=True),
        avg_pool(),
    ],
    ids=str,
)
def test_specs_predict_the_output_side_of_the_layers_they_build(spec, side):
    layer = spec.build(3)
    y = layer(torch.randn(1, 3, side, side))
    assert spec.out_hw((side, side)) == tuple(y.shape[2:])
    assert spec.out_channels(3) == y.shape[1]


def test_out_side_follows_pytorchs_ceil_mode_rule():
    for side in range(1, 12):
        for k, s, p in ((3, 2, 0), (3, 2, 1), (2, 2, 0)):
            try:
                want = nn.MaxPool2d(k, s, p, ceil_mode=True)(torch.randn(1, 1, side, side)).shape[-1]
            except RuntimeError:
                want = 0
            assert out_side(side, k, s, p, ceil=True) == want, (side, k, s, p)


def test_block_concatenates_branches_in_order_and_pool_branches_pass_through():
    spec = BlockSpec(
        ((conv(8, 3, 2, "valid"),), (conv(4), conv(6, 3), conv(5, 3, 2, "valid")), (max_pool(),))
    )
    block = InceptionBlock(16, spec)
    x = torch.randn(2, 16, 17, 17)
    y = block(x)
    assert block.out_channels == spec.out_channels(16) == 8 + 5 + 16 and y.shape == (2, 29, 8, 8)
    assert spec.out_hw((17, 17)) == (8, 8) and spec.stride == 2
    with torch.no_grad():
        parts = [block.branch0(x), block.branch1(x), block.branch2(x)]
    assert torch.equal(y, torch.cat(parts, 1))
    assert torch.equal(parts[2], torch.nn.functional.max_pool2d(x, 3, 2))  # the pool passes x through
    assert [type(m) for m in block.branch1] == [BasicConv2d] * 3


def test_branches_that_disagree_in_size_make_an_empty_map():
    spec = BlockSpec(((conv(4, 3, 2),), (max_pool(),)))  # padded conv vs unpadded pool
    assert spec.out_hw((16, 16)) == (0, 0) and spec.out_hw((15, 15)) == (0, 0)
    assert BlockSpec(((conv(4, 3, 2),), (max_pool(3, 2, 1),))).out_hw((15, 15)) == (8, 8)


def test_split_end_of_a_branch():
    fork = split(conv(3, (1, 3)), conv(5, (3, 1)))
    m = fork.build(4)
    assert isinstance(m, ParallelConvs) and [n for n, _ in m.named_children()] == ["a", "b"]
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(m(x), torch.cat([m.a(x), m.b(x)], 1))
    assert fork.out_channels(4) == 8 and fork.out_hw((8, 8)) == (8, 8)
    assert m.a.conv.kernel_size == (1, 3) and m.b.conv.padding == (1, 0)


def test_residual_block_is_scaled_projection_plus_input_then_relu():
    spec = BlockSpec(((conv(4),), (conv(4), conv(6, 3))), residual_scale=0.17)
    block = InceptionBlock(12, spec).eval()
    x = torch.randn(2, 12, 5, 5)
    with torch.no_grad():
        cat = torch.cat([block.branch0(x), block.branch1(x)], 1)
        want = torch.relu(block.proj(cat) * 0.17 + x)
        assert torch.allclose(block(x), want)
    assert block.out_channels == 12 and block.proj.in_channels == 10 and block.proj.bias is not None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in [block.proj])  # no BN on the residual path
    last = InceptionBlock(12, spec._replace(act=False))
    assert last.act is None and (last(x) < 0).any()


def test_block_cost_details():
    spec = BlockSpec(
        ((conv(64),), (avg_pool(), conv(32)), (conv(48), split(conv(8, (1, 3)), conv(8, (3, 1)))))
    )
    assert InceptionBlock(16, spec).cost_details() == {
        "branch0": "1×1 64",
        "branch1": "avg 3×3 → 1×1 32",
        "branch2": "1×1 48 → (1×3 8 | 3×1 8)",
    }
    res = BlockSpec(((conv(4, 3, 2, "valid"),), (max_pool(),)), residual_scale=0.1)
    assert InceptionBlock(4, res).cost_details() == {
        "branch0": "3×3/2 4", "branch1": "max 3×3/2", "residual": True, "scale": "0.1"
    }  # fmt: skip
    table = BlockSpec(((conv(4),),), details=(("#1×1", 4), ("pool proj", None)))
    assert InceptionBlock(4, table).cost_details() == {"#1×1": 4, "pool proj": None}


def test_avg_pool_padding_convention():
    x = torch.ones(1, 1, 4, 4)
    excl = avg_pool().build(1)(x)
    incl = avg_pool(count_include_pad=True).build(1)(x)
    assert torch.all(excl == 1)  # TensorFlow's SAME pooling: the padding is not averaged in
    assert incl[0, 0, 0, 0].item() == pytest.approx(4 / 9)  # torchvision's Inception v3
