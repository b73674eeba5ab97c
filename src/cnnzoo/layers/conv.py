"""Convolutions: :class:`ConvNormAct`, ``conv1x1``/``conv3x3``, TensorFlow "SAME" padding, ``make_divisible``.

* :func:`create_conv2d` makes any 2-d convolution (grouped, depthwise, dilated) with one of two
  padding conventions:

  - **symmetric** (PyTorch's, the default): ``dilation · (k − 1) // 2`` on every side, so a stride-1
    conv keeps the size and a stride-s conv gives ceil(H / s) for odd kernels;
  - **TensorFlow "SAME"** (``padding="same"``): total padding ``max((ceil(H / s) − 1) · s +
    (k − 1) · d + 1 − H, 0)``, the smaller half before and the larger after. Where that total is
    even for every input size (stride 1 and an odd effective kernel) it equals the symmetric
    padding and the conv is a plain ``nn.Conv2d``; otherwise (stride 2, the case of the official
    EfficientNet and MnasNet checkpoints) it depends on the input size and is computed at run time
    by :class:`Conv2dSame`, as TensorFlow does. For an even input and a 3×3/2 conv, TF pads 0
    before and 1 after where PyTorch pads 1 and 1, which shifts every later map by one pixel:
    weights trained in TF need it to give TF's logits.

* :class:`ConvNormAct` is conv → norm → activation, each passed in (a factory or ``None``), with
  the conv's bias on by default only where no norm follows. Submodules ``conv``, ``bn``, ``act``
  (timm's names; torchvision's ``BasicConv2d`` uses the first two).

* :func:`make_divisible` is the channel rounding of the TensorFlow MobileNet / EfficientNet code
  (and torchvision's ``_make_divisible``).

No lazy layers: every conv is built with its channel counts, so parameter counts are known
before the first forward pass (and on the meta device).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.errors import ConfigError
from cnnzoo.layers.activations import ActLayer, create_act

__all__ = [
    "NormLayer",
    "Padding",
    "make_divisible",
    "get_padding",
    "same_padding",
    "is_static_same",
    "pad_same",
    "Conv2dSame",
    "create_conv2d",
    "conv1x1",
    "conv3x3",
    "ConvNormAct",
]

#: A block's ``norm_layer``: a factory called with the channel count, or ``None`` for no norm.
NormLayer = Callable[[int], nn.Module] | None
#: ``None`` (symmetric), an explicit int / (h, w), ``"same"`` (TensorFlow) or ``"valid"`` (0).
Padding = int | tuple[int, int] | str | None

_Size = int | tuple[int, int]


def _pair(v: _Size) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round ``v`` to the nearest multiple of ``divisor``, never below ``min_value`` (default: the
    divisor) and never more than ``1 − round_limit`` below ``v`` (then one divisor more).

    The TensorFlow MobileNet v2/v3 and EfficientNet rule for channel counts scaled by a width
    multiplier: ``make_divisible(32 * 0.35) == 16``, ``make_divisible(18) == 24``.
    """
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:  # rounding down lost more than 10%
        new_v += divisor
    return new_v


def get_padding(kernel_size: int, stride: int = 1, dilation: int = 1) -> int:
    """PyTorch-style symmetric padding: ``dilation · (kernel_size − 1) // 2`` (stride-independent)."""
    return dilation * (kernel_size - 1) // 2


def same_padding(size: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one spatial dimension: (before, after), after ≥ before."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel_size - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def is_static_same(kernel_size: _Size, stride: _Size = 1, dilation: _Size = 1) -> bool:
    """Whether "SAME" padding is the same for every input size (and symmetric): in both dimensions
    a 1-wide kernel (no padding at any stride), or stride 1 and an even ``dilation · (k − 1)``."""
    return all(
        k == 1 or (s == 1 and (d * (k - 1)) % 2 == 0)
        for k, s, d in zip(_pair(kernel_size), _pair(stride), _pair(dilation), strict=True)
    )


def pad_same(x: Tensor, kernel_size: _Size, stride: _Size = 1, dilation: _Size = 1) -> Tensor:
    """Zero-pad ``x`` (N, C, H, W) as TensorFlow's "SAME" does before a conv or pool."""
    (kh, kw), (sh, sw), (dh, dw) = _pair(kernel_size), _pair(stride), _pair(dilation)
    top, bottom = same_padding(x.shape[-2], kh, sh, dh)
    left, right = same_padding(x.shape[-1], kw, sw, dw)
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom))
    return x


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding computed from the input size at run time.

    Same parameters and state_dict keys as ``nn.Conv2d`` (``weight``, ``bias``); its own
    ``padding`` is 0 and the asymmetric padding is applied to the input in :meth:`forward`.
    """

    cost_type = "conv"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _Size, stride: _Size = 1,
                 dilation: _Size = 1, groups: int = 1, bias: bool = True) -> None:  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = pad_same(x, self.kernel_size, self.stride, self.dilation)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", padding=SAME (TensorFlow)"


def _check_groups(in_channels: int, out_channels: int, groups: int) -> None:
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ConfigError(
            f"a conv from {in_channels} to {out_channels} channels cannot have groups={groups}: "
            f"use a group count that divides both channel counts"
        )


def create_conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: _Size,
    stride: _Size = 1,
    *,
    padding: Padding = None,
    dilation: _Size = 1,
    groups: int = 1,
    bias: bool = False,
) -> nn.Conv2d:
    """A 2-d convolution with symmetric, explicit, "same" (TensorFlow) or "valid" padding.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, dilation: ints or (h, w) pairs.
        padding: ``None`` symmetric (:func:`get_padding`), an int or pair, ``"same"`` TensorFlow
            "SAME" (a plain ``nn.Conv2d`` where it is static, else :class:`Conv2dSame`), or
            ``"valid"`` (no padding).
        groups: ``in_channels`` for a depthwise conv; must divide both channel counts.
        bias: add a bias (off by default: a norm usually follows).

    Raises:
        ConfigError: for groups that do not divide the channels or an unknown padding name.
    """
    _check_groups(in_channels, out_channels, groups)
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "same" and not is_static_same(kernel_size, stride, dilation):
            return Conv2dSame(in_channels, out_channels, kernel_size, stride, dilation, groups, bias)
        if mode not in ("same", "valid"):
            raise ConfigError(f"padding must be None, an int, 'same' or 'valid', got {padding!r}")
        padding = None if mode == "same" else 0  # static "SAME" is the symmetric padding
    if padding is None:
        padding = tuple(get_padding(k, s, d) for k, s, d in zip(_pair(kernel_size), _pair(stride),
                                                                 _pair(dilation), strict=True))  # fmt: skip
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)


def conv3x3(
    in_channels: int, out_channels: int, stride: int = 1, *, groups: int = 1, dilation: int = 1
) -> nn.Conv2d:
    """3×3 convolution with padding ``dilation`` (size kept at stride 1) and no bias (BN follows)."""
    return create_conv2d(in_channels, out_channels, 3, stride, dilation=dilation, groups=groups)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1, *, groups: int = 1) -> nn.Conv2d:
    """1×1 convolution with no bias (BN follows)."""
    return create_conv2d(in_channels, out_channels, 1, stride, groups=groups)


class ConvNormAct(nn.Module):
    """Convolution → norm → activation, each part passed in.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, dilation: of the conv (ints or pairs).
        padding: see :func:`create_conv2d` (``None`` symmetric, ``"same"`` TensorFlow).
        groups: 1 (dense), ``in_channels`` (depthwise) or any count dividing both widths.
        bias: conv bias; ``None`` (default) adds one only when there is no norm.
        norm_layer: factory called with ``out_channels`` (``nn.BatchNorm2d``, or e.g.
            ``functools.partial(nn.BatchNorm2d, eps=1e-3)`` for TensorFlow's epsilon), or ``None``.
        act_layer: an activation name, class or factory (:func:`~cnnzoo.layers.activations.get_act`),
            or ``None`` for a linear output.
        inplace: let the activation overwrite its input (where it can).

    Submodules: ``conv``, ``bn`` and ``act``; a part passed as ``None`` is ``None`` (no module and
    no key).
    """

    cost_type = "block"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _Size = 3,
        stride: _Size = 1,
        *,
        padding: Padding = None,
        dilation: _Size = 1,
        groups: int = 1,
        bias: bool | None = None,
        norm_layer: NormLayer = nn.BatchNorm2d,
        act_layer: ActLayer = "relu",
        inplace: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        bias = norm_layer is None if bias is None else bias
        self.conv = create_conv2d(in_channels, out_channels, kernel_size, stride, padding=padding,
                                  dilation=dilation, groups=groups, bias=bias)  # fmt: skip
        self.bn = norm_layer(out_channels) if norm_layer is not None else None
        self.act = create_act(act_layer, inplace=inplace)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x
