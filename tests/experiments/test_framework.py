"""The experiments' framework: names, scales, datasets, output directories and the CLI."""

from __future__ import annotations

import json

import pytest

import cnnzoo.experiments as ex
from cnnzoo.cli import main
from cnnzoo.data.datasets import DatasetNotFoundError
from cnnzoo.errors import CnnzooError
from cnnzoo.experiments import (
    EXPERIMENT_MODULES,
    Experiment,
    Outcome,
    ScaleError,
    UnknownExperimentError,
    get_experiment,
    list_experiments,
    run_experiment,
)


def test_every_module_defines_its_experiment():
    exps = list_experiments()
    assert [e.name for e in exps] == list(EXPERIMENT_MODULES)
    for e in exps:
        assert e.costs and set(e.costs) <= set(ex.SCALES), e.name
        if not e.trained:  # analytic: the same at every scale
            assert set(e.costs) == set(ex.SCALES), e.name
        assert e.claim and e.source


def test_unknown_name_lists_close_names():
    with pytest.raises(UnknownExperimentError) as err:
        get_experiment("small_filter")
    msg = str(err.value)
    assert "small_filters" in msg and "\n" not in msg and isinstance(err.value, CnnzooError)
    assert get_experiment("small-filters").name == "small_filters"


def _fake(monkeypatch, *, trained: bool, costs=None) -> Experiment:
    """A registered toy experiment, to check the runner without a real measurement."""
    from cnnzoo.experiments.base import new_figure, save_figure

    def run(ctx):
        fig, ax = new_figure((2, 2))
        ax.plot([0, 1], [ctx.seeds, ctx.seeds])
        return Outcome(
            holds=False,
            metrics={"seeds": ctx.seed_list(), "pair": (1, 2.5)},
            criterion="never",
            setup="toy",
            plots=[save_figure(fig, ctx.out / "toy.png")],
            notes="the claim does not show at this scale",
        )

    exp = Experiment("toy", "a toy claim", "nowhere", costs or {"quick": "~0 s"}, run, trained=trained)
    monkeypatch.setattr(ex, "EXPERIMENT_MODULES", (*EXPERIMENT_MODULES, "toy"))
    monkeypatch.setitem(ex._loaded, "toy", exp)
    return exp


def test_unsupported_scale(monkeypatch, tmp_path):
    _fake(monkeypatch, trained=True)
    with pytest.raises(ScaleError, match=r"does not run at scale 'cpu'; it supports: quick"):
        run_experiment("toy", scale="cpu", out=tmp_path / "o")
    with pytest.raises(ScaleError, match="choose one of quick, cpu, paper"):
        run_experiment("toy", scale="huge", out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_dataset_not_installed_says_how_to_get_it(monkeypatch, tmp_path):
    _fake(monkeypatch, trained=True)
    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path / "empty"))
    with pytest.raises(DatasetNotFoundError) as err:
        run_experiment("toy", scale="quick", data="kmnist", out=tmp_path / "o")
    msg = str(err.value)
    assert "\n" not in msg and "kmnist" in msg and "CNNZOO_DATA" in msg and "KMNIST" in msg
    with pytest.raises(CnnzooError, match="unknown dataset"):
        run_experiment("toy", scale="quick", data="fashion-mnsit", out=tmp_path / "o")


def test_analytic_experiment_ignores_missing_data(monkeypatch, tmp_path):
    _fake(monkeypatch, trained=False)
    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path / "empty"))
    r = run_experiment("toy", scale="quick", data="kmnist", out=tmp_path / "o")
    assert r["metrics"] == {"seeds": [0], "pair": [1, 2.5]} and r["plots"] == ["toy.png"]


def test_result_and_readme_and_overwrite(monkeypatch, tmp_path):
    _fake(monkeypatch, trained=True)
    out = tmp_path / "o"
    r = run_experiment("toy", scale="quick", seeds=3, out=out)
    assert json.loads((out / "result.json").read_text()) == r
    assert tuple(r) == ex.RESULT_KEYS and r["seeds"] == 3 and r["holds"] is False
    readme = (out / "README.md").read_text()
    assert "a toy claim" in readme and "**does not hold**" in readme and "does not show" in readme
    assert "| `pair` | [1, 2.5] |" in readme and "![toy](toy.png)" in readme
    before = (out / "result.json").read_text()
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_experiment("toy", scale="quick", out=out)
    assert (out / "result.json").read_text() == before  # the earlier result is untouched
    (out / "mine.txt").write_text("the user's file")
    r2 = run_experiment("toy", scale="quick", seeds=1, out=out, overwrite=True)
    assert r2["seeds"] == 1 and (out / "mine.txt").read_text() == "the user's file"
    with pytest.raises(ex.ConfigError, match="--seeds"):
        run_experiment("toy", scale="quick", seeds=0, out=tmp_path / "p")


def test_default_seeds_and_out(monkeypatch, tmp_path):
    exp = _fake(monkeypatch, trained=True, costs={"quick": "1 s", "cpu": "1 min"})
    assert (exp.default_seeds("quick"), exp.default_seeds("cpu"), exp.default_seeds("paper")) == (1, 2, 3)
    monkeypatch.chdir(tmp_path)
    r = run_experiment("toy", scale="cpu")
    assert r["seeds"] == 2 and (tmp_path / "runs" / "experiments" / "toy" / "result.json").is_file()


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path))
    assert ex.cache_dir() == tmp_path / "experiments"


def test_cli_list(capsys):
    assert main(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    for e in list_experiments():
        assert e.name in out


def test_cli_run_and_errors(capsys, tmp_path):
    out = tmp_path / "sf"
    assert main(["experiment", "run", "small_filters", "--scale", "quick", "--out", str(out)]) == 0
    assert "holds" in capsys.readouterr().out and (out / "result.json").is_file()
    for argv, needle in (
        (["experiment", "run", "small_filter"], "Did you mean: small_filters"),
        (["experiment", "run", "small_filters", "--scale", "gpu"], "unknown scale 'gpu'"),
        (["experiment", "run", "small_filters", "--scale", "quick", "--out", str(out)], "--overwrite"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and "\n" not in err and "Traceback" not in err


def test_cli_missing_dataset_and_bare_command(monkeypatch, tmp_path, capsys):
    _fake(monkeypatch, trained=True)
    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path / "empty"))
    assert main(["experiment", "run", "toy", "--scale", "quick", "--data", "kmnist"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'kmnist' is not installed" in err and "\n" not in err
    assert main(["experiment"]) == 1
    assert "list" in capsys.readouterr().out
