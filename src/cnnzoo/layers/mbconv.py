"""Depthwise-separable blocks: Xception's separable conv, MobileNet's DS block and the MBConv.

* :class:`SeparableConv2d` (Chollet, "Xception", CVPR 2017, §3): a depthwise k×k conv then a
  pointwise 1×1 conv, with no norm or activation between them (the paper found none best).
* :class:`DepthwiseSeparableConv` (Howard et al., "MobileNets", 2017, Fig. 3): depthwise conv →
  BN → act → pointwise conv → BN → act. With ``pw_act=False`` the pointwise output is linear and
  with ``se_ratio`` an SE block sits between the two, which is the first block of MnasNet and
  EfficientNet (expansion 1); a skip is added where the shapes allow it (``skip=False`` for
  MobileNet v1, which has none).
* :class:`InvertedResidual`, the MBConv (Sandler et al., "MobileNetV2", CVPR 2018, Table 1 and
  Fig. 4d): 1×1 expansion (× t) → BN → act → depthwise k×k → BN → act → [SE] → 1×1 linear
  projection → BN, plus the identity when the stride is 1 and the widths match. MobileNet v3
  (h-swish, hard-sigmoid SE of the expanded width), MnasNet and EfficientNet (swish, SE of 0.25 ×
  the block's *input* width, drop connect) are arguments of the same block.

Submodule names are timm's (``_efficientnet_blocks.py``): ``conv_pw``, ``bn1``, ``act1``,
``conv_dw``, ``bn2``, ``act2``, ``se``, ``conv_pwl``, ``bn3``, ``drop_path`` for the MBConv;
``conv_dw``, ``bn1``, ``act1``, ``se``, ``conv_pw``, ``bn2``, ``act2`` for the DS block (the
activations hold no keys, so timm's state_dict keys are ours unchanged; torchvision's
``block.N.M`` keys go through a key map). A part that is off (no expansion at t = 1, no SE, no
drop path) is ``None``: no module, no key, no row.

Drop path here defaults to the per-sample, rescale-in-training form (EfficientNet's official drop
connect, timm and torchvision), so eval is the identity. A rate given to a block without a skip
is ignored, as the official code ignores it: a network's rates can rise over all its blocks.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from cnnzoo.errors import ConfigError
from cnnzoo.layers.activations import ActLayer, create_act
from cnnzoo.layers.conv import NormLayer, Padding, create_conv2d, make_divisible
from cnnzoo.layers.drop import DropPath, as_drop_path
from cnnzoo.layers.squeeze_excite import SqueezeExcite

__all__ = ["SeparableConv2d", "DepthwiseSeparableConv", "InvertedResidual"]


def _se(
    channels: int, base: int, ratio: float, divisor: int, act: ActLayer, gate: ActLayer
) -> SqueezeExcite | None:
    """An SE block on ``channels`` squeezing to ``make_divisible(base · ratio, divisor)``, or None."""
    if not ratio:
        return None
    return SqueezeExcite(
        channels, rd_channels=make_divisible(base * ratio, divisor), act_layer=act, gate_layer=gate
    )


class SeparableConv2d(nn.Module):
    """Depthwise k×k conv then pointwise 1×1 conv, no norm or activation between (Xception, §3).

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, dilation: of the depthwise conv.
        padding: see :func:`~cnnzoo.layers.conv.create_conv2d` (``"same"`` for TensorFlow's).
        bias: conv biases (off: BN follows in Xception).

    Submodules ``conv_dw`` and ``conv_pw`` (timm's ``xception``).
    """

    cost_type = "block"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        dilation: int = 1,
        padding: Padding = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.conv_dw = create_conv2d(in_channels, in_channels, kernel_size, stride, padding=padding,
                                     dilation=dilation, groups=in_channels, bias=bias)  # fmt: skip
        self.conv_pw = create_conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_pw(self.conv_dw(x))

    def cost_details(self) -> dict[str, int]:
        return {"kernel": self.kernel_size, "stride": self.stride}


class DepthwiseSeparableConv(nn.Module):
    """Depthwise conv → BN → act → [SE] → pointwise conv → BN [→ act], [+ skip].

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, dilation: of the depthwise conv.
        padding: ``None`` (symmetric) or ``"same"`` (TensorFlow).
        act_layer: activation (ReLU in MobileNet v1; ReLU6 in its TF release; swish in EfficientNet).
        pw_act: an activation after the pointwise conv too (MobileNet v1) instead of a linear output.
        se_ratio: SE squeeze ratio of the input width (0.25 in EfficientNet), 0 for none.
        se_act: the SE's inner activation (default: ``act_layer``).
        se_gate: the SE's gate (sigmoid).
        se_divisor: round the squeeze width to a multiple of this.
        norm_layer: norm factory (BN; ``partial(nn.BatchNorm2d, eps=1e-3)`` for TensorFlow's).
        skip: add the input when stride is 1 and the widths match (``False``: never, MobileNet v1).
        drop_path: drop-path rate (per sample) or a :class:`~cnnzoo.layers.drop.DropPath`.
    """

    cost_type = "block"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        dilation: int = 1,
        padding: Padding = None,
        act_layer: ActLayer = "relu",
        pw_act: bool = False,
        se_ratio: float = 0.0,
        se_act: ActLayer = None,
        se_gate: ActLayer = "sigmoid",
        se_divisor: int = 1,
        norm_layer: NormLayer = nn.BatchNorm2d,
        skip: bool = True,
        drop_path: float | DropPath | None = None,
    ) -> None:
        super().__init__()
        norm = norm_layer or nn.Identity
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.has_skip = skip and stride == 1 and in_channels == out_channels
        self.conv_dw = create_conv2d(in_channels, in_channels, kernel_size, stride, padding=padding,
                                     dilation=dilation, groups=in_channels)  # fmt: skip
        self.bn1 = norm(in_channels)
        self.act1 = create_act(act_layer, inplace=True)
        self.se = _se(in_channels, in_channels, se_ratio, se_divisor, se_act or act_layer, se_gate)
        self.conv_pw = create_conv2d(in_channels, out_channels, 1, padding=padding)
        self.bn2 = norm(out_channels)
        self.act2 = create_act(act_layer, inplace=True) if pw_act else None
        self.drop_path = as_drop_path(drop_path, mode="sample") if self.has_skip else None

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_path is not None and self.drop_path.drops_branch(x):
            return x
        out = self.bn1(self.conv_dw(x))  # (N, C_in, H/s, W/s)
        if self.act1 is not None:
            out = self.act1(out)
        if self.se is not None:
            out = self.se(out)
        out = self.bn2(self.conv_pw(out))  # (N, C_out, H/s, W/s)
        if self.act2 is not None:
            out = self.act2(out)
        if not self.has_skip:
            return out
        if self.drop_path is not None:
            out = self.drop_path(out, survived=True)
        return out + x

    def cost_details(self) -> dict[str, int | bool]:
        return {"kernel": self.kernel_size, "stride": self.stride, "se": self.se is not None,
                "residual": self.has_skip}  # fmt: skip


class InvertedResidual(nn.Module):
    """The MBConv: 1×1 expand → BN → act → depthwise k×k → BN → act → [SE] → 1×1 project → BN [+ x].

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, dilation: of the depthwise conv (3 or 5; stride 1 or 2).
        expand_ratio: t, the expanded width is ``round(in_channels · t)`` (MobileNet v2: 6).
        mid_channels: the expanded width itself (MobileNet v3's "exp size"), overriding t. Where it
            equals ``in_channels`` there is no expansion conv (``conv_pw`` is None), as in
            torchvision's t = 1 blocks.
        padding: ``None`` (symmetric) or ``"same"`` (TensorFlow, for the ``tf_`` EfficientNets).
        act_layer: ReLU6 (MobileNet v2), ReLU (MnasNet), h-swish (v3), swish (EfficientNet).
        se_ratio: SE squeeze ratio (0.25 in MnasNet, v3 and EfficientNet), 0 for no SE.
        se_from: ``"in"``: the squeeze width is ``se_ratio`` × the block's input width
            (EfficientNet and MnasNet's TF code); ``"mid"``: × the expanded width (MobileNet v3).
        se_act: the SE's inner activation (default: ``act_layer``; MobileNet v3 uses ReLU).
        se_gate: the SE's gate (sigmoid; MobileNet v3 uses ``"hard_sigmoid"``).
        se_divisor: round the squeeze width to a multiple of this (8 in MobileNet v3).
        norm_layer: norm factory (BN; TensorFlow's eps 1e-3 via ``functools.partial``).
        skip: add the input when stride is 1 and the widths match.
        drop_path: drop-connect rate (per sample, 1/keep in training) or a ``DropPath``.
    """

    cost_type = "block"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        expand_ratio: float = 6.0,
        mid_channels: int | None = None,
        dilation: int = 1,
        padding: Padding = None,
        act_layer: ActLayer = "relu6",
        se_ratio: float = 0.0,
        se_from: Literal["in", "mid"] = "in",
        se_act: ActLayer = None,
        se_gate: ActLayer = "sigmoid",
        se_divisor: int = 1,
        norm_layer: NormLayer = nn.BatchNorm2d,
        skip: bool = True,
        drop_path: float | DropPath | None = None,
    ) -> None:
        super().__init__()
        if se_from not in ("in", "mid"):
            raise ConfigError(
                f"se_from must be 'in' (the block's input width) or 'mid' (expanded), got {se_from!r}"
            )
        mid = int(round(in_channels * expand_ratio)) if mid_channels is None else mid_channels
        if mid < 1:
            raise ConfigError(
                f"an inverted residual needs an expanded width >= 1, got {mid} (expand_ratio={expand_ratio})"
            )
        norm = norm_layer or nn.Identity
        self.in_channels, self.out_channels, self.mid_channels = in_channels, out_channels, mid
        self.kernel_size, self.stride = kernel_size, stride
        self.has_skip = skip and stride == 1 and in_channels == out_channels
        expands = mid != in_channels
        self.conv_pw = create_conv2d(in_channels, mid, 1, padding=padding) if expands else None
        self.bn1 = norm(mid) if expands else None
        self.act1 = create_act(act_layer, inplace=True) if expands else None
        self.conv_dw = create_conv2d(
            mid, mid, kernel_size, stride, padding=padding, dilation=dilation, groups=mid
        )
        self.bn2 = norm(mid)
        self.act2 = create_act(act_layer, inplace=True)
        se_base = in_channels if se_from == "in" else mid
        self.se = _se(mid, se_base, se_ratio, se_divisor, se_act or act_layer, se_gate)
        self.conv_pwl = create_conv2d(mid, out_channels, 1, padding=padding)
        self.bn3 = norm(out_channels)
        self.drop_path = as_drop_path(drop_path, mode="sample") if self.has_skip else None

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_path is not None and self.drop_path.drops_branch(x):
            return x
        out = x
        if self.conv_pw is not None:
            out = self.bn1(self.conv_pw(out))  # (N, t·C_in, H, W)
            if self.act1 is not None:
                out = self.act1(out)
        out = self.bn2(self.conv_dw(out))  # (N, t·C_in, H/s, W/s)
        if self.act2 is not None:
            out = self.act2(out)
        if self.se is not None:
            out = self.se(out)
        out = self.bn3(self.conv_pwl(out))  # (N, C_out, H/s, W/s): linear, no activation
        if not self.has_skip:
            return out
        if self.drop_path is not None:
            out = self.drop_path(out, survived=True)
        return out + x

    def cost_details(self) -> dict[str, int | str | bool]:
        ratio = self.mid_channels / self.in_channels
        expansion: int | str = int(ratio) if ratio == int(ratio) else f"{ratio:.3g}"
        return {"expansion": expansion, "kernel": self.kernel_size, "stride": self.stride,
                "se": self.se is not None, "residual": self.has_skip}  # fmt: skip
