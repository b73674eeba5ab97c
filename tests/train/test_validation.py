"""The validation split: held out of the training set, seeded, recorded, resumed; the plateau schedule, the
best checkpoint and early stopping read it, and are refused without it. The test set decides nothing."""

from __future__ import annotations

import hashlib

import pytest
import torch

from cnnzoo.cli import main
from cnnzoo.data.datasets import ImageDataset
from cnnzoo.data.feed import DataFeed, holdout_split
from cnnzoo.errors import ConfigError
from cnnzoo.rundir import RunDir
from cnnzoo.train.checkpoint import CheckpointError
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.loop import TrainingInterrupted, fit
from cnnzoo.train.schedules import Schedule
from cnnzoo.train.setup import split_validation

BASE = dict(
    model="lenet5_relu",
    train_samples=256,
    val_samples=64,
    test_samples=100,
    batch_size=64,
    threads=1,
    warmup_epochs=0,
)


def _indexed_feed(n: int) -> DataFeed:
    """A feed whose labels are the samples' own indices, to see where each sample went."""
    ds = ImageDataset(
        "idx", "train", torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n), ("c",), (0.5,), (0.5,)
    )
    return DataFeed(ds, size=2, mode="none", in_chans=1, device=torch.device("cpu"))


def test_the_split_is_seeded_disjoint_and_taken_before_the_train_subset():
    cfg = TrainConfig(val_samples=30, train_samples=50, seed=4)
    train, val, record = split_validation(cfg, _indexed_feed(200))
    t, v = set(train.labels.tolist()), set(val.labels.tolist())
    assert len(v) == 30 and len(t) == 50 and t.isdisjoint(v)
    expected = holdout_split(200, 30, seed=4)[1]
    assert torch.equal(val.labels, expected)
    assert record["val_samples"] == 30 and record["seed"] == 4 and record["of"] == 200
    assert record["indices_sha256"] == hashlib.sha256(expected.numpy().astype("<i8").tobytes()).hexdigest()
    again = split_validation(cfg, _indexed_feed(200))
    assert torch.equal(again[0].labels, train.labels) and again[2] == record
    other = split_validation(TrainConfig(val_samples=30, seed=5), _indexed_feed(200))
    assert not torch.equal(other[1].labels, val.labels)
    no_val = split_validation(TrainConfig(train_samples=50, seed=4), _indexed_feed(200))
    assert no_val[1] is None and no_val[2] is None and len(no_val[0]) == 50
    with pytest.raises(ConfigError, match="leaves nothing to train on"):
        split_validation(TrainConfig(val_samples=200), _indexed_feed(200))


def test_plateau_early_stop_and_best_refuse_without_a_split(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--val-samples"):
        TrainConfig(schedule="plateau").validate()
    with pytest.raises(ConfigError, match="--val-samples"):
        TrainConfig(early_stop=3).validate()
    TrainConfig(schedule="plateau", val_samples=100, eval_every=0).validate()  # the test pass is free now
    assert main(["train", "lenet5_relu", "--schedule", "plateau", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--val-samples N" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_decisions_read_validation_and_the_best_epoch_is_saved(tmp_path, monkeypatch):
    metrics_seen: list[float] = []
    real = Schedule.step_epoch

    def spy(self, metric=None):
        metrics_seen.append(metric)
        return real(self, metric)

    monkeypatch.setattr(Schedule, "step_epoch", spy)
    snapshots: dict[int, dict] = {}

    def keep(step, model):
        if step % 4 == 0:  # 256 / 64 = 4 steps per epoch
            snapshots[step // 4] = {k: v.clone() for k, v in model.state_dict().items()}

    cfg = TrainConfig(**BASE, epochs=3, schedule="plateau", plateau_patience=0, lr=0.2, out=str(tmp_path))
    s = fit(cfg, progress=False, report=False, on_step=keep)
    rows = RunDir(tmp_path).read_metrics()
    assert metrics_seen == pytest.approx([r["val_loss"] for r in rows], rel=1e-5)
    assert metrics_seen != pytest.approx([r["test_loss"] for r in rows], rel=1e-5)
    best_epoch = max(range(3), key=lambda i: (rows[i]["val_top1"], -i)) + 1
    assert s["best_val_epoch"] == best_epoch and s["best_val_top1"] == pytest.approx(
        rows[best_epoch - 1]["val_top1"]
    )
    from safetensors.torch import load_file

    best = load_file(str(tmp_path / "best.safetensors"))
    assert all(torch.equal(best[k], v) for k, v in snapshots[best_epoch].items())
    assert s["val_samples"] == 64 and not s["stopped_early"]


def test_early_stop_ends_the_run_and_tests_its_last_epoch(tmp_path):
    # lr 1e-9: the validation top-1 cannot improve after epoch 1, so patience 2 stops after epoch 3
    cfg = TrainConfig(**BASE, epochs=8, lr=1e-9, early_stop=2, eval_every=0, out=str(tmp_path))
    s = fit(cfg, progress=False, report=False)
    rows = RunDir(tmp_path).read_metrics()
    assert s["stopped_early"] and s["epochs"] == 3 == len(rows) and s["best_val_epoch"] == 1
    assert s["test_top1"] == pytest.approx(rows[-1]["test_top1"], abs=1e-3)  # the last epoch is tested
    assert all(r["test_top1"] != r["test_top1"] for r in rows[:-1])  # nan: --eval-every 0


def test_resume_keeps_the_split_and_refuses_another(tmp_path):
    cfg = dict(**BASE, epochs=2, hflip=True)
    straight = fit(TrainConfig(**cfg, out=str(tmp_path / "a")), progress=False, report=False)
    with pytest.raises(TrainingInterrupted):
        fit(TrainConfig(**cfg, out=str(tmp_path / "b")), progress=False, report=False, stop_after_steps=5)
    with pytest.raises(CheckpointError, match="validation split"):
        fit(TrainConfig(), progress=False, report=False, resume=tmp_path / "b", overrides={"val_samples": 32})
    resumed = fit(TrainConfig(), progress=False, report=False, resume=tmp_path / "b")
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    assert resumed["best_val_top1"] == straight["best_val_top1"]
    a, b = RunDir(tmp_path / "a").read_config(), RunDir(tmp_path / "b").read_config()
    assert a["val_split"] == b["val_split"] and a["val_split"]["val_samples"] == 64


def test_the_alexnet_and_vgg_recipes_hold_out_a_split():
    from cnnzoo.train.recipes import get_recipe

    for name in ("alexnet", "vgg"):
        r = get_recipe(name)
        assert r["schedule"] == "plateau" and r["val_samples"] == 10_000
        TrainConfig.from_dict({k: v for k, v in r.items() if k not in ("description", "source")}).validate()
    assert get_recipe("fashion-fast")["val_samples"] == 0 and get_recipe("fashion-best")["val_samples"] == 0
