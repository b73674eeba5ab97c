"""The trained experiments at quick scale: each runs, writes the contract, and shares its nets.

One xdist group (one worker, so one session cache) for the module, so that ``lesion``, ``paths`` and
``loss_landscape`` usually reuse the nets ``degradation`` trains, as they do at cpu scale; a test
that asserts the reuse trains them first itself if they are not there.
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
    # degradation trains the nets lesion reads, or finds them cached when it ran first on this worker
    # (xdist's loadgroup does not always keep the module's tests on one worker)
    run_experiment("degradation", scale="quick", out=tmp_path / "degradation")
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


def test_loss_landscape(tmp_path, cache):
    r = _quick("loss_landscape", tmp_path, cache)
    m = r["metrics"]
    assert set(m["surface"]) == {"resnet56", "plain56"} and m["coordinates"] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert all(len(s) == 5 and all(len(row) == 5 for row in s) for s in m["surface"].values())
    assert set(m["loss_rise_at_radius"]["resnet56"]) == {"0.5", "1.0"}  # a 5x5 grid has no 0.25 point
    rise = m["loss_rise_at_radius"]["plain56"]["0.5"]
    s, c = m["surface"]["plain56"], 2
    assert math.isclose(rise, (s[c][3] + s[c][1] + s[3][c] + s[1][c]) / 4 - s[c][c], rel_tol=1e-9)
    assert r["holds"] == all(
        m["loss_rise_at_radius"]["plain56"][k] > v for k, v in m["loss_rise_at_radius"]["resnet56"].items()
    )


def test_stochastic_depth(tmp_path, cache):
    r = _quick("stochastic_depth", tmp_path, cache)
    m = r["metrics"]
    assert set(m["test_error"]) == set(m["seconds_per_epoch"]) == {"resnet110", "resnet110_sd"}
    assert m["blocks"] == 54 and math.isclose(m["expected_depth"], 54 - 0.5 * 55 / 2)  # 40.25 (Eq. 5)
    assert all(v > 0 for v in m["seconds_per_epoch"].values())
    assert r["holds"] == (m["faster"] and m["regularises"])


def test_first_layer_filters(tmp_path, cache):
    import torch

    from cnnzoo.experiments.first_layer_filters import energy_above

    r = _quick("first_layer_filters", tmp_path, cache)
    m = r["metrics"]
    assert set(m["dead_filters"]) == set(m["high_frequency_energy"]) == {"alexnet_stem", "zfnet_stem"}
    assert all(0 <= v <= 96 for v in m["dead_filters"].values())
    assert all(0 < v < 1 for v in m["high_frequency_energy"].values())
    # the spectral measure itself: a checkerboard is all high frequency, a broad bump is not
    k = torch.arange(7)
    checker = ((k.view(-1, 1) + k.view(1, -1)) % 2 * 2 - 1).double().view(1, 1, 7, 7)
    bump = torch.exp(-((k - 3.0).view(-1, 1) ** 2 + (k - 3.0).view(1, -1) ** 2) / 8).view(1, 1, 7, 7)
    assert energy_above(checker, 0.25) > 0.9 and energy_above(bump, 0.25) < 0.1
    # white noise's share is the grid's area beyond the cutoff, and random filters land on it
    from cnnzoo.experiments.first_layer_filters import white_noise_energy_above

    white = white_noise_energy_above(0.25)
    assert m["white_noise_high_frequency_energy"] == white and abs(white - (1 - math.pi / 16)) < 0.01
    noise = torch.randn(4000, 1, 7, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs(energy_above(noise, 0.25) - white) < 0.01
