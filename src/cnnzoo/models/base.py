"""The uniform model interface shared by every zoo model.

Deliberately light (timm's convention): ``forward_features`` maps images to the last feature
map, ``forward_head`` maps features to logits, and ``forward`` checks the input once and chains
the two. Models expose ``num_classes`` and ``in_chans``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError

__all__ = ["ZooModel", "InputShapeError"]


class InputShapeError(CnnzooError, ValueError):
    """An input whose shape the model cannot take; the message says what it expects."""


def _is_symbolic_trace() -> bool:
    from torch.fx import _symbolic_trace as st

    fn = getattr(st, "is_fx_symbolic_tracing", None) or getattr(st, "is_fx_tracing", None)
    return bool(fn and fn())


class ZooModel(nn.Module):
    """Base class: ``forward(x) = forward_head(forward_features(x))`` with an input check.

    Subclasses set ``self.num_classes`` and ``self.in_chans`` and implement the two halves.
    ``min_input_size`` (the smallest square side that yields a valid output) is set by the
    subclass or by :func:`cnnzoo.create_model` from the registry config.
    """

    #: the analyzer's row type of a whole model used inside another (composite: its rows show)
    cost_type = "container"
    num_classes: int
    in_chans: int
    min_input_size: int | None = None

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        raise NotImplementedError

    def check_input(self, x: Tensor) -> None:
        """Raise :class:`InputShapeError` for a wrong rank, channel count or too small an image."""
        if _is_symbolic_trace() or not isinstance(x, Tensor):
            return
        name = type(self).__name__
        cfg = getattr(self, "default_cfg", None)
        if cfg is not None:
            name = cfg.name or name
        if x.dim() != 4:
            raise InputShapeError(
                f"{name} expects a batch of images shaped (N, C, H, W), got a {x.dim()}-d tensor "
                f"of shape {tuple(x.shape)}; add a batch dimension with x.unsqueeze(0)."
            )
        if x.shape[1] != self.in_chans:
            raise InputShapeError(
                f"{name} expects {self.in_chans} input channel(s), got {x.shape[1]} "
                f"(input shape {tuple(x.shape)}). Build it with in_chans={x.shape[1]} "
                f"or convert the images to {self.in_chans} channel(s)."
            )
        m = self.min_input_size
        if m is not None and (x.shape[2] < m or x.shape[3] < m):
            raise InputShapeError(
                f"{name} needs inputs of at least {m}x{m} pixels, got {x.shape[2]}x{x.shape[3]}. "
                f"Resize or pad the images to {m}x{m} or larger."
            )

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.forward_head(self.forward_features(x))

    @torch.no_grad()
    def num_params(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
