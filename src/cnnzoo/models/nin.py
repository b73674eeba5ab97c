"""Network in Network: mlpconv blocks and a global-average-pooling classifier.

Lin, Chen, Yan, "Network In Network", ICLR 2014 (arXiv:1312.4400), §2-§4.

An **mlpconv** block (§3.1, Eq. 2) is a k×k conv followed by a small MLP applied at every
position, i.e. two 1×1 convs (the paper's "cascaded cross channel parametric pooling", *cccp*),
each layer followed by a ReLU. The last block outputs one map per class; **global average
pooling** (§3.2) turns each map into that class's score, with no fully-connected layer.

**Which NiN is ``nin``.** The paper's experiments are CIFAR-10, CIFAR-100, SVHN and MNIST; it
trains no ImageNet model. So ``nin`` is the paper's CIFAR-10 network (three mlpconv layers, §4.1),
with the widths of the configuration the authors released with the paper (cuda-convnet, and the
Caffe Model Zoo "NIN CIFAR10" model, 89.6% on CIFAR-10), since the paper text gives no widths.
The well-known ImageNet model (four mlpconv layers, also released by the authors in the Caffe
Model Zoo, later than the paper) is ``nin_imagenet``.

``nin`` (input 3×32×32, 966,986 parameters at 10 classes):

=========  ==========================================  =========
stage      what it does                                output
=========  ==========================================  =========
mlpconv1   5×5 conv 192 (pad 2) → 1×1 160 → 1×1 96     96×32×32
pool1      max 3×3/2 (ceil) → dropout 0.5              96×16×16
mlpconv2   5×5 conv 192 (pad 2) → 1×1 192 → 1×1 192    192×16×16
pool2      average 3×3/2 (ceil) → dropout 0.5          192×8×8
mlpconv3   3×3 conv 192 (pad 1) → 1×1 192 → 1×1 C      C×8×8
gap        global average pool                         C
=========  ==========================================  =========

``nin_imagenet`` (input 3×224×224, 7,595,176 parameters at 1000 classes): mlpconv 11×11/4 96-96-96,
max 3/2; 5×5 256-256-256, max 3/2; 3×3 384-384-384, max 3/2, dropout 0.5; 3×3 1024-1024-C; global
average pool (6×6 at 224).

Choices and departures:

* **Pooling.** §4 says each mlpconv is followed by max pooling; the released CIFAR configuration
  averages in the second pool, and ``nin`` follows it. Pools round up (ceil mode), as cuda-convnet
  and Caffe did: that gives the released map sizes (32 → 16 → 8; 224 → 54 → 27 → 13 → 6).
* **Dropout** on the outputs of every mlpconv but the last (§4, CIFAR); only before the last
  mlpconv in the ImageNet model, as released.
* **No ReLU on the class maps by default** (departure). Eq. 2 puts a ReLU after every layer of
  the MLP, the last included, and the released models do so: ``class_relu=True`` restores it.
  We leave it out because with it the class maps die early in training: on Fashion-MNIST (SGD,
  momentum 0.9, batch 32, lr 0.05 or 0.01) every map went negative within 25 steps, the logits
  stuck at 0 and the loss at ln 10; without it the same run at lr 0.01 reached loss 1.5 in 100
  steps. The paper's own training recipe (init, learning rates) is not published in full.
* **Init.** The paper gives none; we use He normal (fan-in) weights and zero biases.
* **Input normalisation.** The paper uses global contrast normalisation and ZCA whitening (as in
  Maxout networks); here a per-channel mean/std (CIFAR-10's for ``nin``).

Fashion-MNIST: ``nin`` takes 28×28 images zero-padded to 32×32 (its CIFAR geometry, 8×8 class
maps); ``nin_imagenet`` resizes them to 67×67, like the AlexNet family (its last map is then 1×1;
the minimum is 39).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.layers.init import he_normal_init, init_weights_
from cnnzoo.models._config import cifar_cfg, imagenet_cfg
from cnnzoo.models.base import FeatureInfo, ZooModel
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "MlpConvRow",
    "NIN_CIFAR",
    "NIN_IMAGENET",
    "MlpConv",
    "NiN",
    "NiNVariant",
    "VARIANTS",
    "nin",
    "nin_imagenet",
]

PAPER = "M. Lin, Q. Chen, S. Yan. Network In Network. ICLR 2014 (arXiv:1312.4400)."


class MlpConvRow(NamedTuple):
    """One mlpconv stage: a k×k conv and two 1×1 convs, then an optional pool and dropout."""

    kernel: int
    stride: int
    pad: int
    widths: tuple[int, int, int]  # conv, cccp1, cccp2; 0 in the last row means num_classes
    pool: str | None  # "max", "avg" or None (3×3, stride 2, ceil mode)
    dropout: bool


# The released CIFAR-10 configuration (§4.1 of the paper gives the structure, not the widths).
NIN_CIFAR: tuple[MlpConvRow, ...] = (
    MlpConvRow(5, 1, 2, (192, 160, 96), "max", True),
    MlpConvRow(5, 1, 2, (192, 192, 192), "avg", True),
    MlpConvRow(3, 1, 1, (192, 192, 0), None, False),
)
# The released ImageNet model.
NIN_IMAGENET: tuple[MlpConvRow, ...] = (
    MlpConvRow(11, 4, 0, (96, 96, 96), "max", False),
    MlpConvRow(5, 1, 2, (256, 256, 256), "max", False),
    MlpConvRow(3, 1, 1, (384, 384, 384), "max", True),
    MlpConvRow(3, 1, 1, (1024, 1024, 0), None, False),
)


class MlpConv(nn.Module):
    """mlpconv (Eq. 2): k×k conv → ReLU → 1×1 conv (cccp1) → ReLU → 1×1 conv (cccp2) → ReLU
    (the last ReLU optional, for the class maps)."""

    cost_type = "block"

    def __init__(
        self, in_chans: int, widths: tuple[int, int, int], kernel: int, stride: int = 1, pad: int = 0,
        *, last_relu: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        c0, c1, c2 = widths
        self.conv = nn.Conv2d(in_chans, c0, kernel, stride, pad)
        self.relu0 = nn.ReLU(inplace=True)
        self.cccp1 = nn.Conv2d(c0, c1, 1)
        self.relu1 = nn.ReLU(inplace=True)
        self.cccp2 = nn.Conv2d(c1, c2, 1)
        self.relu2 = nn.ReLU(inplace=True) if last_relu else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu0(self.conv(x))
        x = self.relu1(self.cccp1(x))
        return self.relu2(self.cccp2(x))


class NiN(ZooModel):
    """Network in Network: stacked mlpconv stages and global average pooling.

    Stages (``feature_info``): one per mlpconv (``mlpconv1``…), the last being the class maps.
    Classifier (``head_name``): the last 1×1 conv, ``mlpconvK.cccp2``, since there is no fc.

    Args:
        rows: the stages, e.g. :data:`NIN_CIFAR` or :data:`NIN_IMAGENET`.
        num_classes: maps of the last mlpconv (10 for CIFAR-10).
        in_chans: input channels.
        dropout: rate of the dropout layers the rows ask for (0.5 in the paper).
        class_relu: a ReLU after the last 1×1 conv too (Eq. 2 and the released models; off by
            default because the class maps then die early in training, see the module docstring).
    """

    def __init__(
        self,
        rows: tuple[MlpConvRow, ...] = NIN_CIFAR,
        *,
        num_classes: int = 10,
        in_chans: int = 3,
        dropout: float = 0.5,
        class_relu: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self._stages: list[str] = []
        self.feature_info = []  # one stage per mlpconv, each at its own resolution
        c, reduction = in_chans, 1
        for i, row in enumerate(rows, start=1):
            last = i == len(rows)
            widths = (*row.widths[:2], num_classes if last else row.widths[2])
            self._add(f"mlpconv{i}", MlpConv(c, widths, row.kernel, row.stride, row.pad,
                                             last_relu=class_relu or not last))  # fmt: skip
            c, reduction = widths[2], reduction * row.stride
            self.feature_info.append(FeatureInfo(f"mlpconv{i}", c, reduction))
            reduction *= 2 if row.pool else 1  # the 3x3/2 pools
            if row.pool == "max":
                self._add(f"pool{i}", nn.MaxPool2d(3, 2, ceil_mode=True))
            elif row.pool == "avg":
                self._add(f"pool{i}", nn.AvgPool2d(3, 2, ceil_mode=True))
            if row.dropout:
                self._add(f"drop{i}", nn.Dropout(dropout))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.head_name = f"mlpconv{len(rows)}.cccp2"  # the last 1x1 conv makes the class maps
        init_weights_(self, {nn.Conv2d: he_normal_init("fan_in")})

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last 1×1 conv; the last stage (the class maps) then has ``num_classes`` maps."""
        super().reset_classifier(num_classes)
        self.feature_info[-1] = self.feature_info[-1]._replace(channels=self.num_classes)

    def _add(self, name: str, module: nn.Module) -> None:
        self.add_module(name, module)
        self._stages.append(name)

    def forward_features(self, x: Tensor) -> Tensor:
        for name in self._stages:  # mlpconv1, pool1, drop1, mlpconv2, ...
            x = getattr(self, name)(x)
        return x  # (N, num_classes, h, w): one confidence map per class

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        return torch.flatten(self.gap(x), 1)  # (N, num_classes); no fc, so pre-logits = logits


class NiNVariant(NamedTuple):
    """One registered NiN: its stages and its dataset."""

    rows: tuple[MlpConvRow, ...]
    cifar: bool
    note: str


VARIANTS: dict[str, NiNVariant] = {
    "nin": NiNVariant(
        NIN_CIFAR,
        True,
        "the paper's CIFAR-10 net, widths as released; avg pool2; no ReLU on class maps; no ZCA",
    ),
    "nin_imagenet": NiNVariant(
        NIN_IMAGENET, False, "the authors' released ImageNet NiN (Caffe Model Zoo); no ReLU on class maps"
    ),
}


def _cfg(name: str) -> ModelConfig:
    v = VARIANTS[name]
    if v.cifar:  # pools round up: 4 -> 2 -> 1
        return cifar_cfg(paper=PAPER, year=2014, family="nin", notes=v.note, min_input_size=4)
    return imagenet_cfg(  # conv1 8 -> pool1 4 -> pool2 2 -> pool3 1 (ceil mode)
        paper=PAPER, year=2014, family="nin", notes=v.note, min_input_size=39, small_input_size=67
    )


def _create_nin(name: str, **kwargs) -> NiN:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    v = VARIANTS[name]
    return NiN(v.rows, **{"num_classes": 10 if v.cifar else 1000, **kwargs})


@register_model(_cfg("nin"))
def nin(**kwargs) -> NiN:
    """The paper's CIFAR-10 NiN: three mlpconv stages and global average pooling (966,986 params)."""
    return _create_nin("nin", **kwargs)


@register_model(_cfg("nin_imagenet"))
def nin_imagenet(**kwargs) -> NiN:
    """The ImageNet NiN released by the authors: four mlpconv stages (7,595,176 params)."""
    return _create_nin("nin_imagenet", **kwargs)
