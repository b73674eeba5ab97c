"""SqueezeNet: AlexNet-level accuracy from fire modules, with and without bypass connections.

Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer, "SqueezeNet: AlexNet-level accuracy with 50x fewer
parameters and <0.5MB model size", arXiv:1602.07360, 2016. Table 1 (the layers), Fig. 1 (the fire
module), Fig. 2 and Table 6 (bypass connections).

A fire module squeezes its input with s1×1 1×1 filters, then expands with e1×1 1×1 and e3×3 3×3
filters side by side and concatenates the two (every conv followed by a ReLU). Each registered name
is a :class:`SqueezeNetVariant` row: the stem conv and the fire modules (:class:`FireRow`, with the
max-pools after fire4 and fire8, or after fire3 and fire5 in v1.1).

=================================  =========================  ==================================
name                               layout                     params; top-1 / top-5 (ImageNet)
=================================  =========================  ==================================
``squeezenet1_0``                  Table 1                    1,248,424; 57.5 / 80.3 (Table 2)
``squeezenet1_1``                  the authors' v1.1          1,235,496; 58.2 / 80.6 (tv weights)
``squeezenet1_0_bypass``           + simple bypass, Fig. 2    1,248,424; 60.4 / 82.5 (Table 6)
``squeezenet1_0_complex_bypass``   + complex bypass, Fig. 2   1,589,672; 58.8 / 82.0 (Table 6)
=================================  =========================  ==================================

Choices the paper leaves open, and where the variants depart from it:

* **v1.1** is not in the paper: the authors' repository (``forresti/SqueezeNet``, SqueezeNet_v1.1)
  has a 64-filter 3×3 conv1 and moves the max-pools to after conv1, fire3 and fire5, for 2.4× fewer
  MACs at the same accuracy. Its accuracy is torchvision's weights card (the authors quote none).
* **Pooling** rounds up (Caffe's pooling, torchvision's ``ceil_mode=True``), which gives Table 1's
  map sizes: 55, 27 and 13 at the authors' 227×227 crop (Table 1's header says 224; its 111×111
  conv1 output is 227's). The config keeps 224, the size torchvision's MACs figure is quoted at
  (819 M for v1.0, 349 M for v1.1); at 224 the maps are 54, 27 and 13.
* **Bypass** (§6, Fig. 2): a simple bypass adds a fire module's input to its output where the
  widths agree (fire3, 5, 7, 9); the complex bypass adds a 1×1 conv (with bias, no ReLU, as the
  figure draws it) from input to output around the other fire modules (fire2, 4, 6, 8). The sum is
  taken after the expand ReLUs and is not followed by another ReLU (the figure has none). Table 6
  lists 7.7 MB for the complex-bypass model; the four 1×1 convs add 341,248 parameters (6.1 MB at
  32 bits in all), so the paper's file held more than the figure shows. The figure is followed.
* **Head**: dropout 0.5 after fire9, conv10 (1×1, one filter per class) with its ReLU, global
  average pool (the Caffe model's ``relu_conv10`` is kept, as torchvision keeps it). With
  ``pre_logits=True`` the head returns fire9's globally pooled features (the classifier is a conv
  applied before the pool, so there is no pooled input to it).
* **Init**: He uniform, U(±√(6 / fan_in)) (torchvision's), for every conv but conv10, N(0, 0.01²)
  as the authors' (biases 0). ``init="caffe"`` takes the authors' fillers for the others too:
  Caffe's "xavier", U(±√(3 / fan_in)), which halves the signal's variance at every ReLU, so that at
  init fire9's features have a standard deviation of 0.006 for unit-variance images (18 convs
  deep) and the logits are all ~0.003. The authors trained through that with 512-image batches for
  170,000 iterations; in short runs (600 SGD steps of 32 Fashion-MNIST images, lr 0.04 to 0.003)
  it never left chance, where He's init learns (a 150-step run at lr 0.005: 58 %). The ReLU
  after conv10 can also silence every class for good at a high learning rate (measured at 0.01
  with either init), so SqueezeNet wants lower rates than the BN nets. The bypass variants add
  each fire module's input to its output, so under He's init the features grow ~7× (simple) and
  ~50× (complex) by fire9, and SGD at 0.005 leaves them at chance; Adam, whose step does not
  scale with that growth, trains both in 150 steps (simple: He, lr 1e-4, 55 %; complex: Caffe's
  init, lr 1e-3, 26 %; ``benchmarks/fashion_short_runs.py``).
* **Minimum input**: 21×21 (v1.1: 17×17), the smallest side whose maps stay non-empty through the
  ceil-mode pools (no batch norm here, so a 1×1 last map trains). torchvision states the same.
* **Fashion-MNIST**: 28×28 images are resized to 64×64 (a 3×3 map at fire9; 4×4 for v1.1).

torchvision's ``squeezenet1_0`` and ``squeezenet1_1`` files load through key maps
(``cnnzoo/weights.py``): its ``features.N`` and ``classifier.1`` become ``conv1``, ``fireK`` and
``conv10`` here.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.errors import ConfigError
from cnnzoo.layers.conv import ConvNormAct
from cnnzoo.layers.init import init_weights_, normal_init
from cnnzoo.models._config import imagenet_cfg
from cnnzoo.models.base import FeatureInfo, ZooModel
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "Fire",
    "FireRow",
    "SqueezeNet",
    "SqueezeNetVariant",
    "VARIANTS",
    "PAPER",
    "squeezenet1_0",
    "squeezenet1_1",
    "squeezenet1_0_bypass",
    "squeezenet1_0_complex_bypass",
]

PAPER = (
    "F. N. Iandola, S. Han, M. W. Moskewicz, K. Ashraf, W. J. Dally, K. Keutzer. SqueezeNet: "
    "AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size. arXiv:1602.07360, 2016."
)

Bypass = Literal["none", "simple", "complex"]
BYPASSES = ("none", "simple", "complex")


@torch.no_grad()
def _caffe_xavier(layer: nn.Module) -> None:
    """Caffe's "xavier" filler (``variance_norm: FAN_IN``): U(±√(3 / fan_in)), bias 0."""
    nn.init.kaiming_uniform_(layer.weight, nonlinearity="linear")  # gain 1: bound √(3 / fan_in)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


@torch.no_grad()
def _he_uniform(layer: nn.Module) -> None:
    """torchvision's SqueezeNet init: He uniform U(±√(6 / fan_in)), bias 0."""
    nn.init.kaiming_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


INITS = {"he": _he_uniform, "caffe": _caffe_xavier}


class Fire(nn.Module):
    """Fire module (Fig. 1): squeeze 1×1 → expand 1×1 ‖ expand 3×3, each conv with a ReLU.

    Args:
        in_channels: input width.
        squeeze, expand1x1, expand3x3: s1×1, e1×1 and e3×3 of Table 1.
        bypass: ``"simple"`` adds the input to the output (the widths must agree), ``"complex"``
            adds a 1×1 conv of the input (Fig. 2), ``"none"`` neither.

    Submodules ``squeeze``, ``expand1x1``, ``expand3x3`` (each a conv + bias + ReLU) and, for the
    complex bypass, ``bypass`` (a 1×1 conv with bias).
    """

    cost_type = "block"

    def __init__(
        self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int, bypass: Bypass = "none"
    ) -> None:
        super().__init__()
        out = expand1x1 + expand3x3
        if bypass == "simple" and in_channels != out:
            raise ConfigError(
                f"a simple bypass needs equal widths, but this fire module maps {in_channels} to {out} "
                "channels: use bypass='complex' (a 1x1 conv) here"
            )
        self.in_channels, self.out_channels = in_channels, out
        self.squeeze = ConvNormAct(in_channels, squeeze, 1, norm_layer=None)
        self.expand1x1 = ConvNormAct(squeeze, expand1x1, 1, norm_layer=None)
        self.expand3x3 = ConvNormAct(squeeze, expand3x3, 3, norm_layer=None)
        self.bypass = nn.Conv2d(in_channels, out, 1) if bypass == "complex" else None
        self.kind = bypass
        self.widths = (squeeze, expand1x1, expand3x3)

    def forward(self, x: Tensor) -> Tensor:
        s = self.squeeze(x)
        out = torch.cat([self.expand1x1(s), self.expand3x3(s)], 1)
        if self.bypass is not None:
            return out + self.bypass(x)
        return out + x if self.kind == "simple" else out

    def cost_details(self) -> dict[str, int | str]:
        s, e1, e3 = self.widths
        details: dict[str, int | str] = {"s1×1": s, "e1×1": e1, "e3×3": e3}
        if self.kind != "none":
            details["bypass"] = "1×1 conv" if self.kind == "complex" else "identity"
        return details


class FireRow(NamedTuple):
    """One fire module of Table 1: its name, widths, bypass, and whether a 3×3/2 max-pool follows."""

    name: str
    squeeze: int
    expand1x1: int
    expand3x3: int
    pool_after: bool = False
    bypass: Bypass = "none"


class SqueezeNet(ZooModel):
    """SqueezeNet: conv1, max-pool, fire modules with max-pools between, dropout, conv10, average pool.

    Stages (``feature_info``): ``conv1`` at 2, then the last fire module before each max-pool and
    ``fire9`` (v1.0: ``fire4``, ``fire8``, ``fire9`` at 4, 8, 16). Classifier (``head_name``):
    ``conv10``, a 1×1 conv with one filter per class.

    Args:
        fires: the fire modules, in order (:class:`FireRow`).
        num_classes, in_chans: classifier outputs and input channels.
        stem: (filters, kernel) of conv1 (stride 2, no padding): ``(96, 7)`` in v1.0, ``(64, 3)`` in v1.1.
        dropout: dropout probability before conv10 (0.5 in the paper).
        init: ``"he"`` (He uniform, torchvision's: it keeps the signal's variance through the
            ReLUs) or ``"caffe"`` (the authors' fillers; see the module docstring).
    """

    def __init__(
        self,
        fires: tuple[FireRow, ...],
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        stem: tuple[int, int] = (96, 7),
        dropout: float = 0.5,
        init: str = "he",
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise ConfigError(f"SqueezeNet init must be one of {', '.join(INITS)}, got {init!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        width, kernel = stem
        self.conv1 = ConvNormAct(in_chans, width, kernel, 2, padding=0, norm_layer=None)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.feature_info = [FeatureInfo("conv1", width, 2)]
        self.fire_names: list[str] = []
        channels, reduction = width, 4
        for row in fires:
            fire = Fire(channels, row.squeeze, row.expand1x1, row.expand3x3, row.bypass)
            self.add_module(row.name, fire)
            self.fire_names.append(row.name)
            channels = fire.out_channels
            if row.pool_after:
                self.add_module(f"maxpool{row.name[4:]}", nn.MaxPool2d(3, 2, ceil_mode=True))
                self.fire_names.append(f"maxpool{row.name[4:]}")
                self.feature_info.append(FeatureInfo(row.name, channels, reduction))
                reduction *= 2
        self.feature_info.append(FeatureInfo(fires[-1].name, channels, reduction))
        self.num_features = channels
        self.dropout = nn.Dropout(dropout)
        self.conv10 = nn.Conv2d(channels, num_classes, 1)
        self.relu10 = nn.ReLU(inplace=True)
        self.avgpool10 = nn.AdaptiveAvgPool2d(1)
        self.head_name = "conv10"
        init_weights_(self, {nn.Conv2d: INITS[init]})
        normal_init(0.01)(self.conv10)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool1(self.conv1(x))  # (N, 96, 54, 54) at 224 (v1.0)
        for name in self.fire_names:
            x = getattr(self, name)(x)
        return x  # (N, 512, 13, 13) at 224

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        if pre_logits:
            return torch.flatten(self.avgpool10(x), 1)  # (N, 512): fire9's features, pooled
        x = self.relu10(self.conv10(self.dropout(x)))  # (N, num_classes, 13, 13)
        return torch.flatten(self.avgpool10(x), 1)


def _fires(bypass: bool = False, complex_bypass: bool = False) -> tuple[FireRow, ...]:
    """Table 1's fire modules of v1.0, with Fig. 2's bypasses where asked."""
    rows = (
        FireRow("fire2", 16, 64, 64),
        FireRow("fire3", 16, 64, 64),
        FireRow("fire4", 32, 128, 128, pool_after=True),
        FireRow("fire5", 32, 128, 128),
        FireRow("fire6", 48, 192, 192),
        FireRow("fire7", 48, 192, 192),
        FireRow("fire8", 64, 256, 256, pool_after=True),
        FireRow("fire9", 64, 256, 256),
    )
    # Fig. 2: simple bypasses around the odd fire modules (equal widths), 1x1 convs around the others
    odd = "simple" if bypass or complex_bypass else "none"
    even = "complex" if complex_bypass else "none"
    return tuple(r._replace(bypass=odd if int(r.name[4:]) % 2 else even) for r in rows)


FIRES_1_1 = (
    FireRow("fire2", 16, 64, 64),
    FireRow("fire3", 16, 64, 64, pool_after=True),
    FireRow("fire4", 32, 128, 128),
    FireRow("fire5", 32, 128, 128, pool_after=True),
    FireRow("fire6", 48, 192, 192),
    FireRow("fire7", 48, 192, 192),
    FireRow("fire8", 64, 256, 256),
    FireRow("fire9", 64, 256, 256),
)


class SqueezeNetVariant(NamedTuple):
    """One registered SqueezeNet: conv1, the fire modules, and what the sources report."""

    stem: tuple[int, int]  # filters, kernel of conv1 (stride 2)
    fires: tuple[FireRow, ...]
    min_input_size: int
    note: str
    reported: dict[str, Any]
    macs: dict[str, Any] | None = None


def _imagenet(top1: float, top5: float, source: str, crop: int = 227) -> dict[str, Any]:
    return {"dataset": "imagenet", "top1": top1, "top5": top5, "crop": crop, "source": source}


# Minimum sides: conv1 (k/2, no padding) and each 3x3/2 ceil-mode pool need a map of at least 2
# (a 1-pixel map pools to nothing): v1.0 21 -> conv1 8 -> 4 -> 2 -> 1; v1.1 17 -> 8 -> 4 -> 2 -> 1.
VARIANTS: dict[str, SqueezeNetVariant] = {
    "squeezenet1_0": SqueezeNetVariant(
        (96, 7), _fires(), 21, "the paper's Table 1; Caffe's ceil-mode pooling (torchvision's layout)",
        _imagenet(57.5, 80.3, "Iandola et al. 2016, Table 2"),
        {"value": 0.819e9, "source": "torchvision SqueezeNet1_0_Weights.IMAGENET1K_V1"},
    ),
    "squeezenet1_1": SqueezeNetVariant(
        (64, 3), FIRES_1_1, 17, "the authors' v1.1 (not in the paper): 3x3 conv1, pools after conv1/fire3/fire5",
        _imagenet(58.178, 80.624, "torchvision SqueezeNet1_1_Weights.IMAGENET1K_V1", crop=224),
        {"value": 0.349e9, "source": "torchvision SqueezeNet1_1_Weights.IMAGENET1K_V1"},
    ),
    "squeezenet1_0_bypass": SqueezeNetVariant(
        (96, 7), _fires(bypass=True), 21, "simple bypass around fire3/5/7/9 (Fig. 2 middle)",
        _imagenet(60.4, 82.5, "Iandola et al. 2016, Table 6"),
    ),
    "squeezenet1_0_complex_bypass": SqueezeNetVariant(
        (96, 7), _fires(complex_bypass=True), 21,
        "simple bypass around fire3/5/7/9, 1x1-conv bypass around fire2/4/6/8 (Fig. 2 right)",
        _imagenet(58.8, 82.0, "Iandola et al. 2016, Table 6"),
    ),
}  # fmt: skip


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    extra: dict[str, Any] = {"reported": v.reported}
    if v.macs is not None:
        extra["macs"] = v.macs
    return imagenet_cfg(  # 28x28 resized to 64: fire9 sees 3x3 (v1.1: 4x4)
        paper=PAPER,
        year=2016,
        family="squeezenet",
        notes=v.note,
        extra=extra,
        min_input_size=v.min_input_size,
    )


def _create_squeezenet(name: str, **kwargs: Any) -> SqueezeNet:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    v = VARIANTS[name]
    return SqueezeNet(**{"fires": v.fires, "stem": v.stem, **kwargs})


@register_model(_cfg("squeezenet1_0"))
def squeezenet1_0(**kwargs: Any) -> SqueezeNet:
    """SqueezeNet 1.0 (Table 1): 1,248,424 parameters. Options as :class:`SqueezeNet`."""
    return _create_squeezenet("squeezenet1_0", **kwargs)


@register_model(_cfg("squeezenet1_1"))
def squeezenet1_1(**kwargs: Any) -> SqueezeNet:
    """SqueezeNet 1.1 (the authors' release): 3×3 conv1, earlier pools, 2.4× fewer MACs than 1.0."""
    return _create_squeezenet("squeezenet1_1", **kwargs)


@register_model(_cfg("squeezenet1_0_bypass"))
def squeezenet1_0_bypass(**kwargs: Any) -> SqueezeNet:
    """SqueezeNet 1.0 with simple bypass around fire3, 5, 7 and 9 (Fig. 2 middle, Table 6)."""
    return _create_squeezenet("squeezenet1_0_bypass", **kwargs)


@register_model(_cfg("squeezenet1_0_complex_bypass"))
def squeezenet1_0_complex_bypass(**kwargs: Any) -> SqueezeNet:
    """SqueezeNet 1.0 with simple and 1×1-conv bypasses (Fig. 2 right, Table 6)."""
    return _create_squeezenet("squeezenet1_0_complex_bypass", **kwargs)
