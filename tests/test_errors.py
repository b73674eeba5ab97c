"""Every mistake gets one clear line (issue 11): the CLI's exit status 2 and the API's error types.

The CLI cases run as real processes: one interpreter imports cnnzoo (and torch) once, then forks a
child per case that runs ``python -m cnnzoo ARGS`` (``runpy``, as ``-m`` does) and reports its exit
status and stderr. A case passes when the status is 2, stderr is one line naming the fix, and no
traceback is printed. docs/errors.md lists these errors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnzoo import create_model
from cnnzoo.errors import CnnzooError, ConfigError
from cnnzoo.registry import UnknownModelError, get_model_config, is_model
from cnnzoo.rundir import RunDir, RunDirError, RunExistsError, claim
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.loop import fit
from cnnzoo.train.runs import WeightsChangedError, load_run, open_network

SRC = str(Path(__file__).resolve().parents[1] / "src")

# One process runs every case: fork after the imports, so each case costs a fork, not a start-up.
DRIVER = textwrap.dedent(
    """
    import json, os, runpy, sys
    import cnnzoo.cli, cnnzoo.train.loop, cnnzoo.analysis, cnnzoo.scratch.train, cnnzoo.models
    cnnzoo.registry._ensure_loaded()
    import time
    results = []
    for argv in json.loads(sys.argv[1]):
        t0 = time.perf_counter()
        err = os.path.join(sys.argv[2], f"err{len(results)}")
        pid = os.fork()
        if pid == 0:
            import signal
            signal.alarm(int(os.environ.get("CASE_TIMEOUT", "60")))  # a case that trains is a failure
            fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 2)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            sys.argv = ["cnnzoo", *argv]
            code = 0
            try:
                runpy.run_module("cnnzoo", run_name="__main__")
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 1
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        results.append({"argv": argv, "rc": os.waitstatus_to_exitcode(status), "err": open(err).read(),
                        "seconds": time.perf_counter() - t0})
    print(json.dumps(results))
    """
)


def run_cli_cases(cases: list[list[str]], tmp: Path) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    env.pop("CNNZOO_DEBUG", None)
    p = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(cases), str(tmp)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


TINY = dict(
    model="lenet5_relu",
    epochs=1,
    train_samples=128,
    test_samples=64,
    batch_size=64,
    warmup_epochs=0,
    threads=1,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "run"
    fit(TrainConfig(**TINY, out=str(out)), progress=False, report=False)
    return out


def _bad_labels_dir(root: Path) -> Path:
    """A Fashion-MNIST directory whose training labels hold a 10 (the classes are 0 to 9)."""
    from cnnzoo.data.idx import write_idx

    root.mkdir()
    x = np.zeros((20, 28, 28), dtype=np.uint8)
    y = np.arange(20, dtype=np.uint8) % 10
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", x)
        labels = y.copy()
        if prefix == "train":
            labels[7] = 10
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.mark.slow
def test_cli_mistakes_exit_2_with_one_line(tiny_run, tmp_path):
    run = str(tiny_run)
    changed = tmp_path / "changed"
    shutil.copytree(tiny_run, changed)
    w = bytearray((changed / "weights.safetensors").read_bytes())
    w[-3] ^= 0x40  # one flipped bit in a weight: still a readable file
    (changed / "weights.safetensors").write_bytes(bytes(w))
    unfinished = tmp_path / "unfinished"
    shutil.copytree(tiny_run, unfinished)
    (unfinished / "summary.json").unlink()
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("not a run directory\n")
    bad_data = _bad_labels_dir(tmp_path / "bad-labels")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("epochs: [1\n")
    new = str(tmp_path / "new")
    cases = [
        (["train", "lenet5_relu", "--out", run, "--epochs", "1"], "already holds a run: lenet5_relu"),
        (["scratch", "train", "lenet5_relu", "--out", run], "already holds a run: lenet5_relu"),
        (["train", "lenet5_relu", "--out", str(a_file)], "is a file"),
        (["scratch", "train", "lenet5_relu", "--out", str(a_file)], "is a file"),
        (["train", "--resume", run, "--overwrite"], "drop --overwrite"),
        (["train", "lenet5_relu", "--out", "/proc/cnnzoo-run"], "cannot create --out /proc/cnnzoo-run"),
        (["scratch", "train", "lenet5_relu", "--out", "/proc/cnnzoo-run"], "cannot create --out"),
        (["demo", "--out", run], "already holds a run"),
        (["train", "lenet5_relu", "--train-samples", "64", "--model-arg", "foo=1", "--out", new], "'foo'"),
        (["train", "lenet5_relu", "--train-samples", "64", "--model-arg", "criterion=x", "--out", new], "ce"),
        (["train", "lenet5_relu", "--model-arg", "num_classes=3", "--out", new], "from the data"),
        (["train", "LENET5", "--out", new], "Did you mean: lenet5?"),
        (["info", "lenet5 "], "Did you mean: lenet5?"),
        (["train", "lenet5_relu", "--data-dir", str(bad_data), "--out", new], "label 10 at index 7"),
        (["summary", "lenet5", "--output", str(tmp_path / "no" / "such" / "x.txt")], "does not exist"),
        (["summary", "lenet5", "--output", str(a_file / "x.txt")], "does not exist"),
        (["summary", "lenet5", "--output", str(tmp_path)], "is a directory"),
        (["summary", "lenet5", "--format", "csv", "--output", "/proc/cnnzoo-x.csv"], "cannot write"),
        (["compare", "lenet5", "--plot", "/proc/cnnzoo-x.png"], "cannot write"),
        (["compare", "lenet5", "--plot", str(tmp_path / "plot.xyz")], "unknown image format"),
        (["eval", run, "--batch-size", "0"], "--batch-size must be at least 1"),
        (["eval", run, "--device", "tpu9"], "unknown --device"),
        (["eval", str(changed)], "has changed since training"),
        (["eval", str(unfinished)], "did not finish"),
        (["eval", str(a_file)], "not found"),
        (["train", "lenet5_relu", "--model-arg", "x"], "expected KEY=VALUE"),  # argparse: one line too
        (["summary", "lenet5", "--depth", "0"], "expected a positive integer"),
        (["train", "--config", str(bad_yaml)], "could not be parsed as YAML at line 2"),
        (["train", "lenet5_relu", "--data-dir", str(tmp_path / "nodata"), "--out", new], "apt-get install"),
        (["train", "lenet5_relu", "--out", ""], "--out is empty"),
        (["train", "lenet5_relu", "--input-size", "100000", "--out", new], "larger than 4096"),
    ]
    results = run_cli_cases([argv for argv, _ in cases], tmp_path)
    for (argv, expect), r in zip(cases, results, strict=True):
        err = r["err"].strip()
        assert r["rc"] == 2, (argv, r)
        assert "Traceback" not in err and len(err.splitlines()) == 1, (argv, err)
        assert expect in err, (argv, err)
    # the refusals wrote nothing: no new directory, the old run untouched
    assert not Path(new).exists()
    assert RunDir(tiny_run).read_summary()["weights_sha256"] == load_summary_sha(tiny_run)
    existing = next(r["err"] for r in results if r["argv"][0] == "train" and run in r["argv"])
    assert "1/1 epochs" in existing and "--resume" in existing and "--overwrite" in existing


def load_summary_sha(run: Path) -> str:
    from cnnzoo.io import sha256_file

    return sha256_file(run / "weights.safetensors")


# ----------------------------------------------------------------------------- the registry
def test_model_names_and_suggestions():
    with pytest.raises(UnknownModelError, match="a model name is a string"):
        create_model(None)
    with pytest.raises(UnknownModelError, match="got 3"):
        get_model_config(3)
    assert not is_model(None)
    for typo in ("LENET5", "lenet5 ", " LeNet5", "lenet-5"):
        with pytest.raises(UnknownModelError) as ei:
            create_model(typo)
        assert "Did you mean: lenet5?" in str(ei.value), typo  # only the one it is, nothing else
    with pytest.raises(UnknownModelError) as ei:
        create_model("xyzzy")
    assert "Did you mean" not in str(ei.value)  # nothing close: no unrelated names
    with pytest.raises(UnknownModelError) as ei:
        create_model("lenet5x")
    assert "alexnet" not in str(ei.value) and "lenet5" in str(ei.value)


@pytest.mark.parametrize("bad", [2.5, "10", True, 0, -1, 3.0])
@pytest.mark.parametrize("arg", ["num_classes", "in_chans"])
def test_counts_must_be_ints(arg, bad):
    with pytest.raises(ConfigError, match=f"{arg} must be an int"):
        create_model("lenet5_relu", **{arg: bad})


def test_builder_keywords_are_named():
    with pytest.raises(ConfigError, match=r"does not take the keyword 'foo'.*it takes paper, criterion"):
        create_model("lenet5_relu", foo=1)
    with pytest.raises(ConfigError, match=r"cannot be built with criterion='x'.*it takes paper, criterion"):
        create_model("lenet5_relu", criterion="x")
    with pytest.raises(ConfigError, match="zero_init_residual"):  # the model's own keywords
        create_model("resnet18", norm_layer="bn")


def test_model_inputs_are_checked_at_every_entry():
    from cnnzoo.analysis import analyze
    from cnnzoo.models.base import InputShapeError

    m = create_model("lenet5_relu")
    for fn in (m, m.forward_features):
        with pytest.raises(InputShapeError):
            fn(torch.zeros(1, 3, 32, 32))  # 3 channels into a 1-channel model

    class TwoInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x, y):
            return self.conv(x) + self.conv(y)

    with pytest.raises(ConfigError, match="one size per tensor argument"):
        analyze(TwoInputs(), input_size=(3, 16, 16))


def test_labels_outside_the_classes_are_refused(tmp_path):
    from cnnzoo.data import load_dataset
    from cnnzoo.data.datasets import DatasetFormatError

    root = _bad_labels_dir(tmp_path / "fm")
    with pytest.raises(DatasetFormatError, match=r"label 10 at index 7 is outside the 10 classes"):
        load_dataset("fashion-mnist", "train", data_dir=root)
    assert len(load_dataset("fashion-mnist", "test", data_dir=root)) == 20  # the good split loads


def _api_cases():
    from cnnzoo.analysis import analyze
    from cnnzoo.data import load_dataset
    from cnnzoo.registry import list_models
    from cnnzoo.scratch.train import ScratchTrainConfig
    from cnnzoo.scratch.train import fit as scratch_fit

    return [
        (lambda: open_network(None), ConfigError, "a model name or a run directory"),
        (lambda: load_run(3), ConfigError, "a run directory"),
        (lambda: fit({"model": "lenet5_relu"}), ConfigError, "fit takes a TrainConfig"),
        (lambda: TrainConfig(epochs="3").validate(), ConfigError, "epochs must be an integer"),
        (lambda: TrainConfig.from_dict({"epoch": 3}), ConfigError, "did you mean epochs"),
        (
            lambda: scratch_fit(ScratchTrainConfig(epochs="2"), progress=False),
            ConfigError,
            "epochs must be an",
        ),
        (lambda: scratch_fit(ScratchTrainConfig(model=None), progress=False), ConfigError, "model must be a"),
        (lambda: scratch_fit(ScratchTrainConfig(train_samples=2.5), progress=False), ConfigError, "integer"),
        (lambda: load_dataset(None), ConfigError, "a dataset name is a string"),
        (lambda: load_dataset("fashion-mnist", "val"), ConfigError, "'train' or 'test'"),
        (lambda: list_models(3), ConfigError, "wildcard string"),
        (lambda: analyze("lenet5", batch_size=2.5), ConfigError, "batch_size"),
    ]


def test_hostile_api_calls_raise_cnnzoo_errors():
    for call, kind, text in _api_cases():
        with pytest.raises(kind, match=text):
            call()


def test_unknown_devices():
    from cnnzoo.train.setup import select_device

    for bad in ("tpu9", "cuda:x", "", "meta"):
        with pytest.raises(ConfigError, match="--device"):
            select_device(bad)


# ----------------------------------------------------------------------------- run directories
def test_claim_refuses_a_run_and_names_it(tiny_run, tmp_path):
    with pytest.raises(RunExistsError) as ei:
        claim(tiny_run)
    msg = str(ei.value)
    assert isinstance(ei.value, CnnzooError) and isinstance(ei.value, FileExistsError)
    assert "lenet5_relu (torch engine), 1/1 epochs, finished, written 20" in msg
    assert f"cnnzoo train --resume {tiny_run}" in msg and "--overwrite" in msg
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        claim(f)
    # --overwrite replaces the run's files and keeps the user's own
    d = tmp_path / "copy"
    shutil.copytree(tiny_run, d)
    (d / "notes.txt").write_text("mine")
    claim(d, overwrite=True)
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]


def test_a_failed_run_removes_only_what_it_created(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNZOO_DATA", raising=False)
    nodata = tmp_path / "nodata"
    nodata.mkdir()
    cfg = dict(TINY, data_dir=str(nodata))
    fresh = tmp_path / "a" / "b" / "run"
    with pytest.raises(CnnzooError, match="apt-get install"):
        fit(TrainConfig(**cfg, out=str(fresh)), progress=False, report=False)
    assert not (tmp_path / "a").exists()  # the folders it made are gone
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(CnnzooError):
        fit(TrainConfig(**cfg, out=str(mine)), progress=False, report=False)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    # a run that fails mid-epoch before its first checkpoint leaves nothing either

    def boom(step, model):
        raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated"):
        fit(TrainConfig(**TINY, out=str(mine)), progress=False, report=False, on_step=boom)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_scratch_runs_are_claimed_too(tiny_run, tmp_path):
    from cnnzoo.scratch.train import ScratchTrainConfig
    from cnnzoo.scratch.train import fit as scratch_fit

    with pytest.raises(RunExistsError, match="pass --overwrite"):
        scratch_fit(ScratchTrainConfig(out=str(tiny_run), epochs=1), progress=False)
    assert RunDir(tiny_run).read_summary()["engine"] == "torch"  # the torch run is untouched


# ----------------------------------------------------------------------------- verified weights
def test_changed_weights_are_refused_everywhere(tiny_run, tmp_path):
    d = tmp_path / "changed"
    shutil.copytree(tiny_run, d)
    from safetensors.torch import load_file, save_file

    state = load_file(str(d / "weights.safetensors"))
    state["conv1.weight" if "conv1.weight" in state else next(iter(state))].add_(1e-3)
    save_file(state, str(d / "weights.safetensors"), metadata={"format": "pt"})
    for load in (lambda: load_run(d), lambda: open_network(d)):
        with pytest.raises(WeightsChangedError, match="has changed since training"):
            load()
    s = json.loads((d / "summary.json").read_text())
    del s["weights_sha256"]
    (d / "summary.json").write_text(json.dumps(s))
    with pytest.raises(WeightsChangedError, match="records no sha256"):
        load_run(d)
    assert load_run(tiny_run)[0] is not None  # the untouched run still opens


def test_eval_scores_the_runs_own_test_set(tiny_run, capsys):
    from cnnzoo.cli import main

    assert main(["eval", str(tiny_run)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich folds long lines
    s = RunDir(tiny_run).read_summary()
    assert "64 images, the run's --test-samples subset of 10,000" in out
    assert f"top-1 {s['test_top1']:.2f}%" in out and f"(recorded at training: {s['test_top1']:.2f}%)" in out


def test_eval_of_a_numpy_run_scores_its_own_test_subset(tmp_path, capsys):
    from cnnzoo.cli import main
    from cnnzoo.scratch.train import ScratchTrainConfig
    from cnnzoo.scratch.train import fit as scratch_fit

    out = tmp_path / "numpy"
    s = scratch_fit(
        ScratchTrainConfig(epochs=1, train_samples=128, test_samples=100, batch_size=64, out=str(out)),
        progress=False,
    )
    assert main(["eval", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "100 images, the run's --test-samples subset of 10,000" in printed
    assert f"top-1 {s['test_top1']:.2f}%" in printed  # the NumPy engine's subset, drawn as it drew it
