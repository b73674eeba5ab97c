"""Input coverage: which input positions can reach a module's output, computed exactly.

Deck 001 and He et al. 2019 ("Bag of Tricks for Image Classification with Convolutional Neural
Networks", CVPR 2019, §4.1-4.2) point out that a 1×1 convolution with stride 2 reads one input
position in four: the other three never influence its output, whatever the weights. The receptive
field (:mod:`cnnzoo.analysis.fields`) is the span an output can see; coverage is which positions
inside the input are actually read.

The measure is structural and exact: the module runs once in float64 on an all-ones input with every
weight set to a positive constant (``1 / fan_in``), biases and BN shifts to zero and BN statistics
to the identity, so every activation is positive and no two paths can cancel. A position then has a
non-zero gradient exactly when some chain of connections links it to the output. Max pooling routes
its gradient to one position of the window, so :class:`~torch.nn.MaxPool2d` (and the adaptive one)
is measured as average pooling of the same window: each position of a window can be the maximum.
Activations must pass positive values (ReLU, SiLU, GELU, sigmoid...); ReLU6 and hard-tanh do, as
long as the activations stay below their ceilings, which the ``1 / fan_in`` weights keep near 1.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.errors import ConfigError

__all__ = ["Coverage", "input_coverage"]


class Coverage(NamedTuple):
    """The input positions that reach the output: ``mask`` (H, W) and the ``fraction`` it covers."""

    mask: Tensor  # bool, (H, W): True where some channel at that position reaches the output
    fraction: float  # mask.mean(): 1.0 when every position is read, 0.25 for a 1×1/2 conv

    @property
    def positions(self) -> int:
        return int(self.mask.sum())


def _positive_copy(module: nn.Module) -> nn.Module:
    """A float64 CPU copy in eval mode whose weights are positive constants and whose shifts are 0."""
    m = copy.deepcopy(module)
    if any(t.is_meta for t in (*m.parameters(), *m.buffers())):
        m = m.to_empty(device="cpu")
    m = m.to(device="cpu", dtype=torch.float64).eval()
    with torch.no_grad():
        for name, p in (*m.named_parameters(), *m.named_buffers()):
            leaf = name.rsplit(".", 1)[-1]
            if not p.is_floating_point():
                p.zero_()  # num_batches_tracked
            elif leaf in ("bias", "running_mean"):
                p.zero_()
            elif leaf == "running_var" or p.dim() < 2:
                p.fill_(1.0)  # BN and layer-scale gains
            else:
                p.fill_(1.0 / p[0].numel())
    _swap_max_pools(m)
    return m


def _swap_max_pools(module: nn.Module) -> None:
    """Max pools as average pools of the same window (every position of a window can win)."""
    for name, child in module.named_children():
        if isinstance(child, nn.MaxPool2d):
            if child.dilation not in (1, (1, 1)):
                raise ConfigError("input_coverage: a dilated max pool has no average-pool twin; undilate it")
            pool: nn.Module = nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode)
            setattr(module, name, pool)
        elif isinstance(child, nn.AdaptiveMaxPool2d):
            setattr(module, name, nn.AdaptiveAvgPool2d(child.output_size))
        else:
            _swap_max_pools(child)


def input_coverage(
    module: nn.Module,
    input_size: tuple[int, int, int],
    *,
    select: Callable[[Tensor], Tensor] | None = None,
) -> Coverage:
    """Which positions of a (C, H, W) input can influence ``module``'s output (or part of it).

    Args:
        module: any module taking one (N, C, H, W) tensor; it is copied, never modified (a module
            on the meta device is measured too: only its structure matters).
        input_size: (C, H, W) of the input.
        select: picks the outputs to trace back from (``lambda y: y[..., 0, 0]`` for one output
            position, giving its receptive field); default: the whole output.

    Returns:
        :class:`Coverage`: the (H, W) mask of reached positions and its fraction.

    Raises:
        ConfigError: an input size that is not (C, H, W) of positive ints.
    """
    if len(input_size) != 3 or not all(isinstance(v, int) and v > 0 for v in input_size):
        raise ConfigError(
            f"input_coverage: input_size must be (C, H, W) of positive ints, got {input_size!r}"
        )
    probe = _positive_copy(module)
    x = torch.ones(1, *input_size, dtype=torch.float64, requires_grad=True)
    y = probe(x)
    if select is not None:
        y = select(y)
    (grad,) = torch.autograd.grad(y.sum(), x)
    mask = (grad[0] != 0).any(dim=0)
    return Coverage(mask, float(mask.double().mean()))
