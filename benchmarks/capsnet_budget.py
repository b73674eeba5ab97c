"""CapsNet on Fashion-MNIST on a fixed CPU budget: test accuracy against training wall time (issue 14).

Sabour et al. 2017's CapsNet, unchanged (8.2 M parameters, 3 routing iterations, margin loss and
the 0.0005 reconstruction term), trains through ``cnnzoo.train.fit`` for at most ``--budget-min``
minutes of training time; ``lenet5_relu`` and ``resnet8`` train on the same budget in the same run,
as the baselines. Goal: CapsNet ≥ 90% test top-1 within 20 minutes on 2 cores.

How a budget run works:

1. **Calibrate**: a short ``fit`` (``--calib-steps`` steps, 100 test images) measures the trainer's
   images/s for that model, batch and thread count on the machine as it is loaded now.
2. **Size the schedule to the budget**: ``iterations`` = budget × images/s ÷ batch × 0.95, so that
   the lr schedule (cosine for CapsNet, one-cycle for the baselines) ends when the budget does:
   on a budget of a fraction of an epoch, a schedule that anneals to 0 is what the budget allows.
3. **Train**, with an ``on_step`` hook that every ``--eval-every-min`` minutes of training time
   tests the current weights on a fixed 2,000-image test subset (the clock is stopped while it
   does) and stops the run if the load rises and it overruns the budget by 5%.
4. The final weights are tested on the whole 10,000-image test set (``fit``'s own end-of-run test,
   or this script's if the run was stopped).

The training clock counts data preparation, forward, backward and the optimizer (``fit`` from its
start, less the hook's evaluations); the evaluations are reported separately.

The training choices (what the issue allows: schedule, batch size, memory format — never the
network): CapsNet trains with the released code's Adam (lr 1e-3, betas 0.9/0.999) but on batch 64
rather than 128 (twice the updates per image: about three epochs fit the budget), a cosine decay to
0 over the budget after a 2% warm-up, and bf16 autocast in the contiguous format: on a CPU with
AVX512-BF16 a batch-64 step runs at 239 img/s against fp32's 114 at 2 threads (channels_last: no
faster), and the primary-capsule conv that dominates is what bf16 speeds up. On a CPU without
native bf16 the autocast is emulated and slower: pass ``--capsnet-amp off`` there. The baselines
use the ``fashion-fast`` (lenet5_relu) and ``fashion-best`` (resnet8 at its paper widths 16-32-64,
fp32, without its progressive resizing) recipes with their epochs stretched to the budget.

Usage::

    .venv/bin/python benchmarks/capsnet_budget.py [--budget-min 20] [--threads 1]
        [--models capsnet,lenet5_relu,resnet8] [--side-by-side] [--json /tmp/capsnet_budget.json]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from cnnzoo.data import adapt_images, load_dataset, resolve_input
from cnnzoo.registry import get_model_config
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.loop import fit
from cnnzoo.train.recipes import get_recipe

EVAL_SUBSET = 2_000
TRAIN_IMAGES = 60_000


class BudgetReached(Exception):
    """Raised by the hook when the training clock passes the budget (by 5%)."""


def base_config(model: str, threads: int, capsnet_amp: str = "bf16") -> dict[str, Any]:
    """The fields of ``model``'s budget run, before ``iterations`` is sized."""
    common = {"threads": threads, "device": "cpu", "amp": "off", "seed": 0, "eval_every": 0}
    if model == "capsnet":
        return {
            **common,
            "model": "capsnet",
            "data": "fashion-mnist",
            "input_size": 28,
            "batch_size": 64,
            "amp": capsnet_amp,
            "eval_batch_size": 250,
            "optimizer": "adam",
            "lr": 1e-3,
            "betas": (0.9, 0.999),
            "weight_decay": 0.0,
            "label_smoothing": 0.0,
            "schedule": "cosine",
            "min_lr_factor": 0.0,
            "warmup_epochs": 0.02,
            "warmup_start_factor": 0.1,
            "eval_mode": "none",
        }
    recipe = {"lenet5_relu": "fashion-fast", "resnet8": "fashion-best"}[model]
    cfg = {k: v for k, v in get_recipe(recipe).items() if k not in ("description", "source")}
    # fashion-best's progressive sizes are per epoch of a 13-epoch run: on a budget of a few epochs
    # they would leave the whole run at 20 px (the first run of this script did), so train at 28.
    # the baseline is the paper's resnet8 in fp32, not fashion-best's widened bf16 one
    return {**cfg, **common, "model": model, "progressive_sizes": (), "model_kwargs": {}}


def make_eval(model_name: str, input_size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed 2,000-image test subset, prepared as the trainer prepares its test images."""
    train = load_dataset("fashion-mnist", "train")
    test = load_dataset("fashion-mnist", "test")
    sub = test.subset(EVAL_SUBSET, seed=0)
    side, mode = resolve_input(get_model_config(model_name), input_size, 28)
    x = adapt_images(sub.images, size=side, mode=mode, mean=train.mean, std=train.std, in_chans=1)
    full = adapt_images(test.images, size=side, mode=mode, mean=train.mean, std=train.std, in_chans=1)
    return (x, sub.labels), (full, test.labels)


@torch.no_grad()
def top1(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 250) -> float:
    was = model.training
    model.eval()
    fmt = (
        torch.channels_last
        if next(model.parameters()).is_contiguous(memory_format=torch.channels_last)
        and next(model.parameters()).dim() == 4
        else torch.contiguous_format
    )
    correct = 0
    for i in range(0, len(y), batch):
        out = model(x[i : i + batch].contiguous(memory_format=fmt))
        correct += int((out.argmax(1) == y[i : i + batch]).sum())
    model.train(was)
    return 100.0 * correct / len(y)


def calibrate(cfg: dict[str, Any], steps: int, tmp: Path) -> float:
    """The trainer's training images/s for this config, over ``steps`` steps (the first quarter skipped)."""
    times: list[float] = []

    def hook(step: int, model: torch.nn.Module) -> None:
        times.append(time.perf_counter())

    c = TrainConfig(
        **{
            **cfg,
            "iterations": steps,
            "warmup_epochs": 0.0,
            "test_samples": 100,
            "out": str(tmp / f"calib-{cfg['model']}"),
        }
    )
    fit(c.validate(), console=Console(quiet=True), progress=False, on_step=hook, report=False)
    # the first steps build oneDNN's primitives (bf16 ones are slower to build): timing them would
    # size the schedule for a slower rate than the run keeps, and end it minutes before the budget
    first = max(1, len(times) // 4)
    return (len(times) - 1 - first) * cfg["batch_size"] / (times[-1] - times[first])


def budget_run(model: str, args: argparse.Namespace, tmp: Path, log) -> dict[str, Any]:
    cfg = base_config(model, args.threads, args.capsnet_amp)
    rate = calibrate(cfg, args.calib_steps if model == "capsnet" else 5 * args.calib_steps, tmp)
    budget = args.budget_min * 60.0
    iterations = max(1, int(budget * rate / cfg["batch_size"] * 0.95))
    epochs = max(1, math.ceil(iterations * cfg["batch_size"] / TRAIN_IMAGES))
    log(
        f"{model}: calibrated {rate:.1f} img/s -> {iterations} steps (~{epochs} epochs) in {args.budget_min} min"
    )
    (ev_x, ev_y), (full_x, full_y) = make_eval(model, cfg.get("input_size"))
    points: list[dict[str, float]] = []
    clock: dict[str, Any] = {"t0": None, "paused": 0.0, "next": args.eval_every_min * 60.0, "evals": 0.0}

    def train_time() -> float:
        return time.perf_counter() - clock["t0"] - clock["paused"]

    def hook(step: int, net: torch.nn.Module) -> None:
        clock["net"] = net
        t = train_time()
        if t >= clock["next"] or step == iterations:
            e0 = time.perf_counter()
            acc = top1(net, ev_x, ev_y)
            spent = time.perf_counter() - e0
            clock["paused"] += spent
            clock["evals"] += spent
            clock["next"] += args.eval_every_min * 60.0
            points.append(
                {
                    "train_seconds": round(t, 1),
                    "step": step,
                    "images": step * cfg["batch_size"],
                    "subset_top1": round(acc, 2),
                }
            )
            log(
                f"  {model} {t / 60:6.2f} min  step {step:6d}  test-subset top-1 {acc:.2f}%  (eval {spent:.0f} s)"
            )
        if t > budget * 1.05:
            raise BudgetReached

    run_cfg = TrainConfig(**{**cfg, "iterations": iterations, "epochs": epochs, "out": str(tmp / model)})
    t_wall = time.perf_counter()
    clock["t0"] = t_wall
    stopped = False
    try:
        summary = fit(
            run_cfg.validate(), console=Console(quiet=True), progress=False, on_step=hook, report=False
        )
        final = summary["test_top1"] * (100.0 if summary["test_top1"] <= 1.0 else 1.0)
        weights = summary["weights_file"]
    except BudgetReached:
        stopped = True
        summary, weights = {}, None
        final = float("nan")
    train_s = train_time()
    if stopped:  # fit did not reach its end-of-run test: test the weights the hook last held
        final = top1(clock["net"], full_x, full_y)
    res = {
        "model": model,
        "batch_size": cfg["batch_size"],
        "optimizer": cfg["optimizer"],
        "lr": cfg["lr"],
        "schedule": cfg["schedule"],
        "calibrated_img_s": round(rate, 1),
        "iterations": iterations,
        "train_minutes": round(train_s / 60, 2),
        "eval_minutes": round(clock["evals"] / 60, 2),
        "wall_minutes": round((time.perf_counter() - t_wall) / 60, 2),
        "stopped_by_budget": stopped,
        "test_top1": round(final, 2),
        "points": points,
        "weights": weights,
        "full_test_images": int(len(full_y)),
    }
    log(
        f"{model}: final test top-1 {final:.2f}% after {train_s / 60:.2f} min of training "
        f"({res['wall_minutes']:.2f} min wall, evals {res['eval_minutes']:.2f} min)"
    )
    return res


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _worker(model: str, args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    """One model's budget run in a process of its own (``--side-by-side``)."""
    torch.set_num_threads(args.threads)
    return budget_run(model, args, Path(tmp), log)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-min", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default="capsnet,lenet5_relu,resnet8")
    ap.add_argument(
        "--side-by-side",
        action="store_true",
        help="run the models at the same time, one process each (at --threads each), not one after another",
    )
    ap.add_argument(
        "--capsnet-amp", default="bf16", choices=("bf16", "off"), help="CapsNet's autocast (off: fp32)"
    )
    ap.add_argument("--eval-every-min", type=float, default=2.0)
    ap.add_argument("--calib-steps", type=int, default=24)
    ap.add_argument("--json", default="/tmp/capsnet_budget.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",")]

    results = []
    with tempfile.TemporaryDirectory() as d:
        if args.side_by_side:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=len(models), mp_context=ctx) as pool:
                futures = [pool.submit(_worker, m, args, d) for m in models]
                results = [f.result() for f in futures]
            Path(args.json).write_text(json.dumps(results, indent=1))
        else:
            for m in models:
                results.append(budget_run(m, args, Path(d), log))
                Path(args.json).write_text(json.dumps(results, indent=1))
    print("\nmodel        batch  steps   train min  test top-1 (10k)")
    for r in results:
        print(
            f"{r['model']:<12} {r['batch_size']:5d} {r['iterations']:6d} {r['train_minutes']:10.2f}"
            f"  {r['test_top1']:6.2f}%"
        )


if __name__ == "__main__":
    main()
