"""Trainer speed, measured in one run against a baseline so the ratios survive a noisy machine.

1. Throughput: ``cnnzoo.train.fit`` with every feature on (progress bar, metrics.csv, per-epoch
   evaluation excluded from the timing, a checkpoint every epoch *included*, channels_last, and
   bf16 autocast if it is faster than fp32 on this CPU: both are measured) against a minimal
   hand-written PyTorch loop (randperm, index, forward, cross-entropy, backward, SGD step) on the
   same model, batch, data and thread count. Goal: ratio >= 1.0.
2. Time-to-accuracy of the ``fashion-fast`` (>= 91%) and ``fashion-best`` (>= 93%) recipes: the
   elapsed wall time (start of ``fit``, data loading included) at the first evaluated epoch whose
   test top-1 reaches the target (``fashion-best`` tests once, at the end), the final accuracy and
   the whole run's wall time (end-of-run plots included); median of 3 seeds (``--quick``: 1 seed).

Usage::

    .venv/bin/python benchmarks/trainer_speed.py [--quick] [--skip-recipes] [--skip-throughput]
        [--recipes fashion-best] [--models resnet20] [--skip-bf16]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnzoo.data import adapt_images, load_dataset, resolve_input
from cnnzoo.registry import create_model
from cnnzoo.train import loop as train_loop
from cnnzoo.train.config import TrainConfig

SUBSET = {"lenet5_relu": 12_000, "resnet20": 3_000}
EPOCHS = 2
BATCH = 128


def minimal_loop(model_name: str, n: int, epochs: int, *, channels_last: bool = False) -> float:
    """img/s of the simplest correct PyTorch training loop over the same data."""
    ds = load_dataset("fashion-mnist", "train").subset(n, seed=0)
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=10, in_chans=1)
    size, mode = resolve_input(model.default_cfg, None, 28)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x_all = adapt_images(
        ds.images, size=size, mode=mode, mean=ds.mean, std=ds.std, in_chans=1, memory_format=fmt
    )
    y_all = ds.labels
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    seen = 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for i in range(0, n, BATCH):
            idx = order[i : i + BATCH]
            x, y = x_all[idx], y_all[idx]
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += y.shape[0]
    return seen / (time.perf_counter() - t0)


def trainer(model_name: str, n: int, epochs: int, *, amp: str, channels_last: bool) -> tuple[float, float]:
    """(img/s of the train phase incl. the per-epoch checkpoints, checkpoint seconds per epoch)."""
    from rich.console import Console

    ckpt_seconds = [0.0]
    real_save = train_loop.save_checkpoint

    def timed_save(*a, **k):
        t = time.perf_counter()
        try:
            return real_save(*a, **k)
        finally:
            ckpt_seconds[0] += time.perf_counter() - t

    train_loop.save_checkpoint = timed_save
    try:
        with tempfile.TemporaryDirectory() as d:
            cfg = TrainConfig(
                model=model_name,
                epochs=epochs,
                train_samples=n,
                test_samples=1000,
                batch_size=BATCH,
                amp=amp,
                channels_last=channels_last,
                out=str(Path(d) / "run"),
            )
            console = Console(file=io.StringIO(), force_terminal=True, width=120)  # the bar renders, unseen
            s = train_loop.fit(cfg, console=console, progress=True, report=False)
    finally:
        train_loop.save_checkpoint = real_save
    train_images = s["images_per_second"] * s["train_seconds"]
    return train_images / (s["train_seconds"] + ckpt_seconds[0]), ckpt_seconds[0] / epochs


def throughput(rounds: int = 2, *, models: list[str] | None = None, bf16: bool = True) -> None:
    print(
        f"== throughput: fit (all features) vs a minimal loop; Fashion-MNIST, batch {BATCH}, {EPOCHS} epochs, "
        f"{torch.get_num_threads()} threads; best of {rounds} interleaved rounds"
    )
    for name, n in SUBSET.items():
        if models and name not in models:
            continue
        base, fp32, bf16s, cl_base = [], [], [], []
        ck = 0.0
        for _ in range(rounds):
            base.append(minimal_loop(name, n, EPOCHS))
            cl_base.append(minimal_loop(name, n, EPOCHS, channels_last=True))
            ips, ck = trainer(name, n, EPOCHS, amp="off", channels_last=True)
            fp32.append(ips)
            if bf16:  # minutes per round for conv nets on CPUs without native bf16
                bf16s.append(trainer(name, n, EPOCHS, amp="bf16", channels_last=True)[0])
        b, f, c = max(base), max(fp32), max(cl_base)
        h = max(bf16s) if bf16s else 0.0
        best = max(f, h)
        print(
            f"{name:12s} minimal loop {b:8,.0f} img/s (channels_last {c:8,.0f}) | fit fp32+channels_last "
            f"{f:8,.0f} img/s, "
            + (
                f"bf16 autocast {h:8,.0f} img/s (bf16 {'faster: on' if h > f else 'slower: off'})"
                if bf16s
                else "bf16 not measured"
            )
            + f" | checkpoint {ck * 1000:.0f} ms/epoch | ratio fit/minimal {best / b:.2f}x"
            f" (vs channels_last loop {best / c:.2f}x)"
        )


def time_to_accuracy(quick: bool, recipes: list[str] | None = None, seeds: list[int] | None = None) -> None:
    from rich.console import Console

    from cnnzoo.train.recipes import get_recipe

    seeds = seeds or ([0] if quick else [0, 1, 2])
    targets = {"fashion-fast": 91.0, "fashion-best": 93.0}
    print(f"== time-to-accuracy (median of {len(seeds)} seed(s)), {torch.get_num_threads()} threads")
    for name, target in targets.items():
        if recipes and name not in recipes:
            continue
        times, finals, walls = [], [], []
        for seed in seeds:
            r = {k: v for k, v in get_recipe(name).items() if k not in ("description", "source")}
            with tempfile.TemporaryDirectory() as d:
                cfg = TrainConfig.from_dict({**r, "seed": seed, "out": str(Path(d) / "run")})
                s = train_loop.fit(cfg, console=Console(file=io.StringIO()), progress=False)
                import csv

                rows = list(csv.DictReader(open(Path(d) / "run" / "metrics.csv")))
            hit = next(
                (float(row["elapsed_seconds"]) for row in rows if float(row["test_top1"]) >= target), None
            )
            times.append(hit if hit is not None else float("inf"))
            finals.append(s["test_top1"])
            walls.append(s["wall_seconds"])
            print(
                f"  {name} seed {seed}: final top-1 {s['test_top1']:.2f}% in {s['wall_seconds']:.1f} s; "
                f"{target:.0f}% reached at {f'{hit:.1f} s' if hit is not None else 'never'}"
            )
        print(
            f"{name:12s} target {target:.0f}%: median time-to-accuracy {statistics.median(times):.1f} s, "
            f"median final top-1 {statistics.median(finals):.2f}%, median wall {statistics.median(walls):.1f} s"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one seed for the time-to-accuracy runs")
    p.add_argument("--skip-recipes", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument(
        "--recipes", nargs="+", choices=["fashion-fast", "fashion-best"], help="these recipes only"
    )
    p.add_argument(
        "--seeds", nargs="+", type=int, help="the time-to-accuracy seeds (default 0 1 2; --quick: 0)"
    )
    p.add_argument("--models", nargs="+", choices=sorted(SUBSET), help="throughput for these models only")
    p.add_argument("--skip-bf16", action="store_true", help="do not time bf16 autocast (slow on most CPUs)")
    args = p.parse_args()
    if not args.skip_throughput:
        throughput(models=args.models, bf16=not args.skip_bf16)
    if not args.skip_recipes:
        time_to_accuracy(args.quick, args.recipes, args.seeds)


if __name__ == "__main__":
    main()
