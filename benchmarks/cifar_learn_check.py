"""Proof that they learn: every CIFAR variant of issue 12, a short run on Fashion-MNIST, above chance.

Each CIFAR model (pre-activation, ResNeXt-29, WRN, stochastic depth, DenseNet) trains for 100 plain
SGD steps at batch 32 (3,200 images, 5% of an epoch) (momentum 0.9, weight decay 5e-4, lr 0.05 falling linearly to 0) on
28×28 Fashion-MNIST images fed as they are (the CIFAR nets take any side ≥ their minimum), then is
tested on 2,000 test images; chance is 10%. What "short" means here, on a 2-core CPU:

* the cheap variants (≤ 0.3 G MACs at 32×32) run **at full width**;
* the variants that cost 1.5-11 G MACs per 32×32 image (ResNeXt-29, WRN-28-10/16-8/40-4,
  DenseNet-BC-250/190, pre-act ResNet-1001) run as **reduced-width instances of the same variant**,
  built with the registered builder and a width keyword (``widen_factor=1``, ``base_width=4``,
  ``growth_rate=4`` or ``6``, ``widths=(4, 8, 16)``): the same depth, blocks, shortcuts and head, fewer
  channels. The label says which;
* ``resnet1202_sd`` runs at full width (its point is its depth), 50 steps at batch 16 and lr 0.0125
  (the papers' 0.1 at batch 128, scaled to the batch).

Each run prints its label, steps × batch, test accuracy and wall time. ``--only NAME`` (repeatable) runs those, in the order given.

    .venv/bin/python benchmarks/cifar_learn_check.py [--only resnet110_sd] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, NamedTuple

import torch
from torch import nn

from cnnzoo import create_model
from cnnzoo.data import adapt_images, load_dataset


class Run(NamedTuple):
    name: str
    kwargs: dict[str, Any]
    steps: int
    batch: int
    lr: float = 0.05

    @property
    def label(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.name}({opts})" if opts else f"{self.name} (full width)"


RUNS = (
    Run("preact_resnet110", {}, 100, 32),
    Run("preact_resnet164", {}, 100, 32),
    Run("preact_resnet1001", {"widths": (4, 8, 16)}, 100, 32),
    Run("resnext29_8x64d", {"widths": (16, 32, 64), "base_width": 16}, 100, 32),
    Run("resnext29_16x64d", {"widths": (16, 32, 64), "base_width": 16}, 100, 32),
    Run("wrn16_8", {"widen_factor": 1}, 100, 32),
    Run("wrn28_10", {"widen_factor": 1}, 100, 32),
    Run("wrn40_4", {"widen_factor": 1}, 100, 32),
    # He et al. §4.2: at 0.1 (batch 128) ResNet-110 is slow to start; the check's 0.05 at batch 32
    # (0.2 at 128) left it at 21% (loss 2.20, run of 2026-12-02 04:54): the paper's 0.1 scaled to 32
    Run("resnet110_sd", {}, 100, 32, lr=0.025),
    # the papers' lr 0.1 at batch 128 scaled linearly to batch 16: at 0.05 (0.4 at batch 128) the
    # 1,202-layer net diverged in 50 steps (loss 6.7, 9% test top-1: run of 2026-12-02 04:44)
    Run("resnet1202_sd", {}, 50, 16, lr=0.0125),
    Run("densenet40_k12", {}, 100, 32),
    Run("densenet_bc100_k12", {}, 100, 32),
    Run("densenet_bc250_k24", {"growth_rate": 4}, 100, 32),
    Run("densenet_bc190_k40", {"growth_rate": 6}, 100, 32),
)


def train_and_test(run: Run, train, test) -> tuple[float, float, float]:
    """(test accuracy, final training loss over the last 10 steps, seconds)."""
    torch.manual_seed(0)
    model = create_model(run.name, in_chans=1, num_classes=10, **run.kwargs)
    opt = torch.optim.SGD(model.parameters(), lr=run.lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / run.steps)
    data = train.subset(run.steps * run.batch, seed=0)

    def prep(images):
        return adapt_images(images, size=28, mode="none", mean=train.mean, std=train.std)

    t0 = time.perf_counter()
    model.train()
    losses = []
    for step in range(run.steps):
        sl = slice(step * run.batch, (step + 1) * run.batch)
        loss = nn.functional.cross_entropy(model(prep(data.images[sl])), data.labels[sl])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(prep(test.images[i : i + 250])).argmax(1) for i in range(0, len(test), 250)])
    acc = (pred == test.labels).float().mean().item()
    return acc, sum(losses[-10:]) / 10, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", help="run only these models (repeatable)")
    ap.add_argument(
        "--threads", type=int, default=1, help="intra-op threads (1: no OpenMP spin on a shared box)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train = load_dataset("fashion-mnist", "train")
    test = load_dataset("fashion-mnist", "test").subset(2000, seed=0)
    by_name = {r.name: r for r in RUNS}
    unknown = [n for n in args.only or () if n not in by_name]
    if unknown:
        ap.error(f"unknown --only {', '.join(unknown)}; choose from {', '.join(by_name)}")
    runs = [by_name[n] for n in args.only] if args.only else list(RUNS)  # in the order asked
    print(f"load {os.getloadavg()[0]:.2f}, {args.threads} threads; chance = 10%")
    failed = 0
    for run in runs:
        acc, loss, secs = train_and_test(run, train, test)
        ok = acc > 0.10
        failed += not ok
        print(
            f"{run.label:48s} {run.steps:4d} steps x {run.batch:3d}  test acc {acc:6.1%}  "
            f"last loss {loss:.3f}  {secs:7.1f} s  {'above chance' if ok else 'NOT ABOVE CHANCE'}",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
