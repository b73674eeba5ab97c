"""Evaluation: loss, top-1 and top-5 over a whole split, batched, without gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["evaluate", "logits_of", "topk_correct"]


def logits_of(output) -> Tensor:
    """The main logits of a model's output (models with aux heads return a tuple with ``.logits``)."""
    return getattr(output, "logits", output)


def topk_correct(logits: Tensor, target: Tensor, ks: tuple[int, ...] = (1, 5)) -> list[int]:
    """How many of the batch have the target among the top-k predictions, for each k."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hit = top.eq(target.view(-1, 1))
    return [int(hit[:, : min(k, kmax)].any(1).sum()) for k in ks]


@torch.no_grad()
def evaluate(model: nn.Module, batches, *, num_samples: int) -> dict[str, float]:
    """Evaluate ``model`` over an iterable of ``(inputs, targets)``.

    Returns ``loss`` (mean cross-entropy over the main logits), ``top1`` and ``top5`` (percent).
    """
    was_training = model.training
    model.eval()
    loss_sum, c1, c5, n = 0.0, 0, 0, 0
    try:
        for x, y in batches:
            logits = logits_of(model(x)).float()
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            a, b = topk_correct(logits, y)
            c1, c5, n = c1 + a, c5 + b, n + y.shape[0]
    finally:
        model.train(was_training)
    if n != num_samples:
        raise RuntimeError(f"evaluated {n} samples, expected {num_samples}")
    return {"loss": loss_sum / n, "top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n}
