"""``cnnzoo scratch train``: a short real-data run, its run directory, and loading it in torch."""

from __future__ import annotations

import argparse
import csv
import hashlib
import json

import numpy as np
import pytest
import torch

import cnnzoo
from cnnzoo.errors import ConfigError
from cnnzoo.scratch import create_net
from cnnzoo.scratch.train import ScratchTrainConfig, fit, prepare_images

SUMMARY_KEYS = {
    "model",
    "data",
    "engine",
    "epochs",
    "batch_size",
    "seed",
    "test_top1",
    "test_loss",
    "train_loss",
    "wall_seconds",
    "images_per_second",
    "weights_sha256",
    "weights_file",
}


def test_prepare_images_pads_then_normalises_like_the_torch_trainer():
    from cnnzoo.data import adapt_images

    imgs = np.random.default_rng(0).integers(0, 256, (5, 1, 28, 28), dtype=np.uint8)
    ours = prepare_images(imgs, side=32, mean=(0.2860,), std=(0.3530,))
    ref = adapt_images(torch.from_numpy(imgs), size=32, mode="pad", mean=(0.2860,), std=(0.3530,)).numpy()
    assert ours.dtype == np.float32 and ours.shape == (5, 1, 32, 32)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    assert np.allclose(ours[:, :, 0, :], -0.2860 / 0.3530, atol=1e-6)  # the border is the background


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One short real-data run through the CLI parser (2,000 images, 2 epochs)."""
    from cnnzoo.scratch import cli

    out = tmp_path_factory.mktemp("scratch-run")
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "scratch",
            "train",
            "lenet5_relu",
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--train-samples",
            "2000",
            "--test-samples",
            "1000",
            "--seed",
            "3",
            "--threads",
            "1",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert args.func(args) == 0
    return out


def test_run_directory_has_the_cnnzoo_train_shape(run_dir):
    s = json.loads((run_dir / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(s)
    assert s["engine"] == "numpy" and s["model"] == "lenet5_relu" and s["epochs"] == 2 and s["seed"] == 3
    assert 0 <= s["test_top1"] <= 100 and s["wall_seconds"] > 0 and s["images_per_second"] > 0
    weights = run_dir / s["weights_file"]
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == s["weights_sha256"]
    assert s["test_top1"] >= 55.0, f"2 epochs on 2,000 images should clear 55%, got {s['test_top1']:.1f}%"
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    from cnnzoo.rundir import METRIC_CORE

    assert tuple(rows[0]) == METRIC_CORE  # the run-directory contract's columns
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["model"] == "lenet5_relu" and cfg["num_classes"] == 10 and cfg["in_chans"] == 1
    assert not list(run_dir.glob("*.tmp"))  # atomic writes leave no temporaries


def test_weights_load_into_the_torch_model_and_give_the_same_logits(run_dir):
    from safetensors.numpy import load_file as load_np
    from safetensors.torch import load_file

    model = cnnzoo.create_model("lenet5_relu").eval()
    model.load_state_dict(load_file(str(run_dir / "weights.safetensors")), strict=True)
    net = create_net("lenet5_relu", seed=None)
    net.load_state_dict(load_np(str(run_dir / "weights.safetensors")))
    x = np.random.default_rng(0).standard_normal((8, 1, 32, 32)).astype(np.float32)
    with torch.no_grad():
        zt = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.eval()(x), zt, rtol=1e-4, atol=1e-4)
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["test_loss"] > 0


def test_lenet5_paper_trains_a_step_and_saves(tmp_path):
    s = fit(
        ScratchTrainConfig(
            model="lenet5", epochs=1, batch_size=100, train_samples=300, test_samples=200, out=str(tmp_path)
        ),
        progress=False,
    )
    from safetensors.torch import load_file

    model = cnnzoo.create_model("lenet5")
    model.load_state_dict(load_file(str(tmp_path / s["weights_file"])), strict=True)
    assert np.isfinite(s["train_loss"])


@pytest.mark.parametrize(
    "kwargs,match", [({"epochs": 0}, "--epochs"), ({"lr": -1.0}, "--lr"), ({"model": "lenet"}, "lenet5")]
)
def test_bad_options_are_clear_errors(kwargs, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        fit(ScratchTrainConfig(out=str(tmp_path), **kwargs), progress=False)


def test_the_torch_trainers_run_loader_opens_a_scratch_run(run_dir):
    """``cnnzoo eval DIR`` goes through ``cnnzoo.train.runs.load_run``: it must accept our run directory."""
    from safetensors.numpy import load_file as load_np

    from cnnzoo.train import runs

    model, cfg = runs.load_run(run_dir)
    assert cfg["engine"] == "numpy"
    net = create_net("lenet5_relu", seed=None)
    net.load_state_dict(load_np(str(run_dir / "weights.safetensors")))
    x = np.random.default_rng(1).standard_normal((4, 1, 32, 32)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(net.eval()(x), model(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-4)
