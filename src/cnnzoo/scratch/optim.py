"""SGD with momentum and weight decay, with ``torch.optim.SGD``'s exact update rule.

For each parameter p with gradient g:  g ← g + λ·p (weight decay);  b ← μ·b + g (b = g on the
first step);  p ← p − lr·b  (Nesterov: p ← p − lr·(g + μ·b)). The update runs in place, so the
network's arrays are the optimiser's parameters.
"""

from __future__ import annotations

import numpy as np

from cnnzoo.scratch.layers import Sequential

__all__ = ["SGD", "cosine_lr"]


class SGD:
    """Stochastic gradient descent over a :class:`Sequential`'s parameters."""

    def __init__(
        self,
        net: Sequential,
        lr: float = 0.01,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError("lr, momentum and weight_decay must be >= 0")
        self.net, self.lr, self.momentum, self.weight_decay, self.nesterov = (
            net,
            lr,
            momentum,
            weight_decay,
            nesterov,
        )
        self.state: dict[str, np.ndarray] = {}

    def step(self) -> None:
        for (name, p), (_, g) in zip(self.net.named_parameters(), self.net.named_grads(), strict=True):
            if g is None:
                continue
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                buf = self.state.get(name)
                if buf is None:
                    buf = self.state[name] = np.array(g, dtype=p.dtype, copy=True)
                else:
                    buf *= self.momentum
                    buf += g
                g = g + self.momentum * buf if self.nesterov else buf
            p -= (self.lr * g).astype(p.dtype, copy=False)


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    """Cosine decay from ``base_lr`` to 0 over ``total_steps`` (Loshchilov & Hutter 2017, no restarts)."""
    import math

    return 0.5 * base_lr * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
