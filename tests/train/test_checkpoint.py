"""Checkpoints: atomic writes, truncated and foreign files, and the NaN stop that keeps the last good one."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from cnnzoo.cli import main
from cnnzoo.io import sha256_file
from cnnzoo.rundir import STATE
from cnnzoo.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, save_weights
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.loop import TrainingDivergedError, fit

BASE = dict(
    model="lenet5_relu", epochs=2, train_samples=256, test_samples=256, batch_size=64, threads=1, seed=0
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    fit(TrainConfig(**BASE, out=str(out)), progress=False, report=False)
    return out


def test_checkpoint_round_trip(run):
    from cnnzoo import create_model

    model = create_model("lenet5_relu", num_classes=10, in_chans=1)
    st = load_checkpoint(run, model)
    assert (st["epoch"], st["step_in_epoch"], st["global_step"]) == (2, 0, 8)
    assert isinstance(st["rng"][0]["torch"], torch.Tensor) and len(st["metrics"]) == 2
    from safetensors.torch import load_file

    final = load_file(str(run / "weights.safetensors"))
    assert all(torch.equal(final[k], v) for k, v in model.state_dict().items())


def test_a_crash_inside_the_writer_leaves_no_partial_file(tmp_path, monkeypatch):
    import safetensors.torch

    model = torch.nn.Linear(3, 2)
    path = tmp_path / "w.safetensors"
    save_weights(model, path)
    before = sha256_file(path)

    def crashing(state, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(safetensors.torch, "save_file", crashing)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        save_weights(model, path)
    assert sha256_file(path) == before  # the old file is intact under its name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]  # no temporary left behind


def test_a_crash_while_writing_the_state_keeps_the_previous_checkpoint(run, tmp_path, monkeypatch):
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(run, d)
    before = sha256_file(d / STATE)

    def crashing(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04trunc")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crashing)
    from cnnzoo import create_model

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(d, create_model("lenet5_relu", num_classes=10, in_chans=1), {"global_step": 99})
    monkeypatch.undo()
    assert sha256_file(d / STATE) == before
    assert load_checkpoint(d)["global_step"] == 8  # still the consistent old checkpoint
    assert not list(d.glob("*.tmp")) and not list(d.glob(".*.tmp"))


def test_truncated_state_is_a_clear_error(run, tmp_path, capsys):
    import shutil

    d = tmp_path / "trunc"
    shutil.copytree(run, d)
    data = (d / STATE).read_bytes()
    (d / STATE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"train_state\.pt is not a readable cnnzoo training state"):
        load_checkpoint(d)
    assert main(["train", "--resume", str(d)]) == 2
    err = capsys.readouterr().err
    assert "truncated" in err and str(d) in err and "Traceback" not in err


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_foreign_files_are_refused(run, tmp_path):
    import shutil

    d = tmp_path / "foreign"
    shutil.copytree(run, d)
    torch.save({"epoch": 3, "model_state": {}}, d / STATE)  # a plain dict from another trainer
    with pytest.raises(CheckpointError, match="not a cnnzoo training state"):
        load_checkpoint(d)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (d / STATE).write_bytes(pickle.dumps(Evil()))  # an arbitrary pickle: weights_only refuses to run it
    with pytest.raises(CheckpointError, match="truncated or foreign"):
        load_checkpoint(d)
    with pytest.raises(CheckpointError, match="holds no training checkpoint"):
        load_checkpoint(tmp_path / "nowhere")


def test_weights_that_do_not_match_the_state_are_refused(run, tmp_path):
    import shutil

    d = tmp_path / "mismatch"
    shutil.copytree(run, d)
    w = next(d.glob("ckpt-*.safetensors"))
    save_weights(torch.nn.Linear(2, 2), w)
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        load_checkpoint(d)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    def poison(step, model):
        if step == 6:  # after epoch 1's checkpoint (4 steps per epoch)
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))

    cfg = TrainConfig(**{**BASE, "epochs": 3}, out=str(tmp_path))
    with pytest.raises(TrainingDivergedError, match=r"lower --lr.*last good checkpoint is kept") as ei:
        fit(cfg, progress=False, report=False, on_step=poison)
    assert f"cnnzoo train --resume {tmp_path}" in str(ei.value)
    from cnnzoo import create_model

    model = create_model("lenet5_relu", num_classes=10, in_chans=1)
    st = load_checkpoint(tmp_path, model)
    assert st["global_step"] == 4 and st["epoch"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not (tmp_path / "weights.safetensors").exists() and not (tmp_path / "summary.json").exists()
    assert all(math.isfinite(r["train_loss"]) for r in st["metrics"])
