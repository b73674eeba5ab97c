"""Training-time augmentation, batched on tensors and driven by an explicit generator.

Every op works on a whole ``(N, C, H, W)`` float batch that is already normalised, on whatever
device the batch lives on, with per-sample randomness and no Python loop over samples. All random
numbers are drawn on the CPU from the ``torch.Generator`` passed to :meth:`BatchAugment.__call__`
and then moved to the batch's device, so a run that saves and restores that generator's state
resumes bit-exactly, on any device.

The ops, in the order they are applied:

=================  ===============================================================================
op                 what it does (source)
=================  ===============================================================================
scale jitter       VGG (Simonyan & Zisserman 2015, §3.1): rescale so the short side is
                   S ~ U[S_min, S_max], then take a random ``out_size`` crop. **S is drawn once per
                   batch** (the paper draws it per image); per-sample sizes would need a Python
                   loop, and over an epoch every S is still seen with the right frequency.
random crop        ResNet on CIFAR (He et al. 2016, §4.2): pad by ``crop_padding`` on each side
                   (with ``fill``: 0 in normalised units is the dataset mean) and take a random crop
                   of ``out_size`` (default: the input size); per-sample offsets, uniform.
                   Without padding but with ``out_size`` smaller than the input this is AlexNet's
                   random 224 crop of a 256 image (Krizhevsky et al. 2012, §4.1).
horizontal flip    per sample with probability ½ (AlexNet §4.1).
PCA lighting       AlexNet §4.1: add ``eigvec @ (α ⊙ eigval)`` to every pixel of an image, with one
                   α ~ N(0, σ²) per image and eigenvector, σ = ``pca_lighting`` (the paper: 0.1).
                   ``eigval``/``eigvec`` default to the ImageNet values used by fb.resnet.torch and
                   timm (pixel values in [0, 1]); the offset is divided by ``std`` (the dataset's
                   normalisation) when given, since the batch is already normalised. **One-channel
                   data** gets intensity jitter: the single eigenvector is 1 and the single
                   eigenvalue the pixel variance ``std²`` (1 when ``std`` is not given).
random erasing     Zhong et al. 2017 ("Random Erasing Data Augmentation"): with probability
                   ``random_erasing`` per sample, a rectangle of area 2–33% of the image and aspect
                   ratio in [0.3, 3.3] (log-uniform, as torchvision) is set to 0 (the "RE-0"
                   variant: the dataset mean, after normalisation). Ten candidate rectangles are
                   drawn per sample and the first that fits is used; if none fits nothing is erased
                   (torchvision's rule, vectorised).
=================  ===============================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from cnnzoo.errors import ConfigError

__all__ = [
    "BatchAugment",
    "build_augment",
    "IMAGENET_EIGVAL",
    "IMAGENET_EIGVEC",
    "random_crop",
    "random_hflip",
    "pca_lighting",
    "random_erasing",
    "scale_jitter",
]

# The PCA of ImageNet's RGB pixel values in [0, 1] (fb.resnet.torch, timm, GluonCV).
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)  # columns are the eigenvectors
ERASE_AREA = (0.02, 0.33)
ERASE_ASPECT = (0.3, 3.3)
ERASE_TRIES = 10


def _rand(generator: torch.Generator, *shape: int, device: torch.device) -> Tensor:
    return torch.rand(*shape, generator=generator).to(device)


def _same_format(y: Tensor, like: Tensor) -> Tensor:
    cl = (
        like.dim() == 4 and like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous()
    )
    return y.contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)


def _crop_at(x: Tensor, top: Tensor, left: Tensor, oh: int, ow: int) -> Tensor:
    """Per-sample crops ``x[n, :, top[n]:top[n]+oh, left[n]:left[n]+ow]``, without a loop over samples.

    ``unfold`` views every (oh, ow) window without copying; one advanced index picks each sample's.
    """
    n = x.shape[0]
    windows = x.unfold(2, oh, 1).unfold(3, ow, 1)  # (N, C, H-oh+1, W-ow+1, oh, ow), a view
    out = windows[torch.arange(n, device=x.device), :, top, left]  # (N, C, oh, ow)
    return _same_format(out, x)


def random_crop(
    x: Tensor,
    generator: torch.Generator,
    *,
    padding: int = 0,
    size: int | None = None,
    fill: float | Sequence[float] = 0.0,
) -> Tensor:
    """Pad by ``padding`` (value ``fill``, per channel if a sequence), then one random ``size`` crop each."""
    n, c, h, w = x.shape
    if padding:
        if isinstance(fill, int | float):
            x = torch.nn.functional.pad(x, (padding,) * 4, value=float(fill))
        else:
            base = torch.tensor(fill, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
            x = torch.nn.functional.pad(x - base, (padding,) * 4) + base
    oh = ow = size if size is not None else None
    oh, ow = (oh or h), (ow or w)
    ph, pw = x.shape[-2:]
    if oh > ph or ow > pw:
        raise ConfigError(f"cannot crop {oh}x{ow} from {ph}x{pw} images; lower out_size or raise the padding")
    top = (_rand(generator, n, device=torch.device("cpu")) * (ph - oh + 1)).long().clamp_(max=ph - oh)
    left = (_rand(generator, n, device=torch.device("cpu")) * (pw - ow + 1)).long().clamp_(max=pw - ow)
    return _crop_at(x, top.to(x.device), left.to(x.device), oh, ow)


def random_hflip(x: Tensor, generator: torch.Generator, p: float = 0.5) -> Tensor:
    """Mirror each sample left-right with probability ``p``."""
    flip = (_rand(generator, x.shape[0], device=x.device) < p).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(3), x)


def pca_lighting(
    x: Tensor,
    generator: torch.Generator,
    *,
    sigma: float,
    eigval: Tensor,
    eigvec: Tensor,
    std: Tensor | None = None,
) -> Tensor:
    """AlexNet's colour augmentation: ``x + eigvec @ (α ⊙ eigval) / std``, α ~ N(0, σ²) per image."""
    n, c = x.shape[:2]
    alpha = torch.randn(n, eigval.numel(), generator=generator) * sigma  # CPU
    delta = (alpha * eigval.view(1, -1)) @ eigvec.T  # (N, C): Σ_j eigvec[c, j] α_j λ_j
    if std is not None:
        delta = delta / std.view(1, -1)
    return x + delta.to(device=x.device, dtype=x.dtype).view(n, c, 1, 1)


def scale_jitter(x: Tensor, generator: torch.Generator, *, smin: int, smax: int, size: int) -> Tensor:
    """VGG's training scale: resize the batch to short side S ~ U[smin, smax], then random ``size`` crops."""
    s = int(torch.randint(smin, smax + 1, (1,), generator=generator))
    if s != min(x.shape[-2:]):
        x = _same_format(TF.resize(x, [s], antialias=True), x)
    return random_crop(x, generator, size=size)


def random_erasing(
    x: Tensor,
    generator: torch.Generator,
    *,
    p: float,
    value: float = 0.0,
    area: tuple[float, float] = ERASE_AREA,
    aspect: tuple[float, float] = ERASE_ASPECT,
) -> Tensor:
    """Zhong et al. 2017: erase one random rectangle per sample with probability ``p`` (vectorised)."""
    n, _, h, w = x.shape
    k = ERASE_TRIES
    apply = torch.rand(n, generator=generator) < p
    frac = torch.empty(n, k).uniform_(area[0], area[1], generator=generator)
    log_r = torch.empty(n, k).uniform_(*torch.log(torch.tensor(aspect)).tolist(), generator=generator)
    r = torch.exp(log_r)
    target = frac * (h * w)
    eh = torch.sqrt(target * r).round().long()
    ew = torch.sqrt(target / r).round().long()
    fits = (eh >= 1) & (ew >= 1) & (eh <= h) & (ew <= w)
    first = torch.where(fits.any(1), fits.long().argmax(1), torch.zeros(n, dtype=torch.long))
    eh = eh.gather(1, first.view(-1, 1)).squeeze(1)
    ew = ew.gather(1, first.view(-1, 1)).squeeze(1)
    apply &= fits.any(1)
    u = torch.rand(n, 2, generator=generator)
    top = (u[:, 0] * (h - eh + 1).clamp(min=1)).long()
    left = (u[:, 1] * (w - ew + 1).clamp(min=1)).long()
    dev = x.device
    ys = torch.arange(h, device=dev).view(1, h)
    xs = torch.arange(w, device=dev).view(1, w)
    top, left, eh, ew, apply = (t.to(dev) for t in (top, left, eh, ew, apply))
    in_rows = (ys >= top.view(-1, 1)) & (ys < (top + eh).view(-1, 1))  # (N, H)
    in_cols = (xs >= left.view(-1, 1)) & (xs < (left + ew).view(-1, 1))  # (N, W)
    mask = (in_rows.view(n, 1, h, 1) & in_cols.view(n, 1, 1, w)) & apply.view(n, 1, 1, 1)
    return x.masked_fill(mask, value)


class BatchAugment:
    """A fixed sequence of batched augmentations (build it with :func:`build_augment`).

    Call it on a normalised float batch with the generator that owns the run's augmentation
    randomness: ``x = augment(x, generator)``. The output has the input's device, dtype and memory
    format; its side is ``out_size`` when set, else the input's.
    """

    def __init__(
        self,
        *,
        crop_padding: int = 0,
        hflip: bool = False,
        pca_lighting: float = 0.0,
        scale_jitter: tuple[int, int] | None = None,
        random_erasing: float = 0.0,
        out_size: int | None = None,
        eigval: Tensor | None = None,
        eigvec: Tensor | None = None,
        std: Tensor | None = None,
        fill: float | Sequence[float] = 0.0,
    ) -> None:
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.pca_sigma = pca_lighting
        self.scale_jitter = scale_jitter
        self.random_erasing = random_erasing
        self.out_size = out_size
        self.eigval = eigval
        self.eigvec = eigvec
        self.std = std
        self.fill = fill

    def _lighting_basis(self, c: int) -> tuple[Tensor, Tensor]:
        if self.eigval is not None and self.eigvec is not None:
            val, vec = self.eigval, self.eigvec
        elif c == 3:
            val, vec = torch.tensor(IMAGENET_EIGVAL), torch.tensor(IMAGENET_EIGVEC)
        elif c == 1:
            var = float(self.std[0]) ** 2 if self.std is not None else 1.0
            val, vec = torch.tensor([var]), torch.ones(1, 1)
        else:
            raise ConfigError(
                f"PCA lighting has no default eigenvectors for {c}-channel images; "
                "pass eigval and eigvec (the PCA of your pixel values)"
            )
        if vec.shape != (c, val.numel()):
            raise ConfigError(
                f"PCA lighting: eigvec must be ({c}, k) with k = len(eigval) = {val.numel()}, "
                f"got {tuple(vec.shape)}"
            )
        return val.float(), vec.float()

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"augment expects a (N, C, H, W) batch, got shape {tuple(x.shape)}")
        x_in = x
        if self.scale_jitter is not None:
            smin, smax = self.scale_jitter
            x = scale_jitter(x, generator, smin=smin, smax=smax, size=self.out_size or smin)
        if self.crop_padding or (
            self.scale_jitter is None and self.out_size is not None and self.out_size != x.shape[-1]
        ):
            x = random_crop(x, generator, padding=self.crop_padding, size=self.out_size, fill=self.fill)
        if self.hflip:
            x = random_hflip(x, generator)
        if self.pca_sigma > 0:
            val, vec = self._lighting_basis(x.shape[1])
            std = self.std.float() if self.std is not None and self.std.numel() == x.shape[1] else None
            x = pca_lighting(x, generator, sigma=self.pca_sigma, eigval=val, eigvec=vec, std=std)
        if self.random_erasing > 0:
            x = random_erasing(x, generator, p=self.random_erasing)
        return _same_format(x, x_in)  # elementwise ops may return the default layout

    def __repr__(self) -> str:
        parts = []
        if self.scale_jitter is not None:
            parts.append(f"scale_jitter={tuple(self.scale_jitter)}")
        if self.crop_padding:
            parts.append(f"crop_padding={self.crop_padding}")
        if self.out_size is not None:
            parts.append(f"out_size={self.out_size}")
        if self.hflip:
            parts.append("hflip")
        if self.pca_sigma:
            parts.append(f"pca_lighting={self.pca_sigma}")
        if self.random_erasing:
            parts.append(f"random_erasing={self.random_erasing}")
        return f"BatchAugment({', '.join(parts)})"


def build_augment(
    *,
    crop_padding: int = 0,
    hflip: bool = False,
    pca_lighting: float = 0.0,
    scale_jitter: tuple[int, int] | None = None,
    random_erasing: float = 0.0,
    out_size: int | None = None,
    eigval=None,
    eigvec=None,
    std: Sequence[float] | None = None,
    fill: float | Sequence[float] = 0.0,
) -> BatchAugment | None:
    """The training augmentation for a config, or ``None`` when every op is off.

    Args:
        crop_padding: pad each side by this many pixels, then random-crop back (0: off).
        hflip: random horizontal flips.
        pca_lighting: σ of AlexNet's PCA lighting (0: off; the paper: 0.1).
        scale_jitter: ``(S_min, S_max)`` for VGG's scale jittering (needs ``out_size``, e.g. 224).
        random_erasing: probability of random erasing per sample (0: off; Zhong et al.: 0.5).
        out_size: the crop side (default: the input side).
        eigval, eigvec: the PCA of the pixel values (default ImageNet's, or intensity for 1 channel).
        std: the dataset's normalisation std per channel: lighting offsets are divided by it.
        fill: the padding value in normalised units (0 = the dataset mean), scalar or per channel.

    Raises:
        ConfigError: impossible values (negative padding, probabilities outside [0, 1], ...).
    """
    if crop_padding < 0:
        raise ConfigError(f"crop_padding must be >= 0, got {crop_padding}")
    if pca_lighting < 0:
        raise ConfigError(f"pca_lighting (σ) must be >= 0, got {pca_lighting}")
    if not 0 <= random_erasing <= 1:
        raise ConfigError(f"random_erasing is a probability in [0, 1], got {random_erasing}")
    if out_size is not None and out_size < 1:
        raise ConfigError(f"out_size must be >= 1, got {out_size}")
    if scale_jitter is not None:
        if len(scale_jitter) != 2 or not 1 <= scale_jitter[0] <= scale_jitter[1]:
            raise ConfigError(
                f"scale_jitter must be (S_min, S_max) with 1 <= S_min <= S_max, got {scale_jitter}"
            )
        if out_size is not None and out_size > scale_jitter[0]:
            raise ConfigError(
                f"scale_jitter S_min {scale_jitter[0]} is below the crop out_size {out_size}; "
                "the crop must fit inside the smallest rescaled image"
            )
        scale_jitter = (int(scale_jitter[0]), int(scale_jitter[1]))
    if not (crop_padding or hflip or pca_lighting or scale_jitter or random_erasing or out_size):
        return None
    val = None if eigval is None else torch.as_tensor(eigval, dtype=torch.float32).flatten()
    vec = None if eigvec is None else torch.as_tensor(eigvec, dtype=torch.float32)
    if (val is None) != (vec is None):
        raise ConfigError("pass both eigval and eigvec for PCA lighting, or neither")
    if vec is not None and vec.dim() == 1:
        vec = vec.view(-1, 1)
    std_t = None if std is None else torch.as_tensor(std, dtype=torch.float32).flatten()
    return BatchAugment(
        crop_padding=crop_padding,
        hflip=hflip,
        pca_lighting=pca_lighting,
        scale_jitter=scale_jitter,
        random_erasing=random_erasing,
        out_size=out_size,
        eigval=val,
        eigvec=vec,
        std=std_t,
        fill=fill,
    )
