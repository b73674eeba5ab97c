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
def evaluate(
    model: nn.Module,
    batches,
    *,
    num_samples: int | None,
    predict=None,
    autocast=None,
    collect: bool = False,
    max_wrong: int = 32,
) -> dict:
    """Evaluate ``model`` over an iterable of ``(inputs, targets)``.

    Args:
        predict: ``predict(model, x) -> logits`` (a TTA mode from :mod:`cnnzoo.train.tta`); default
            the model's main logits.
        autocast: a context-manager factory (AMP) wrapped around each forward.
        collect: also return ``preds``/``targets`` (CPU int64) and up to ``max_wrong`` misclassified
            inputs (``wrong_x``, ``wrong_true``, ``wrong_pred``) for the report.
        num_samples: the count expected (a check); ``None`` for a shard.

    Returns ``loss`` (mean cross-entropy over the main logits), ``top1`` and ``top5`` (percent), and
    the sums ``loss_sum``, ``correct1``, ``correct5``, ``n`` (for all-reducing over ranks).
    """
    import contextlib

    was_training = model.training
    model.eval()
    loss_sum, c1, c5, n = 0.0, 0, 0, 0
    preds, targets, wrong_x, wrong_t, wrong_p = [], [], [], [], []
    n_wrong = 0
    try:
        for x, y in batches:
            with autocast() if autocast is not None else contextlib.nullcontext():
                out = predict(model, x) if predict is not None else logits_of(model(x))
            logits = out.float()
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            a, b = topk_correct(logits, y)
            c1, c5, n = c1 + a, c5 + b, n + y.shape[0]
            if collect:
                p = logits.argmax(1)
                preds.append(p.cpu())
                targets.append(y.cpu())
                if n_wrong < max_wrong:
                    bad = (p != y).nonzero().flatten()[: max_wrong - n_wrong]
                    if bad.numel():
                        wrong_x.append(x[bad].float().cpu())
                        wrong_t.append(y[bad].cpu())
                        wrong_p.append(p[bad].cpu())
                        n_wrong += bad.numel()
    finally:
        model.train(was_training)
    if num_samples is not None and n != num_samples:
        raise RuntimeError(f"evaluated {n} samples, expected {num_samples}")
    res: dict = {
        "loss": loss_sum / max(n, 1),
        "top1": 100.0 * c1 / max(n, 1),
        "top5": 100.0 * c5 / max(n, 1),
        "loss_sum": loss_sum,
        "correct1": c1,
        "correct5": c5,
        "n": n,
    }
    if collect:
        res["preds"] = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
        res["targets"] = torch.cat(targets) if targets else torch.zeros(0, dtype=torch.long)
        if wrong_x:
            res["wrong_x"], res["wrong_true"], res["wrong_pred"] = (
                torch.cat(wrong_x),
                torch.cat(wrong_t),
                torch.cat(wrong_p),
            )
    return res
