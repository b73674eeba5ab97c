"""What a run prints: the resolved config, the start line, a progress bar, one line per epoch, the end.

Only rank 0 prints (the others get a quiet console). The bar is rich's, updated every
``CHECK_EVERY`` steps from numbers the loop has already synchronised.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["ProgressBar", "print_config", "print_start", "print_epoch", "print_per_class"]


def print_config(console, cfg: dict[str, Any]) -> None:
    from rich.text import Text

    body = Text("resolved config: ", style="bold")
    for i, (k, v) in enumerate(cfg.items()):
        body.append(("" if i == 0 else "  ") + k, style="cyan")
        body.append(f"={v}")
    console.print(body)


def print_start(console, run, state, *, n_params: int, threads: int, resumed: bool) -> None:
    cfg, d, world = run.cfg, run.data, run.dist.world
    val = f" ({len(d.val):,} held out for validation)" if d.val is not None else ""
    console.print(
        f"[bold]cnnzoo train[/] {cfg.model} ({n_params:,} params) on {cfg.data}: {len(d.train):,} train"
        f"{val} / {len(d.test):,} test images, input {d.size}x{d.size} ({d.mode}), {run.n_epochs} epochs x "
        f"{run.steps_per_epoch} steps ({run.total_steps} total), batch {cfg.batch_size}"
        + (f" ({world} processes x {run.local_batch})" if world > 1 else "")
        + (f", EMA {cfg.ema}" if cfg.ema else "")
        + f", device {run.device}, {threads} threads -> {run.dir.path}"
        + (
            f"\nresuming at epoch {state.epoch + 1}, step {state.step_in_epoch} (global step {state.global_step})"
            if resumed
            else ""
        )
    )


def _scores(prefix: str, row: dict[str, Any], what: str) -> str:
    if not math.isfinite(row.get(f"{prefix}top1", math.nan)):
        return ""
    return f"  {what} loss {row[prefix + 'loss']:.4f} top1 {row[prefix + 'top1']:5.2f}%" + (
        f" top5 {row[prefix + 'top5']:5.2f}%" if f"{prefix}top5" in row else ""
    )


def print_epoch(console, run, row: dict[str, Any], *, improved: bool) -> None:
    side = run.progressive_side(row["epoch"] - 1)
    test = _scores("test_", row, "test") or "  (no test this epoch: --eval-every)"
    console.print(
        f"epoch {row['epoch']:>3}/{run.n_epochs}  train loss {row['train_loss']:.4f} "
        f"acc {row['train_top1']:5.2f}%"
        + _scores("val_", row, "val")
        + (" *" if improved else "")
        + _scores("ema_val_", row, "ema val")
        + test
        + _scores("ema_test_", row, "ema test")
        + f"  lr {row['lr']:.4g}  {row['images_per_second']:,.0f} img/s  {row['epoch_seconds']:.1f} s"
        + (f"  ({side}x{side})" if side is not None else "")
    )


def print_per_class(console, per_class: dict[str, float]) -> None:
    worst = sorted(per_class.items(), key=lambda kv: kv[1])[:3]
    console.print(
        "per-class top-1: "
        + "  ".join(f"{k} {v:.1f}%" for k, v in per_class.items())
        + f"\n(worst: {', '.join(k for k, _ in worst)})"
    )


class ProgressBar:
    """A rich progress bar over the run's optimizer steps (a no-op when disabled)."""

    def __init__(self, console, *, total: int, completed: int, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "loss {task.fields[loss]:.4f}  acc {task.fields[acc]:5.1f}%  "
                "{task.fields[ips]:,.0f} img/s  lr {task.fields[lr]:.4g}"
            ),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = self.bar.add_task(
            "train", total=total, completed=completed, epoch="", loss=0.0, acc=0.0, ips=0.0, lr=0.0
        )

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.enabled:
            self.bar.stop()

    def update(self, *, completed: int, epoch: str, loss: float, acc: float, ips: float, lr: float) -> None:
        if self.enabled:
            self.bar.update(self.task, completed=completed, epoch=epoch, loss=loss, acc=acc, ips=ips, lr=lr)
