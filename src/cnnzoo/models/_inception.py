"""The shared builder of GoogLeNet's descendants: a network as rows of named layers.

BN-Inception (Ioffe & Szegedy 2015), Inception v3 (Szegedy et al. 2016), Inception v4 and
Inception-ResNet (Szegedy et al. 2017) are each a stem of convs and pools, then Inception modules
at three or four grid sizes with grid reductions between them, then global average pooling, dropout
and a linear classifier. Each registered network is therefore a table of :class:`Row` s, named
after its paper, whose specs (:mod:`cnnzoo.layers.inception`: :class:`ConvSpec`, :class:`PoolSpec`,
:class:`BlockSpec`; :class:`Stage` for repeated blocks; a family's own spec with the same three
methods) build the layers, and :class:`InceptionNet` derives the rest from the table:

* **stages** (``feature_info``): a stage ends at the last row before one that downsamples, and at
  the last row, with the total stride the rows have reached;
* **minimum input size** (:func:`min_input_side`): the smallest square side at which every row's
  map is non-empty (VALID convs and pools shrink the maps), the branches of every module agree,
  the last map is at least 2×2 (a BatchNorm that sees one value per channel cannot train; see
  :mod:`cnnzoo.models.resnet`), and the auxiliary head, if any, gets the map it needs;
* **auxiliary head** (:class:`AuxSpec`): built right after the row it taps (registration follows
  the forward order), run in training only; the model then returns :class:`InceptionOutputs` and
  :meth:`InceptionNet.loss` adds the head's weighted loss;
* ``transform_input``: torchvision's option for weights ported from TensorFlow, which expect inputs
  scaled to [-1, 1]: it maps an ImageNet-normalised batch there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.data.constants import IMAGENET_MEAN, IMAGENET_STD
from cnnzoo.errors import ConfigError
from cnnzoo.layers.inception import HW, BlockSpec
from cnnzoo.layers.init import LayerInit, init_weights_
from cnnzoo.models.base import FeatureInfo, InputShapeError, ZooModel

__all__ = [
    "Row",
    "Stage",
    "repeat",
    "AuxSpec",
    "InceptionOutputs",
    "InceptionNet",
    "map_sides",
    "min_input_side",
]


class Row(NamedTuple):
    """One named layer of a network table. ``spec`` has ``out_channels(c)``, ``out_hw(hw)``,
    ``build(c, norm)`` and ``stride``: a ConvSpec, PoolSpec, BlockSpec, :class:`Stage`, or a
    family's own spec."""

    name: str
    spec: Any


class Stage(NamedTuple):
    """Blocks run one after another, built as an ``nn.Sequential`` (``name.0``, ``name.1``, ...)."""

    blocks: tuple[BlockSpec, ...]

    @property
    def stride(self) -> int:
        s = 1
        for b in self.blocks:
            s *= b.stride
        return s

    def out_channels(self, in_channels: int) -> int:
        for b in self.blocks:
            in_channels = b.out_channels(in_channels)
        return in_channels

    def out_hw(self, hw: HW) -> HW:
        for b in self.blocks:
            hw = b.out_hw(hw)
        return hw

    def build(self, in_channels: int, norm: bool = True) -> nn.Sequential:
        layers = []
        for b in self.blocks:
            layers.append(b.build(in_channels, norm))
            in_channels = b.out_channels(in_channels)
        return nn.Sequential(*layers)


def repeat(block: BlockSpec, n: int, *, last: BlockSpec | None = None) -> Stage:
    """``n`` copies of ``block`` (then ``last``, if given) as one :class:`Stage`."""
    return Stage((block,) * n + ((last,) if last is not None else ()))


class AuxSpec(NamedTuple):
    """An auxiliary classifier: where it taps, how it is built, what it needs, what it weighs.

    Attributes:
        name: its module name (``aux``; torchvision's ``AuxLogits``).
        tap: the row whose output it classifies.
        build: ``build(in_channels, num_classes)`` returns the head; the head's ``head_name``
            names its classifier layer.
        min_side: the smallest map side at the tap that the head takes.
        weight: its loss weight: ``loss = main + weight · aux``.
    """

    name: str
    tap: str
    build: Callable[[int, int], nn.Module]
    min_side: int
    weight: float


class InceptionOutputs(NamedTuple):
    """What a network with an auxiliary head returns in training (torchvision's Inception v3)."""

    logits: Tensor
    aux_logits: Tensor


def map_sides(rows: tuple[Row, ...], side: int) -> dict[str, HW]:
    """Each row's output (h, w) for a ``side``×``side`` input ((0, 0) from the first empty map on)."""
    hw, out = (side, side), {}
    for row in rows:
        hw = row.spec.out_hw(hw) if min(hw) >= 1 else (0, 0)
        out[row.name] = hw
    return out


def min_input_side(rows: tuple[Row, ...], *, aux: AuxSpec | None = None, last: int = 2) -> int:
    """The smallest square side for which every map is non-empty, the last is ``last``×``last``
    or more, and the auxiliary head (if given) gets its ``min_side`` at its tap."""

    def fits(side: int) -> bool:
        sides = map_sides(rows, side)
        ok = min(sides[rows[-1].name]) >= last
        return ok and (aux is None or min(sides[aux.tap]) >= aux.min_side)

    # every map's side is non-decreasing in the input's (floor((h + 2p - k) / s) + 1 per layer), so
    # the sides that fit are an interval ending at 4095: bisect it (12 probes, not hundreds; the
    # configs call this at import, which every `cnnzoo train` pays)
    lo, hi = 1, 4095
    if not fits(hi):
        raise ValueError("no input side up to 4095 fits these rows")
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _stages(rows: tuple[Row, ...], in_chans: int) -> list[FeatureInfo]:
    """A stage per resolution: the last row before one that downsamples, and the last row."""
    stages, c, reduction = [], in_chans, 1
    for i, row in enumerate(rows):
        c, reduction = row.spec.out_channels(c), reduction * row.spec.stride
        if i + 1 == len(rows) or rows[i + 1].spec.stride > 1:
            stages.append(FeatureInfo(row.name, c, reduction))
    return stages


class InceptionNet(ZooModel):
    """A network of :class:`Row` s, global average pooling, dropout and ``fc``.

    Args:
        rows: the layers, in forward order.
        num_classes: classifier outputs.
        in_chans: input channels.
        dropout: dropout before ``fc``.
        aux: the auxiliary head's spec, if the family has one.
        aux_logits: build the auxiliary head (``aux`` given); it runs in training only.
        transform_input: map ImageNet-normalised input to the [-1, 1] scaling of TensorFlow
            weights (3 channels only).
        init: module type → layer init, applied in module order (meta tensors are skipped).
    """

    def __init__(
        self,
        rows: tuple[Row, ...],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.0,
        aux: AuxSpec | None = None,
        aux_logits: bool = True,
        transform_input: bool = False,
        init: Mapping[type | tuple[type, ...], LayerInit] | None = None,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans  # checked on assignment
        if transform_input and in_chans != 3:
            raise ConfigError(f"transform_input needs 3 input channels, got in_chans={in_chans}")
        self.rows, self.transform_input = rows, transform_input
        self.aux_spec = aux if aux_logits else None
        if self.aux_spec is not None and self.aux_spec.tap not in {r.name for r in rows}:
            raise ValueError(f"the auxiliary head taps {self.aux_spec.tap!r}, which is not a row")
        c = in_chans
        for row in rows:
            self.add_module(row.name, row.spec.build(c))
            c = row.spec.out_channels(c)
            if self.aux_spec is not None and row.name == self.aux_spec.tap:
                self.add_module(self.aux_spec.name, self.aux_spec.build(c, num_classes))
        self.aux_logits = self.aux_spec is not None
        self.aux_head_names = (self.aux_spec.name,) if self.aux_logits else ()
        self.feature_info = _stages(rows, in_chans)
        self.num_features = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)
        self.head_name = "fc"
        self.min_input_size_main = min_input_side(rows)
        self.min_input_size = min_input_side(rows, aux=self.aux_spec)
        self._init_weights(init or {})

    def _init_weights(self, rules: Mapping[type | tuple[type, ...], LayerInit]) -> None:
        init_weights_(self, rules)

    def check_input(self, x: Tensor) -> None:
        side = min(x.shape[2:]) if isinstance(x, Tensor) and x.dim() == 4 else None
        if side is not None and self.aux_logits and self.min_input_size_main <= side < self.min_input_size:
            m, main = self.min_input_size, self.min_input_size_main
            raise InputShapeError(
                f"{self._display_name()} needs inputs of at least {m}x{m} pixels with its auxiliary "
                f"classifier ({self.aux_spec.name} needs a {self.aux_spec.min_side}x{self.aux_spec.min_side} "
                f"map after {self.aux_spec.tap}), got {x.shape[2]}x{x.shape[3]}. Resize the images to "
                f"{m}x{m} or larger, or build it with aux_logits=False (minimum {main}x{main})."
            )
        super().check_input(x)

    def _transform(self, x: Tensor) -> Tensor:
        if not self.transform_input:
            return x
        mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (x * std + mean - 0.5) / 0.5  # torchvision's formula, channel by channel

    def _trunk(self, x: Tensor, tap: bool) -> tuple[Tensor, Tensor | None]:
        x, aux = self._transform(x), None
        for row in self.rows:
            x = getattr(self, row.name)(x)
            if tap and row.name == self.aux_spec.tap:
                aux = getattr(self, self.aux_spec.name)(x)
        return x, aux

    def forward_features(self, x: Tensor) -> Tensor:
        return self._trunk(x, tap=False)[0]

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))  # (N, num_features)
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor | InceptionOutputs:
        """Logits; in training with the auxiliary head, ``InceptionOutputs(logits, aux_logits)``."""
        if self.training and self.aux_logits:
            self.check_input(x)
            x, aux = self._trunk(x, tap=True)
            return InceptionOutputs(self.forward_head(x), aux)
        return self.forward_head(self.forward_features(x))  # forward_features checks x

    def loss(self, output: Tensor | InceptionOutputs, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Cross-entropy; with the auxiliary output, main + weight · aux."""
        if isinstance(output, InceptionOutputs):
            main = F.cross_entropy(output.logits, target, label_smoothing=label_smoothing)
            aux = F.cross_entropy(output.aux_logits, target, label_smoothing=label_smoothing)
            return main + self.aux_spec.weight * aux
        return F.cross_entropy(output, target, label_smoothing=label_smoothing)
