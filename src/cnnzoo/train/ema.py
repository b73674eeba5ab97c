"""An exponential moving average of the weights (Polyak & Juditsky 1992; the EMA of Tan & Le 2019).

After every optimizer step ``t`` (1, 2, ...)::

    ema_t = d_t · ema_{t-1} + (1 - d_t) · w_t,        ema_0 = w_0 (the initial weights)

with ``d_t = decay``, or with ``warmup`` timm's ``ModelEmaV3(use_warmup=True)`` ramp (inverse gamma 1,
power 2/3): ``d_t = min(decay, 1 - t'^(-2/3))`` with ``t' = t`` (so ``d_1 = 0``: the first update copies
the weights), which keeps the average from remembering the random initialisation over a short run.

BatchNorm's running mean and variance are **averaged** like the weights (timm's and torchvision's
default), and integer buffers (``num_batches_tracked``) copied. The running statistics are themselves
an average of recent batch statistics; averaging them with the same decay gives statistics from the same
window of training as the averaged weights. Copying them would pair the latest model's statistics
with weights that lag ``1 / (1 - decay)`` steps behind.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from cnnzoo.errors import ConfigError

__all__ = ["ModelEma", "ema_decay"]

WARMUP_POWER = 2.0 / 3.0


def ema_decay(step: int, decay: float, *, warmup: bool = False) -> float:
    """The decay ``d_t`` applied by the update after optimizer step ``step`` (1-based)."""
    if not warmup:
        return decay
    return max(0.0, min(decay, 1.0 - step ** (-WARMUP_POWER)))


class ModelEma:
    """A float32 copy of ``model`` (in eval mode) that follows its weights by :meth:`update`.

    Args:
        model: the module being trained (not a DDP or compiled wrapper: its ``state_dict`` keys are
            the ones saved).
        decay: the EMA decay in [0, 1).
        warmup: ramp the decay up as timm's ``ModelEmaV3(use_warmup=True)``.
    """

    def __init__(self, model: nn.Module, decay: float, *, warmup: bool = False) -> None:
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"--ema decay must be in [0, 1), e.g. 0.999; got {decay}")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0
        self._pairs = self._match(model)

    def _match(self, model: nn.Module) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        own, theirs = self.module.state_dict(keep_vars=True), model.state_dict(keep_vars=True)
        avg_e, avg_m, copy_e, copy_m = [], [], [], []
        for k, e in own.items():
            m = theirs[k]
            if e.is_floating_point():
                avg_e.append(e.data)
                avg_m.append(m.data)
            else:
                copy_e.append(e.data)
                copy_m.append(m.data)
        return avg_e, avg_m, copy_e, copy_m

    @torch.no_grad()
    def update(self) -> None:
        """Fold the model's current weights in (call after every optimizer step)."""
        self.updates += 1
        d = ema_decay(self.updates, self.decay, warmup=self.warmup)
        avg_e, avg_m, copy_e, copy_m = self._pairs
        if avg_e:
            torch._foreach_lerp_(avg_e, avg_m, 1.0 - d)
        for e, m in zip(copy_e, copy_m, strict=True):
            e.copy_(m)

    def state_dict(self) -> dict[str, Any]:
        """The averaged tensors (CPU copies) and the update count: enough to resume exactly."""
        weights = {k: v.detach().to("cpu", copy=True) for k, v in self.module.state_dict().items()}
        return {"decay": self.decay, "warmup": self.warmup, "updates": self.updates, "weights": weights}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["weights"])
        self.updates = int(state["updates"])

    def __repr__(self) -> str:
        return f"ModelEma(decay={self.decay}, warmup={self.warmup}, updates={self.updates})"
