"""Build time of every residual-descendant and DenseNet variant on meta, and the analyzer on DenseNet-264.

Issue 12 asks for two figures: the meta-device build time of each variant it adds (pre-activation,
ResNeXt, Wide ResNet, SE, stochastic depth, DenseNet), and the time of
``cnnzoo.analyze("densenet264", batch_size=64)`` at 224. Baselines measured in the same run:
``resnet50`` (its meta build) and ``analyze("resnet152", batch_size=64)``, so the ratios survive a
loaded machine. Each build is the best of ``--repeat`` runs.

    .venv/bin/python benchmarks/residual_families.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from cnnzoo.analysis import analyze
from cnnzoo.registry import create_model, get_model_config

FAMILIES = (
    "preact_resnet",
    "preact_resnet_cifar",
    "resnext",
    "resnext_cifar",
    "wide_resnet",
    "wrn_cifar",
    "senet",
    "resnet_sd",
    "densenet",
    "densenet_cifar",
)


def best_build(name: str, repeat: int) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        with torch.device("meta"):
            model = create_model(name)
        best = min(best, time.perf_counter() - t0)
        n = sum(p.numel() for p in model.parameters())
    return best, n


def time_analyze(name: str, repeat: int) -> tuple[float, float, int]:
    analyze(name, batch_size=64)  # warm-up: imports and first-call caches
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        report = analyze(name, batch_size=64)  # builds the model on meta, then traces it
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), len(report.layers)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (best / median kept)")
    args = ap.parse_args()
    from cnnzoo.registry import list_models

    names = [n for n in list_models() if get_model_config(n).family in FAMILIES]
    print(f"load: {os.getloadavg()[0]:.2f} (1-min average), torch threads {torch.get_num_threads()}")
    base, _ = best_build("resnet50", args.repeat)
    print(f"baseline: resnet50 meta build {base * 1e3:.1f} ms")
    print(f"{'model':22s} {'family':20s} {'params':>12s} {'meta build ms':>14s} {'/ resnet50':>10s}")
    total = 0.0
    for name in names:
        dt, n = best_build(name, args.repeat)
        total += dt
        print(f"{name:22s} {get_model_config(name).family:20s} {n:12,d} {dt * 1e3:14.1f} {dt / base:10.2f}")
    print(f"all {len(names)} variants: {total:.2f} s")
    med, best, rows = time_analyze("densenet264", args.repeat)
    rmed, rbest, rrows = time_analyze("resnet152", args.repeat)
    print(
        f"analyze('densenet264', 224, batch 64): median {med * 1e3:.0f} ms, best {best * 1e3:.0f} ms ({rows} rows); "
        f"resnet152 (baseline): median {rmed * 1e3:.0f} ms ({rrows} rows); ratio {med / rmed:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
