"""Learning-rate schedules: exact values at the key steps, torch parity, and exact resume."""

from __future__ import annotations

import math

import pytest
import torch

from cnnzoo.errors import ConfigError
from cnnzoo.train.schedules import SCHEDULES, build_schedule, lr_curve


def _opt(lr: float = 1.0, groups: int = 1) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)]} for _ in range(groups)], lr=lr)


def test_constant_with_warmup_ramps_linearly_then_holds():
    c = lr_curve("constant", steps_per_epoch=10, total_steps=30, warmup_steps=10, warmup_start_factor=0.1)
    assert c[0] == pytest.approx(0.1)
    assert c[5] == pytest.approx(0.1 + 0.9 * 5 / 10)
    assert c[9] == pytest.approx(0.1 + 0.9 * 9 / 10)
    assert c[10:] == [pytest.approx(1.0)] * 20


def test_step_divides_every_step_size_epochs():
    c = lr_curve("step", steps_per_epoch=4, total_steps=4 * 20, gamma=0.96, step_size=8)
    assert c[0] == c[8 * 4 - 1] == pytest.approx(1.0)
    assert c[8 * 4] == pytest.approx(0.96)  # first step of epoch 8
    assert c[16 * 4] == pytest.approx(0.96**2)
    assert c[-1] == pytest.approx(0.96**2)


def test_step_with_a_fractional_period_is_tf_staircase_decay():
    # EfficientNet / MnasNet: x0.97 every 2.4 epochs, i.e. TF's exponential_decay(staircase=True)
    # with decay_steps = 2.4 * steps_per_epoch (24 steps here)
    c = lr_curve("step", steps_per_epoch=10, total_steps=100, gamma=0.97, step_size=2.4)
    assert c[23] == pytest.approx(1.0) and c[24] == pytest.approx(0.97)
    assert c[47] == pytest.approx(0.97) and c[48] == pytest.approx(0.97**2)
    assert c == [pytest.approx(0.97 ** (s // 24)) for s in range(100)]


def test_exponential_decays_continuously_per_step():
    # CapsNet's release: TF's exponential_decay(0.96, decay_steps=2000), staircase off
    spe = 469
    c = lr_curve("exponential", steps_per_epoch=spe, total_steps=4001, gamma=0.96, step_size=2000 / spe)
    assert c[0] == pytest.approx(1.0)
    assert c[1000] == pytest.approx(0.96**0.5) and c[2000] == pytest.approx(0.96)
    assert c[4000] == pytest.approx(0.96**2)
    assert all(a > b for a, b in zip(c, c[1:], strict=False))  # strictly falling, no stairs


def test_step_warmup_from_zero_multiplies_the_stairs():
    c = lr_curve(
        "step", steps_per_epoch=10, total_steps=60, gamma=0.97, step_size=2.4, warmup_steps=50,
        warmup_start_factor=0.0,
    )  # fmt: skip
    assert c[0] == 0.0 and c[25] == pytest.approx(0.5 * 0.97) and c[50] == pytest.approx(0.97**2)


def test_multistep_in_epochs_and_in_iterations_agree():
    spe = 5
    by_epoch = lr_curve("multistep", steps_per_epoch=spe, total_steps=90 * spe, milestones=(30, 60))
    by_iter = lr_curve(
        "multistep", steps_per_epoch=spe, total_steps=90 * spe, milestones=(150, 300), milestone_unit="iter"
    )
    assert by_epoch == by_iter
    assert by_epoch[149] == pytest.approx(1.0) and by_epoch[150] == pytest.approx(0.1)
    assert by_epoch[299] == pytest.approx(0.1) and by_epoch[300] == pytest.approx(0.01)


def test_resnet_cifar_iteration_milestones():
    c = lr_curve(
        "multistep", steps_per_epoch=391, total_steps=64000, milestones=(32000, 48000), milestone_unit="iter"
    )
    assert len(c) == 64000
    assert (c[31999], c[32000], c[47999], c[48000], c[63999]) == pytest.approx((1.0, 0.1, 0.1, 0.01, 0.01))


def test_multistep_milestones_stay_put_under_warmup():
    c = lr_curve(
        "multistep",
        steps_per_epoch=10,
        total_steps=100,
        milestones=(5,),
        warmup_steps=20,
        warmup_start_factor=0.0,
    )
    assert c[0] == 0.0
    assert c[49] == pytest.approx(1.0) and c[50] == pytest.approx(0.1)  # epoch 5, not 5 after the warmup


def test_cosine_endpoints_and_midpoint_after_warmup():
    c = lr_curve("cosine", steps_per_epoch=10, total_steps=110, warmup_steps=10, min_lr_factor=0.01)
    assert c[0] == pytest.approx(0.1)
    assert c[10] == pytest.approx(1.0)  # the curve starts when the warmup ends
    assert c[60] == pytest.approx(0.01 + 0.99 * 0.5)  # half-way through the cosine
    assert c[109] == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 99 / 100)))
    assert all(a >= b for a, b in zip(c[10:], c[11:], strict=False))  # monotone after the warmup


@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_onecycle_matches_torch(anneal):
    total = 200
    c = lr_curve(
        "onecycle",
        steps_per_epoch=20,
        total_steps=total,
        onecycle_pct_start=0.3,
        onecycle_div_factor=25.0,
        onecycle_final_div_factor=1e4,
        onecycle_anneal=anneal,
    )
    opt = _opt()
    ref_sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=1.0, total_steps=total, pct_start=0.3, anneal_strategy=anneal, cycle_momentum=False
    )
    ref = []
    for i in range(total):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        if i < total - 1:
            ref_sched.step()
    assert c == pytest.approx(ref, rel=1e-12, abs=1e-15)
    peak = int(0.3 * total) - 1
    assert c[0] == pytest.approx(1 / 25) and c[peak] == pytest.approx(1.0) and max(c) == c[peak]
    assert c[-1] == pytest.approx(1 / 25 / 1e4)


def test_plateau_matches_torch_reduce_on_plateau():
    losses = [1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
    spe = 3
    c = lr_curve(
        "plateau",
        steps_per_epoch=spe,
        total_steps=spe * len(losses),
        plateau_patience=2,
        gamma=0.1,
        metrics=losses,
    )
    opt = _opt()
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=2, threshold=1e-4)
    expect = []
    for m in losses:
        expect += [opt.param_groups[0]["lr"]] * spe
        ref.step(m)
    assert c == pytest.approx(expect)
    # best 0.9 at epoch 1; epochs 2, 3, 4 are bad -> the third bad one (epoch 4) reduces
    per_epoch = c[::spe]
    assert per_epoch[:5] == pytest.approx([1.0] * 5) and per_epoch[5] == pytest.approx(0.1)
    assert per_epoch[-1] == pytest.approx(1e-3)  # two reductions after the 0.5 best


def test_plateau_floor_and_missing_metric():
    c = lr_curve(
        "plateau",
        steps_per_epoch=1,
        total_steps=20,
        plateau_patience=0,
        gamma=0.1,
        min_lr_factor=0.01,
        metrics=[1.0] * 20,
    )
    assert min(c) == pytest.approx(0.01)
    sched = build_schedule(_opt(), name="plateau", steps_per_epoch=1, total_steps=5)
    with pytest.raises(ValueError, match="validation loss"):
        sched.step_epoch(None)


def test_base_lr_scales_every_group():
    opt = _opt(lr=0.5, groups=2)
    opt.param_groups[1]["lr"] = 0.05
    opt.param_groups[1]["initial_lr"] = 0.05
    sched = build_schedule(opt, name="multistep", steps_per_epoch=1, total_steps=10, milestones=(2,))
    for _ in range(2):
        sched.step_batch()
    assert sched.get_last_lr() == pytest.approx([0.05, 0.005])
    assert sched.lr_factor == pytest.approx(0.1)


@pytest.mark.parametrize("name", SCHEDULES)
def test_state_dict_round_trip_continues_identically(name):
    spe, epochs = 7, 12
    kw = dict(
        name=name,
        steps_per_epoch=spe,
        total_steps=spe * epochs,
        warmup_steps=5,
        milestones=(3, 8),
        step_size=4,
        plateau_patience=1,
        gamma=0.5,
    )
    metrics = [1.0, 0.8, 0.85, 0.9, 0.7, 0.75, 0.8, 0.8, 0.6, 0.65, 0.7, 0.7]

    def run(opt, sched, start, stop, out):
        for s in range(start, stop):
            out.append(opt.param_groups[0]["lr"])
            sched.step_batch()
            if (s + 1) % spe == 0:
                sched.step_epoch(metrics[(s + 1) // spe - 1])

    straight: list[float] = []
    opt = _opt(0.3)
    run(opt, build_schedule(opt, **kw), 0, spe * epochs, straight)

    cut = spe * 6 + 3  # mid-epoch, after a plateau reduction
    first: list[float] = []
    opt = _opt(0.3)
    sched = build_schedule(opt, **kw)
    run(opt, sched, 0, cut, first)
    state = sched.state_dict()
    opt2 = _opt(0.3)
    sched2 = build_schedule(opt2, **kw)
    sched2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    rest: list[float] = []
    run(opt2, sched2, cut, spe * epochs, rest)
    assert first + rest == straight  # bit-identical continuation
    if name == "plateau":
        assert min(straight) < 0.3  # the plateau did reduce in this run


def test_state_dict_is_plain_data_and_checked():
    sched = build_schedule(_opt(), name="cosine", steps_per_epoch=2, total_steps=10)
    state = sched.state_dict()
    assert all(isinstance(v, str | int | float | list) for v in state.values())
    other = build_schedule(_opt(), name="step", steps_per_epoch=2, total_steps=10)
    with pytest.raises(ConfigError, match="same schedule"):
        other.load_state_dict(state)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(name="linear"), "choose one of constant, step"),
        (dict(name="cosine", warmup_steps=10), "warmup"),
        (dict(name="multistep"), "milestones"),
        (dict(name="step", gamma=2.0), "gamma"),
        (dict(name="exponential", step_size=0), "step_size must be > 0"),
        (dict(name="multistep", milestones=(1,), milestone_unit="steps"), "milestone_unit"),
        (dict(name="onecycle", onecycle_pct_start=1.5), "pct_start"),
    ],
)
def test_bad_schedule_configs(kw, match):
    with pytest.raises(ConfigError, match=match):
        build_schedule(_opt(), steps_per_epoch=2, total_steps=10, **kw)
