"""Peak memory of one DenseNet-121 training step on the CPU: plain against memory-efficient.

The memory-efficient form (``memory_efficient=True``, Pleiss et al. 2017; torchvision's option of
the same name) recomputes each dense layer's concatenation, BN, ReLU and 1×1 conv in backward
instead of keeping them, so the stored concatenations no longer grow quadratically with the depth
of a block. This script runs one real training step (forward, cross-entropy, backward,
``SGD(momentum=0.9).step()``) of each form on the same weights and batch, and reads the peak of
live CPU allocations from the torch profiler's memory timeline (``profile_memory=True``: every
allocation and free in order, parameters and gradients included), as ``analyzer_memory.py`` does.
Both forms are measured in the same run, alternating, and the ratio is printed with the step times
(the recomputation costs time).

    .venv/bin/python benchmarks/densenet_memory.py [--batch 8] [--size 224] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

import cnnzoo

MB = 2**20


def peak_of_one_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, float]:
    """(peak live CPU bytes during one training step, its seconds), from the profiler's timeline."""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    t0 = time.perf_counter()
    with profile(
        activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
    ) as prof:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    live = peak = 0
    for _t, action, (key, _version), size in prof._memory_profile().timeline:
        if key.device.type != "cpu":
            continue
        if action in (Action.PREEXISTING, Action.CREATE):
            live += size
        elif action == Action.DESTROY:
            live -= size
        peak = max(peak, live)
    opt.zero_grad(set_to_none=True)
    return peak, seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (the lowest peak is kept)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    torch.manual_seed(0)
    plain = cnnzoo.create_model("densenet121").train()
    lean = cnnzoo.create_model("densenet121", memory_efficient=True).train()
    lean.load_state_dict(plain.state_dict())
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 1000, (args.batch,))
    params_mb = sum(p.numel() * p.element_size() for p in plain.parameters()) / MB
    print(
        f"densenet121, batch {args.batch} at {args.size}x{args.size}, {torch.get_num_threads()} threads, "
        f"load {os.getloadavg()[0]:.2f}; parameters {params_mb:.1f} MB (× 3 with gradients and momentum)"
    )
    best: dict[str, tuple[int, float]] = {}
    for _ in range(args.rounds):
        for label, model in (("plain", plain), ("memory_efficient", lean)):
            peak, secs = peak_of_one_step(model, x, y)
            if label not in best or peak < best[label][0]:
                best[label] = (peak, secs)
            print(f"  {label:17s} peak {peak / MB:8.1f} MB   step {secs:6.2f} s (under the profiler)")
    (p_peak, p_s), (l_peak, l_s) = best["plain"], best["memory_efficient"]
    print(
        f"peak: plain {p_peak / MB:.1f} MB, memory-efficient {l_peak / MB:.1f} MB: "
        f"ratio {l_peak / p_peak:.2f} (saves {(p_peak - l_peak) / MB:.1f} MB); step time ratio {l_s / p_s:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
