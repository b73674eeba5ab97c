"""Training a scratch network on Fashion-MNIST (or MNIST): the loop behind ``cnnzoo scratch train``.

The recipe mirrors ``cnnzoo train`` (SGD with Nesterov momentum 0.9, weight decay 5e-4, lr 0.05 —
0.002 for ``lenet5``, see ``DEFAULT_LR`` — with half an epoch of linear warmup then per-step cosine
decay, batch 128) and so does the input: the
28×28 uint8 images are zero-padded to 32×32 *before* scaling to [0, 1] and normalising with the
dataset's mean/std, like ``cnnzoo.data.adapt_images``. The run directory has the same files:
``weights.safetensors`` (the torch model's ``state_dict`` keys, so ``cnnzoo eval DIR`` and
``cnnzoo.train.runs.load_run`` open it), ``config.json``, ``metrics.csv`` and ``summary.json``
(with ``"engine": "numpy"``): the run-directory contract of :mod:`cnnzoo.rundir`, shared with
``cnnzoo train``. No torch.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnzoo.errors import ConfigError
from cnnzoo.io import atomic_write, sha256_file
from cnnzoo.rundir import METRIC_CORE, RunDir, TrainingDivergedError, claim
from cnnzoo.scratch import ops
from cnnzoo.scratch.blas import get_blas_threads, set_blas_threads
from cnnzoo.scratch.layers import Sequential
from cnnzoo.scratch.nets import create_net
from cnnzoo.scratch.optim import SGD
from cnnzoo.scratch.parallel import DataParallel

__all__ = ["ScratchTrainConfig", "fit", "prepare_images", "evaluate", "save_weights", "TrainingDivergedError"]

METRIC_FIELDS = METRIC_CORE  # the run directory's columns, nothing engine-specific


#: Peak learning rates for the recipe. The 1998 network's RBF output gives cross-entropy logits of
#: size ~100 (negative squared distances), so it needs a much smaller step: on 10k images, one
#: epoch reaches 26 % at lr 0.05, 29 % at 0.01 and 77 % at 0.002.
DEFAULT_LR = {"lenet5_relu": 0.05, "lenet5": 0.002}


@dataclass
class ScratchTrainConfig:
    """Everything a scratch run needs; the defaults are ``cnnzoo train``'s LeNet-5 recipe."""

    model: str = "lenet5_relu"
    data: str = "fashion-mnist"
    data_dir: str | None = None
    epochs: int = 4
    batch_size: int = 128
    lr: float | None = None  # None: the model's default, DEFAULT_LR
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.5
    seed: int = 0
    train_samples: int | None = None
    test_samples: int | None = None
    eval_batch_size: int = 250
    threads: int | None = None  # BLAS threads (None: NumPy's default, or 1 per worker when workers > 1)
    workers: int = 1  # data-parallel threads (cnnzoo.scratch.parallel)
    micro_batch: int | None = 64  # largest micro-batch a worker runs at once (cache-friendly)
    out: str | None = None

    def validate(self) -> ScratchTrainConfig:
        """Check every value (types first: ``"2"`` or 2.5 epochs are refused); raise ConfigError."""
        _check_types(self)
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lr is None or self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}"),
            (self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}"),
            (
                self.schedule in ("constant", "cosine"),
                f"--schedule must be constant or cosine, got {self.schedule}",
            ),
            (self.train_samples is None or self.train_samples >= 1, "--train-samples must be >= 1"),
            (self.test_samples is None or self.test_samples >= 1, "--test-samples must be >= 1"),
            (self.threads is None or self.threads >= 1, "--threads must be >= 1"),
            (self.workers >= 1, f"--workers must be >= 1, got {self.workers}"),
            (self.micro_batch is None or self.micro_batch >= 1, "--micro-batch must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        return self


_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _check_types(cfg: ScratchTrainConfig) -> None:
    """Each field's value has its annotated type (``X | None`` allows None; an int is a float)."""
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        hint = str(f.type)
        if v is None and "None" in hint:
            continue
        kind = next(t for t in (bool, int, float, str) if hint.startswith(t.__name__))
        ok = isinstance(v, kind) and (kind is bool or not isinstance(v, bool))
        if kind is float:
            ok = isinstance(v, int | float) and not isinstance(v, bool)
        if not ok:
            raise ConfigError(f"{f.name} must be {_KINDS[kind]}, got {v!r} ({type(v).__name__})")


def prepare_images(
    images: np.ndarray, *, side: int, mean: tuple[float, ...], std: tuple[float, ...], dtype=np.float32
) -> np.ndarray:
    """uint8 (N, C, h, w) -> normalised float (N, C, side, side): zero-pad the uint8 to ``side``, then
    scale to [0, 1] and normalise per channel (the border becomes the background value)."""
    n, c, h, w = images.shape
    ph, pw = side - h, side - w
    if ph < 0 or pw < 0:
        raise ConfigError(f"cannot pad {h}x{w} images to a smaller {side}x{side}")
    x = np.zeros((n, c, side, side), dtype=dtype)
    x[:, :, ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w] = images
    m = np.asarray(mean, dtype=np.float64)
    s = np.asarray(std, dtype=np.float64)
    if m.size != c:
        m, s = np.full(c, m.mean()), np.full(c, s.mean())
    scale = (1.0 / (255.0 * s)).astype(dtype).reshape(1, c, 1, 1)
    shift = (m / s).astype(dtype).reshape(1, c, 1, 1)
    x *= scale
    x -= shift
    return x


def _lr_at(cfg: ScratchTrainConfig, step: int, total: int, steps_per_epoch: int) -> float:
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    if cfg.schedule == "constant":
        return cfg.lr
    t = (step - warm) / max(1, total - warm)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t))


def evaluate(
    net: Sequential, images: np.ndarray, labels: np.ndarray, *, side: int, mean, std, batch_size: int = 1000
) -> dict[str, float]:
    """Mean cross-entropy, top-1 and top-5 accuracy (percent) of ``net`` in eval mode."""
    net.eval()
    loss_sum, correct, correct5 = 0.0, 0, 0
    for i in range(0, len(labels), batch_size):
        x = prepare_images(images[i : i + batch_size], side=side, mean=mean, std=std)
        y = labels[i : i + batch_size]
        z = net(x)
        loss, _ = ops.softmax_cross_entropy(z, y)
        loss_sum += loss * len(y)
        correct += int((z.argmax(1) == y).sum())
        k = min(5, z.shape[1])
        top = np.argpartition(-z, k - 1, axis=1)[:, :k]
        correct5 += int((top == y[:, None]).any(1).sum())
    net.train()
    n = max(len(labels), 1)
    return {"loss": loss_sum / n, "top1": 100.0 * correct / n, "top5": 100.0 * correct5 / n}


def save_weights(net: Sequential, path: str | Path) -> str:
    """Write ``net.state_dict()`` as safetensors atomically (temp file + os.replace); return its sha256."""
    from safetensors.numpy import save_file

    state = {k: np.ascontiguousarray(v) for k, v in net.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
    return sha256_file(path)


def _subset(x: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if n is None or n >= len(y):
        return x, y
    idx = np.random.default_rng(seed).permutation(len(y))[:n]
    return x[idx], y[idx]


def _progress(console, enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "loss {task.fields[loss]:.4f}  acc {task.fields[acc]:5.1f}%  {task.fields[ips]:,.0f} img/s"
        ),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=True,
    )


@dataclass
class _Run:
    """A scratch run's fixed parts: config, data, network, optimizer, data-parallel runner, directory."""

    cfg: ScratchTrainConfig
    run_dir: RunDir
    xtr: np.ndarray
    ytr: np.ndarray
    xte: np.ndarray
    yte: np.ndarray
    spec: Any
    net: Sequential
    opt: SGD
    runner: DataParallel
    side: int = 32

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.ytr) // self.cfg.batch_size)


def _setup(cfg: ScratchTrainConfig) -> _Run:
    """The data, the network (built first: a bad name fails before loading data) and the optimizer."""
    from cnnzoo.data import load_arrays

    if cfg.threads or cfg.workers > 1:
        set_blas_threads(cfg.threads or 1)
    net = create_net(cfg.model, seed=cfg.seed)
    out = Path(cfg.out)
    xtr, ytr, spec, _ = load_arrays(cfg.data, "train", data_dir=cfg.data_dir)
    xte, yte, _, _ = load_arrays(cfg.data, "test", data_dir=cfg.data_dir)
    xtr, ytr = _subset(xtr, ytr, cfg.train_samples, cfg.seed)
    xte, yte = _subset(xte, yte, cfg.test_samples, cfg.seed + 1)
    num_classes, in_chans = len(spec.classes), xtr.shape[1]
    if num_classes != 10 or in_chans != 1:
        net = create_net(cfg.model, num_classes=num_classes, in_chans=in_chans, seed=cfg.seed)
    if xtr.shape[-1] > 32:
        raise ConfigError(
            f"{cfg.model} takes 32x32 inputs; {spec.name} images are {xtr.shape[-1]} pixels wide"
        )
    opt = SGD(
        net,
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        nesterov=cfg.nesterov and cfg.momentum > 0,
    )
    runner = DataParallel(net, cfg.workers, cfg.micro_batch)
    return _Run(cfg, RunDir(out), xtr, ytr, xte, yte, spec, net, opt, runner)


def _train_epoch(r: _Run, epoch: int, step: int, rng: np.random.Generator, bar, task) -> tuple[dict, int]:
    """One pass over the training set from optimizer step ``step``; returns its sums and the new step."""
    cfg, n = r.cfg, len(r.ytr)
    total = r.steps_per_epoch * cfg.epochs
    t0 = time.perf_counter()
    order = rng.permutation(n)
    loss_sum, correct, seen = 0.0, 0, 0
    for i in range(0, n, cfg.batch_size):
        idx = np.sort(order[i : i + cfg.batch_size])  # sorted: a friendlier gather, same batch
        x = prepare_images(r.xtr[idx], side=r.side, mean=r.spec.mean, std=r.spec.std)
        y = r.ytr[idx]
        loss, z = r.runner.step(x, y)  # forward, loss and backward (micro-batches, threads)
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                f"loss became {loss} at epoch {epoch}, step {step}; lower --lr (now {cfg.lr})"
            )
        r.opt.lr = _lr_at(cfg, step, total, r.steps_per_epoch)
        r.opt.step()
        step += 1
        loss_sum += loss * len(y)
        correct += int((z.argmax(1) == y).sum())
        seen += len(y)
        if step % 10 == 0 or i + cfg.batch_size >= n:
            ips = seen / max(time.perf_counter() - t0, 1e-9)
            bar.update(
                task,
                completed=step,
                epoch=f"{epoch}/{cfg.epochs}",
                loss=loss_sum / seen,
                acc=100.0 * correct / seen,
                ips=ips,
            )
    return {
        "loss": loss_sum / seen,
        "top1": 100.0 * correct / seen,
        "seen": seen,
        "seconds": time.perf_counter() - t0,
    }, step


def _write_summary(
    r: _Run, last: dict[str, Any], *, sha: str, wall: float, train_seconds: float, images: int
):
    cfg = r.cfg
    summary = {
        "model": cfg.model,
        "data": r.spec.name,
        "engine": "numpy",
        "epochs": cfg.epochs,
        "steps": last["step"],
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "seed": cfg.seed,
        "test_top1": last["test_top1"],
        "test_top5": last["test_top5"],
        "test_loss": last["test_loss"],
        "train_loss": last["train_loss"],
        "wall_seconds": wall,
        "train_seconds": train_seconds,
        "images_per_second": images / max(train_seconds, 1e-9),
        "weights_sha256": sha,
        "weights_file": r.run_dir.weights.name,
        "params": r.net.num_params(),
        "threads": get_blas_threads(),
        "workers": cfg.workers,
        "micro_batch": cfg.micro_batch,
        "numpy": np.__version__,
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "out": str(r.run_dir.path),
    }
    r.run_dir.write_summary(summary)
    return summary


def fit(
    cfg: ScratchTrainConfig, *, console=None, progress: bool = True, overwrite: bool = False
) -> dict[str, Any]:
    """Train ``cfg.model`` with the NumPy engine and write the run directory; return the summary.

    ``cfg.out`` must not hold a run unless ``overwrite`` (:func:`cnnzoo.rundir.claim`); a run that
    fails removes what it created there (this engine writes no checkpoint to resume).

    Raises:
        RunExistsError: ``cfg.out`` holds a run and ``overwrite`` is false.
        RunDirError: ``cfg.out`` is a file or cannot be written.
        TrainingDivergedError: the loss became NaN or infinite.
    """
    cfg.validate()
    if cfg.lr is None:
        cfg = dataclasses.replace(cfg, lr=DEFAULT_LR.get(cfg.model, 0.05))
    if cfg.out is None:
        cfg = dataclasses.replace(cfg, out=f"runs/scratch-{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}")
    made = claim(cfg.out, overwrite=overwrite, resume_hint=False)
    try:
        return _fit(cfg, console, progress)
    except BaseException:
        made.release()
        raise


def _fit(cfg: ScratchTrainConfig, console, progress: bool) -> dict[str, Any]:
    from rich.console import Console

    console = console or Console()
    t_start = time.perf_counter()
    r = _setup(cfg)
    r.run_dir.mkdir().write_config(
        {
            **dataclasses.asdict(cfg),
            "engine": "numpy",
            "out": str(r.run_dir.path),
            "input_size": r.side,
            "input_mode": "pad",
            "num_classes": len(r.spec.classes),
            "in_chans": r.xtr.shape[1],
            "model_kwargs": {},
            "weights_file": r.run_dir.weights.name,
        }
    )
    n, spe = len(r.ytr), r.steps_per_epoch
    console.print(
        f"[bold]cnnzoo scratch train[/] {cfg.model} ({r.net.num_params():,} params, NumPy engine) on "
        f"{r.spec.name}: {n:,} train / {len(r.yte):,} test images, input {r.side}x{r.side} (pad), "
        f"{cfg.epochs} epochs x {spe} steps, batch {cfg.batch_size} -> {r.run_dir.path}"
    )
    rows: list[dict[str, Any]] = []
    r.run_dir.write_metrics(METRIC_FIELDS, rows)
    step, train_seconds, train_images = 0, 0.0, 0
    rng = np.random.default_rng(cfg.seed)
    r.net.train()
    with _progress(console, progress) as bar:
        task = bar.add_task(
            "train", total=spe * cfg.epochs, epoch=f"1/{cfg.epochs}", loss=0.0, acc=0.0, ips=0.0
        )
        for epoch in range(1, cfg.epochs + 1):
            tr, step = _train_epoch(r, epoch, step, rng, bar, task)
            train_seconds += tr["seconds"]
            train_images += tr["seen"]
            ev = evaluate(
                r.net,
                r.xte,
                r.yte,
                side=r.side,
                mean=r.spec.mean,
                std=r.spec.std,
                batch_size=cfg.eval_batch_size,
            )
            rows.append(
                {
                    "epoch": epoch,
                    "step": step,
                    "train_loss": tr["loss"],
                    "train_top1": tr["top1"],
                    "test_loss": ev["loss"],
                    "test_top1": ev["top1"],
                    "test_top5": ev["top5"],
                    "lr": r.opt.lr,
                    "images_per_second": tr["seen"] / tr["seconds"],
                    "epoch_seconds": tr["seconds"],
                    "elapsed_seconds": time.perf_counter() - t_start,
                }
            )
            r.run_dir.write_metrics(METRIC_FIELDS, rows)
            console.print(
                f"epoch {epoch:>3}/{cfg.epochs}  train loss {tr['loss']:.4f} acc {tr['top1']:5.2f}%  "
                f"test loss {ev['loss']:.4f} top1 {ev['top1']:5.2f}%  "
                f"{rows[-1]['images_per_second']:,.0f} img/s  {tr['seconds']:.1f} s"
            )
    r.runner.close()
    sha = save_weights(r.net, r.run_dir.weights)
    wall = time.perf_counter() - t_start
    return _write_summary(r, rows[-1], sha=sha, wall=wall, train_seconds=train_seconds, images=train_images)
