"""Each named step of the loop on its own: train one epoch, evaluate, decide on validation, record,
checkpoint, finish."""

from __future__ import annotations

import math

import pytest
import torch

from cnnzoo.rundir import TrainingDivergedError
from cnnzoo.train import loop
from cnnzoo.train.checkpoint import load_checkpoint
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.progress import ProgressBar
from cnnzoo.train.report import TensorBoardLogger
from cnnzoo.train.setup import build_run, new_state

CFG = dict(
    model="lenet5_relu",
    epochs=3,
    train_samples=96,
    val_samples=40,
    test_samples=50,
    batch_size=32,
    threads=1,
    ema=0.5,
    warmup_epochs=0,
)


@pytest.fixture
def rs(tmp_path):
    from rich.console import Console

    run = build_run(TrainConfig(**CFG, out=str(tmp_path)), t_start=0.0, console=Console(quiet=True))
    run.dir.mkdir()
    return run, new_state(run)


def _epoch(run, state):
    bar = ProgressBar(run.console, total=run.total_steps, completed=0, enabled=False)
    with loop._StopFlag() as stop:
        loop.train_one_epoch(run, state, bar, stop, loop.Hooks())


def test_grad_clip_norm_bounds_the_step(tmp_path):
    """With SGD at lr 1 and no momentum, the update is the gradient: clipping makes its norm the bound."""
    from rich.console import Console

    def step_norm(clip: float) -> float:
        cfg = {**CFG, "ema": 0.0, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0, "lr": 1.0}
        cfg.update(schedule="constant", grad_clip_norm=clip, out=str(tmp_path / f"c{clip}"))
        run = build_run(TrainConfig(**cfg).validate(), t_start=0.0, console=Console(quiet=True))
        state = new_state(run)
        x, y = next(run.data.train.batches(32))
        before = [p.detach().clone() for p in state.model.parameters()]
        loop.train_step(run, state, x, y)
        deltas = [(p.detach() - b).flatten() for p, b in zip(state.model.parameters(), before, strict=True)]
        return float(torch.cat(deltas).norm())

    free = step_norm(0.0)
    assert free > 0.01  # the unclipped gradient is well above the bound below
    assert step_norm(1e-3) == pytest.approx(1e-3, rel=1e-3)
    assert step_norm(10 * free) == pytest.approx(free, rel=1e-5)  # a loose bound changes nothing


def test_train_step_moves_weights_schedule_and_ema(rs):
    run, state = rs
    x, y = next(run.data.train.batches(32))
    before = [p.detach().clone() for p in state.model.parameters()]
    ema_before = [p.detach().clone() for p in state.ema.module.parameters()]
    loss, out = loop.train_step(run, state, x, y)
    assert math.isfinite(float(loss.detach())) and out.shape == (32, 10)
    after = list(state.model.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert state.schedule.step == 1 and state.ema.updates == 1
    for e0, e1, p in zip(ema_before, state.ema.module.parameters(), after, strict=True):  # decay 0.5
        torch.testing.assert_close(e1, 0.5 * e0 + 0.5 * p.detach())


def test_train_one_epoch_counts_and_tallies(rs):
    run, state = rs
    _epoch(run, state)
    assert run.steps_per_epoch == 3 and state.step_in_epoch == 3 and state.global_step == 3
    assert state.tally.seen == len(run.data.train) == 96 and 0 <= state.tally.correct <= 96
    assert math.isfinite(state.tally.loss_sum) and state.tally.seconds > 0
    assert state.epoch == 0  # the epoch is closed by record_epoch
    assert state.ema.updates == 3


def test_train_one_epoch_stops_on_nan(rs):
    run, state = rs
    with torch.no_grad():
        next(state.model.parameters()).fill_(math.nan)
    with pytest.raises(TrainingDivergedError, match="lower --lr"):
        _epoch(run, state)


def test_evaluate_split_scores_weights_and_ema(rs):
    run, state = rs
    ev = loop.evaluate_split(run, state, run.data.val)
    assert set(ev) == {"raw", "ema"} and ev["raw"]["n"] == ev["ema"]["n"] == 40
    # the EMA is a copy of the weights before any step
    assert ev["raw"]["loss"] == pytest.approx(ev["ema"]["loss"]) and ev["raw"]["top1"] == ev["ema"]["top1"]
    assert loop.evaluate_split(run, state, None) == {}
    full = loop.evaluate_split(run, state, run.data.test, collect=True)["raw"]
    assert full["n"] == 50 and len(full["preds"]) == 50


def _val(loss, top1):
    return {"raw": {"loss": loss, "top1": top1, "top5": 99.0}}


def test_select_on_validation_saves_the_best_and_stops_early(rs):
    run, state = rs
    run.cfg.early_stop = 2
    assert loop.select_on_validation(run, state, _val(1.0, 40.0)) and run.dir.best.is_file()
    first = run.dir.best.read_bytes()
    state.epoch = 1
    with torch.no_grad():
        next(state.model.parameters()).add_(1.0)
    assert not loop.select_on_validation(run, state, _val(0.9, 40.0))  # not better: best.safetensors stays
    assert run.dir.best.read_bytes() == first and not state.stopped_early
    state.epoch = 2
    assert not loop.select_on_validation(run, state, _val(0.8, 39.0))
    assert state.stopped_early and (state.best.top1, state.best.epoch) == (40.0, 1)
    assert state.schedule.epoch == 3  # the schedule counted every epoch


def test_select_on_validation_feeds_the_plateau_the_validation_loss(tmp_path):
    run = build_run(
        TrainConfig(**{**CFG, "schedule": "plateau", "plateau_patience": 0}, out=str(tmp_path)), t_start=0.0
    )
    state = new_state(run)
    lr0 = state.optimizer.param_groups[0]["lr"]
    loop.select_on_validation(run, state, _val(1.0, 10.0))
    loop.select_on_validation(run, state, _val(1.5, 20.0))  # worse loss, patience 0: the lr drops
    assert state.schedule.plateau_best == 1.0 and state.optimizer.param_groups[0]["lr"] == pytest.approx(
        0.1 * lr0
    )


def test_record_epoch_writes_the_row_and_moves_on(rs):
    run, state = rs
    _epoch(run, state)
    val = loop.evaluate_split(run, state, run.data.val)
    with TensorBoardLogger(None) as tb:
        row = loop.record_epoch(run, state, val, {}, tb, improved=True)
    assert set(row) == set(loop.METRIC_FIELDS)
    assert row["epoch"] == 1 and row["step"] == 3 and row["val_top1"] == val["raw"]["top1"]
    assert math.isnan(row["test_top1"]) and math.isnan(row["ema_test_top1"])  # no test this epoch
    assert (state.epoch, state.step_in_epoch, state.tally.seen) == (1, 0, 0)
    rows = run.dir.read_metrics()
    assert len(rows) == 1 and rows[0]["train_loss"] == pytest.approx(row["train_loss"], rel=1e-5)


def test_save_run_checkpoint_refuses_a_nan_tally(rs):
    run, state = rs
    _epoch(run, state)
    loop.save_run_checkpoint(run, state)
    st = load_checkpoint(run.dir.path)
    assert (st["epoch"], st["step_in_epoch"], st["global_step"]) == (0, 3, 3) and st["ema"]["updates"] == 3
    state.tally.loss_sum = math.inf
    with pytest.raises(TrainingDivergedError, match="last good checkpoint is kept"):
        loop.save_run_checkpoint(run, state)
    assert load_checkpoint(run.dir.path)["global_step"] == 3


def test_finish_writes_weights_ema_and_summary(rs):
    run, state = rs
    _epoch(run, state)
    val = loop.evaluate_split(run, state, run.data.val)
    test = loop.evaluate_split(run, state, run.data.test, collect=True)
    with TensorBoardLogger(None) as tb:
        loop.record_epoch(run, state, val, test, tb, improved=False)
    s = loop.finish(run, state, test, report=False)
    assert run.dir.weights.is_file() and run.dir.ema.is_file()
    assert s == run.dir.read_summary()
    assert s["reported_weights"] in ("raw", "ema") and s["ema_sha256"] and s["val_samples"] == 40
    assert s["test_top1"] == s[f"{s['reported_weights']}_test_top1"]
    assert sum(1 for _ in s["per_class_top1"]) == 10


def test_the_test_pass_follows_eval_every_and_always_ends_the_run(rs):
    run, state = rs
    run.cfg.eval_every = 2
    due = []
    for epoch in range(3):  # 3 epochs: tested after the 2nd (every 2) and the 3rd (the last)
        state.epoch = epoch
        due.append(sorted(loop.evaluate_test_if_due(run, state)))
    assert due == [[], ["ema", "raw"], ["ema", "raw"]]
    state.epoch, state.stopped_early = 0, True  # an early stop makes this epoch the last
    ev = loop.evaluate_test_if_due(run, state)
    assert ev["raw"]["n"] == 50 and "preds" in ev["raw"]
