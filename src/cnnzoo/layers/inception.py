"""The Inception module (GoogLeNet), naive and with dimension reductions.

Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, §4 and Fig. 2.

* :class:`NaiveInception` (Fig. 2a): 1×1, 3×3 and 5×5 convs and a 3×3 max-pool, side by side on
  the same input, concatenated along channels. The pool branch passes all input channels through,
  so the width grows with every module, and the 3×3/5×5 convs see the full input width.
* :class:`Inception` (Fig. 2b): the same four branches with 1×1 "reduce" convs in front of the 3×3
  and 5×5 convs and a 1×1 "pool proj" after the pool. Its widths are one row of Table 1:
  (#1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj); see :class:`InceptionWidths`.

Every conv is followed by a ReLU (§5: "All the convolutions, including those inside the Inception
modules, use rectified linear activation"). ``norm=True`` adds batch norm (bias-free conv, BN with
eps 0.001, then ReLU) as torchvision's GoogLeNet does; ``kernel_5x5=3`` reproduces torchvision's
3×3 in the "5×5" branch (pytorch/vision#906). Branch names are torchvision's (``branch1`` …
``branch4``, each conv as ``.conv`` and ``.bn``) so that its state_dicts load.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BasicConv2d", "InceptionWidths", "Inception", "NaiveInception"]


class BasicConv2d(nn.Module):
    """Conv → (BN) → ReLU. With ``norm=False`` the conv has a bias (the paper); with ``norm=True``
    it has none and BN (eps 0.001) follows (torchvision's ``BasicConv2d``)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, *, norm: bool = False, **kw
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=not norm, **kw)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001) if norm else None
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True)


class InceptionWidths(NamedTuple):
    """One row of Table 1. ``None`` for the reductions of a naive module (it has none)."""

    n1x1: int
    n3x3_reduce: int | None
    n3x3: int
    n5x5_reduce: int | None
    n5x5: int
    pool_proj: int | None


#: Table 1's column heads, as the analyzer shows a folded module's widths (``cost_details``)
TABLE1_LABELS = ("#1×1", "#3×3 reduce", "#3×3", "#5×5 reduce", "#5×5", "pool proj")


class Inception(nn.Module):
    """Inception module with dimension reductions (Fig. 2b).

    Args:
        in_channels: input width.
        n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj: the Table 1 row.
        norm: BN after every conv (torchvision's layout) instead of a conv bias.
        kernel_5x5: kernel of the "5×5" branch (5 in the paper, 3 in torchvision).

    The output has ``n1x1 + n3x3 + n5x5 + pool_proj`` channels at the input's resolution.
    """

    cost_type = "inception"

    def __init__(
        self,
        in_channels: int,
        n1x1: int,
        n3x3_reduce: int,
        n3x3: int,
        n5x5_reduce: int,
        n5x5: int,
        pool_proj: int,
        *,
        norm: bool = False,
        kernel_5x5: int = 5,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.widths = InceptionWidths(n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj)
        self.out_channels = n1x1 + n3x3 + n5x5 + pool_proj
        self.branch1 = BasicConv2d(in_channels, n1x1, 1, norm=norm)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, n3x3_reduce, 1, norm=norm),
            BasicConv2d(n3x3_reduce, n3x3, 3, padding=1, norm=norm),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, n5x5_reduce, 1, norm=norm),
            BasicConv2d(n5x5_reduce, n5x5, kernel_5x5, padding=kernel_5x5 // 2, norm=norm),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, 1, norm=norm),
        )

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, 1)  # (N, n1x1 + n3x3 + n5x5 + pool_proj, H, W)

    def cost_details(self) -> dict[str, int | None]:
        return dict(zip(TABLE1_LABELS, self.widths, strict=True))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, widths={tuple(self.widths)}, out_channels={self.out_channels}"
        )


class NaiveInception(nn.Module):
    """The naive Inception module (Fig. 2a): no 1×1 reductions, the pool branch passes through.

    Args:
        in_channels: input width.
        n1x1, n3x3, n5x5: widths of the three conv branches.
        norm: BN after every conv instead of a conv bias.

    The output has ``n1x1 + n3x3 + n5x5 + in_channels`` channels: the module can only widen.
    """

    cost_type = "inception"

    def __init__(self, in_channels: int, n1x1: int, n3x3: int, n5x5: int, *, norm: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.widths = InceptionWidths(n1x1, None, n3x3, None, n5x5, None)
        self.out_channels = n1x1 + n3x3 + n5x5 + in_channels
        self.branch1 = BasicConv2d(in_channels, n1x1, 1, norm=norm)
        self.branch2 = BasicConv2d(in_channels, n3x3, 3, padding=1, norm=norm)
        self.branch3 = BasicConv2d(in_channels, n5x5, 5, padding=2, norm=norm)
        self.branch4 = nn.MaxPool2d(3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, 1)  # (N, n1x1 + n3x3 + n5x5 + in_channels, H, W)

    def cost_details(self) -> dict[str, int | None]:
        return dict(zip(TABLE1_LABELS, self.widths, strict=True))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, widths={tuple(self.widths)}, out_channels={self.out_channels}"
        )
