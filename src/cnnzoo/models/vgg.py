"""VGG, configurations A to E, with torchvision's layout and state_dict keys.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015, Table 1 (configurations), §3.1 (training, init) and §3.2 (dense evaluation).

The configurations are the rows of :data:`CFGS`. An int is a 3×3 conv (stride 1, pad 1) with that
many maps, ``(c, 1)`` a 1×1 conv with ``c`` maps (config C), ``"M"`` a 2×2/2 max-pool and
``"LRN"`` the AlexNet LRN (A-LRN). Every conv is followed by a ReLU (and by batch norm, before
the ReLU, in the ``_bn`` variants). Then three fully-connected layers: 4096, 4096, classes, with
dropout 0.5 after the first two.

============  ======  ==============  ==================================================
name          config  params (1000)   notes
============  ======  ==============  ==================================================
vgg11         A       132,863,336     torchvision ``vgg11``
vgg11_lrn     A-LRN   132,863,336     LRN (n=5, k=2, α=1e-4, β=0.75) after the first conv
vgg13         B       133,047,848     torchvision ``vgg13``
vgg16c        C       133,638,952     paper: "134 M"; 1×1 conv last in stages 3, 4, 5
vgg16         D       138,357,544     torchvision ``vgg16``
vgg19         E       143,667,240     torchvision ``vgg19``
``*_bn``                              + batch norm after each conv (not in the paper; 2015)
============  ======  ==============  ==================================================

Where this departs from, or goes past, the paper:

* **Layout and keys** are torchvision's: ``features.N`` (the conv stack as one Sequential),
  ``avgpool``, ``classifier.{0,3,6}`` (fc6, fc7, fc8), so ``torchvision.models.vgg16`` weights
  load with ``strict=True``. The adaptive 7×7 average pool (``avgpool``) before fc6 is
  torchvision's addition: the identity at 224, it lets the net run on smaller images, down to
  ``min_input_size`` = 32 (five 2×2 pools leave a 1×1 map).
* **Init** (``init=``): ``"kaiming"`` (default) is torchvision's, the common alternative: He
  normal (fan-out) convs, N(0, 0.01²) fc weights, zero biases. ``"paper"`` is §3.1 as written:
  weights N(0, σ² = 10⁻², so σ = 0.1), biases 0. The paper trained only net A from it and started
  the deeper nets from A's first four convs and three fc layers (not automated here: which convs
  of D receive A's is not stated, and their shapes differ).
  ``"glorot"`` is the Glorot & Bengio (2010) init that §3.1 notes works without pre-training.
* **Batch norm** (``_bn``) is torchvision's later addition (Ioffe & Szegedy, 2015).
* **Dense evaluation** (§3.2): :meth:`VGG.to_dense` returns :class:`VGGDense`, the fully
  convolutional net (fc6 as a 7×7 conv, fc7 and fc8 as 1×1 convs, sharing the VGG's weights) that
  takes images of any size ≥ 224 and averages the class-score map. The paper also averages over
  horizontal flips; do that by calling it on ``x.flip(-1)`` too.

Fashion-MNIST: the family's ``small_input_size`` is 32, the minimum: 28×28 images are resized to
32×32, every stage then runs on 32/16/8/4/2 maps, and the adaptive pool spreads the final 1×1 map
to 7×7 for fc6.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.layers.init import (
    empty_linear,
    he_normal_init,
    init_weights_,
    norm_init,
    normal_init,
    xavier_uniform_init,
)
from cnnzoo.layers.lrn import LocalResponseNorm
from cnnzoo.models.base import FeatureInfo, ZooModel
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "CFGS",
    "make_layers",
    "vgg_stages",
    "VGG",
    "VGGDense",
    "VGGVariant",
    "VARIANTS",
    "vgg11",
    "vgg11_bn",
    "vgg11_lrn",
    "vgg13",
    "vgg13_bn",
    "vgg16c",
    "vgg16c_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
]

PAPER = (
    "K. Simonyan, A. Zisserman. Very Deep Convolutional Networks for Large-Scale Image "
    "Recognition. ICLR 2015 (arXiv:1409.1556)."
)

CfgItem = int | tuple[int, int] | str

# Table 1 of the paper, one row per configuration (torchvision's `cfgs`, plus A-LRN and C).
CFGS: dict[str, list[CfgItem]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M",
          512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}  # fmt: skip


def make_layers(cfg: list[CfgItem], *, batch_norm: bool = False, in_chans: int = 3) -> nn.Sequential:
    """The conv stack of one configuration, as torchvision builds it (same module indices)."""
    layers: list[nn.Module] = []
    c = in_chans
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif v == "LRN":
            layers.append(LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))  # Krizhevsky's values
        else:
            out, k = (v, 3) if isinstance(v, int) else v
            layers.append(nn.Conv2d(c, out, kernel_size=k, padding=k // 2))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            c = out
    return nn.Sequential(*layers)


def vgg_stages(features: nn.Sequential) -> list[FeatureInfo]:
    """One stage per resolution, tapped at the layer before each max-pool (the last ReLU, or A-LRN's
    LRN), as timm's VGG ``feature_info``: ``features.{i-1}`` at reductions 1, 2, 4, 8, 16."""
    info, channels, reduction = [], 0, 1
    for i, layer in enumerate(features):
        if isinstance(layer, nn.Conv2d):
            channels = layer.out_channels
        elif isinstance(layer, nn.MaxPool2d):
            info.append(FeatureInfo(f"features.{i - 1}", channels, reduction))
            reduction *= 2
    return info


def _init_weights(model: nn.Module, init: str) -> None:
    if init == "kaiming":  # torchvision's
        rules = {nn.Conv2d: he_normal_init("fan_out"), nn.Linear: normal_init(0.01)}
    elif init == "paper":  # §3.1: zero mean, variance 1e-2
        rules = {(nn.Conv2d, nn.Linear): normal_init(0.1)}
    else:  # "glorot": Glorot & Bengio (2010), the normalised (uniform) init
        rules = {(nn.Conv2d, nn.Linear): xavier_uniform_init()}
    init_weights_(model, {**rules, nn.BatchNorm2d: norm_init()})


class VGG(ZooModel):
    """A VGG configuration with torchvision's modules (``features``, ``avgpool``, ``classifier``).

    Stages (``feature_info``, :func:`vgg_stages`): the last layer before each max-pool, at
    reductions 1 to 16, as timm's VGG. Classifier (``head_name``): ``classifier.6`` (fc8); fc6
    and fc7 are the neck.

    Args:
        cfg: a row of :data:`CFGS` (or any list in its notation).
        num_classes: output units (1000 in the paper).
        in_chans: input channels.
        batch_norm: batch norm after every conv.
        dropout: dropout after fc6 and fc7 (0.5 in the paper).
        hidden: width of fc6 and fc7 (4096).
        init: ``"kaiming"`` (torchvision's, default), ``"paper"`` (§3.1) or ``"glorot"``.
    """

    def __init__(
        self,
        cfg: list[CfgItem],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        batch_norm: bool = False,
        dropout: float = 0.5,
        hidden: int = 4096,
        init: str = "kaiming",
    ) -> None:
        super().__init__()
        if init not in ("kaiming", "paper", "glorot"):
            raise ValueError(f"init must be 'kaiming', 'paper' or 'glorot', got {init!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.layer_cfg = list(cfg)
        self.features = make_layers(self.layer_cfg, batch_norm=batch_norm, in_chans=in_chans)
        width = [v if isinstance(v, int) else v[0] for v in self.layer_cfg if v not in ("M", "LRN")][-1]
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))  # identity at 224
        self.classifier = nn.Sequential(
            empty_linear(width * 7 * 7, hidden),  # 0: fc6
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            empty_linear(hidden, hidden),  # 3: fc7
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            empty_linear(hidden, num_classes),  # 6: fc8
        )
        self.feature_info = vgg_stages(self.features)
        self.head_name = "classifier.6"
        _init_weights(self, init)  # sets every conv, linear and batch-norm parameter

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # (N, 512, H/32, W/32): (N, 512, 7, 7) at 224

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (N, 25088)
        for layer in self.classifier[:-1]:  # fc6, fc7 (one by one, so fx can trace it)
            x = layer(x)  # (N, 4096)
        return x if pre_logits else self.classifier[-1](x)  # (N, num_classes)

    def to_dense(self) -> VGGDense:
        """The fully-convolutional form for dense evaluation (§3.2), sharing this net's weights."""
        return VGGDense(self)


class VGGDense(ZooModel):
    """VGG for dense evaluation (§3.2): fc6 becomes a 7×7 conv and fc7/fc8 1×1 convs, so the net
    slides over an image of any size ≥ 224 and yields a class-score map, which is averaged.

    Built from a :class:`VGG` by :meth:`VGG.to_dense`. It **shares** that net's parameters: the
    same ``features`` modules, and conv weights that are views of the fc weights (no copy of the
    500 MB of fc6-fc8; ``copy.deepcopy`` the result for an independent net). The keys stay
    ``features.N`` and ``classifier.{0,3,6}``. At 224 the logits equal the VGG's.
    """

    def __init__(self, vgg: VGG) -> None:
        super().__init__()
        self.num_classes = vgg.num_classes
        self.in_chans = vgg.in_chans
        self.min_input_size = 224  # fc6 is a 7×7 conv over a map 1/32 of the input
        cfg = getattr(vgg, "default_cfg", None)
        if cfg is not None:  # same name, so errors still say "vgg16 needs at least 224x224"
            self.default_cfg = replace(cfg, min_input_size=224, notes=f"{cfg.notes}; dense evaluation form")
        self.features = vgg.features
        fcs = [vgg.classifier[i] for i in (0, 3, 6)]
        kernels = (7, 1, 1)  # fc6 sees the whole 7×7 map; fc7 and fc8 one position
        convs = []
        for fc, k in zip(fcs, kernels, strict=True):
            conv = nn.Conv2d(fc.in_features // (k * k), fc.out_features, k, device="meta")
            # (out, c·k·k) -> (out, c, k, k): the row-major flatten of (c, k, k) that fc6 reads
            conv.weight = nn.Parameter(fc.weight.view(conv.weight.shape), fc.weight.requires_grad)
            conv.bias = fc.bias
            convs.append(conv)
        self.feature_info = list(vgg.feature_info)
        self.head_name = "classifier.6"  # the 1x1 conv of fc8
        p = vgg.classifier[2].p
        self.classifier = nn.Sequential(
            convs[0], nn.ReLU(inplace=True), nn.Dropout(p), convs[1], nn.ReLU(inplace=True), nn.Dropout(p),
            convs[2],
        )  # fmt: skip

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # (N, 512, H/32, W/32)

    def score_map(self, x: Tensor) -> Tensor:
        """The class-score map (N, num_classes, H/32 − 6, W/32 − 6), before averaging."""
        return self.classifier(self.forward_features(x))  # forward_features checks x

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        for layer in self.classifier[:-1]:  # fc6, fc7 as convs
            x = layer(x)  # (N, 4096, h, w)
        if pre_logits:
            return x.mean(dim=(2, 3))
        return self.classifier[-1](x).mean(dim=(2, 3))  # average the score map: (N, num_classes)


class VGGVariant(NamedTuple):
    """One registered VGG: a configuration of Table 1, with or without batch norm."""

    config: str  # a key of CFGS
    batch_norm: bool
    note: str


_TV = "torchvision layout and keys"
_TV_BN = "torchvision layout and keys; batch norm (not in the paper)"
_BN = "batch norm (not in the paper); torchvision-style keys"

VARIANTS: dict[str, VGGVariant] = {
    "vgg11": VGGVariant("A", False, _TV),
    "vgg11_bn": VGGVariant("A", True, _TV_BN),
    "vgg11_lrn": VGGVariant("A-LRN", False, "LRN after the first conv; torchvision-style keys"),
    "vgg13": VGGVariant("B", False, _TV),
    "vgg13_bn": VGGVariant("B", True, _TV_BN),
    "vgg16c": VGGVariant("C", False, "1x1 conv last in stages 3-5; torchvision-style keys"),
    "vgg16c_bn": VGGVariant("C", True, _BN),
    "vgg16": VGGVariant("D", False, _TV),
    "vgg16_bn": VGGVariant("D", True, _TV_BN),
    "vgg19": VGGVariant("E", False, _TV),
    "vgg19_bn": VGGVariant("E", True, _TV_BN),
}


def _cfg(name: str) -> ModelConfig:
    v = VARIANTS[name]
    return ModelConfig(
        input_size=(3, 224, 224),
        min_input_size=32,  # five 2×2 pools: 32 -> 1
        num_classes=1000,
        paper=PAPER,
        year=2015,
        family="vgg",
        small_input_size=32,
        small_input_mode="resize",
        notes=f"config {v.config}; {v.note}",
        extra={"config": v.config},
    )


def _create_vgg(name: str, **kwargs) -> VGG:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    v = VARIANTS[name]
    return VGG(CFGS[v.config], **{"batch_norm": v.batch_norm, **kwargs})


@register_model(_cfg("vgg11"))
def vgg11(**kwargs) -> VGG:
    """VGG-11, configuration A (8 convs + 3 fc). Options as :class:`VGG`."""
    return _create_vgg("vgg11", **kwargs)


@register_model(_cfg("vgg11_bn"))
def vgg11_bn(**kwargs) -> VGG:
    """VGG-11 with batch norm (torchvision's ``vgg11_bn``)."""
    return _create_vgg("vgg11_bn", **kwargs)


@register_model(_cfg("vgg11_lrn"))
def vgg11_lrn(**kwargs) -> VGG:
    """VGG-11 with LRN after the first conv (configuration A-LRN)."""
    return _create_vgg("vgg11_lrn", **kwargs)


@register_model(_cfg("vgg13"))
def vgg13(**kwargs) -> VGG:
    """VGG-13, configuration B."""
    return _create_vgg("vgg13", **kwargs)


@register_model(_cfg("vgg13_bn"))
def vgg13_bn(**kwargs) -> VGG:
    """VGG-13 with batch norm (torchvision's ``vgg13_bn``)."""
    return _create_vgg("vgg13_bn", **kwargs)


@register_model(_cfg("vgg16c"))
def vgg16c(**kwargs) -> VGG:
    """VGG-16, configuration C: the last conv of stages 3, 4 and 5 is 1×1."""
    return _create_vgg("vgg16c", **kwargs)


@register_model(_cfg("vgg16c_bn"))
def vgg16c_bn(**kwargs) -> VGG:
    """Configuration C with batch norm (no torchvision counterpart)."""
    return _create_vgg("vgg16c_bn", **kwargs)


@register_model(_cfg("vgg16"))
def vgg16(**kwargs) -> VGG:
    """VGG-16, configuration D."""
    return _create_vgg("vgg16", **kwargs)


@register_model(_cfg("vgg16_bn"))
def vgg16_bn(**kwargs) -> VGG:
    """VGG-16 with batch norm (torchvision's ``vgg16_bn``)."""
    return _create_vgg("vgg16_bn", **kwargs)


@register_model(_cfg("vgg19"))
def vgg19(**kwargs) -> VGG:
    """VGG-19, configuration E."""
    return _create_vgg("vgg19", **kwargs)


@register_model(_cfg("vgg19_bn"))
def vgg19_bn(**kwargs) -> VGG:
    """VGG-19 with batch norm (torchvision's ``vgg19_bn``)."""
    return _create_vgg("vgg19_bn", **kwargs)
