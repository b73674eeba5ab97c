"""LeNet-5.

LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document recognition",
Proc. IEEE 86(11), 1998, §II.B and Appendix A.

``lenet5`` is the 1998 network, layer for layer:

=====  ==========================================  =========  ===========
layer  what it does                                output     #params
=====  ==========================================  =========  ===========
C1     6 maps, 5×5 conv                            6×28×28    156
S2     2×2 sum × trainable coef + trainable bias   6×14×14    12
C3     16 maps, 5×5, partial connections (Table I) 16×10×10   1,516
S4     like S2                                     16×5×5     32
C5     120 maps, 5×5, full connection              120×1×1    48,120
F6     84 units                                    84         10,164
out    10 Euclidean RBF units, fixed prototypes    10         0
=====  ==========================================  =========  ===========

Choices where the paper is open (each is documented where it is made):

* **Squashing.** The scaled tanh ``f(a) = 1.7159·tanh(2a/3)`` (Appendix A) follows every layer
  from C1 to F6, S2 and S4 included (§II.B: subsampling results are "passed through a sigmoidal
  function").
* **RBF prototypes.** The paper draws each class's ±1 prototype as a stylised 7×12 bitmap of the
  character. The exact bitmaps are not published; we draw the digits 0–9 on a 7×12 grid
  (``DIGITS_7x12``), with +1 for ink and −1 for background. For a class count other than 10 the
  prototypes are a fixed pseudo-random ±1 code (seed 0), which keeps them far apart. Both live in
  the torch-free ``cnnzoo.models._lenet_tables``, shared with the NumPy engine.
* **Output.** ``forward`` returns *negative* squared Euclidean distances, so that ``argmax`` is the
  prediction and ordinary cross-entropy ("cross-entropy over negative distances") trains it.
  :func:`lenet5_map_loss` is the paper's own criterion, Eq. (9).
* **Init.** Weights uniform in ±2.4/F_in (Appendix A), biases 0, subsampling coefficients 1.
* **Input.** Exactly 1×32×32: 28×28 images are zero-padded by 2 on each side, as in §III.A.

``lenet5_relu`` is the version most courses teach: ReLU, 2×2 max-pool, a full C3, and a linear
output. It keeps the paper's layer names so that weights and tables line up.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.layers.init import init_weights_, lecun_uniform_init
from cnnzoo.models._lenet_tables import C3_TABLE, rbf_prototypes_numpy
from cnnzoo.models.base import FeatureInfo, InputShapeError, ZooModel
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "LeNet5",
    "ScaledTanh",
    "Subsampling",
    "PartialConv2d",
    "EuclideanRBF",
    "C3_TABLE",
    "lenet5_map_loss",
    "LeNetVariant",
    "VARIANTS",
    "lenet5",
    "lenet5_relu",
]

PAPER = (
    "Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning applied to document "
    "recognition. Proceedings of the IEEE 86(11):2278-2324, 1998."
)


class ScaledTanh(nn.Module):
    """LeCun's squashing function f(a) = A·tanh(S·a), A = 1.7159, S = 2/3 (Appendix A)."""

    cost_type = "act"

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: Tensor) -> Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4f}"


class Subsampling(nn.Module):
    """LeNet's trainable subsampling: the sum of each 2×2 window, times a per-map coefficient,
    plus a per-map bias (2 parameters per map). Windows do not overlap."""

    cost_type = "pool"

    def __init__(self, channels: int, kernel_size: int = 2) -> None:
        super().__init__()
        self.channels = channels
        self.kernel_size = kernel_size
        self.stride = kernel_size
        self.padding = 0
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        k = self.kernel_size
        s = F.avg_pool2d(x, k) * (k * k)  # window sums
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}"


class PartialConv2d(nn.Module):
    """A convolution in which output map j sees only the input maps ``table[j]`` (LeNet's C3).

    Only the existing connections have weights: ``weight`` holds one k×k kernel per connection,
    in table order (60 for C3), so the parameter count is the paper's 60·25 + 16 = 1,516.
    Forward scatters them into a dense (out, in, k, k) kernel with zeros elsewhere and runs one
    ordinary convolution: 6.5× faster on CPU than a gathered depthwise conv, at the price of
    multiplying by the 36 absent connections' zeros (the paper counts 151,600 connections; a
    cost table of the dense conv shows 240,000 multiply-adds per sample).
    """

    cost_type = "conv"

    def __init__(self, table: tuple[tuple[int, ...], ...], in_channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        self.table = tuple(tuple(t) for t in table)
        self.in_channels = in_channels
        self.out_channels = len(self.table)
        self.kernel_size = (kernel_size, kernel_size)
        self.stride = (1, 1)
        self.padding = (0, 0)
        self.dilation = (1, 1)
        self.groups = 1
        src = [i for row in self.table for i in row]
        dst = [j for j, row in enumerate(self.table) for _ in row]
        if max(src) >= in_channels:
            raise ValueError(f"connection table names input map {max(src)} but in_channels={in_channels}")
        self.register_buffer("src_index", torch.tensor(src), persistent=False)
        self.register_buffer("dst_index", torch.tensor(dst), persistent=False)
        self.weight = nn.Parameter(torch.empty(len(src), 1, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(self.out_channels))
        nn.init.uniform_(self.weight, -0.1, 0.1)

    @property
    def num_connections(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)  # (N, 16, H-4, W-4)

    def dense_weight(self) -> Tensor:
        """The equivalent (out, in, k, k) weight with zeros where the table has no connection."""
        w = self.weight.new_zeros(self.out_channels, self.in_channels, *self.kernel_size)
        return w.index_put((self.dst_index, self.src_index), self.weight[:, 0])  # differentiable

    @torch.no_grad()
    def lecun_uniform_(self, gain: float = 2.4) -> None:
        """LeNet's init (Appendix A): each map's kernels U(±gain / F_in), F_in = 25 × its inputs
        (so it differs per C3 map); biases 0."""
        start = 0
        for row in self.table:  # each map's kernels are contiguous, in table order
            bound = gain / (len(row) * self.weight[0].numel())
            self.weight[start : start + len(row)].uniform_(-bound, bound)
            start += len(row)
        nn.init.zeros_(self.bias)

    def load_dense_weight(self, dense: Tensor) -> None:
        """Set the connection kernels from an (out, in, k, k) weight (absent connections ignored)."""
        with torch.no_grad():
            self.weight.copy_(dense[self.dst_index, self.src_index].unsqueeze(1))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={self.num_connections}"
        )


def rbf_prototypes(num_classes: int, dim: int = 84) -> Tensor:
    """The fixed ±1 RBF prototypes (see :func:`cnnzoo.models._lenet_tables.rbf_prototypes_numpy`)."""
    return torch.tensor(rbf_prototypes_numpy(num_classes, dim))  # honours a torch.device context


class EuclideanRBF(nn.Module):
    """Euclidean RBF output units y_i = Σ_j (x_j − w_ij)², with fixed (non-trainable) prototypes.

    Returns ``-y`` (negative squared distances), so the largest output is the nearest prototype.
    """

    cost_type = "linear"

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = num_classes
        self.register_buffer("prototypes", rbf_prototypes(num_classes, in_features))

    def forward(self, x: Tensor) -> Tensor:
        # ||x - w||^2 expanded, so it runs as one matmul
        d = (x * x).sum(1, keepdim=True) - 2 * x @ self.prototypes.t() + (self.prototypes**2).sum(1)
        return -d

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, fixed prototypes"


def lenet5_map_loss(neg_dist: Tensor, target: Tensor, j: float = 0.1) -> Tensor:
    """The paper's MAP criterion, Eq. (9): E = y_Dp + log(e^{−j} + Σ_i e^{−y_i}), averaged.

    ``neg_dist`` is ``lenet5``'s output (−y). The constant ``j`` (the paper leaves its value
    open) keeps the penalties from pushing already-large distances further apart.
    """
    rubbish = neg_dist.new_full((neg_dist.shape[0], 1), -j)
    y_target = -neg_dist.gather(1, target.view(-1, 1)).squeeze(1)
    return (y_target + torch.logsumexp(torch.cat([rubbish, neg_dist], 1), 1)).mean()


class LeNet5(ZooModel):
    """LeNet-5 (LeCun et al. 1998). See the module docstring for every choice made.

    Stages (``feature_info``): the squashed outputs of C1, S2, C3, S4 and C5 (``act1``…``act5``).
    Classifier (``head_name``): ``output``, the RBF layer (or the linear one of ``paper=False``);
    ``reset_classifier(n)`` rebuilds the RBF prototypes as ``num_classes=n`` does at construction.

    Args:
        num_classes: output units (10 in the paper).
        in_chans: input channels (1 in the paper).
        paper: True for the 1998 network (scaled tanh, trainable subsampling, C3 table, RBF
            output); False for the course version (ReLU, max-pool, full C3, linear output).
        criterion: for ``paper=True``, ``"ce"`` (cross-entropy over negative distances, the
            default) or ``"map"`` (the paper's Eq. 9); the trainer calls :meth:`loss`.
    """

    def __init__(
        self, *, num_classes: int = 10, in_chans: int = 1, paper: bool = True, criterion: str = "ce"
    ) -> None:
        super().__init__()
        if criterion not in ("ce", "map"):
            raise ValueError(f"criterion must be 'ce' or 'map', got {criterion!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.paper = paper
        self.criterion = criterion
        self.min_input_size = 32
        act = ScaledTanh if paper else nn.ReLU
        self.c1 = nn.Conv2d(in_chans, 6, 5)
        self.act1 = act()
        if paper:
            self.s2: nn.Module = Subsampling(6)
            self.act2: nn.Module = ScaledTanh()
            self.c3: nn.Module = PartialConv2d(C3_TABLE, 6, 5)
        else:
            self.s2 = nn.MaxPool2d(2)
            self.act2 = nn.Identity()
            self.c3 = nn.Conv2d(6, 16, 5)
        self.act3 = act()
        self.s4 = Subsampling(16) if paper else nn.MaxPool2d(2)
        self.act4 = ScaledTanh() if paper else nn.Identity()
        self.c5 = nn.Conv2d(16, 120, 5)
        self.act5 = act()
        self.f6 = nn.Linear(120, 84)
        self.act6 = act()
        self.output = EuclideanRBF(84, num_classes) if paper else nn.Linear(84, num_classes)
        # the squashed outputs of C1, S2, C3, S4 and C5 (valid convs: 28, 14, 10, 5, 1 at 32)
        self.feature_info = [
            FeatureInfo("act1", 6, 1), FeatureInfo("act2", 6, 2), FeatureInfo("act3", 16, 2),
            FeatureInfo("act4", 16, 4), FeatureInfo("act5", 120, 4),
        ]  # fmt: skip
        self.head_name = "output"
        if paper:
            self._init_paper()

    def _init_paper(self) -> None:
        """Appendix A: weights uniform in ±2.4/F_in, where F_in is the unit's fan-in."""
        lecun = lecun_uniform_init(2.4)
        init_weights_(self, {PartialConv2d: PartialConv2d.lecun_uniform_, (nn.Conv2d, nn.Linear): lecun})

    def check_input(self, x: Tensor) -> None:
        super().check_input(x)
        if isinstance(x, Tensor) and x.dim() == 4 and tuple(x.shape[2:]) != (32, 32):
            raise InputShapeError(
                f"LeNet-5 takes exactly 32x32 inputs (C5 must see a 5x5 map), got "
                f"{x.shape[2]}x{x.shape[3]}. Pad 28x28 images by 2 pixels on each side."
            )

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.act1(self.c1(x))  # (N, 6, 28, 28)
        x = self.act2(self.s2(x))  # (N, 6, 14, 14)
        x = self.act3(self.c3(x))  # (N, 16, 10, 10)
        x = self.act4(self.s4(x))  # (N, 16, 5, 5)
        return self.act5(self.c5(x))  # (N, 120, 1, 1)

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        x = self.act6(self.f6(torch.flatten(x, 1)))  # (N, 84)
        return x if pre_logits else self.output(x)  # (N, num_classes)

    def _new_classifier(self, old: nn.Module, num_classes: int) -> nn.Module:
        """The RBF output is reset as ``create_model("lenet5", num_classes=n)`` builds it: the digit
        bitmaps for 10 classes, the fixed ±1 code (seed 0) otherwise. It has no parameters."""
        if isinstance(old, EuclideanRBF):
            p = old.prototypes
            return EuclideanRBF(old.in_features, num_classes).to(device=p.device, dtype=p.dtype)
        return super()._new_classifier(old, num_classes)

    def loss(self, output: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """The training criterion: cross-entropy, or the paper's Eq. (9) with ``criterion='map'``."""
        if self.paper and self.criterion == "map":
            return lenet5_map_loss(output, target)
        return F.cross_entropy(output, target, label_smoothing=label_smoothing)


class LeNetVariant(NamedTuple):
    """One registered LeNet-5: the 1998 network or the course version."""

    paper: bool
    note: str


VARIANTS: dict[str, LeNetVariant] = {
    "lenet5": LeNetVariant(True, "RBF prototypes: 7x12 digit bitmaps drawn by cnnzoo"),
    "lenet5_relu": LeNetVariant(False, "course version: ReLU, max-pool, full C3, linear output"),
}


def _cfg(name: str) -> ModelConfig:
    """Both take 1×32×32 exactly (28×28 digits zero-padded by 2, §III.A), scaled to [−1, 1]."""
    return ModelConfig(
        input_size=(1, 32, 32),
        min_input_size=32,
        num_classes=10,
        paper=PAPER,
        year=1998,
        family="lenet",
        mean=(0.5,),
        std=(0.5,),
        small_input_size=32,
        small_input_mode="pad",
        notes=VARIANTS[name].note,
    )


def _create_lenet(name: str, **kwargs) -> LeNet5:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    return LeNet5(**{"paper": VARIANTS[name].paper, **kwargs})


@register_model(_cfg("lenet5"))
def lenet5(**kwargs) -> LeNet5:
    """LeNet-5 exactly as in 1998: scaled tanh, trainable subsampling, C3 table, RBF output."""
    return _create_lenet("lenet5", **kwargs)


@register_model(_cfg("lenet5_relu"))
def lenet5_relu(**kwargs) -> LeNet5:
    """The course LeNet-5: ReLU, 2×2 max-pool, full C3 (2,416 params) and a linear output."""
    return _create_lenet("lenet5_relu", **kwargs)
