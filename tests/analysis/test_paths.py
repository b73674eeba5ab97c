"""Path counting (Veit et al. 2016, §3 and §5): 2^n paths, Binomial lengths, gradients per path."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from cnnzoo import create_model
from cnnzoo.analysis.paths import (
    count_paths,
    gradient_by_path_length,
    mean_length,
    path_gradient,
    path_length_counts,
    path_length_distribution,
    total_gradient_by_length,
)
from cnnzoo.models.surgery import SurgeryError, blocks


def test_path_counts_are_powers_of_two_with_binomial_lengths():
    assert count_paths(27) == 134_217_728 and count_paths(54) == 2**54
    counts = path_length_counts(27)
    assert len(counts) == 28 and sum(counts) == 2**27
    assert counts[:3] == [1, 27, 351] and counts[13] == math.comb(27, 13) == counts[14]
    dist = path_length_distribution(9)
    assert dist == [math.comb(9, k) / 512 for k in range(10)]
    assert math.isclose(sum(dist), 1.0) and math.isclose(mean_length(dist), 4.5)


def _net(name: str = "resnet8"):
    torch.manual_seed(0)
    return create_model(name, num_classes=10, in_chans=1, widths=(4, 8, 16), stem_width=4).double().eval()


def test_the_paths_gradients_sum_to_the_full_gradient():
    net = _net()
    x, y = torch.randn(4, 1, 16, 16, dtype=torch.float64), torch.tensor([0, 3, 5, 9])
    first = net.layer1[0]
    held = {}
    h = first.register_forward_pre_hook(lambda m, a: (held.setdefault("x", a[0].detach().requires_grad_()),))
    full = torch.autograd.grad(F.cross_entropy(net(x), y), held["x"])[0]
    h.remove()
    n = len(blocks(net))
    parts = [path_gradient(net, x, y, s) for r in range(n + 1) for s in itertools.combinations(range(n), r)]
    assert len(parts) == 2**n
    torch.testing.assert_close(sum(parts), full, rtol=1e-10, atol=1e-14)
    assert all(p.abs().sum() > 0 for p in parts)  # every path carries some gradient


def test_gradient_by_path_length_samples_each_length_and_restores_the_model():
    net = _net("resnet20").train()
    x, y = torch.randn(4, 1, 16, 16, dtype=torch.float64), torch.tensor([1, 2, 3, 4])
    net.eval()
    before = net(x)
    net.train()
    g = gradient_by_path_length(net, x, y, lengths=[0, 2, 9], samples=3)
    assert g.n == 9 and g.samples == 3
    assert [m is not None for m in g.mean] == [k in (0, 2, 9) for k in range(10)]
    assert g.std[0] == 0.0 and g.std[9] == 0.0  # one subset of each of these lengths
    assert net.training and all(type(b).__name__ == "BasicBlock" for b in blocks(net))
    net.eval()
    torch.testing.assert_close(net(x), before, rtol=0, atol=0)
    total = total_gradient_by_length(g)
    assert math.isclose(sum(t for t in total if t is not None), 1.0)


def test_plain_nets_have_no_paths():
    net = _net("plain20")
    with pytest.raises(SurgeryError, match="plain"):
        gradient_by_path_length(net, torch.randn(2, 1, 16, 16, dtype=torch.float64), torch.tensor([0, 1]))
