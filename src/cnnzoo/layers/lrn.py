"""Local response normalisation across channels, in the AlexNet paper's convention.

Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NIPS 2012, §3.3:

    b[c] = a[c] / (k + α · Σ_{j = max(0, c − n/2)}^{min(N − 1, c + n/2)} a[j]²) ** β

with n = 5, k = 2, α = 1e-4, β = 0.75. The sum of squares is **not** divided by n. PyTorch's
``nn.LocalResponseNorm`` (like Caffe's LRN layer) divides α by n, so the same layer there is
``nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)``: :meth:`LocalResponseNorm.to_torch`
builds it, and the tests check both against each other and against the formula above.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LocalResponseNorm", "local_response_norm"]


def local_response_norm(
    x: Tensor, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0
) -> Tensor:
    """Functional LRN with the paper's α (not divided by ``size``); ``x`` is (N, C, ...)."""
    # torch's kernel computes k + (alpha / size) * sum(a^2) over a window of `size` channels
    # (size // 2 before, (size - 1) // 2 after, zero-padded): scale alpha to undo the division.
    return F.local_response_norm(x, size, alpha=alpha * size, beta=beta, k=k)


class LocalResponseNorm(nn.Module):
    """Cross-channel LRN, paper convention (α multiplies the plain sum of squares).

    Args:
        size: n, the number of adjacent channels summed (5 in AlexNet, ZFNet and VGG A-LRN).
        alpha: α of the paper, applied to the sum (not the mean) of squares.
        beta: the exponent β.
        k: the additive constant.
    """

    cost_type = "lrn"

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"LRN size must be a positive number of channels, got {size}")
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, x: Tensor) -> Tensor:
        return local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def to_torch(self) -> nn.LocalResponseNorm:
        """The equivalent ``torch.nn.LocalResponseNorm`` (α multiplied by n)."""
        return nn.LocalResponseNorm(self.size, alpha=self.alpha * self.size, beta=self.beta, k=self.k)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha} (not divided by size), beta={self.beta}, k={self.k}"
