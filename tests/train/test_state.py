"""RunState: what a checkpoint holds, round-tripped through torch.save / torch.load(weights_only=True)."""

from __future__ import annotations

import io
import math

import torch

from cnnzoo.train.config import TrainConfig
from cnnzoo.train.setup import build_run, new_state
from cnnzoo.train.state import BestRecord, EpochTally, RunState, rng_state

CFG = dict(
    model="lenet5_relu",
    epochs=2,
    train_samples=96,
    val_samples=40,
    test_samples=50,
    batch_size=32,
    threads=1,
    ema=0.5,
    schedule="plateau",
    plateau_patience=0,
    warmup_epochs=0,
)


def _state(tmp_path) -> tuple:
    run = build_run(TrainConfig(**CFG, out=str(tmp_path)), t_start=0.0)
    return run, new_state(run)


def _steps(run, state, n):
    from cnnzoo.train.loop import train_step

    x, y = next(run.data.train.batches(32, shuffle=True, generator=torch.Generator().manual_seed(1)))
    for _ in range(n):
        train_step(run, state, run.augment(x, state.aug_generator) if run.augment else x, y)


def test_round_trip_restores_every_field(tmp_path):
    run, a = _state(tmp_path / "a")
    _steps(run, a, 3)
    a.schedule.step_epoch(2.0)
    a.schedule.step_epoch(2.5)  # plateau: a bad epoch after the first, patience 0 -> lr reduced
    a.epoch, a.step_in_epoch, a.global_step = 1, 2, 5
    a.tally = EpochTally(loss_sum=3.25, correct=17, seen=64, seconds=0.5)
    a.metrics = [{"epoch": 1, "step": 3, "val_top1": 12.5, "test_top1": math.nan}]
    a.best = BestRecord(top1=12.5, epoch=1, bad_epochs=0)
    a.totals.train_images, a.totals.train_seconds = 96, 1.5
    buf = io.BytesIO()
    torch.save(a.state_dict([rng_state(a.aug_generator)]), buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)  # only tensors and plain types inside

    run_b, b = _state(tmp_path / "b")
    b.model.load_state_dict(a.model.state_dict())  # the weights travel in their own safetensors file
    b.load_state_dict(saved)
    assert (b.epoch, b.step_in_epoch, b.global_step) == (1, 2, 5)
    assert b.tally == a.tally and b.best == a.best and b.totals == a.totals and not b.stopped_early
    assert b.metrics[0]["val_top1"] == 12.5 and math.isnan(b.metrics[0]["test_top1"])
    assert b.schedule.state_dict() == a.schedule.state_dict() and b.schedule.plateau_factor == 0.1
    assert b.optimizer.param_groups[0]["lr"] == a.optimizer.param_groups[0]["lr"]
    assert torch.equal(b.aug_generator.get_state(), a.aug_generator.get_state())
    assert b.ema.updates == a.ema.updates == 3
    for k, v in a.ema.module.state_dict().items():
        assert torch.equal(b.ema.module.state_dict()[k], v), k
    # and the two continue identically, step for step
    torch.set_rng_state(saved["rng"][0]["torch"])
    _steps(run, a, 2)
    torch.set_rng_state(saved["rng"][0]["torch"])
    _steps(run_b, b, 2)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    for va, vb in zip(a.ema.module.state_dict().values(), b.ema.module.state_dict().values(), strict=True):
        assert torch.equal(va, vb)


def test_best_record_counts_epochs_without_improvement():
    best = BestRecord()
    assert best.offer(50.0, 1) and (best.top1, best.epoch, best.bad_epochs) == (50.0, 1, 0)
    assert not best.offer(50.0, 2) and not best.offer(49.0, 3) and best.bad_epochs == 2
    assert best.offer(51.0, 4) and (best.epoch, best.bad_epochs) == (4, 0)


def test_a_state_without_ema_refuses_a_checkpoint_with_one_and_vice_versa(tmp_path):
    import pytest

    run, a = _state(tmp_path / "a")
    st = a.state_dict([rng_state(a.aug_generator)])
    b = RunState(
        model=a.model,
        optimizer=a.optimizer,
        schedule=a.schedule,
        aug_generator=torch.Generator(),
        scaler=a.scaler,
        ema=a.ema,
    )
    st_no_ema = {**st, "ema": None}
    with pytest.raises(KeyError, match="without --ema"):
        b.load_state_dict(st_no_ema)
