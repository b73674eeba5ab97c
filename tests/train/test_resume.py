"""Bit-exact resume: a straight run against interrupted-and-resumed ones, compared by weights_sha256."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnzoo.rundir import STATE
from cnnzoo.train.checkpoint import load_checkpoint
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.loop import TrainingInterrupted, fit

# 512 images, batch 64: 8 steps per epoch, 3 epochs = 24 steps; flip + pad-crop exercise the
# augmentation generator, which must resume too.
BASE = dict(
    model="lenet5_relu",
    epochs=3,
    train_samples=512,
    batch_size=64,
    lr=0.05,
    warmup_epochs=0.5,
    hflip=True,
    crop_padding=2,
    threads=1,
    seed=1,
    test_samples=2000,
)


class Crash(RuntimeError):
    pass


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    return fit(TrainConfig(**BASE, out=str(out)), progress=False, report=False)


def _crash_at(step):
    def hook(global_step, model):
        if global_step == step:
            raise Crash(f"simulated crash at step {step}")

    return hook


def test_resume_mid_epoch_is_bit_exact(straight, tmp_path):
    with pytest.raises(TrainingInterrupted, match=r"cnnzoo train --resume") as ei:
        fit(TrainConfig(**BASE, out=str(tmp_path)), progress=False, report=False, stop_after_steps=13)
    assert ei.value.run_dir == tmp_path
    st = load_checkpoint(tmp_path)
    assert (st["epoch"], st["step_in_epoch"], st["global_step"]) == (1, 5, 13)
    resumed = fit(TrainConfig(), progress=False, report=False, resume=tmp_path)
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    assert resumed["test_top1"] == straight["test_top1"]
    assert resumed["steps"] == 24


def test_resume_at_an_epoch_boundary_is_bit_exact(straight, tmp_path):
    # a crash right after epoch 1's end-of-epoch checkpoint: the run continues from (epoch 1, step 0)
    with pytest.raises(Crash):
        fit(TrainConfig(**BASE, out=str(tmp_path)), progress=False, report=False, on_step=_crash_at(9))
    st = load_checkpoint(tmp_path)
    assert (st["epoch"], st["step_in_epoch"], st["global_step"]) == (1, 0, 8)
    assert len(st["metrics"]) == 1
    resumed = fit(TrainConfig(), progress=False, report=False, resume=tmp_path)
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 3  # header + one row per epoch, none duplicated by the resume


def test_periodic_checkpoints_resume_bit_exactly(straight, tmp_path):
    cfg = TrainConfig(**BASE, out=str(tmp_path), checkpoint_every_steps=5)
    with pytest.raises(Crash):
        fit(cfg, progress=False, report=False, on_step=_crash_at(12))
    st = load_checkpoint(tmp_path)
    assert (st["epoch"], st["step_in_epoch"], st["global_step"]) == (1, 2, 10)
    assert len(list(tmp_path.glob("ckpt-*.safetensors"))) == 1  # older checkpoints are removed
    resumed = fit(TrainConfig(), progress=False, report=False, resume=tmp_path)
    assert resumed["weights_sha256"] == straight["weights_sha256"]


def test_a_different_seed_gives_different_weights(straight, tmp_path):
    other = fit(
        TrainConfig(**{**BASE, "seed": 2, "epochs": 1}, out=str(tmp_path)), progress=False, report=False
    )
    assert other["weights_sha256"] != straight["weights_sha256"]


def _cli(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "cnnzoo", "train", *args], env


def test_sigint_saves_a_checkpoint_and_resume_finishes(tmp_path):
    out = tmp_path / "run"
    cmd, env = _cli(
        "lenet5_relu",
        "--train-samples",
        "1000",
        "--test-samples",
        "500",
        "--batch-size",
        "32",
        "--epochs",
        "40",
        "--schedule",
        "constant",
        "--warmup-epochs",
        "0",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(out),
    )
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    metrics = out / "metrics.csv"
    while time.time() < deadline:  # wait for the first epoch to finish, so training is under way
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "SIGINT" in stderr and f"cnnzoo train --resume {out}" in stderr, stderr
    assert "Traceback" not in stderr
    st = torch.load(out / STATE, weights_only=True)
    assert st["global_step"] >= 32  # at least one epoch of 32 steps
    assert not list(Path(out).glob("*.tmp"))
    done_epochs = st["epoch"] + 1
    cmd, env = _cli("--resume", str(out), "--epochs", str(done_epochs), "--no-progress")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"resuming at epoch {done_epochs}" in r.stdout
    assert (out / "summary.json").is_file()
