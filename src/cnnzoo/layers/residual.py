"""Residual blocks: basic, bottleneck and pre-activation units, with cardinality, attention and drop path.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016 (§3.3, Fig. 5):

* :class:`BasicBlock`: two 3×3 convs (ResNet-18/34 and the CIFAR nets of §4.2).
* :class:`Bottleneck`: 1×1 reduce, 3×3, 1×1 expand (×4), for ResNet-50/101/152. ``stride_in_1x1``
  puts a stage's stride in the first 1×1 conv, as in the paper and the original Caffe model
  ("v1"); the default puts it in the 3×3 conv, as torchvision does ("v1.5", ResNet-B of
  He et al., "Bag of Tricks for Image Classification with Convolutional Neural Networks",
  CVPR 2019, §4.1).

He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks", ECCV 2016, Fig. 4(e):

* :class:`PreActBasicBlock`, :class:`PreActBottleneck`: full pre-activation, BN → ReLU → conv
  → BN → ReLU → conv (→ BN → ReLU → conv) plus the identity, nothing after the addition. Where the
  shortcut is not the identity it takes the pre-activated input (BN-ReLU shared by both paths), as
  the authors' code does (KaimingHe/resnet-1k-layers, ``resnet-pre-act.lua``) and as timm does; a
  projection is then a bare 1×1 conv (no BN: the next unit's BN follows the addition).

The families that follow are arguments of these four blocks, not forks:

==================  ===================================================================
ResNeXt             ``groups`` (cardinality C) and ``base_width`` (d): the bottleneck's
                    width is ``floor(planes · d / 64) · C`` (Xie et al. 2017, Table 1;
                    32×4d: 128 at planes 64), its 3×3 conv grouped C ways (Fig. 3c)
Wide ResNet         wider ``planes`` and ``dropout`` between the convs of a (pre-act)
                    basic block (Zagoruyko & Komodakis 2016); WRN-50-2: ``base_width=128``
SE-ResNet(X)        ``attn_layer=SqueezeExcite``: applied to the branch before the addition
stochastic depth    ``drop_path``: the branch is skipped for the mini-batch (not computed)
plain nets          ``residual=False`` (§4.1)
==================  ===================================================================

Shortcut options (paper §3.3), chosen per block by :func:`make_shortcut`:

- ``"A"``: identity; where the shape changes the input is subsampled with stride 2 and the new
  channels are zero entries (:class:`ZeroPadShortcut`, no parameters);
- ``"B"``: projection (1×1 conv + BN) only where the shape changes, identity elsewhere;
- ``"C"``: projection on every block.

:class:`DeepStem` is ResNet-C's stem, three 3×3 convs (32, 32, 64) instead of one 7×7, and
:class:`AvgPoolProjection` ResNet-D's shortcut, a 2×2 average pool (stride 2) before a stride-1
1×1 projection, so the projection no longer ignores 3/4 of the input (Bag of Tricks §4.2).

Module names follow torchvision's ``resnet.py`` (``conv1``, ``bn1``, ``relu``, ``downsample``...),
so the torchvision-layout ResNets load torchvision's state_dicts; ResNet-C/D follow timm's key
layout; the attention layer is ``se`` and the drop path ``drop_path`` (timm's names). The one
activation module is ``relu`` whatever ``act_layer`` builds (torchvision's name; it has no keys).
A part that is off (no attention, no drop path, no dropout) is ``None``: no module, no key, no row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.errors import ConfigError
from cnnzoo.layers.activations import ActLayer, create_act
from cnnzoo.layers.conv import NormLayer, conv1x1, conv3x3
from cnnzoo.layers.drop import DropPath, as_drop_path

__all__ = [
    "ShortcutOption",
    "AttnLayer",
    "conv1x1",
    "conv3x3",
    "ZeroPadShortcut",
    "Projection",
    "AvgPoolProjection",
    "make_shortcut",
    "bottleneck_width",
    "BasicBlock",
    "Bottleneck",
    "PreActBasicBlock",
    "PreActBottleneck",
    "DeepStem",
]

ShortcutOption = Literal["A", "B", "C"]
SHORTCUT_OPTIONS = ("A", "B", "C")
#: An attention layer factory, called with the branch's output width (e.g. ``SqueezeExcite``).
AttnLayer = Callable[[int], nn.Module] | None


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
    """Options B and C: a 1×1 conv with the block's stride, then the norm (torchvision keys ``0``,
    ``1``); ``norm_layer=None`` leaves the bare conv (the pre-activation units' projection)."""

    cost_type = "block"

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, *, norm_layer: NormLayer = nn.BatchNorm2d
    ) -> None:
        norm = [norm_layer(out_channels)] if norm_layer is not None else []
        super().__init__(conv1x1(in_channels, out_channels, stride), *norm)


class AvgPoolProjection(nn.Sequential):
    """ResNet-D's shortcut: 2×2 average pool with the block's stride, then a stride-1 1×1 conv and norm.

    Keys ``1`` (conv) and ``2`` (norm) as in timm; for stride 1 the pool is an identity. The pool
    uses ``ceil_mode`` and ignores padding, so odd sizes give ceil(H / 2) like the main path.
    """

    cost_type = "block"

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, *, norm_layer: NormLayer = nn.BatchNorm2d
    ) -> None:
        pool: nn.Module = (
            nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
            if stride > 1
            else nn.Identity()
        )
        norm = [norm_layer(out_channels)] if norm_layer is not None else []
        super().__init__(pool, conv1x1(in_channels, out_channels, 1), *norm)


def make_shortcut(
    option: ShortcutOption,
    in_channels: int,
    out_channels: int,
    stride: int = 1,
    *,
    avg_down: bool = False,
    norm_layer: NormLayer = nn.BatchNorm2d,
) -> nn.Module | None:
    """The shortcut of one block; ``None`` means a plain identity (no module, no keys).

    Args:
        option: ``"A"``, ``"B"`` or ``"C"`` (paper §3.3, see the module docstring).
        in_channels, out_channels, stride: the block's input/output widths and stride.
        avg_down: ResNet-D: projections average-pool first (:class:`AvgPoolProjection`).
        norm_layer: the projection's norm (``None`` for the pre-activation units' bare conv).
    """
    if option not in SHORTCUT_OPTIONS:
        raise ValueError(f"shortcut option must be one of {', '.join(SHORTCUT_OPTIONS)}, got {option!r}")
    same_shape = stride == 1 and in_channels == out_channels
    if option == "A":
        return None if same_shape else ZeroPadShortcut(in_channels, out_channels, stride)
    if option == "B" and same_shape:
        return None
    proj = AvgPoolProjection if avg_down else Projection
    return proj(in_channels, out_channels, stride, norm_layer=norm_layer)


def bottleneck_width(planes: int, groups: int = 1, base_width: int = 64) -> int:
    """ResNeXt's bottleneck width ``floor(planes · base_width / 64) · groups`` (``planes`` for ResNet).

    Raises:
        ConfigError: where the per-group width comes out below 1.
    """
    if groups < 1 or base_width < 1 or planes * base_width < 64:
        raise ConfigError(
            f"a bottleneck of planes={planes} with groups={groups} and base_width={base_width} has "
            f"no channels per group: use groups >= 1 and planes * base_width >= 64"
        )
    return int(planes * (base_width / 64.0)) * groups


class _Residual(nn.Module):
    """What the four blocks share: the shortcut, attention, drop path and their cost details."""

    cost_type = "block"
    expansion = 1

    def _init_residual(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        *,
        shortcut: ShortcutOption,
        residual: bool,
        avg_down: bool,
        norm_layer: NormLayer,
        attn_layer: AttnLayer,
        drop_path: float | DropPath | None,
    ) -> None:
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.residual = residual
        self.se = attn_layer(out_channels) if attn_layer is not None else None
        self.downsample = (
            make_shortcut(
                shortcut, in_channels, out_channels, stride, avg_down=avg_down, norm_layer=norm_layer
            )
            if residual
            else None
        )
        self.drop_path = as_drop_path(drop_path)
        if self.drop_path is not None and not residual:
            raise ConfigError("drop_path drops a residual branch: a plain block (residual=False) has none")

    def _add(self, out: Tensor, source: Tensor) -> Tensor:
        """Attention and drop path on the branch ``out``, then ``out + shortcut(source)`` if residual.

        ``source`` is the block input, or the pre-activated input of a pre-activation unit whose
        shortcut is a projection; the shortcut runs after the branch (torchvision's order)."""
        if self.se is not None:
            out = self.se(out)
        if self.drop_path is not None:
            out = self.drop_path(out, survived=True)
        if not self.residual:
            return out
        return out + (source if self.downsample is None else self.downsample(source))

    def _skips(self, x: Tensor) -> bool:
        return self.drop_path is not None and self.drop_path.drops_branch(x)

    def _preact(self, x: Tensor) -> Tensor:
        """A pre-activation unit's BN-ReLU of its input; the input itself where ``bn1`` is off."""
        return x if self.bn1 is None else self.relu(self.bn1(x))

    def cost_details(self) -> dict[str, int | str | bool]:
        if not self.residual:
            return {}
        details: dict[str, int | str | bool] = {"residual": True}
        groups = getattr(self, "groups", 1)
        if groups > 1:
            details["cardinality"] = groups
        if self.se is not None:
            details["se"] = True
        if self.drop_path is not None:
            details["drop path"] = f"{self.drop_path.drop_prob:g}"
        return details


def _no_cardinality(block: str, groups: int, base_width: int) -> None:
    if groups != 1 or base_width != 64:
        raise ConfigError(
            f"{block} takes no cardinality (groups={groups}, base_width={base_width}): the grouped 3x3 of "
            f"ResNeXt sits in the bottleneck, so use Bottleneck (or PreActBottleneck) for groups/base_width"
        )


class BasicBlock(_Residual):
    """Two 3×3 convs with BN; ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` (Fig. 5 left).

    Args:
        in_channels: input width.
        planes: width of both convs (the output width; ``expansion`` = 1).
        stride: stride of the first conv (2 at the start of a stage).
        shortcut: option ``"A"``, ``"B"`` or ``"C"``.
        residual: ``False`` drops the shortcut entirely (the paper's "plain" nets, §4.1).
        avg_down: ResNet-D projection shortcut.
        groups, base_width: must stay 1 and 64 (cardinality is the bottleneck's).
        dilation: of both 3×3 convs.
        norm_layer: norm factory (BN).
        act_layer: activation (ReLU), one module ``relu`` used after each norm and after the add.
        attn_layer: attention on the branch before the addition (e.g. ``SqueezeExcite``), or None.
        drop_path: stochastic depth rate (batch mode, the paper) or a :class:`DropPath`.
        dropout: dropout between the two convs (Wide ResNet), 0 for none.
    """

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: ShortcutOption = "B",
        residual: bool = True,
        avg_down: bool = False,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: ActLayer = "relu",
        attn_layer: AttnLayer = None,
        drop_path: float | DropPath | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _no_cardinality("BasicBlock", groups, base_width)
        out_channels = planes * self.expansion
        self.conv1 = conv3x3(in_channels, planes, stride, dilation=dilation)
        self.bn1 = norm_layer(planes)
        self.relu = create_act(act_layer, inplace=True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2 = conv3x3(planes, out_channels, dilation=dilation)
        self.bn2 = norm_layer(out_channels)
        self._init_residual(in_channels, out_channels, stride, shortcut=shortcut, residual=residual,
                            avg_down=avg_down, norm_layer=norm_layer, attn_layer=attn_layer,
                            drop_path=drop_path)  # fmt: skip

    def zero_init_last(self) -> None:
        """γ = 0 in the last BN, so the block starts as its shortcut (Goyal et al. 2017, §5.1)."""
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        if self._skips(x):  # stochastic depth dropped the branch for this mini-batch
            sc = x if self.downsample is None else self.downsample(x)
            return self.relu(sc.clone() if sc is x else sc)  # an in-place act must not touch x
        out = self.relu(self.bn1(self.conv1(x)))  # (N, planes, H/s, W/s)
        if self.dropout is not None:
            out = self.dropout(out)
        out = self.bn2(self.conv2(out))
        return self.relu(self._add(out, x))


class Bottleneck(_Residual):
    """1×1 reduce → 3×3 → 1×1 expand (×4), with BN, plus the shortcut (Fig. 5 right).

    Args:
        in_channels: input width.
        planes: width of the 1×1 and 3×3 convs for ResNet; the output is ``4 · planes``.
        stride: the block's stride (2 at the start of stages 3-5).
        shortcut: option ``"A"``, ``"B"`` or ``"C"``.
        stride_in_1x1: ``True`` strides the first 1×1 (the paper's original); ``False`` (default)
            strides the 3×3 (torchvision, "ResNet-B").
        residual: ``False`` drops the shortcut (a plain net).
        avg_down: ResNet-D projection shortcut.
        groups: cardinality, the groups of the 3×3 conv (ResNeXt).
        base_width: ResNeXt's d; the inner width is :func:`bottleneck_width`.
        dilation: of the 3×3 conv.
        norm_layer, act_layer, attn_layer, drop_path: as :class:`BasicBlock`.
    """

    expansion = 4

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
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: ActLayer = "relu",
        attn_layer: AttnLayer = None,
        drop_path: float | DropPath | None = None,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        width = bottleneck_width(planes, groups, base_width)
        self.groups, self.width = groups, width
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_channels, width, s1)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, s3, groups=groups, dilation=dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = norm_layer(out_channels)
        self.relu = create_act(act_layer, inplace=True)
        self._init_residual(in_channels, out_channels, stride, shortcut=shortcut, residual=residual,
                            avg_down=avg_down, norm_layer=norm_layer, attn_layer=attn_layer,
                            drop_path=drop_path)  # fmt: skip

    def zero_init_last(self) -> None:
        """γ = 0 in the last BN, so the block starts as its shortcut."""
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: Tensor) -> Tensor:
        if self._skips(x):
            sc = x if self.downsample is None else self.downsample(x)
            return self.relu(sc.clone() if sc is x else sc)
        out = self.relu(self.bn1(self.conv1(x)))  # (N, width, H, W), or H/s with stride_in_1x1
        out = self.relu(self.bn2(self.conv2(out)))  # (N, width, H/s, W/s)
        out = self.bn3(self.conv3(out))  # (N, 4·planes, H/s, W/s)
        return self.relu(self._add(out, x))


class PreActBasicBlock(_Residual):
    """Full pre-activation basic unit: ``conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut`` (ECCV 2016).

    Args: as :class:`BasicBlock`; a projection shortcut (option B/C) is a bare 1×1 conv on the
    pre-activated input. ``dropout`` sits between the convs, after the second BN-ReLU, as in Wide
    ResNets (Zagoruyko & Komodakis 2016, §2.4). ``preact=False`` leaves out the unit's own BN-ReLU
    (no ``bn1``) for an input that is already activated: the first unit after a conv-BN-ReLU stem,
    as fb.resnet.torch's ``preresnet.lua`` (the ImageNet code of He et al. 2016b) builds it.
    """

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: ShortcutOption = "B",
        residual: bool = True,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: ActLayer = "relu",
        attn_layer: AttnLayer = None,
        drop_path: float | DropPath | None = None,
        dropout: float = 0.0,
        preact: bool = True,
    ) -> None:
        super().__init__()
        _no_cardinality("PreActBasicBlock", groups, base_width)
        out_channels = planes * self.expansion
        self.bn1 = norm_layer(in_channels) if preact else None
        self.relu = create_act(act_layer, inplace=True)
        self.conv1 = conv3x3(in_channels, planes, stride, dilation=dilation)
        self.bn2 = norm_layer(planes)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2 = conv3x3(planes, out_channels, dilation=dilation)
        self._init_residual(in_channels, out_channels, stride, shortcut=shortcut, residual=residual,
                            avg_down=False, norm_layer=None, attn_layer=attn_layer,
                            drop_path=drop_path)  # fmt: skip

    def zero_init_last(self) -> None:
        """The last conv's weight = 0 (no BN ends the branch), so the unit starts as its shortcut."""
        nn.init.zeros_(self.conv2.weight)

    def forward(self, x: Tensor) -> Tensor:
        if self._skips(x):
            return x if self.downsample is None else self.downsample(self._preact(x))
        pre = self._preact(x)  # shared by the branch and a projection shortcut
        out = self.relu(self.bn2(self.conv1(pre)))
        if self.dropout is not None:
            out = self.dropout(out)
        return self._add(self.conv2(out), x if self.downsample is None else pre)


class PreActBottleneck(_Residual):
    """Full pre-activation bottleneck unit: BN-ReLU-1×1, BN-ReLU-3×3, BN-ReLU-1×1 (×4), + shortcut.

    Args: as :class:`Bottleneck` (cardinality included); a projection shortcut is a bare 1×1
    conv on the pre-activated input. ``stride_in_1x1=True`` is the authors' CIFAR code
    (resnet-1k-layers strides the first 1×1); the default strides the 3×3, as timm.
    ``preact=False`` leaves out ``bn1`` and its ReLU, as :class:`PreActBasicBlock`.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        shortcut: ShortcutOption = "B",
        stride_in_1x1: bool = False,
        residual: bool = True,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        act_layer: ActLayer = "relu",
        attn_layer: AttnLayer = None,
        drop_path: float | DropPath | None = None,
        preact: bool = True,
    ) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        width = bottleneck_width(planes, groups, base_width)
        self.groups, self.width = groups, width
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.bn1 = norm_layer(in_channels) if preact else None
        self.relu = create_act(act_layer, inplace=True)
        self.conv1 = conv1x1(in_channels, width, s1)
        self.bn2 = norm_layer(width)
        self.conv2 = conv3x3(width, width, s3, groups=groups, dilation=dilation)
        self.bn3 = norm_layer(width)
        self.conv3 = conv1x1(width, out_channels)
        self._init_residual(in_channels, out_channels, stride, shortcut=shortcut, residual=residual,
                            avg_down=False, norm_layer=None, attn_layer=attn_layer,
                            drop_path=drop_path)  # fmt: skip

    def zero_init_last(self) -> None:
        """The last conv's weight = 0, so the unit starts as its shortcut."""
        nn.init.zeros_(self.conv3.weight)

    def forward(self, x: Tensor) -> Tensor:
        if self._skips(x):
            return x if self.downsample is None else self.downsample(self._preact(x))
        pre = self._preact(x)
        out = self.relu(self.bn2(self.conv1(pre)))
        out = self.relu(self.bn3(self.conv2(out)))
        return self._add(self.conv3(out), x if self.downsample is None else pre)


class DeepStem(nn.Sequential):
    """ResNet-C's stem (Bag of Tricks §4.2): 3×3/2 conv, BN, ReLU, 3×3 conv, BN, ReLU, 3×3 conv.

    Widths 32, 32, 64 by default. The last conv's BN and ReLU are the network's ``bn1`` and
    ``relu``, as in timm (keys ``conv1.0``, ``conv1.1``, ``conv1.3``, ``conv1.4``, ``conv1.6``).
    """

    cost_type = "block"

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
