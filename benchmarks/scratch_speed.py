"""Speed of the NumPy engine vs PyTorch: one epoch of lenet5_relu on Fashion-MNIST, batch 128, float32.

Both engines train the same network (``cnnzoo.scratch.lenet5_relu`` and the torch zoo's
``lenet5_relu``) on the same normalised, padded batches with the same step: forward, cross-entropy,
backward, SGD (momentum 0.9, Nesterov, weight decay 5e-4). Both get the same thread count (NumPy's
OpenBLAS threads and ``torch.set_num_threads``). The two engines run in alternating chunks of
batches, so load from other processes on a shared machine hits both alike; the ratio is what counts.

Also printed: a per-op time breakdown of the NumPy engine, the BLAS peak of this machine (a large
float32 ``np.matmul``, same threads), and the GFLOP/s the convolutions achieve against it.

    python benchmarks/scratch_speed.py                 # 60 batches, extrapolated to the epoch
    python benchmarks/scratch_speed.py --batches 0     # the whole epoch (469 batches)
    python benchmarks/scratch_speed.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

import numpy as np

BATCH = 128
EPOCH_IMAGES = 60_000


def conv_flops(net, batch: int) -> tuple[dict[str, float], float]:
    """Useful FLOPs (2 per multiply-add) per batch of each conv/linear layer: forward, dW and dX."""
    from cnnzoo.scratch.layers import Conv2d, Linear

    flops: dict[str, float] = {}
    side = 32
    sizes = {"c1": 28, "c3": 10, "c5": 1}
    for name, layer in net:
        if isinstance(layer, Conv2d):
            o, cg, kh, kw = layer.params["weight"].shape
            macs = batch * o * sizes[name] ** 2 * cg * kh * kw
            passes = 3 if layer.needs_input_grad else 2  # forward, dW (+ dX)
            flops[name] = 2.0 * macs * passes
        elif isinstance(layer, Linear):
            o, i = layer.params["weight"].shape
            flops[name] = 2.0 * batch * o * i * (3 if layer.needs_input_grad else 2)
    del side
    return flops, sum(flops.values())


def blas_peak(n: int = 2048, reps: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.copy()
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2.0 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--batches", type=int, default=60, help="batches to time per engine (0 = the whole epoch)"
    )
    ap.add_argument("--chunk", type=int, default=10, help="batches per engine before switching")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both engines")
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="NumPy engine: data-parallel worker threads (default: --threads, each with 1 BLAS thread)",
    )
    ap.add_argument("--micro-batch", type=int, default=64, help="NumPy engine micro-batch (0: none)")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from rich.console import Console
    from rich.table import Table

    import cnnzoo
    from cnnzoo.data import load_arrays
    from cnnzoo.scratch import SGD, interop, lenet5_relu
    from cnnzoo.scratch.blas import get_blas_threads, set_blas_threads
    from cnnzoo.scratch.parallel import DataParallel
    from cnnzoo.scratch.train import prepare_images

    console = Console()
    workers = args.workers or args.threads
    set_blas_threads(max(1, args.threads // workers))
    torch.set_num_threads(args.threads)
    steps_per_epoch = -(-EPOCH_IMAGES // BATCH)
    n_batches = args.batches or steps_per_epoch
    x_all, y_all, spec, _ = load_arrays("fashion-mnist", "train", data_dir=args.data_dir)
    order = np.random.default_rng(0).permutation(len(y_all))
    batches = []
    for i in range(n_batches + 3):
        idx = np.sort(order[(i * BATCH) % len(order) :][:BATCH])
        batches.append((prepare_images(x_all[idx], side=32, mean=spec.mean, std=spec.std), y_all[idx]))

    net = lenet5_relu(seed=0)
    model = interop.to_torch(net, "lenet5_relu").train()
    opt = SGD(net, lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
    topt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
    runner = DataParallel(net, workers, args.micro_batch or None)

    times: dict[str, float] = defaultdict(float)  # summed over the worker threads

    def timed(fn, key):
        def wrapper(a):
            t0 = time.perf_counter()
            r = fn(a)
            times[key] += time.perf_counter() - t0
            return r

        return wrapper

    for rep in runner.replicas:
        for name, layer in rep:
            layer.forward = timed(layer.forward, f"{name} fwd")
            layer.backward = timed(layer.backward, f"{name} bwd")

    def scratch_step(x, y):
        loss, _ = runner.step(x, y)  # forward, cross-entropy, backward
        t0 = time.perf_counter()
        opt.step()
        times["SGD step"] += time.perf_counter() - t0
        return loss

    tbatches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def torch_step(x, y):
        topt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        topt.step()
        return loss

    for i in range(3):  # warm-up
        scratch_step(*batches[i])
        torch_step(*tbatches[i])
    times.clear()
    t_np = t_torch = 0.0
    for start in range(3, n_batches + 3, args.chunk):
        stop = min(start + args.chunk, n_batches + 3)
        t0 = time.perf_counter()
        for i in range(start, stop):
            scratch_step(*batches[i])
        t_np += time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(start, stop):
            torch_step(*tbatches[i])
        t_torch += time.perf_counter() - t0

    per_np, per_torch = t_np / n_batches, t_torch / n_batches
    flops, total_flops = conv_flops(net, BATCH)
    conv_time = sum(v for k, v in times.items() if k.split()[0] in flops) / n_batches

    op_total = sum(times.values()) / n_batches
    table = Table(
        title=f"NumPy engine, per batch of {BATCH} (mean of {n_batches}; summed over {workers} worker(s))",
        header_style="bold",
    )
    for col in ("op", "ms", "% of op time", "GFLOP/s per core"):
        table.add_column(col, justify="left" if col == "op" else "right")
    for key, v in sorted(times.items(), key=lambda kv: -kv[1]):
        ms = v / n_batches * 1e3
        if ms < 0.01:
            continue
        layer = key.split()[0]
        gf = ""
        if layer in flops and key.endswith("bwd"):
            gf = f"{flops[layer] / (times[f'{layer} fwd'] + v) * n_batches / 1e9:.1f} (fwd+bwd)"
        table.add_row(key, f"{ms:.2f}", f"{100 * ms / (op_total * 1e3):.1f}", gf)
    console.print(table)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    console.print(
        f"threads: NumPy engine {workers} worker(s) x {get_blas_threads()} BLAS thread(s), micro-batch "
        f"{args.micro_batch or 'none'}; torch {torch.get_num_threads()} (cpu_count {os.cpu_count()}); "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    set_blas_threads(1)
    peak1 = blas_peak()
    set_blas_threads(args.threads)
    peak_n = blas_peak() if args.threads > 1 else peak1
    conv_rate = total_flops / conv_time / 1e9  # per thread: FLOPs over the thread time spent in them
    step_rate = total_flops / per_np / 1e9
    console.print(
        f"BLAS peak (float32 2048² matmul): {peak1:.1f} GFLOP/s on 1 thread, {peak_n:.1f} on {args.threads}."
    )
    console.print(
        f"conv+linear layers: {total_flops / 1e9:.3f} GFLOP per batch (useful FLOPs, fwd + dW + dX) in "
        f"{conv_time * 1e3:.1f} ms of thread time = {conv_rate:.1f} GFLOP/s per thread "
        f"= {100 * conv_rate / peak1:.0f}% of the 1-thread peak"
    )
    console.print(
        f"whole training step: {step_rate:.1f} GFLOP/s = {100 * step_rate / peak_n:.0f}% of the "
        f"{args.threads}-thread peak (the rest is memory traffic: im2col/col2im, pooling, activations)"
    )
    console.print(
        f"[bold]one epoch ({steps_per_epoch} batches, extrapolated from {n_batches}):[/] "
        f"NumPy engine {per_np * steps_per_epoch:.1f} s ({BATCH / per_np:,.0f} img/s), "
        f"torch {per_torch * steps_per_epoch:.1f} s ({BATCH / per_torch:,.0f} img/s)"
    )
    ratio = per_np / per_torch
    verdict = "[green]within[/]" if ratio <= 2.0 else "[red]over[/]"
    console.print(f"[bold]ratio NumPy/torch = {ratio:.2f}x[/] ({verdict} the 2x target)")
    runner.close()
    del cnnzoo


if __name__ == "__main__":
    main()
