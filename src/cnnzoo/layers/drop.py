"""Stochastic depth: :class:`DropPath` drops a residual branch, for a whole mini-batch or per sample.

Huang, Sun, Liu, Sedra, Weinberger, "Deep Networks with Stochastic Depth", ECCV 2016, §3: in
training, block l's branch survives with probability p_l and is otherwise skipped for the whole
mini-batch, ``H_l = ReLU(b_l · f_l(H_{l−1}) + id(H_{l−1}))`` with ``b_l ~ Bernoulli(p_l)``; at test
time every branch runs, scaled by its survival probability, ``H_l = ReLU(p_l · f_l(H) + id(H))``.
Skipping the branch (not computing it and multiplying by zero) is where the paper's ~25% shorter
training comes from: a residual block asks :meth:`DropPath.drops_branch` before it computes its
branch, and returns its shortcut alone when the answer is yes.

timm, torchvision and EfficientNet's "drop connect" use another form: each *sample* of the
mini-batch keeps its branch with probability ``keep = 1 − drop_prob``, and survivors are scaled by
1/keep in training, so that evaluation is the identity (and a library's eval logits match).

Both forms and both scalings are options of the one layer:

==========  ======================  ====================================  ===========================
``mode``    ``scale`` (default)     training                              eval
==========  ======================  ====================================  ===========================
``batch``   ``"test"`` (the paper)  branch or nothing, unscaled           branch × keep
``batch``   ``"train"``             branch / keep or nothing              branch
``sample``  ``"train"`` (timm)      per-sample mask / keep                branch
``sample``  ``"test"``              per-sample mask, unscaled             branch × keep
==========  ======================  ====================================  ===========================

The batch coin is drawn from torch's default CPU generator (one draw per call of
:meth:`DropPath.drops_branch`), so seeded runs repeat. On the meta device (shape-only analysis)
no branch is ever skipped, so cost tables do not depend on chance.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from cnnzoo.errors import ConfigError

__all__ = ["DropPath", "DropMode", "DropScale", "drop_path", "as_drop_path"]

DropMode = Literal["batch", "sample"]
DropScale = Literal["train", "test"]
_DEFAULT_SCALE: dict[str, DropScale] = {"batch": "test", "sample": "train"}


def _check(drop_prob: float, mode: str, scale: str | None) -> DropScale:
    if not 0.0 <= drop_prob < 1.0:
        raise ConfigError(
            f"drop_prob must be in [0, 1) (the probability of dropping a branch), got {drop_prob}"
        )
    if mode not in _DEFAULT_SCALE:
        raise ConfigError(f"DropPath mode must be 'batch' or 'sample', got {mode!r}")
    scale = _DEFAULT_SCALE[mode] if scale is None else scale
    if scale not in ("train", "test"):
        raise ConfigError(
            f"DropPath scale must be 'train' (1/keep in training) or 'test' (keep at test), got {scale!r}"
        )
    return scale


def drop_path(
    x: Tensor,
    drop_prob: float = 0.0,
    training: bool = False,
    *,
    mode: DropMode = "sample",
    scale: DropScale | None = None,
) -> Tensor:
    """Functional drop path of a branch ``x`` (N, ...), complete in itself (see the module docstring).

    In ``"batch"`` mode a dropped branch comes back as zeros (it was computed; a block that skips
    the computation uses :meth:`DropPath.drops_branch` instead).
    """
    scale = _check(drop_prob, mode, scale)
    keep = 1.0 - drop_prob
    if drop_prob == 0.0:
        return x
    if not training:
        return x * keep if scale == "test" else x
    if mode == "batch":
        if not x.is_meta and torch.rand((), device="cpu").item() < drop_prob:
            return torch.zeros_like(x)
        return x / keep if scale == "train" else x
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * (mask / keep if scale == "train" else mask)


class DropPath(nn.Module):
    """Stochastic depth on a residual branch.

    Args:
        drop_prob: probability of dropping the branch, 1 − p_l, in [0, 1).
        mode: ``"batch"`` (Huang et al.: one coin for the mini-batch, the default) or ``"sample"``
            (one coin per sample: timm, torchvision, EfficientNet's drop connect).
        scale: ``"test"`` (survivors unscaled, eval multiplies by keep: the paper) or ``"train"``
            (survivors × 1/keep in training, eval is the identity); default per mode, as above.

    In a residual block::

        if self.drop_path is not None and self.drop_path.drops_branch(x):
            return act(shortcut)                       # the branch is never computed
        out = self.drop_path(branch(x), survived=True)  # the survivor's scaling (or the mask)

    Called as ``drop_path(x)`` (no ``survived``) it is complete in itself: in batch mode it draws
    its own coin and returns zeros for a dropped branch.
    """

    cost_type = "drop_path"

    def __init__(
        self, drop_prob: float = 0.0, *, mode: DropMode = "batch", scale: DropScale | None = None
    ) -> None:
        super().__init__()
        self.scale = _check(drop_prob, mode, scale)
        self.drop_prob = float(drop_prob)
        self.mode = mode

    @property
    def keep_prob(self) -> float:
        """The survival probability p = 1 − drop_prob."""
        return 1.0 - self.drop_prob

    def drops_branch(self, x: Tensor | None = None) -> bool:
        """Draw this mini-batch's coin (batch mode, training only): ``True`` means skip the branch.

        Always ``False`` in eval, in sample mode, at ``drop_prob = 0`` and for a meta-device ``x``.
        """
        if not (self.training and self.mode == "batch" and self.drop_prob > 0.0):
            return False
        if x is not None and x.is_meta:
            return False
        return torch.rand((), device="cpu").item() < self.drop_prob

    def forward(self, x: Tensor, survived: bool = False) -> Tensor:
        """The branch after drop path; ``survived=True`` when :meth:`drops_branch` already said no."""
        if survived and self.mode == "batch":
            if self.drop_prob == 0.0:
                return x
            if self.training:
                return x / self.keep_prob if self.scale == "train" else x
            return x * self.keep_prob if self.scale == "test" else x
        return drop_path(x, self.drop_prob, self.training, mode=self.mode, scale=self.scale)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:g}, mode={self.mode!r}, scale={self.scale!r}"


def as_drop_path(drop_path: float | DropPath | None, mode: DropMode = "batch") -> DropPath | None:
    """A block's drop path: ``None`` for 0 or ``None``, a :class:`DropPath` of that rate (in
    ``mode``) for a float, or the given layer itself."""
    if isinstance(drop_path, DropPath):
        return drop_path if drop_path.drop_prob > 0 else None
    if not drop_path:
        return None
    return DropPath(float(drop_path), mode=mode)
