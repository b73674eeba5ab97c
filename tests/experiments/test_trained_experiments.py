"""The trained experiments at quick scale: each runs, writes the contract, and shares its nets.

One xdist group (one worker, so one session cache) for the module, so that ``lesion``, ``paths`` and
``loss_landscape`` reuse the nets ``degradation`` trains, as they do at cpu scale.
"""

from __future__ import annotations

import json
import math

import pytest

from cnnzoo.experiments import run_experiment
from cnnzoo.experiments._trained import cache_key, cifar_setting, train_config

from .conftest import assert_contract

pytestmark = pytest.mark.xdist_group("trained_experiments")


@pytest.fixture
def cache():
    """The trained-net cache: the session's (tests/conftest.py points CNNZOO_CACHE at it)."""
    from cnnzoo.experiments import cache_dir

    return cache_dir()


def _quick(name: str, tmp_path, cache) -> dict:
    out = tmp_path / name
    return assert_contract(run_experiment(name, scale="quick", out=out), out, name)


def test_the_cache_key_covers_the_setting_and_not_the_place():
    s = cifar_setting("quick")
    a = train_config("resnet56", data="fashion-mnist", seed=0, **s)
    assert cache_key(a).startswith("resnet56-s0-")
    assert cache_key(
        train_config("resnet56", data="fashion-mnist", seed=0, **{**s, "threads": 2})
    ) == cache_key(a)
    for change in ({"epochs": 2}, {"lr": 0.05}, {"widths": (8, 16, 32)}, {"train_samples": 512}):
        assert cache_key(
            train_config("resnet56", data="fashion-mnist", seed=0, **{**s, **change})
        ) != cache_key(a)
    assert cache_key(train_config("resnet56", data="fashion-mnist", seed=1, **s)) != cache_key(a)
    a.out = "/elsewhere"
    assert cache_key(a) == cache_key(train_config("resnet56", data="fashion-mnist", seed=0, **s))


def test_degradation(tmp_path, cache):
    r = _quick("degradation", tmp_path, cache)
    m = r["metrics"]
    models = {"plain20", "plain56", "resnet20", "resnet56"}
    for key in ("final_train_error", "final_test_error", "train_error_curve", "test_error_curve"):
        assert set(m[key]) == models
    assert all(len(c) == 1 for c in m["train_error_curve"].values())  # one epoch at quick scale
    assert m["width"] == "4-8-16" and all(0 <= v <= 100 for v in m["final_test_error"].values())
    assert r["holds"] == (m["plain_degrades"] and m["residual_improves"])
    for m in models:  # the real trainer's run directories, shared through the cache
        assert (
            cache / cache_key(train_config(m, data="fashion-mnist", seed=0, **cifar_setting("quick")))
        ).is_dir()
    cfg = json.loads(next(cache.glob("resnet56-*/config.json")).read_text())
    assert cfg["model_kwargs"]["widths"] == [4, 8, 16] and cfg["train_samples"] == 256


def test_lesion_reuses_the_nets(tmp_path, cache):
    before = {p.name: p.stat().st_mtime for p in cache.iterdir()}
    r = _quick("lesion", tmp_path, cache)
    assert {p.name: p.stat().st_mtime for p in cache.iterdir()} == before  # nothing retrained
    res, plain = r["metrics"]["resnet"], r["metrics"]["plain"]
    assert len(res["error_by_deleted_block"]) == 27 and res["downsampling_blocks"] == [9, 18]
    assert len(res["error_by_num_deleted"]) == len(r["metrics"]["num_deleted"])
    assert len(res["error_by_swaps"]) == len(r["metrics"]["swaps"])
    assert res["error_by_num_deleted"][0] == res["baseline_error"] == res["error_by_swaps"][0]
    layers = plain["error_by_deleted_layer"]
    assert len(layers) == 27 and [i for i, e in enumerate(layers) if e is None] == [9, 18]


def test_paths(tmp_path, cache):
    r = _quick("paths", tmp_path, cache)
    m = r["metrics"]
    assert m["n"] == 27 and m["num_paths"] == 2**27
    assert m["path_length_distribution"] == [math.comb(27, k) / 2**27 for k in range(28)]
    assert len(m["gradient_by_path_length"]) == 28 and all(g > 0 for g in m["gradient_by_path_length"])
    assert math.isclose(sum(m["total_gradient_by_path_length"]), 1.0)
