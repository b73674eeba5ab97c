"""`cnnzoo train` flags (generated from TrainConfig), recipe -> config resolution, `cnnzoo recipes`."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cnnzoo.cli import build_parser, main
from cnnzoo.errors import ConfigError
from cnnzoo.train.cli import config_from_args
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.recipes import get_recipe


def _cfg(*argv):
    return config_from_args(build_parser().parse_args(["train", *argv]))


def test_every_config_field_has_a_flag():
    p = build_parser()
    sub = next(a for a in p._actions if a.dest == "command").choices["train"]
    dests = {a.dest for a in sub._actions}
    for f in dataclasses.fields(TrainConfig):
        assert f.name in dests, f"TrainConfig.{f.name} has no `cnnzoo train` flag"


def test_flags_without_a_recipe_give_the_demo_defaults_plus_overrides():
    cfg = _cfg(
        "resnet20",
        "--lr",
        "0.2",
        "--no-nesterov",
        "--betas",
        "0.8,0.99",
        "--milestones",
        "3,6",
        "--scale-jitter",
        "36,40",
        "--model-kwargs",
        '{"zero_init_residual": true}',
        "--amp",
        "off",
    )
    d = TrainConfig()
    assert (cfg.model, cfg.lr, cfg.nesterov, cfg.betas, cfg.milestones) == (
        "resnet20",
        0.2,
        False,
        (0.8, 0.99),
        (3.0, 6.0),
    )
    assert cfg.scale_jitter == (36, 40) and cfg.model_kwargs == {"zero_init_residual": True}
    assert (cfg.epochs, cfg.batch_size, cfg.weight_decay, cfg.schedule) == (
        d.epochs,
        d.batch_size,
        d.weight_decay,
        d.schedule,
    )


def test_recipe_then_file_then_flags(tmp_path):
    r = get_recipe("fashion-best")
    cfg = _cfg("--recipe", "fashion-best")
    assert (cfg.model, cfg.lr, cfg.schedule, cfg.batch_size) == (
        r["model"],
        r["lr"],
        r["schedule"],
        r["batch_size"],
    )
    f = tmp_path / "c.yaml"
    f.write_text("lr: 0.05\nepochs: 3\nlabel-smoothing: 0.0\n")
    cfg = _cfg("--recipe", "fashion-best", "--config", str(f), "--epochs", "2")
    assert cfg.lr == 0.05 and cfg.label_smoothing == 0.0  # the file beats the recipe
    assert cfg.epochs == 2  # the flag beats the file
    assert cfg.model == r["model"] and cfg.hflip is True  # untouched recipe fields stay
    t = tmp_path / "c.toml"
    t.write_text('recipe = "fashion-fast"\nbatch_size = 64\n')
    cfg = _cfg("--config", str(t))
    assert cfg.model == get_recipe("fashion-fast")["model"] and cfg.batch_size == 64
    cfg = _cfg("lenet5", "--recipe", "fashion-fast")  # a positional model overrides the recipe's
    assert cfg.model == "lenet5"


def test_bad_values_are_config_errors_naming_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="unknown recipe"):
        _cfg("--recipe", "fashion-fastest")
    with pytest.raises(ConfigError, match="amp must be one of off, auto, native, bf16, fp16"):
        _cfg("--amp", "fp8")
    with pytest.raises(ConfigError, match="multistep schedule needs milestones"):
        _cfg("--schedule", "multistep")
    with pytest.raises(ConfigError, match="did you mean lr"):
        TrainConfig.from_dict({"lrr": 0.1})
    f = tmp_path / "bad.yaml"
    f.write_text("lr: fast\n")
    with pytest.raises(ConfigError, match="lr"):
        _cfg("--config", str(f))


def test_recipe_run_through_the_cli_saves_the_resolved_config(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--recipe",
            "fashion-fast",
            "--epochs",
            "1",
            "--train-samples",
            "256",
            "--test-samples",
            "256",
            "--threads",
            "1",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "resolved config" in printed and "schedule=onecycle" in printed
    saved = json.loads((out / "config.json").read_text())
    r = get_recipe("fashion-fast")
    assert saved["model"] == r["model"] and saved["schedule"] == "onecycle" and saved["epochs"] == 1
    assert saved["eval_mode"] == r["eval_mode"] and saved["label_smoothing"] == r["label_smoothing"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["eval_mode"] == r["eval_mode"] and 0 <= summary["test_top1"] <= 100


def test_recipes_command_lists_every_recipe(capsys):
    from cnnzoo.train.recipes import list_recipes

    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in list_recipes():
        assert name[:10] in out


def test_cnnzoo_train_has_its_figures_drawn_by_the_helper_started_before_torch(tmp_path, monkeypatch):
    from cnnzoo.train import figures

    used, start = [], figures.FigureWorker.start

    def recording_start():
        w = start()
        used.append(w)
        return w

    monkeypatch.setattr(figures.FigureWorker, "start", staticmethod(recording_start))
    out = tmp_path / "run"
    argv = ["train", "lenet5_relu", "--epochs", "1", "--train-samples", "200", "--test-samples", "100"]
    assert main([*argv, "--threads", "1", "--no-progress", "--out", str(out)]) == 0
    (worker,) = used
    assert worker.proc.returncode == 0  # it drew the job and exited; nothing was left running
    for png in ("confusion_matrix.png", "misclassified.png", "curves.png"):
        assert (out / png).stat().st_size > 2_000
