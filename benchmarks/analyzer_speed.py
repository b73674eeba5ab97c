"""How fast is ``cnnzoo.analyze``? ResNet-152, 224×224, batch 128, model construction included.

Targets (issue 4): ≤ 0.5 s per analysis, and ≥ 50× faster than ``torchinfo.summary`` on the same
model at batch 32 (torchinfo runs a real forward pass on the CPU; it is a benchmark-only
dependency: ``pip install -e '.[bench]'``). Both are timed in this process, so the ratio holds on
a busy machine even when the absolute times move.

Run: ``.venv/bin/python benchmarks/analyzer_speed.py``
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

import cnnzoo
from cnnzoo.analysis import analyze


def _model_name() -> str:
    from cnnzoo.registry import is_model

    return "resnet152" if is_model("resnet152") else ""


def time_analyze(name: str, repeats: int = 5) -> tuple[float, float, object]:
    analyze(name, batch_size=128)  # warm-up: imports and first-call caches
    times = []
    report = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        report = analyze(name, batch_size=128)  # builds the model on meta, then traces it
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), report


def time_torchinfo(name: str) -> float:
    from torchinfo import summary

    torch.manual_seed(0)
    model = cnnzoo.create_model(name).eval()
    summary(model, input_size=(1, 3, 224, 224), verbose=0)  # warm-up at batch 1
    t0 = time.perf_counter()
    summary(model, input_size=(32, 3, 224, 224), verbose=0)
    return time.perf_counter() - t0


def main() -> int:
    name = _model_name()
    if not name:
        print("resnet152 is not registered; nothing to benchmark")
        return 1
    torch.set_num_threads(max(1, torch.get_num_threads()))
    med, best, report = time_analyze(name)
    t = report.totals
    print(
        f"cnnzoo.analyze({name!r}, batch_size=128): median {med * 1e3:.0f} ms, best {best * 1e3:.0f} ms "
        f"(model construction on meta included), {len(report.layers)} rows, "
        f"{t['flops'] / 128 / 1e9:.2f} GFLOPs/image, {t['params']:,} params"
    )
    try:
        ti = time_torchinfo(name)
    except ImportError:
        print("torchinfo is not installed (pip install -e '.[bench]'); skipping the comparison")
        return 0 if med <= 0.5 else 1
    ratio = ti / med
    print(f"torchinfo.summary({name}, batch 32, real CPU forward): {ti:.2f} s")
    print(
        f"ratio torchinfo / cnnzoo: {ratio:.0f}x (target >= 50x); cnnzoo median {med:.3f} s (target <= 0.5 s)"
    )
    ok = med <= 0.5 and ratio >= 50
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
