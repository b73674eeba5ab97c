"""The run-directory contract (cnnzoo.rundir), shared by the NumPy engine and the trainer."""

from __future__ import annotations

import csv
import json
import math

import pytest

from cnnzoo import rundir
from cnnzoo.rundir import METRIC_CORE, SUMMARY_FIELDS, RunDir, RunDirError, read_metrics, write_metrics


def test_metrics_are_written_atomically_and_read_back(tmp_path, monkeypatch):
    path = tmp_path / "metrics.csv"
    rows = [{"epoch": 1, "step": 10, "train_loss": 0.5, "test_top1": 91.25}]
    write_metrics(path, ("epoch", "step", "train_loss", "test_top1", "val_top1"), rows)
    back = read_metrics(path)
    assert back == [
        {"epoch": 1, "step": 10, "train_loss": 0.5, "test_top1": 91.25, "val_top1": back[0]["val_top1"]}
    ]
    assert math.isnan(back[0]["val_top1"])  # a column the row does not have is written as nan
    before = path.read_bytes()

    def crash(*a, **k):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(csv, "writer", crash)
    with pytest.raises(OSError, match="disk full"):
        write_metrics(path, ("epoch",), rows)
    assert path.read_bytes() == before  # the previous file is intact, no temporary left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]


def test_run_dir_names_and_checks(tmp_path):
    run = RunDir(tmp_path / "r")
    assert run.weights.name == "weights.safetensors" and run.ema.name == "ema.safetensors"
    assert run.config.name == "config.json" and run.summary.name == "summary.json"
    assert run.best.name == "best.safetensors" and run.state.name == "train_state.pt"
    assert run.checkpoint_weights(42).name == "ckpt-00000042.safetensors"
    assert not run.holds_run() and not run.has_checkpoint()
    run.mkdir().write_config({"model": "x"})
    assert run.holds_run() and run.read_config() == {"model": "x"}
    with pytest.raises(ValueError, match="lacks the run-directory fields"):
        run.write_summary({"model": "x"})
    with pytest.raises(ValueError, match="must start with the columns"):
        run.write_metrics(("epoch", "loss"), [])
    with pytest.raises(RunDirError, match="not found"):
        run.read_summary()
    (tmp_path / "r" / "summary.json").write_text("{not json")
    with pytest.raises(RunDirError, match="not valid JSON"):
        run.read_summary()


def test_one_divergence_error_for_both_engines():
    from cnnzoo.scratch import train as scratch_train
    from cnnzoo.train import loop

    assert scratch_train.TrainingDivergedError is rundir.TrainingDivergedError
    assert loop.TrainingDivergedError is rundir.TrainingDivergedError
    assert issubclass(rundir.TrainingDivergedError, RuntimeError)


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory):
    """One tiny run of each engine (256 training images, one epoch)."""
    from cnnzoo.scratch.train import ScratchTrainConfig
    from cnnzoo.scratch.train import fit as scratch_fit
    from cnnzoo.train.config import TrainConfig
    from cnnzoo.train.loop import fit

    base = tmp_path_factory.mktemp("engines")
    kw = dict(model="lenet5_relu", epochs=1, batch_size=64, train_samples=256, test_samples=200, threads=1)
    scratch_fit(ScratchTrainConfig(**kw, out=str(base / "numpy")), progress=False)
    fit(TrainConfig(**kw, out=str(base / "torch")), progress=False, report=False)
    return base / "numpy", base / "torch"


def test_both_engines_write_the_same_contract(both_engines):
    from cnnzoo.io import sha256_file
    from cnnzoo.train.runs import load_run

    for d in both_engines:
        run = RunDir(d)
        s = run.read_summary()
        assert set(SUMMARY_FIELDS) <= set(s), d
        assert s["weights_file"] == rundir.WEIGHTS and sha256_file(run.weights) == s["weights_sha256"]
        with open(run.metrics, newline="") as f:
            header = next(csv.reader(f))
        assert tuple(header[: len(METRIC_CORE)]) == METRIC_CORE, d
        rows = run.read_metrics()
        assert [r["epoch"] for r in rows] == [1] and rows[0]["step"] == 4 == s["steps"]
        assert rows[0]["test_top1"] == pytest.approx(s["test_top1"], abs=1e-3)
        assert 0 <= rows[0]["test_top1"] <= rows[0]["test_top5"] <= 100
        cfg = run.read_config()
        assert cfg["model"] == "lenet5_relu" and cfg["num_classes"] == 10 and cfg["in_chans"] == 1
        model, _ = load_run(d)  # both open with the same loader
        assert not model.training
        assert not list(d.glob("*.tmp")) and not list(d.glob(".*.tmp"))
    engines = [json.loads((d / "summary.json").read_text())["engine"] for d in both_engines]
    assert engines == ["numpy", "torch"]
