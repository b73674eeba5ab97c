"""Batched input adaptation: uint8 images in memory -> normalised float model inputs.

Done per batch on the training device, so the dataset stays small (uint8, native size) and the
same code serves LeNet's 28→32 padding and the ImageNet models' upsampling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from cnnzoo.errors import ConfigError

__all__ = ["adapt_images", "resolve_input"]


#: The largest input side the feeds produce (the zoo's papers use 224 to 331).
MAX_INPUT_SIDE = 4096


def resolve_input(cfg, size: int | None, source_side: int) -> tuple[int, str]:
    """The side and mode (``"pad"`` or ``"resize"``) to feed ``cfg``'s model from ``source_side`` images.

    ``size`` (the CLI's ``--input-size``) wins; else the config's ``small_input_size`` for small
    sources, else the paper's input size. Padding only applies when it is what the config asks
    for and the target is at least the source.
    """
    side = size or cfg.small_input_size or cfg.input_size[-1]
    if side > MAX_INPUT_SIDE:  # a typo (an extra zero) would allocate gigabytes per batch
        raise ConfigError(
            f"--input-size {side} is larger than {MAX_INPUT_SIDE}, the largest side cnnzoo feeds; "
            f"{cfg.name} was designed for {cfg.input_size[-1]}"
        )
    if side < cfg.min_input_size:
        raise ConfigError(
            f"--input-size {side} is below {cfg.name}'s minimum input size {cfg.min_input_size}; "
            f"use --input-size {cfg.min_input_size} or more"
        )
    if side == source_side:
        return side, "none"
    mode = cfg.small_input_mode if side > source_side else "resize"
    return side, mode


def adapt_images(
    images: Tensor,
    *,
    size: int,
    mode: str,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    in_chans: int | None = None,
    dtype: torch.dtype = torch.float32,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> Tensor:
    """Turn a uint8 (N, C, H, W) batch into the model's normalised float input.

    Padding happens before normalisation, so the border takes the background value (LeNet's
    convention: 28×28 digits centred in a 32×32 field). Resizing is bilinear, after scaling to
    [0, 1]. A 1-channel batch is repeated for a 3-channel model and vice versa averaged.
    """
    x = images.to(dtype) / 255.0
    h, w = x.shape[-2:]
    if mode == "pad":
        ph, pw = size - h, size - w
        if ph < 0 or pw < 0:
            raise ValueError(f"cannot pad {h}x{w} images to a smaller {size}x{size}")
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
    elif mode == "resize":
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < h)
    elif mode != "none":
        raise ValueError(f"mode must be 'pad', 'resize' or 'none', got {mode!r}")
    c = x.shape[1]
    if in_chans is not None and in_chans != c:
        if c == 1:
            x = x.expand(-1, in_chans, -1, -1)
        elif in_chans == 1:
            x = x.mean(1, keepdim=True)
        else:
            raise ValueError(f"cannot adapt {c}-channel images to a {in_chans}-channel model")
    m = torch.tensor(mean, dtype=dtype, device=x.device)
    s = torch.tensor(std, dtype=dtype, device=x.device)
    if m.numel() != x.shape[1]:
        m, s = m.mean().expand(x.shape[1]), s.mean().expand(x.shape[1])
    x = (x - m.view(1, -1, 1, 1)) / s.view(1, -1, 1, 1)
    return x.contiguous(memory_format=memory_format)
