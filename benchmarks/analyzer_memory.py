"""Reality check: the cost table's training memory against one real training step on the CPU.

For ``lenet5_relu``, ``resnet20`` and ``alexnet`` (those registered) at small batches, this prints
the analyzer's prediction (activation memory + parameter memory with SGD momentum, the lecture's
rules in ``docs/cost-tables.md``) and the measured peak of one real step (forward, cross-entropy,
backward, ``SGD(momentum=0.9).step()``), read from the torch profiler's memory timeline
(``profile_memory=True``: every CPU allocation and free, in order), and their ratio.

Why the two differ (the prediction is the lecture's bookkeeping, not an allocator simulation):

* **Gradients of activations are transient.** The rule books 2·B·A·bytes per row, a value *and*
  a gradient for every layer at once. Autograd frees each activation gradient as soon as the
  layer below has used it, so only a few are alive at any moment; and the values themselves are
  freed layer by layer as backward passes them. The measured peak is therefore well below the
  prediction for deep nets with large maps (resnet20: about 0.4-0.5×), where activations dominate.
* **What autograd saves is not "each row's output".** Convolutions and linear layers save their
  *input*, batch norm saves its input plus per-channel statistics, in-place ReLU saves nothing
  new, max-pooling saves int64 *indices* (twice the bytes of an fp32 output, not counted by the
  rule), dropout saves a mask; flatten/views save nothing (both agree there).
* **Parameter state peaks at a different moment.** Parameter gradients are created during
  backward while activations are being freed, and the momentum buffers appear only at the end of
  the first ``step()``; the prediction adds value + gradient + momentum on top of all activations.
* **Temporaries the table does not model**: the loss and softmax buffers, the input batch's
  labels, and workspaces of the CPU convolution kernels (im2col/oneDNN), which can push the
  measurement *above* the prediction for models whose memory is mostly parameters (alexnet:
  the fc layers' 58 M parameters dominate and both figures are close).

So the table is an upper-bound style estimate for activation-heavy nets and a close estimate for
parameter-heavy ones; use it to compare architectures, not to size an allocator.

Run: ``.venv/bin/python benchmarks/analyzer_memory.py``
"""

from __future__ import annotations

import sys
import time

import torch
import torch.nn.functional as F

import cnnzoo
from cnnzoo.analysis import analyze

CASES = (("lenet5_relu", 64), ("resnet20", 32), ("alexnet", 4))
MB = 2**20


def measured_peak(name: str, batch: int) -> tuple[int, int, float]:
    """(peak live bytes of one training step, live bytes at the end of the forward, seconds)."""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action

    torch.manual_seed(0)
    model = cnnzoo.create_model(name).train()
    cfg = model.default_cfg
    x = torch.randn(batch, *cfg.input_size)
    y = torch.randint(0, cfg.num_classes, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    marks: dict[str, int] = {}
    t0 = time.perf_counter()
    with profile(
        activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
    ) as prof:
        out = model(x)
        logits = out if isinstance(out, torch.Tensor) else out.logits
        marks["forward"] = time.perf_counter_ns()
        loss = model.loss(out, y) if hasattr(model, "loss") else F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    timeline = prof._memory_profile().timeline
    live = peak = 0
    at_forward = None
    # the timeline's times are the profiler's own clock: find the end of the forward by order
    fwd_end = _forward_end_time(prof)
    for t, action, (key, _version), size in timeline:
        if key.device.type != "cpu":
            continue
        if fwd_end is not None and at_forward is None and t > fwd_end:
            at_forward = live
        if action in (Action.PREEXISTING, Action.CREATE):
            live += size
        elif action == Action.DESTROY:
            live -= size
        peak = max(peak, live)
    return peak, at_forward or 0, seconds


def _forward_end_time(prof) -> int | None:
    """Start time (ns, profiler clock) of the first op of the loss: where the forward ends."""
    for e in sorted(prof.profiler.kineto_results.events(), key=lambda e: e.start_ns()):
        if "cross_entropy" in e.name() or "log_softmax" in e.name():
            return e.start_ns()
    return None


def main() -> int:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    print(
        f"{'model':12s} {'batch':>5s} {'predicted MB':>13s} {'(act + param)':>17s} {'measured peak MB':>17s} "
        f"{'ratio meas/pred':>15s} {'live after fwd MB':>17s}"
    )
    for name, batch in CASES:
        if not cnnzoo.registry.is_model(name):
            print(f"{name:12s} (not registered, skipped)")
            continue
        r = analyze(name, batch_size=batch, optimizer="momentum")
        t = r.totals
        pred = t["activation_memory_bytes"] + t["parameter_memory_bytes"]
        peak, after_fwd, secs = measured_peak(name, batch)
        print(
            f"{name:12s} {batch:5d} {pred / MB:13.1f} "
            f"({t['activation_memory_bytes'] / MB:6.1f} + {t['parameter_memory_bytes'] / MB:6.1f}) "
            f"{peak / MB:17.1f} {peak / pred:15.2f} {after_fwd / MB:17.1f}   [{secs:.1f} s]"
        )
    print(
        "predicted = sum of the rows' activation memory (2·B·A·4 bytes: value + gradient; input B·A·4) "
        "+ 3 × params × 4 bytes (value, gradient, momentum); measured = peak of live CPU allocations "
        "during one training step (torch profiler memory timeline, parameters included)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
