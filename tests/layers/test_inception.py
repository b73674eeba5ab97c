"""The Inception module (Szegedy et al. 2015, Fig. 2), with reductions and naive."""

from __future__ import annotations

import torch
from torch import nn

from cnnzoo.layers.inception import BasicConv2d, Inception, NaiveInception


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
