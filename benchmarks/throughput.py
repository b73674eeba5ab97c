"""CPU inference throughput of every registered model against its multiply-adds (issue 13).

ShuffleNet v2's point (Ma et al. 2018, §2) is that FLOPs are not speed: a network's time also goes
to memory access (reading and writing feature maps that little arithmetic is done on: depthwise
convs, channel shuffles, concatenations, splits, element-wise ops) and is lost to poor parallelism
(many small ops). This script measures it on this machine: for every registered model at its
default input size (the paper's), in eval mode under ``torch.inference_mode()``, with 2 intra-op
threads, the images per second at batch 1 and batch 32, next to the model's MACs (conv and linear
multiply-adds from ``cnnzoo.analysis``) and the arithmetic rate it reaches (GMAC/s = MACs ×
images/s). A network bound by its arithmetic reaches the machine's rate; one bound by memory
access falls below it.

With ``--breakdown`` it also times the leaf layers of a few networks (forward hooks, batch 32) and
sums the time and the MACs by layer kind (dense conv, grouped conv, depthwise conv, batch norm,
activation, shuffle, the cats/splits/adds in block code, ...), which shows where the time goes.

Timing: per model and batch, one warm-up call (oneDNN builds its kernels), then repeated calls
until ``--cap`` seconds have passed (at most ``--max-iters``); the median call is reported. A
model whose warm-up alone takes more than half the cap is reported from that one call ("1*"), so
the big networks cost one call each and the whole zoo (~140 models) stays within ~20 minutes on
two quiet cores. On a loaded machine ``--b32-max-gmacs X`` times the models of more than X GMACs per
image at batch 1 only (their batch-32 call alone, EfficientNet-B7 at 600 px being 1.2 T MACs, takes
minutes there); the table shows "—" and their GMAC/s is the batch-1 rate. No model is skipped.
``--json`` is rewritten after every model, so a run stopped early keeps what it measured.

``OMP_WAIT_POLICY`` defaults to ``PASSIVE`` here: on a shared machine whose cores are busy, OpenMP
threads that spin while waiting make two-thread runs many times slower than one thread (measured:
30× for a ShuffleNet training step under a load of 8). Measure on a quiet machine for figures that
mean anything absolute; the script prints ``uptime`` first.

Usage::

    .venv/bin/python benchmarks/throughput.py [--models 'shufflenet*' ...] [--cap 2.5 --cap32 5]
        [--json out.json] [--plot benchmarks/throughput.png] [--breakdown shufflenet_v2_x1_0 resnet50]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see the docstring)

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from typing import Any, NamedTuple  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

import cnnzoo  # noqa: E402
from cnnzoo.analysis import analyze  # noqa: E402
from cnnzoo.analysis.kinds import module_kind  # noqa: E402
from cnnzoo.io import atomic_write_json  # noqa: E402


class Result(NamedTuple):
    name: str
    family: str
    input_side: int
    params: int
    macs: float
    b1: float  # images/s at batch 1
    b1_calls: int
    b32: float | None  # images/s at batch 32 (None: not timed, over --b32-max-gmacs)
    b32_calls: int

    @property
    def gmacs_per_s(self) -> float:
        return self.macs * (self.b32 if self.b32 is not None else self.b1) / 1e9


def _macs(report: Any) -> float:
    return sum(r.flops for r in report.layers if r.type in ("conv", "linear")) / 2


def time_calls(model: nn.Module, x: torch.Tensor, cap: float, max_iters: int) -> tuple[float, int]:
    """(median seconds per call, calls timed): one warm-up, then calls until ``cap`` seconds."""
    with torch.inference_mode():
        t0 = time.perf_counter()
        model(x)
        warm = time.perf_counter() - t0
        if warm > cap / 2:
            return warm, 1
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < max_iters and time.perf_counter() - start < cap:
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return statistics.median(times), len(times)


def measure(
    name: str, cap: float, cap32: float, max_iters: int, b32_max_gmacs: float | None = None
) -> Result:
    cfg = cnnzoo.get_model_config(name)
    macs = _macs(analyze(name))
    torch.manual_seed(0)
    model = cnnzoo.create_model(name).eval()
    c, h, w = cfg.input_size
    t1, n1 = time_calls(model, torch.randn(1, c, h, w), cap, max_iters)
    b32, n32 = None, 0
    if b32_max_gmacs is None or macs <= b32_max_gmacs * 1e9:
        t32, n32 = time_calls(model, torch.randn(32, c, h, w), cap32, max_iters)
        b32 = 32 / t32
    params = sum(p.numel() for p in model.parameters())
    del model
    return Result(name, cfg.family, h, params, macs, 1 / t1, n1, b32, n32)


# -- where the time goes: leaf layers by kind ------------------------------------------------------


def _layer_kind(m: nn.Module) -> str | None:
    if isinstance(m, nn.Conv2d):
        if m.groups == 1:
            return "dense conv 1x1" if m.kernel_size == (1, 1) else "dense conv kxk"
        return "depthwise conv" if m.groups == m.in_channels == m.out_channels else "grouped conv"
    kind = module_kind(m)
    if kind in (None, "identity") or kind in ("block", "cell", "container", "stage", "head", "se", "stem"):
        return None
    return {"norm": "batch norm", "act": "activation", "shuffle": "channel shuffle"}.get(kind, kind)


def breakdown(name: str, batch: int = 32, repeats: int = 3) -> dict[str, tuple[float, float]]:
    """Kind -> (share of the forward's time, share of its MACs), batch ``batch``, eval mode.

    Leaf layers are timed by forward pre/post hooks; what runs outside them (the cats, chunks and
    adds written in block and cell code) is the rest of the forward, reported as "block code"."""
    cfg = cnnzoo.get_model_config(name)
    model = cnnzoo.create_model(name).eval()
    x = torch.randn(batch, *cfg.input_size)
    spent: dict[str, float] = defaultdict(float)
    macs: dict[str, float] = defaultdict(float)
    starts: dict[int, float] = {}
    hooks = []
    kinds = {}
    for mod_name, m in model.named_modules():
        kind = _layer_kind(m)
        if kind is None or (any(True for _ in m.children()) and not isinstance(m, nn.Conv2d)):
            continue  # composite modules: their leaves are timed
        kinds[mod_name] = kind
        hooks.append(
            m.register_forward_pre_hook(lambda mod, a: starts.__setitem__(id(mod), time.perf_counter()))
        )
        hooks.append(
            m.register_forward_hook(
                lambda mod, a, o, k=kind: spent.__setitem__(
                    k, spent[k] + time.perf_counter() - starts[id(mod)]
                )
            )
        )
    with torch.inference_mode():
        model(x)  # warm-up
        spent.clear()
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(x)
        total = time.perf_counter() - t0
    for h in hooks:
        h.remove()
    spent["block code"] = max(total - sum(spent.values()), 0.0)
    for row in analyze(name).layers:
        if row.type in ("conv", "linear"):
            macs[kinds.get(row.name, row.type)] += row.flops / 2
    all_macs = sum(macs.values())
    return {
        k: (spent[k] / total, macs.get(k, 0.0) / all_macs) for k in sorted(spent, key=lambda k: -spent[k])
    }


# -- output ------------------------------------------------------------------------------------


def print_table(results: list[Result]) -> None:
    print("| model | input | params (M) | MACs (G) | img/s, batch 1 | img/s, batch 32 | GMAC/s (batch 32) |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(results, key=lambda r: r.macs):
        one = "*" if r.b1_calls == 1 else ""
        many = "—" if r.b32 is None else f"{r.b32:.1f}" + ("*" if r.b32_calls == 1 else "")
        print(
            f"| {r.name} | {r.input_side} | {r.params / 1e6:.2f} | {r.macs / 1e9:.3f} | {r.b1:.1f}{one} "
            f"| {many} | {r.gmacs_per_s:.1f} |"
        )
    print("(* one timed call: the warm-up took more than half the cap; — not timed at batch 32, "
          "the GMAC/s is batch 1's)")  # fmt: skip


def plot(results: list[Result], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=110)
    families = sorted({r.family for r in results})
    cmap = plt.get_cmap("tab20")
    for i, fam in enumerate(families):
        rs = [r for r in results if r.family == fam and r.b32 is not None]
        ax.scatter([r.macs / 1e9 for r in rs], [r.b32 for r in rs], s=22, color=cmap(i % 20), label=fam)
        big = [r for r in results if r.family == fam and r.b32 is None]  # batch 1 only: hollow
        ax.scatter([r.macs / 1e9 for r in big], [r.b1 for r in big], s=22, facecolors="none",
                   edgecolors=cmap(i % 20))  # fmt: skip
    rate = statistics.median(
        r.gmacs_per_s for r in results if r.b32 is not None
    )  # the zoo's median arithmetic rate
    lo, hi = min(r.macs for r in results) / 1e9, max(r.macs for r in results) / 1e9
    ax.plot([lo, hi], [rate / lo, rate / hi], "k--", lw=0.8, label=f"median rate {rate:.0f} GMAC/s")
    for r in results:
        if (
            r.family in ("shufflenet_v2", "shufflenet_v1", "squeezenet", "nasnet", "xception")
            or r.macs < 0.2e9
        ):
            ax.annotate(
                r.name,
                (r.macs / 1e9, r.b32 if r.b32 is not None else r.b1),
                fontsize=5,
                alpha=0.8,
                xytext=(2, 2),
                textcoords="offset points",
            )
    ax.set(xscale="log", yscale="log", xlabel="multiply-adds per image (G, conv + linear)",
           ylabel="images / s (batch 32, 2 threads, CPU; hollow: batch 1)",
           title="Inference throughput against MACs: below the line, memory access rules")  # fmt: skip
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=5, ncol=2, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="*", default=["*"], help="fnmatch patterns (default: every model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cap", type=float, default=2.5, help="seconds of timed calls per model at batch 1")
    ap.add_argument("--cap32", type=float, default=5.0, help="seconds of timed calls per model at batch 32")
    ap.add_argument("--max-iters", type=int, default=50)
    ap.add_argument(
        "--b32-max-gmacs", type=float, default=None, help="time batch 32 only up to this many GMACs per image"
    )
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--plot", help="write the throughput-against-MACs plot here (PNG)")
    ap.add_argument(
        "--breakdown", nargs="*", default=[], help="models whose time to break down by layer kind"
    )
    ap.add_argument("--from-json", help="print the table and plot of an earlier --json, measuring nothing")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
    )
    if args.from_json:
        with open(args.from_json) as f:
            results = [Result(**r) for r in json.load(f)]
        print_table(results)
        if args.plot:
            plot(results, args.plot)
        return
    names = cnnzoo.list_models(args.models)
    t0 = time.perf_counter()
    results = []
    for i, name in enumerate(names):
        r = measure(name, args.cap, args.cap32, args.max_iters, args.b32_max_gmacs)
        results.append(r)
        b32 = "—" if r.b32 is None else f"{r.b32:.1f}"
        print(f"[{i + 1}/{len(names)} {time.perf_counter() - t0:.0f}s] {name}: {r.b1:.1f} img/s (b1), "
              f"{b32} img/s (b32), {r.macs / 1e9:.3f} GMACs, {r.gmacs_per_s:.1f} GMAC/s", flush=True)  # fmt: skip
        if args.json:
            atomic_write_json(args.json, [x._asdict() for x in results])
    print()
    print_table(results)
    print(f"\n{len(results)} models in {time.perf_counter() - t0:.0f} s")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if args.plot:
        plot(results, args.plot)
    for name in args.breakdown:
        print(f"\n{name}, batch 32: share of forward time / share of MACs by layer kind")
        for kind, (t, m) in breakdown(name).items():
            print(f"  {kind:18s} {100 * t:5.1f} % time  {100 * m:5.1f} % MACs")


if __name__ == "__main__":
    main()
