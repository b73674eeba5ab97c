"""Reality check: ``peak_training_bytes`` against the measured peak of one real training step.

For nets of different shapes (``lenet5_relu``, ``resnet20``, ``alexnet``, ``vgg11``, ``googlenet``,
and torchvision's ``mobilenet_v2`` and ``densenet121``, which the zoo does not have yet), this
prints the analyzer's predicted peak of a steady-state training step with SGD momentum and the
peak measured on the CPU, and their ratio (target: within ±15% for each).

The measurement: build the model on the CPU, run one warm-up step (forward, the trainer's loss,
backward, ``SGD(momentum=0.9).step()``, which creates the momentum buffers), ``zero_grad()``
(``set_to_none=True``, torch's default), then profile the second step with the torch profiler's
memory events (``profile_memory=True``: every CPU allocation and free, kernels' workspaces
included, in order). The peak is the bytes live before the step (parameters, buffers, momentum,
the batch and its labels) plus the largest running sum of the events.

With ``--keep-grads`` the step after ``zero_grad(set_to_none=False)`` is measured too, against
``set_to_none=False``. On a machine with a GPU the same step is also measured with
``torch.cuda.max_memory_allocated``; the prediction follows the CPU's dispatch (cuDNN's
workspaces and the fused dropout's 1-byte mask differ), so that row is for information.

The lecture's bookkeeping (activation memory + (2 + k)·params, ``docs/cost-tables.md``) is shown
beside it: it books a value and a gradient for every row at once and measures 0.4-0.95 of it.

Run: ``.venv/bin/python benchmarks/analyzer_memory.py [--models NAME:BATCH ...] [--keep-grads]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

import cnnzoo
from cnnzoo.analysis import analyze

CASES = (
    ("lenet5_relu", 64),
    ("resnet20", 32),
    ("alexnet", 4),
    ("vgg11", 2),
    ("googlenet", 4),
    ("mobilenet_v2", 8),
    ("densenet121", 4),
)
TORCHVISION = ("mobilenet_v2", "densenet121")  # not in the zoo yet: torchvision's builders
MB = 2**20


def build(name: str, device: str = "cpu") -> tuple[nn.Module, tuple[int, ...], int, str]:
    """(model, input size, classes, where it comes from)."""
    if name in TORCHVISION and not cnnzoo.registry.is_model(name):
        import torchvision

        with torch.device(device):
            return getattr(torchvision.models, name)(), (3, 224, 224), 1000, "torchvision"
    model = cnnzoo.create_model(name).to(device)
    cfg = model.default_cfg
    return model, tuple(cfg.input_size), cfg.num_classes, "cnnzoo"


def _step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    out = model(x)
    custom = getattr(model, "loss", None)
    loss = custom(out, y) if callable(custom) else F.cross_entropy(getattr(out, "logits", out), y)
    loss.backward()
    opt.step()


def _live_bytes(tensors: list[torch.Tensor]) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        st = t.untyped_storage()
        seen.setdefault(st.data_ptr(), st.nbytes())
    return sum(seen.values())


def measured_peak(name: str, batch: int, set_to_none: bool = True) -> tuple[int, float]:
    """(peak live bytes of the second training step on the CPU, seconds it took)."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    model, size, classes, _ = build(name)
    model.train()
    x = torch.randn(batch, *size)
    y = torch.randint(0, classes, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    _step(model, opt, x, y)
    opt.zero_grad(set_to_none=set_to_none)
    state = [v for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    before = _live_bytes([*model.parameters(), *model.buffers(), *state, *grads, x, y])
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        _step(model, opt, x, y)
    seconds = time.perf_counter() - t0
    cpu = torch.autograd.DeviceType.CPU
    events = sorted(
        (
            e
            for e in prof.profiler.kineto_results.events()
            if e.name() == "[memory]" and e.device_type() == cpu
        ),
        key=lambda e: e.start_ns(),
    )
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return before + peak, seconds


def cuda_peak(name: str, batch: int) -> int | None:
    """The second step's ``torch.cuda.max_memory_allocated`` (None without a GPU)."""
    if not torch.cuda.is_available():
        return None
    torch.manual_seed(0)
    model, size, classes, _ = build(name, "cuda")
    model.train()
    x = torch.randn(batch, *size, device="cuda")
    y = torch.randint(0, classes, (batch,), device="cuda")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    _step(model, opt, x, y)
    opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    _step(model, opt, x, y)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()


def _source(name: str) -> str:
    return "torchvision" if name in TORCHVISION and not cnnzoo.registry.is_model(name) else "cnnzoo"


def predicted(name: str, batch: int, set_to_none: bool = True):
    """(the analyzer's report, the lecture's activation + parameter memory) for SGD momentum."""
    if _source(name) == "cnnzoo":
        r = analyze(name, batch_size=batch, optimizer="momentum", set_to_none=set_to_none)
    else:
        model, size, _, _ = build(name, "meta")
        r = analyze(model, input_size=size, batch_size=batch, optimizer="momentum", set_to_none=set_to_none)
    t = r.totals
    return r, t["activation_memory_bytes"] + t["parameter_memory_bytes"]


def _cases(spec: list[str] | None) -> list[tuple[str, int]]:
    if not spec:
        return list(CASES)
    out = []
    for s in spec:
        name, _, b = s.partition(":")
        out.append((name, int(b or 4)))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", metavar="NAME:BATCH", help="cases (default: the seven above)")
    p.add_argument("--keep-grads", action="store_true", help="also measure a step with gradients kept")
    args = p.parse_args()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(
        f"{'model':13s} {'source':11s} {'batch':>5s} {'grads':>6s} {'predicted MB':>13s} {'measured MB':>12s} "
        f"{'meas/pred':>9s} {'lecture MB':>11s} {'meas/lect':>9s}  peak at"
    )
    worst = 0.0
    for name, batch in _cases(args.models):
        source = _source(name)
        for set_to_none in (True, False) if args.keep_grads else (True,):
            report, lecture = predicted(name, batch, set_to_none)
            pred = report.totals["peak_training_bytes"]
            meas, secs = measured_peak(name, batch, set_to_none)
            worst = max(worst, abs(meas / pred - 1))
            print(
                f"{name:13s} {source:11s} {batch:5d} {'freed' if set_to_none else 'kept':>6s} {pred / MB:13.1f} "
                f"{meas / MB:12.1f} {meas / pred:9.3f} {lecture / MB:11.1f} {meas / lecture:9.2f}  "
                f"{report.training.memory.peak_at}   [{secs:.1f} s]",
                flush=True,
            )
        gpu = cuda_peak(name, batch)
        if gpu is not None:
            print(
                f"{'':13s} {'cuda':11s} {batch:5d} {'freed':>6s} {pred / MB:13.1f} {gpu / MB:12.1f} {gpu / pred:9.3f}"
            )
    print(
        "predicted = totals['peak_training_bytes'] (a training step traced on the meta device, SGD momentum); "
        "measured = live bytes before the step + the peak of the torch profiler's CPU memory events of the "
        "second step; lecture = activation memory + 3 x params x 4 bytes."
    )
    print(f"largest deviation |measured / predicted - 1| = {worst:.3f} (target <= 0.15)")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0 if worst <= 0.15 else 1


if __name__ == "__main__":
    sys.exit(main())
