"""The training loop: ``fit(cfg)`` is a short loop over named steps.

    run, state = build_run(cfg), new_state(run)      # cnnzoo.train.setup (or resume_state)
    while the run is not over:
        train_one_epoch(run, state)                  # steps, NaN checks, Ctrl-C/SIGTERM, periodic checkpoints
        val = evaluate_split(run, state, val feed)   # the held-out validation split (--val-samples)
        select_on_validation(run, state, val)        # plateau schedule, best.safetensors, --early-stop
        test = evaluate_test_if_due(run, state)      # --eval-every and the last epoch: reported only
        record_epoch(run, state, ...)                # metrics.csv, TensorBoard, the epoch's line
        save_run_checkpoint(run, state)
    finish(run, state, test)                         # weights, EMA, report, summary.json

No decision reads the test set: the schedule, the best checkpoint and early stopping read the
validation split, and without one (``--val-samples 0``) there is no best checkpoint and the plateau
schedule and early stopping are refused. ``fit`` is the library entry point; ``cnnzoo train`` is a
thin CLI over it.

Exact resume: a checkpoint is a :class:`~cnnzoo.train.state.RunState` (weights, optimizer, schedule,
scaler, EMA, RNG states, position, metrics, best record). The shuffle order of epoch ``e`` is drawn
from a generator seeded with ``(seed, e)``, so the position alone restores it; on the CPU, for a fixed
thread count, a resumed run reproduces the uninterrupted run's ``weights_sha256``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo import _startup
from cnnzoo.data.feed import Feed
from cnnzoo.errors import CnnzooError, ConfigError
from cnnzoo.rundir import METRIC_CORE, RunDir, TrainingDivergedError, claim
from cnnzoo.train import distributed as D
from cnnzoo.train import progress as P
from cnnzoo.train.checkpoint import (
    CheckpointError,
    ResumeMismatchError,
    load_checkpoint,
    save_checkpoint,
    save_weights,
)
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.evaluate import evaluate, logits_of
from cnnzoo.train.figures import FigureWorker
from cnnzoo.train.setup import (
    Run,
    RunHooks,
    build_run,
    default_out_dir,
    new_state,
    prewarm_optimizer_import,
    resolved_config,
    resume_config,
)
from cnnzoo.train.state import EpochTally, RunState, rng_state

__all__ = [
    "fit",
    "train_one_epoch",
    "train_step",
    "evaluate_split",
    "select_on_validation",
    "evaluate_test_if_due",
    "record_epoch",
    "save_run_checkpoint",
    "check_good",
    "finish",
    "resume_state",
    "Hooks",
    "METRIC_FIELDS",
    "TrainingDivergedError",
    "TrainingInterrupted",
]

#: metrics.csv: the run-directory core, then the validation and EMA columns (nan when absent).
METRIC_FIELDS = (
    *METRIC_CORE,
    "val_loss",
    "val_top1",
    "val_top5",
    "ema_val_loss",
    "ema_val_top1",
    "ema_val_top5",
    "ema_test_loss",
    "ema_test_top1",
    "ema_test_top5",
)
CHECK_EVERY = 25  # steps between loss finiteness checks and progress updates (each one syncs)


class TrainingInterrupted(CnnzooError, RuntimeError):
    """Ctrl-C or SIGTERM (or a test's stop request): a checkpoint was saved; ``run_dir`` resumes it."""

    def __init__(self, message: str, run_dir: Path) -> None:
        super().__init__(message)
        self.run_dir = run_dir


@dataclass
class Hooks:
    """Test hooks: stop as if Ctrl-C came after ``stop_after_steps`` steps; ``on_step(step, model)``."""

    stop_after_steps: int | None = None
    on_step: Callable[[int, nn.Module], None] | None = None


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


def _shuffle_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 1) % (2**63)


#: A loss above this many times its first value (or 1, if more) is exploding: weights that produce
#: it are already ruined (a train loss of 3e32 came with weights of size 1e26), so no checkpoint
#: keeps them. Training that works never climbs a thousandfold above its starting loss.
EXPLODING = 1000.0


def _exploding(state: RunState, loss: float) -> bool:
    ref = state.loss_reference
    return math.isfinite(ref) and loss > EXPLODING * max(ref, 1.0)


def _diverged(run: Run, what: str, epoch: int, step: int) -> TrainingDivergedError:
    """The error of a run that diverged: what went wrong, where, and the checkpoint to go back to."""
    lower = f"{run.cfg.lr / 10:g}"
    ckpts = run.dir.checkpoint_files()
    if run.dir.has_checkpoint() and ckpts:
        good = int(ckpts[-1].stem.split("-")[-1])
        kept = (
            f"; the last good checkpoint is kept (after step {good}): resume it with a lower lr, "
            f"`{run.dir.resume_command()} --lr {lower}`"
        )
    else:
        kept = "; no good checkpoint was written, so start again with a lower --lr or add warmup"
    return TrainingDivergedError(
        f"{what} at epoch {epoch + 1}, step {step}; the run diverged: lower --lr (now {run.cfg.lr:g}, "
        f"e.g. {lower}) or add warmup{kept}"
    )


def _loss_problem(state: RunState, loss: float) -> str | None:
    """Why a loss value means divergence (NaN, infinite or exploding), or None if it is healthy."""
    if not math.isfinite(loss):
        return f"loss became {loss}"
    if _exploding(state, loss):
        return f"loss exploded to {loss:.3g} (over {EXPLODING:g}x its first value {state.loss_reference:.3g})"
    return None


def _bad_tensor(module: nn.Module) -> str | None:
    """The name of the first parameter or buffer holding a NaN or inf, or None (one device sync)."""
    named = [(k, v) for k, v in module.state_dict().items() if v.is_floating_point()]
    if not named:
        return None
    ok = torch.stack([torch.isfinite(v).all() for _, v in named])
    if bool(ok.all()):
        return None
    return named[int((~ok).nonzero()[0])][0]


def check_good(run: Run, state: RunState, evals: dict[str, dict] | None = None, *, split: str = "") -> None:
    """Refuse to go on (and so to checkpoint) unless the run is healthy.

    A checkpoint is good only when the weights (and their EMA) are finite and the epoch's losses so
    far are finite and not exploding (:data:`EXPLODING`); ``evals`` (a :func:`evaluate_split` result
    on ``split``) must have finite losses too.

    Raises:
        TrainingDivergedError: naming what diverged and the last good checkpoint, which is kept.
    """
    epoch, step = state.epoch, state.step_in_epoch
    if state.tally.seen:
        why = _loss_problem(state, state.tally.loss_sum / state.tally.seen)
        if why:
            raise _diverged(run, f"the epoch's mean {why}", epoch, step)
    modules = {"weights": state.model} | ({"EMA weights": state.ema.module} if state.ema is not None else {})
    for kind, module in modules.items():
        bad = _bad_tensor(module)
        if bad is not None:
            raise _diverged(run, f"the {kind} became NaN or infinite ({bad})", epoch, step)
    for kind, ev in (evals or {}).items():
        if not math.isfinite(ev["loss"]):
            weights = "EMA weights" if kind == "ema" else "weights"
            raise _diverged(run, f"the {split} loss of the {weights} became {ev['loss']}", epoch, step)


# ------------------------------------------------------------------------------------------ the steps
def train_step(run: Run, state: RunState, x: Tensor, y: Tensor) -> tuple[Tensor, Any]:
    """One optimizer step on a batch: forward under the run's autocast, scaled backward, schedule, EMA."""
    with run.autocast():
        out = run.forward(x, target=y) if run.forward_takes_target else run.forward(x)
        loss = run.loss_fn(out, y, x)
    state.optimizer.zero_grad(set_to_none=True)
    state.scaler.scale(loss).backward()  # the scaler is disabled (a pass-through) without fp16
    if run.cfg.grad_clip_norm > 0:  # clip the true gradients: unscale fp16's first (a no-op otherwise)
        state.scaler.unscale_(state.optimizer)
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), run.cfg.grad_clip_norm)
    state.scaler.step(state.optimizer)
    state.scaler.update()
    state.schedule.step_batch()
    if state.ema is not None:
        state.ema.update()
    return loss, out


def _prepare(run: Run, state: RunState, x: Tensor, side: int | None) -> Tensor:
    """Augmentation, then progressive resizing (the batch resized after augmentation)."""
    if run.augment is not None:
        x = run.augment(x, state.aug_generator)
    if side is not None and side != x.shape[-1]:
        x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
        x = x.contiguous(memory_format=run.memory_format)
    return x


def train_one_epoch(run: Run, state: RunState, bar: P.ProgressBar, stop: _StopFlag, hooks: Hooks) -> None:
    """Train epoch ``state.epoch`` from ``state.step_in_epoch`` on; ``state.tally`` holds its sums.

    Raises:
        TrainingDivergedError: the loss became NaN/inf (checked every ``CHECK_EVERY`` steps).
        TrainingInterrupted: a stop was requested; the checkpoint is saved first.
    """
    cfg, epoch, spe = run.cfg, state.epoch, run.steps_per_epoch
    if state.step_in_epoch == 0:
        state.tally = EpochTally()
    gen = torch.Generator().manual_seed(_shuffle_seed(cfg.seed, epoch))
    loss_sum = torch.tensor(state.tally.loss_sum, device=run.device)
    correct = torch.tensor(state.tally.correct, device=run.device)
    seen, before, t0 = state.tally.seen, state.tally.seconds, time.perf_counter()
    side = run.progressive_side(epoch)

    def sync() -> EpochTally:  # the tally so far, as plain numbers (a device sync)
        return EpochTally(float(loss_sum), int(correct), seen, before + time.perf_counter() - t0)

    batches = run.data.train.batches(
        run.local_batch,
        shuffle=True,
        generator=gen,
        start=state.step_in_epoch,
        rank=run.dist.rank,
        world=run.dist.world,
    )
    for x, y in batches:
        loss, out = train_step(run, state, _prepare(run, state, x, side), y)
        state.global_step += 1
        state.step_in_epoch += 1
        loss_sum += loss.detach().float() * y.shape[0]
        correct += (logits_of(out).detach().argmax(1) == y).sum()
        seen += y.shape[0]
        if hooks.on_step is not None:
            hooks.on_step(state.global_step, state.model)
        if state.step_in_epoch % CHECK_EVERY == 1 or state.step_in_epoch == spe:
            cur = float(loss.detach())
            if math.isfinite(cur) and not math.isfinite(state.loss_reference):
                state.loss_reference = cur  # the run's first checked loss: the scale of "exploding"
            why = _loss_problem(state, cur)
            if why:
                raise _diverged(run, why, epoch, state.step_in_epoch)
            t = sync()
            bar.update(
                completed=state.global_step,
                epoch=f"{epoch + 1}/{run.n_epochs}",
                loss=t.loss_sum / t.seen,
                acc=100.0 * t.correct / t.seen,
                ips=t.seen * run.dist.world / max(t.seconds, 1e-9),
                lr=state.optimizer.param_groups[0]["lr"],
            )
        done = state.global_step >= run.total_steps
        _stop_or_checkpoint(run, state, stop, hooks, sync, done=done, bar=bar)
        if done:
            break
    state.tally = sync()
    check_good(run, state)


def _stop_or_checkpoint(run: Run, state: RunState, stop: _StopFlag, hooks: Hooks, sync, *, done, bar) -> None:
    """Checkpoint mid-epoch when asked to stop (then raise) or every ``--checkpoint-every-steps``."""
    n = hooks.stop_after_steps
    halt = stop.requested is not None or (n is not None and state.global_step >= n and not done)
    if run.dist.world > 1:
        halt = D.broadcast_flag(halt, run.device)
    every = run.cfg.checkpoint_every_steps
    periodic = bool(every) and state.global_step % every == 0 and state.step_in_epoch < run.steps_per_epoch
    if not (halt or (periodic and not done)):
        return
    state.tally = sync()
    save_run_checkpoint(run, state)
    if halt:
        why = stop.requested or f"stop requested after {state.global_step} steps"
        bar.stop()
        raise TrainingInterrupted(
            f"{why}: checkpoint saved at epoch {state.epoch + 1}, step {state.step_in_epoch}/"
            f"{run.steps_per_epoch} (global step {state.global_step}) in {run.dir.path}. "
            f"Resume with: {run.dir.resume_command()}",
            run.dir.path,
        )


def evaluate_split(run: Run, state: RunState, feed: Feed | None, *, collect: bool = False) -> dict[str, dict]:
    """Loss, top-1 and top-5 of the weights (``"raw"``) and of their EMA (``"ema"``) on ``feed``.

    Each rank evaluates its contiguous shard and the sums are all-reduced; before that, rank 0's
    buffers and EMA are broadcast, so every rank scores the weights that rank 0 saves. ``collect``
    (one process only) keeps the predictions for the report.
    """
    if feed is None:
        return {}
    modules = {"raw": state.model} | ({"ema": state.ema.module} if state.ema is not None else {})
    world, rank = run.dist.world, run.dist.rank
    out = {}
    for kind, module in modules.items():
        D.broadcast_buffers(module)  # the weights are equal on every rank (DDP); BN statistics are not
        ev = evaluate(
            module,
            feed.shard(run.cfg.eval_batch_size, rank=rank, world=world),
            num_samples=len(feed) if world == 1 else None,
            predict=run.predict,
            autocast=run.autocast,
            collect=collect and world == 1,
        )
        s = D.all_reduce_sum([ev["loss_sum"], ev["correct1"], ev["correct5"], ev["n"]], run.device)
        ev.update(loss=s[0] / s[3], top1=100.0 * s[1] / s[3], top5=100.0 * s[2] / s[3], n=int(s[3]))
        out[kind] = ev
    return out


def select_on_validation(run: Run, state: RunState, val: dict[str, dict]) -> bool:
    """The decisions of an epoch's end, all on the validation split: the schedule's epoch step (the
    plateau reads the validation loss), ``best.safetensors``, and ``--early-stop``. True if improved."""
    if not val:  # no split: nothing reads one (the config refuses plateau and early stopping)
        state.schedule.step_epoch(None)
        return False
    ev = val["raw"]
    state.schedule.step_epoch(ev["loss"])
    improved = state.best.offer(ev["top1"], state.epoch + 1)
    if improved and run.is_main:
        state.best.sha256 = save_weights(state.model, run.dir.best)
    if run.cfg.early_stop and state.best.bad_epochs >= run.cfg.early_stop:
        state.stopped_early = True
    return improved


def _is_last_epoch(run: Run, state: RunState) -> bool:
    return state.epoch + 1 >= run.n_epochs or state.stopped_early


def _test_due(run: Run, state: RunState) -> bool:
    every = run.cfg.eval_every
    return _is_last_epoch(run, state) or (every > 0 and (state.epoch + 1) % every == 0)


def evaluate_test_if_due(run: Run, state: RunState) -> dict[str, dict]:
    """The test pass, when ``--eval-every`` asks for one and after the last epoch; it is reported, and
    nothing reads it to decide (the last one keeps its predictions for the report)."""
    if not _test_due(run, state):
        return {}
    return evaluate_split(run, state, run.data.test, collect=_is_last_epoch(run, state))


def group_lrs(state: RunState) -> dict[str, float]:
    """``lr_NAME`` of each named parameter group (transfer learning's stage groups), in group order."""
    return {f"lr_{g['name']}": g["lr"] for g in state.optimizer.param_groups if "name" in g}


def metric_fields(state: RunState) -> tuple[str, ...]:
    """metrics.csv's columns: :data:`METRIC_FIELDS`, then an ``lr_NAME`` per named parameter group."""
    return (*METRIC_FIELDS, *group_lrs(state))


def _scores(prefix: str, ev: dict | None) -> dict[str, float]:
    ev = ev or {}
    return {f"{prefix}{k}": ev.get(k, math.nan) for k in ("loss", "top1", "top5")}


def record_epoch(run: Run, state: RunState, val: dict, test: dict, tb, *, improved: bool) -> dict[str, Any]:
    """Close the epoch: its metrics row (metrics.csv, TensorBoard, the console line); the state moves on."""
    red = D.all_reduce_sum([state.tally.loss_sum, state.tally.correct, state.tally.seen], run.device)
    state.totals.train_seconds += state.tally.seconds  # a resumed epoch's earlier part is in the tally
    state.totals.train_images += int(red[2])
    row = {
        "epoch": state.epoch + 1,
        "step": state.global_step,
        "train_loss": red[0] / red[2],
        "train_top1": 100.0 * red[1] / red[2],
        **_scores("test_", test.get("raw")),
        "lr": state.optimizer.param_groups[0]["lr"],
        "images_per_second": red[2] / max(state.tally.seconds, 1e-9),
        "epoch_seconds": state.tally.seconds,
        "elapsed_seconds": state.totals.wall_seconds + time.perf_counter() - run.t_start,
        **_scores("val_", val.get("raw")),
        **_scores("ema_val_", val.get("ema")),
        **_scores("ema_test_", test.get("ema")),
        **group_lrs(state),
    }
    state.metrics.append(row)
    if run.is_main:
        run.dir.write_metrics(metric_fields(state), state.metrics)
        tb.log(row, row["epoch"])
        P.print_epoch(run.console, run, row, improved=improved)
    state.epoch += 1
    state.step_in_epoch = 0
    state.tally = EpochTally()
    return row


def save_run_checkpoint(run: Run, state: RunState) -> None:
    """Checkpoint the run (rank 0 writes; every rank's RNG state is gathered into it).

    Raises:
        TrainingDivergedError: the run is not healthy (:func:`check_good`): a bad checkpoint never
            reaches disk, and the last good one stays.
    """
    check_good(run, state)
    rngs = D.all_gather_objects(rng_state(state.aug_generator), run.dist)
    if not run.is_main:
        return
    st = state.state_dict(rngs)
    st["totals"]["wall_seconds"] += time.perf_counter() - run.t_start
    save_checkpoint(run.dir.path, state.model, {"model": run.cfg.model, "world": run.dist.world, **st})


def resume_state(run: Run, state: RunState) -> None:
    """Load the checkpoint in the run directory into ``state`` (after checking it fits this run).

    Raises:
        CheckpointError: the checkpoint is damaged, or from another model, process count or split.
    """
    out = run.dir.path
    st = load_checkpoint(out, state.model)
    if int(st.get("world", 1)) != run.dist.world:
        raise CheckpointError(
            f"{out} was checkpointed by a {st.get('world')}-process run; resume it with the same "
            f"number of processes (this is {run.dist.world})"
        )
    if st.get("model") != run.cfg.model:
        raise CheckpointError(
            f"{out}'s checkpoint is for {st.get('model')!r}, the config says {run.cfg.model!r}"
        )
    saved_split = run.dir.read_config().get("val_split")
    if saved_split != run.data.val_split:
        raise CheckpointError(
            f"{out} was trained with the validation split {saved_split}, this config draws "
            f"{run.data.val_split}; resume with the run's own --val-samples, --seed and data"
        )
    saved_lr = run.dir.read_config().get("lr", run.cfg.lr)
    try:
        state.load_state_dict(st, rank=run.dist.rank)
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{out}: the checkpoint's training state does not fit this run ({e})") from e
    if saved_lr and run.cfg.lr != saved_lr:  # `--resume DIR --lr X`: the schedule goes on at the new peak
        state.schedule.scale_base_lrs(run.cfg.lr / saved_lr)


def _announce(run: Run, state: RunState, *, resumed: bool) -> None:
    if not run.is_main:
        return
    run.dir.mkdir()
    resolved = resolved_config(run, state)
    run.dir.write_config(resolved)
    P.print_config(run.console, {k: v for k, v in resolved.items() if k not in ("model_config", "val_split")})
    n_params = sum(p.numel() for p in state.model.parameters())
    P.print_start(
        run.console, run, state, n_params=n_params, threads=torch.get_num_threads(), resumed=resumed
    )
    run.dir.write_metrics(metric_fields(state), state.metrics)


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
    run_hooks: RunHooks | None = None,
    overwrite: bool = False,
    figures: FigureWorker | None = None,
) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.data`` and write the run directory. Returns the summary dict.

    Args:
        cfg: the run's config (ignored when ``resume`` is given: the run directory's is used).
        console: a rich Console (default: a new one); ranks other than 0 print nothing.
        progress: show the rich progress bar (on a terminal).
        resume: a run directory with a checkpoint: continue it exactly.
        stop_after_steps: (tests) behave as if Ctrl-C arrived after this many optimizer steps.
        on_step: (tests) called as ``on_step(global_step, model)`` after every optimizer step.
        overrides: with ``resume``, fields to change in the saved config (e.g. ``{"epochs": 3}``).
        report: write the end-of-run plots and confusion matrix (tests turn it off for speed).
        run_hooks: how a caller builds the model, groups the parameters and acts at each epoch's
            start (:class:`~cnnzoo.train.setup.RunHooks`; ``cnnzoo.train.finetune`` uses them).
        overwrite: replace a run that ``cfg.out`` already holds (else that is an error).
        figures: the helper process that draws the report's PNGs, started before torch was
            imported (:class:`~cnnzoo.train.figures.FigureWorker`; ``cnnzoo train`` passes one);
            default: they are drawn in this process.

    A new run that fails before its first checkpoint removes what it created in ``cfg.out`` (and
    only that); once there is a checkpoint, everything stays, to be resumed.

    Raises:
        TrainingInterrupted: after Ctrl-C/SIGTERM, once the checkpoint is saved.
        TrainingDivergedError: the loss or the weights diverged; the last good checkpoint is kept.
        CheckpointError: ``resume`` points at a missing, truncated or foreign checkpoint.
        RunExistsError: ``cfg.out`` holds a run and neither ``resume`` nor ``overwrite`` was given.
        RunDirError: ``cfg.out`` is a file or cannot be written.
    """
    t_start = time.perf_counter()
    made = None
    if resume is not None:
        if overwrite:
            raise ConfigError("--resume continues the run in its directory; drop --overwrite (or --resume)")
        if run_hooks is None and RunDir(resume).finetune_record() is not None:
            # its model is the source network's with a new head, its optimizer has the mode's groups
            # and its frozen set changes by epoch: only the hooks of cnnzoo.train.finetune rebuild it
            raise ResumeMismatchError(
                f"{resume} holds a `cnnzoo finetune` run; resume it with `{RunDir(resume).resume_command()}`"
            )
        cfg = resume_config(resume, overrides)
    else:
        if not isinstance(cfg, TrainConfig):
            raise ConfigError(
                f"fit takes a TrainConfig, got {type(cfg).__name__}; build one with TrainConfig.from_dict(...)"
            )
        out = default_out_dir(cfg.model) if cfg.out is None else cfg.out
        cfg = dataclasses.replace(cfg, out=str(out)).validate()
        made = claim(cfg.out, overwrite=overwrite, write=D.detect().is_main)
    try:
        return _fit(
            cfg,
            t_start,
            console,
            progress,
            resume,
            Hooks(stop_after_steps, on_step),
            report,
            run_hooks,
            figures,
        )
    except BaseException:
        if made is not None and not made.run.has_checkpoint():
            made.release()  # nothing to resume: leave --out as it was before the run
        raise


def _fit(
    cfg: TrainConfig,
    t_start: float,
    console,
    progress: bool,
    resume,
    hooks: Hooks,
    report: bool,
    run_hooks=None,
    figures: FigureWorker | None = None,
):
    """:func:`fit` once ``--out`` is claimed: build, restore, loop over the epochs, finish."""
    prewarm_optimizer_import()
    run = build_run(cfg, t_start=t_start, console=console, hooks=run_hooks)
    for feed in (run.data.train, run.data.val, run.data.test):
        if feed is not None:  # their kernels overlap the optimizer's import (prewarm_optimizer_import)
            feed.preload()
    state = new_state(run)
    _startup.settle()  # everything start-up imports is alive now; `cnnzoo train` deferred collection
    if resume is not None:
        resume_state(run, state)
    _announce(run, state, resumed=resume is not None)
    from cnnzoo.train.report import TensorBoardLogger

    test = {}
    bar = P.ProgressBar(
        run.console,
        total=run.total_steps,
        completed=state.global_step,
        enabled=progress and run.is_main and run.console.is_terminal,
    )
    with _StopFlag() as stop, bar, TensorBoardLogger(run.dir.path if run.is_main else None) as tb:
        if tb.missing:
            run.console.print(f"[dim]({tb.missing})[/]")
        while state.epoch < run.n_epochs and not state.stopped_early:
            if run.hooks.on_epoch_start is not None:
                run.hooks.on_epoch_start(run, state)
            train_one_epoch(run, state, bar, stop, hooks)
            val = evaluate_split(run, state, run.data.val)
            check_good(run, state, val, split="validation")  # before best.safetensors is written
            improved = select_on_validation(run, state, val)
            test = evaluate_test_if_due(run, state)
            check_good(run, state, test, split="test")
            record_epoch(run, state, val, test, tb, improved=improved)
            save_run_checkpoint(run, state)
    summary = finish(run, state, test, report=report, figures=figures) if run.is_main else {}
    D.shutdown()
    return summary


# ------------------------------------------------------------------------------------------ the end
def reported_weights(cfg: TrainConfig, state: RunState) -> str:
    """Which weights the run reports (and ``cnnzoo eval`` loads by default): ``"raw"`` or ``"ema"``.

    With an EMA: the one with the better validation top-1 at the last epoch, or the EMA when there
    is no validation split (the user asked for it; the test set does not choose).
    """
    if state.ema is None:
        return "raw"
    last = state.metrics[-1] if state.metrics else {}
    if cfg.has_val and math.isfinite(last.get("val_top1", math.nan)):
        return "ema" if last["ema_val_top1"] >= last["val_top1"] else "raw"
    return "ema"


def _report(
    run: Run, module: nn.Module, ev: dict | None, *, write: bool, metrics, figures: FigureWorker | None
) -> dict[str, float]:
    """The confusion matrix, misclassified images and curves of ``module`` on the test set; returns
    the per-class top-1. ``ev`` is the last epoch's collected evaluation, if any; ``figures`` draws
    the PNGs (default: this process)."""
    from cnnzoo.train.report import confusion_matrix, per_class_accuracy, write_report

    test = run.data.test
    if write and (ev is None or "preds" not in ev):  # DDP evaluated shards: rank 0 runs the full pass
        ev = evaluate(
            module,
            test.batches(run.cfg.eval_batch_size),
            num_samples=len(test),
            predict=run.predict,
            autocast=run.autocast,
            collect=True,
        )
    if ev is None or "preds" not in ev:  # no report and no collected pass: an empty matrix
        ev = {"preds": torch.zeros(0, dtype=torch.long), "targets": torch.zeros(0, dtype=torch.long)}
    cm = confusion_matrix(ev["preds"], ev["targets"], module.num_classes)
    if not write:
        names = test.classes if len(test.classes) == cm.shape[0] else [str(i) for i in range(cm.shape[0])]
        return dict(zip(names, per_class_accuracy(cm), strict=True))
    wrong = None
    if "wrong_x" in ev:
        m, s = torch.tensor(test.mean).view(1, -1, 1, 1), torch.tensor(test.std).view(1, -1, 1, 1)
        if m.shape[1] != ev["wrong_x"].shape[1]:
            m, s = m.mean(), s.mean()
        wrong = (ev["wrong_x"] * s + m).clamp(0, 1)
    return write_report(
        run.dir.path,
        cm=cm,
        classes=test.classes,
        history=metrics,
        wrong_images=wrong,
        wrong_true=ev.get("wrong_true"),
        wrong_pred=ev.get("wrong_pred"),
        figures=figures,
    )


def finish(
    run: Run,
    state: RunState,
    test: dict[str, dict],
    *,
    report: bool = True,
    figures: FigureWorker | None = None,
) -> dict[str, Any]:
    """Rank 0's end of the run: ``weights.safetensors``, ``ema.safetensors``, the report and ``summary.json``."""
    cfg = run.cfg
    sha = save_weights(state.model, run.dir.weights)
    ema_sha = save_weights(state.ema.module, run.dir.ema) if state.ema is not None else None
    kind = reported_weights(cfg, state)
    module = state.ema.module if kind == "ema" else state.model
    per_class = _report(run, module, test.get(kind), write=report, metrics=state.metrics, figures=figures)
    last, pre = state.metrics[-1], ("ema_" if kind == "ema" else "")
    summary: dict[str, Any] = {
        "model": cfg.model,
        "data": cfg.data,
        "engine": "torch",
        "epochs": state.epoch,
        "steps": state.global_step,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "world_size": run.dist.world,
        "test_top1": last[f"{pre}test_top1"],
        "test_top5": last[f"{pre}test_top5"],
        "test_loss": last[f"{pre}test_loss"],
        "train_loss": last["train_loss"],
        "reported_weights": kind,
        "val_samples": cfg.val_samples,
        "wall_seconds": state.totals.wall_seconds + time.perf_counter() - run.t_start,
        "train_seconds": state.totals.train_seconds,
        "images_per_second": state.totals.train_images / max(state.totals.train_seconds, 1e-9),
        "weights_sha256": sha,
        "weights_file": run.dir.weights.name,
        "params": sum(p.numel() for p in state.model.parameters()),
        "per_class_top1": per_class,
        "eval_mode": cfg.eval_mode,
        "amp": str(run.amp_dtype).replace("torch.", "") if run.amp_dtype else "off",
        "device": str(run.device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "out": str(run.dir.path),
        **run.hooks.record,
    }
    if cfg.has_val:
        summary.update(
            best_val_top1=state.best.top1, best_val_epoch=state.best.epoch, best_file=run.dir.best.name
        )
        if state.best.sha256:
            summary.update(best_sha256=state.best.sha256)
        summary.update(stopped_early=state.stopped_early)
    if ema_sha is not None:
        summary.update(ema_sha256=ema_sha, ema_file=run.dir.ema.name, ema_decay=cfg.ema)
        summary.update(raw_test_top1=last["test_top1"], ema_test_top1=last["ema_test_top1"])
    run.dir.write_summary(summary)
    P.print_per_class(run.console, per_class)
    return summary
