"""How fast is ``cnnzoo.analyze``? All targets of issue 16, measured in one run.

1. every registered model at its default size, analyzed with the default call (training step
   included): ≤ 15 s in total on 2 cores (the count of models is printed: the zoo grows);
2. ResNet-152 at 224×224, batch 128, model construction included: ≤ 0.15 s with the default call,
   ≤ 0.08 s with ``backward=False``;
3. with ``backward=False``, ≥ 50× faster than ``torchinfo.summary`` at batch 32 (a real CPU
   forward; torchinfo is a benchmark-only dependency, ``pip install -e '.[bench]'``).

The machine is shared and noisy, so the timed calls are interleaved (default, forward-only,
torchinfo, and optionally an older cnnzoo as a baseline) and both medians and minima are printed,
with the load average before and after, and the process's CPU time beside the wall time (on a
loaded machine the wall time also counts the waits for a core).

Run: ``.venv/bin/python benchmarks/analyzer_speed.py [--reps 15] [--baseline OLD/src]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch

import cnnzoo
from cnnzoo.analysis import analyze

NAME, BATCH = "resnet152", 128

_BASELINE = """
import sys, time
sys.path.insert(0, {src!r})
from cnnzoo.analysis import analyze
analyze({name!r}, batch_size={batch})
for line in sys.stdin:
    t0 = time.perf_counter(); analyze({name!r}, batch_size={batch}); print(time.perf_counter() - t0, flush=True)
"""


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def every_model() -> tuple[float, int, list[tuple[float, str]]]:
    """(total seconds, models, the five slowest) for the default call of every registered model."""
    names = cnnzoo.list_models()
    times = []
    for name in names:
        t0 = time.perf_counter()
        analyze(name)
        times.append((time.perf_counter() - t0, name))
    return sum(t for t, _ in times), len(names), sorted(times)[-5:]


def _timed(f, cpu: list[float] | None = None) -> float:
    c0, t0 = time.process_time(), time.perf_counter()
    f()
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return time.perf_counter() - t0


def torchinfo_seconds(model: torch.nn.Module) -> float:
    from torchinfo import summary

    return _timed(lambda: summary(model, input_size=(32, 3, 224, 224), verbose=0))


def _stats(ts: list[float]) -> str:
    return f"median {statistics.median(ts) * 1e3:7.1f} ms, min {min(ts) * 1e3:7.1f} ms (n={len(ts)})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=15, help="timed ResNet-152 calls of each kind")
    p.add_argument("--torchinfo-reps", type=int, default=3, help="timed torchinfo calls (seconds each)")
    p.add_argument(
        "--baseline", metavar="SRC", help="an older cnnzoo's src/ to time alongside (default call)"
    )
    p.add_argument("--skip-all", action="store_true", help="skip the every-model pass")
    args = p.parse_args()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    print(f"load average before: {_load()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    analyze(NAME, batch_size=BATCH)  # imports and first-call caches
    ok = True
    if not args.skip_all:
        total, n, slowest = every_model()
        ok &= total <= 15
        print(
            f"[1] every registered model ({n}) at its default size, default call: {total:.2f} s "
            f"(target <= 15 s); slowest: {', '.join(f'{m} {t:.2f} s' for t, m in reversed(slowest))}"
        )
    base = None
    if args.baseline:
        code = _BASELINE.format(src=args.baseline, name=NAME, batch=BATCH)
        base = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
    have_torchinfo = True
    try:
        import torchinfo  # noqa: F401
    except ImportError:
        have_torchinfo = False
    model = None
    if have_torchinfo:
        torch.manual_seed(0)
        model = cnnzoo.create_model(NAME).eval()
        from torchinfo import summary

        summary(model, input_size=(1, 3, 224, 224), verbose=0)  # warm-up at batch 1
    default, forward, old, info, cpu_default, cpu_forward = [], [], [], [], [], []
    every = max(1, args.reps // max(1, args.torchinfo_reps))
    for i in range(args.reps):
        default.append(_timed(lambda: analyze(NAME, batch_size=BATCH), cpu_default))
        forward.append(_timed(lambda: analyze(NAME, batch_size=BATCH, backward=False), cpu_forward))
        if base is not None:
            base.stdin.write("go\n")
            base.stdin.flush()
            old.append(float(base.stdout.readline()))
        if model is not None and i % every == 0 and len(info) < args.torchinfo_reps:
            info.append(torchinfo_seconds(model))
    if base is not None:
        base.stdin.close()
        base.wait()
    d, f = statistics.median(default), statistics.median(forward)
    ok &= d <= 0.15 and f <= 0.08
    print(f"[2] analyze({NAME!r}, batch_size={BATCH}), construction included:")
    print(
        f"    default call (training step traced): {_stats(default)} (target <= 150 ms); CPU {_stats(cpu_default)}"
    )
    print(
        f"    backward=False:                      {_stats(forward)} (target <= 80 ms); CPU {_stats(cpu_forward)}"
    )
    if old:
        print(
            f"    baseline {args.baseline} (its default call, forward only): {_stats(old)}; "
            f"forward-only speed-up {statistics.median(old) / f:.2f}x (median), {min(old) / min(forward):.2f}x (min)"
        )
    if info:
        ratio = statistics.median(info) / f
        ok &= ratio >= 50
        print(
            f"[3] torchinfo.summary({NAME}, batch 32, real CPU forward): median {statistics.median(info):.2f} s, "
            f"min {min(info):.2f} s (n={len(info)}); ratio torchinfo / analyze(backward=False): "
            f"{ratio:.0f}x (medians), {min(info) / min(forward):.0f}x (minima); target >= 50x"
        )
    else:
        print("[3] torchinfo is not installed (pip install -e '.[bench]'): comparison skipped")
    print(f"load average after: {_load()}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
