"""cnnzoo finetune --resume: an interrupted fine-tuning run ends bit-exact with the uninterrupted one.

Gradual unfreezing is the hard case: the frozen set changes at every epoch, the optimizer's groups
and momentum buffers must come back, and the resumed epoch must start with exactly the groups that
the uninterrupted run had unfrozen by then (restored from the epoch, not re-run from the start).
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from cnnzoo.cli import main
from cnnzoo.rundir import RunDir, RunExistsError
from cnnzoo.train.checkpoint import ResumeMismatchError, load_checkpoint
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.finetune import finetune
from cnnzoo.train.loop import TrainingInterrupted, fit
from cnnzoo.train.runs import open_network

# 50 images (10 of each of classes 5-9), batch 16: 4 steps per epoch, 3 epochs = 12 steps
BASE = dict(
    model="resnet8", classes=(5, 6, 7, 8, 9), train_per_class=10, epochs=3, batch_size=16,
    test_samples=64, threads=1, warmup_epochs=0, schedule="cosine", lr=0.02, seed=3,
)  # fmt: skip
GRADUAL = dict(mode="gradual", unfreeze_every=1, progress=False, report=False)


class Crash(RuntimeError):
    pass


def _crash_at(step):
    def hook(global_step, model):
        if global_step == step:
            raise Crash(f"simulated crash at step {step}")

    return hook


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ftr") / "pre"
    cfg = TrainConfig(
        **{**BASE, "classes": (0, 1, 2, 3, 4), "epochs": 1, "schedule": "constant"}, out=str(out)
    )
    fit(cfg, progress=False, report=False)
    return out


@pytest.fixture(scope="module")
def straight(pretrained, tmp_path_factory):
    out = tmp_path_factory.mktemp("ftr") / "straight"
    return finetune(open_network(pretrained), TrainConfig(**BASE, out=str(out)), **GRADUAL)


def test_gradual_finetune_interrupted_twice_resumes_bit_exact(pretrained, straight, tmp_path):
    out = tmp_path / "run"
    net = open_network(pretrained)
    with pytest.raises(TrainingInterrupted, match=r"cnnzoo finetune .* --mode gradual --out .* --resume"):
        finetune(net, TrainConfig(**BASE, out=str(out)), stop_after_steps=6, **GRADUAL)  # mid epoch 2
    st = load_checkpoint(out)
    assert (st["epoch"], st["step_in_epoch"]) == (1, 2)
    # a crash just after epoch 2's end-of-epoch checkpoint (step 8): epoch 3 unfreezes one more group
    with pytest.raises(Crash):
        finetune(
            open_network(pretrained), None, resume=out, on_step=_crash_at(9), progress=False, report=False
        )
    assert load_checkpoint(out)["global_step"] == 8
    resumed = finetune(open_network(pretrained), None, resume=out, progress=False, report=False)
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    assert resumed["test_top1"] == straight["test_top1"] and resumed["steps"] == 12
    assert resumed["finetune"] == straight["finetune"]  # the recorded mode, groups and lrs
    assert [r["epoch"] for r in RunDir(out).read_metrics()] == [1, 2, 3]
    # and the stages that gradual never reached in 3 epochs are still the pre-trained ones
    before, after = load_file(pretrained / "weights.safetensors"), load_file(out / "weights.safetensors")
    assert torch.equal(before["conv1.weight"], after["conv1.weight"])
    assert torch.equal(before["layer1.0.bn1.running_mean"], after["layer1.0.bn1.running_mean"])


def test_the_cli_resumes_with_the_recorded_options(pretrained, straight, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        finetune(open_network(pretrained), TrainConfig(**BASE, out=str(out)), stop_after_steps=5, **GRADUAL)
    # no --mode, --unfreeze-every or --lr: they are the run's
    assert main(["finetune", str(pretrained), "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "mode gradual" in capsys.readouterr().out
    summary = RunDir(out).read_summary()
    assert summary["weights_sha256"] == straight["weights_sha256"]


def test_a_finetune_run_dir_is_not_rerun_or_resumed_by_train(pretrained, straight, capsys):
    out = straight["out"]
    argv = ["finetune", str(pretrained), "--mode", "gradual", "--out", out, "--no-progress"]
    with pytest.raises(
        RunExistsError, match=r"already holds a run.*cnnzoo finetune .* --resume.*--overwrite"
    ):
        finetune(open_network(pretrained), TrainConfig(**BASE, out=out), **GRADUAL)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(
        ResumeMismatchError, match=r"holds a `cnnzoo finetune` run; resume it with `cnnzoo finetune"
    ):
        fit(TrainConfig(), resume=out, progress=False, report=False)


def test_resuming_with_another_mode_or_source_names_what_differs(pretrained, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        finetune(open_network(pretrained), TrainConfig(**BASE, out=str(out)), stop_after_steps=2, **GRADUAL)
    with pytest.raises(ResumeMismatchError) as e:
        finetune(open_network(pretrained), None, resume=out, mode="finetune", unfreeze_every=2)
    msg = str(e.value)
    assert "fine-tuned with --mode gradual, --unfreeze-every 1" in msg
    assert "this command gives --mode finetune, --unfreeze-every 2" in msg and "\n" not in msg
    # another source: a model name (random init) instead of the pre-trained run
    assert main(["finetune", "resnet8", "--out", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"fine-tuned with source {pretrained}" in err and "gives source resnet8" in err
    # a plain training run is not a fine-tuning one
    plain = tmp_path / "plain"
    with pytest.raises(TrainingInterrupted):
        fit(TrainConfig(**BASE, out=str(plain)), progress=False, report=False, stop_after_steps=1)
    with pytest.raises(ResumeMismatchError, match=r"holds a `cnnzoo train` run.*cnnzoo train --resume"):
        finetune(open_network(pretrained), None, resume=plain)
    assert load_checkpoint(out)["global_step"] == 2  # nothing was written by the refused resumes
