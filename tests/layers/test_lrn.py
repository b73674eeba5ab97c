"""LRN in the AlexNet paper's convention, checked against torch and against the formula itself."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo.layers.lrn import LocalResponseNorm, local_response_norm


def lrn_by_formula(a: torch.Tensor, n: int, alpha: float, beta: float, k: float) -> torch.Tensor:
    """§3.3 of Krizhevsky et al. 2012, channel by channel:
    b[i] = a[i] / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} a[j]^2) ** beta."""
    num = a.shape[1]
    out = torch.empty_like(a)
    for i in range(num):
        lo, hi = max(0, i - n // 2), min(num - 1, i + n // 2)
        s = (a[:, lo : hi + 1] ** 2).sum(1)
        out[:, i] = a[:, i] / (k + alpha * s) ** beta
    return out


def _input(seed: int = 0, c: int = 11) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # large activations, so that alpha * sum(a^2) is comparable to k and the convention matters
    return torch.randn(2, c, 4, 5, generator=g, dtype=torch.float64) * 40


@pytest.mark.parametrize("n", [3, 5, 7])
def test_matches_the_papers_formula(n):
    x = _input(n)
    ours = LocalResponseNorm(n, alpha=1e-4, beta=0.75, k=2.0)(x)
    torch.testing.assert_close(ours, lrn_by_formula(x, n, 1e-4, 0.75, 2.0), rtol=1e-10, atol=1e-10)


def test_matches_torch_with_alpha_times_n():
    x = _input(1).float()
    ours = LocalResponseNorm()(x)  # paper defaults: n=5, k=2, alpha=1e-4, beta=0.75
    theirs = nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(LocalResponseNorm().to_torch()(x), ours, rtol=1e-6, atol=1e-6)
    assert LocalResponseNorm().to_torch().alpha == pytest.approx(5e-4)


def test_torch_alpha_unconverted_is_a_different_layer():
    """Plugging the paper's alpha straight into torch (which divides by n) is not the paper's LRN."""
    x = _input(2).float()
    wrong = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(x)
    assert (LocalResponseNorm()(x) - wrong).abs().max() > 1e-2


def test_defaults_and_functional_form():
    lrn = LocalResponseNorm()
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)
    assert lrn.cost_type == "lrn"
    assert sum(p.numel() for p in lrn.parameters()) == 0
    x = _input(3)
    torch.testing.assert_close(local_response_norm(x), lrn(x))
    assert "not divided" in repr(lrn)


def test_small_inputs_are_barely_changed_but_large_ones_are_damped():
    x = torch.full((1, 5, 1, 1), 1e-3)
    torch.testing.assert_close(LocalResponseNorm()(x), x / 2**0.75)  # k dominates: a / k^beta
    big = torch.full((1, 5, 1, 1), 1e3)
    # middle channel: 5 neighbours of 1e6 each -> denominator (2 + 1e-4 * 5e6) ** 0.75
    assert LocalResponseNorm()(big)[0, 2, 0, 0].item() == pytest.approx(1e3 / (2 + 500) ** 0.75)


def test_gradient_matches_autograd_of_the_formula():
    x = _input(4, c=6)[:1, :, :2, :2].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: LocalResponseNorm(5)(t), (x,))
    y = x.detach().clone().requires_grad_(True)
    LocalResponseNorm(5)(x).sum().backward()
    lrn_by_formula(y, 5, 1e-4, 0.75, 2.0).sum().backward()
    torch.testing.assert_close(x.grad, y.grad)


def test_bad_size_is_rejected():
    with pytest.raises(ValueError, match="positive"):
        LocalResponseNorm(0)
