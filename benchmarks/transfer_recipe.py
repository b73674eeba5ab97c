"""The lecture's transfer recipe on Fashion-MNIST, measured: the table of docs/transfer.md.

Pre-train LeNet-5 (ReLU) on classes 0-4 (T-shirt, Trouser, Pullover, Dress, Coat), then transfer it
to classes 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot) with 10 and 50 labelled images per class,
and compare a network trained from scratch on the same images (a plain `cnnzoo train`) with the
pre-trained one as a linear probe, fine-tuned, and fine-tuned with layer-wise learning rates. Every
run is the command line printed above its result; the test accuracy is on all 5,000 test images of
classes 5-9. Runs go one at a time with one thread.

    .venv/bin/python benchmarks/transfer_recipe.py [--out runs/transfer] [--seeds 0,1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PRETRAIN = ["--classes", "0,1,2,3,4", "--epochs", "4", "--batch-size", "128", "--lr", "0.05"]
# the same optimisation for every transfer run: enough steps for 50 or 250 images to converge
TRANSFER = ["--classes", "5,6,7,8,9", "--epochs", "30", "--batch-size", "16", "--eval-every", "0"]
MODES = {
    "scratch": ["train", "lenet5_relu", "--lr", "0.05"],
    "linear-probe": ["finetune", "{pre}", "--mode", "linear-probe", "--lr", "0.05"],
    "finetune": ["finetune", "{pre}", "--mode", "finetune", "--lr", "0.01"],
    "progressive": ["finetune", "{pre}", "--mode", "progressive", "--lr", "0.05", "--lr-decay", "0.5"],
}
COMMON = ["--threads", "1", "--no-progress"]


def run(argv: list[str]) -> dict:
    """Run ``cnnzoo ARGV`` in a fresh process (as a user would) and return its summary.json."""
    print("$ cnnzoo " + " ".join(argv), flush=True)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cnnzoo", *argv], check=True, env=env, stdout=subprocess.DEVNULL)
    out = Path(argv[argv.index("--out") + 1])
    s = json.loads((out / "summary.json").read_text())
    print(f"  test top-1 {s['test_top1']:.2f}%  ({time.perf_counter() - t:.0f} s)", flush=True)
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/transfer")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--labels", default="10,50")
    args = ap.parse_args()
    root = Path(args.out)
    seeds = [int(s) for s in args.seeds.split(",")]
    labels = [int(n) for n in args.labels.split(",")]
    print(f"load before: {os.getloadavg()[0]:.1f}")
    pre = root / "pretrain"
    if not (pre / "summary.json").is_file():
        run(["train", "lenet5_relu", *PRETRAIN, *COMMON, "--out", str(pre)])
    pre_top1 = json.loads((pre / "summary.json").read_text())["test_top1"]
    results: dict[str, dict[int, list[float]]] = {m: {n: [] for n in labels} for m in MODES}
    for n in labels:
        for seed in seeds:
            for mode, head in MODES.items():
                out = root / f"{mode}-{n}-s{seed}"
                argv = [a.format(pre=pre) for a in head] + TRANSFER
                argv += ["--train-per-class", str(n), "--seed", str(seed), *COMMON, "--out", str(out)]
                results[mode][n].append(run(argv)["test_top1"])
    print(f"\npre-trained on classes 0-4: test top-1 {pre_top1:.2f}%; load after: {os.getloadavg()[0]:.1f}")
    print("| mode | " + " | ".join(f"{n} labels/class" for n in labels) + " |")
    print("|---|" + "---|" * len(labels))
    for mode in MODES:
        cells = []
        for n in labels:
            v = results[mode][n]
            spread = f" ± {statistics.stdev(v):.1f}" if len(v) > 1 else ""
            cells.append(f"{statistics.mean(v):.1f}{spread} ({', '.join(f'{x:.1f}' for x in v)})")
        print(f"| {mode} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
