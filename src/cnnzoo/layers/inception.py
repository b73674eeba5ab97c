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

The factorised modules of the later Inception networks (BN-Inception, Inception v3 and v4,
Inception-ResNet) are data: a :class:`BlockSpec` lists the branches, each a chain of
:class:`ConvSpec` / :class:`PoolSpec` steps that may end in a :class:`SplitSpec` (parallel convs
on one input, Rethinking the Inception Architecture, Fig. 7), and :class:`InceptionBlock` builds
any of them, with the Inception-ResNet residual (a linear 1×1 projection back to the input width,
scaled, added, then ReLU) when the spec asks for it. Every spec also computes its output side
(:meth:`BlockSpec.out_hw`), so that a network's minimum input size follows from its rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.layers.conv import ConvNormAct

__all__ = [
    "BasicConv2d",
    "InceptionWidths",
    "INCEPTION_LABELS",
    "Inception",
    "NaiveInception",
    "ConvSpec",
    "PoolSpec",
    "SplitSpec",
    "BlockSpec",
    "conv",
    "max_pool",
    "avg_pool",
    "split",
    "ParallelConvs",
    "InceptionBlock",
    "HW",
    "out_side",
]


class BasicConv2d(ConvNormAct):
    """Conv → (BN) → ReLU. With ``norm=False`` the conv has a bias (the paper); with ``norm=True``
    it has none and BN (eps 0.001) follows (torchvision's ``BasicConv2d``). Submodules ``conv``,
    ``bn`` (None without norm) and ``act``: a :class:`~cnnzoo.layers.conv.ConvNormAct`."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], *,
        norm: bool = False, stride: int = 1, padding: int | tuple[int, int] = 0,
    ) -> None:  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=padding,
                         norm_layer=_bn_eps3 if norm else None, act_layer="relu")  # fmt: skip


def _bn_eps3(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=0.001)


#: Table 1's column headings, in :class:`InceptionWidths` order.
INCEPTION_LABELS = ("#1×1", "#3×3 reduce", "#3×3", "#5×5 reduce", "#5×5", "pool proj")


class InceptionWidths(NamedTuple):
    """One row of Table 1. ``None`` for the reductions of a naive module (it has none)."""

    n1x1: int
    n3x3_reduce: int | None
    n3x3: int
    n5x5_reduce: int | None
    n5x5: int
    pool_proj: int | None

    def cost_details(self) -> dict[str, int | None]:
        """The row's detail, Table 1's column labels with their widths (``None``: no such branch)."""
        return dict(zip(INCEPTION_LABELS, self, strict=True))


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
        return self.widths.cost_details()

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
        return self.widths.cost_details()

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, widths={tuple(self.widths)}, out_channels={self.out_channels}"
        )


# ---------------------------------------------------------------------------------------------------
# The factorised modules of BN-Inception, Inception v3/v4 and Inception-ResNet, as data

#: a map's (height, width)
HW = tuple[int, int]


def out_side(side: int, k: int, s: int, p: int = 0, ceil: bool = False) -> int:
    """PyTorch's output side of a conv or pool (ceil mode's last-window rule included); 0 if none."""
    num = side + 2 * p - k
    if num < 0 and not (ceil and num + s > 0):
        return 0
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= side + p:  # the last window must start inside the input
        out -= 1
    return max(out, 0)


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _kernel_text(kh: int, kw: int, stride: int) -> str:
    return f"{kh}×{kw}" + (f"/{stride}" if stride > 1 else "")


class ConvSpec(NamedTuple):
    """One conv → BN → ReLU (a :class:`BasicConv2d` with ``norm``): width, kernel, stride, padding.

    ``kernel`` and ``padding`` are (h, w): a "1×7" is one row of seven, ``(1, 7)``.
    """

    out: int
    kernel: tuple[int, int]
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    def out_channels(self, in_channels: int) -> int:
        return self.out

    def out_hw(self, hw: HW) -> HW:
        h, w = (
            out_side(n, k, self.stride, p) for n, k, p in zip(hw, self.kernel, self.padding, strict=True)
        )
        return h, w

    def build(self, in_channels: int, norm: bool = True) -> nn.Module:
        return BasicConv2d(
            in_channels, self.out, self.kernel, norm=norm, stride=self.stride, padding=self.padding
        )

    def describe(self) -> str:
        return f"{_kernel_text(*self.kernel, self.stride)} {self.out}"


class PoolSpec(NamedTuple):
    """A max or average pool (square window). An average pool leaves the zero padding out of its
    mean unless ``count_include_pad`` (TensorFlow's "SAME" pooling excludes it; torchvision's
    Inception v3 includes it)."""

    kind: str  # "max" or "avg"
    kernel: int = 3
    stride: int = 1
    padding: int = 0
    ceil_mode: bool = False
    count_include_pad: bool = False

    def out_channels(self, in_channels: int) -> int:
        return in_channels

    def out_hw(self, hw: HW) -> HW:
        h, w = (out_side(n, self.kernel, self.stride, self.padding, self.ceil_mode) for n in hw)
        return h, w

    def build(self, in_channels: int, norm: bool = True) -> nn.Module:
        if self.kind == "max":
            return nn.MaxPool2d(self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode)
        return nn.AvgPool2d(self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode,
                            count_include_pad=self.count_include_pad)  # fmt: skip

    def describe(self) -> str:
        return f"{self.kind} {_kernel_text(self.kernel, self.kernel, self.stride)}"


class SplitSpec(NamedTuple):
    """The end of a branch that forks into parallel convs on one input, concatenated (the
    "expanded filter bank" of Rethinking the Inception Architecture, Fig. 7: a 1×3 beside a 3×1)."""

    convs: tuple[ConvSpec, ...]

    def out_channels(self, in_channels: int) -> int:
        return sum(c.out for c in self.convs)

    def out_hw(self, hw: HW) -> HW:
        sides = {c.out_hw(hw) for c in self.convs}
        return sides.pop() if len(sides) == 1 else (0, 0)

    def build(self, in_channels: int, norm: bool = True) -> nn.Module:
        return ParallelConvs(in_channels, self.convs, norm=norm)

    def describe(self) -> str:
        return "(" + " | ".join(c.describe() for c in self.convs) + ")"


Step = ConvSpec | PoolSpec | SplitSpec


def _chain_stride(branch: tuple[Step, ...]) -> int:
    stride = 1
    for step in branch:
        stride *= getattr(step, "stride", 1)
    return stride


class BlockSpec(NamedTuple):
    """An Inception module as data: its branches (chains of steps, concatenated in order).

    Attributes:
        branches: each branch a tuple of :class:`ConvSpec`, :class:`PoolSpec` and a final
            :class:`SplitSpec`; a branch of a lone pool passes its input through (a grid reduction).
        residual_scale: ``None`` for a plain module; for an Inception-ResNet block the factor that
            scales the residual, ``x + scale · proj(concat)`` (Szegedy et al. 2017, §3.3).
        act: the ReLU after the residual sum (the TF-slim release leaves it out of its last block).
        details: the block's row detail in cost tables (``cost_details()``), as ``(label, value)``
            pairs; by default each branch described by its steps.
    """

    branches: tuple[tuple[Step, ...], ...]
    residual_scale: float | None = None
    act: bool = True
    details: tuple[tuple[str, int | str | None], ...] | None = None

    @property
    def stride(self) -> int:
        return max(_chain_stride(b) for b in self.branches)

    def concat_channels(self, in_channels: int) -> int:
        total = 0
        for branch in self.branches:
            c = in_channels
            for step in branch:
                c = step.out_channels(c)
            total += c
        return total

    def out_channels(self, in_channels: int) -> int:
        return in_channels if self.residual_scale is not None else self.concat_channels(in_channels)

    def out_hw(self, hw: HW) -> HW:
        """The output side, or (0, 0) where a map empties or the branches disagree."""
        ends = set()
        for branch in self.branches:
            side = hw
            for step in branch:
                side = step.out_hw(side)
            ends.add(side)
        side = ends.pop() if len(ends) == 1 else (0, 0)
        return side if min(side) >= 1 else (0, 0)

    def build(self, in_channels: int, norm: bool = True) -> InceptionBlock:
        return InceptionBlock(in_channels, self, norm=norm)

    def describe(self) -> dict[str, int | str | None | bool]:
        if self.details is not None:
            return dict(self.details)
        out: dict[str, int | str | None | bool] = {
            f"branch{i}": " → ".join(step.describe() for step in b) for i, b in enumerate(self.branches)
        }
        if self.residual_scale is not None:
            out.update({"residual": True, "scale": f"{self.residual_scale:g}"})
        return out


def conv(
    out: int, kernel: int | tuple[int, int] = 1, stride: int = 1, padding: str | int = "same"
) -> ConvSpec:
    """A :class:`ConvSpec`. ``padding="same"`` pads ``k // 2`` on each side (the size is kept at
    stride 1; at stride 2 it is Caffe's and PyTorch's symmetric padding, not TensorFlow's), ``"valid"``
    pads nothing (the papers' "V"), an int pads that much."""
    kh, kw = _pair(kernel)
    if padding == "same":
        pad = (kh // 2, kw // 2)
    elif padding == "valid":
        pad = (0, 0)
    else:
        pad = _pair(int(padding))
    return ConvSpec(out, (kh, kw), stride, pad)


def max_pool(kernel: int = 3, stride: int = 2, padding: int = 0, *, ceil_mode: bool = False) -> PoolSpec:
    """A max pool, by default the 3×3/2 "valid" pool of the grid reductions."""
    return PoolSpec("max", kernel, stride, padding, ceil_mode)


def avg_pool(
    kernel: int = 3, stride: int = 1, padding: int = 1, *, count_include_pad: bool = False
) -> PoolSpec:
    """An average pool, by default the 3×3/1 padded pool of a module's pool branch."""
    return PoolSpec("avg", kernel, stride, padding, False, count_include_pad)


def split(*convs: ConvSpec) -> SplitSpec:
    """Parallel convs on one input, concatenated (the end of a branch)."""
    return SplitSpec(tuple(convs))


class ParallelConvs(nn.Module):
    """Convs side by side on one input, concatenated: children ``a``, ``b``, ... (torchvision's
    ``branch3x3_2a`` / ``_2b`` in Inception v3's last modules)."""

    cost_type = "block"

    def __init__(self, in_channels: int, convs: tuple[ConvSpec, ...], *, norm: bool = True) -> None:
        super().__init__()
        for name, spec in zip("abcdefgh", convs, strict=False):
            self.add_module(name, spec.build(in_channels, norm))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([m(x) for m in self.children()], 1)


class InceptionBlock(nn.Module):
    """An Inception module built from a :class:`BlockSpec`: branches ``branch0``, ``branch1``, ...
    (each an ``nn.Sequential`` of its steps), concatenated along channels.

    With ``spec.residual_scale`` it is an Inception-ResNet block (Szegedy et al. 2017, Figs. 10-13
    and 16-19): the concatenation is projected back to the input width by a 1×1 conv with a bias
    and no BN ("Linear", ``proj``: §3.2 puts BN on the traditional layers only), scaled, added to
    the input, then passed through a ReLU (``act``; ``None`` where the spec turns it off).

    Args:
        in_channels: input width.
        spec: the branches and residual options.
        norm: BN after every conv of the branches (bias-free convs, eps 0.001).
    """

    cost_type = "inception"

    def __init__(self, in_channels: int, spec: BlockSpec, *, norm: bool = True) -> None:
        super().__init__()
        self.in_channels, self.spec = in_channels, spec
        self.branch_names = tuple(f"branch{i}" for i in range(len(spec.branches)))
        for name, branch in zip(self.branch_names, spec.branches, strict=True):
            layers, c = [], in_channels
            for step in branch:
                layers.append(step.build(c, norm))
                c = step.out_channels(c)
            self.add_module(name, nn.Sequential(*layers))
        self.out_channels = spec.out_channels(in_channels)
        self.scale = spec.residual_scale
        residual = self.scale is not None
        self.proj = nn.Conv2d(spec.concat_channels(in_channels), in_channels, 1) if residual else None
        self.act = nn.ReLU(inplace=True) if residual and spec.act else None

    def forward(self, x: Tensor) -> Tensor:
        out = torch.cat([getattr(self, name)(x) for name in self.branch_names], 1)
        if self.proj is None:
            return out  # (N, sum of the branch widths, H', W')
        out = self.proj(out) * self.scale + x  # (N, in_channels, H, W)
        return out if self.act is None else self.act(out)

    def cost_details(self) -> Mapping[str, int | str | None | bool]:
        return self.spec.describe()

    def extra_repr(self) -> str:
        scale = "" if self.scale is None else f", residual_scale={self.scale:g}"
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}{scale}"
