"""Loss surfaces along filter-normalised random directions.

Li, Xu, Taylor, Studer, Goldstein, "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018,
§4: a random direction d (Gaussian, the shape of the weights) is *filter-normalised* so that each
filter d_{i,j} has the norm of the corresponding filter θ_{i,j} of the trained weights; then the
loss f(α, β) = L(θ + α δ + β η) over a grid of (α, β) shows the surface at the scale of the weights
themselves, comparable between networks. A "filter" is one output unit's slice of a weight: a conv
kernel's ``weight[o]``, a linear layer's row. As the paper does by default, the directions are zero
on the 1-D parameters (biases, BN γ and β), and BN's running statistics stay as trained.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["filter_normalized_direction", "loss_at", "loss_surface"]


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> dict[str, Tensor]:
    """A Gaussian direction in weight space with every filter rescaled to its weight's filter norm.

    Returns ``{parameter name: direction}``; 1-D parameters get zeros (Li et al.'s default).
    """
    out = {}
    for name, p in model.named_parameters():
        if p.dim() <= 1:
            out[name] = torch.zeros_like(p)
            continue
        d = torch.randn(p.shape, generator=generator, dtype=p.dtype, device="cpu").to(p.device)
        dims = tuple(range(1, p.dim()))
        norm = torch.linalg.vector_norm
        scale = norm(p.detach(), dim=dims, keepdim=True) / norm(d, dim=dims, keepdim=True).clamp_min(1e-12)
        out[name] = d * scale
    return out


@torch.no_grad()
def loss_at(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    directions: Sequence[dict[str, Tensor]],
    coords: Sequence[float],
) -> float:
    """Mean cross-entropy of ``model`` (eval mode) at θ + Σ c_i d_i over ``batches``; θ is restored."""
    params = dict(model.named_parameters())
    theta = {n: p.detach().clone() for n, p in params.items()}
    was_training = model.training
    model.eval()
    try:
        for n, p in params.items():
            p.copy_(theta[n] + sum(c * d[n] for c, d in zip(coords, directions, strict=True)))
        total, count = 0.0, 0
        for x, y in batches:
            total += float(F.cross_entropy(model(x), y, reduction="sum"))
            count += y.shape[0]
    finally:
        for n, p in params.items():
            p.copy_(theta[n])
        model.train(was_training)
    return total / max(count, 1)


def loss_surface(
    model: nn.Module,
    batches: Sequence[tuple[Tensor, Tensor]],
    directions: tuple[dict[str, Tensor], dict[str, Tensor]],
    alphas: Sequence[float],
    betas: Sequence[float],
) -> list[list[float]]:
    """The loss on the grid: ``surface[i][j]`` = f(alphas[j], betas[i]) (rows are β, as a contour
    plot's ``Z``). ``batches`` is a list, so that every point sees the same images."""
    return [[loss_at(model, batches, directions, (a, b)) for a in alphas] for b in betas]
