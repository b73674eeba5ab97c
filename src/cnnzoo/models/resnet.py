"""ResNet: the ImageNet family, the paper's original bottleneck, and the Bag-of-Tricks stems.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, Table 1.

Every depth is a row of data: block type and blocks per stage (``(3, 4, 6, 3)`` for ResNet-50,
:data:`RESNET_DEPTHS`), and every registered name a typed :class:`ResNetVariant` row of
:data:`VARIANTS`. One :class:`ResNet` class builds them all, the CIFAR nets of §4.2 and their plain
counterparts included (see "CIFAR family" below). Its block options (``groups``/``base_width``,
``attn_layer``, ``drop_path_rate``) are those of :mod:`cnnzoo.layers.residual`, so ResNeXt, SE-ResNet
and stochastic depth are arguments rather than forks; they are off in every wave-1 model.

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

from cnnzoo.data.constants import CIFAR10_MEAN, CIFAR10_STD
from cnnzoo.layers.init import he_normal_init, init_weights_, norm_init, zero_init_residual_
from cnnzoo.layers.residual import AttnLayer, BasicBlock, Bottleneck, DeepStem, ShortcutOption
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
    "plain20",
    "plain32",
    "plain44",
    "plain56",
    "plain110",
]

PAPER = "K. He, X. Zhang, S. Ren, J. Sun. Deep Residual Learning for Image Recognition. CVPR 2016."
BAG_OF_TRICKS = (
    "T. He, Z. Zhang, H. Zhang, Z. Zhang, J. Xie, M. Li. Bag of Tricks for Image Classification "
    "with Convolutional Neural Networks. CVPR 2019."
)

BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}

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
    what runs before ``layer1`` is the stem. Classifier (``head_name``): ``fc``.

    Submodules: ``conv1``, ``bn1``, ``relu``, ``maxpool`` (the stem), ``layer1`` … ``layerK``
    (stage k, the paper's conv{k+1}_x), ``avgpool``, ``fc``: torchvision's names and keys.

    Args:
        block: ``"basic"`` or ``"bottleneck"``.
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)``.
        num_classes: classifier outputs.
        in_chans: input channels.
        widths: the ``planes`` of each stage (outputs are ×4 for bottlenecks).
        stem: ``"7x7"`` (7×7/2 conv + 3×3/2 max-pool, the paper), ``"deep"`` (ResNet-C: three
            3×3 convs + max-pool) or ``"cifar"`` (one 3×3 conv, no pool, §4.2).
        stem_width: output width of the stem.
        shortcut: option ``"A"``, ``"B"`` (default) or ``"C"`` (§3.3).
        residual: ``False`` builds the plain counterpart (no shortcuts, §4.1).
        stride_in_1x1: bottleneck stride in the first 1×1 (the paper) instead of the 3×3.
        avg_down: ResNet-D average-pool projection shortcuts.
        zero_init_residual: zero the last BN γ of every block.
        groups, base_width: ResNeXt's cardinality and bottleneck width (bottleneck blocks only).
        attn_layer: an attention layer on every block's branch (e.g. ``SqueezeExcite``).
        drop_path_rate: stochastic depth: the drop probability of the last block, 1 − p_L; block
            l of L drops with probability l / L · ``drop_path_rate`` (Huang et al. 2016, Eq. 4).
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
        shortcut: ShortcutOption = "B",
        residual: bool = True,
        stride_in_1x1: bool = False,
        avg_down: bool = False,
        zero_init_residual: bool = False,
        groups: int = 1,
        base_width: int = 64,
        attn_layer: AttnLayer = None,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {', '.join(BLOCKS)}, got {block!r}")
        if len(layers) != len(widths) or min(layers) < 1:
            raise ValueError(f"need one positive block count per stage width {widths}, got {layers}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        # Each stride-2 layer maps s to ceil(s / 2); training needs a last map of at least 2x2
        # (see the module docstring), so the minimum is one more than the total stride.
        self.total_stride = (1 if stem == "cifar" else 4) * 2 ** (len(layers) - 1)
        self.min_input_size = self.total_stride + 1
        self.conv1 = _stem_conv(stem, in_chans, stem_width)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if stem == "cifar" else nn.MaxPool2d(3, stride=2, padding=1)

        options: dict[str, Any] = dict(shortcut=shortcut, residual=residual, avg_down=avg_down,
                                       groups=groups, base_width=base_width, attn_layer=attn_layer)  # fmt: skip
        if block == "bottleneck":
            options["stride_in_1x1"] = stride_in_1x1
        rates = _drop_path_rates(sum(layers), drop_path_rate)
        channels, first = stem_width, 0
        self.stage_names: list[str] = []
        self.feature_info: list[FeatureInfo] = []  # layer1..layerK at 4, 8, 16, 32 (CIFAR: 1, 2, 4)
        reduction = 1 if stem == "cifar" else 4
        for i, (n, planes) in enumerate(zip(layers, widths, strict=True)):
            stage = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                stage.append(BLOCKS[block](channels, planes, stride, drop_path=rates[first + j], **options))
                channels = stage[-1].out_channels
            first += n
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            self.stage_names.append(f"layer{i + 1}")
            reduction *= 2 if i > 0 else 1
            self.feature_info.append(FeatureInfo(f"layer{i + 1}", channels, reduction))
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
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4) for the 7×7 stem
        for name in self.stage_names:
            x = getattr(self, name)(x)  # each later stage halves H and W
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
    raise ValueError(f"stem must be '7x7', 'deep' or 'cifar', got {stem!r}")


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
}  # fmt: skip


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    if v.cifar:
        n = CIFAR_DEPTHS[v.depth]
        notes = f"CIFAR-10 net, 6n+2 layers with n={n}, {v.note}" + (" (not in the paper)" if n == 1 else "")
        return ModelConfig(
            input_size=(3, 32, 32),
            min_input_size=5,  # last map 2x2 (see the module docstring)
            num_classes=10,
            paper=PAPER,
            year=2016,
            family="resnet_cifar",
            mean=CIFAR10_MEAN,
            std=CIFAR10_STD,
            small_input_size=32,
            small_input_mode="pad",
            notes=notes,
        )
    tricks = v.stem == "deep"
    return ModelConfig(
        input_size=(3, 224, 224),
        min_input_size=33,  # last map 2x2 (see the module docstring)
        num_classes=1000,
        paper=BAG_OF_TRICKS if tricks else PAPER,
        year=2019 if tricks else 2016,
        family="resnet",
        small_input_size=64,
        small_input_mode="resize",
        notes=v.note,
    )


def _create_resnet(name: str, **kwargs: Any) -> ResNet:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    v = VARIANTS[name]
    if v.cifar:
        n = CIFAR_DEPTHS[v.depth]
        arch: dict[str, Any] = dict(block="basic", layers=(n, n, n), num_classes=10, widths=(16, 32, 64),
                                    stem="cifar", stem_width=16, shortcut="A", residual=v.residual)  # fmt: skip
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
