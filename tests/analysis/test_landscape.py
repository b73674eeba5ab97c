"""Filter-normalised directions and loss surfaces (Li et al. 2018, §4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnzoo import create_model
from cnnzoo.analysis.landscape import filter_normalized_direction, loss_at, loss_surface


def _net():
    torch.manual_seed(0)
    return create_model("resnet8", num_classes=10, in_chans=1, widths=(4, 8, 16), stem_width=4).eval()


def test_each_filter_of_the_direction_has_its_weights_norm():
    net = _net()
    d = filter_normalized_direction(net, torch.Generator().manual_seed(1))
    assert set(d) == {n for n, _ in net.named_parameters()}
    for name, p in net.named_parameters():
        if p.dim() == 1:
            assert torch.count_nonzero(d[name]) == 0, name  # biases and BN stay put
        else:
            dims = tuple(range(1, p.dim()))
            want = torch.linalg.vector_norm(p.detach(), dim=dims)
            torch.testing.assert_close(torch.linalg.vector_norm(d[name], dim=dims), want)
            assert not torch.allclose(d[name], p.detach())
    again = filter_normalized_direction(net, torch.Generator().manual_seed(1))
    assert all(torch.equal(d[n], again[n]) for n in d)


def test_the_loss_at_a_point_moves_the_weights_and_restores_them():
    net = _net()
    x, y = torch.randn(6, 1, 16, 16), torch.randint(0, 10, (6,))
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    gen = torch.Generator().manual_seed(2)
    dirs = (filter_normalized_direction(net, gen), filter_normalized_direction(net, gen))
    with torch.no_grad():
        base = float(F.cross_entropy(net(x), y))
    assert abs(loss_at(net, [(x, y)], dirs, (0.0, 0.0)) - base) < 1e-6
    moved = loss_at(net, [(x, y)], dirs, (0.5, -0.25))
    with torch.no_grad():  # the same point by hand
        for n, p in net.named_parameters():
            p.add_(0.5 * dirs[0][n] - 0.25 * dirs[1][n])
        by_hand = float(F.cross_entropy(net(x), y))
        for n, p in net.named_parameters():
            p.copy_(before[n])
    assert abs(moved - by_hand) < 1e-5 * max(1.0, by_hand) and moved != base
    assert all(torch.equal(p, before[n]) for n, p in net.named_parameters())
    grid = loss_surface(net, [(x, y)], dirs, [-1.0, 0.0, 1.0], [0.0, 0.5])
    assert len(grid) == 2 and len(grid[0]) == 3 and abs(grid[0][1] - base) < 1e-6
