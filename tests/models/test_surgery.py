"""Block surgery at test time (Veit et al. 2016, §4): deletion keeps the shortcut, swaps keep the weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnzoo import create_model
from cnnzoo.errors import CnnzooError
from cnnzoo.models.surgery import (
    DeletedBlock,
    SurgeryError,
    block_names,
    blocks,
    deletable_blocks,
    delete_blocks,
    downsampling_blocks,
    random_swaps,
    reorder_blocks,
    swappable_pairs,
)


def _net(name: str):
    torch.manual_seed(0)
    net = create_model(name, num_classes=10, in_chans=1, widths=(4, 8, 16), stem_width=4).eval()
    for m in net.modules():  # non-trivial BN statistics, so that every block changes its input
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net


def _forward(net, x, replace: dict[int, object] | None = None, order: list[int] | None = None):
    """The net by hand: stem, then its blocks in ``order`` (block i replaced by ``replace[i]``), head."""
    replace = replace or {}
    bl = blocks(net)
    h = net.relu(net.bn1(net.conv1(x)))
    for i in order if order is not None else range(len(bl)):
        h = replace[i](h) if i in replace else bl[i](h)
    return net.forward_head(h)


@pytest.fixture
def x():
    return torch.randn(3, 1, 16, 16)


def test_block_numbering_and_downsampling_blocks():
    net = _net("resnet20")
    assert block_names(net)[:4] == ["layer1.0", "layer1.1", "layer1.2", "layer2.0"]
    assert len(blocks(net)) == 9 and downsampling_blocks(net) == [3, 6]
    assert deletable_blocks(net) == list(range(9))  # a residual block keeps its shortcut
    assert deletable_blocks(_net("plain20")) == [0, 1, 2, 4, 5, 7, 8]


@torch.no_grad()
def test_deleting_an_identity_block_skips_it_exactly(x):
    net = _net("resnet20")
    cut = delete_blocks(net, [4])
    assert isinstance(cut.layer2[1], DeletedBlock)
    torch.testing.assert_close(cut(x), _forward(net, x, {4: lambda h: h}), rtol=0, atol=0)
    assert not torch.allclose(cut(x), net(x))


@torch.no_grad()
def test_deleting_a_downsampling_block_keeps_its_shortcut(x):
    net = _net("resnet20")
    sc = net.layer2[0].downsample  # option A: stride-2 subsample, zero channels
    cut = delete_blocks(net, [3])
    torch.testing.assert_close(cut(x), _forward(net, x, {3: lambda h: F.relu(sc(h))}), rtol=0, atol=0)
    assert cut(x).shape == net(x).shape


@torch.no_grad()
def test_deletion_works_on_a_copy(x):
    net = _net("resnet20")
    before = net(x)
    delete_blocks(net, [0, 1, 5])
    assert not any(isinstance(b, DeletedBlock) for b in blocks(net))
    torch.testing.assert_close(net(x), before, rtol=0, atol=0)


@torch.no_grad()
def test_deleting_a_plain_block_is_the_identity(x):
    net = _net("plain20")
    cut = delete_blocks(net, [1, 7])
    torch.testing.assert_close(cut(x), _forward(net, x, {1: lambda h: h, 7: lambda h: h}), rtol=0, atol=0)


def test_a_plain_downsampling_block_cannot_be_deleted():
    net = _net("plain20")
    with pytest.raises(SurgeryError) as err:
        delete_blocks(net, [2, 3])
    msg = str(err.value)
    assert isinstance(err.value, CnnzooError) and isinstance(err.value, ValueError)
    assert "\n" not in msg and "block 3 (layer2.0)" in msg and "no shortcut" in msg and "0-2, 4-5, 7-8" in msg
    with pytest.raises(SurgeryError, match="out of range: this network has blocks 0..8"):
        delete_blocks(net, [9])


@torch.no_grad()
def test_reordering_swaps_blocks_and_keeps_the_parameters(x):
    net = _net("resnet20")
    swapped = reorder_blocks(net, [(0, 2), (4, 5)])
    count = sum(p.numel() for p in net.parameters())
    assert sum(p.numel() for p in swapped.parameters()) == count
    order = [2, 1, 0, 3, 5, 4, 6, 7, 8]
    torch.testing.assert_close(swapped(x), _forward(net, x, order=order), rtol=0, atol=0)
    assert not torch.allclose(swapped(x), net(x))
    assert block_names(net) == block_names(swapped)


def test_only_blocks_of_one_shape_swap():
    import random

    net = _net("resnet20")
    # stage 1: three 4->4 blocks (3 pairs); stages 2, 3: two same-shape blocks each after the downsampler
    assert swappable_pairs(net) == [(0, 1), (0, 2), (1, 2), (4, 5), (7, 8)]
    with pytest.raises(SurgeryError, match="cannot swap blocks 2 .* and 3"):
        reorder_blocks(net, [(2, 3)])
    pairs = random_swaps(net, 3, random.Random(0))
    assert len(set(pairs)) == 3 and set(pairs) <= set(swappable_pairs(net))
    with pytest.raises(SurgeryError, match="5 swappable pairs"):
        random_swaps(net, 6, random.Random(0))


def test_surgery_needs_stages():
    with pytest.raises(SurgeryError, match="ResNet family"):
        blocks(create_model("lenet5"))
