"""ResNet: the ImageNet family, the paper's original bottleneck, and the Bag-of-Tricks stems.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, Table 1.

Every depth is a row of data: block type and blocks per stage (``(3, 4, 6, 3)`` for ResNet-50).
One :class:`ResNet` class builds them all, the CIFAR nets of §4.2 and their plain counterparts
included (see "CIFAR family" below).

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

CIFAR family (§4.2): ``resnet8`` (n = 1, not in the paper: the smallest member), ``resnet20``, ``32``, ``44``, ``56``, ``110``, ``1202`` (depth 6n + 2): a 3×3 conv
with 16 filters, then three stages of n basic blocks with 16, 32 and 64 filters on 32², 16² and 8²
maps, option-A shortcuts, global average pool and a 10-way fc. ``plain20`` … ``plain110`` are the
same stacks without shortcuts (the degradation experiment, Fig. 6). Fashion-MNIST's 28×28 images
are zero-padded to 32×32 (the paper's geometry); 28×28 also works (``--input-size 28``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from cnnzoo.layers.residual import BasicBlock, Bottleneck, DeepStem, ShortcutOption
from cnnzoo.models.base import ZooModel
from cnnzoo.registry import CIFAR10_MEAN, CIFAR10_STD, ModelConfig, register_model

__all__ = ["ResNet", "RESNET_DEPTHS", "IMAGENET_VARIANTS", "CIFAR_DEPTHS", "PAPER", "BAG_OF_TRICKS"]

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


class ResNet(ZooModel):
    """A residual network: stem, stages of residual blocks, global average pool, fc.

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
        block_cls = BLOCKS[block]

        if stem == "7x7":
            self.conv1: nn.Module = nn.Conv2d(in_chans, stem_width, 7, stride=2, padding=3, bias=False)
        elif stem == "deep":
            self.conv1 = DeepStem(in_chans, (stem_width // 2, stem_width // 2, stem_width))
        elif stem == "cifar":
            self.conv1 = nn.Conv2d(in_chans, stem_width, 3, padding=1, bias=False)
        else:
            raise ValueError(f"stem must be '7x7', 'deep' or 'cifar', got {stem!r}")
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if stem == "cifar" else nn.MaxPool2d(3, stride=2, padding=1)

        extra: dict[str, Any] = dict(shortcut=shortcut, residual=residual, avg_down=avg_down)
        if block_cls is Bottleneck:
            extra["stride_in_1x1"] = stride_in_1x1
        channels = stem_width
        self.stage_names: list[str] = []
        for i, (n, planes) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(block_cls(channels, planes, stride if j == 0 else 1, **extra))
                channels = blocks[-1].out_channels
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.stage_names.append(f"layer{i + 1}")
        self.num_features = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self.init_weights(zero_init_residual)

    def init_weights(self, zero_init_residual: bool = False) -> None:
        """He normal init (fan-out) for convs, BN γ = 1 and β = 0, optional zero-γ residuals."""
        if self.fc.weight.is_meta:  # shapes only (param counts, the model index): nothing to fill
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock | Bottleneck):
                    m.zero_init_last()

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4) for the 7×7 stem
        for name in self.stage_names:
            x = getattr(self, name)(x)  # each later stage halves H and W
        return x  # (N, num_features, H/32, W/32)

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (N, num_features)
        return x if pre_logits else self.fc(x)


# name -> (depth, architecture options, one-line note on where it departs from the paper)
IMAGENET_VARIANTS: dict[str, tuple[int, dict[str, Any], str]] = {
    "resnet18": (18, {}, "torchvision layout and keys"),
    "resnet34": (34, {}, "torchvision layout and keys"),
    "resnet50": (50, {}, "torchvision layout: stride in the bottleneck's 3x3 (v1.5)"),
    "resnet101": (101, {}, "torchvision layout: stride in the bottleneck's 3x3 (v1.5)"),
    "resnet152": (152, {}, "torchvision layout: stride in the bottleneck's 3x3 (v1.5)"),
    "resnet50_v1": (50, {"stride_in_1x1": True}, "the paper's original: stride in the first 1x1"),
    "resnet101_v1": (101, {"stride_in_1x1": True}, "the paper's original: stride in the first 1x1"),
    "resnet152_v1": (152, {"stride_in_1x1": True}, "the paper's original: stride in the first 1x1"),
    "resnet50c": (50, {"stem": "deep"}, "Bag of Tricks ResNet-C: 3x3 deep stem (32-32-64), timm keys"),
    "resnet50d": (
        50,
        {"stem": "deep", "avg_down": True},
        "Bag of Tricks ResNet-D: deep stem + 2x2 avg-pool before 1x1 projections, timm keys",
    ),
}


def _register_imagenet(name: str, depth: int, options: dict[str, Any], note: str) -> None:
    block, layers = RESNET_DEPTHS[depth]
    tricks = name.endswith(("c", "d"))

    def builder(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
        return ResNet(block, layers, num_classes=num_classes, in_chans=in_chans, **{**options, **kwargs})

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"ResNet-{depth} ({block} blocks {layers}): {note}. Keyword options as :class:`ResNet`."
    cfg = ModelConfig(
        input_size=(3, 224, 224),
        min_input_size=33,  # last map 2x2 (see the module docstring)
        num_classes=1000,
        paper=BAG_OF_TRICKS if tricks else PAPER,
        year=2019 if tricks else 2016,
        family="resnet",
        small_input_size=64,
        small_input_mode="resize",
        notes=note,
    )
    register_model(cfg, name=name)(builder)
    globals()[name] = builder


for _name, (_depth, _options, _note) in IMAGENET_VARIANTS.items():
    _register_imagenet(_name, _depth, _options, _note)


# §4.2: depth 6n + 2 -> n blocks per stage. Fig. 6 compares plain nets of 20-56 layers; plain110
# extends the same comparison to the depth of ResNet-110. resnet8 (n = 1) is not in the paper: the
# family's smallest member, used by the fashion-best recipe where a CPU budget rules.
CIFAR_DEPTHS: dict[int, int] = {8: 1, 20: 3, 32: 5, 44: 7, 56: 9, 110: 18, 1202: 200}
PLAIN_DEPTHS = (20, 32, 44, 56, 110)


def _register_cifar(depth: int, residual: bool) -> None:
    n = CIFAR_DEPTHS[depth]
    name = f"{'resnet' if residual else 'plain'}{depth}"

    def builder(*, num_classes: int = 10, in_chans: int = 3, **kwargs: Any) -> ResNet:
        options: dict[str, Any] = dict(widths=(16, 32, 64), stem="cifar", stem_width=16, shortcut="A")
        return ResNet(
            "basic",
            (n, n, n),
            num_classes=num_classes,
            in_chans=in_chans,
            residual=residual,
            **{**options, **kwargs},
        )

    kind = "option-A shortcuts" if residual else "no shortcuts (plain net, §4.1)"
    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"CIFAR {name} (§4.2): 3 stages of {n} basic blocks (16/32/64), {kind}."
    cfg = ModelConfig(
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
        notes=f"CIFAR-10 net, 6n+2 layers with n={n}, {kind}" + (" (not in the paper)" if n == 1 else ""),
    )
    register_model(cfg, name=name)(builder)
    globals()[name] = builder


for _depth in CIFAR_DEPTHS:
    _register_cifar(_depth, residual=True)
for _depth in PLAIN_DEPTHS:
    _register_cifar(_depth, residual=False)
