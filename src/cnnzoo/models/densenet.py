"""DenseNet: every layer sees the concatenated maps of all layers before it in its block.

Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks", CVPR 2017.
Layer l of a dense block computes H_l([x_0, x_1, …, x_{l−1}]), k new maps (the growth rate),
where H_l is BN → ReLU → 3×3 conv (§3), or in DenseNet-B BN → ReLU → 1×1 conv (4k maps) → BN →
ReLU → 3×3 conv. Between blocks a transition layer BN → ReLU → 1×1 conv → 2×2 average pool keeps
⌊θ·m⌋ of its m maps (DenseNet-C; θ = 0.5 in DenseNet-BC, 1 in the basic DenseNet).

=======================  ==============  ====  ===========  ======================================
name                     layers / block  k     kind         the paper
=======================  ==============  ====  ===========  ======================================
``densenet121``          6-12-24-16      32    BC           Table 1; 25.02/7.71% error (Table 3)
``densenet169``          6-12-32-32      32    BC           Table 1; 23.80/6.85%
``densenet201``          6-12-48-32      32    BC           Table 1; 22.58/6.34%
``densenet264``          6-12-64-48      32    BC           Table 1; 22.15/6.12%
``densenet161``          6-12-36-24      48    BC, 96 stem  the authors' release (torchvision's)
``densenet40_k12``       12-12-12        12    basic        Table 2: 1.0 M, C10+ error 5.24%
``densenet_bc100_k12``   16-16-16        12    BC           Table 2: 0.8 M, C10+ error 4.51%
``densenet_bc250_k24``   41-41-41        24    BC           Table 2: 15.3 M, C10+ error 3.62%
``densenet_bc190_k40``   31-31-31        40    BC           Table 2: 25.6 M, C10+ error 3.46%
=======================  ==============  ====  ===========  ======================================

Choices:

* **ImageNet** (Table 1): 7×7/2 conv of 2k maps → BN → ReLU → 3×3/2 max-pool (padding 1), four
  dense blocks, three transitions, BN → ReLU → global average pool → fc. Module names are
  torchvision's (``conv0``, ``norm0``, ``denseblock1.denselayer1.norm1``, ``transition1.conv``,
  ``norm5``, ``classifier``) without its ``features.`` prefix; the key map in
  :mod:`cnnzoo.weights` loads torchvision's files, old-style keys (``norm.1``) included.
* **CIFAR** (§3 "Implementation details" and the authors' ``densenet.lua``): a bare 3×3 conv of
  16 maps (2k for BC) — the first layer's BN-ReLU follows —, three blocks of equal depth
  ((L − 4) / 3 layers, (L − 4) / 6 for BC) on 32², 16², 8² maps, 1×1 conv + 2×2 average-pool
  transitions, BN → ReLU → global average pool → fc.
* **No conv biases** (torchvision and the authors' Caffe models; their Torch CIFAR code has
  biases, which add < 0.1% to the counts): every conv is followed by a BN.
* **Parameter counts**: torchvision's exactly for 121/161/169/201; the CIFAR nets round to Table 2.
* **Dropout** (``dropout=``, §4.2: 0.2 on the datasets without augmentation) after every conv but
  the first; off by default (Table 2's C10+ figures are without it).
* **Memory-efficient** (``memory_efficient=True``, Pleiss et al. 2017, "Memory-Efficient
  Implementation of DenseNets"; torchvision's option of the same name): the concatenation, BN,
  ReLU and first conv of each layer are recomputed in backward (``torch.utils.checkpoint``), so
  the concatenated inputs are never stored; the recomputation normalises with the batch
  statistics without touching BN's running averages a second time. Same outputs and gradients.
* **Minimum input**: the transitions' pools floor odd sides, and the last map must be 2×2 for
  BN to train: 61 for ImageNet (the stem's two ceil-halvings, then three floor-halvings: ⌈s / 4⌉
  ≥ 16) and 8 for CIFAR. 28×28 Fashion-MNIST is resized to 64 (ImageNet nets) or zero-padded to 32.
* **Init**: He normal (fan-in) convs, BN γ = 1 and β = 0, zero fc bias, as torchvision.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from cnnzoo.errors import ConfigError
from cnnzoo.layers.init import he_normal_init, init_weights_, norm_init
from cnnzoo.models._config import cifar_cfg, imagenet_cfg
from cnnzoo.models._residual import is_int, is_real
from cnnzoo.models.base import FeatureInfo, ZooModel
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "PAPER",
    "DenseLayer",
    "DenseBlock",
    "Transition",
    "DenseNet",
    "DenseNetVariant",
    "VARIANTS",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
    "densenet264",
    "densenet40_k12",
    "densenet_bc100_k12",
    "densenet_bc250_k24",
    "densenet_bc190_k40",
]

PAPER = (
    "G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger. Densely Connected Convolutional "
    "Networks. CVPR 2017."
)


class DenseLayer(nn.Module):
    """H_l of one dense layer: ``cat(inputs)`` → BN → ReLU → conv1 (→ BN → ReLU → conv2), k maps out.

    Args:
        in_channels: the width of the concatenated inputs.
        growth_rate: k, the maps the layer adds.
        bn_size: the bottleneck's width factor (``conv1`` is 1×1 to ``bn_size · k`` maps, ``conv2``
            3×3 to k: DenseNet-B); ``None`` for the basic layer (``conv1`` is the 3×3 to k).
        dropout: dropout after each conv (the paper's setting without augmentation), 0 for none.
        memory_efficient: recompute the concatenation, BN, ReLU and ``conv1`` in backward.
    """

    cost_type = "block"

    def __init__(
        self,
        in_channels: int,
        growth_rate: int,
        bn_size: int | None = 4,
        *,
        dropout: float = 0.0,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        self.growth_rate, self.bn_size, self.memory_efficient = growth_rate, bn_size, memory_efficient
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        if bn_size is None:
            self.conv1 = nn.Conv2d(in_channels, growth_rate, 3, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.drop1 = nn.Dropout(dropout) if dropout > 0 else None
        if bn_size is None:
            self.norm2 = self.relu2 = self.conv2 = self.drop2 = None
        else:
            self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
            self.drop2 = nn.Dropout(dropout) if dropout > 0 else None

    def _first_conv(self, *inputs: Tensor) -> Tensor:
        return self.conv1(self.relu1(self.norm1(torch.cat(inputs, 1))))

    def _checkpointed_first_conv(self, inputs: list[Tensor]) -> Tensor:
        calls = 0

        def first_conv(*xs: Tensor) -> Tensor:
            nonlocal calls
            calls += 1
            if calls == 1 or not self.norm1.training:
                return self._first_conv(*xs)
            # the recomputation in backward: the same batch statistics, but momentum 0 leaves the
            # running averages as the first pass left them (and saves the same tensors)
            bn = self.norm1
            x = torch.cat(xs, 1)
            x = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, True, 0.0, bn.eps)
            return self.conv1(self.relu1(x))

        return checkpoint(first_conv, *inputs, use_reentrant=False)

    def forward(self, inputs: Tensor | list[Tensor]) -> Tensor:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        saving = self.memory_efficient and torch.is_grad_enabled() and any(t.requires_grad for t in inputs)
        out = self._checkpointed_first_conv(inputs) if saving else self._first_conv(*inputs)
        if self.drop1 is not None:
            out = self.drop1(out)
        if self.conv2 is not None:
            out = self.conv2(self.relu2(self.norm2(out)))  # (N, k, H, W)
            if self.drop2 is not None:
                out = self.drop2(out)
        return out

    def cost_details(self) -> dict[str, int]:
        details = {"growth": self.growth_rate}
        if self.bn_size is not None:
            details["bottleneck"] = self.bn_size * self.growth_rate
        return details


class DenseBlock(nn.Module):
    """``num_layers`` dense layers ``denselayer1``…, each fed all maps so far; returns their concatenation."""

    cost_type = "stage"

    def __init__(
        self,
        num_layers: int,
        in_channels: int,
        growth_rate: int,
        bn_size: int | None = 4,
        *,
        dropout: float = 0.0,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        self.num_layers, self.growth_rate = num_layers, growth_rate
        for i in range(num_layers):
            layer = DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size,
                               dropout=dropout, memory_efficient=memory_efficient)  # fmt: skip
            self.add_module(f"denselayer{i + 1}", layer)
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.children():
            features.append(layer(features))
        return torch.cat(features, 1)  # (N, in + num_layers · k, H, W)

    def cost_details(self) -> dict[str, int]:
        return {"layers": self.num_layers, "growth": self.growth_rate}


class Transition(nn.Sequential):
    """BN → ReLU → 1×1 conv to ⌊θ·m⌋ maps → 2×2 average pool (torchvision's keys ``norm``, ``conv``)."""

    cost_type = "block"

    def __init__(self, in_channels: int, out_channels: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.compression = out_channels / in_channels
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        if dropout > 0:
            self.dropout = nn.Dropout(dropout)
        self.pool = nn.AvgPool2d(2, stride=2)

    def cost_details(self) -> dict[str, float]:
        return {"compression": round(self.compression, 3)}


class DenseNet(ZooModel):
    """A DenseNet: stem, dense blocks with transitions between them, BN-ReLU, global pool, fc.

    Stages (``feature_info``): ``denseblock1``…``denseblock4`` at reductions 4, 8, 16 (the maps
    before each transition, as timm) and ``relu5`` at 32; CIFAR ``denseblock1``, ``denseblock2``,
    ``relu5`` at 1, 2, 4. Classifier (``head_name``): ``classifier``.

    Args:
        block_config: layers per dense block, e.g. ``(6, 12, 24, 16)``.
        num_classes: classifier outputs.
        in_chans: input channels.
        growth_rate: k, the maps each layer adds (an int ≥ 1).
        num_init_features: the stem's width (default 2k; the basic CIFAR DenseNet uses 16).
        bn_size: bottleneck width factor (4: DenseNet-B, ``None``: the basic layer).
        compression: θ, the share of maps a transition keeps, in (0, 1] (0.5: DenseNet-C).
        stem: ``"imagenet"`` (7×7/2 conv, BN, ReLU, 3×3/2 max-pool) or ``"cifar"`` (a 3×3 conv).
        dropout: dropout after every conv but the first, in [0, 1).
        memory_efficient: checkpointed concatenations (Pleiss et al. 2017), same results.

    Raises:
        ConfigError: for an option that cannot work (one line each, naming the fix).
    """

    def __init__(
        self,
        block_config: tuple[int, ...],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        growth_rate: int = 32,
        num_init_features: int | None = None,
        bn_size: int | None = 4,
        compression: float = 0.5,
        stem: str = "imagenet",
        dropout: float = 0.0,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        _check_options(block_config, growth_rate, num_init_features, bn_size, compression, stem, dropout)
        self.num_classes = num_classes
        self.in_chans = in_chans
        channels = 2 * growth_rate if num_init_features is None else num_init_features
        transitions = len(block_config) - 1
        if stem == "imagenet":
            self.conv0 = nn.Conv2d(in_chans, channels, 7, stride=2, padding=3, bias=False)
            self.norm0 = nn.BatchNorm2d(channels)
            self.relu0 = nn.ReLU(inplace=True)
            self.pool0 = nn.MaxPool2d(3, stride=2, padding=1)
            reduction, self.min_input_size = 4, 8 * 2**transitions - 3  # ceil(s / 4) >= 2 · 2^T
        else:
            self.conv0 = nn.Conv2d(in_chans, channels, 3, padding=1, bias=False)
            reduction, self.min_input_size = 1, 2 * 2**transitions  # floor-halved T times to >= 2
        self.stem = stem
        self.feature_info: list[FeatureInfo] = []
        self.block_names: list[str] = []
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(num_layers, channels, growth_rate, bn_size,
                               dropout=dropout, memory_efficient=memory_efficient)  # fmt: skip
            self.add_module(f"denseblock{i + 1}", block)
            channels = block.out_channels
            self.block_names.append(f"denseblock{i + 1}")
            if i < transitions:
                self.feature_info.append(FeatureInfo(f"denseblock{i + 1}", channels, reduction))
                out = int(compression * channels)  # floor, as the authors' code
                self.add_module(f"transition{i + 1}", Transition(channels, out, dropout=dropout))
                self.block_names.append(f"transition{i + 1}")
                channels, reduction = out, reduction * 2
        self.norm5 = nn.BatchNorm2d(channels)
        self.relu5 = nn.ReLU(inplace=True)
        self.feature_info.append(FeatureInfo("relu5", channels, reduction))
        self.num_features = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        self.head_name = "classifier"
        self.init_weights()

    def init_weights(self) -> None:
        """He normal (fan-in) convs, BN γ = 1 and β = 0, zero fc bias (torchvision's init)."""
        init_weights_(self, {nn.Conv2d: he_normal_init("fan_in", bias=None), nn.BatchNorm2d: norm_init()})
        if not self.classifier.bias.is_meta:
            nn.init.zeros_(self.classifier.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.conv0(x)
        if self.stem == "imagenet":
            x = self.pool0(self.relu0(self.norm0(x)))  # (N, 2k, H/4, W/4)
        for name in self.block_names:
            x = getattr(self, name)(x)  # a block adds layers · k maps; a transition halves H, W
        return self.relu5(self.norm5(x))

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (N, num_features)
        return x if pre_logits else self.classifier(x)


def _check_options(
    block_config: tuple[int, ...],
    growth_rate: Any,
    num_init_features: Any,
    bn_size: Any,
    compression: Any,
    stem: str,
    dropout: Any,
) -> None:
    """One clear line for each option of :class:`DenseNet` that cannot work."""
    if not is_int(growth_rate) or growth_rate < 1:
        raise ConfigError(
            f"growth_rate k is the number of maps each dense layer adds and must be an int of at least 1, "
            f"got {growth_rate!r}; the paper uses 12, 24, 32, 40 or 48"
        )
    if not block_config or not all(is_int(n) and n >= 1 for n in block_config):
        raise ConfigError(f"block_config needs a positive layer count per dense block, got {block_config!r}")
    if num_init_features is not None and not (is_int(num_init_features) and num_init_features >= 1):
        raise ConfigError(
            f"num_init_features must be an int of at least 1 (or None for 2k), got {num_init_features!r}"
        )
    if bn_size is not None and not (is_int(bn_size) and bn_size >= 1):
        raise ConfigError(f"bn_size must be an int of at least 1 (4 in DenseNet-B) or None, got {bn_size!r}")
    if not (is_real(compression) and 0 < compression <= 1):
        raise ConfigError(f"compression θ must be in (0, 1] (0.5 in DenseNet-C), got {compression!r}")
    if stem not in ("imagenet", "cifar"):
        raise ConfigError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
    if not (is_real(dropout) and 0 <= dropout < 1):
        raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")


class DenseNetVariant(NamedTuple):
    """One registered DenseNet: layers per block, growth rate, and the published figures."""

    block_config: tuple[int, ...]
    growth_rate: int
    cifar: bool = False
    bc: bool = True  # DenseNet-BC: 1x1 bottleneck to 4k and compression 0.5; False: the basic net
    num_init_features: int | None = None  # None: 2k
    reported: dict[str, Any] | None = None
    macs: dict[str, Any] | None = None


def _table3(top1_error: float, top5_error: float) -> dict[str, Any]:
    return {"dataset": "imagenet", "top1": round(100 - top1_error, 2), "top5": round(100 - top5_error, 2),
            "crop": 224, "source": "Huang et al. 2017, Table 3 (single crop)"}  # fmt: skip


def _table2(error: float) -> dict[str, Any]:
    return {"dataset": "cifar10+", "error": error, "source": "Huang et al. 2017, Table 2 (C10+)"}


def _tv_macs(name: str, gmacs: float) -> dict[str, Any]:
    return {"value": gmacs * 1e9, "source": f"torchvision {name}_Weights.IMAGENET1K_V1"}


_TV161 = "DenseNet161_Weights.IMAGENET1K_V1"

VARIANTS: dict[str, DenseNetVariant] = {
    "densenet121": DenseNetVariant((6, 12, 24, 16), 32, reported=_table3(25.02, 7.71), macs=_tv_macs("DenseNet121", 2.834)),
    "densenet169": DenseNetVariant((6, 12, 32, 32), 32, reported=_table3(23.80, 6.85), macs=_tv_macs("DenseNet169", 3.36)),
    "densenet201": DenseNetVariant((6, 12, 48, 32), 32, reported=_table3(22.58, 6.34), macs=_tv_macs("DenseNet201", 4.291)),
    "densenet264": DenseNetVariant((6, 12, 64, 48), 32, reported=_table3(22.15, 6.12)),
    "densenet161": DenseNetVariant(
        (6, 12, 36, 24), 48, num_init_features=96,
        reported={"dataset": "imagenet", "top1": 77.138, "top5": 93.56, "crop": 224, "source": f"torchvision {_TV161}"},
        macs=_tv_macs("DenseNet161", 7.728),
    ),
    "densenet40_k12": DenseNetVariant((12, 12, 12), 12, True, bc=False, num_init_features=16, reported=_table2(5.24)),
    "densenet_bc100_k12": DenseNetVariant((16, 16, 16), 12, True, reported=_table2(4.51)),
    "densenet_bc250_k24": DenseNetVariant((41, 41, 41), 24, True, reported=_table2(3.62)),
    "densenet_bc190_k40": DenseNetVariant((31, 31, 31), 40, True, reported=_table2(3.46)),
}  # fmt: skip


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    kind = "DenseNet-BC" if v.bc else "DenseNet (no bottleneck, no compression)"
    layers = "-".join(map(str, v.block_config))
    extra = {k: x for k, x in (("reported", v.reported), ("macs", v.macs)) if x is not None}
    common: dict[str, Any] = dict(
        paper=PAPER, year=2017, notes=f"{kind}, k={v.growth_rate}, layers {layers}", extra=extra
    )
    if v.cifar:
        return cifar_cfg(family="densenet_cifar", min_input_size=8, **common)
    return imagenet_cfg(family="densenet", min_input_size=61, **common)


def _create_densenet(name: str, **kwargs: Any) -> DenseNet:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    v = VARIANTS[name]
    arch: dict[str, Any] = dict(growth_rate=v.growth_rate, num_init_features=v.num_init_features)
    if v.cifar:
        arch.update(num_classes=10, stem="cifar")
    if not v.bc:
        arch.update(bn_size=None, compression=1.0)
    return DenseNet(v.block_config, **{**arch, **kwargs})


@register_model(_cfg("densenet121"))
def densenet121(**kwargs: Any) -> DenseNet:
    """DenseNet-121 (Table 1, k = 32): 7,978,856 params. Options as :class:`DenseNet`."""
    return _create_densenet("densenet121", **kwargs)


@register_model(_cfg("densenet169"))
def densenet169(**kwargs: Any) -> DenseNet:
    """DenseNet-169 (Table 1, k = 32): 14,149,480 params."""
    return _create_densenet("densenet169", **kwargs)


@register_model(_cfg("densenet201"))
def densenet201(**kwargs: Any) -> DenseNet:
    """DenseNet-201 (Table 1, k = 32): 20,013,928 params."""
    return _create_densenet("densenet201", **kwargs)


@register_model(_cfg("densenet264"))
def densenet264(**kwargs: Any) -> DenseNet:
    """DenseNet-264 (Table 1, k = 32): the deepest ImageNet DenseNet of the paper."""
    return _create_densenet("densenet264", **kwargs)


@register_model(_cfg("densenet161"))
def densenet161(**kwargs: Any) -> DenseNet:
    """DenseNet-161 (k = 48, a 96-map stem): the authors' released network, torchvision's 28,681,000 params."""
    return _create_densenet("densenet161", **kwargs)


@register_model(_cfg("densenet40_k12"))
def densenet40_k12(**kwargs: Any) -> DenseNet:
    """CIFAR DenseNet (L = 40, k = 12; no bottleneck, no compression): 1.0 M params, C10+ error 5.24%."""
    return _create_densenet("densenet40_k12", **kwargs)


@register_model(_cfg("densenet_bc100_k12"))
def densenet_bc100_k12(**kwargs: Any) -> DenseNet:
    """CIFAR DenseNet-BC (L = 100, k = 12): 0.8 M params, C10+ error 4.51%."""
    return _create_densenet("densenet_bc100_k12", **kwargs)


@register_model(_cfg("densenet_bc250_k24"))
def densenet_bc250_k24(**kwargs: Any) -> DenseNet:
    """CIFAR DenseNet-BC (L = 250, k = 24): 15.3 M params, C10+ error 3.62%."""
    return _create_densenet("densenet_bc250_k24", **kwargs)


@register_model(_cfg("densenet_bc190_k40"))
def densenet_bc190_k40(**kwargs: Any) -> DenseNet:
    """CIFAR DenseNet-BC (L = 190, k = 40): 25.6 M params, C10+ error 3.46%."""
    return _create_densenet("densenet_bc190_k40", **kwargs)
