"""Inception v3: the paper's Table 1 and Figs. 5-7 and 10, and the released (TF-slim) network.

C. Szegedy, V. Vanhoucke, S. Ioffe, J. Shlens, Z. Wojna, "Rethinking the Inception Architecture for
Computer Vision", CVPR 2016. (The decks' "history of Inception" calls BN-Inception v2 and this v3;
the paper's own "Inception-v2" is this network without the factorised 7×7 stem and the BN in the
auxiliary head, Table 3.)

``inception_v3`` follows the paper: Table 1's layers and grid sizes, the modules of Figs. 5, 6 and
7 (every 5×5 replaced by two 3×3; n×n factorised into 1×n and n×1 with n = 7; the expanded filter
bank of the 8×8 grid) and the grid reduction of Fig. 10 (a stride-2 pool beside stride-2 conv
branches, concatenated), the auxiliary classifier of Fig. 8 with batch norm in its fc ("BN-auxiliary",
the last row of Table 3), and §6's widths (288 filters at 35×35, 768 at 17×17, 1,280 after the
second reduction, 2,048 in the last modules). The paper prints no filter counts for the inside of
the modules; those are the released network's (below) wherever its modules are the paper's.

Where text, table, figures and release disagree, and what ``inception_v3`` does:

* **Stem and the first module's input.** Table 1 lists seven layers, conv 3×3/2, conv 3×3,
  conv padded 3×3, pool 3×3/2, conv 3×3, conv 3×3/2, conv 3×3, and gives the first Inception module
  a 35×35×288 input. The released network instead has a 1×1 conv (80), a 3×3 conv (192), a max pool
  3×3/2 and a 35×35×192 input to a first module of 256 outputs (``Mixed_5b``). cnnzoo follows the
  table: 32, 32, 64, pool, 80, 192 (the widths of the table's next rows) and a last 3×3 to 288.
* **Padding.** Table 1 marks only the third conv "padded", but its last conv (on 35×35×192, giving
  the 35×35×288 input of the next row) must be padded too; it is.
* **Figure numbers.** §6 says "5 instances of the factorized inception modules as depicted in
  figure 5" and "two Inception modules as depicted in figure 6" where Table 1 (and the figures'
  captions: n×n factorisation is Fig. 6, the expanded 8×8 bank Fig. 7) has Figs. 6 and 7. cnnzoo
  follows Table 1.
* **Modules per grid.** Table 1 and §6 have 3, 5 and 2 modules at 35×35, 17×17 and 8×8; the release
  has 3, 4 (``Mixed_6b``-``6e``) and 2. cnnzoo has five 17×17 modules; their 1×7/7×1 widths are the
  release's 128, 160, 160, 192 with one more 160 in the middle.
* **The 35×35 modules (Fig. 5).** Fig. 5 replaces the 5×5 branch with two 3×3s and keeps a
  1×1 → 3×3 branch; the release keeps a 1×1 → 5×5 branch beside the double 3×3. cnnzoo builds
  Fig. 5, with the release's widths (1×1 64; 1×1 48 → 3×3 64; 1×1 64 → 3×3 96 → 3×3 96; pool → 1×1
  64), which give §6's 288.
* **The 17×17 modules (Fig. 6).** Fig. 6 starts both factorised chains with a 1×n; the release
  starts its long chain with a 7×1. cnnzoo follows the figure ("1×n" is one row of n, ``(1, n)``).
* **Grid reductions (Fig. 10).** Fig. 10 puts a 1×1 conv before each stride-2 conv branch. The
  release's 35→17 reduction has none before its 3×3/2 (384), and its 17→8 reduction has a
  1×1 → 1×7 → 7×1 → 3×3/2 chain where Fig. 10 has 1×1 → 3×3 → 3×3/2. cnnzoo builds Fig. 10: 1×1 192
  → 3×3/2 384 ‖ 1×1 64 → 3×3 96 → 3×3/2 96 ‖ max pool (35→17: 768 filters), and 1×1 192 → 3×3/2 320
  ‖ 1×1 192 → 3×3 192 → 3×3/2 192 ‖ max pool (17→8: 1,280); the 1×1 widths before the first branch
  (192) are the release's only such reduce width, as the paper gives none.
* **Auxiliary head (Fig. 8).** Fig. 8: 5×5/3 average pool → 1×1 conv (128) → fc 1024 → fc 1000, on
  the last 17×17 layer, with batch norm in the fc ("BN-auxiliary": "the fully connected layer of the
  auxiliary classifier is also batch-normalized"). The release uses a 5×5 conv of 768 as its "fully
  connected" layer. cnnzoo follows Fig. 8 (an adaptive 5×5 pool after the 5×5/3 one keeps the fc's
  input at 3,200 at other input sizes; it is a no-op at 299). Its loss weight is not given; 0.4 is
  TF-slim's (``train_image_classifier.py``).
* **Silent choices**: BN eps 0.001 and ReLU after every conv; pools in the modules are 3×3/1
  average pools that leave the padding out of the mean (TensorFlow's); global average pooling;
  dropout 0.2 before the fc (TF-slim's keep probability 0.8); weights truncated-normal with
  std 0.1 (TF-slim's ``inception_v3_arg_scope``), the auxiliary fcs 0.001.

``inception_v3_tv`` is the released network as torchvision carries it (``torchvision.models.
inception_v3``: its module names, and a key map for the insides of its modules, so that its files
load): stem 32-32-64, pool, 80 (1×1), 192, pool; ``Mixed_5b``-``5d`` (with the 5×5 branch),
``Mixed_6a`` (reduction), ``Mixed_6b``-``6e``, ``Mixed_7a``, ``Mixed_7b``-``7c``; the auxiliary head
``AuxLogits`` (5×5/3 pool → 1×1 128 → 5×5 768 → fc) on ``Mixed_6e``; pools that count the padding
(torchvision's ``F.avg_pool2d``); dropout 0.5; ``transform_input`` (torchvision's option: its
released weights, ported from TensorFlow, expect it). 27,161,264 parameters with the auxiliary head.

Minimum inputs: 107 for both layouts without the auxiliary head (the 8×8 map of 299 is 2×2 there;
BN cannot train on 1×1 maps), and for ``inception_v3`` with it (its 5×5/3 pool needs a 5×5 map);
299 for ``inception_v3_tv`` with it (its 5×5 conv needs 5×5 maps after the pool, so the 17×17 map
must be 17×17). Fashion-MNIST is resized to 139 (3×3 last maps).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.layers.inception import BasicConv2d, BlockSpec, avg_pool, conv, max_pool, split
from cnnzoo.layers.init import norm_init, trunc_normal_init
from cnnzoo.models._config import imagenet_cfg
from cnnzoo.models._inception import AuxSpec, InceptionNet, Row, min_input_side
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "InceptionV3",
    "PaperAux",
    "TorchvisionAux",
    "PAPER",
    "AUX_WEIGHT",
    "LAYOUTS",
    "inception_v3",
    "inception_v3_tv",
]

PAPER = (
    "C. Szegedy, V. Vanhoucke, S. Ioffe, J. Shlens, Z. Wojna. Rethinking the Inception Architecture "
    "for Computer Vision. CVPR 2016."
)
AUX_WEIGHT = 0.4  # TF-slim's train_image_classifier.py; the paper gives none


# -- the modules, as branch tables -----------------------------------------------------------------


def _module_35(pool_proj: int, *, kernel_5x5: int, count_pad: bool) -> BlockSpec:
    """Fig. 5 (``kernel_5x5=3``: 1×1 → 3×3) or the release's ``InceptionA`` (5: 1×1 → 5×5)."""
    return BlockSpec((
        (conv(64),),
        (conv(48), conv(64, kernel_5x5)),
        (conv(64), conv(96, 3), conv(96, 3)),
        (avg_pool(count_include_pad=count_pad), conv(pool_proj)),
    ))  # fmt: skip


def _module_17(c7: int, *, paper: bool) -> BlockSpec:
    """Fig. 6 with n = 7 (``paper``: both chains start with a 1×7) or the release's ``InceptionC``."""
    a, b = ((1, 7), (7, 1)) if paper else ((7, 1), (1, 7))
    return BlockSpec((
        (conv(192),),
        (conv(c7), conv(c7, (1, 7)), conv(192, (7, 1))),
        (conv(c7), conv(c7, a), conv(c7, b), conv(c7, a), conv(192, b)),
        (avg_pool(count_include_pad=not paper), conv(192)),
    ))  # fmt: skip


def _module_8(*, count_pad: bool) -> BlockSpec:
    """Fig. 7, the expanded filter bank (the release's ``InceptionE`` has the same branches)."""
    fork = split(conv(384, (1, 3)), conv(384, (3, 1)))
    return BlockSpec((
        (conv(320),),
        (conv(384), fork),
        (conv(448), conv(384, 3), fork),
        (avg_pool(count_include_pad=count_pad), conv(192)),
    ))  # fmt: skip


def _reduction(wide: tuple[int, ...], deep: tuple[ConvMid, ...], out: int) -> BlockSpec:
    """A grid reduction (Fig. 10): ``wide`` convs ending 3×3/2 ‖ ``deep`` chain ending 3×3/2 (``out``)
    ‖ 3×3/2 max pool. ``wide`` is (1×1 reduce, 3×3/2 width) or (3×3/2 width,)."""
    first = tuple(conv(w) for w in wide[:-1]) + (conv(wide[-1], 3, 2, "valid"),)
    middle = tuple(conv(m.width, m.kernel) for m in deep)
    return BlockSpec((first, middle + (conv(out, 3, 2, "valid"),), (max_pool(),)))


class ConvMid(NamedTuple):
    """A stride-1 conv inside a reduction's deep branch."""

    width: int
    kernel: int | tuple[int, int]


def paper_rows() -> tuple[Row, ...]:
    """Table 1 with Figs. 5, 6, 7 and 10 (see the module docstring for the choices)."""
    return (
        Row("conv1", conv(32, 3, 2, "valid")),  # 299 -> 149
        Row("conv2", conv(32, 3, padding="valid")),  # 147
        Row("conv3", conv(64, 3)),  # "conv padded": 147
        Row("pool1", max_pool()),  # 73
        Row("conv4", conv(80, 3, padding="valid")),  # 71
        Row("conv5", conv(192, 3, 2, "valid")),  # 35
        Row("conv6", conv(288, 3)),  # 35x35x288, the first module's input
        *(Row(f"inception_a{i}", _module_35(64, kernel_5x5=3, count_pad=False)) for i in (1, 2, 3)),
        Row("reduction_a", _reduction((192, 384), (ConvMid(64, 1), ConvMid(96, 3)), 96)),  # 17x17x768
        *(
            Row(f"inception_b{i + 1}", _module_17(c7, paper=True))
            for i, c7 in enumerate((128, 160, 160, 160, 192))
        ),
        Row("reduction_b", _reduction((192, 320), (ConvMid(192, 1), ConvMid(192, 3)), 192)),  # 8x8x1280
        Row("inception_c1", _module_8(count_pad=False)),
        Row("inception_c2", _module_8(count_pad=False)),  # 8x8x2048
    )


def torchvision_rows() -> tuple[Row, ...]:
    """The released network, with torchvision's module names."""
    return (
        Row("Conv2d_1a_3x3", conv(32, 3, 2, "valid")),
        Row("Conv2d_2a_3x3", conv(32, 3, padding="valid")),
        Row("Conv2d_2b_3x3", conv(64, 3)),
        Row("maxpool1", max_pool()),
        Row("Conv2d_3b_1x1", conv(80)),
        Row("Conv2d_4a_3x3", conv(192, 3, padding="valid")),
        Row("maxpool2", max_pool()),
        Row("Mixed_5b", _module_35(32, kernel_5x5=5, count_pad=True)),
        Row("Mixed_5c", _module_35(64, kernel_5x5=5, count_pad=True)),
        Row("Mixed_5d", _module_35(64, kernel_5x5=5, count_pad=True)),
        Row("Mixed_6a", _reduction((384,), (ConvMid(64, 1), ConvMid(96, 3)), 96)),
        *(Row(f"Mixed_6{s}", _module_17(c7, paper=False)) for s, c7 in zip("bcde", (128, 160, 160, 192), strict=True)),
        Row("Mixed_7a", _reduction((192, 320), (ConvMid(192, 1), ConvMid(192, (1, 7)), ConvMid(192, (7, 1))), 192)),
        Row("Mixed_7b", _module_8(count_pad=True)),
        Row("Mixed_7c", _module_8(count_pad=True)),
    )  # fmt: skip


# -- the auxiliary heads ---------------------------------------------------------------------------


class PaperAux(nn.Module):
    """Fig. 8 with BN-auxiliary: avg pool 5×5/3 → 1×1 conv 128 (BN, ReLU) → fc 1024 (BN, ReLU) → fc.

    Submodules ``pool`` (5×5/3, then an adaptive 5×5 that is a no-op at 299), ``conv``, ``fc1``,
    ``bn1``, ``fc2`` (the classifier).
    """

    cost_type = "head"
    head_name = "fc2"

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.Sequential(nn.AvgPool2d(5, stride=3), nn.AdaptiveAvgPool2d(5))
        self.conv = BasicConv2d(in_channels, 128, 1, norm=True)
        self.fc1 = nn.Linear(128 * 5 * 5, 1024, bias=False)  # BN follows
        self.bn1 = nn.BatchNorm1d(1024, eps=0.001)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(self.pool(x))  # (N, 128, 5, 5)
        x = F.relu(self.bn1(self.fc1(torch.flatten(x, 1))), inplace=True)  # (N, 1024)
        return self.fc2(x)


class TorchvisionAux(nn.Module):
    """The release's head (torchvision's ``InceptionAux``): avg pool 5×5/3 → 1×1 conv 128 → 5×5
    conv 768 → global average → fc. Submodules ``conv0``, ``conv1``, ``fc`` (torchvision's)."""

    cost_type = "head"
    head_name = "fc"

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv0 = BasicConv2d(in_channels, 128, 1, norm=True)
        self.conv1 = BasicConv2d(128, 768, 5, norm=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(self.conv0(self.pool(x)))  # (N, 768, 1, 1) at 299
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Layout(NamedTuple):
    """One registered Inception v3: its rows, auxiliary head, dropout and the note of its config."""

    rows: tuple[Row, ...]
    aux: AuxSpec
    dropout: float
    note: str


LAYOUTS: dict[str, Layout] = {
    "inception_v3": Layout(
        paper_rows(),
        AuxSpec("aux", "inception_b5", PaperAux, min_side=5, weight=AUX_WEIGHT),
        0.2,
        "Table 1, Figs. 5-8 and 10: stem to 35x35x288, 3/5/2 modules",
    ),
    "inception_v3_tv": Layout(
        torchvision_rows(),
        AuxSpec("AuxLogits", "Mixed_6e", TorchvisionAux, min_side=17, weight=AUX_WEIGHT),
        0.5,
        "the release, torchvision's layout (loads its files)",
    ),
}


class InceptionV3(InceptionNet):
    """Inception v3 in the paper's layout or the released one; see the module docstring.

    Stages (``feature_info``): the stem's 3×3 at 1/2 and last conv at 1/4, then the last module of
    each grid, at 1/8, 1/16 and 1/32 (torchvision layout: ``Conv2d_2b_3x3``, ``Conv2d_4a_3x3``,
    ``Mixed_5d``, ``Mixed_6e``, ``Mixed_7c``, as timm's). Classifier ``fc``; the auxiliary head
    (``aux`` or ``AuxLogits``) is an aux head of :meth:`reset_classifier`.

    Args:
        layout: ``"inception_v3"`` or ``"inception_v3_tv"`` (a :data:`LAYOUTS` key).
        num_classes: classifier outputs.
        in_chans: input channels.
        aux_logits: build the auxiliary classifier; in training the model then returns
            ``InceptionOutputs(logits, aux_logits)`` and :meth:`loss` adds 0.4 × its loss.
        dropout: before the classifier (0.2 paper, 0.5 torchvision).
        transform_input: torchvision's input rescaling for its released weights (3 channels).
    """

    def __init__(
        self,
        layout: str = "inception_v3",
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = True,
        dropout: float | None = None,
        transform_input: bool = False,
    ) -> None:
        v = LAYOUTS[layout]
        self.layout = layout
        super().__init__(
            v.rows, num_classes=num_classes, in_chans=in_chans, aux=v.aux, aux_logits=aux_logits,
            dropout=v.dropout if dropout is None else dropout, transform_input=transform_input,
            init={(nn.Conv2d, nn.Linear): trunc_normal_init(std=0.1), (nn.BatchNorm2d, nn.BatchNorm1d): norm_init()},
        )  # fmt: skip

    def _init_weights(self, rules: Any) -> None:
        super()._init_weights(rules)
        aux = getattr(self, self.aux_spec.name) if self.aux_logits else None
        if isinstance(aux, TorchvisionAux):  # torchvision's and TF-slim's smaller stds in the head
            trunc_normal_init(std=0.01)(aux.conv1.conv)
            trunc_normal_init(std=0.001)(aux.fc)
        elif isinstance(aux, PaperAux):
            trunc_normal_init(std=0.001)(aux.fc2)


def _cfg(name: str) -> ModelConfig:
    v = LAYOUTS[name]
    tv = name.endswith("_tv")
    reported = (
        {"dataset": "imagenet", "top1": 77.294, "top5": 93.45, "crop": 299,
         "source": "torchvision Inception_V3_Weights.IMAGENET1K_V1"}
        if tv else
        {"dataset": "imagenet", "top1": 78.8, "top5": 94.4, "crop": 299,
         "source": "Szegedy et al. 2016, Table 3 (Inception-v2 BN-auxiliary = Inception-v3, single crop)"}
    )  # fmt: skip
    macs = (
        {"value": 5.713e9, "source": "torchvision Inception_V3_Weights.IMAGENET1K_V1"}
        if tv
        else {"value": 4.8e9, "source": "Szegedy et al. 2016, Table 3 (Cost Bn Ops)"}
    )
    return imagenet_cfg(
        input_size=299,
        min_input_size=min_input_side(v.rows, aux=v.aux),  # 107 (paper), 299 (tv with AuxLogits)
        paper=PAPER,
        year=2016,
        family="inception_v3",
        small_input_size=139 if not tv else min_input_side(v.rows, aux=v.aux),
        notes=v.note,
        extra={"reported": reported, "macs": macs},
    )


def _create_inception_v3(name: str, **kwargs: Any) -> InceptionV3:
    return InceptionV3(name, **kwargs)


@register_model(_cfg("inception_v3"))
def inception_v3(**kwargs: Any) -> InceptionV3:
    """Inception v3 as the paper has it (Table 1, Figs. 5-8 and 10). Options as :class:`InceptionV3`."""
    return _create_inception_v3("inception_v3", **kwargs)


@register_model(_cfg("inception_v3_tv"))
def inception_v3_tv(**kwargs: Any) -> InceptionV3:
    """The released Inception v3 in torchvision's layout (loads its files). Options as :class:`InceptionV3`."""
    return _create_inception_v3("inception_v3_tv", **kwargs)
