"""Test-time evaluation modes: plain, center crop, flip averaging and AlexNet's 10-crop.

``predict(model, x, mode=...)`` returns logits for a normalised ``(N, C, H, W)`` batch:

==========  ======================================================================================
mode        what the model sees
==========  ======================================================================================
``none``    ``x`` as it is.
``center``  the central ``crop`` × ``crop`` window (the single-crop evaluation of the papers).
``flip``    ``x`` and its left-right mirror (airbench, "How to Train Your ResNet").
``shift``   ``x``, its mirror, and both shifted by one pixel up-left and down-right (edge pixels
            repeated): six views (airbench's multi-crop TTA, Jordan 2024).
``tencrop`` the four corner and the central ``crop`` × ``crop`` windows and their mirrors
            (Krizhevsky et al. 2012, §4.1: "averaging the predictions ... on the ten patches").
==========  ======================================================================================

**What is averaged.** For ``flip``, ``shift`` and ``tencrop`` the views' *softmax probabilities* are averaged,
as AlexNet does, and their log is returned: ``log(mean_v softmax(z_v))``. These are valid logits
(``softmax`` of them is the averaged distribution, ``argmax`` the averaged prediction, and
``cross_entropy`` on them the loss of the averaged prediction), but they are normalised
log-probabilities, not the raw logits of any single view. ``none`` and ``center`` return the
model's raw logits.

``predict`` neither switches the model to eval mode nor disables gradients: call it under
``torch.no_grad()`` on a model in ``eval()``. A train-mode output with a ``.logits`` field
(GoogLeNet's aux heads) is reduced to its main logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import Tensor, nn

from cnnzoo.errors import ConfigError

__all__ = ["EVAL_MODES", "predict"]

EVAL_MODES = ("none", "center", "flip", "shift", "tencrop")


def _logits(model: nn.Module, x: Tensor) -> Tensor:
    out = model(x)
    return getattr(out, "logits", out)


def _mean_log_softmax(logits: list[Tensor]) -> Tensor:
    """log of the mean of the views' softmax, computed stably in float32."""
    stacked = torch.stack([z.float().log_softmax(1) for z in logits])  # (V, N, K)
    return torch.logsumexp(stacked, 0) - math.log(len(logits))


def _crop_side(x: Tensor, crop: int | None, mode: str) -> int:
    if crop is None:
        raise ConfigError(f"eval mode {mode!r} needs a crop size (eval_crop), e.g. 224 for 256-pixel images")
    h, w = x.shape[-2:]
    if crop < 1 or crop > min(h, w):
        raise ConfigError(
            f"eval crop {crop} does not fit {h}x{w} inputs; use a crop between 1 and {min(h, w)}"
        )
    return crop


def predict(model: nn.Module, x: Tensor, *, mode: str = "none", crop: int | None = None) -> Tensor:
    """Logits of ``model`` for the batch ``x`` under an evaluation mode (see the module docstring).

    Args:
        model: any classifier; outputs with a ``.logits`` field are reduced to it.
        x: a normalised ``(N, C, H, W)`` batch.
        mode: ``"none"``, ``"center"``, ``"flip"``, ``"shift"`` or ``"tencrop"``.
        crop: the crop side for ``center`` and ``tencrop`` (required there; ``center`` with a crop
            equal to the input side is ``none``). ``flip`` and ``shift`` with a crop use the center crop.

    Returns:
        ``(N, num_classes)`` logits: raw for ``none``/``center``, log of the averaged softmax for
        ``flip``/``shift``/``tencrop``.
    """
    if mode not in EVAL_MODES:
        raise ConfigError(f"unknown eval mode {mode!r}; choose one of {', '.join(EVAL_MODES)}")
    if mode == "none":
        return _logits(model, x)
    if mode == "center":
        c = _crop_side(x, crop, mode)
        return _logits(
            model, x if c == min(x.shape[-2:]) and x.shape[-2] == x.shape[-1] else TF.center_crop(x, [c, c])
        )
    if mode in ("flip", "shift"):
        if crop is not None:
            c = _crop_side(x, crop, mode)
            x = TF.center_crop(x, [c, c])
        views = [x]
        if mode == "shift":
            h, w = x.shape[-2:]
            padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
            views += [padded[..., :h, :w], padded[..., 2:, 2:]]  # content moved down-right, up-left
        return _mean_log_softmax([_logits(model, v) for u in views for v in (u, u.flip(3))])
    c = _crop_side(x, crop, mode)
    views = TF.ten_crop(x, [c, c])  # tl, tr, bl, br, center, then the same of the mirror
    return _mean_log_softmax([_logits(model, v) for v in views])
