"""The training loop: any optimizer and schedule, batched augmentation, AMP, evaluation every epoch
(with TTA), exact checkpoints and resume, DDP through torchrun, and a run directory with metrics,
weights (safetensors), config, summary and a report.

``fit(TrainConfig(...))`` is the library entry point; ``cnnzoo train`` is a thin CLI over it.

Exact resume. A checkpoint holds everything that decides the rest of the run: the weights, the
optimizer (momentum buffers), the schedule (step counter, plateau state), the GradScaler, the torch
CPU/CUDA RNG states (dropout), the augmentation generator, and the sampler position (epoch and step
within the epoch). The shuffle order of epoch ``e`` is drawn from a generator seeded with
``(seed, e)``, so the position alone restores it. The model is deterministic on the CPU for a
fixed thread count, so a resumed run reproduces the uninterrupted run's ``weights_sha256``.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import platform
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnzoo.data import load_dataset, resolve_input
from cnnzoo.data.datasets import dataset_spec
from cnnzoo.errors import CnnzooError, ConfigError
from cnnzoo.io import atomic_write, atomic_write_json
from cnnzoo.registry import create_model, get_model_config
from cnnzoo.train import distributed as D
from cnnzoo.train.checkpoint import (
    BEST,
    CONFIG,
    METRICS,
    SUMMARY,
    WEIGHTS,
    CheckpointError,
    has_checkpoint,
    load_checkpoint,
    read_json,
    save_checkpoint,
    save_weights,
)
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.data_feed import DataFeed
from cnnzoo.train.evaluate import evaluate, logits_of

__all__ = [
    "fit",
    "select_device",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "default_out_dir",
    "resolve_amp",
    "METRIC_FIELDS",
]

METRIC_FIELDS = (
    "epoch",
    "step",
    "train_loss",
    "train_top1",
    "test_loss",
    "test_top1",
    "test_top5",
    "lr",
    "images_per_second",
    "epoch_seconds",
    "elapsed_seconds",
)
CHECK_EVERY = 25  # steps between loss finiteness checks and progress updates (each one syncs)


class TrainingDivergedError(CnnzooError, RuntimeError):
    """The loss became NaN or infinite."""


class TrainingInterrupted(CnnzooError, RuntimeError):
    """Ctrl-C or SIGTERM (or a test's stop request): a checkpoint was saved; ``run_dir`` resumes it."""

    def __init__(self, message: str, run_dir: Path) -> None:
        super().__init__(message)
        self.run_dir = run_dir


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


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``--amp`` on ``device`` (None: full fp32).

    ``auto`` is fp16 (with a GradScaler) on CUDA and off elsewhere: bf16 autocast on CPUs without
    AMX/AVX512-BF16 is slower than fp32 for these small convnets (``benchmarks/trainer_speed.py``
    measures it), so it is opt-in there with ``--amp bf16``.
    """
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.float16
    if amp == "fp16" and device.type == "cpu":
        raise ConfigError("--amp fp16 needs a CUDA or MPS device; on the CPU use --amp bf16 (or off)")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def default_out_dir(model: str) -> Path:
    return Path("runs") / f"{model}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _shuffle_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 1) % (2**63)


def _loss_fn(model: nn.Module, label_smoothing: float) -> Callable:
    custom = getattr(model, "loss", None)
    if callable(custom):
        if label_smoothing:
            return lambda out, y: custom(out, y, label_smoothing=label_smoothing)
        return custom
    return lambda out, y: F.cross_entropy(logits_of(out), y, label_smoothing=label_smoothing)


class _StopFlag:
    """SIGINT/SIGTERM set a flag read at the next step boundary; a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._old: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def _rng_state(aug_gen: torch.Generator) -> dict[str, Any]:
    st = {"torch": torch.get_rng_state(), "aug": aug_gen.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any], aug_gen: torch.Generator) -> None:
    torch.set_rng_state(st["torch"])
    aug_gen.set_state(st["aug"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    def w(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(METRIC_FIELDS)
            for r in rows:
                wr.writerow([f"{r[k]:.6g}" if isinstance(r[k], float) else r[k] for k in METRIC_FIELDS])

    atomic_write(path, w)


def _print_config(console, cfg: dict[str, Any]) -> None:
    from rich.text import Text

    body = Text("resolved config: ", style="bold")
    for i, (k, v) in enumerate(cfg.items()):
        body.append(("" if i == 0 else "  ") + k, style="cyan")
        body.append(f"={v}")
    console.print(body)


def _build_data(
    cfg: TrainConfig, device: torch.device, memory_format
) -> tuple[Any, Any, nn.Module, int, str]:
    """The train and test feeds and the model (on ``device``), with the resolved input side and mode."""
    spec = dataset_spec(cfg.data)
    if spec.streaming:
        from cnnzoo.data.imagefolder import ImageFolderFeed

        mcfg = get_model_config(cfg.model)
        size = cfg.input_size or mcfg.input_size[-1]
        if size < mcfg.min_input_size:
            raise ConfigError(
                f"--input-size {size} is below {cfg.model}'s minimum input size "
                f"{mcfg.min_input_size}; use --input-size {mcfg.min_input_size} or more"
            )
        in_chans = mcfg.input_size[0]
        kw = dict(
            size=size,
            in_chans=in_chans,
            mean=spec.mean,
            std=spec.std,
            device=device,
            workers=cfg.workers,
            memory_format=memory_format,
        )
        train_feed = ImageFolderFeed(cfg.data_dir, "train", **kw)
        test_feed = ImageFolderFeed(cfg.data_dir, "test", classes=train_feed.classes, **kw)
        if cfg.train_samples and cfg.train_samples < len(train_feed):
            g = torch.Generator().manual_seed(cfg.seed)
            keep = sorted(torch.randperm(len(train_feed), generator=g)[: cfg.train_samples].tolist())
            train_feed.data.samples = [train_feed.data.samples[i] for i in keep]
            train_feed.labels = train_feed.labels[keep]
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run
        model = create_model(
            cfg.model, num_classes=len(train_feed.classes), in_chans=in_chans, **cfg.model_kwargs
        )
        return train_feed, test_feed, model, size, "resize"
    train_ds = load_dataset(cfg.data, "train", data_dir=cfg.data_dir)
    test_ds = load_dataset(cfg.data, "test", data_dir=cfg.data_dir)
    if cfg.train_samples:
        train_ds = train_ds.subset(cfg.train_samples, seed=cfg.seed)
    if cfg.test_samples:
        test_ds = test_ds.subset(cfg.test_samples, seed=cfg.seed + 1)
    get_model_config(cfg.model)  # imports the model modules first: importing must not shift the seed
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run
    model = create_model(
        cfg.model, num_classes=train_ds.num_classes, in_chans=train_ds.channels, **cfg.model_kwargs
    )
    size, mode = resolve_input(model.default_cfg, cfg.input_size, train_ds.images.shape[-1])
    kw = dict(size=size, mode=mode, in_chans=model.in_chans, device=device, memory_format=memory_format)
    return DataFeed(train_ds, **kw), DataFeed(test_ds, **kw), model, size, mode


def _classes_of(feed) -> tuple[str, ...]:
    return tuple(feed.classes) if hasattr(feed, "classes") else tuple(feed.ds.classes)


def _mean_std(feed) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return (feed.mean, feed.std) if hasattr(feed, "mean") else (feed.ds.mean, feed.ds.std)


def fit(
    cfg: TrainConfig,
    *,
    console=None,
    progress: bool = True,
    resume: str | Path | None = None,
    stop_after_steps: int | None = None,
    on_step: Callable[[int, nn.Module], None] | None = None,
    overrides: dict[str, Any] | None = None,
    report: bool = True,
) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.data`` and write the run directory. Returns the summary dict.

    Args:
        cfg: the run's config (ignored when ``resume`` is given: the run directory's is used).
        console: a rich Console (default: a new one); ranks other than 0 print nothing.
        progress: show the rich progress bar.
        resume: a run directory with a checkpoint: continue it exactly.
        stop_after_steps: (tests) behave as if Ctrl-C arrived after this many optimizer steps.
        on_step: (tests) called as ``on_step(global_step, model)`` after every optimizer step.
        overrides: with ``resume``, fields to change in the saved config (e.g. ``{"epochs": 3}``).
        report: write the end-of-run plots and confusion matrix (tests turn it off for speed).

    Raises:
        TrainingInterrupted: after Ctrl-C/SIGTERM, once the checkpoint is saved.
        TrainingDivergedError: the loss became NaN/inf; the last good checkpoint is kept.
        CheckpointError: ``resume`` points at a missing, truncated or foreign checkpoint.
    """
    from rich.console import Console

    t_start = time.perf_counter()
    dist = D.detect()
    if resume is not None:
        rdir = Path(resume)
        if not has_checkpoint(rdir):
            load_checkpoint(rdir)  # raises the clear CheckpointError
        saved = read_json(rdir / CONFIG)
        fields = set(TrainConfig.field_names())
        cfg = TrainConfig.from_dict({k: v for k, v in saved.items() if k in fields})
        cfg.out = str(rdir)
        for k, v in (overrides or {}).items():
            setattr(cfg, k, v)
        cfg.__post_init__()
    cfg.validate()
    is_main = dist.is_main
    console = console or Console()
    if not is_main:
        console = Console(quiet=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    world, rank = dist.world, dist.rank
    if cfg.batch_size % world:
        raise ConfigError(
            f"the global batch {cfg.batch_size} does not divide over {world} processes; use a "
            f"--batch-size that is a multiple of {world}"
        )
    device = D.init(dist, select_device(cfg.device))
    local_batch = cfg.batch_size // world
    out = Path(cfg.out) if cfg.out else default_out_dir(cfg.model)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)

    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    train_feed, test_feed, model, size, mode = _build_data(cfg, device, memory_format)
    model = model.to(device, memory_format=memory_format)
    too_small = [s for s in cfg.progressive_sizes if s < model.default_cfg.min_input_size]
    if too_small:
        raise ConfigError(
            f"--progressive-sizes {','.join(map(str, cfg.progressive_sizes))} goes below {cfg.model}'s "
            f"minimum input size {model.default_cfg.min_input_size}; use sides of at least that"
        )
    if rank:
        torch.manual_seed(cfg.seed + 1_000_003 * rank)  # distinct dropout masks per rank

    from cnnzoo.train.optim import build_optimizer
    from cnnzoo.train.schedules import build_schedule

    opt = build_optimizer(
        model,
        name=cfg.optimizer,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
        betas=tuple(cfg.betas),
        no_decay_bn_bias=cfg.no_decay_bn_bias,
    )
    steps_per_epoch = train_feed.num_batches(local_batch, world=world)
    total_steps = cfg.iterations or steps_per_epoch * cfg.epochs
    n_epochs = math.ceil(total_steps / steps_per_epoch)
    sched = build_schedule(
        opt,
        name=cfg.schedule,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        warmup_steps=round(cfg.warmup_epochs * steps_per_epoch),
        warmup_start_factor=cfg.warmup_start_factor,
        milestones=tuple(cfg.milestones),
        milestone_unit=cfg.milestone_unit,
        gamma=cfg.gamma,
        step_size=cfg.step_size,
        plateau_patience=cfg.plateau_patience,
        min_lr_factor=cfg.min_lr_factor,
        onecycle_pct_start=cfg.onecycle_pct_start,
    )
    amp_dtype = resolve_amp(cfg.amp, device)
    autocast = (
        (lambda: torch.autocast(device.type, dtype=amp_dtype))
        if amp_dtype is not None
        else contextlib.nullcontext
    )
    scaler = (
        torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 and device.type == "cuda" else None
    )

    aug = None
    if cfg.crop_padding or cfg.hflip or cfg.pca_lighting or cfg.scale_jitter or cfg.random_erasing:
        from cnnzoo.train.augment import build_augment

        aug = build_augment(
            crop_padding=cfg.crop_padding,
            hflip=cfg.hflip,
            pca_lighting=cfg.pca_lighting,
            scale_jitter=tuple(cfg.scale_jitter) if cfg.scale_jitter else None,
            random_erasing=cfg.random_erasing,
            out_size=cfg.eval_crop,
            std=_mean_std(train_feed)[1],
        )
    predict = None
    if cfg.eval_mode != "none":
        from cnnzoo.train.tta import predict as tta_predict

        predict = lambda m, x: tta_predict(m, x, mode=cfg.eval_mode, crop=cfg.eval_crop)  # noqa: E731
    aug_gen = torch.Generator().manual_seed(cfg.seed * 2 + 1 + 7_919 * rank)

    # ---------------------------------------------------------------- resume
    start_epoch, start_step, global_step = 0, 0, 0
    history: list[dict[str, Any]] = []
    best_top1 = -math.inf
    acc_state = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
    totals = {"train_seconds": 0.0, "train_images": 0, "wall_seconds": 0.0}
    if resume is not None:
        st = load_checkpoint(out, model)
        if int(st.get("world", 1)) != world:
            raise CheckpointError(
                f"{out} was checkpointed by a {st.get('world')}-process run; resume it with "
                f"the same number of processes (this is {world})"
            )
        if st.get("model") != cfg.model:
            raise CheckpointError(
                f"{out}'s checkpoint is for {st.get('model')!r}, the config says {cfg.model!r}"
            )
        try:
            opt.load_state_dict(st["optimizer"])
            sched.load_state_dict(st["schedule"])
            if scaler is not None and st.get("scaler"):
                scaler.load_state_dict(st["scaler"])
        except (KeyError, ValueError) as e:
            raise CheckpointError(
                f"{out}: the checkpoint's optimizer/schedule state does not fit this run ({e})"
            ) from e
        _set_rng_state(st["rng"][rank], aug_gen)
        start_epoch, start_step, global_step = (
            int(st["epoch"]),
            int(st["step_in_epoch"]),
            int(st["global_step"]),
        )
        history = list(st["metrics"])
        best_top1 = float(st["best_top1"])
        acc_state = dict(st["epoch_acc"])
        totals = dict(st["totals"])
    # torchrun/DDP and torch.compile wrap the forward; ``model`` stays the plain module we save
    fwd: nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        fwd = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        fwd = torch.compile(fwd)
    loss_fn = _loss_fn(model, cfg.label_smoothing)

    n_params = sum(p.numel() for p in model.parameters())
    resolved = {
        **cfg.to_dict(),
        "out": str(out),
        "input_size": size,
        "input_mode": mode,
        "num_classes": model.num_classes,
        "in_chans": model.in_chans,
        "world_size": world,
        "local_batch_size": local_batch,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "amp_dtype": str(amp_dtype).replace("torch.", "") if amp_dtype else "off",
        "model_config": model.default_cfg.to_dict(),
    }
    if is_main:
        atomic_write_json(out / CONFIG, resolved)
        _print_config(console, {k: v for k, v in resolved.items() if k != "model_config"})
        console.print(
            f"[bold]cnnzoo train[/] {cfg.model} ({n_params:,} params) on {cfg.data}: "
            f"{len(train_feed):,} train / "
            f"{len(test_feed):,} test images, input {size}x{size} ({mode}), {n_epochs} epochs x "
            f"{steps_per_epoch} steps ({total_steps} total), batch {cfg.batch_size}"
            + (f" ({world} processes x {local_batch})" if world > 1 else "")
            + f", device {device}, {torch.get_num_threads()} threads -> {out}"
            + (
                f"\nresuming at epoch {start_epoch + 1}, step {start_step} (global step {global_step})"
                if resume is not None
                else ""
            )
        )
        _write_metrics(out / METRICS, history)
    from cnnzoo.train.report import TensorBoardLogger

    tb = TensorBoardLogger(out if is_main else None)

    def checkpoint(epoch: int, step_in_epoch: int, acc: dict[str, Any]) -> None:
        rng = D.all_gather_objects(_rng_state(aug_gen), dist)
        if not is_main:
            return
        save_checkpoint(
            out,
            model,
            {
                "model": cfg.model,
                "world": world,
                "epoch": epoch,
                "step_in_epoch": step_in_epoch,
                "global_step": global_step,
                "optimizer": opt.state_dict(),
                "schedule": sched.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "rng": rng,
                "metrics": history,
                "best_top1": best_top1,
                "epoch_acc": acc,
                "totals": {**totals, "wall_seconds": totals["wall_seconds"] + time.perf_counter() - t_start},
            },
        )

    def diverged(value: float, epoch: int, step: int) -> TrainingDivergedError:
        kept = (
            f"; the last good checkpoint is kept: resume it with `cnnzoo train --resume {out}`"
            if has_checkpoint(out)
            else ""
        )
        return TrainingDivergedError(
            f"loss became {value} at epoch {epoch + 1}, step {step}; lower --lr "
            f"(now {cfg.lr}) or add warmup{kept}"
        )

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("[bold]epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "loss {task.fields[loss]:.4f}  acc {task.fields[acc]:5.1f}%  "
            "{task.fields[ips]:,.0f} img/s  lr {task.fields[lr]:.4g}"
        ),
        TimeRemainingColumn(),
        console=console,
        disable=not (progress and is_main),
        transient=True,
    )
    last_eval: dict[str, Any] = {}
    model.train()
    with _StopFlag() as stop_flag, bar:
        task = bar.add_task(
            "train",
            total=total_steps,
            completed=global_step,
            epoch=f"{start_epoch + 1}/{n_epochs}",
            loss=0.0,
            acc=0.0,
            ips=0.0,
            lr=opt.param_groups[0]["lr"],
        )
        for epoch in range(start_epoch, n_epochs):
            gen = torch.Generator().manual_seed(_shuffle_seed(cfg.seed, epoch))
            skip = start_step if epoch == start_epoch else 0
            if skip == 0:
                acc_state = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
            loss_sum = torch.tensor(float(acc_state["loss_sum"]), device=device)
            correct = torch.tensor(int(acc_state["correct"]), device=device)
            seen, t0, step_in_epoch = int(acc_state["seen"]), time.perf_counter(), skip
            seconds_before = float(acc_state["seconds"])

            def acc_now() -> dict[str, Any]:  # called within this iteration only
                return {
                    "loss_sum": float(loss_sum),  # noqa: B023
                    "correct": int(correct),  # noqa: B023
                    "seen": seen,  # noqa: B023
                    "seconds": seconds_before + time.perf_counter() - t0,  # noqa: B023
                }

            side = cfg.progressive_sizes[epoch] if epoch < len(cfg.progressive_sizes) else None
            for x, y in train_feed.batches(
                local_batch, shuffle=True, generator=gen, start=skip, rank=rank, world=world
            ):
                if aug is not None:
                    x = aug(x, aug_gen)
                if side is not None and side != x.shape[-1]:  # progressive resizing
                    x = F.interpolate(
                        x, size=(side, side), mode="bilinear", align_corners=False, antialias=True
                    ).contiguous(memory_format=memory_format)
                with autocast():
                    out_ = fwd(x)
                    loss = loss_fn(out_, y)
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    opt.step()
                sched.step_batch()
                global_step += 1
                step_in_epoch += 1
                loss_sum += loss.detach().float() * y.shape[0]
                correct += (logits_of(out_).detach().argmax(1) == y).sum()
                seen += y.shape[0]
                if on_step is not None:
                    on_step(global_step, model)
                if step_in_epoch % CHECK_EVERY == 1 or step_in_epoch == steps_per_epoch:
                    cur = float(loss.detach())
                    if not math.isfinite(cur):
                        raise diverged(cur, epoch, step_in_epoch)
                    dt = seconds_before + time.perf_counter() - t0
                    bar.update(
                        task,
                        completed=global_step,
                        epoch=f"{epoch + 1}/{n_epochs}",
                        loss=float(loss_sum) / seen,
                        acc=100.0 * float(correct) / seen,
                        ips=seen * world / max(dt, 1e-9),
                        lr=opt.param_groups[0]["lr"],
                    )
                done = global_step >= total_steps
                stop = stop_flag.requested is not None or (
                    stop_after_steps is not None and global_step >= stop_after_steps and not done
                )
                if world > 1:
                    stop = D.broadcast_flag(stop, device)
                periodic = (
                    cfg.checkpoint_every_steps
                    and global_step % cfg.checkpoint_every_steps == 0
                    and step_in_epoch < steps_per_epoch
                    and not done
                )
                if stop or periodic:
                    if not math.isfinite(float(loss_sum)):
                        raise diverged(float(loss_sum), epoch, step_in_epoch)
                    checkpoint(epoch, step_in_epoch, acc_now())
                    if stop:
                        why = stop_flag.requested or f"stop requested after {global_step} steps"
                        bar.stop()
                        raise TrainingInterrupted(
                            f"{why}: checkpoint saved at epoch {epoch + 1}, "
                            f"step {step_in_epoch}/{steps_per_epoch} "
                            f"(global step {global_step}) in {out}. Resume with: cnnzoo train --resume {out}",
                            out,
                        )
                if done:
                    break
            # ---------------------------------------------------- end of epoch
            acc = acc_now()
            if not math.isfinite(acc["loss_sum"]):
                raise diverged(acc["loss_sum"], epoch, step_in_epoch)
            red = D.all_reduce_sum([acc["loss_sum"], acc["correct"], acc["seen"]], device)
            final = epoch == n_epochs - 1
            if not final and (cfg.eval_every == 0 or (epoch + 1) % cfg.eval_every):
                ev = {"loss": math.nan, "top1": math.nan, "top5": math.nan}
            elif world > 1 and hasattr(test_feed, "shard"):
                ev = evaluate(
                    model,
                    test_feed.shard(cfg.eval_batch_size, rank=rank, world=world),
                    num_samples=None,
                    predict=predict,
                    autocast=autocast if amp_dtype else None,
                )
                s = D.all_reduce_sum([ev["loss_sum"], ev["correct1"], ev["correct5"], ev["n"]], device)
                ev.update(loss=s[0] / s[3], top1=100.0 * s[1] / s[3], top5=100.0 * s[2] / s[3], n=int(s[3]))
            else:
                ev = evaluate(
                    model,
                    test_feed.batches(cfg.eval_batch_size),
                    num_samples=len(test_feed),
                    predict=predict,
                    autocast=autocast if amp_dtype else None,
                    collect=final and is_main,
                )
            tested = math.isfinite(ev["top1"])
            if tested:
                last_eval = ev
                sched.step_epoch(ev["loss"])
            totals["train_seconds"] += acc["seconds"]  # a resumed epoch's earlier part is in acc already
            totals["train_images"] += int(red[2])
            row = {
                "epoch": epoch + 1,
                "step": global_step,
                "train_loss": red[0] / red[2],
                "train_top1": 100.0 * red[1] / red[2],
                "test_loss": ev["loss"],
                "test_top1": ev["top1"],
                "test_top5": ev["top5"],
                "lr": opt.param_groups[0]["lr"],
                "images_per_second": red[2] / max(acc["seconds"], 1e-9),
                "epoch_seconds": acc["seconds"],
                "elapsed_seconds": totals["wall_seconds"] + time.perf_counter() - t_start,
            }
            history.append(row)
            improved = tested and ev["top1"] > best_top1
            if improved:
                best_top1 = ev["top1"]
            if is_main:
                _write_metrics(out / METRICS, history)
                tb.log(row, epoch + 1)
                if improved:
                    save_weights(model, out / BEST)
                test = (
                    f"test loss {ev['loss']:.4f} top1 {ev['top1']:5.2f}% top5 {ev['top5']:5.2f}%"
                    if tested
                    else "(no test this epoch: --eval-every)"
                )
                console.print(
                    f"epoch {epoch + 1:>3}/{n_epochs}  train loss {row['train_loss']:.4f} "
                    f"acc {row['train_top1']:5.2f}%  {test}  lr {row['lr']:.4g}  "
                    f"{row['images_per_second']:,.0f} img/s  {row['epoch_seconds']:.1f} s"
                    + (f"  ({side}x{side})" if side is not None else "")
                )
            acc_state = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
            start_step = 0
            checkpoint(epoch + 1, 0, acc_state)
    tb.close()

    # ---------------------------------------------------------------- the end: weights, report, summary
    summary: dict[str, Any] = {}
    if is_main:
        sha = save_weights(model, out / WEIGHTS)
        if (
            report and "preds" not in last_eval
        ):  # DDP evaluated shards: rank 0 runs the full pass for the report
            last_eval = evaluate(
                model,
                test_feed.batches(cfg.eval_batch_size),
                num_samples=len(test_feed),
                predict=predict,
                autocast=autocast if amp_dtype else None,
                collect=True,
            )
        from cnnzoo.train.report import confusion_matrix, per_class_accuracy, write_report

        classes = _classes_of(test_feed)
        if "preds" not in last_eval:
            last_eval = {
                **last_eval,
                "preds": torch.zeros(0, dtype=torch.long),
                "targets": torch.zeros(0, dtype=torch.long),
            }
        cm = confusion_matrix(last_eval["preds"], last_eval["targets"], model.num_classes)
        wrong = None
        if "wrong_x" in last_eval:
            mean, std = _mean_std(test_feed)
            m = torch.tensor(mean).view(1, -1, 1, 1)
            s = torch.tensor(std).view(1, -1, 1, 1)
            if m.shape[1] != last_eval["wrong_x"].shape[1]:
                m, s = m.mean(), s.mean()
            wrong = (last_eval["wrong_x"] * s + m).clamp(0, 1)
        if report:
            per_class = write_report(
                out,
                cm=cm,
                classes=classes,
                history=history,
                wrong_images=wrong,
                wrong_true=last_eval.get("wrong_true"),
                wrong_pred=last_eval.get("wrong_pred"),
            )
        else:
            names = classes if len(classes) == cm.shape[0] else [str(i) for i in range(cm.shape[0])]
            per_class = dict(zip(names, per_class_accuracy(cm), strict=True))
        last = history[-1]
        wall = totals["wall_seconds"] + time.perf_counter() - t_start
        summary = {
            "model": cfg.model,
            "data": cfg.data,
            "engine": "torch",
            "epochs": n_epochs,
            "steps": global_step,
            "batch_size": cfg.batch_size,
            "seed": cfg.seed,
            "world_size": world,
            "test_top1": last["test_top1"],
            "test_top5": last["test_top5"],
            "test_loss": last["test_loss"],
            "train_loss": last["train_loss"],
            "best_test_top1": best_top1,
            "wall_seconds": wall,
            "train_seconds": totals["train_seconds"],
            "images_per_second": totals["train_images"] / max(totals["train_seconds"], 1e-9),
            "weights_sha256": sha,
            "weights_file": WEIGHTS,
            "params": n_params,
            "per_class_top1": per_class,
            "eval_mode": cfg.eval_mode,
            "amp": resolved["amp_dtype"],
            "device": str(device),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "host": platform.node(),
            "cpu_count": os.cpu_count(),
            "out": str(out),
        }
        atomic_write_json(out / SUMMARY, summary)
        worst = sorted(per_class.items(), key=lambda kv: kv[1])[:3]
        console.print(
            "per-class top-1: "
            + "  ".join(f"{k} {v:.1f}%" for k, v in per_class.items())
            + f"\n(worst: {', '.join(k for k, _ in worst)})"
        )
    D.shutdown()
    return summary
