"""Training a scratch network on Fashion-MNIST (or MNIST): the loop behind ``cnnzoo scratch train``.

The recipe mirrors ``cnnzoo train`` (SGD with Nesterov momentum 0.9, weight decay 5e-4, lr 0.05 —
0.002 for ``lenet5``, see ``DEFAULT_LR`` — with half an epoch of linear warmup then per-step cosine
decay, batch 128) and so does the input: the
28×28 uint8 images are zero-padded to 32×32 *before* scaling to [0, 1] and normalising with the
dataset's mean/std, like ``cnnzoo.data.adapt_images``. The run directory has the same files:
``weights.safetensors`` (the torch model's ``state_dict`` keys, so ``cnnzoo eval DIR`` and
``cnnzoo.train.runs.load_run`` open it), ``config.json``, ``metrics.csv`` and ``summary.json``
(with ``"engine": "numpy"``). No torch.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnzoo.errors import CnnzooError, ConfigError
from cnnzoo.io import atomic_write, atomic_write_json, sha256_file
from cnnzoo.scratch import ops
from cnnzoo.scratch.blas import get_blas_threads, set_blas_threads
from cnnzoo.scratch.layers import Sequential
from cnnzoo.scratch.nets import create_net
from cnnzoo.scratch.optim import SGD
from cnnzoo.scratch.parallel import DataParallel

__all__ = ["ScratchTrainConfig", "fit", "prepare_images", "evaluate", "save_weights", "TrainingDivergedError"]

WEIGHTS, CONFIG, SUMMARY, METRICS = "weights.safetensors", "config.json", "summary.json", "metrics.csv"
METRIC_FIELDS = (
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_top1",
    "lr",
    "images_per_second",
    "seconds",
)


#: Peak learning rates for the recipe. The 1998 network's RBF output gives cross-entropy logits of
#: size ~100 (negative squared distances), so it needs a much smaller step: on 10k images, one
#: epoch reaches 26 % at lr 0.05, 29 % at 0.01 and 77 % at 0.002.
DEFAULT_LR = {"lenet5_relu": 0.05, "lenet5": 0.002}


class TrainingDivergedError(CnnzooError, RuntimeError):
    """The loss became NaN or infinite."""


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
    """Mean cross-entropy and top-1 accuracy (percent) of ``net`` in eval mode."""
    net.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(labels), batch_size):
        x = prepare_images(images[i : i + batch_size], side=side, mean=mean, std=std)
        y = labels[i : i + batch_size]
        z = net(x)
        loss, _ = ops.softmax_cross_entropy(z, y)
        loss_sum += loss * len(y)
        correct += int((z.argmax(1) == y).sum())
    net.train()
    n = max(len(labels), 1)
    return {"loss": loss_sum / n, "top1": 100.0 * correct / n}


def save_weights(net: Sequential, path: str | Path) -> str:
    """Write ``net.state_dict()`` as safetensors atomically (temp file + os.replace); return its sha256."""
    from safetensors.numpy import save_file

    state = {k: np.ascontiguousarray(v) for k, v in net.state_dict().items()}
    atomic_write(
        path, lambda tmp: save_file(state, tmp, metadata={"format": "pt"})
    )
    return sha256_file(path)


def _subset(x: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if n is None or n >= len(y):
        return x, y
    idx = np.random.default_rng(seed).permutation(len(y))[:n]
    return x[idx], y[idx]


def fit(cfg: ScratchTrainConfig, *, console=None, progress: bool = True) -> dict[str, Any]:
    """Train ``cfg.model`` with the NumPy engine and write the run directory; return the summary."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cnnzoo.data import load_arrays

    cfg.validate()
    if cfg.lr is None:
        cfg = dataclasses.replace(cfg, lr=DEFAULT_LR.get(cfg.model, 0.05))
    console = console or Console()
    t_start = time.perf_counter()
    if cfg.threads or cfg.workers > 1:
        set_blas_threads(cfg.threads or 1)
    net = create_net(cfg.model, seed=cfg.seed)  # fails early, before loading data, on a bad name
    out = Path(cfg.out) if cfg.out else Path("runs") / f"scratch-{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    xtr, ytr, spec, _ = load_arrays(cfg.data, "train", data_dir=cfg.data_dir)
    xte, yte, _, _ = load_arrays(cfg.data, "test", data_dir=cfg.data_dir)
    xtr, ytr = _subset(xtr, ytr, cfg.train_samples, cfg.seed)
    xte, yte = _subset(xte, yte, cfg.test_samples, cfg.seed + 1)
    num_classes, in_chans = len(spec.classes), xtr.shape[1]
    if num_classes != 10 or in_chans != 1:
        net = create_net(cfg.model, num_classes=num_classes, in_chans=in_chans, seed=cfg.seed)
    side, mean, std = 32, spec.mean, spec.std
    if xtr.shape[-1] > side:
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
    n = len(ytr)
    steps_per_epoch = -(-n // cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    rng = np.random.default_rng(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    resolved = {
        **dataclasses.asdict(cfg),
        "engine": "numpy",
        "out": str(out),
        "input_size": side,
        "input_mode": "pad",
        "num_classes": num_classes,
        "in_chans": in_chans,
        "model_kwargs": {},
        "weights_file": WEIGHTS,
    }
    atomic_write_json(out / CONFIG, resolved)
    console.print(
        f"[bold]cnnzoo scratch train[/] {cfg.model} ({net.num_params():,} params, NumPy engine) on "
        f"{spec.name}: {n:,} train / {len(yte):,} test images, input {side}x{side} (pad), "
        f"{cfg.epochs} epochs x {steps_per_epoch} steps, batch {cfg.batch_size} -> {out}"
    )
    metrics_path = out / METRICS
    with open(metrics_path, "w", newline="") as f:
        csv.writer(f).writerow(METRIC_FIELDS)

    bar = Progress(
        TextColumn("[bold]epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "loss {task.fields[loss]:.4f}  acc {task.fields[acc]:5.1f}%  {task.fields[ips]:,.0f} img/s"
        ),
        TimeRemainingColumn(),
        console=console,
        disable=not progress,
        transient=True,
    )
    step, train_seconds, train_images, last = 0, 0.0, 0, {}
    net.train()
    with bar:
        task = bar.add_task("train", total=total_steps, epoch=f"1/{cfg.epochs}", loss=0.0, acc=0.0, ips=0.0)
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            order = rng.permutation(n)
            loss_sum, correct, seen = 0.0, 0, 0
            for i in range(0, n, cfg.batch_size):
                idx = np.sort(order[i : i + cfg.batch_size])  # sorted: a friendlier gather, same batch
                x = prepare_images(xtr[idx], side=side, mean=mean, std=std)
                y = ytr[idx]
                loss, z = runner.step(x, y)  # forward, loss and backward (micro-batches, threads)
                if not math.isfinite(loss):
                    raise TrainingDivergedError(
                        f"loss became {loss} at epoch {epoch}, step {step}; lower --lr (now {cfg.lr})"
                    )
                opt.lr = _lr_at(cfg, step, total_steps, steps_per_epoch)
                opt.step()
                step += 1
                loss_sum += loss * len(y)
                correct += int((z.argmax(1) == y).sum())
                seen += len(y)
                if step % 10 == 0 or i + cfg.batch_size >= n:
                    bar.update(
                        task,
                        completed=step,
                        epoch=f"{epoch}/{cfg.epochs}",
                        loss=loss_sum / seen,
                        acc=100.0 * correct / seen,
                        ips=seen / max(time.perf_counter() - t0, 1e-9),
                    )
            epoch_train = time.perf_counter() - t0
            train_seconds += epoch_train
            train_images += seen
            ev = evaluate(net, xte, yte, side=side, mean=mean, std=std, batch_size=cfg.eval_batch_size)
            last = {
                "epoch": epoch,
                "train_loss": loss_sum / seen,
                "train_acc": 100.0 * correct / seen,
                "test_loss": ev["loss"],
                "test_top1": ev["top1"],
                "lr": opt.lr,
                "images_per_second": seen / epoch_train,
                "seconds": time.perf_counter() - t0,
            }
            with open(metrics_path, "a", newline="") as f:
                csv.writer(f).writerow(
                    [f"{last[k]:.6g}" if isinstance(last[k], float) else last[k] for k in METRIC_FIELDS]
                )
            console.print(
                f"epoch {epoch:>3}/{cfg.epochs}  train loss {last['train_loss']:.4f} "
                f"acc {last['train_acc']:5.2f}%  test loss {ev['loss']:.4f} top1 {ev['top1']:5.2f}%  "
                f"{last['images_per_second']:,.0f} img/s  {last['seconds']:.1f} s"
            )

    runner.close()
    sha = save_weights(net, out / WEIGHTS)
    summary = {
        "model": cfg.model,
        "data": spec.name,
        "engine": "numpy",
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "seed": cfg.seed,
        "test_top1": last["test_top1"],
        "test_loss": last["test_loss"],
        "train_loss": last["train_loss"],
        "wall_seconds": time.perf_counter() - t_start,
        "train_seconds": train_seconds,
        "images_per_second": train_images / max(train_seconds, 1e-9),
        "weights_sha256": sha,
        "weights_file": WEIGHTS,
        "params": net.num_params(),
        "threads": get_blas_threads(),
        "workers": cfg.workers,
        "micro_batch": cfg.micro_batch,
        "numpy": np.__version__,
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "out": str(out),
    }
    atomic_write_json(out / SUMMARY, summary)
    return summary
