"""Training start-up: the whole ``cnnzoo train lenet5_relu --epochs 1`` process against a hand-written loop.

Both are separate Python processes that do the same work: import torch, load Fashion-MNIST (60k train
and 10k test images, the decoded cache warm), build ``lenet5_relu``, train one epoch at batch 128 with
Nesterov SGD (lr 0.05, momentum 0.9, weight decay 5e-4, half an epoch of warm-up then cosine) and
evaluate on the test set. The hand-written loop stops there; ``cnnzoo train`` also prints its progress,
writes its run directory (config, metrics, checkpoint, weights, summary) and its report (confusion matrix,
misclassified images, curves). The ratio is ``wall(cnnzoo train) / wall(hand-written loop)``: lower is
better, the target is <= 1.0.

Each round runs every variant once quiet and once while a contending process (a two-process busy loop,
bounded in time) shares the machine's cores, the variants rotated so that none always goes first.
``--src NAME=DIR`` (repeatable) times the CLI of the given source trees instead of this checkout's, in the
same rounds (e.g. ``--src before=/path/to/old/src --src after=src``). The hand-written loop always runs
against this checkout's ``src/`` (it uses only the data loader and the model builder).

Usage::

    .venv/bin/python benchmarks/train_startup.py [--rounds 3] [--src before=/work/main/src]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

HAND_WRITTEN = r"""
import math, time
import torch
import torch.nn.functional as F
from cnnzoo.data import adapt_images, load_dataset
from cnnzoo.registry import create_model

train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
x_train = adapt_images(train.images, size=32, mode="pad", mean=train.mean, std=train.std)
x_test = adapt_images(test.images, size=32, mode="pad", mean=test.mean, std=test.std)
torch.manual_seed(0)
model = create_model("lenet5_relu", num_classes=10, in_chans=1)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
n, bs = len(train), 128
steps = -(-n // bs)
warm = steps // 2
order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
model.train()
for s, i in enumerate(range(0, n, bs)):
    f = 0.1 + 0.9 * s / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (steps - warm)))
    for g in opt.param_groups:
        g["lr"] = 0.05 * f
    idx = order[i : i + bs]
    loss = F.cross_entropy(model(x_train[idx]), train.labels[idx])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
model.eval()
correct = 0
with torch.no_grad():
    for i in range(0, len(test), 1000):
        correct += int((model(x_test[i : i + 1000]).argmax(1) == test.labels[i : i + 1000]).sum())
print(f"hand-written loop: test top-1 {100 * correct / len(test):.2f}%")
"""


def _busy(deadline: float, parent: int) -> None:
    """Spin until ``deadline``, or until the benchmark that started us is gone."""
    while time.time() < deadline and os.getppid() == parent:
        for _ in range(100_000):
            pass


class Contention:
    """Two busy-looping processes (one per core of the 2-core machine), stopped at exit or at ``seconds``."""

    def __init__(self, seconds: float, procs: int = 2) -> None:
        self.seconds, self.procs, self.workers = seconds, procs, []

    def __enter__(self) -> Contention:
        deadline = time.time() + self.seconds
        ctx = mp.get_context("spawn")
        args = (deadline, os.getpid())
        self.workers = [ctx.Process(target=_busy, args=args, daemon=True) for _ in range(self.procs)]
        for w in self.workers:
            w.start()
        time.sleep(0.5)  # let them reach the loop
        return self

    def __exit__(self, *exc) -> None:
        for w in self.workers:
            w.terminate()
        for w in self.workers:
            w.join()


def _run(cmd: list[str], src: Path, cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "CNNZOO_DEBUG"):
        env.pop(k, None)
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return dt


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--src",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="time this source tree's CLI (repeatable; default: this checkout's src/)",
    )
    p.add_argument("--conditions", default="quiet,contended", help="quiet, contended or both")
    p.add_argument("--contend-seconds", type=float, default=400.0, help="upper bound of one contended run")
    args = p.parse_args()
    trees = {} if args.src else {"cnnzoo train": SRC}
    for spec in args.src:
        name, _, d = spec.partition("=")
        trees[f"cnnzoo train ({name})"] = Path(d).resolve()
    conditions = [c for c in args.conditions.split(",") if c]
    py = sys.executable
    print(f"{py}; {os.cpu_count()} CPUs; {_load()} at start")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "hand.py").write_text(HAND_WRITTEN)
        variants = {"hand-written loop": ([py, str(tmp / "hand.py")], SRC)}
        for label, src in trees.items():
            out = tmp / f"run-{len(variants)}"
            cmd = [py, "-m", "cnnzoo", "train", "lenet5_relu", "--epochs", "1", "--out", str(out)]
            variants[label] = (cmd, src)
        _run(variants["hand-written loop"][0], SRC, tmp)  # warm the dataset cache and the page cache
        times: dict[tuple[str, str], list[float]] = {}
        names = list(variants)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for cond in conditions:
                for name in order:
                    cmd, src = variants[name]
                    for old in tmp.glob("run-*"):  # a fresh run directory every time
                        subprocess.run(["rm", "-rf", str(old)], check=True)
                    if cond == "contended":
                        with Contention(args.contend_seconds):
                            dt = _run(cmd, src, tmp)
                    else:
                        dt = _run(cmd, src, tmp)
                    times.setdefault((cond, name), []).append(dt)
                    print(f"round {r + 1} {cond:9s} {name:28s} {dt:6.2f} s  ({_load()})", flush=True)
    print(f"\n{_load()} at the end\n")
    print(
        "| condition | variant | median s | best s | median ratio | best ratio |\n|---|---|---|---|---|---|"
    )
    for cond in conditions:
        base = times[(cond, "hand-written loop")]
        for name in names:
            t = times[(cond, name)]
            print(
                f"| {cond} | {name} | {statistics.median(t):.2f} | {min(t):.2f} | "
                f"{statistics.median(t) / statistics.median(base):.2f}x | {min(t) / min(base):.2f}x |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
