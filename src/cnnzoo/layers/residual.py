"""Residual building blocks: basic and bottleneck blocks, shortcut options A/B/C, ResNet-C/D tweaks.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016 (§3.3, Fig. 5):

* :class:`BasicBlock`: two 3×3 convs (ResNet-18/34 and the CIFAR nets of §4.2).
* :class:`Bottleneck`: 1×1 reduce, 3×3, 1×1 expand (×4), for ResNet-50/101/152. ``stride_in_1x1``
  puts a stage's stride in the first 1×1 conv, as in the paper and the original Caffe model
  ("v1"); the default puts it in the 3×3 conv, as torchvision does ("v1.5", ResNet-B of
  He et al., "Bag of Tricks for Image Classification with Convolutional Neural Networks",
  CVPR 2019, §4.1).
* Shortcut options (paper §3.3), chosen per block by :func:`make_shortcut`:

  - ``"A"``: identity; where the shape changes the input is subsampled with stride 2 and the new
    channels are zero entries (:class:`ZeroPadShortcut`, no parameters);
  - ``"B"``: projection (1×1 conv + BN) only where the shape changes, identity elsewhere;
  - ``"C"``: projection on every block.

* :class:`DeepStem`: ResNet-C's stem, three 3×3 convs (32, 32, 64) instead of one 7×7 (Bag of
  Tricks §4.2).
* :class:`AvgPoolProjection`: ResNet-D's shortcut, a 2×2 average pool (stride 2) before a stride-1
  1×1 projection, so the projection no longer ignores 3/4 of the input (Bag of Tricks §4.2).

Module names follow torchvision's ``resnet.py`` (``conv1``, ``bn1``, ``downsample``...), so that the
torchvision-layout ResNets load torchvision's state_dicts; ResNet-C/D follow timm's key layout.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ShortcutOption",
    "conv1x1",
    "conv3x3",
    "ZeroPadShortcut",
    "Projection",
    "AvgPoolProjection",
    "make_shortcut",
    "BasicBlock",
    "Bottleneck",
    "DeepStem",
]

ShortcutOption = Literal["A", "B", "C"]
SHORTCUT_OPTIONS = ("A", "B", "C")


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution with padding 1 and no bias (BN follows)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1×1 convolution with no bias (BN follows)."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A (§3.3): identity, subsampled by ``stride``, with the extra channels set to zero.

    No parameters. The subsampling keeps every ``stride``-th pixel starting at the first, which
    gives ceil(H / stride) rows: the same size as a 3×3/stride conv with padding 1 or a 1×1/stride
    conv. The zero channels are appended after the input's (the paper does not say where).
    """

    cost_type = "shortcut"

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option A cannot reduce channels ({in_channels} -> {out_channels})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        return F.pad(x, (0, 0, 0, 0, 0, extra)) if extra else x

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class Projection(nn.Sequential):
    """Options B and C: a 1×1 conv with the block's stride, then BN (torchvision keys ``0``, ``1``)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class AvgPoolProjection(nn.Sequential):
    """ResNet-D's shortcut: 2×2 average pool with the block's stride, then a stride-1 1×1 conv and BN.

    Keys ``1`` (conv) and ``2`` (BN) as in timm; for stride 1 the pool is an identity. The pool uses
    ``ceil_mode`` and ignores padding, so odd sizes give ceil(H / 2) like the main path.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        pool: nn.Module = (
            nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
            if stride > 1
            else nn.Identity()
        )
        super().__init__(pool, conv1x1(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))


def make_shortcut(
    option: ShortcutOption, in_channels: int, out_channels: int, stride: int = 1, *, avg_down: bool = False
) -> nn.Module | None:
    """The shortcut of one block; ``None`` means a plain identity (no module, no keys).

    Args:
        option: ``"A"``, ``"B"`` or ``"C"`` (paper §3.3, see the module docstring).
        in_channels, out_channels, stride: the block's input/output widths and stride.
        avg_down: ResNet-D: projections average-pool first (:class:`AvgPoolProjection`).
    """
    if option not in SHORTCUT_OPTIONS:
        raise ValueError(f"shortcut option must be one of {', '.join(SHORTCUT_OPTIONS)}, got {option!r}")
    same_shape = stride == 1 and in_channels == out_channels
    if option == "A":
        return None if same_shape else ZeroPadShortcut(in_channels, out_channels, stride)
    if option == "B" and same_shape:
        return None
    proj = AvgPoolProjection if avg_down else Projection
    return proj(in_channels, out_channels, stride)


class BasicBlock(nn.Module):
    """Two 3×3 convs with BN; ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` (Fig. 5 left).

    Args:
        in_channels: input width.
        planes: width of both convs (the output width; ``expansion`` = 1).
        stride: stride of the first conv (2 at the start of a stage).
        shortcut: option ``"A"``, ``"B"`` or ``"C"``.
        residual: ``False`` drops the shortcut entirely (the paper's "plain" nets, §4.1).
        avg_down: ResNet-D projection shortcut.
    """

    expansion = 1
    cost_type = "block"

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: ShortcutOption = "B",
        residual: bool = True,
        avg_down: bool = False,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.residual = residual
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = (
            make_shortcut(shortcut, in_channels, out_channels, stride, avg_down=avg_down)
            if residual
            else None
        )

    def cost_details(self) -> dict[str, bool]:
        """``residual`` for a block with a shortcut; the analyzer adds its stage and index."""
        return {"residual": True} if self.residual else {}

    def zero_init_last(self) -> None:
        """γ = 0 in the last BN, so the block starts as its shortcut (Goyal et al. 2017, §5.1)."""
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, planes, H/s, W/s)
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 → 1×1 expand (×4), with BN, plus the shortcut (Fig. 5 right).

    Args:
        in_channels: input width.
        planes: width of the 1×1 and 3×3 convs; the output is ``4 · planes``.
        stride: the block's stride (2 at the start of stages 3-5).
        shortcut: option ``"A"``, ``"B"`` or ``"C"``.
        stride_in_1x1: ``True`` strides the first 1×1 (the paper's original); ``False`` (default)
            strides the 3×3 (torchvision, "ResNet-B").
        residual: ``False`` drops the shortcut (a plain net).
        avg_down: ResNet-D projection shortcut.
    """

    expansion = 4
    cost_type = "block"

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: ShortcutOption = "B",
        stride_in_1x1: bool = False,
        residual: bool = True,
        avg_down: bool = False,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.residual = residual
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_channels, planes, s1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, s3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            make_shortcut(shortcut, in_channels, out_channels, stride, avg_down=avg_down)
            if residual
            else None
        )

    def cost_details(self) -> dict[str, bool]:
        """``residual`` for a block with a shortcut; the analyzer adds its stage and index."""
        return {"residual": True} if self.residual else {}

    def zero_init_last(self) -> None:
        """γ = 0 in the last BN, so the block starts as its shortcut."""
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, planes, H, W), or H/s with stride_in_1x1
        out = self.relu(self.bn2(self.conv2(out)))  # (N, planes, H/s, W/s)
        out = self.bn3(self.conv3(out))  # (N, 4·planes, H/s, W/s)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class DeepStem(nn.Sequential):
    """ResNet-C's stem (Bag of Tricks §4.2): 3×3/2 conv, BN, ReLU, 3×3 conv, BN, ReLU, 3×3 conv.

    Widths 32, 32, 64 by default. The last conv's BN and ReLU are the network's ``bn1`` and
    ``relu``, as in timm (keys ``conv1.0``, ``conv1.1``, ``conv1.3``, ``conv1.4``, ``conv1.6``).
    """

    def __init__(self, in_chans: int, widths: tuple[int, int, int] = (32, 32, 64)) -> None:
        a, b, c = widths
        super().__init__(
            nn.Conv2d(in_chans, a, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(a),
            nn.ReLU(inplace=True),
            nn.Conv2d(a, b, 3, padding=1, bias=False),
            nn.BatchNorm2d(b),
            nn.ReLU(inplace=True),
            nn.Conv2d(b, c, 3, padding=1, bias=False),
        )
        self.out_channels = c
