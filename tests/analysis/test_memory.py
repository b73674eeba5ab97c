"""The step's peak and the batch that fits (``cnnzoo.analysis.memory``)."""

from __future__ import annotations

import pytest
from torch import nn

from cnnzoo.analysis import OPTIMIZER_STATES, analyze, fit_batch_size
from cnnzoo.analysis.memory import OPTIMIZERS, Fit, TrainingMemory, fit_batch, parse_bytes, training_memory
from cnnzoo.analysis.meta import meta_state
from cnnzoo.analysis.step import trace_step
from cnnzoo.analysis.tracer import Inputs
from cnnzoo.errors import ConfigError


def test_optimizer_state_by_type():
    assert {k: v.states for k, v in OPTIMIZERS.items()} == {
        "sgd": 0,
        "momentum": 1,
        "adam": 2,
        "adamw": 2,
        "rmsprop": 1,
        "rmsprop_momentum": 2,
    }
    assert OPTIMIZER_STATES == {k: v.states for k, v in OPTIMIZERS.items()}


def _mlp_step():
    m = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10))
    return m, trace_step(m, Inputs.of((4, 16)), meta_state(m))


def test_peak_adds_the_state_of_each_optimizer():
    _, s = _mlp_step()
    g = s.fixed.grads
    base = s.fixed.params + s.fixed.buffers + s.fixed.data
    for name, opt in OPTIMIZERS.items():
        m = training_memory(s, name)
        assert m.optimizer_state == opt.states * g and m.fixed == base + opt.states * g
        assert m.peak == m.fixed + max(m.dynamic, m.optimizer_step)
    # Adam's update makes sqrt(v) / c for one parameter while the previous one's denominator is
    # still held: at most one parameter plus two of the next (W2, then b2 after W1's...)
    sizes = s.fixed.grad_sizes
    adam = training_memory(s, "adam")
    assert adam.optimizer_step == s.live_end + max(
        a + 2 * b for a, b in zip((0, *sizes), sizes, strict=False)
    )
    assert training_memory(s, "momentum").optimizer_step == s.live_end


def test_gradients_kept_or_freed():
    _, s = _mlp_step()
    freed, kept = training_memory(s, set_to_none=True), training_memory(s, set_to_none=False)
    assert freed.gradients_kept == 0 and kept.gradients_kept == s.fixed.grads
    assert kept.peak >= freed.peak  # the old gradients are live through the forward
    assert kept.dynamic == s.peak_kept


@pytest.mark.parametrize(
    "text,expected",
    [
        ("16GiB", 16 * 2**30),
        ("16 GiB", 16 * 2**30),
        ("16GB", 16 * 10**9),
        ("1.5gib", int(1.5 * 2**30)),
        ("512MiB", 512 * 2**20),
        ("512MB", 512 * 10**6),
        ("2TB", 2 * 10**12),
        ("64KiB", 64 * 1024),
        ("100B", 100),
        (4096, 4096),
    ],
)
def test_memory_sizes_as_written(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("bad", ["16", "sixteen GiB", "16 GiBs", "-1GB", "0GB", "", "16 gigs", True])
def test_unreadable_memory_sizes_get_one_line(bad):
    with pytest.raises(ConfigError) as e:
        parse_bytes(bad)
    msg = str(e.value)
    assert "\n" not in msg and "16GiB (2^30 bytes)" in msg and "16GB (10^9 bytes)" in msg


def _synthetic(peaks):
    """``peak_at`` for fit_batch from a function of the batch (no real trace)."""

    class S:
        def __init__(self, b):
            self.timeline = [peaks(b)]
            self.kept = self.timeline

    def peak_at(b):
        p = peaks(b)
        return TrainingMemory(p, "", 0, 0, 0, 0, 0, p, 0), S(b)

    return peak_at


def test_fit_uses_the_affine_lines_then_checks():
    fit = fit_batch(_synthetic(lambda b: 1000 + 300 * b), budget=10_000)
    assert fit == Fit(
        30, 10_000, 10_300, 10_000, 300.0, 1000.0, {2: 1600, 4: 2200, 30: 10_000, 31: 10_300}, True
    )
    assert fit_batch(_synthetic(lambda b: 1000 + 300 * b), budget=1200).batch == 0  # not even batch 1


def test_fit_bisects_a_peak_that_is_not_affine():
    fit = fit_batch(_synthetic(lambda b: 100 + b * b), budget=10_000)
    assert not fit.affine and fit.batch == 99 and fit.peak <= 10_000 < fit.next_peak


def test_fit_on_a_model_agrees_with_analyze_at_the_answer():
    m = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10)
    )
    fit = fit_batch_size(m, "1MiB", input_size=(3, 8, 8))
    assert fit.affine and fit.batch > 4
    at = analyze(m, input_size=(3, 8, 8), batch_size=fit.batch).totals["peak_training_bytes"]
    after = analyze(m, input_size=(3, 8, 8), batch_size=fit.batch + 1).totals["peak_training_bytes"]
    assert at == fit.peak <= 2**20 < after == fit.next_peak
    assert sorted(fit.traced) == [2, 4, fit.batch, fit.batch + 1]  # two probes and the check
    kept = fit_batch_size(m, "1MiB", input_size=(3, 8, 8), set_to_none=False)
    assert kept.batch <= fit.batch
