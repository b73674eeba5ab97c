"""Nothing lost (issue 11): good checkpoints only, resume with a lower lr, soak tests of resume.

* After a divergence, the checkpoint on disk is the last good one (finite weights, finite and not
  exploding losses), and ``--resume`` with a lower lr trains on from it.
* One run interrupted three times at random points (a stop request, a crash, a stop) and resumed
  each time ends bit-exact with the uninterrupted run.
* A kill between writing the weights and writing the summary leaves a directory that resumes.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from cnnzoo.rundir import RunDir, RunDirError
from cnnzoo.train.checkpoint import load_checkpoint
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.loop import TrainingDivergedError, TrainingInterrupted, fit
from cnnzoo.train.runs import load_run

pytestmark = pytest.mark.slow

# 256 images, batch 32: 8 steps per epoch, 3 epochs = 24 steps; flip and pad-crop draw from the
# augmentation generator, which must resume too.
SOAK = dict(
    model="lenet5_relu",
    epochs=3,
    train_samples=256,
    test_samples=256,
    batch_size=32,
    lr=0.05,
    warmup_epochs=0.5,
    hflip=True,
    crop_padding=2,
    threads=1,
    seed=5,
)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    return fit(TrainConfig(**SOAK, out=str(out)), progress=False, report=False)


class Crash(RuntimeError):
    pass


def _crash_at(step):
    def hook(global_step, model):
        if global_step == step:
            raise Crash(f"simulated crash at step {step}")

    return hook


def test_three_random_interruptions_resume_bit_exact(straight, tmp_path):
    total = 24
    points = sorted(random.Random(2026).sample(range(2, total), 3))
    out = tmp_path / "run"
    # 1: a stop request (Ctrl-C): a checkpoint at that step
    with pytest.raises(TrainingInterrupted):
        fit(TrainConfig(**SOAK, out=str(out)), progress=False, report=False, stop_after_steps=points[0])
    assert load_checkpoint(out)["global_step"] == points[0]
    # 2: a crash: no checkpoint then; the run goes back to its last one and redoes those steps
    with pytest.raises(Crash):
        fit(TrainConfig(), progress=False, report=False, resume=out, on_step=_crash_at(points[1]))
    # 3: a stop request again
    with pytest.raises(TrainingInterrupted):
        fit(TrainConfig(), progress=False, report=False, resume=out, stop_after_steps=points[2])
    resumed = fit(TrainConfig(), progress=False, report=False, resume=out)
    assert resumed["weights_sha256"] == straight["weights_sha256"], points
    assert resumed["test_top1"] == straight["test_top1"] and resumed["steps"] == total
    assert [r["epoch"] for r in RunDir(out).read_metrics()] == [1, 2, 3]


def test_a_kill_between_weights_and_summary_resumes(straight, tmp_path):
    out = tmp_path / "run"
    src = str(Path(__file__).resolve().parents[2] / "src")
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        torch.set_num_threads(1)
        from cnnzoo.rundir import RunDir
        from cnnzoo.train.config import TrainConfig
        from cnnzoo.train.loop import fit
        RunDir.write_summary = lambda self, s: os.kill(os.getpid(), signal.SIGKILL)
        fit(TrainConfig(**{SOAK!r}, out={str(out)!r}), progress=False, report=False)
        """
    )
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    run = RunDir(out)
    assert run.weights.is_file() and not run.summary.is_file() and run.has_checkpoint()
    with pytest.raises(RunDirError, match="did not finish.*--resume"):
        load_run(out)  # weights without their record are not opened
    resumed = fit(TrainConfig(), progress=False, report=False, resume=out)
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    assert load_run(out)[0] is not None


# --------------------------------------------------------------------------- divergence recovery
DIVERGE = dict(
    model="lenet5_relu",
    epochs=3,
    train_samples=256,
    test_samples=256,
    batch_size=64,  # 4 steps per epoch
    lr=0.05,
    schedule="constant",
    warmup_epochs=0,
    threads=1,
    seed=0,
)


def _blow_up(at_step: int, factor: float):
    """Multiply the output layer's weights by ``factor`` after step ``at_step``: the loss explodes."""

    def hook(step, model):
        if step == at_step:
            with torch.no_grad():
                model.get_classifier().weight.mul_(factor)

    return hook


def test_an_exploding_loss_keeps_the_last_good_checkpoint_and_resumes_at_a_lower_lr(tmp_path):
    out = tmp_path / "run"
    # after step 7, logits ~1e7: step 8 (epoch 2's last) has a finite loss far above its start (~2.3)
    with pytest.raises(TrainingDivergedError) as ei:
        fit(TrainConfig(**DIVERGE, out=str(out)), progress=False, report=False, on_step=_blow_up(7, 1e8))
    msg = str(ei.value)
    assert "exploded" in msg and "at epoch 2" in msg, msg
    assert "the last good checkpoint is kept (after step 4)" in msg
    assert f"cnnzoo train --resume {out} --lr 0.005" in msg
    st = load_checkpoint(out)
    assert st["global_step"] == 4 and len(st["metrics"]) == 1
    from cnnzoo import create_model

    model = create_model("lenet5_relu", num_classes=10, in_chans=1)
    load_checkpoint(out, model)
    assert all(torch.isfinite(p).all() and p.abs().max() < 100 for p in model.parameters())
    assert not RunDir(out).best.exists()  # no weights of a bad epoch reached disk
    resumed = fit(TrainConfig(), progress=False, report=False, resume=out, overrides={"lr": 0.005})
    assert math.isfinite(resumed["train_loss"]) and resumed["train_loss"] < 2.5
    lrs = [r["lr"] for r in RunDir(out).read_metrics()]
    assert lrs == pytest.approx([0.05, 0.005, 0.005])  # the lower lr took effect from the resume on


def test_nan_weights_at_an_epoch_end_are_never_checkpointed(tmp_path):
    out = tmp_path / "run"

    def poison(step, model):
        if step == 8:  # the last step of epoch 2, after its loss was computed
            with torch.no_grad():
                model.get_classifier().bias.fill_(float("nan"))

    with pytest.raises(TrainingDivergedError, match=r"weights became NaN or infinite \(.*bias\)"):
        fit(TrainConfig(**DIVERGE, out=str(out)), progress=False, report=False, on_step=poison)
    assert load_checkpoint(out)["global_step"] == 4


def test_a_run_that_diverges_before_any_checkpoint_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError, match="no good checkpoint was written"):
        fit(TrainConfig(**DIVERGE, out=str(out)), progress=False, report=False, on_step=_blow_up(1, 1e8))
    assert not out.exists()
