"""AlexNet, in the paper's single-tower and two-GPU forms, and torchvision's layout.

Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NIPS 2012, §3 and Fig. 2.

``alexnet`` is the single tower the lectures tabulate (input 3×227×227):

=======  =====================================  ==========  ==========
layer    what it does                           output      #params
=======  =====================================  ==========  ==========
conv1    96@11×11/4 → ReLU → LRN → pool 3/2     96×27×27    34,944
conv2    256@5×5 pad 2 → ReLU → LRN → pool 3/2  256×13×13   614,656
conv3    384@3×3 pad 1 → ReLU                   384×13×13   885,120
conv4    384@3×3 pad 1 → ReLU                   384×13×13   1,327,488
conv5    256@3×3 pad 1 → ReLU → pool 3/2        256×6×6     884,992
fc6      4096 → ReLU → dropout 0.5              4096        37,752,832
fc7      4096 → ReLU → dropout 0.5              4096        16,781,312
fc8      1000                                   1000        4,097,000
=======  =====================================  ==========  ==========

In total 62,378,344 parameters. Choices and departures, each made where it is coded:

* **LRN** (§3.3): n = 5, k = 2, α = 1e-4, β = 0.75, α multiplying the plain sum of squares
  (:class:`cnnzoo.layers.lrn.LocalResponseNorm`); order conv → ReLU → LRN → max-pool (§3.5).
* **Init** (§5): weights N(0, 0.01²); biases 1 in conv2, conv4, conv5 and the fully-connected
  *hidden* layers fc6 and fc7, 0 elsewhere (fc8 is the output layer, which the paper leaves at 0).
  ``init="torch"`` keeps PyTorch's default init instead. Both start slowly without batch norm:
  on Fashion-MNIST at 67×67 (SGD, lr 0.01, momentum 0.9, batch 32) the loss was still at ln 10
  after 150 steps; on one fixed batch of 64, Adam (lr 1e-4) took the paper init from 3.8 to 2.4
  in 40 steps and PyTorch's from 2.3 to 1.2. Expect a plateau before it learns.
* **Input size 227.** The paper says 224, but 11×11/4 with no padding only gives 55 from 227;
  227 is the size every re-implementation (Caffe, the lectures) uses.
* **Adaptive pool before fc6** (departure, torchvision's): ``avgpool`` is an adaptive average
  pool to 6×6. At 227 (pool5 is already 6×6) it is the identity, so the paper's net is unchanged;
  it lets the net run on other sizes (down to 67, where pool5 is 1×1), e.g. on Fashion-MNIST.
* ``alexnet_2gpu`` is the paper's two-GPU model written with grouped convolutions: conv2, conv4
  and conv5 see only the maps on their own GPU (``groups=2``); conv3 and the fc layers are
  cross-connected. 60,965,224 parameters. The LRN still runs over all 96/256 channels (Caffe's
  ``bvlc_alexnet`` does the same); on two GPUs the windows at the boundary channel 47/48 would
  not cross.

``alexnet_tv`` is torchvision's layout (Krizhevsky, "One weird trick for parallelizing
convolutional neural networks", arXiv:1404.5997, 2014): 64-192-384-256-256 maps, conv1 padded by
2, no LRN, dropout *before* fc6 and fc7, PyTorch's default init, and torchvision's state_dict
keys (``features.N``, ``classifier.N``): 61,100,840 parameters.

Fashion-MNIST: the family's default ``small_input_size`` is 67, the smallest side every AlexNet
here (and ZFNet) accepts; 28×28 images are resized to 67×67.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.layers.init import empty_linear, he_normal_init, init_weights_, normal_init
from cnnzoo.layers.lrn import LocalResponseNorm
from cnnzoo.models.base import FeatureInfo, ZooModel
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "ConvRow",
    "ALEXNET_CONVS",
    "AlexNet",
    "AlexNetTV",
    "AlexNetVariant",
    "VARIANTS",
    "alexnet",
    "alexnet_2gpu",
    "alexnet_tv",
]

PAPER = (
    "A. Krizhevsky, I. Sutskever, G. E. Hinton. ImageNet Classification with Deep Convolutional "
    "Neural Networks. NIPS 2012."
)
PAPER_TV = (
    "A. Krizhevsky. One weird trick for parallelizing convolutional neural networks. "
    "arXiv:1404.5997, 2014 (torchvision's AlexNet layout)."
)


class ConvRow(NamedTuple):
    """One conv layer of an AlexNet-style tower."""

    out: int  # number of kernels
    kernel: int
    stride: int
    pad: int
    gpu_groups: int  # 2 where the two-GPU model keeps the layer on its own GPU
    bias: float  # the paper's initial bias


# Fig. 2 and §3.5 of the paper; bias column from §5.
ALEXNET_CONVS: tuple[ConvRow, ...] = (
    ConvRow(96, 11, 4, 0, 1, 0.0),  # conv1
    ConvRow(256, 5, 1, 2, 2, 1.0),  # conv2
    ConvRow(384, 3, 1, 1, 1, 0.0),  # conv3: cross-connected
    ConvRow(384, 3, 1, 1, 2, 1.0),  # conv4
    ConvRow(256, 3, 1, 1, 2, 1.0),  # conv5
)


class AlexNet(ZooModel):
    """The AlexNet tower: five convs (LRN + max-pool after conv1 and conv2, max-pool after conv5)
    and three fully-connected layers. ZFNet (:mod:`cnnzoo.models.zfnet`) is this class with
    another conv table.

    Stages (``feature_info``): the three conv stages, tapped before their max-pools (``lrn1``,
    ``lrn2``, ``relu5``). Classifier (``head_name``): ``fc8``; fc6 and fc7 are the neck.

    Args:
        num_classes: output units (1000 in the paper).
        in_chans: input channels (3 in the paper).
        convs: five :class:`ConvRow` rows, conv1 to conv5.
        two_gpu: use each row's ``gpu_groups`` (the paper's two-GPU connectivity).
        ceil_mode: round pooling output sizes up (Caffe's convention; ZFNet needs it).
        hidden: width of fc6 and fc7.
        dropout: dropout rate after fc6 and fc7.
        init: ``"paper"`` (N(0, ``init_std``²) weights, the table's biases, ``fc_bias`` in fc6/fc7),
            ``"he"`` (He et al. 2015 normal init for the convs, fan-out, and N(0, 0.01) for the fc
            layers, biases 0: torchvision's VGG scheme; the one that trains from scratch on small
            data such as Fashion-MNIST) or ``"torch"`` (PyTorch's default init).
        init_std: standard deviation of the paper init.
        fc_bias: initial bias of fc6 and fc7 under the paper init.
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        convs: tuple[ConvRow, ...] = ALEXNET_CONVS,
        two_gpu: bool = False,
        ceil_mode: bool = False,
        hidden: int = 4096,
        dropout: float = 0.5,
        init: str = "paper",
        init_std: float = 0.01,
        fc_bias: float = 1.0,
    ) -> None:
        super().__init__()
        if len(convs) != 5:
            raise ValueError(f"an AlexNet tower has 5 conv rows, got {len(convs)}")
        if init not in ("paper", "he", "torch"):
            raise ValueError(f"init must be 'paper', 'he' or 'torch', got {init!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.conv_rows = tuple(convs)
        c1, c2, c3, c4, c5 = self.conv_rows

        def conv(cin: int, row: ConvRow) -> nn.Conv2d:
            groups = row.gpu_groups if two_gpu else 1
            return nn.Conv2d(cin, row.out, row.kernel, row.stride, row.pad, groups=groups)

        def pool() -> nn.MaxPool2d:
            return nn.MaxPool2d(3, 2, ceil_mode=ceil_mode)  # overlapping pooling, §3.4

        self.conv1 = conv(in_chans, c1)
        self.relu1 = nn.ReLU(inplace=True)
        self.lrn1 = LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        self.pool1 = pool()
        self.conv2 = conv(c1.out, c2)
        self.relu2 = nn.ReLU(inplace=True)
        self.lrn2 = LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        self.pool2 = pool()
        self.conv3 = conv(c2.out, c3)
        self.relu3 = nn.ReLU(inplace=True)
        self.conv4 = conv(c3.out, c4)
        self.relu4 = nn.ReLU(inplace=True)
        self.conv5 = conv(c4.out, c5)
        self.relu5 = nn.ReLU(inplace=True)
        self.pool5 = pool()
        # with a paper or He init, skip PyTorch's default init (a random pass over 59 M weights)
        linear = empty_linear if init in ("paper", "he") else nn.Linear

        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))  # identity at the paper's input size
        self.fc6 = linear(c5.out * 6 * 6, hidden)
        self.relu6 = nn.ReLU(inplace=True)
        self.drop6 = nn.Dropout(dropout)
        self.fc7 = linear(hidden, hidden)
        self.relu7 = nn.ReLU(inplace=True)
        self.drop7 = nn.Dropout(dropout)
        self.fc8 = linear(hidden, num_classes)
        self.feature_info = _tower_stages(self.conv_rows)
        self.head_name = "fc8"
        if init == "paper":
            self._init_paper(init_std, fc_bias)
        elif init == "he":
            self._init_he()

    def _init_paper(self, std: float, fc_bias: float) -> None:
        """§5: weights N(0, std²); conv biases from the table, fc6/fc7 ``fc_bias``, fc8 0.
        Sets every parameter (the fc layers are built uninitialised for it)."""
        convs = (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5)
        biases = [row.bias for row in self.conv_rows] + [fc_bias, fc_bias, 0.0]
        for layer, b in zip((*convs, self.fc6, self.fc7, self.fc8), biases, strict=True):
            normal_init(std, bias=b)(layer)

    def _init_he(self) -> None:
        """He-normal convs (fan-out, ReLU gain), N(0, 0.01) fc weights, zero biases.

        The paper's N(0, 0.01) shrinks the signal by ~0.2-0.5 per conv, so without batch norm the
        logits start constant and SGD sits at ln(10) for a long time on small data; He init keeps
        the activation scale through the ReLU stack.
        """
        init_weights_(self, {nn.Conv2d: he_normal_init("fan_out"), nn.Linear: normal_init(0.01)})

    @torch.no_grad()
    def renormalize_filters_(self, radius: float = 0.1) -> int:
        """Scale every conv filter whose RMS exceeds ``radius`` back to ``radius``.

        Zeiler & Fergus (§3) apply this after each update so that no first-layer filter
        dominates. Returns how many filters were rescaled.
        """
        count = 0
        for layer in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            w = layer.weight
            rms = w.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
            over = rms > radius * (1 + 1e-6)  # not filters rescaled a moment ago (rounding)
            w.mul_(torch.where(over, radius / rms.clamp_min(1e-12), torch.ones_like(rms)))
            count += int(over.sum())
        return count

    def forward_features(self, x: Tensor) -> Tensor:  # shapes for alexnet at 227
        x = self.pool1(self.lrn1(self.relu1(self.conv1(x))))  # (N, 96, 55, 55) -> (N, 96, 27, 27)
        x = self.pool2(self.lrn2(self.relu2(self.conv2(x))))  # (N, 256, 27, 27) -> (N, 256, 13, 13)
        x = self.relu3(self.conv3(x))  # (N, 384, 13, 13)
        x = self.relu4(self.conv4(x))  # (N, 384, 13, 13)
        return self.pool5(self.relu5(self.conv5(x)))  # (N, 256, 13, 13) -> (N, 256, 6, 6)

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (N, 9216)
        x = self.drop6(self.relu6(self.fc6(x)))  # (N, 4096)
        x = self.drop7(self.relu7(self.fc7(x)))  # (N, 4096)
        return x if pre_logits else self.fc8(x)  # (N, num_classes)


def _tower_stages(rows: tuple[ConvRow, ...]) -> list[FeatureInfo]:
    """The conv stages of the tower, each tapped at its last layer before a max-pool: conv1 (after
    LRN), conv2 (after LRN), conv3-5 (after relu5). Every 3×3/2 pool halves the map."""
    c1, c2, c3, c4, c5 = rows
    r1 = c1.stride
    r2 = r1 * 2 * c2.stride
    r3 = r2 * 2 * c3.stride * c4.stride * c5.stride
    return [
        FeatureInfo("lrn1", c1.out, r1),
        FeatureInfo("lrn2", c2.out, r2),
        FeatureInfo("relu5", c5.out, r3),
    ]


class AlexNetTV(ZooModel):
    """torchvision's AlexNet (``torchvision.models.alexnet``), same modules and state_dict keys.

    Departs from the 2012 paper: 64/192/384/256/256 maps, conv1 padded by 2, no LRN, dropout
    before fc6 and fc7 rather than after, PyTorch's default init.

    Stages: the ReLUs before the max-pools (``features.1``, ``.4``, ``.11``); classifier
    ``classifier.6``.
    """

    def __init__(self, *, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 64, kernel_size=11, stride=4, padding=2),  # 0: conv1
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),  # 3: conv2
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),  # 6: conv3
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),  # 8: conv4
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),  # 10: conv5
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),  # 1: fc6
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),  # 4: fc7
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),  # 6: fc8
        )
        # the last ReLU before each max-pool, as for VGG: conv1, conv2, conv5
        self.feature_info = [
            FeatureInfo("features.1", 64, 4), FeatureInfo("features.4", 192, 8),
            FeatureInfo("features.11", 256, 16),
        ]  # fmt: skip
        self.head_name = "classifier.6"

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)  # (N, 256, 6, 6) at 224

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (N, 9216)
        for layer in self.classifier[:-1]:  # fc6, fc7 (one by one, so fx can trace it)
            x = layer(x)  # (N, 4096)
        return x if pre_logits else self.classifier[-1](x)


class AlexNetVariant(NamedTuple):
    """One registered AlexNet: its class, options and config."""

    two_gpu: bool
    tv: bool  # torchvision's layout (AlexNetTV)
    note: str


VARIANTS: dict[str, AlexNetVariant] = {
    "alexnet": AlexNetVariant(False, False, "single tower; adaptive 6x6 pool before fc6 (no-op at 227)"),
    "alexnet_2gpu": AlexNetVariant(True, False, "two-GPU connectivity: groups=2 in conv2, conv4, conv5"),
    "alexnet_tv": AlexNetVariant(False, True, "torchvision layout and keys: 64-192-384-256-256, no LRN"),
}


def _cfg(name: str) -> ModelConfig:
    """The paper's config (227×227 input), or torchvision's for ``alexnet_tv`` (224, conv1 padded)."""
    v = VARIANTS[name]
    return ModelConfig(
        input_size=(3, 224, 224) if v.tv else (3, 227, 227),
        # paper: conv1 15 -> pool1 7 -> conv2 7 -> pool2 3 -> conv5 3 -> pool5 1; tv (pad 2): from 63
        min_input_size=63 if v.tv else 67,
        num_classes=1000,
        paper=PAPER_TV if v.tv else PAPER,
        year=2014 if v.tv else 2012,
        family="alexnet",
        small_input_size=67,
        small_input_mode="resize",
        notes=v.note,
    )


def _create_alexnet(name: str, **kwargs) -> AlexNet | AlexNetTV:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    v = VARIANTS[name]
    return AlexNetTV(**kwargs) if v.tv else AlexNet(**{"two_gpu": v.two_gpu, **kwargs})


@register_model(_cfg("alexnet"))
def alexnet(**kwargs) -> AlexNet:
    """AlexNet's single tower, paper LRN and paper init (62,378,344 params). Options as :class:`AlexNet`."""
    return _create_alexnet("alexnet", **kwargs)


@register_model(_cfg("alexnet_2gpu"))
def alexnet_2gpu(**kwargs) -> AlexNet:
    """The paper's two-GPU AlexNet as grouped convolutions (60,965,224 params)."""
    return _create_alexnet("alexnet_2gpu", **kwargs)


@register_model(_cfg("alexnet_tv"))
def alexnet_tv(**kwargs) -> AlexNetTV:
    """torchvision's AlexNet layout and state_dict keys (61,100,840 params)."""
    return _create_alexnet("alexnet_tv", **kwargs)
