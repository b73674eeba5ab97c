"""ResNet: the ImageNet family, the paper's original bottleneck, and the Bag-of-Tricks stems.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, Table 1.

Every depth is a row of data: block type and blocks per stage (``(3, 4, 6, 3)`` for ResNet-50,
:data:`RESNET_DEPTHS`), and every registered name a typed :class:`ResNetVariant` row of
:data:`VARIANTS`. One :class:`ResNet` class builds them all, the CIFAR nets of §4.2 and their plain
counterparts included (see "CIFAR family" below). Its block options are those of
:mod:`cnnzoo.layers.residual`, so the descendants are arguments rather than forks, each family a
file of rows calling :class:`ResNet`: pre-activation (``block="preact_*"``, ``stem_act``;
:mod:`~cnnzoo.models.preact_resnet`), ResNeXt (``groups``/``base_width``; :mod:`~cnnzoo.models.
resnext`), Wide ResNet (``widths``, ``dropout``; :mod:`~cnnzoo.models.wide_resnet`), SE
(``attn_layer``, ``stem_pool="ceil"`` for the authors' release; :mod:`~cnnzoo.models.senet`) and
stochastic depth (``drop_path_rate``, ``drop_path_mode``) for any of them. They are off in every
wave-1 model.

Stochastic depth (Huang, Sun, Liu, Sedra, Weinberger, "Deep Networks with Stochastic Depth",
ECCV 2016) is registered as ``resnet110_sd`` and ``resnet1202_sd``: the CIFAR nets with
``drop_path_rate=0.5``. Block l of L (counted over all stages, 1-based) holds a
:class:`~cnnzoo.layers.drop.DropPath` of drop probability (l / L)(1 − p_L); in training a dropped
block returns ReLU(shortcut) without computing its branch, for the whole mini-batch; in eval every
branch runs, scaled by its survival probability p_l.

======================  ===========  ==============  =============================================
name                    block        stages          departs from the paper
======================  ===========  ==============  =============================================
``resnet18``/``34``     basic        2-2-2-2/3-4-6-3  none (torchvision layout and keys)
``resnet50``/101/152    bottleneck   3-4-6-3/…23…/…36…  stride in the 3×3 (torchvision, "v1.5")
``resnet50_v1``…        bottleneck   same            none: stride in the first 1×1, as the paper
``resnet50c``           bottleneck   3-4-6-3         deep 3×3 stem (Bag of Tricks, ResNet-C)
``resnet50d``           bottleneck   3-4-6-3         deep stem + avg-pool shortcut (ResNet-D)
======================  ===========  ==============  =============================================

Choices:

* **Shortcuts** (§3.3): option B by default (projections where the shape changes), ``shortcut="A"``
  or ``"C"`` for the paper's other options; see :mod:`cnnzoo.layers.residual`.
* **Init**: He et al. 2015 ("Delving deep into rectifiers") normal init for every conv, in the
  fan-out mode torchvision uses; BN γ = 1, β = 0; the fc keeps PyTorch's default.
  ``zero_init_residual=True`` sets the last BN γ of every block to 0 (Goyal et al. 2017).
* **Head**: global average pooling (the paper's "average pool" over the 7×7 map at 224).
* **Minimum input**: every stride-2 layer pads, so the last map is ceil(s / 32) for an s×s input
  (ceil(s / 4) for the CIFAR nets) and even 1×1 runs in eval mode. Training is what sets the
  minimum: a BatchNorm that sees one value per channel fails at batch 1 ("Expected more than 1
  value per channel when training") and at batch 2 normalises to ±1 whatever the input, so no
  gradient flows past it. ``min_input_size`` is therefore the smallest side whose last map is at
  least 2×2: 33 for the ImageNet nets, 5 for the CIFAR nets (``total_stride + 1``).
* **Fashion-MNIST**: 28×28 images are resized to 64×64 (2×2 maps in the last stage), which trains
  on a CPU; pass ``--input-size 224`` for the paper's geometry.
* ResNet-C and ResNet-D (He et al., "Bag of Tricks for Image Classification with Convolutional
  Neural Networks", CVPR 2019, §4.2) build on ResNet-B (stride in the 3×3); their keys follow
  timm's ``resnet50c``/``resnet50d``.

CIFAR family (§4.2): ``resnet8`` (n = 1, not in the paper: the smallest member), ``resnet20``,
``32``, ``44``, ``56``, ``110``, ``1202`` (depth 6n + 2): a 3×3 conv with 16 filters, then three
stages of n basic blocks with 16, 32 and 64 filters on 32², 16² and 8² maps, option-A shortcuts,
global average pool and a 10-way fc. ``plain20`` … ``plain110`` are the same stacks without
shortcuts (the degradation experiment, Fig. 6). Fashion-MNIST's 28×28 images are zero-padded to
32×32 (the paper's geometry); 28×28 also works (``--input-size 28``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.errors import ConfigError
from cnnzoo.layers.drop import DropMode, DropPath
from cnnzoo.layers.init import he_normal_init, init_weights_, norm_init, zero_init_residual_
from cnnzoo.layers.residual import (
    AttnLayer,
    BasicBlock,
    Bottleneck,
    DeepStem,
    PreActBasicBlock,
    PreActBottleneck,
    ShortcutOption,
)
from cnnzoo.models._residual import check_resnet_options, residual_cfg
from cnnzoo.models.base import FeatureInfo, ZooModel
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "ResNet",
    "ResNetVariant",
    "RESNET_DEPTHS",
    "VARIANTS",
    "CIFAR_DEPTHS",
    "PAPER",
    "BAG_OF_TRICKS",
    "STOCHASTIC_DEPTH",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet50_v1",
    "resnet101_v1",
    "resnet152_v1",
    "resnet50c",
    "resnet50d",
    "resnet8",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "resnet1202",
    "resnet110_sd",
    "resnet1202_sd",
    "plain20",
    "plain32",
    "plain44",
    "plain56",
    "plain110",
]

PAPER = "K. He, X. Zhang, S. Ren, J. Sun. Deep Residual Learning for Image Recognition. CVPR 2016."
STOCHASTIC_DEPTH = (
    "G. Huang, Y. Sun, Z. Liu, D. Sedra, K. Q. Weinberger. Deep Networks with Stochastic Depth. ECCV 2016."
)
BAG_OF_TRICKS = (
    "T. He, Z. Zhang, H. Zhang, Z. Zhang, J. Xie, M. Li. Bag of Tricks for Image Classification "
    "with Convolutional Neural Networks. CVPR 2019."
)

BLOCKS: dict[str, type[nn.Module]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
    "preact_basic": PreActBasicBlock,
    "preact_bottleneck": PreActBottleneck,
}

# Table 1 of the paper: depth -> (block, blocks per stage conv2_x .. conv5_x).
RESNET_DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
# §4.2: depth 6n + 2 -> n blocks per stage. Fig. 6 compares plain nets of 20-56 layers; plain110
# extends the same comparison to the depth of ResNet-110. resnet8 (n = 1) is not in the paper: the
# family's smallest member, used by the fashion-best recipe where a CPU budget rules.
CIFAR_DEPTHS: dict[int, int] = {8: 1, 20: 3, 32: 5, 44: 7, 56: 9, 110: 18, 1202: 200}


class ResNet(ZooModel):
    """A residual network: stem, stages of residual blocks, global average pool, fc.

    Stages (``feature_info``): ``layer1``…``layerK`` at reductions 4, 8, 16, 32 (CIFAR: 1, 2, 4);
    what runs before ``layer1`` is the stem. A pre-activation net's last stage is ``final_relu``,
    the BN-ReLU after its last unit. Classifier (``head_name``): ``fc``.

    Submodules: ``conv1``, ``bn1``, ``relu``, ``maxpool`` (the stem), ``layer1`` … ``layerK``
    (stage k, the paper's conv{k+1}_x), ``final_bn`` and ``final_relu`` (pre-activation nets
    only), ``avgpool``, ``fc``: torchvision's names and keys.

    The descendants are arguments here and in :mod:`cnnzoo.layers.residual`, not forks: ResNeXt
    is ``groups``/``base_width``, Wide ResNet ``widths`` (and ``dropout``), SE-ResNet
    ``attn_layer``, the pre-activation nets ``block="preact_*"``, stochastic depth
    ``drop_path_rate``.

    Args:
        block: ``"basic"``, ``"bottleneck"``, ``"preact_basic"`` or ``"preact_bottleneck"``
            (He et al. 2016b's full pre-activation units, with a BN-ReLU after the last unit).
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)``.
        num_classes: classifier outputs.
        in_chans: input channels.
        widths: the ``planes`` of each stage (outputs are ×4 for bottlenecks).
        stem: ``"7x7"`` (7×7/2 conv + 3×3/2 max-pool, the paper), ``"deep"`` (ResNet-C: three
            3×3 convs + max-pool) or ``"cifar"`` (one 3×3 conv, no pool, §4.2).
        stem_width: output width of the stem.
        stem_act: the stem's BN-ReLU (``bn1``, ``relu``). ``False`` leaves a bare conv, as the
            pre-activation CIFAR nets have it (the first unit's BN-ReLU follows); with ``True`` a
            pre-activation net's first unit takes the activated stem output as it is (no ``bn1``
            of its own), as fb.resnet.torch's ``preresnet.lua``.
        stem_pool: ``"pad"`` (3×3/2 max-pool with padding 1, torchvision) or ``"ceil"`` (no
            padding, ceil mode: Caffe's rounding, the SENet authors' release).
        shortcut: option ``"A"``, ``"B"`` (default) or ``"C"`` (§3.3).
        residual: ``False`` builds the plain counterpart (no shortcuts, §4.1).
        stride_in_1x1: bottleneck stride in the first 1×1 (the paper) instead of the 3×3.
        avg_down: ResNet-D average-pool projection shortcuts (post-activation blocks only).
        zero_init_residual: zero the last BN γ (pre-activation: the last conv) of every block.
        groups, base_width: ResNeXt's cardinality C and bottleneck width d (bottleneck blocks
            only); ``planes · d / 64`` must be whole at every stage.
        attn_layer: an attention layer on every block's branch (e.g. ``SqueezeExcite``).
        dropout: dropout between the two convs of every basic block (Wide ResNet), 0 for none.
        drop_path_rate: stochastic depth: the drop probability of the last block, 1 − p_L, in
            [0, 1); block l of L drops its branch with probability l / L · ``drop_path_rate``, so it
            survives with p_l = 1 − (l / L)(1 − p_L) (Huang et al. 2016, Eq. 4).
        drop_path_mode: ``"batch"`` (the paper: the branch is skipped for the whole mini-batch and
            scaled by p_l at test time) or ``"sample"`` (timm/torchvision: per sample, survivors
            scaled by 1 / p_l in training); see :class:`~cnnzoo.layers.drop.DropPath`.

    Raises:
        ConfigError: for an option that cannot work (each with one line naming the fix).
    """

    def __init__(
        self,
        block: str,
        layers: tuple[int, ...],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        stem: str = "7x7",
        stem_width: int = 64,
        stem_act: bool = True,
        stem_pool: str = "pad",
        shortcut: ShortcutOption = "B",
        residual: bool = True,
        stride_in_1x1: bool = False,
        avg_down: bool = False,
        zero_init_residual: bool = False,
        groups: int = 1,
        base_width: int = 64,
        attn_layer: AttnLayer = None,
        dropout: float = 0.0,
        drop_path_rate: float = 0.0,
        drop_path_mode: DropMode = "batch",
    ) -> None:
        super().__init__()
        check_resnet_options(block, BLOCKS, layers, widths, groups, base_width, dropout, drop_path_rate,
                             drop_path_mode)  # fmt: skip
        if stem_pool not in ("pad", "ceil"):
            raise ConfigError(f"stem_pool must be 'pad' or 'ceil', got {stem_pool!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.preact = block.startswith("preact")
        # Each stride-2 layer maps s to ceil(s / 2); training needs a last map of at least 2x2
        # (see the module docstring), so the minimum is one more than the total stride. Caffe's
        # unpadded ceil-mode pool maps m to floor(m / 2), which needs 2 more pixels: 4R + 3.
        self.total_stride = (1 if stem == "cifar" else 4) * 2 ** (len(layers) - 1)
        ceil_pool = stem != "cifar" and stem_pool == "ceil"
        self.min_input_size = self.total_stride + (3 if ceil_pool else 1)
        self.conv1 = _stem_conv(stem, in_chans, stem_width)
        self.bn1 = nn.BatchNorm2d(stem_width) if stem_act else None
        self.relu = nn.ReLU(inplace=True) if stem_act else None
        self.maxpool = _stem_pool(stem, ceil_pool)

        options: dict[str, Any] = dict(shortcut=shortcut, residual=residual, groups=groups,
                                       base_width=base_width, attn_layer=attn_layer)  # fmt: skip
        if block.endswith("bottleneck"):
            options["stride_in_1x1"] = stride_in_1x1
        if avg_down:  # ResNet-D's pooled projection exists for the post-activation blocks only
            if self.preact:
                raise ConfigError(
                    "avg_down (ResNet-D) takes post-activation blocks: use block='basic'/'bottleneck'"
                )
            options["avg_down"] = True
        if dropout > 0:
            options["dropout"] = dropout
        rates = _drop_path_rates(sum(layers), drop_path_rate)
        channels, first = stem_width, 0
        self.stage_names: list[str] = []
        self.feature_info: list[FeatureInfo] = []  # layer1..layerK at 4, 8, 16, 32 (CIFAR: 1, 2, 4)
        reduction = 1 if stem == "cifar" else 4
        for i, (n, planes) in enumerate(zip(layers, widths, strict=True)):
            stage = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                if self.preact:  # an activated stem output needs no second BN-ReLU (preresnet.lua)
                    options["preact"] = not (stem_act and i == j == 0)
                drop = DropPath(rates[first + j], mode=drop_path_mode) if rates[first + j] > 0 else None
                stage.append(BLOCKS[block](channels, planes, stride, drop_path=drop, **options))
                channels = stage[-1].out_channels
            first += n
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            self.stage_names.append(f"layer{i + 1}")
            reduction *= 2 if i > 0 else 1
            self.feature_info.append(FeatureInfo(f"layer{i + 1}", channels, reduction))
        if self.preact:  # He et al. 2016b: one BN-ReLU after the last unit's addition
            self.final_bn = nn.BatchNorm2d(channels)
            self.final_relu = nn.ReLU(inplace=True)
            self.feature_info[-1] = FeatureInfo("final_relu", channels, reduction)
        self.num_features = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self.head_name = "fc"
        self.init_weights(zero_init_residual)

    def init_weights(self, zero_init_residual: bool = False) -> None:
        """He normal init (fan-out) for convs, BN γ = 1 and β = 0, optional zero-γ residuals."""
        init_weights_(self, {nn.Conv2d: he_normal_init("fan_out", bias=None), nn.BatchNorm2d: norm_init()})
        if zero_init_residual:
            zero_init_residual_(self)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        if self.bn1 is not None:
            x = self.relu(self.bn1(x))
        x = self.maxpool(x)  # (N, 64, H/4, W/4) for the 7×7 stem
        for name in self.stage_names:
            x = getattr(self, name)(x)  # each later stage halves H and W
        if self.preact:
            x = self.final_relu(self.final_bn(x))
        return x  # (N, num_features, H/32, W/32)

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (N, num_features)
        return x if pre_logits else self.fc(x)


def _stem_conv(stem: str, in_chans: int, width: int) -> nn.Module:
    if stem == "7x7":
        return nn.Conv2d(in_chans, width, 7, stride=2, padding=3, bias=False)
    if stem == "deep":
        return DeepStem(in_chans, (width // 2, width // 2, width))
    if stem == "cifar":
        return nn.Conv2d(in_chans, width, 3, padding=1, bias=False)
    raise ConfigError(f"stem must be '7x7', 'deep' or 'cifar', got {stem!r}")


def _stem_pool(stem: str, ceil: bool) -> nn.Module:
    if stem == "cifar":
        return nn.Identity()
    return nn.MaxPool2d(3, stride=2, ceil_mode=True) if ceil else nn.MaxPool2d(3, stride=2, padding=1)


def _drop_path_rates(num_blocks: int, last: float) -> list[float]:
    """Huang et al.'s linear decay rule: block l (1-based) of L drops with probability l / L · last."""
    return [last * (i + 1) / num_blocks for i in range(num_blocks)]


class ResNetVariant(NamedTuple):
    """One registered ResNet: the depth and the options that set it apart, and where it departs."""

    depth: int
    note: str
    stem: str = "7x7"
    stride_in_1x1: bool = False
    avg_down: bool = False
    cifar: bool = False  # §4.2's 6n+2 nets: 16-32-64 widths, 3x3 stem, option-A shortcuts
    residual: bool = True  # False: the plain counterpart (§4.1)
    drop_path_rate: float = 0.0  # stochastic depth's 1 - p_L (Huang et al. 2016)
    reported: dict[str, Any] | None = None  # the paper's accuracy (config extra["reported"])


_TV = "torchvision layout and keys"
_V15 = "torchvision layout: stride in the bottleneck's 3x3 (v1.5)"
_V1 = "the paper's original: stride in the first 1x1"

VARIANTS: dict[str, ResNetVariant] = {
    "resnet18": ResNetVariant(18, _TV),
    "resnet34": ResNetVariant(34, _TV),
    "resnet50": ResNetVariant(50, _V15),
    "resnet101": ResNetVariant(101, _V15),
    "resnet152": ResNetVariant(152, _V15),
    "resnet50_v1": ResNetVariant(50, _V1, stride_in_1x1=True),
    "resnet101_v1": ResNetVariant(101, _V1, stride_in_1x1=True),
    "resnet152_v1": ResNetVariant(152, _V1, stride_in_1x1=True),
    "resnet50c": ResNetVariant(50, "Bag of Tricks ResNet-C: 3x3 deep stem (32-32-64), timm keys", stem="deep"),
    "resnet50d": ResNetVariant(
        50, "Bag of Tricks ResNet-D: deep stem + 2x2 avg-pool before 1x1 projections, timm keys",
        stem="deep", avg_down=True,
    ),
    **{f"resnet{d}": ResNetVariant(d, "option-A shortcuts", cifar=True) for d in CIFAR_DEPTHS},
    **{
        f"plain{d}": ResNetVariant(d, "no shortcuts (plain net, §4.1)", cifar=True, residual=False)
        for d in (20, 32, 44, 56, 110)
    },
    # Stochastic depth (Huang et al. 2016, §4): the CIFAR nets with p_L = 0.5 and the linear decay
    # rule; their option-A shortcuts are the paper's "average pooling + zero padding" (a 1x1 pool
    # of stride 2 subsamples as option A does).
    "resnet110_sd": ResNetVariant(
        110, "option-A shortcuts, stochastic depth p_L = 0.5 (Huang et al. 2016)", cifar=True,
        drop_path_rate=0.5,
        reported={"dataset": "cifar10+", "error": 5.25, "source": "Huang et al. 2016, Table 1 (constant depth: 6.41)"},
    ),
    "resnet1202_sd": ResNetVariant(
        1202, "option-A shortcuts, stochastic depth p_L = 0.5 (Huang et al. 2016)", cifar=True,
        drop_path_rate=0.5,
        reported={"dataset": "cifar10+", "error": 4.91, "source": "Huang et al. 2016, §4 (1202 layers)"},
    ),
}  # fmt: skip


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    if v.cifar:
        n = CIFAR_DEPTHS[v.depth]
        notes = f"CIFAR-10 net, 6n+2 layers with n={n}, {v.note}" + (" (not in the paper)" if n == 1 else "")
        sd = v.drop_path_rate > 0
        return residual_cfg(
            cifar=True,
            paper=STOCHASTIC_DEPTH if sd else PAPER,
            year=2016,
            family="resnet_sd" if sd else "resnet_cifar",
            notes=notes,
            extra={"reported": v.reported},
        )
    tricks = v.stem == "deep"
    return residual_cfg(
        cifar=False,
        paper=BAG_OF_TRICKS if tricks else PAPER,
        year=2019 if tricks else 2016,
        family="resnet",
        notes=v.note,
    )


def _create_resnet(name: str, **kwargs: Any) -> ResNet:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    v = VARIANTS[name]
    if v.cifar:
        n = CIFAR_DEPTHS[v.depth]
        arch: dict[str, Any] = dict(block="basic", layers=(n, n, n), num_classes=10, widths=(16, 32, 64),
                                    stem="cifar", stem_width=16, shortcut="A", residual=v.residual,
                                    drop_path_rate=v.drop_path_rate)  # fmt: skip
    else:
        block, layers = RESNET_DEPTHS[v.depth]
        arch = dict(block=block, layers=layers, stem=v.stem, avg_down=v.avg_down)
        if block == "bottleneck":
            arch["stride_in_1x1"] = v.stride_in_1x1
    return ResNet(**{**arch, **kwargs})


@register_model(_cfg("resnet18"))
def resnet18(**kwargs: Any) -> ResNet:
    """ResNet-18 (basic blocks 2-2-2-2), torchvision's layout and keys. Options as :class:`ResNet`."""
    return _create_resnet("resnet18", **kwargs)


@register_model(_cfg("resnet34"))
def resnet34(**kwargs: Any) -> ResNet:
    """ResNet-34 (basic blocks 3-4-6-3), torchvision's layout and keys."""
    return _create_resnet("resnet34", **kwargs)


@register_model(_cfg("resnet50"))
def resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50 (bottlenecks 3-4-6-3), stride in the 3×3 (torchvision, v1.5)."""
    return _create_resnet("resnet50", **kwargs)


@register_model(_cfg("resnet101"))
def resnet101(**kwargs: Any) -> ResNet:
    """ResNet-101 (bottlenecks 3-4-23-3), stride in the 3×3 (torchvision, v1.5)."""
    return _create_resnet("resnet101", **kwargs)


@register_model(_cfg("resnet152"))
def resnet152(**kwargs: Any) -> ResNet:
    """ResNet-152 (bottlenecks 3-8-36-3), stride in the 3×3 (torchvision, v1.5)."""
    return _create_resnet("resnet152", **kwargs)


@register_model(_cfg("resnet50_v1"))
def resnet50_v1(**kwargs: Any) -> ResNet:
    """ResNet-50 as the paper has it: the stage's stride in the first 1×1."""
    return _create_resnet("resnet50_v1", **kwargs)


@register_model(_cfg("resnet101_v1"))
def resnet101_v1(**kwargs: Any) -> ResNet:
    """ResNet-101 as the paper has it: the stage's stride in the first 1×1."""
    return _create_resnet("resnet101_v1", **kwargs)


@register_model(_cfg("resnet152_v1"))
def resnet152_v1(**kwargs: Any) -> ResNet:
    """ResNet-152 as the paper has it: the stage's stride in the first 1×1."""
    return _create_resnet("resnet152_v1", **kwargs)


@register_model(_cfg("resnet50c"))
def resnet50c(**kwargs: Any) -> ResNet:
    """ResNet-50-C (Bag of Tricks §4.2): the 7×7 stem replaced by three 3×3 convs (timm keys)."""
    return _create_resnet("resnet50c", **kwargs)


@register_model(_cfg("resnet50d"))
def resnet50d(**kwargs: Any) -> ResNet:
    """ResNet-50-D (Bag of Tricks §4.2): ResNet-C plus 2×2 average pools before the projections."""
    return _create_resnet("resnet50d", **kwargs)


@register_model(_cfg("resnet8"))
def resnet8(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-8 (n = 1, not in the paper): 3 stages of 1 basic block, option-A shortcuts."""
    return _create_resnet("resnet8", **kwargs)


@register_model(_cfg("resnet20"))
def resnet20(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-20 (§4.2, n = 3): 3 stages of 3 basic blocks (16/32/64), option-A shortcuts."""
    return _create_resnet("resnet20", **kwargs)


@register_model(_cfg("resnet32"))
def resnet32(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-32 (§4.2, n = 5), option-A shortcuts."""
    return _create_resnet("resnet32", **kwargs)


@register_model(_cfg("resnet44"))
def resnet44(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-44 (§4.2, n = 7), option-A shortcuts."""
    return _create_resnet("resnet44", **kwargs)


@register_model(_cfg("resnet56"))
def resnet56(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-56 (§4.2, n = 9), option-A shortcuts."""
    return _create_resnet("resnet56", **kwargs)


@register_model(_cfg("resnet110"))
def resnet110(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-110 (§4.2, n = 18), option-A shortcuts."""
    return _create_resnet("resnet110", **kwargs)


@register_model(_cfg("resnet1202"))
def resnet1202(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-1202 (§4.2, n = 200), option-A shortcuts."""
    return _create_resnet("resnet1202", **kwargs)


@register_model(_cfg("plain20"))
def plain20(**kwargs: Any) -> ResNet:
    """CIFAR plain-20 (§4.1, Fig. 6): ResNet-20 without shortcuts."""
    return _create_resnet("plain20", **kwargs)


@register_model(_cfg("plain32"))
def plain32(**kwargs: Any) -> ResNet:
    """CIFAR plain-32: ResNet-32 without shortcuts."""
    return _create_resnet("plain32", **kwargs)


@register_model(_cfg("plain44"))
def plain44(**kwargs: Any) -> ResNet:
    """CIFAR plain-44: ResNet-44 without shortcuts."""
    return _create_resnet("plain44", **kwargs)


@register_model(_cfg("plain56"))
def plain56(**kwargs: Any) -> ResNet:
    """CIFAR plain-56: ResNet-56 without shortcuts."""
    return _create_resnet("plain56", **kwargs)


@register_model(_cfg("plain110"))
def plain110(**kwargs: Any) -> ResNet:
    """CIFAR plain-110: ResNet-110 without shortcuts (Fig. 6's comparison extended)."""
    return _create_resnet("plain110", **kwargs)


@register_model(_cfg("resnet110_sd"))
def resnet110_sd(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-110 with stochastic depth (Huang et al. 2016, §4): block l of 54 survives with
    p_l = 1 − (l / 54) · 0.5, skipped for the whole mini-batch; at test time its branch is × p_l."""
    return _create_resnet("resnet110_sd", **kwargs)


@register_model(_cfg("resnet1202_sd"))
def resnet1202_sd(**kwargs: Any) -> ResNet:
    """CIFAR ResNet-1202 with stochastic depth p_L = 0.5 (Huang et al. 2016, §4: 600 blocks)."""
    return _create_resnet("resnet1202_sd", **kwargs)
