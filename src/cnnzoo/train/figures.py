"""The run report's figures, drawn with matplotlib from numpy arrays (torch-free).

``confusion_matrix.png``, ``misclassified.png`` and ``curves.png`` are described by one
:class:`FigureJob` and drawn by :func:`draw`, either in the training process or in a
:class:`FigureWorker`: a helper process that ``cnnzoo train`` starts before it imports torch.

Why a helper process: in a short run the report is a fixed cost of 1.3-1.6 s on the 2-core
development machine: 0.34-0.45 s importing matplotlib and 0.97-1.15 s drawing the first job (against
0.5-0.7 s for the same job once fonts and glyph caches are loaded). While the command imports torch, one core is idle; the helper spends
it importing matplotlib and drawing a throwaway set of figures, then sleeps on its input until the
run ends, so it never competes with the training threads. The run then hands it the job and waits
(``benchmarks/train_startup.py``). A background *thread* cannot do this: importing holds the GIL,
and during training it steals the core an OpenMP thread is waiting for (it slowed the epoch of a
one-epoch LeNet-5 run by more than it saved). Whatever goes wrong with the helper (it could not
start, died, failed or hung), the figures are drawn in the training process instead, so the report
never depends on it; ``CNNZOO_FIGURE_WORKER=0`` skips it.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cnnzoo.io import atomic_write

__all__ = [
    "CONFUSION_PNG",
    "CURVES_PNG",
    "MISCLASSIFIED_PNG",
    "FigureJob",
    "FigureWorker",
    "draw",
]

CONFUSION_PNG = "confusion_matrix.png"
MISCLASSIFIED_PNG = "misclassified.png"
CURVES_PNG = "curves.png"

#: the environment switch that keeps the figures in the training process
WORKER_ENV = "CNNZOO_FIGURE_WORKER"
#: seconds the run waits for the helper before it draws the figures itself
WORKER_TIMEOUT_S = 300.0


class FigureJob(NamedTuple):
    """What the report draws: everything a helper process needs, as plain data.

    Attributes:
        out: the run directory the PNGs go into.
        cm: the confusion matrix, ``cm[true, predicted]`` (integers, ``(K, K)``).
        classes: the ``K`` class names.
        history: ``metrics.csv``'s rows (dicts of column -> number); no curves when empty.
        wrong_images: misclassified test images as uint8 ``(N, C, H, W)`` (0-255), or None.
        wrong_true, wrong_pred: their true and predicted class indices.
    """

    out: str
    cm: np.ndarray
    classes: list[str]
    history: list[dict[str, Any]]
    wrong_images: np.ndarray | None = None
    wrong_true: np.ndarray | None = None
    wrong_pred: np.ndarray | None = None

    def to_json(self) -> str:
        """One line of JSON (the images as base64 bytes); :meth:`from_json` reads it back."""
        imgs = None
        if self.wrong_images is not None:
            a = np.ascontiguousarray(self.wrong_images, dtype=np.uint8)
            imgs = {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}
        return json.dumps(
            {
                "out": self.out,
                "cm": np.asarray(self.cm).tolist(),
                "classes": list(self.classes),
                "history": list(self.history),
                "wrong_images": imgs,
                "wrong_true": None if self.wrong_true is None else np.asarray(self.wrong_true).tolist(),
                "wrong_pred": None if self.wrong_pred is None else np.asarray(self.wrong_pred).tolist(),
            }
        )

    @classmethod
    def from_json(cls, line: str) -> FigureJob:
        d = json.loads(line)
        imgs = d["wrong_images"]
        if imgs is not None:
            imgs = np.frombuffer(base64.b64decode(imgs["data"]), dtype=np.uint8).reshape(imgs["shape"])
        return cls(
            d["out"],
            np.asarray(d["cm"], dtype=np.int64),
            d["classes"],
            d["history"],
            imgs,
            _ints(d["wrong_true"]),
            _ints(d["wrong_pred"]),
        )


def _ints(v: list[int] | None) -> np.ndarray | None:
    return None if v is None else np.asarray(v, dtype=np.int64)


# ------------------------------------------------------------------------------------ the figures
def _figure(figsize: tuple[float, float], *, ncols: int = 1):
    """A figure and its axes, without pyplot: no GUI backend to resolve and no global figure list."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(1, ncols)


def _png(fig, target) -> None:
    fig.savefig(target, format="png", dpi=110, bbox_inches="tight")


def confusion_figure(cm: np.ndarray, classes: Sequence[str]):
    """The confusion matrix, each row normalised by its true class, counts written in the cells."""
    cm = np.asarray(cm)
    k = cm.shape[0]
    side = min(14.0, max(4.5, 0.55 * k + 2))
    fig, ax = _figure((side, side * 0.9))
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 20:
        ax.set_xticks(range(k), [str(c) for c in classes], rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(k), [str(c) for c in classes], fontsize=8)
        for t, p in zip(*np.nonzero(cm), strict=True):
            color = "white" if norm[t, p] > 0.5 else "black"
            ax.text(p, t, str(int(cm[t, p])), ha="center", va="center", fontsize=6.5, color=color)
    total = int(cm.sum())
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(
        f"confusion matrix ({total:,} test images, top-1 {100.0 * int(np.trace(cm)) / max(1, total):.2f}%)"
    )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    return fig


def misclassified_figure(images: np.ndarray, true: np.ndarray, pred: np.ndarray, classes: Sequence[str]):
    """One mosaic image (a single axes: fast) with a ``true -> predicted`` caption under each tile."""
    n, c, h, w = images.shape
    cols = min(8, n)
    rows = math.ceil(n / cols)
    gap, cap = max(2, h // 16), max(10, h // 2)  # pixels between tiles and for the caption
    mosaic = np.full((rows * (h + cap + gap), cols * (w + gap), 3), 255, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        tile = np.repeat(images[i], 3, axis=0) if c == 1 else images[i, :3]
        top, left = r * (h + cap + gap), q * (w + gap)
        mosaic[top : top + h, left : left + w] = tile.transpose(1, 2, 0)
    fig, ax = _figure((max(4.0, 1.5 * cols), max(2.0, 1.75 * rows)))
    ax.imshow(mosaic, interpolation="nearest")
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
    return fig


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


def _series(rows: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """The epochs where ``key`` was measured and its values (``--eval-every`` skips some)."""
    kept = [r for r in rows if math.isfinite(r.get(key, math.nan))]
    return [r["epoch"] for r in kept], [r[key] for r in kept]


def curves_figure(rows: Sequence[dict[str, Any]]):
    """Loss and accuracy per epoch: train, validation, test and the EMA's, where measured."""
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
    return fig


def _figures(job: FigureJob) -> dict[str, Any]:
    """File name -> a callable building that figure, for the figures ``job`` has data for."""
    figs = {CONFUSION_PNG: lambda: confusion_figure(job.cm, job.classes)}
    if job.wrong_images is not None and len(job.wrong_images):
        figs[MISCLASSIFIED_PNG] = lambda: misclassified_figure(
            job.wrong_images, job.wrong_true, job.wrong_pred, job.classes
        )
    if job.history:
        figs[CURVES_PNG] = lambda: curves_figure(job.history)
    return figs


def draw(job: FigureJob) -> list[Path]:
    """Draw ``job``'s figures into ``job.out`` (each file written atomically); returns their paths."""
    paths = []
    for name, build in _figures(job).items():
        fig = build()
        paths.append(atomic_write(Path(job.out) / name, lambda tmp, f=fig: _png(f, tmp)))
    return paths


def _warm_up() -> None:
    """Draw a throwaway job into memory: imports, fonts and glyph caches are ready for the real one."""
    rng = np.random.default_rng(0)
    rows = [{"epoch": e, "train_loss": 1.0 / e, "test_loss": 1.0, "train_top1": 50.0} for e in (1, 2)]
    job = FigureJob(
        out="",
        cm=rng.integers(0, 50, (10, 10)),
        classes=[f"class {i}" for i in range(10)],
        history=rows,
        wrong_images=rng.integers(0, 256, (16, 1, 28, 28), dtype=np.uint8),
        wrong_true=rng.integers(0, 10, 16),
        wrong_pred=rng.integers(0, 10, 16),
    )
    for build in _figures(job).values():
        _png(build(), io.BytesIO())


# ------------------------------------------------------------------------------- the helper process
class FigureWorker:
    """A helper process that gets matplotlib ready while the command starts, then draws one job.

    Start it before torch is imported (``cnnzoo train`` does) and hand it the job with
    :meth:`draw`; use it as a context manager so that an unused helper is stopped. It runs in a
    session of its own (Ctrl-C at the terminal reaches only the training process, which stops it)
    and exits when its input closes, so it never outlives the run.
    """

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    @classmethod
    def start(cls) -> FigureWorker | None:
        """A started helper, or None where ``CNNZOO_FIGURE_WORKER=0`` or it cannot start."""
        if os.environ.get(WORKER_ENV, "1") == "0":
            return None
        root = str(Path(__file__).resolve().parents[2])  # the cnnzoo this process runs, not another
        code = (
            f"import sys\nif {root!r} not in sys.path: sys.path.insert(0, {root!r})\n"
            "from cnnzoo.train.figures import main\nmain()"
        )
        # one thread each for numpy's BLAS: the helper must not spin up a pool on the cores it borrows
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                text=True,
                start_new_session=True,
            )
        except OSError:
            return None
        return cls(proc)

    def draw(self, job: FigureJob, *, timeout: float = WORKER_TIMEOUT_S) -> list[Path]:
        """Draw ``job`` in the helper; if it cannot (gone, failed, timed out), draw it here.

        Returns the paths written. Errors of drawing here propagate (e.g. matplotlib missing); with
        ``CNNZOO_DEBUG=1`` the helper's own error is printed first.
        """
        err = ""
        try:
            _, err = self.proc.communicate(job.to_json() + "\n", timeout=timeout)
            ok = self.proc.returncode == 0
        except (OSError, ValueError, TypeError, subprocess.TimeoutExpired):  # TypeError: not JSON
            ok = False
        finally:
            self.close()
        names = list(_figures(job))
        if ok and all((Path(job.out) / n).is_file() for n in names):
            return [Path(job.out) / n for n in names]
        if err and os.environ.get("CNNZOO_DEBUG"):
            print(f"cnnzoo: the figure helper failed; drawing here:\n{err}", file=sys.stderr)
        return draw(job)

    def close(self) -> None:
        """Stop the helper if it still runs (an unused one is only warming up) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.communicate(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass

    def __enter__(self) -> FigureWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve() -> None:
    """Warm up, read one job line from stdin and draw it; nothing to do at end of input."""
    try:
        _warm_up()
    except Exception:  # the job will fail the same way, and the run draws it itself
        pass
    line = sys.stdin.readline()
    if line.strip():
        draw(FigureJob.from_json(line))


def main() -> None:
    """The helper's entry point. It leaves with ``os._exit``: the figures are written and synced,
    and the run waits on this exit, so tearing down matplotlib's modules would only add to it."""
    serve()  # an error propagates: a traceback on stderr and exit status 1
    sys.stderr.flush()
    os._exit(0)
