"""The end-of-run report: confusion matrix, per-class accuracy, misclassified examples, curves.

Written by rank 0 into the run directory:

* ``confusion_matrix.csv`` (rows = true class, columns = predicted; sums to the test-set size) and
  ``confusion_matrix.png``;
* ``misclassified.png``: a grid of test images the model got wrong, titled ``true -> predicted``;
* ``curves.png``: train, validation and test loss and top-1 per epoch, and the EMA's (from
  ``metrics.csv``'s rows).

The PNGs are drawn by :mod:`cnnzoo.train.figures` (torch-free), in this process or in the helper
process that ``cnnzoo train`` starts with the run. Per-class accuracy goes into ``summary.json``
(``per_class_top1``). :class:`TensorBoardLogger` writes the per-epoch metrics as scalars when
``tensorboard`` is installed, and otherwise says once that it is not.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cnnzoo.io import atomic_write
from cnnzoo.train.figures import FigureJob, FigureWorker, draw

__all__ = ["confusion_matrix", "per_class_accuracy", "write_report", "TensorBoardLogger"]

CONFUSION_CSV = "confusion_matrix.csv"


def confusion_matrix(preds: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """``cm[t, p]`` = how many samples of true class ``t`` were predicted ``p`` (int64)."""
    idx = targets.long().cpu() * num_classes + preds.long().cpu()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(cm: Tensor) -> list[float]:
    """Top-1 per true class, in percent (NaN for a class absent from the test set)."""
    tot = cm.sum(1).double()
    return [
        float("nan") if t == 0 else float(100.0 * c / t) for c, t in zip(cm.diag().double(), tot, strict=True)
    ]


def write_report(
    out: str | Path,
    *,
    cm: Tensor,
    classes: Sequence[str],
    history: Sequence[dict[str, Any]],
    wrong_images: Tensor | None = None,
    wrong_true: Tensor | None = None,
    wrong_pred: Tensor | None = None,
    figures: FigureWorker | None = None,
) -> dict[str, Any]:
    """Write the report files into ``out``; return ``per_class_top1`` (a class name -> percent dict).

    ``wrong_images`` are display-ready images in [0, 1], ``(N, C, H, W)``. ``figures``: a helper
    process that draws the PNGs (:class:`~cnnzoo.train.figures.FigureWorker`); default: this process.
    """
    out = Path(out)
    k = cm.shape[0]
    names = [str(c) for c in classes] if len(classes) == k else [str(i) for i in range(k)]

    def write_csv(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["true\\predicted", *names])
            for i in range(k):
                w.writerow([names[i], *cm[i].tolist()])

    atomic_write(out / CONFUSION_CSV, write_csv)
    job = FigureJob(out=str(out), cm=cm.cpu().numpy(), classes=names, history=[dict(r) for r in history])
    if wrong_images is not None and wrong_images.shape[0] > 0:
        # quantised here, so that the PNGs are the same whichever process draws them
        pixels = (wrong_images.float().clamp(0, 1) * 255).round().to(torch.uint8)
        job = job._replace(
            wrong_images=pixels.cpu().numpy(),
            wrong_true=wrong_true.cpu().numpy(),
            wrong_pred=wrong_pred.cpu().numpy(),
        )
    if figures is not None:
        figures.draw(job)
    else:
        draw(job)
    return dict(zip(names, per_class_accuracy(cm), strict=True))


class TensorBoardLogger:
    """Per-epoch scalars to TensorBoard under ``out/tensorboard`` when it is installed; else a no-op
    whose ``missing`` names the package to install (the trainer prints it once)."""

    def __init__(self, out: str | Path | None) -> None:
        self.writer = None
        self.missing: str | None = None
        if out is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # tensorboard is an optional dependency
            self.missing = (
                f"no TensorBoard logs: {e.name or 'tensorboard'} is not installed (pip install tensorboard)"
            )
            return
        self.writer = SummaryWriter(log_dir=str(Path(out) / "tensorboard"))

    def log(self, row: dict[str, Any], step: int) -> None:
        if self.writer is None:
            return
        for k, v in row.items():
            if k != "epoch" and isinstance(v, int | float) and math.isfinite(v):
                self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
