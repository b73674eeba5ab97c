"""GoogLeNet (Inception v1).

Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke, Rabinovich, "Going Deeper with
Convolutions", CVPR 2015, Table 1 and Fig. 3.

The nine Inception modules are the rows of Table 1 (:data:`TABLE1`), built by one loop.

``googlenet`` follows the paper:

* stem (Fig. 3): conv 7×7/2 (64) → max-pool 3×3/2 → LRN → conv 1×1 (64) → conv 3×3 (192) → LRN →
  max-pool 3×3/2. The second LRN sits before the second pool, where Fig. 3 (and the BVLC Caffe
  model) put it;
* Inception 3a, 3b, max-pool 3×3/2, 4a-4e, max-pool 3×3/2, 5a, 5b; every conv has a bias and a
  ReLU, there is no batch norm;
* the head: average pool, dropout 0.4, linear. At 224×224 the pool is the paper's 7×7/1 over the
  7×7 map; it is written as a global average, so that smaller inputs (Fashion-MNIST) also work;
* two auxiliary classifiers on the outputs of 4a and 4d (§5): avg-pool 5×5/3 → 1×1 conv (128) +
  ReLU → fc 1024 + ReLU → dropout 0.7 → linear. At 224 the pool gives 4×4 maps (2,048 inputs to
  the fc); an adaptive 4×4 average pool after it (a no-op at 224) keeps the fc's shape at other
  input sizes. In training the loss is main + 0.3·(aux1 + aux2) (:meth:`GoogLeNet.loss`); in eval
  the aux heads are skipped.

Choices where the paper is silent (the BVLC Caffe reference model settles them):

* **LRN**: n = 5, β = 0.75, k = 1 and α = 1e-4 in Caffe's convention (α divided by n), which is
  α = 2e-5 in the paper convention of :class:`cnnzoo.layers.lrn.LocalResponseNorm`.
* **Pools** round up (``ceil_mode``), so 224 gives 112 → 56 → 28 → 14 → 7, as in Table 1.
* **Init**: Xavier-uniform weights, conv biases 0.2, linear biases 0.

``googlenet_naive`` swaps every module for the naive one (Fig. 2a, no 1×1 reductions, the pool
branch passing its input through), keeping Table 1's #1×1, #3×3 and #5×5: the widths then grow
from 192 to 4,944 channels and the parameters from 6.0 M to 99 M, which is the paper's case for the
reductions.

``googlenet_tv`` is torchvision's layout with torchvision's keys: BN after every conv (no LRN),
a 3×3 conv in the "5×5" branch, a 2×2 last max-pool, dropout 0.2, and aux heads that adaptive-pool
to 4×4 and use BN. It loads ``torchvision.models.googlenet(weights=None)``'s state_dict.

All three layouts use torchvision's module names (``conv1``, ``maxpool1``, ``conv2`` for the stem's
1×1 reduce, ``conv3`` for its 3×3, ``inception3a`` …, ``aux1``, ``aux2``, ``fc``), plus ``norm1`` and
``norm2`` for the paper's LRNs, so that one name means one layer across the three.

In training with aux heads the model returns :class:`GoogLeNetOutputs` ``(logits, aux_logits2,
aux_logits1)`` (torchvision's field order); the trainer calls :meth:`GoogLeNet.loss` and reads
``.logits`` for accuracy. ``aux_logits=False`` drops the heads.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.data.constants import IMAGENET_MEAN, IMAGENET_STD
from cnnzoo.errors import ConfigError
from cnnzoo.layers.inception import BasicConv2d, Inception, NaiveInception, out_side
from cnnzoo.layers.init import init_weights_, norm_init, trunc_normal_init, xavier_uniform_init
from cnnzoo.layers.lrn import LocalResponseNorm
from cnnzoo.models.base import FeatureInfo, InputShapeError, ZooModel
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "GoogLeNet",
    "GoogLeNetOutputs",
    "InceptionAux",
    "TABLE1",
    "AUX_WEIGHT",
    "PAPER",
    "googlenet",
    "googlenet_naive",
    "googlenet_tv",
]

PAPER = (
    "C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, V. Vanhoucke, "
    "A. Rabinovich. Going Deeper with Convolutions. CVPR 2015."
)

# Table 1: (module, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); a bare name is the
# 3x3/2 max-pool between stages.
TABLE1: tuple[tuple[str, int, int, int, int, int, int] | str, ...] = (
    ("inception3a", 64, 96, 128, 16, 32, 32),
    ("inception3b", 128, 128, 192, 32, 96, 64),
    "maxpool3",
    ("inception4a", 192, 96, 208, 16, 48, 64),
    ("inception4b", 160, 112, 224, 24, 64, 64),
    ("inception4c", 128, 128, 256, 24, 64, 64),
    ("inception4d", 112, 144, 288, 32, 64, 64),
    ("inception4e", 256, 160, 320, 32, 128, 128),
    "maxpool4",
    ("inception5a", 256, 160, 320, 32, 128, 128),
    ("inception5b", 384, 192, 384, 48, 128, 128),
)
AUX_TAPS = {"inception4a": "aux1", "inception4d": "aux2"}  # §5: on the outputs of 4a and 4d
AUX_WEIGHT = 0.3  # §5: "their loss gets added to the total loss of the network with a discount weight"


class GoogLeNetOutputs(NamedTuple):
    """What a GoogLeNet with aux heads returns in training (torchvision's field order)."""

    logits: Tensor
    aux_logits2: Tensor
    aux_logits1: Tensor


class InceptionAux(nn.Module):
    """Auxiliary classifier (§5): avg-pool → 1×1 conv 128 + ReLU → fc 1024 + ReLU → dropout → fc.

    Args:
        in_channels: width of the tapped module's output (512 after 4a, 528 after 4d).
        num_classes: classifier outputs.
        norm: BN in the 1×1 conv (torchvision).
        paper_pool: avg-pool 5×5/3 then adaptive 4×4 (the paper; the adaptive pool is a no-op at
            224); ``False``: adaptive 4×4 only (torchvision).
        dropout: 0.7 in the paper.
    """

    cost_type = "head"
    head_name = "fc2"  # the classifier layer that reset_classifier replaces

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        norm: bool = False,
        paper_pool: bool = True,
        dropout: float = 0.7,
    ) -> None:
        super().__init__()
        pools = [nn.AvgPool2d(5, stride=3)] if paper_pool else []
        self.pool = nn.Sequential(*pools, nn.AdaptiveAvgPool2d(4))
        self.conv = BasicConv2d(in_channels, 128, 1, norm=norm)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(self.pool(x))  # (N, 128, 4, 4)
        x = F.relu(self.fc1(torch.flatten(x, 1)), inplace=True)  # (N, 1024)
        return self.fc2(self.dropout(x))  # (N, num_classes)


class GoogLeNet(ZooModel):
    """GoogLeNet; see the module docstring for the three layouts.

    Stages (``feature_info``): the stem's last layer at 1/4 (``norm2``; ``conv3.act`` in the
    torchvision layout), then the last module of each Inception group (``inception3b``, ``4e``,
    ``5b``). Classifier: ``fc``; ``aux1`` and ``aux2`` are auxiliary heads (``aux_head_names``),
    reset with it; their bodies are the neck of :meth:`stage_groups`.

    Args:
        num_classes: classifier outputs.
        in_chans: input channels.
        aux_logits: build the two auxiliary classifiers (returned in training only).
        layout: ``"paper"`` or ``"torchvision"``.
        naive: naive Inception modules (no 1×1 reductions).
        dropout: dropout before the last linear layer (default 0.4 paper, 0.2 torchvision).
        dropout_aux: dropout in the aux heads (0.7).
        transform_input: torchvision's option: map ImageNet-normalised input to the [-1, 1]
            scaling its ported weights expect (3 channels only).
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = True,
        layout: str = "paper",
        naive: bool = False,
        dropout: float | None = None,
        dropout_aux: float = 0.7,
        transform_input: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans  # checked on assignment
        if layout not in ("paper", "torchvision"):
            raise ConfigError(f"layout must be 'paper' or 'torchvision', got {layout!r}")
        if transform_input and in_chans != 3:
            raise ConfigError(f"transform_input needs 3 input channels, got in_chans={in_chans}")
        paper = layout == "paper"
        self.aux_logits, self.transform_input, self.naive = aux_logits, transform_input, naive
        self.aux_weight = AUX_WEIGHT
        norm = not paper
        conv = dict(norm=norm)

        self.conv1 = BasicConv2d(in_chans, 64, 7, stride=2, padding=3, **conv)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.norm1 = LocalResponseNorm(5, alpha=2e-5, beta=0.75, k=1.0) if paper else None
        self.conv2 = BasicConv2d(64, 64, 1, **conv)  # Table 1's "#3x3 reduce" of the stem
        self.conv3 = BasicConv2d(64, 192, 3, padding=1, **conv)
        self.norm2 = LocalResponseNorm(5, alpha=2e-5, beta=0.75, k=1.0) if paper else None
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        channels, self.trunk_names = 192, []
        # stages: the stem's last layer at 1/4, then the last module of each Inception group
        stages = {"stem": FeatureInfo("norm2" if paper else "conv3.act", 192, 4)}
        reduction = 8  # after maxpool2
        for row in TABLE1:
            if isinstance(row, str):  # the 3x3/2 pools of Table 1 (torchvision: 2x2 before stage 5)
                k = 2 if (not paper and row == "maxpool4") else 3
                self.add_module(row, nn.MaxPool2d(k, stride=2, ceil_mode=True))
                self.trunk_names.append(row)
                reduction *= 2
                continue
            name, n1, r3, n3, r5, n5, pp = row
            if naive:
                block: nn.Module = NaiveInception(channels, n1, n3, n5, **conv)
            else:
                block = Inception(channels, n1, r3, n3, r5, n5, pp, kernel_5x5=5 if paper else 3, **conv)
            self.add_module(name, block)
            self.trunk_names.append(name)
            stages[name[:-1]] = FeatureInfo(name, block.out_channels, reduction)  # group "inception4"
            if aux_logits and name in AUX_TAPS:
                aux = InceptionAux(
                    block.out_channels, num_classes, paper_pool=paper, dropout=dropout_aux, **conv
                )
                self.add_module(AUX_TAPS[name], aux)
            channels = block.out_channels
        if not aux_logits:
            self.aux1 = self.aux2 = None
        self.feature_info = list(stages.values())
        self.aux_head_names = tuple(AUX_TAPS.values()) if aux_logits else ()

        self.num_features = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout((0.4 if paper else 0.2) if dropout is None else dropout)
        self.fc = nn.Linear(channels, num_classes)
        self.head_name = "fc"

        # min_input_side(): every map non-empty; with aux heads (paper layout) a 5x5 map after 4a
        # for their 5x5/3 pool; with BN (torchvision layout) 2x2 maps in stage 5.
        self.min_input_size_main = min_input_side(layout, aux=False)
        self.min_input_size = min_input_side(layout, aux=aux_logits)
        self._init_weights(paper)

    def _init_weights(self, paper: bool) -> None:
        if paper:  # BVLC reference model: Xavier, conv bias 0.2, linear bias 0
            rules = {nn.Conv2d: xavier_uniform_init(bias=0.2), nn.Linear: xavier_uniform_init(bias=0.0)}
        else:  # torchvision's init_weights=True (biases keep PyTorch's init)
            rules = {(nn.Conv2d, nn.Linear): trunc_normal_init(std=0.01, a=-2, b=2)}
        init_weights_(self, {**rules, nn.BatchNorm2d: norm_init()})

    def check_input(self, x: Tensor) -> None:
        m = self.min_input_size
        if (
            isinstance(x, Tensor)
            and x.dim() == 4
            and self.aux_logits
            and min(x.shape[2:]) < m
            and min(x.shape[2:]) >= self.min_input_size_main
        ):
            name = getattr(getattr(self, "default_cfg", None), "name", "") or type(self).__name__
            raise InputShapeError(
                f"{name} needs inputs of at least {m}x{m} pixels with its auxiliary classifiers (their "
                f"5x5 average pool needs a 5x5 map after inception4a), got {x.shape[2]}x{x.shape[3]}. "
                f"Resize the images to {m}x{m} or larger, or build it with aux_logits=False "
                f"(minimum {self.min_input_size_main}x{self.min_input_size_main})."
            )
        super().check_input(x)

    def _trunk(self, x: Tensor, taps: bool) -> tuple[Tensor, list[Tensor]]:
        if self.transform_input:  # torchvision: ImageNet normalisation -> (x - 0.5) / 0.5
            mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
            x = (x * std + mean - 0.5) / 0.5
        x = self.maxpool1(self.conv1(x))  # (N, 64, 56, 56) at 224
        if self.norm1 is not None:
            x = self.norm1(x)
        x = self.conv3(self.conv2(x))  # (N, 192, 56, 56)
        if self.norm2 is not None:
            x = self.norm2(x)
        x = self.maxpool2(x)  # (N, 192, 28, 28)
        aux: list[Tensor] = []
        for name in self.trunk_names:  # 3a-3b at 28², 4a-4e at 14², 5a-5b at 7²
            x = getattr(self, name)(x)
            if taps and name in AUX_TAPS:
                aux.append(getattr(self, AUX_TAPS[name])(x))
        return x, aux  # (N, 1024, 7, 7) at 224

    def forward_features(self, x: Tensor) -> Tensor:
        return self._trunk(x, taps=False)[0]

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))  # (N, 1024)
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor | GoogLeNetOutputs:
        """Logits; in training with aux heads, ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``."""
        if self.training and self.aux_logits:
            self.check_input(x)
            x, (aux1, aux2) = self._trunk(x, taps=True)
            return GoogLeNetOutputs(self.forward_head(x), aux2, aux1)
        return self.forward_head(self.forward_features(x))  # forward_features checks x

    def loss(self, output: Tensor | GoogLeNetOutputs, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Cross-entropy; with aux outputs, main + 0.3·(aux1 + aux2) as in §5."""
        if isinstance(output, GoogLeNetOutputs):
            main, aux2, aux1 = (F.cross_entropy(o, target, label_smoothing=label_smoothing) for o in output)
            return main + self.aux_weight * (aux1 + aux2)
        return F.cross_entropy(output, target, label_smoothing=label_smoothing)


def map_sides(side: int, layout: str = "paper") -> dict[str, int]:
    """Map sides after each downsampling step for a ``side``×``side`` input."""
    sides = {"conv1": out_side(side, 7, 2, 3)}
    sides["maxpool1"] = out_side(sides["conv1"], 3, 2, ceil=True)
    sides["maxpool2"] = out_side(sides["maxpool1"], 3, 2, ceil=True)
    sides["maxpool3"] = out_side(sides["maxpool2"], 3, 2, ceil=True)
    sides["maxpool4"] = out_side(sides["maxpool3"], 2 if layout == "torchvision" else 3, 2, ceil=True)
    sides["aux_pool"] = out_side(sides["maxpool3"], 5, 3) if layout == "paper" else sides["maxpool3"]
    return sides


def min_input_side(layout: str = "paper", aux: bool = False) -> int:
    """The smallest square input for which every map (and the aux pool, if ``aux``) is non-empty.

    The torchvision layout has batch norm: training needs at least 2×2 maps in stage 5 (a BN that
    sees one value per channel fails at batch 1 and passes no gradient at batch 2), so its
    minimum is 47 rather than the 15 at which it (and torchvision's ``min_size``) runs in eval mode.
    """
    last = 2 if layout == "torchvision" else 1
    side = 1
    while True:
        s = map_sides(side, layout)
        keys = [k for k in s if k != "aux_pool" or aux]
        if all(s[k] >= 1 for k in keys) and s["maxpool4"] >= last:
            return side
        side += 1


def _cfg(note: str, layout: str) -> ModelConfig:
    """The config of one layout. The default builds carry the aux heads (the paper trains with
    them): their minimum input size accounts for the aux pool. Fashion-MNIST is resized to 96x96
    (3x3 maps in stage 5 of the paper layout), small enough to train on a CPU."""
    return ModelConfig(
        input_size=(3, 224, 224),
        min_input_size=min_input_side(layout, aux=True),
        num_classes=1000,
        paper=PAPER,
        year=2015,
        family="googlenet",
        small_input_size=96,
        small_input_mode="resize",
        notes=note,
    )


def _create_googlenet(**kwargs: Any) -> GoogLeNet:
    """The family constructor (one class builds the three layouts)."""
    return GoogLeNet(**kwargs)


@register_model(_cfg("paper: Table 1, LRN, no BN, aux heads", "paper"))
def googlenet(**kwargs: Any) -> GoogLeNet:
    """GoogLeNet as the paper has it (Table 1, LRN, no BN, aux heads). Options as :class:`GoogLeNet`."""
    return _create_googlenet(**kwargs)


@register_model(_cfg("naive Inception modules (Fig. 2a), no 1x1 reductions", "paper"))
def googlenet_naive(**kwargs: Any) -> GoogLeNet:
    """GoogLeNet with the naive Inception modules of Fig. 2a (no 1×1 reductions)."""
    return _create_googlenet(naive=True, **kwargs)


@register_model(
    _cfg(
        "torchvision layout and keys: BN, 3x3 in the 5x5 branch; 6,624,904 params without aux", "torchvision"
    )
)
def googlenet_tv(**kwargs: Any) -> GoogLeNet:
    """torchvision's GoogLeNet layout and state_dict keys (BN, 3×3 in the "5×5" branch)."""
    return _create_googlenet(layout="torchvision", **kwargs)
