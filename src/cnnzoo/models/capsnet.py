"""CapsNet: capsules with dynamic routing, the margin loss and the reconstruction decoder.

S. Sabour, N. Frosst, G. E. Hinton, "Dynamic Routing Between Capsules", NIPS 2017, §4 and Figs. 1-2.

* **Conv1**: 256 filters 9×9, stride 1, ReLU (28×28 → 20×20).
* **PrimaryCaps** (:class:`PrimaryCapsules`): a 9×9/2 conv to 32 × 8 channels (20×20 → 6×6), read as
  32 capsule types of 8D capsules at each of the 6×6 positions (1,152 capsules; a capsule is 8
  consecutive channels at one position, as in the authors' code), each squashed (Eq. 1).
* **DigitCaps** (:class:`ClassCapsules`, the classifier): one 16D capsule per class. Every primary
  capsule i predicts each class capsule j through its own 8×16 matrix, û_j|i = W_ij u_i (Eq. 2), and
  dynamic routing (Procedure 1; :attr:`ClassCapsules.iterations`, 3 in the paper) sets the coupling
  coefficients c_ij = softmax_j(b_ij): s_j = Σ_i c_ij û_j|i, v_j = squash(s_j), b_ij += û_j|i · v_j,
  with b_ij = 0 at the start. W has no bias (Eq. 2). The logits are the lengths ‖v_j‖.
* **Margin loss** (Eq. 4): Σ_k T_k max(0, m⁺ − ‖v_k‖)² + λ (1 − T_k) max(0, ‖v_k‖ − m⁻)², with
  m⁺ = 0.9, m⁻ = 0.1, λ = 0.5, summed over the classes and averaged over the batch.
* **Reconstruction** (§4.1, Fig. 2; :class:`CapsuleDecoder`): every class capsule but one is masked
  out, the true class's in training and the predicted class's at evaluation, and three fully
  connected layers (512 and 1,024 ReLU units, 784 sigmoid units) redraw the image. The loss adds
  0.0005 × the sum of squared differences to the pixel intensities.

8,215,568 parameters (the paper's 8.2 M), 6,804,224 without the decoder (6.8 M).

How cnnzoo runs it:

* ``forward(x)`` returns the logits (capsule lengths). ``forward(x, target=y)`` (the trainer does
  this in training, because this ``forward`` takes a ``target``) returns :class:`CapsNetOutputs`
  ``(logits, reconstructions)``, masked by ``y`` in training and by the prediction in eval mode, and
  :meth:`CapsNet.loss` takes ``inputs=x`` (the trainer passes it, because this ``loss`` takes
  ``inputs``) to add the reconstruction term. :meth:`CapsNet.reconstruct` redraws images masked by
  the prediction.
* The trainer feeds normalised images; the reconstruction target undoes the normalisation
  (``input_mean`` and ``input_std``, Fashion-MNIST's by default: cnnzoo's default data) to get the
  paper's pixel intensities in [0, 1]. Give MNIST's constants when training on MNIST.
* The decoder's first layer (160 → 512) is stored as one 16 × 512 block per class
  (:class:`ClassCapsuleLinear`, weight ``(num_classes, 16, 512)``): on a masked input that is the
  paper's fully connected layer, and so ``reset_classifier`` replaces the class blocks with the
  class capsules and keeps the rest; the layer's bias is the decoder's ``bias1``.
* The input must give the 6×6 grid of primary capsules that DigitCaps is built for: 28×28 (and
  27×27, the minimum, whose reconstruction target is zero-padded to 28×28); ``image_size`` builds
  the network for another size.
* Init (the paper gives none): W_ij ~ N(0, 0.01²) as the authors' code; the convs and linear
  layers keep PyTorch's default, the biases 0.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.data.constants import FASHION_MNIST_MEAN, FASHION_MNIST_STD
from cnnzoo.errors import ConfigError
from cnnzoo.layers.conv import ConvNormAct
from cnnzoo.models.base import FeatureInfo, InputShapeError, ZooModel
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "CapsNet",
    "CapsNetOutputs",
    "PrimaryCapsules",
    "ClassCapsules",
    "ClassCapsuleLinear",
    "CapsuleDecoder",
    "Squash",
    "CapsuleLength",
    "squash",
    "margin_loss",
    "PAPER",
    "capsnet",
]

PAPER = "S. Sabour, N. Frosst, G. E. Hinton. Dynamic Routing Between Capsules. NIPS 2017."


def squash(s: Tensor, dim: int = -1, eps: float = 1e-8) -> Tensor:
    """Eq. 1: ``‖s‖² / (1 + ‖s‖²) · s / ‖s‖``: the direction kept, the length squashed into [0, 1).

    ``eps`` keeps the gradient finite at s = 0 (where ‖s‖ has none).
    """
    sq = (s * s).sum(dim, keepdim=True)
    return s * (sq / (1.0 + sq) / torch.sqrt(sq + eps))


def margin_loss(
    lengths: Tensor, target: Tensor, m_plus: float = 0.9, m_minus: float = 0.1, lam: float = 0.5
) -> Tensor:
    """Eq. 4, summed over the classes and averaged over the batch."""
    t = F.one_hot(target, lengths.shape[1]).to(lengths.dtype)
    present = t * F.relu(m_plus - lengths).square()
    absent = lam * (1.0 - t) * F.relu(lengths - m_minus).square()
    return (present + absent).sum(1).mean()


class Squash(nn.Module):
    """:func:`squash` over ``dim`` (the capsule nonlinearity, a row of type ``act``)."""

    cost_type = "act"

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, s: Tensor) -> Tensor:
        return squash(s, self.dim)


class CapsuleLength(nn.Module):
    """The length of each capsule, ``‖v‖`` over the last dimension: the class scores."""

    cost_type = "act"

    def forward(self, v: Tensor) -> Tensor:
        return v.norm(dim=-1)


class CapsNetOutputs(NamedTuple):
    """What ``CapsNet.forward(x, target=y)`` returns: the logits and the reconstructed images."""

    logits: Tensor  # (N, num_classes): the class capsules' lengths
    reconstructions: Tensor  # (N, C·H·W) in [0, 1]


class PrimaryCapsules(nn.Module):
    """PrimaryCaps: a k×k/s conv to ``types × dim`` channels, squashed per capsule.

    The output keeps the conv's map, ``(N, types·dim, H, W)``, each group of ``dim`` consecutive
    channels at a position one squashed capsule. Submodules ``conv``, ``squash``.
    """

    cost_type = "block"

    def __init__(
        self, in_channels: int, types: int = 32, dim: int = 8, kernel: int = 9, stride: int = 2
    ) -> None:
        super().__init__()
        self.types, self.dim = types, dim
        self.conv = nn.Conv2d(in_channels, types * dim, kernel, stride)
        self.squash = Squash(dim=2)

    def forward(self, x: Tensor) -> Tensor:
        u = self.conv(x)  # (N, types·dim, H, W)
        n, _, h, w = u.shape
        return self.squash(u.view(n, self.types, self.dim, h, w)).view(n, -1, h, w)

    def capsules(self, x: Tensor) -> Tensor:
        """The squashed map as capsules, ``(N, H·W·types, dim)`` (position-major, as the authors')."""
        n, _, h, w = x.shape
        return (
            x.view(n, self.types, self.dim, h, w)
            .permute(0, 3, 4, 1, 2)
            .reshape(n, h * w * self.types, self.dim)
        )

    def cost_details(self) -> dict[str, int]:
        return {"capsule types": self.types, "dim": self.dim}


class ClassCapsules(nn.Module):
    """DigitCaps: a ``out_dim`` capsule per class, routed from ``in_caps`` capsules (Procedure 1).

    Args:
        in_caps: number of input capsules (1,152 = 6·6·32).
        in_dim: their dimension (8).
        num_classes: output capsules (10).
        out_dim: their dimension (16).
        iterations: routing iterations r (3).

    ``weight`` is ``(num_classes, in_caps, out_dim, in_dim)``: W_ij for class j and input i.

    Raises:
        ConfigError: for ``iterations`` that is not an int of at least 1.
    """

    cost_type = "routing"

    def __init__(
        self, in_caps: int, in_dim: int, num_classes: int, out_dim: int, iterations: int = 3
    ) -> None:
        super().__init__()
        if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
            raise ConfigError(
                f"routing_iterations must be an int of at least 1 (the paper routes 3 times), got {iterations!r}; "
                "pass routing_iterations=3"
            )
        self.in_caps, self.in_dim, self.num_classes, self.out_dim = in_caps, in_dim, num_classes, out_dim
        self.iterations = iterations
        self.weight = nn.Parameter(torch.empty(num_classes, in_caps, out_dim, in_dim))
        if not self.weight.is_meta:  # a meta build only needs the shapes
            nn.init.normal_(self.weight, std=0.01)

    def forward(self, u: Tensor) -> Tensor:
        """``u``: ``(N, in_caps, in_dim)`` → ``v``: ``(N, num_classes, out_dim)``."""
        n, (j, i, o, k) = u.shape[0], self.weight.shape
        # Eq. 2 as one matrix product per input capsule, then laid out (N·J, I, O) so that the
        # routing's sums over i are batched matrix-vector products (einsum's choice is 1.5x slower)
        w = self.weight.permute(1, 3, 0, 2).reshape(i, k, j * o)  # (I, K, J·O)
        u_hat = torch.bmm(u.transpose(0, 1), w).view(i, n * j, o).transpose(0, 1).contiguous()
        b = u_hat.new_zeros(n, j, i)  # routing logits b_ij
        for r in range(self.iterations):
            c = b.softmax(dim=1).view(n * j, 1, i)  # couplings: each input capsule's over the classes
            v = squash(torch.bmm(c, u_hat))  # s_j = Σ_i c_ij û_j|i, squashed: (N·J, 1, O)
            if r + 1 < self.iterations:
                b = b + torch.bmm(u_hat, v.transpose(1, 2)).view(n, j, i)  # agreement û_j|i · v_j
        return v.view(n, j, o)

    def cost_details(self) -> dict[str, int]:
        return {"iterations": self.iterations, "in caps": self.in_caps, "out caps": self.num_classes}

    def extra_repr(self) -> str:
        return (
            f"in_caps={self.in_caps}, in_dim={self.in_dim}, num_classes={self.num_classes}, "
            f"out_dim={self.out_dim}, iterations={self.iterations}"
        )


class ClassCapsuleLinear(nn.Module):
    """The decoder's first layer on masked capsules: ``y = Σ_j mask_j · v_j W_j`` (no bias).

    ``weight`` is ``(num_classes, in_dim, out_features)``; on a one-hot ``mask`` this is a fully
    connected layer from the flattened, masked ``(num_classes · in_dim)`` vector.
    """

    cost_type = "linear"

    def __init__(self, num_classes: int, in_dim: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_dim, out_features))
        bound = 1.0 / math.sqrt(num_classes * in_dim)  # nn.Linear's default for the full layer
        if not self.weight.is_meta:
            nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, v: Tensor, mask: Tensor) -> Tensor:
        """``v``: ``(N, num_classes, in_dim)``, ``mask``: ``(N, num_classes)`` → ``(N, out_features)``."""
        masked = (v * mask.unsqueeze(-1)).flatten(1)  # (N, num_classes·in_dim), as the paper's input
        return masked @ self.weight.flatten(0, 1)


class CapsuleDecoder(nn.Module):
    """The reconstruction network (Fig. 2): masked class capsules → FC 512 ReLU → FC 1024 ReLU →
    FC ``out`` sigmoid. Submodules ``fc1`` (:class:`ClassCapsuleLinear`, the class-indexed part that
    ``reset_classifier`` replaces), ``fc2``, ``fc3``; ``bias1`` is ``fc1``'s bias."""

    cost_type = "head"
    head_name = "fc1"

    def __init__(self, num_classes: int, in_dim: int, hidden: tuple[int, int], out_features: int) -> None:
        super().__init__()
        self.fc1 = ClassCapsuleLinear(num_classes, in_dim, hidden[0])
        self.bias1 = nn.Parameter(torch.zeros(hidden[0]))
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], out_features)

    def forward(self, v: Tensor, mask: Tensor) -> Tensor:
        x = F.relu(self.fc1(v, mask) + self.bias1)
        return torch.sigmoid(self.fc3(F.relu(self.fc2(x))))  # (N, out_features)


class CapsNet(ZooModel):
    """CapsNet (Sabour et al. 2017); see the module docstring.

    Stages (``feature_info``): ``conv1`` at 1/1 (256 channels), ``primary_caps`` at 1/2 (the 32 × 8D
    capsules as a 256-channel map). Classifier ``digit_caps`` (its output has one capsule per
    class); the decoder is an auxiliary head (``aux_head_names``), reset with it.

    Args:
        num_classes: class capsules.
        in_chans: input channels.
        routing_iterations: r of Procedure 1 (3).
        image_size: the input side the network is built for (28).
        recon_weight: the reconstruction loss's weight (0.0005).
        input_mean, input_std: the normalisation of the inputs, undone for the reconstruction target.

    Raises:
        ConfigError: for routing iterations below 1 (or not an int).
    """

    # Training reconstructs from the true class's capsule and adds the reconstruction error.
    train_forward_takes_target = True
    loss_takes_inputs = True

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_chans: int = 1,
        routing_iterations: int = 3,
        image_size: int = 28,
        recon_weight: float = 0.0005,
        input_mean: tuple[float, ...] = FASHION_MNIST_MEAN,
        input_std: tuple[float, ...] = FASHION_MNIST_STD,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans  # checked on assignment
        self.image_size, self.recon_weight = image_size, recon_weight
        self.input_mean, self.input_std = tuple(input_mean), tuple(input_std)
        self.conv1 = ConvNormAct(in_chans, 256, 9, padding=0, norm_layer=None)  # conv + bias + ReLU
        self.primary_caps = PrimaryCapsules(256, types=32, dim=8, kernel=9, stride=2)
        self.grid = ((image_size - 8) - 9) // 2 + 1  # 6 for 28
        self.digit_caps = ClassCapsules(self.grid**2 * 32, 8, num_classes, 16, routing_iterations)
        self.length = CapsuleLength()
        self.decoder = CapsuleDecoder(num_classes, 16, (512, 1024), in_chans * image_size**2)
        self.head_name, self.aux_head_names = "digit_caps", ("decoder",)
        self.feature_info = [FeatureInfo("conv1", 256, 1), FeatureInfo("primary_caps", 256, 2)]
        self.min_input_size = 2 * self.grid + 15  # the smallest side with a grid x grid primary map

    def check_input(self, x: Tensor) -> None:
        super().check_input(x)
        grid = (
            tuple(((s - 8) - 9) // 2 + 1 for s in x.shape[2:])
            if isinstance(x, Tensor) and x.dim() == 4
            else None
        )
        if grid is not None and grid != (self.grid, self.grid):
            raise InputShapeError(
                f"CapsNet takes {self.image_size}x{self.image_size} inputs (DigitCaps is built for "
                f"{self.grid}x{self.grid}x32 primary capsules), got {x.shape[2]}x{x.shape[3]}. Resize or "
                f"pad the images to {self.image_size}x{self.image_size}, or build it with image_size={x.shape[2]}."
            )

    def forward_features(self, x: Tensor) -> Tensor:
        return self.primary_caps(self.conv1(x))  # (N, 256, 6, 6): squashed 8D capsules

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        u = self.primary_caps.capsules(x)  # (N, 1152, 8)
        return u.flatten(1) if pre_logits else self.length(self.digit_caps(u))  # (N, num_classes)

    def _capsules(self, x: Tensor) -> Tensor:
        return self.digit_caps(self.primary_caps.capsules(self.forward_features(x)))  # (N, J, 16)

    def forward(self, x: Tensor, target: Tensor | None = None) -> Tensor | CapsNetOutputs:
        """The logits; given ``target``, :class:`CapsNetOutputs` with the reconstructions (masked by
        the target in training, by the prediction in eval mode)."""
        v = self._capsules(x)
        logits = self.length(v)
        if target is None:
            return logits
        picked = target if self.training else logits.argmax(1)
        return CapsNetOutputs(logits, self.decoder(v, F.one_hot(picked, self.num_classes).to(v.dtype)))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Images redrawn from the predicted class's capsule, ``(N, C, H, W)`` in [0, 1]."""
        v = self._capsules(x)
        mask = F.one_hot(self.length(v).argmax(1), self.num_classes).to(v.dtype)
        return self.decoder(v, mask).view(x.shape[0], self.in_chans, self.image_size, self.image_size)

    def _pixels(self, inputs: Tensor) -> Tensor:
        """The reconstruction target: the inputs un-normalised to [0, 1], at ``image_size``."""
        c = inputs.shape[1]
        mean = (
            inputs.new_tensor(self.input_mean).expand(c)
            if len(self.input_mean) == 1
            else inputs.new_tensor(self.input_mean)
        )
        std = (
            inputs.new_tensor(self.input_std).expand(c)
            if len(self.input_std) == 1
            else inputs.new_tensor(self.input_std)
        )
        x = inputs * std.view(1, c, 1, 1) + mean.view(1, c, 1, 1)
        dh, dw = self.image_size - x.shape[2], self.image_size - x.shape[3]
        return F.pad(x, (0, dw, 0, dh)).flatten(1) if dh or dw else x.flatten(1)

    def loss(
        self, output: Tensor | CapsNetOutputs, target: Tensor, *, inputs: Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> Tensor:  # fmt: skip
        """The margin loss (Eq. 4), plus 0.0005 × the reconstruction's summed squared error when
        ``output`` carries reconstructions and ``inputs`` are given.

        Raises:
            ConfigError: for label smoothing (the margin loss has no soft targets).
        """
        if label_smoothing:
            raise ConfigError(
                f"CapsNet trains on the margin loss, which has no label smoothing (got {label_smoothing}); "
                "leave --label-smoothing at 0"
            )
        if not isinstance(output, CapsNetOutputs):
            return margin_loss(output, target)
        loss = margin_loss(output.logits, target)
        if inputs is not None:
            sse = (output.reconstructions - self._pixels(inputs)).square().sum(1).mean()
            loss = loss + self.recon_weight * sse
        return loss

    def _new_classifier(self, old: nn.Module, num_classes: int) -> nn.Module:
        """Fresh class capsules, or fresh class blocks of the decoder's first layer."""
        w = old.weight
        if isinstance(old, ClassCapsules):
            new: nn.Module = ClassCapsules(old.in_caps, old.in_dim, num_classes, old.out_dim, old.iterations)
        elif isinstance(old, ClassCapsuleLinear):
            new = ClassCapsuleLinear(num_classes, w.shape[1], w.shape[2])
        else:
            return super()._new_classifier(old, num_classes)
        return new.to(device=w.device, dtype=w.dtype)


def _cfg() -> ModelConfig:
    return ModelConfig(
        input_size=(1, 28, 28),
        min_input_size=27,  # 27 and 28 both give the 6x6 grid of primary capsules
        num_classes=10,
        paper=PAPER,
        year=2017,
        family="capsnet",
        mean=FASHION_MNIST_MEAN,  # what the reconstruction target undoes by default (see the docstring)
        std=FASHION_MNIST_STD,
        small_input_size=28,
        small_input_mode="pad",
        notes="the paper's; the decoder's fc1 stored as class blocks",
        extra={
            "reported": {
                "dataset": "mnist",
                "error": 0.25,
                "source": "Sabour et al. 2017, Table 1 (3 routing iterations, with reconstruction)",
            }
        },
    )


def _create_capsnet(**kwargs: Any) -> CapsNet:
    return CapsNet(**kwargs)


@register_model(_cfg())
def capsnet(**kwargs: Any) -> CapsNet:
    """CapsNet (Sabour et al. 2017): 8.2 M parameters with the decoder. Options as :class:`CapsNet`."""
    return _create_capsnet(**kwargs)
