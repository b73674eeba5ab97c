"""A residual network as a collection of paths, and the gradient each path length carries.

Veit, Wilber, Belongie, "Residual Networks Behave Like Ensembles of Relatively Shallow Networks",
NeurIPS 2016, §3 and §5 (Fig. 6). Unrolled, a network of n residual blocks is a sum over 2^n
paths: each block is passed either through its residual branch or through its skip connection.
A path through k branches has length k, so the path lengths follow Binomial(n, ½)
(:func:`path_length_distribution`).

:func:`gradient_by_path_length` measures the gradient that paths of each length carry, as §5 does:
the batch goes forward through the whole network; in the backward pass k randomly drawn blocks
pass the gradient only through their residual branch and the other n − k only through their skip
connection; the norm of the gradient that arrives at the first block's input is recorded. Done with
the network's own forward values, so the nonlinearities (ReLU masks, eval-mode BN) are those of the
full network, as in the paper. Multiplying by the number of paths of each length gives the
gradient-weighted distribution of Fig. 6c (:func:`total_gradient_by_length`): where it peaks is
where the gradient actually comes from.

Departure: the gradient is measured at the first residual block's input (the stem's output), since
the path decomposition is over the blocks; Veit et al. say "at the input". Blocks must be the
post-activation :class:`~cnnzoo.layers.residual.BasicBlock` or
:class:`~cnnzoo.layers.residual.Bottleneck` (the CIFAR and ImageNet ResNets), whose output is
``act(branch(x) + shortcut(x))``.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.layers.residual import BasicBlock, Bottleneck
from cnnzoo.models.surgery import SurgeryError, blocks

__all__ = [
    "count_paths",
    "path_length_counts",
    "path_length_distribution",
    "residual_branch",
    "PathGradients",
    "path_gradient",
    "gradient_by_path_length",
    "total_gradient_by_length",
    "mean_length",
]


def count_paths(n: int) -> int:
    """The number of paths through ``n`` residual blocks: 2^n (Veit et al. §3)."""
    return 2**n


def path_length_counts(n: int) -> list[int]:
    """How many of the 2^n paths pass through exactly k residual branches, k = 0 … n: C(n, k)."""
    return [math.comb(n, k) for k in range(n + 1)]


def path_length_distribution(n: int) -> list[float]:
    """The path lengths' distribution, Binomial(n, ½): C(n, k) / 2^n for k = 0 … n (Fig. 6a)."""
    return [c / 2**n for c in path_length_counts(n)]


def residual_branch(block: nn.Module, x: Tensor) -> Tensor:
    """The residual branch f(x) of a post-activation block, before the addition (eval-mode drop
    path scaling included), so that the block computes ``act(f(x) + shortcut(x))``."""
    if isinstance(block, BasicBlock):
        out = block.relu(block.bn1(block.conv1(x)))
        if block.dropout is not None:
            out = block.dropout(out)
        out = block.bn2(block.conv2(out))
    elif isinstance(block, Bottleneck):
        out = block.relu(block.bn1(block.conv1(x)))
        out = block.relu(block.bn2(block.conv2(out)))
        out = block.bn3(block.conv3(out))
    else:
        raise SurgeryError(
            f"path gradients need post-activation residual blocks (BasicBlock, Bottleneck), got "
            f"{type(block).__name__}"
        )
    if block.se is not None:
        out = block.se(out)
    if block.drop_path is not None:
        out = block.drop_path(out, survived=True)
    return out


def _shortcut(block: nn.Module, x: Tensor) -> Tensor:
    return x if block.downsample is None else block.downsample(x)


class _Gate(nn.Module):
    """A block whose forward value is the block's own and whose gradient takes one route only."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block
        self.through_branch = False

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            y = self.block(x)
        route = residual_branch(self.block, x) if self.through_branch else _shortcut(self.block, x)
        mask = (y > 0).to(y.dtype)  # the output ReLU's derivative at the full network's values
        return y + mask * (route - route.detach())


class PathGradients(NamedTuple):
    """Gradient norm at the first block's input by path length k = 0 … n (``None``: not sampled)."""

    n: int
    mean: list[float | None]
    std: list[float | None]
    samples: int


def _unwrap(model: nn.Module) -> None:
    for name in model.stage_names:
        stage = getattr(model, name)
        for j in range(len(stage)):
            if isinstance(stage[j], _Gate):
                stage[j] = stage[j].block


def _check_blocks(model: nn.Module) -> list[nn.Module]:
    bl = blocks(model)
    for b in bl:
        if not (isinstance(b, BasicBlock | Bottleneck) and b.residual):
            raise SurgeryError(
                f"path gradients need a residual net of post-activation blocks, found "
                f"{type(b).__name__}{'' if getattr(b, 'residual', True) else ' (plain)'}"
            )
    return bl


@contextlib.contextmanager
def _gated(model: nn.Module) -> Iterator[Callable[[Tensor, Tensor, Collection[int]], Tensor]]:
    """``model`` in eval mode with its blocks gated; yields ``grad(x, y, active)``. Restores it."""
    _check_blocks(model)
    was_training = model.training
    model.eval()
    gates = _wrap(model)
    tap = _InputTap(gates[0])

    def grad(x: Tensor, y: Tensor, active: Collection[int]) -> Tensor:
        for i, g in enumerate(gates):
            g.through_branch = i in active
        loss = F.cross_entropy(model(x), y)
        return torch.autograd.grad(loss, tap.tensor)[0]

    try:
        yield grad
    finally:
        tap.remove()
        _unwrap(model)
        model.train(was_training)


def path_gradient(model: nn.Module, x: Tensor, y: Tensor, active: Collection[int]) -> Tensor:
    """The gradient of the mean cross-entropy at the first block's input, carried by the paths that
    take the residual branch at the blocks ``active`` and the skip connection everywhere else.

    Summed over all 2^n subsets it is the full gradient (the product of the blocks' Jacobians,
    each branch + skip, expanded), which the tests check. Eval mode; ``model`` is restored after.
    """
    with _gated(model) as grad:
        return grad(x, y, set(active))


def gradient_by_path_length(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    lengths: Sequence[int] | None = None,
    samples: int = 4,
    seed: int = 0,
) -> PathGradients:
    """The gradient norm that paths of each length carry to the first block's input (Fig. 6b).

    For each length k and each of ``samples`` draws, k blocks drawn at random pass the gradient
    through their residual branch only and the others through their skip connection only
    (:func:`path_gradient`); the loss is the mean cross-entropy of ``model`` on ``(x, y)`` in eval
    mode. The model is restored afterwards.

    Args:
        model: a trained ResNet-family model of post-activation blocks.
        x, y: a batch and its labels.
        lengths: the k to sample (default 0 … n).
        samples: draws per length.
        seed: of the block draws.

    Raises:
        SurgeryError: the model's blocks are not post-activation residual blocks.
    """
    n, rng = len(_check_blocks(model)), random.Random(seed)
    ks = list(range(n + 1)) if lengths is None else sorted(set(lengths))
    mean: list[float | None] = [None] * (n + 1)
    std: list[float | None] = [None] * (n + 1)
    with _gated(model) as grad:
        for k in ks:
            norms = [float(grad(x, y, rng.sample(range(n), k)).norm()) for _ in range(samples)]
            t = torch.tensor(norms, dtype=torch.float64)
            mean[k] = float(t.mean())
            std[k] = float(t.std()) if len(norms) > 1 else 0.0
    return PathGradients(n, mean, std, samples)


def _wrap(model: nn.Module) -> list[_Gate]:
    gates = []
    for name in model.stage_names:
        stage = getattr(model, name)
        for j in range(len(stage)):
            stage[j] = _Gate(stage[j])
            gates.append(stage[j])
    return gates


class _InputTap:
    """A pre-hook that makes the first block's input a leaf that requires grad, and keeps it."""

    def __init__(self, module: nn.Module) -> None:
        self.tensor: Tensor | None = None
        self._handle = module.register_forward_pre_hook(self._hook)

    def _hook(self, module: nn.Module, args: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        self.tensor = args[0].detach().requires_grad_(True)
        return (self.tensor, *args[1:])

    def remove(self) -> None:
        self._handle.remove()


def total_gradient_by_length(grads: PathGradients) -> list[float | None]:
    """The gradient-weighted path-length distribution (Fig. 6c): C(n, k) · mean norm at k,
    normalised to sum to 1 over the sampled lengths."""
    counts = path_length_counts(grads.n)
    raw = [None if m is None else c * m for c, m in zip(counts, grads.mean, strict=True)]
    total = sum(v for v in raw if v is not None) or 1.0
    return [None if v is None else v / total for v in raw]


def mean_length(weights: Sequence[float | None]) -> float:
    """The mean path length under a distribution over k = 0 … n (``None`` entries skipped)."""
    pairs = [(k, w) for k, w in enumerate(weights) if w is not None]
    total = sum(w for _, w in pairs) or 1.0
    return sum(k * w for k, w in pairs) / total
