"""NASNet-A: the cells found by neural architecture search, as data.

Zoph, Vasudevan, Shlens, Le, "Learning Transferable Architectures for Scalable Image Recognition",
CVPR 2018. Fig. 2 (the ImageNet network), Fig. 4 (the NASNet-A normal and reduction cells), Table 2
(the ImageNet models); the released TensorFlow code (``tensorflow/models``, ``research/slim/nets/
nasnet/nasnet.py`` and ``nasnet_utils.py``) for everything the figures leave out.

**A cell is a table**, :class:`CellSpec`: five blocks (:class:`CellBlock`), each the sum of two
operations (:class:`CellOp`) applied to two hidden states, and the list of states whose
concatenation is the cell's output. Hidden state 0 is ``h_i`` (the output of the cell before,
through ReLU → 1×1 conv → BN), 1 is ``h_{i−1}`` (the output of the cell before that, brought to
``h_i``'s width, and to its size by a factorized reduction when it is twice as large), and 2 + k
is block k's sum. One :class:`NASNetCell` builds any table; :data:`NORMAL_CELL` and
:data:`REDUCTION_CELL` are NASNet-A's (the released code's ``NasNetANormalCell`` and
``NasNetAReductionCell``, the operations and hidden-state indices of Fig. 4):

===========  ============================================================  =====================
cell         blocks: left op (input) + right op (input)                    output (concatenated)
===========  ============================================================  =====================
normal       sep 5×5 (h_i) + sep 3×3 (h_{i−1});                             h_{i−1}, blocks 0-4
             sep 5×5 (h_{i−1}) + sep 3×3 (h_{i−1});                         (6 × filters)
             avg 3×3 (h_i) + identity (h_{i−1});
             avg 3×3 (h_{i−1}) + avg 3×3 (h_{i−1}); sep 3×3 (h_i) + identity (h_i)
reduction    sep 5×5 (h_i) + sep 7×7 (h_{i−1}); max 3×3 (h_i) + sep 7×7 (h_{i−1});  blocks 1-4
             avg 3×3 (h_i) + sep 5×5 (h_{i−1}); identity (block 1) + avg 3×3        (4 × filters)
             (block 0); sep 3×3 (block 0) + max 3×3 (h_i)
===========  ============================================================  =====================

In a reduction cell the operations that read ``h_i`` or ``h_{i−1}`` have stride 2. An operation
``sep_kxk`` is ReLU → separable k×k conv → BN, twice (the released code's
``separable_kxk_2``; only the first strides); pools are 3×3 with TensorFlow's "SAME" padding;
``identity`` is the identity (a ReLU → 1×1 conv → BN where its input's width or size differs).

**The network** (Fig. 2, ImageNet): a 3×3/2 conv (``conv0``, no padding, BN, no ReLU), two
reduction cells as a stem (``cell_stem_0`` and ``cell_stem_1``, with a quarter and a half of the
filters), then N normal cells, a reduction cell, N normal cells, a reduction cell and N normal cells
(the filters doubling at each reduction), ReLU, global average pool, dropout, fc. "N @ F" names
the model by N and F, the width of the last cells' output (24 × the first cells' filters).

==================  ==========  =======  ===================  =============  ==============
name                N @ F       filters  params (+ BN stats)  MACs           top-1 / top-5
==================  ==========  =======  ===================  =============  ==============
``nasnet_a_mobile``  4 @ 1056    44      5,289,978 (5.3 M)    564 M at 224   74.0 / 91.6
``nasnet_a_large``   6 @ 4032    168     88,753,150 (88.9 M)  23.8 G at 331  82.7 / 96.2
==================  ==========  =======  ===================  =============  ==============

Table 2's parameter counts include the batch norms' running statistics (Keras and TF count all
variables): 88,753,150 learned + 196,668 statistics = 88,949,818 for the large model (88.9 M), and
5,289,978 + 36,738 = 5,326,716 for the mobile one (5.3 M). MACs are Table 2's; the analyzer's conv
and fc multiply-adds come within 0.1 % (563.6 M and 23.78 G: the same count).

Choices the figures leave open, and where we depart from the release:

* **Wiring** follows the release's ``_build_nasnet_base``: each cell takes the two outputs before
  it; the large model's ``skip_reduction_layer_input=1`` makes the cell after a reduction cell take
  the output *before* the reduction cell's input as its ``h_{i−1}`` (the mobile model's 0 takes the
  reduction cell's input).
* **Padding**: TensorFlow's "SAME" (:class:`~cnnzoo.layers.conv.Conv2dSame` where it depends on
  the size: every stride-2 conv and pool). The stride-2 average pools pad with zeros that count in
  the average (timm's ``AvgPool2dSame``, whose file loads here), where TensorFlow leaves padding out
  of the count: the two differ at the border of four average pools per reduction cell.
* **Batch norm**: ε = 10⁻³ as TensorFlow; momentum 0.1 (PyTorch's and timm's) rather than the
  release's decay 0.9997, whose running statistics would take ~10⁴ steps to settle.
* **The auxiliary head** (after the cell before the second reduction; used in training only, with
  a conv whose kernel is the size of its map, so it ties the network to one input size) is left
  out, as in timm and Keras; Table 2's counts exclude it.
* **Drop path** ("ScheduledDropPath", §4.1): ``drop_path_rate`` (the release's 1 − keep: 0.3 for
  the large model, 0 for the mobile one) is applied per sample to every non-identity operation,
  rising linearly with the cell's depth as the release's "v3" does. The release also ramps it up
  over the training steps, which the trainer does not schedule: the default here is 0.
* **Init**: He normal (fan-out) convs, as the release's ``variance_scaling_initializer(mode=
  'FAN_OUT')`` (not truncated); BN γ = 1, β = 0.
* **Minimum input**: conv0 (unpadded) maps s to ⌊(s − 3) / 2⌋ + 1, and the four reductions (two
  stem cells, two reduction cells) halve it rounding up, so the last cells see ⌈s₀ / 16⌉; their
  batch norms need at least 2×2 in training, so s₀ ≥ 17: **35×35** for both models. The paper's
  input (331 for the large model) is large, its minimum is not: every stride is padded "SAME".
* **Fashion-MNIST**: resized to 64×64 (2×2 in the last cells).

timm's ``nasnetalarge`` (Cadene's port of the TF checkpoint) loads into ``nasnet_a_large`` through a
key map (``cnnzoo/weights.py``: the separable convs' ``depthwise_conv2d``/``pointwise_conv2d``
become ``conv_dw``/``conv_pw``, a cell's ``path_1``/``path_2``/``final_path_bn`` move under its
``reduce_prev``, ``last_linear`` is ``fc``).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.data.constants import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD
from cnnzoo.errors import ConfigError
from cnnzoo.layers.conv import ConvNormAct, pad_same, same_padding
from cnnzoo.layers.drop import DropPath
from cnnzoo.layers.init import he_normal_init, init_weights_, norm_init
from cnnzoo.layers.mbconv import SeparableConv2d
from cnnzoo.models._config import imagenet_cfg
from cnnzoo.models.base import FeatureInfo, ZooModel
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "CellOp",
    "CellBlock",
    "CellSpec",
    "NORMAL_CELL",
    "REDUCTION_CELL",
    "OPS",
    "NASNetCell",
    "NASNet",
    "NASNetVariant",
    "VARIANTS",
    "PAPER",
    "nasnet_a_mobile",
    "nasnet_a_large",
]

PAPER = (
    "B. Zoph, V. Vasudevan, J. Shlens, Q. V. Le. Learning Transferable Architectures for Scalable "
    "Image Recognition. CVPR 2018."
)

H_I, H_PREV = 0, 1  # a cell's two inputs; block k's output is hidden state 2 + k
_BN = partial(nn.BatchNorm2d, eps=1e-3)  # TensorFlow's epsilon


class CellOp(NamedTuple):
    """One operation of a block: its kind (a key of :data:`OPS`) and its input hidden state."""

    op: str
    input: int  # 0: h_i, 1: h_{i-1}, 2 + k: block k's output


class CellBlock(NamedTuple):
    """One block of a cell: two operations and how their outputs combine (NASNet-A: a sum)."""

    left: CellOp
    right: CellOp
    combine: str = "add"


class CellSpec(NamedTuple):
    """A cell as data: its blocks, whether it reduces, and the states its output concatenates."""

    name: str
    reduction: bool  # stride 2 on the operations that read h_i or h_{i-1}
    blocks: tuple[CellBlock, ...]
    output: tuple[int, ...]


def _block(left: str, left_in: int, right: str, right_in: int) -> CellBlock:
    return CellBlock(CellOp(left, left_in), CellOp(right, right_in))


#: NASNet-A's normal cell (Fig. 4 left; the release's NasNetANormalCell).
NORMAL_CELL = CellSpec(
    "normal",
    False,
    (
        _block("sep_5x5", H_I, "sep_3x3", H_PREV),
        _block("sep_5x5", H_PREV, "sep_3x3", H_PREV),
        _block("avg_3x3", H_I, "identity", H_PREV),
        _block("avg_3x3", H_PREV, "avg_3x3", H_PREV),
        _block("sep_3x3", H_I, "identity", H_I),
    ),
    output=(H_PREV, 2, 3, 4, 5, 6),
)

#: NASNet-A's reduction cell (Fig. 4 right; the release's NasNetAReductionCell).
REDUCTION_CELL = CellSpec(
    "reduction",
    True,
    (
        _block("sep_5x5", H_I, "sep_7x7", H_PREV),
        _block("max_3x3", H_I, "sep_7x7", H_PREV),
        _block("avg_3x3", H_I, "sep_5x5", H_PREV),
        _block("identity", 3, "avg_3x3", 2),
        _block("sep_3x3", 2, "max_3x3", H_I),
    ),
    output=(3, 4, 5, 6),
)


class ReLUConvBN(nn.Module):
    """ReLU → k×k conv → BN (the release's 1×1 "prev_1x1"/"1x1" adjustments; timm's ``ActConvBn``)."""

    cost_type = "block"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.act = nn.ReLU()  # not in place: the input feeds other operations too
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, bias=False)
        self.bn = _BN(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(self.act(x)))


class SepConvStack(nn.Module):
    """``sep_kxk``: [ReLU → separable k×k conv → BN] × 2, the first strided (``separable_kxk_2``).

    Both separable convs output ``filters`` (so the first maps ``in_channels`` to ``filters``).
    Submodules: ``act_1``, ``separable_1``, ``bn_sep_1``, ``act_2``, ``separable_2``, ``bn_sep_2``.
    """

    cost_type = "block"

    def __init__(self, in_channels: int, filters: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.act_1 = nn.ReLU()  # not in place: the input feeds other operations too
        self.separable_1 = SeparableConv2d(in_channels, filters, kernel_size, stride, padding="same")
        self.bn_sep_1 = _BN(filters)
        self.act_2 = nn.ReLU(inplace=True)
        self.separable_2 = SeparableConv2d(filters, filters, kernel_size, 1, padding="same")
        self.bn_sep_2 = _BN(filters)
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn_sep_1(self.separable_1(self.act_1(x)))
        return self.bn_sep_2(self.separable_2(self.act_2(x)))

    def cost_details(self) -> dict[str, int]:
        return {"kernel": self.kernel_size, "stride": self.stride}


class PoolSame(nn.Module):
    """A max or average pool with TensorFlow "SAME" padding (timm's ``Max/AvgPool2dSame`` at stride 2).

    At stride 1 the padding is symmetric and left out of an average (TensorFlow's and timm's);
    at stride 2 it is computed from the input size, with −∞ for a max and zeros that count in the
    average (timm's port; TensorFlow leaves them out: see the module docstring).
    """

    cost_type = "pool"

    def __init__(self, kind: str, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.kind, self.kernel_size, self.stride = kind, kernel_size, stride

    def forward(self, x: Tensor) -> Tensor:
        k, s = self.kernel_size, self.stride
        if s == 1:  # static "SAME": symmetric padding
            if self.kind == "max":
                return F.max_pool2d(x, k, 1, k // 2)
            return F.avg_pool2d(x, k, 1, k // 2, count_include_pad=False)
        if self.kind == "max":
            return F.max_pool2d(_pad_same(x, k, s, float("-inf")), k, s)
        return F.avg_pool2d(pad_same(x, k, s), k, s)

    def extra_repr(self) -> str:
        return f"{self.kind}, kernel_size={self.kernel_size}, stride={self.stride}, padding=SAME"


def _pad_same(x: Tensor, k: int, s: int, value: float) -> Tensor:
    top, bottom = same_padding(x.shape[-2], k, s)
    left, right = same_padding(x.shape[-1], k, s)
    return F.pad(x, (left, right, top, bottom), value=value)


class FactorizedReduction(nn.Module):
    """Halve a map and set its width without losing half its pixels (the release's
    ``factorized_reduction``): ReLU, then two 1×1/2 paths, the second shifted by one pixel, each
    making half the filters; concatenated, then BN.

    Submodules ``act``, ``path_1`` (``avgpool``, ``conv``), ``path_2`` (``pad``, ``avgpool``,
    ``conv``), ``final_path_bn``: timm's names.
    """

    cost_type = "block"

    def __init__(self, in_channels: int, filters: int) -> None:
        super().__init__()
        self.act = nn.ReLU()  # not in place: the input feeds other cells too
        self.path_1 = nn.Sequential(OrderedDict(
            avgpool=nn.AvgPool2d(1, 2, count_include_pad=False),
            conv=nn.Conv2d(in_channels, filters // 2, 1, bias=False),
        ))  # fmt: skip
        # TF pads one row and column at the bottom/right and crops the top/left: a one-pixel shift
        self.path_2 = nn.Sequential(OrderedDict(
            pad=nn.ZeroPad2d((-1, 1, -1, 1)),
            avgpool=nn.AvgPool2d(1, 2, count_include_pad=False),
            conv=nn.Conv2d(in_channels, filters - filters // 2, 1, bias=False),
        ))  # fmt: skip
        self.final_path_bn = _BN(filters)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(x)
        return self.final_path_bn(torch.cat([self.path_1(x), self.path_2(x)], 1))


def _sep(kernel_size: int) -> Any:
    return lambda c_in, filters, stride: SepConvStack(c_in, filters, kernel_size, stride)


def _pool(kind: str) -> Any:
    def make(c_in: int, filters: int, stride: int) -> nn.Module:
        pool = PoolSame(kind, 3, stride)
        if c_in == filters:
            return pool
        return nn.Sequential(
            OrderedDict(pool=pool, conv=nn.Conv2d(c_in, filters, 1, bias=False), bn=_BN(filters))
        )

    return make


def _identity(c_in: int, filters: int, stride: int) -> nn.Module:
    # the release's "none": a strided or widening identity becomes ReLU -> 1x1 conv -> BN
    return nn.Identity() if stride == 1 and c_in == filters else ReLUConvBN(c_in, filters, 1, stride)


#: Operation kinds -> factory(in_channels, filters, stride); the release's names in comments.
OPS: dict[str, Any] = {
    "sep_3x3": _sep(3),  # separable_3x3_2
    "sep_5x5": _sep(5),  # separable_5x5_2
    "sep_7x7": _sep(7),  # separable_7x7_2
    "avg_3x3": _pool("avg"),  # avg_pool_3x3
    "max_3x3": _pool("max"),  # max_pool_3x3
    "identity": _identity,  # none
}


def _check_spec(spec: CellSpec) -> None:
    n = len(spec.blocks)
    for k, block in enumerate(spec.blocks):
        for op in (block.left, block.right):
            if op.op not in OPS or not 0 <= op.input < 2 + k:
                raise ConfigError(
                    f"cell {spec.name!r} block {k}: {op} needs an operation in {sorted(OPS)} and an "
                    f"input among the cell's two inputs (0, 1) and blocks 0..{k - 1} (2..{k + 1})"
                )
        if block.combine != "add":
            raise ConfigError(f"cell {spec.name!r} block {k}: NASNet-A cells add, got {block.combine!r}")
    if not spec.output or not all(0 <= i < 2 + n for i in spec.output):
        raise ConfigError(f"cell {spec.name!r}: output must name hidden states 0..{n + 1}, got {spec.output}")


class NASNetCell(nn.Module):
    """A cell built from its table (:class:`CellSpec`).

    Args:
        spec: the cell's table.
        in_channels: width of ``x``, the output of the cell before (it becomes ``h_i``).
        prev_channels: width of ``x_prev``, the output before that; ``None`` where the cell has
            none (the first stem cell: ``h_{i−1}`` is then ``x`` itself, unadjusted).
        filters: the cell's width: every operation outputs it.
        prev_reduce: ``x_prev`` is twice ``x``'s size (a factorized reduction brings it down).
        drop_path: per-sample drop probability of every non-identity operation.

    Submodules: ``reduce_prev`` (a :class:`FactorizedReduction`) or ``conv_prev_1x1`` (a
    :class:`ReLUConvBN`) where ``h_{i−1}`` needs adjusting, ``conv_1x1`` (``x`` to ``h_i``), and
    ``comb_iter_{k}_left`` / ``comb_iter_{k}_right`` for block k's operations (the release's names).
    """

    cost_type = "cell"

    def __init__(
        self,
        spec: CellSpec,
        in_channels: int,
        prev_channels: int | None,
        filters: int,
        *,
        prev_reduce: bool = False,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        _check_spec(spec)
        self.spec, self.filters = spec, filters
        self.reduce_prev = (
            FactorizedReduction(prev_channels, filters) if prev_channels and prev_reduce else None
        )
        project = prev_channels is not None and not prev_reduce and prev_channels != filters
        self.conv_prev_1x1 = ReLUConvBN(prev_channels, filters) if project else None
        self.conv_1x1 = ReLUConvBN(in_channels, filters)
        widths = [filters, in_channels if prev_channels is None else filters]
        for k, block in enumerate(spec.blocks):
            for side, op in (("left", block.left), ("right", block.right)):
                stride = 2 if spec.reduction and op.input < 2 else 1
                self.add_module(f"comb_iter_{k}_{side}", OPS[op.op](widths[op.input], filters, stride))
            widths.append(filters)
        self.drop_path = DropPath(drop_path, mode="sample") if drop_path else None
        self.out_channels = filters * len(spec.output)

    def _op(self, name: str, x: Tensor) -> Tensor:
        module = getattr(self, name)
        if self.drop_path is None or isinstance(module, nn.Identity):
            return module(x)
        return self.drop_path(module(x))

    def forward(self, x: Tensor, x_prev: Tensor | None = None) -> Tensor:
        prev = x if x_prev is None else x_prev
        if self.reduce_prev is not None:
            prev = self.reduce_prev(prev)
        elif self.conv_prev_1x1 is not None:
            prev = self.conv_prev_1x1(prev)
        states = [self.conv_1x1(x), prev]
        for k, block in enumerate(self.spec.blocks):
            left = self._op(f"comb_iter_{k}_left", states[block.left.input])
            states.append(left + self._op(f"comb_iter_{k}_right", states[block.right.input]))
        return torch.cat([states[i] for i in self.spec.output], 1)

    def cost_details(self) -> dict[str, int | str]:
        return {"cell": self.spec.name, "filters": self.filters}


class _Layer(NamedTuple):
    """One cell of the network and where its two inputs come from (indices into the outputs)."""

    name: str
    spec: CellSpec
    scale: float  # filters = int(num_filters * scale)
    cur: int
    prev: int | None


def _wiring(num_cells: int, skip_reduction_layer_input: bool) -> list[_Layer]:
    """The release's ``_build_nasnet_base`` as data: output 0 is conv0's, layer j's is j + 1."""
    reductions = [num_cells // 3, 2 * num_cells // 3]  # calc_reduction_layers(num_cells, 2)
    layers = [
        _Layer("cell_stem_0", REDUCTION_CELL, 0.25, 0, None),
        _Layer("cell_stem_1", REDUCTION_CELL, 0.5, 1, 0),
    ]
    scale, normal = 1.0, 0
    for i in range(num_cells):
        n_out = len(layers) + 1  # outputs so far (conv0's included)
        prev = n_out - 2
        if i in reductions:
            scale *= 2
            layers.append(
                _Layer(f"reduction_cell_{reductions.index(i)}", REDUCTION_CELL, scale, n_out - 1, prev)
            )
            if not skip_reduction_layer_input:
                prev = n_out - 1
            n_out += 1
        layers.append(_Layer(f"cell_{normal}", NORMAL_CELL, scale, n_out - 1, prev))
        normal += 1
    return layers


class NASNet(ZooModel):
    """NASNet-A for ImageNet (Fig. 2): conv0, two stem cells, three stacks of N normal cells with
    reduction cells between them, ReLU, global average pool, dropout, fc.

    Stages (``feature_info``, timm's): ``conv0`` at 2, then the ReLU with which the next cell reads
    the stem's and each stack's output (``cell_stem_1.conv_1x1.act``, ``reduction_cell_0.conv_1x1.act``,
    ``reduction_cell_1.conv_1x1.act`` at 4, 8, 16) and ``act`` at 32. Classifier: ``fc``.

    Args:
        num_cells: normal cells in all, 3N (12 for 4 @ 1056, 18 for 6 @ 4032).
        num_filters: the first stack's filters (F / 24: 44, 168).
        stem_filters: conv0's filters (32 mobile, 96 large: the release's stem_multiplier × 32).
        skip_reduction_layer_input: the release's hyper-parameter of that name (see the module docstring).
        num_classes, in_chans: classifier outputs and input channels.
        dropout: before the fc (the release's ``dense_dropout_keep_prob`` 0.5).
        drop_path_rate: the deepest cell's drop-path probability (the release: 0.3 large, 0 mobile).
    """

    def __init__(
        self,
        num_cells: int = 12,
        num_filters: int = 44,
        *,
        stem_filters: int = 32,
        skip_reduction_layer_input: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.5,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        if num_cells < 3 or num_cells % 3:
            raise ConfigError(
                f"NASNet needs three equal stacks of normal cells: num_cells=3N, got {num_cells}"
            )
        self.conv0 = ConvNormAct(in_chans, stem_filters, 3, 2, padding=0, norm_layer=_BN, act_layer=None)
        self.wiring = _wiring(num_cells, skip_reduction_layer_input)
        widths, reductions = [stem_filters], [2]  # of each output, conv0's first
        for depth, layer in enumerate(self.wiring):
            prev = None if layer.prev is None else widths[layer.prev]
            prev_reduce = layer.prev is not None and reductions[layer.prev] != reductions[layer.cur]
            rate = drop_path_rate * (depth + 1) / len(self.wiring)  # the release's layer_ratio
            cell = NASNetCell(layer.spec, widths[layer.cur], prev, int(num_filters * layer.scale),
                              prev_reduce=prev_reduce, drop_path=rate)  # fmt: skip
            self.add_module(layer.name, cell)
            widths.append(cell.out_channels)
            reductions.append(reductions[layer.cur] * (2 if layer.spec.reduction else 1))
        self.act = nn.ReLU(inplace=True)
        taps = ["cell_stem_1", "reduction_cell_0", "reduction_cell_1"]
        self.feature_info = [FeatureInfo("conv0", stem_filters, 2)]
        for name in taps:
            j = next(i for i, layer in enumerate(self.wiring) if layer.name == name)
            src = self.wiring[j].cur
            self.feature_info.append(FeatureInfo(f"{name}.conv_1x1.act", widths[src], reductions[src]))
        self.feature_info.append(FeatureInfo("act", widths[-1], reductions[-1]))
        self.num_features = widths[-1]
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(widths[-1], num_classes)
        self.head_name = "fc"
        init_weights_(self, {nn.Conv2d: he_normal_init("fan_out", bias=None), nn.BatchNorm2d: norm_init()})

    def forward_features(self, x: Tensor) -> Tensor:
        outs: list[Tensor | None] = [self.conv0(x)]  # (N, stem, 165, 165) at 331
        for layer in self.wiring:
            prev = None if layer.prev is None else outs[layer.prev]
            outs.append(getattr(self, layer.name)(outs[layer.cur], prev))
            if len(outs) > 3:
                outs[-4] = None  # no cell reads more than three outputs back
        return self.act(outs[-1])  # (N, F, 11, 11) at 331

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.fc(x)


class NASNetVariant(NamedTuple):
    """One registered NASNet-A: N @ F, the release's hyper-parameters and Table 2's figures."""

    num_cells: int
    num_filters: int
    stem_filters: int
    skip_reduction_layer_input: bool
    input_size: int
    macs: float
    top1: float
    top5: float
    note: str


VARIANTS: dict[str, NASNetVariant] = {
    "nasnet_a_mobile": NASNetVariant(12, 44, 32, False, 224, 564e6, 74.0, 91.6, "NASNet-A 4 @ 1056 (the release's mobile hparams); no aux head"),
    "nasnet_a_large": NASNetVariant(18, 168, 96, True, 331, 23.8e9, 82.7, 96.2, "NASNet-A 6 @ 4032 (the release's large hparams); timm's pool padding; no aux head"),
}  # fmt: skip


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    return imagenet_cfg(
        input_size=v.input_size,
        min_input_size=35,  # conv0 (valid) to 17, four ceil-halving reductions to 2x2 for batch norm
        mean=IMAGENET_INCEPTION_MEAN,
        std=IMAGENET_INCEPTION_STD,
        paper=PAPER,
        year=2018,
        family="nasnet",
        notes=v.note,
        extra={
            "reported": {
                "dataset": "imagenet",
                "top1": v.top1,
                "top5": v.top5,
                "crop": v.input_size,
                "source": "Zoph et al. 2018, Table 2 (single crop)",
            },
            "macs": {"value": v.macs, "source": "Zoph et al. 2018, Table 2 (mult-adds)"},
        },
    )


def _create_nasnet(name: str, **kwargs: Any) -> NASNet:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    v = VARIANTS[name]
    arch = dict(num_cells=v.num_cells, num_filters=v.num_filters, stem_filters=v.stem_filters,
                skip_reduction_layer_input=v.skip_reduction_layer_input)  # fmt: skip
    return NASNet(**{**arch, **kwargs})


@register_model(_cfg("nasnet_a_mobile"))
def nasnet_a_mobile(**kwargs: Any) -> NASNet:
    """NASNet-A (4 @ 1056), Table 2's mobile model: 5.3 M parameters, 564 M MACs at 224."""
    return _create_nasnet("nasnet_a_mobile", **kwargs)


@register_model(_cfg("nasnet_a_large"))
def nasnet_a_large(**kwargs: Any) -> NASNet:
    """NASNet-A (6 @ 4032), Table 2's large model: 88.9 M parameters, 23.8 G MACs at 331."""
    return _create_nasnet("nasnet_a_large", **kwargs)
