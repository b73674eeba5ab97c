"""The one builder of the MBConv lineage: MobileNet v1, v2, v3, MnasNet and EfficientNet.

Each network is a table of typed rows (:class:`BlockRow`, grouped into stages, in a
:class:`MBConvTable`), the way the papers print it (MobileNet v2's Table 2 of ``t, c, n, s`` rows,
MobileNet v3's Tables 1-2, EfficientNet's Table 1), and :class:`MBConvNet` builds any table, scaled
by a width multiplier (channels rounded as the TensorFlow code rounds them) and a depth multiplier
(repeats rounded up). The blocks are those of :mod:`cnnzoo.layers`:

=========  ===============================================  ===========================================
kind       block                                            where
=========  ===============================================  ===========================================
``ir``     :class:`~cnnzoo.layers.InvertedResidual`         MobileNet v2/v3, MnasNet, EfficientNet
           (the MBConv: 1×1 expand, depthwise, [SE], 1×1    (a row whose expanded width equals its
           linear projection, identity skip)                 input is the same block without the
                                                            expansion conv: a
                                                            :class:`~cnnzoo.layers.DepthwiseSeparableConv`
                                                            with a linear pointwise output, as timm
                                                            builds it: v2's t = 1, EfficientNet's
                                                            MBConv1, MnasNet's SepConv)
``ds``     :class:`~cnnzoo.layers.DepthwiseSeparableConv`   MobileNet v1 (Fig. 3): BN and activation
           with an activation after the pointwise conv      after both convs, no skip
``conv``   :class:`~cnnzoo.layers.ConvNormAct`              MobileNet v1's full-convolution twin
                                                            (Table 4)
=========  ===============================================  ===========================================

The layout, shared by the whole lineage (timm's ``EfficientNet``/``MobileNetV3`` names where they
apply): ``conv_stem`` (ConvNormAct), ``blocks.S.B`` (stage S, block B), ``conv_head`` (the 1×1 conv
at the last resolution: EfficientNet's stage 9, MobileNet v2's 1280-wide conv, v3's 960), then
``global_pool``, ``head_fc`` + ``head_act`` (MobileNet v3 only: the 1×1 "NBN" conv after the pool,
written as the Linear it is on a 1×1 map), ``dropout`` and ``classifier``. torchvision and timm
checkpoints load through the key maps in :mod:`cnnzoo.weights`.

Scaling (:func:`scale_width`, :func:`scale_depth`):

* **width** ``w``: every channel count c becomes ``make_divisible(c · w, 8)`` (the TF MobileNet v2/v3,
  MnasNet and EfficientNet rule: the nearest multiple of 8, at least 8, never more than 10% below
  c · w), or TF-slim MobileNet v1's ``max(int(c · w), 8)``. The head follows the table's
  ``head_scaling``: with the width (EfficientNet, v3), only above 1 (v2 §6.1: "we apply width
  multiplier to all layers except the very last convolutional layer" below 1) or never (MnasNet);
* **depth** ``d``: each row's repeats become ``ceil(n · d)`` (EfficientNet's official code, torchvision).

Drop connect (EfficientNet, Tan & Le 2019, §5.2; the official ``drop_connect_rate``): block i of N
(counted over the whole network from 0) drops its residual branch per sample with probability
``drop_path_rate · i / N``, rescaling the survivors by 1/keep in training, so evaluation is the
identity. Blocks without a skip ignore their rate, as the official code does.

Minimum input: every stride-2 layer maps s to ceil(s / 2) (symmetric padding, and TensorFlow's "SAME"
alike), so the last map is ceil(s / 32). BatchNorm that trains needs more than one value per
channel, so the smallest trainable side is the one whose last map is 2×2: total stride + 1 = 33.

Init (the official TensorFlow code, as torchvision's EfficientNet): convs N(0, 2 / fan_out), BN γ = 1,
β = 0, Linear weights U(±1/√out_features) and zero biases.
"""

from __future__ import annotations

import math
import numbers
from functools import partial
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.errors import ConfigError
from cnnzoo.layers import (
    ConvNormAct,
    DepthwiseSeparableConv,
    InvertedResidual,
    create_act,
    get_act,
    he_normal_init,
    init_weights_,
    make_divisible,
    norm_init,
)
from cnnzoo.layers.init import LayerInit, is_meta
from cnnzoo.models._config import imagenet_cfg
from cnnzoo.models.base import FeatureInfo, ZooModel
from cnnzoo.registry import ModelConfig

__all__ = [
    "BlockKind",
    "BlockRow",
    "MBConvTable",
    "MBConvNet",
    "check_multiplier",
    "scale_width",
    "scale_depth",
    "drop_path_rates",
    "mbconv_config",
    "MIN_INPUT_SIZE",
    "SMALL_INPUT_SIZE",
]

#: total stride 32 + 1: the last map 2×2, where BatchNorm still trains (module docstring)
MIN_INPUT_SIZE = 33
#: Fashion-MNIST's 28×28 resized to 64×64: 2×2 maps in the last stage, cheap on a CPU
SMALL_INPUT_SIZE = 64

BlockKind = Literal["ir", "ds", "conv"]
WidthRounding = Literal["divisible", "floor"]
HeadScaling = Literal["width", "width_above_1", "fixed"]


class BlockRow(NamedTuple):
    """One row of a paper's table: ``repeats`` blocks of one kind, the first with ``stride``.

    Attributes:
        kind: ``"ir"`` (MBConv), ``"ds"`` (MobileNet v1's separable conv) or ``"conv"`` (a full
            conv), see the module docstring.
        repeats: n, the blocks in the row (before the depth multiplier).
        kernel: k of the depthwise (or full) conv.
        stride: s of the row's first block; the others have stride 1.
        expansion: t, the MBConv's expanded width over its input width (1 for ``ds``/``conv``).
        channels: c, the output width (before the width multiplier).
        se: squeeze-and-excitation ratio (0.25 in MnasNet-A1, v3, EfficientNet), 0 for none.
        act: this row's activation (MobileNet v3's RE / HS column), ``None`` for the network's.
        mid: MobileNet v3's "exp size", the expanded width itself (before the width multiplier),
            which then overrides ``expansion``.
    """

    kind: BlockKind
    repeats: int
    kernel: int
    stride: int
    expansion: float
    channels: int
    se: float = 0.0
    act: str | None = None
    mid: int | None = None


class MBConvTable(NamedTuple):
    """A whole network as data: the stem width, the stages of rows, the head and the SE's parts.

    Attributes:
        stem: width of the stem's 3×3/2 conv.
        stages: the stages (``blocks.0``, ``blocks.1``, ...), each a tuple of rows.
        act: the network's activation (stem, head, and rows whose ``act`` is None).
        head: width of ``conv_head``, the 1×1 conv after the last stage (``None``: none, v1).
        head_fc: width of MobileNet v3's 1×1 conv after the pool (``None``: none).
        head_scaling: how the head widths follow the width multiplier (module docstring).
        width_rounding: ``"divisible"`` (by 8) or ``"floor"`` (TF-slim v1).
        se_from: the SE squeeze width is ``se`` × the block's input (``"in"``: MnasNet,
            EfficientNet) or × its expanded width (``"mid"``: MobileNet v3).
        se_act: the SE's inner activation (``None``: the block's).
        se_gate: the SE's gate (sigmoid; v3's hard sigmoid).
        se_divisor: round the squeeze width to a multiple of this (v3: 8).
    """

    stem: int
    stages: tuple[tuple[BlockRow, ...], ...]
    act: str
    head: int | None = None
    head_fc: int | None = None
    head_scaling: HeadScaling = "width"
    width_rounding: WidthRounding = "divisible"
    se_from: Literal["in", "mid"] = "in"
    se_act: str | None = None
    se_gate: str = "sigmoid"
    se_divisor: int = 1


def check_multiplier(name: str, value: object) -> float:
    """``value`` as a float if it is a finite real number > 0, else one clear :class:`ConfigError`."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:  # type: ignore[operator]
        raise ConfigError(
            f"{name} must be a number > 0 (a multiplier of the paper's {'widths' if name == 'width' else 'depths'}), "
            f"got {value!r}; pass e.g. {name}=0.5 or {name}=1.0"
        )
    return float(value)  # type: ignore[arg-type]


def scale_width(channels: int, width: float, rounding: WidthRounding = "divisible") -> int:
    """A channel count under the width multiplier (module docstring)."""
    if rounding == "floor":
        return max(int(channels * width), 8)
    return make_divisible(channels * width, 8)


def scale_depth(repeats: int, depth: float) -> int:
    """A row's repeats under the depth multiplier: ``ceil(n · d)``."""
    return int(math.ceil(repeats * depth))


def drop_path_rates(num_blocks: int, rate: float) -> list[float]:
    """EfficientNet's drop-connect rates: ``rate · i / N`` for block i = 0 … N − 1."""
    return [rate * i / num_blocks for i in range(num_blocks)]


def mbconv_config(
    *,
    family: str,
    paper: str,
    year: int,
    notes: str,
    input_size: int = 224,
    reported: dict[str, Any] | None = None,
    macs: dict[str, Any] | None = None,
) -> ModelConfig:
    """The registry config every family of the lineage shares: ImageNet at ``input_size``, the
    minimum 33, Fashion-MNIST resized to 64, and the paper's reported accuracy and MACs."""
    extra: dict[str, Any] = {}
    if reported is not None:
        extra["reported"] = {"dataset": "imagenet", "crop": input_size, **reported}
    if macs is not None:
        extra["macs"] = macs
    return imagenet_cfg(
        paper=paper,
        year=year,
        family=family,
        notes=notes,
        extra=extra,
        input_size=input_size,
        min_input_size=MIN_INPUT_SIZE,
        small_input_size=SMALL_INPUT_SIZE,
    )


def _dense_uniform_init() -> LayerInit:
    """The official EfficientNet dense init: weights U(±1/√out_features), bias 0."""

    @torch.no_grad()
    def init(layer: nn.Module) -> None:
        if is_meta(layer):
            return
        bound = 1.0 / math.sqrt(layer.out_features)
        nn.init.uniform_(layer.weight, -bound, bound)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)

    return init


def _check_rate(name: str, value: object) -> float:
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and 0.0 <= value < 1.0):
        raise ConfigError(f"{name} must be a probability in [0, 1), got {value!r}; pass e.g. {name}=0.2")
    return float(value)


class MBConvNet(ZooModel):
    """A network of the MBConv lineage, built from one :class:`MBConvTable`.

    Stages (``feature_info``): the last block (or layer) at each resolution, from 1/2 to 1/32;
    at 1/32 that is ``conv_head`` where the table has one. Classifier (``head_name``): ``classifier``.

    Args:
        table: the network.
        num_classes, in_chans: classifier outputs and input channels.
        width: width multiplier α (> 0).
        depth: depth multiplier (> 0; EfficientNet's coefficient).
        act: the network's activation, overriding the table's (e.g. ``"relu6"`` for MobileNet v1's
            TensorFlow release); rows that name their own (MobileNet v3's ReLU rows) keep theirs.
        dropout: dropout before the classifier.
        drop_path_rate: EfficientNet's drop connect, rising linearly to this over the blocks.
        bn_eps, bn_momentum: BatchNorm's (PyTorch convention: momentum 0.01 is TF's decay 0.99).
        padding: ``None`` (symmetric) or ``"same"`` (TensorFlow's, for the official checkpoints).
    """

    def __init__(
        self,
        table: MBConvTable,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        width: float = 1.0,
        depth: float = 1.0,
        act: str | None = None,
        dropout: float = 0.2,
        drop_path_rate: float = 0.0,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        padding: Literal["same"] | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.width = check_multiplier("width", width)
        self.depth = check_multiplier("depth", depth)
        dropout = _check_rate("dropout", dropout)
        drop_path_rate = _check_rate("drop_path_rate", drop_path_rate)
        if padding not in (None, "same"):
            raise ConfigError(f"padding must be None (symmetric) or 'same' (TensorFlow's), got {padding!r}")
        self.act = act or table.act
        get_act(self.act)  # an unknown name fails here, in one line that lists the known ones
        self.table = table
        self._norm = partial(nn.BatchNorm2d, eps=bn_eps, momentum=bn_momentum)
        self._padding = padding

        stem = scale_width(table.stem, self.width, table.width_rounding)
        self.conv_stem = ConvNormAct(in_chans, stem, 3, 2, padding=padding, norm_layer=self._norm,
                                     act_layer=self.act)  # fmt: skip
        taps = [FeatureInfo("conv_stem", stem, 2)]
        self.blocks = self._make_stages(stem, drop_path_rate, taps)
        channels, reduction = taps[-1].channels, taps[-1].reduction
        self.total_stride = reduction
        self.min_input_size = reduction + 1  # the last map 2×2: MIN_INPUT_SIZE at total stride 32

        self.conv_head = None
        if table.head is not None:
            head = self._head_width(table.head)
            self.conv_head = ConvNormAct(channels, head, 1, norm_layer=self._norm, act_layer=self.act)
            channels = head
            taps.append(FeatureInfo("conv_head", channels, reduction))
        self.feature_info = _last_per_reduction(taps)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_fc = self.head_act = None
        if table.head_fc is not None:
            self.head_fc = nn.Linear(channels, self._head_width(table.head_fc))
            self.head_act = create_act(self.act, inplace=True)
            channels = self.head_fc.out_features
        self.num_features = channels
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, num_classes)
        self.head_name = "classifier"
        init_weights_(self, {nn.Conv2d: he_normal_init("fan_out"), nn.BatchNorm2d: norm_init(),
                             nn.Linear: _dense_uniform_init()})  # fmt: skip

    def _head_width(self, channels: int) -> int:
        rule = self.table.head_scaling
        width = {"width": self.width, "width_above_1": max(self.width, 1.0), "fixed": 1.0}[rule]
        return scale_width(channels, width, self.table.width_rounding)

    def _make_stages(self, channels: int, drop_path_rate: float, taps: list[FeatureInfo]) -> nn.Sequential:
        """``blocks``: one ``nn.Sequential`` per stage; appends each block's tap to ``taps``."""
        t = self.table
        rows = [[r._replace(repeats=scale_depth(r.repeats, self.depth)) for r in stage] for stage in t.stages]
        rates = iter(drop_path_rates(sum(r.repeats for stage in rows for r in stage), drop_path_rate))
        reduction = taps[-1].reduction
        stages = []
        for s, stage in enumerate(rows):
            blocks: list[nn.Module] = []
            for row in stage:
                out = scale_width(row.channels, self.width, t.width_rounding)
                for i in range(row.repeats):
                    stride = row.stride if i == 0 else 1
                    blocks.append(self._block(row, channels, out, stride, next(rates)))
                    channels, reduction = out, reduction * stride
                    taps.append(FeatureInfo(f"blocks.{s}.{len(blocks) - 1}", channels, reduction))
            stages.append(nn.Sequential(*blocks))
        return nn.Sequential(*stages)

    def _block(self, row: BlockRow, cin: int, cout: int, stride: int, drop_path: float) -> nn.Module:
        """One block of a row (see the kinds in the module docstring)."""
        t, act = self.table, row.act or self.act
        common = dict(padding=self._padding, norm_layer=self._norm)
        if row.kind == "conv":
            return ConvNormAct(cin, cout, row.kernel, stride, act_layer=act, **common)
        if row.kind == "ds":
            return DepthwiseSeparableConv(cin, cout, row.kernel, stride, act_layer=act, pw_act=True,
                                          skip=False, **common)  # fmt: skip
        se = dict(se_ratio=row.se, se_act=t.se_act, se_gate=t.se_gate, se_divisor=t.se_divisor)
        if row.mid is not None:
            mid = scale_width(row.mid, self.width, t.width_rounding)
        else:
            mid = int(round(cin * row.expansion))
        if mid == cin:  # no expansion: the DS block with a linear pointwise conv (timm's layout)
            return DepthwiseSeparableConv(cin, cout, row.kernel, stride, act_layer=act, drop_path=drop_path,
                                          **se, **common)  # fmt: skip
        return InvertedResidual(cin, cout, row.kernel, stride, mid_channels=mid, act_layer=act,
                                se_from=t.se_from, drop_path=drop_path, **se, **common)  # fmt: skip

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.conv_stem(x)  # (N, stem, H/2, W/2)
        x = self.blocks(x)  # (N, C, H/32, W/32)
        if self.conv_head is not None:
            x = self.conv_head(x)  # (N, head, H/32, W/32)
        return x

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.global_pool(x), 1)  # (N, C)
        if self.head_fc is not None:
            x = self.head_act(self.head_fc(x))  # MobileNet v3's 1×1 NBN conv on the pooled map
        if pre_logits:
            return x
        return self.classifier(self.dropout(x))


def _last_per_reduction(taps: list[FeatureInfo]) -> list[FeatureInfo]:
    """The stages: the last tap at each reduction (the last layer at each resolution)."""
    last: dict[int, FeatureInfo] = {}
    for tap in taps:
        last[tap.reduction] = tap
    return list(last.values())
