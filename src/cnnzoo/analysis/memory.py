"""The peak of a training step, and the largest batch that fits a memory budget.

:func:`~cnnzoo.analysis.step.trace_step` gives the live dynamic bytes over one step (activations,
saved tensors, gradients, workspaces). Here they meet what is live all step: parameters, buffers,
the data batch and the optimizer's state, whose size depends on the optimizer (:data:`OPTIMIZERS`),
and the optimizer's own temporaries during ``step()``.

The model is a step in the steady state, the second one: the optimizer's state already exists,
and the previous step's gradients are gone (``zero_grad(set_to_none=True)``, torch's default), or
kept and zeroed in place (``set_to_none=False``: they are live all step, and each new gradient is
added into them and freed).

Every tensor of a CNN's step is either independent of the batch B (parameters, gradients, state)
or proportional to it, so the live bytes at each moment of the step are affine in B and the peak,
their maximum, is convex and piecewise affine in B. :func:`fit_batch` uses that: two traces give
every moment's line, the lines give the largest B under the budget, and traces at that B and the
next one check the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from cnnzoo.analysis.step import StepTrace
from cnnzoo.errors import ConfigError

__all__ = ["Optimizer", "OPTIMIZERS", "TrainingMemory", "training_memory", "parse_bytes", "Fit", "fit_batch"]


class Optimizer(NamedTuple):
    """What an optimizer adds to a step, per trainable parameter (weight decay 0).

    ``states``: state tensors per parameter (k of the lecture's (2 + k)·params). ``flops``: FLOPs
    of its update per parameter value. ``scratch``: the temporaries of torch's per-tensor update
    (the default off CUDA), as (held from the previous parameter, made for this one), in parameter
    sizes: Adam's ``denom = (exp_avg_sq.sqrt() / c).add_(eps)`` makes two and keeps one until the
    next parameter's update; RMSprop's ``avg = square_avg.sqrt().add_(eps)`` makes one and keeps it.
    """

    states: int
    flops: int
    scratch: tuple[int, int] = (0, 0)


#: optimizer name -> what it adds. FLOPs count each multiply, add and square root once (an
#: ``add_(x, alpha=a)`` or ``addcmul_`` is a multiply-add, 2; a ``lerp_`` 3).
OPTIMIZERS: dict[str, Optimizer] = {
    "sgd": Optimizer(0, 2),  # p -= lr·g
    "momentum": Optimizer(1, 5),  # b = m·b + g; p -= lr·b
    "adam": Optimizer(2, 13, (1, 2)),  # lerp, m·v + (1-β2)·g², sqrt, /, +eps, addcdiv
    "adamw": Optimizer(2, 14, (1, 2)),  # Adam plus the decoupled decay p·(1 − lr·wd)
    "rmsprop": Optimizer(1, 9, (1, 1)),  # α·v + (1-α)·g², sqrt, +eps, addcdiv
    "rmsprop_momentum": Optimizer(2, 12, (1, 1)),  # plus b = m·b + g/avg; p -= lr·b
}


class TrainingMemory(NamedTuple):
    """The peak of one steady-state training step, and what it is made of (bytes)."""

    peak: int
    peak_at: str
    params: int
    buffers: int
    data: int
    gradients_kept: int  # the previous step's gradients, if kept (``set_to_none=False``)
    optimizer_state: int
    dynamic: int  # the largest live sum of activations, saved tensors, new gradients, workspaces
    optimizer_step: int  # live dynamic bytes during ``optimizer.step()``, its temporaries included

    @property
    def fixed(self) -> int:
        return self.params + self.buffers + self.data + self.gradients_kept + self.optimizer_state


def _optimizer_scratch(opt: Optimizer, sizes: tuple[int, ...]) -> int:
    held, made = opt.scratch
    best, prev = 0, 0
    for n in sizes:
        best = max(best, held * prev + made * n)
        prev = n
    return best


def training_memory(step: StepTrace, optimizer: str = "momentum", set_to_none: bool = True) -> TrainingMemory:
    """The peak of live bytes over one steady-state step (module docstring)."""
    opt = OPTIMIZERS[optimizer]
    f = step.fixed
    scratch = _optimizer_scratch(opt, f.grad_sizes)
    if set_to_none:
        dynamic, at_step, kept = step.peak, step.live_end + scratch, 0
    else:
        dynamic, at_step, kept = step.peak_kept, step.live_end_kept + scratch, f.grads
    fixed = f.params + f.buffers + f.data + kept + opt.states * f.grads
    if at_step > dynamic:
        peak, where = fixed + at_step, "optimizer step"
    else:
        peak, where = fixed + dynamic, step.peak_at
    return TrainingMemory(
        peak, where, f.params, f.buffers, f.data, kept, opt.states * f.grads, dynamic, at_step
    )


# -- memory sizes --------------------------------------------------------------------------------

_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]+)\s*$")


def parse_bytes(text: str | int) -> int:
    """``"16GiB"`` -> 17179869184: GB, MB, KB and TB are powers of 10, GiB, MiB, KiB and TiB of 2.

    Raises:
        ConfigError: anything else, with one line that shows how to write it.
    """
    if isinstance(text, int) and not isinstance(text, bool) and text > 0:
        return text
    m = _SIZE.match(str(text))
    unit = _UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None or float(m.group(1)) <= 0:
        raise ConfigError(
            f"cannot read the memory size {text!r}: write a number and a unit, e.g. 16GiB (2^30 bytes) "
            "or 16GB (10^9 bytes); units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"
        )
    return int(float(m.group(1)) * unit)


# -- the largest batch that fits ----------------------------------------------------------------------


class Fit(NamedTuple):
    """The answer of :func:`fit_batch`: the largest batch whose predicted peak fits the budget."""

    batch: int  # 0 if not even batch 1 fits
    peak: int  # the traced peak at ``batch`` (at batch 1 if nothing fits)
    next_peak: int | None  # the traced peak at ``batch + 1``, which does not fit
    budget: int
    per_sample: float  # the slope of the peak's line through the first two traces, bytes per sample
    intercept: float
    traced: dict[int, int]  # every batch traced -> its peak
    affine: bool  # whether the traced peaks lay on the predicted lines


def _line(v1: float, v2: float, b1: int, b2: int) -> tuple[float, float]:
    slope = (v2 - v1) / (b2 - b1)
    return v1 - slope * b1, slope


def _moment_lines(
    m1: TrainingMemory, s1: StepTrace, m2: TrainingMemory, s2: StepTrace, b1: int, b2: int, set_to_none: bool
) -> list[tuple[float, float]] | None:
    """(intercept, slope) of the total live bytes at each moment of the step, if the traces line up:
    the fixed storages' line plus each moment's dynamic line, and the optimizer step's."""
    t1, t2 = (s1.timeline, s2.timeline) if set_to_none else (s1.kept, s2.kept)
    if len(t1) != len(t2):
        return None
    fa, fs = _line(m1.fixed, m2.fixed, b1, b2)
    lines = [_line(a, b, b1, b2) for a, b in zip(t1, t2, strict=True)]
    lines.append(_line(m1.optimizer_step, m2.optimizer_step, b1, b2))
    return [(a + fa, s + fs) for a, s in lines]


def _largest_under(lines: list[tuple[float, float]], budget: float) -> int:
    """The largest integer B with every line at or under the budget (0: not even B = 0 fits)."""
    best = _MAX_BATCH
    for a, s in lines:
        if s <= 0:
            if a > budget:
                return 0
            continue
        best = min(best, int((budget - a) // s))
    return max(best, 0)


_MAX_BATCH = 2**24


def fit_batch(
    peak_at: Callable[[int], tuple[TrainingMemory, StepTrace]],
    budget: int,
    set_to_none: bool = True,
    probes: tuple[int, int] = (2, 4),
) -> Fit:
    """The largest batch B whose predicted training peak fits ``budget`` bytes (module docstring).

    ``peak_at(B)`` traces the step at batch B. The lines through the two probes give the answer;
    traces at it and at the batch after it check it. If the peak turns out not to be affine (a
    model whose tensors grow otherwise with B), the answer is found by bisection instead.
    """
    b1, b2 = probes
    (m1, s1), (m2, s2) = peak_at(b1), peak_at(b2)
    traced = {b1: m1.peak, b2: m2.peak}
    intercept, slope = _line(m1.peak, m2.peak, b1, b2)
    lines = _moment_lines(m1, s1, m2, s2, b1, b2, set_to_none)
    if lines is None:
        lines = [(intercept, slope)]
    guess = min(max(_largest_under(lines, budget), 1), _MAX_BATCH)

    def peak(b: int) -> int:
        if b not in traced:
            traced[b] = peak_at(b)[0].peak
        return traced[b]

    if peak(guess) <= budget < peak(guess + 1):
        return Fit(guess, peak(guess), peak(guess + 1), budget, slope, intercept, traced, True)
    lo, hi = _bisect(peak, budget, guess)
    if lo == 0:
        return Fit(0, peak(1), None, budget, slope, intercept, traced, False)
    return Fit(lo, peak(lo), peak(lo + 1), budget, slope, intercept, traced, False)


def _bisect(peak: Callable[[int], int], budget: int, guess: int) -> tuple[int, int]:
    """(largest batch known to fit, smallest known not to), one apart; 0 fits trivially."""
    lo, hi = (guess, 0) if peak(guess) <= budget else (0, guess)
    while not hi:
        b = min(2 * max(lo, 1), _MAX_BATCH)
        if peak(b) > budget or b == _MAX_BATCH:
            hi = b
        else:
            lo = b
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if peak(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return lo, hi
