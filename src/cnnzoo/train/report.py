"""The end-of-run report: confusion matrix, per-class accuracy, misclassified examples, curves.

Written by rank 0 into the run directory:

* ``confusion_matrix.csv`` (rows = true class, columns = predicted; sums to the test-set size) and
  ``confusion_matrix.png``;
* ``misclassified.png``: a grid of test images the model got wrong, titled ``true -> predicted``;
* ``curves.png``: train, validation and test loss and top-1 per epoch, and the EMA's (from
  ``metrics.csv``'s rows).

Per-class accuracy goes into ``summary.json`` (``per_class_top1``). :class:`TensorBoardLogger`
writes the per-epoch metrics as scalars when ``tensorboard`` is installed, and otherwise says once
that it is not.
"""

from __future__ import annotations

import csv
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cnnzoo.io import atomic_write

__all__ = ["confusion_matrix", "per_class_accuracy", "write_report", "prewarm", "TensorBoardLogger"]

CONFUSION_CSV = "confusion_matrix.csv"
CONFUSION_PNG = "confusion_matrix.png"
MISCLASSIFIED_PNG = "misclassified.png"
CURVES_PNG = "curves.png"


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


def prewarm() -> threading.Thread:
    """Import matplotlib's figure and Agg modules and load its font list in a background thread.

    A short run's report is a fixed cost of ~1.3 s, half of it these imports
    (``benchmarks/train_startup.py``); started when training starts, they overlap the epochs, whose
    work is in torch kernels that release the GIL. Importing is thread-safe: the report waits on
    the import lock if it gets there first.
    """

    def work() -> None:
        try:
            import matplotlib.backends.backend_agg  # noqa: F401
            import matplotlib.figure  # noqa: F401
            from matplotlib import font_manager

            font_manager.findfont("DejaVu Sans")
        except Exception:  # the report itself will say what is wrong, in the main thread
            pass

    t = threading.Thread(target=work, name="cnnzoo-report-prewarm", daemon=True)
    t.start()
    return t


def _figure(figsize: tuple[float, float], *, ncols: int = 1):
    """A figure and its axes, without pyplot: no GUI backend to resolve and no global figure list,
    which keeps the report's fixed cost small in a short run (``benchmarks/train_startup.py``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(1, ncols)


def _savefig(fig, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))


def _plot_confusion(cm: Tensor, classes: Sequence[str], path: Path) -> None:
    k = cm.shape[0]
    side = min(14.0, max(4.5, 0.55 * k + 2))
    fig, ax = _figure((side, side * 0.9))
    norm = cm.double() / cm.sum(1, keepdim=True).clamp_min(1)
    im = ax.imshow(norm.numpy(), cmap="Blues", vmin=0, vmax=1)
    if k <= 20:
        ax.set_xticks(range(k), [str(c) for c in classes], rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(k), [str(c) for c in classes], fontsize=8)
        for t in range(k):
            for p in range(k):
                v = int(cm[t, p])
                if v:
                    ax.text(
                        p,
                        t,
                        str(v),
                        ha="center",
                        va="center",
                        fontsize=6.5,
                        color="white" if norm[t, p] > 0.5 else "black",
                    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(
        f"confusion matrix ({int(cm.sum()):,} test images, top-1 "
        f"{100.0 * float(cm.diag().sum()) / max(1, int(cm.sum())):.2f}%)"
    )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    _savefig(fig, path)


def _plot_misclassified(
    images: Tensor, true: Tensor, pred: Tensor, classes: Sequence[str], path: Path
) -> None:
    """One mosaic image (a single axes: fast) with a ``true -> predicted`` caption under each tile."""
    n, c, h, w = images.shape
    cols = min(8, n)
    rows = math.ceil(n / cols)
    gap, cap = max(2, h // 16), max(10, h // 2)  # pixels between tiles and for the caption
    H, W = rows * (h + cap + gap), cols * (w + gap)
    mosaic = torch.ones(3, H, W)
    for i in range(n):
        r, q = divmod(i, cols)
        img = images[i].float().clamp(0, 1)
        img = img.expand(3, h, w) if c == 1 else img[:3]
        top, left = r * (h + cap + gap), q * (w + gap)
        mosaic[:, top : top + h, left : left + w] = img
    fig, ax = _figure((max(4.0, 1.5 * cols), max(2.0, 1.75 * rows)))
    ax.imshow(mosaic.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.axis("off")
    for i in range(n):
        r, q = divmod(i, cols)
        ax.text(
            q * (w + gap) + w / 2,
            r * (h + cap + gap) + h + 1,
            f"{classes[int(true[i])]}\n-> {classes[int(pred[i])]}",
            ha="center",
            va="top",
            fontsize=6,
            color="firebrick",
        )
    ax.set_title("misclassified test images (true -> predicted)", fontsize=9)
    _savefig(fig, path)


def _series(rows: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """The epochs where ``key`` was measured and its values (``--eval-every`` skips some)."""
    kept = [r for r in rows if math.isfinite(r.get(key, math.nan))]
    return [r["epoch"] for r in kept], [r[key] for r in kept]


# (column, label, line style) of each panel; a column never measured in the run is left out
_LOSS_LINES = (
    ("train_loss", "train", "o-"),
    ("val_loss", "validation", "d-"),
    ("test_loss", "test", "s-"),
    ("ema_val_loss", "EMA validation", "d:"),
    ("ema_test_loss", "EMA test", "s:"),
)
_ACC_LINES = (
    ("train_top1", "train top-1", "o-"),
    ("val_top1", "validation top-1", "d-"),
    ("test_top1", "test top-1", "s-"),
    ("test_top5", "test top-5", "^--"),
    ("ema_val_top1", "EMA validation top-1", "d:"),
    ("ema_test_top1", "EMA test top-1", "s:"),
)


def _plot_curves(rows: Sequence[dict[str, Any]], path: Path) -> None:
    from matplotlib.ticker import MaxNLocator

    fig, (a, b) = _figure((10, 3.6), ncols=2)
    for ax, lines, title, ylabel in (
        (a, _LOSS_LINES, "loss", "loss"),
        (b, _ACC_LINES, "accuracy", "accuracy (%)"),
    ):
        for key, label, style in lines:
            x, y = _series(rows, key)
            if x:
                ax.plot(x, y, style, label=label, alpha=0.6 if key == "test_top5" else 1.0)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _savefig(fig, path)


def write_report(
    out: str | Path,
    *,
    cm: Tensor,
    classes: Sequence[str],
    history: Sequence[dict[str, Any]],
    wrong_images: Tensor | None = None,
    wrong_true: Tensor | None = None,
    wrong_pred: Tensor | None = None,
) -> dict[str, Any]:
    """Write the report files into ``out``; return ``per_class_top1`` (a class name -> percent dict).

    ``wrong_images`` are display-ready images in [0, 1], ``(N, C, H, W)``.
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
    _plot_confusion(cm, names, out / CONFUSION_PNG)
    if wrong_images is not None and wrong_images.shape[0] > 0:
        _plot_misclassified(wrong_images, wrong_true, wrong_pred, names, out / MISCLASSIFIED_PNG)
    if history:
        _plot_curves(history, out / CURVES_PNG)
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
