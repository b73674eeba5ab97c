"""The training loop: SGD with momentum, evaluation every epoch, a rich progress bar, and a run
directory with metrics, weights (safetensors), config and summary.

``fit(TrainConfig(...))`` is the library entry point; ``cnnzoo train`` is a thin CLI over it.
"""

from __future__ import annotations

import csv
import math
import os
import platform
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnzoo.data import load_dataset, resolve_input
from cnnzoo.errors import CnnzooError, ConfigError
from cnnzoo.io import atomic_write_json
from cnnzoo.registry import create_model
from cnnzoo.train.checkpoint import CONFIG, METRICS, SUMMARY, WEIGHTS, save_weights
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.data_feed import DataFeed
from cnnzoo.train.evaluate import evaluate, logits_of

__all__ = ["fit", "select_device", "TrainingDivergedError", "default_out_dir"]

METRIC_FIELDS = ("epoch", "train_loss", "train_top1", "test_loss", "test_top1", "test_top5", "lr",
                 "images_per_second", "epoch_seconds")


class TrainingDivergedError(CnnzooError, RuntimeError):
    """The loss became NaN or infinite."""


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; an unavailable device is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but CUDA is not available; use --device cpu or auto")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps requested but MPS is not available; use --device cpu or auto")
    return dev


def default_out_dir(model: str) -> Path:
    return Path("runs") / f"{model}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _lr_factor(cfg: TrainConfig, step: int, total: int, steps_per_epoch: int) -> float:
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if step < warm:
        return (step + 1) / warm
    if cfg.schedule == "constant":
        return 1.0
    t = (step - warm) / max(1, total - warm)
    return 0.5 * (1.0 + math.cos(math.pi * t))


def _loss_fn(model: nn.Module):
    custom = getattr(model, "loss", None)
    if callable(custom):
        return custom
    return lambda out, y: F.cross_entropy(out, y)


def fit(cfg: TrainConfig, *, console=None, progress: bool = True) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.data`` and write the run directory. Returns the summary dict."""
    from rich.console import Console

    cfg.validate()
    console = console or Console()
    t_start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = select_device(cfg.device)
    out = Path(cfg.out) if cfg.out else default_out_dir(cfg.model)
    out.mkdir(parents=True, exist_ok=True)

    train_ds = load_dataset(cfg.data, "train", data_dir=cfg.data_dir)
    test_ds = load_dataset(cfg.data, "test", data_dir=cfg.data_dir)
    if cfg.train_samples:
        train_ds = train_ds.subset(cfg.train_samples, seed=cfg.seed)
    model = create_model(cfg.model, num_classes=train_ds.num_classes, in_chans=train_ds.channels,
                         **cfg.model_kwargs).to(device)
    size, mode = resolve_input(model.default_cfg, cfg.input_size, train_ds.images.shape[-1])
    train_feed = DataFeed(train_ds, size=size, mode=mode, in_chans=model.in_chans, device=device)
    test_feed = DataFeed(test_ds, size=size, mode=mode, in_chans=model.in_chans, device=device)

    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay)
    steps_per_epoch = train_feed.num_batches(cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: _lr_factor(cfg, s, total_steps, steps_per_epoch))
    loss_fn = _loss_fn(model)
    gen = torch.Generator().manual_seed(cfg.seed)

    n_params = sum(p.numel() for p in model.parameters())
    resolved = {**cfg.to_dict(), "out": str(out), "input_size": size, "input_mode": mode,
                "num_classes": model.num_classes, "in_chans": model.in_chans,
                "model_config": model.default_cfg.to_dict()}
    atomic_write_json(out / CONFIG, resolved)
    console.print(f"[bold]cnnzoo train[/] {cfg.model} ({n_params:,} params) on {cfg.data}: "
                  f"{len(train_ds):,} train / {len(test_ds):,} test images, input {size}x{size} ({mode}), "
                  f"{cfg.epochs} epochs x {steps_per_epoch} steps, batch {cfg.batch_size}, device {device}, "
                  f"{torch.get_num_threads()} threads -> {out}")

    metrics_path = out / METRICS
    with open(metrics_path, "w", newline="") as f:
        csv.writer(f).writerow(METRIC_FIELDS)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:5.1f}%  "
                              "{task.fields[ips]:,.0f} img/s  lr {task.fields[lr]:.4f}"),
                   TimeRemainingColumn(), console=console, disable=not progress, transient=True)
    train_seconds, train_images, last = 0.0, 0, {}
    model.train()
    with bar:
        task = bar.add_task("train", total=total_steps, epoch=f"1/{cfg.epochs}", loss=0.0, acc=0.0, ips=0.0,
                            lr=opt.param_groups[0]["lr"])
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            for step, (x, y) in enumerate(train_feed.batches(cfg.batch_size, shuffle=True, generator=gen)):
                out_ = model(x)
                loss = loss_fn(out_, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.detach() * y.shape[0]
                correct += (logits_of(out_).argmax(1) == y).sum()
                seen += y.shape[0]
                if step % 25 == 0 or step == steps_per_epoch - 1:
                    cur = float(loss.detach())
                    if not math.isfinite(cur):
                        raise TrainingDivergedError(
                            f"loss became {cur} at epoch {epoch}, step {step}; lower --lr (now {cfg.lr})")
                    dt = time.perf_counter() - t0
                    bar.update(task, completed=(epoch - 1) * steps_per_epoch + step + 1,
                               epoch=f"{epoch}/{cfg.epochs}", loss=float(loss_sum) / seen,
                               acc=100.0 * float(correct) / seen, ips=seen / max(dt, 1e-9),
                               lr=opt.param_groups[0]["lr"])
            epoch_train = time.perf_counter() - t0
            train_seconds += epoch_train
            train_images += seen
            ev = evaluate(model, test_feed.batches(cfg.eval_batch_size), num_samples=len(test_feed))
            last = {"epoch": epoch, "train_loss": float(loss_sum) / seen,
                    "train_top1": 100.0 * float(correct) / seen, "test_loss": ev["loss"],
                    "test_top1": ev["top1"], "test_top5": ev["top5"], "lr": opt.param_groups[0]["lr"],
                    "images_per_second": seen / epoch_train, "epoch_seconds": time.perf_counter() - t0}
            with open(metrics_path, "a", newline="") as f:
                csv.writer(f).writerow([f"{last[k]:.6g}" if isinstance(last[k], float) else last[k]
                                        for k in METRIC_FIELDS])
            console.print(f"epoch {epoch:>3}/{cfg.epochs}  train loss {last['train_loss']:.4f} "
                          f"acc {last['train_top1']:5.2f}%  test loss {ev['loss']:.4f} "
                          f"top1 {ev['top1']:5.2f}%  {last['images_per_second']:,.0f} img/s  "
                          f"{last['epoch_seconds']:.1f} s")

    sha = save_weights(model, out / WEIGHTS)
    summary = {
        "model": cfg.model, "data": cfg.data, "engine": "torch", "epochs": cfg.epochs,
        "batch_size": cfg.batch_size, "seed": cfg.seed,
        "test_top1": last["test_top1"], "test_top5": last["test_top5"], "test_loss": last["test_loss"],
        "train_loss": last["train_loss"], "wall_seconds": time.perf_counter() - t_start,
        "train_seconds": train_seconds, "images_per_second": train_images / max(train_seconds, 1e-9),
        "weights_sha256": sha, "weights_file": WEIGHTS, "params": n_params,
        "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "host": platform.node(), "cpu_count": os.cpu_count(),
    }
    atomic_write_json(out / SUMMARY, summary)
    return summary
