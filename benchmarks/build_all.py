"""Build every registered model on the meta device, and time `cnnzoo list` start-up.

Targets (issue 3): building all models on the meta device takes <= 5 s in total, and
`cnnzoo list` starts in <= 2 s. Both are printed with their ratio to the target; the start-up of a
bare `python -c pass` is measured in the same run as a baseline, so the figures can be read on a
loaded machine.

    .venv/bin/python benchmarks/build_all.py [--repeat 3] [--top 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BUILD_TARGET_S = 5.0
LIST_TARGET_S = 2.0
ROOT = Path(__file__).resolve().parents[1]


def time_subprocess(cmd: list[str], repeat: int) -> float:
    """Best wall time of ``repeat`` runs (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        best = min(best, time.perf_counter() - t0)
    return best


def torch_importer(python: str) -> str | None:
    """The cnnzoo module that pulls torch into `cnnzoo list`, if any (from ``-X importtime``)."""
    res = subprocess.run(
        [python, "-X", "importtime", "-m", "cnnzoo", "list"], capture_output=True, text=True, cwd=ROOT
    )
    seen_torch = False
    for line in res.stderr.splitlines():
        module = line.rsplit("|", 1)[-1].strip()
        if module == "torch":
            seen_torch = True
        elif seen_torch and module.startswith("cnnzoo"):
            return module
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per subprocess timing (best is kept)")
    ap.add_argument("--top", type=int, default=10, help="show the N slowest builds")
    args = ap.parse_args()

    t0 = time.perf_counter()
    import torch

    from cnnzoo.registry import create_model, list_models

    names = list_models()
    t_import = time.perf_counter() - t0

    per_model: list[tuple[float, str, int]] = []
    t_build = time.perf_counter()
    for name in names:
        t = time.perf_counter()
        with torch.device("meta"):
            model = create_model(name)
        n = sum(p.numel() for p in model.parameters())
        per_model.append((time.perf_counter() - t, name, n))
    build_s = time.perf_counter() - t_build

    exe = Path(sys.executable).with_name("cnnzoo")
    list_cmd = [str(exe), "list"] if exe.exists() else [sys.executable, "-m", "cnnzoo", "list"]
    list_s = time_subprocess(list_cmd, args.repeat)
    python_s = time_subprocess([sys.executable, "-c", "pass"], args.repeat)

    print(f"models registered: {len(names)} (torch + registry import {t_import:.2f} s, not counted)")
    print(f"slowest {args.top} meta builds:")
    for dt, name, n in sorted(per_model, reverse=True)[: args.top]:
        print(f"  {name:<20} {dt * 1000:8.1f} ms  {n:>13,} params")
    print(
        f"build all on meta: {build_s:6.2f} s   target {BUILD_TARGET_S:.1f} s   "
        f"ratio {build_s / BUILD_TARGET_S:5.2f}  {'OK' if build_s <= BUILD_TARGET_S else 'OVER'}"
    )
    print(
        f"`cnnzoo list` start-up: {list_s:6.2f} s   target {LIST_TARGET_S:.1f} s   "
        f"ratio {list_s / LIST_TARGET_S:5.2f}  {'OK' if list_s <= LIST_TARGET_S else 'OVER'}   "
        f"(bare python: {python_s:.2f} s, list/python {list_s / python_s:.1f}x)"
    )
    if list_s > LIST_TARGET_S:
        culprit = torch_importer(sys.executable)
        if culprit:
            print(f"  `cnnzoo list` imports torch via {culprit}: command modules must import torch lazily")
    return 0 if build_s <= BUILD_TARGET_S and list_s <= LIST_TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
