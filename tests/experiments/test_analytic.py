"""The analytic experiments at quick scale: each writes the contract and reproduces the lecture's
worked numbers (shared/spec/experiments.md) from the analyzer."""

from __future__ import annotations

import math

import pytest


def test_small_filters(run_quick):
    r = run_quick("small_filters")
    m = r["metrics"]
    c, hw = 64, 56 * 56
    assert m["params"] == {"stack3x3": 110784, "conv7x7": 200768}
    assert m["params"]["stack3x3"] == 27 * c * c + 3 * c and m["params"]["conv7x7"] == 49 * c * c + c
    assert m["receptive_field"] == {"stack3x3": 7, "conv7x7": 7}
    assert m["flops"] == {"stack3x3": 2 * 27 * c * c * hw, "conv7x7": 2 * 49 * c * c * hw}
    assert m["activations"] == {"stack3x3": 3 * c * hw, "conv7x7": c * hw}
    assert m["relus"] == {"stack3x3": 3, "conv7x7": 1}
    d = m["five_vs_two_threes"]  # deck 001: "memory for activations doubles"
    assert d["params"] == {"conv5x5": 25 * c * c + c, "two_3x3": 18 * c * c + 2 * c}
    assert d["flops"] == {"conv5x5": 50 * c * c * hw, "two_3x3": 36 * c * c * hw}
    assert d["relus"] == {"conv5x5": 1, "two_3x3": 2}
    assert d["activations"] == {"conv5x5": c * hw, "two_3x3": 2 * c * hw}
    assert d["receptive_field"] == {"conv5x5": 5, "two_3x3": 5}
    assert r["holds"] is True


def test_bottleneck(run_quick):
    r = run_quick("bottleneck")
    m = r["metrics"]
    assert m["flops"] == {
        "naive_5x5": 240_844_800,
        "reduced_5x5": 24_887_296,
        "naive_3x3": 346_816_512,
        "reduced_3x3": 202_309_632,
    }
    hw = 28 * 28  # module 3a, Table 1: 64, 96→128, 16→32, pool→32 on 192 channels
    reduced = 192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32
    naive = 192 * 64 + 9 * 192 * 128 + 25 * 192 * 32
    assert m["module_flops"] == {"naive": 2 * hw * naive, "reduced": 2 * hw * reduced}
    assert m["deck000_macs"]["naive"] == 854_196_224
    deck_reduced = hw * (256 * (128 + 64 + 64 + 64) + 9 * 64 * 192 + 25 * 64 * 96)
    assert m["deck000_macs"]["reduced"] == deck_reduced == sum(m["deck000_reduced_terms"].values())
    assert f"{deck_reduced:,}" in r["notes"] and "353 M" in r["notes"]
    b = m["resnet_blocks"]
    assert b["basic"]["conv_params"] == 2 * 9 * 256**2 and b["basic"]["flops"] == 2 * 2 * 9 * 256**2 * 56**2
    bott = 256 * 64 + 9 * 64 * 64 + 64 * 256
    assert b["bottleneck"]["conv_params"] == bott and b["bottleneck"]["flops"] == 2 * bott * 56**2
    assert b["basic"]["params"] == b["basic"]["conv_params"] + 2 * 2 * 256  # two BNs
    assert r["holds"] is True


def test_separable(run_quick):
    r = run_quick("separable")
    m = r["metrics"]
    assert m["mults"] == {"standard": 614_400, "depthwise": 4_800, "pointwise": 24_576}
    assert m["ratio"]["worked_example"] == pytest.approx(1 / 128 + 1 / 25, rel=1e-12)
    nets = m["mobilenet_v1"]
    for key, (params, macs) in {"conv": (29.3e6, 4866e6), "separable": (4.2e6, 569e6)}.items():
        assert nets[key]["params"] == pytest.approx(params, rel=0.01)
        assert nets[key]["macs"] == pytest.approx(macs, rel=0.01)
    assert round(nets["separable"]["macs"] / 1e6) == 569 and round(nets["conv"]["params"] / 1e5) == 293
    assert r["holds"] is True


def test_gap_head(run_quick):
    r = run_quick("gap_head")
    h = r["metrics"]["head_params"]
    fc3 = 4097 * 4096 + 4097 * 1000  # fc7 and fc8, biases included
    assert h == {
        "alexnet": 9217 * 4096 + fc3,
        "vgg16": 25089 * 4096 + fc3,
        "googlenet": 1025 * 1000,
        "resnet50": 2049 * 1000,
    }
    assert round(h["vgg16"] / 1e6) == 124 and round(h["googlenet"] / 1e6) == 1  # deck 001's figures
    assert r["metrics"]["googlenet_with_vgg_head"] == 50177 * 4096 + fc3
    assert r["holds"] is True


def test_resnet_tweaks(run_quick):
    r = run_quick("resnet_tweaks")
    assert r["metrics"]["input_coverage"] == {
        "resnet50_v1": {"block": 0.25, "shortcut": 0.25},
        "resnet50": {"block": 1.0, "shortcut": 0.25},
        "resnet50d": {"block": 1.0, "shortcut": 1.0},
    }
    assert r["metrics"]["block_input"] == [256, 56, 56]
    assert r["metrics"]["input_positions"]["resnet50"] == {"block": 56 * 56, "shortcut": 28 * 28}
    by_block = r["metrics"]["input_coverage_by_block_8x8"]
    assert by_block["resnet50"]["layer4.0"] == {"block": 1.0, "shortcut": 0.25}
    assert r["holds"] is True


def test_compound_scaling(run_quick):
    from cnnzoo.models.efficientnet import COEFFICIENTS, compound_rule

    r = run_quick("compound_scaling")
    m = r["metrics"]
    for i in range(8):
        b, c, rule = f"B{i}", COEFFICIENTS[f"b{i}"], compound_rule(i)
        assert m["released"][b] == {"width": c.width, "depth": c.depth, "resolution": c.resolution}
        assert m["rule"][b]["depth"] == pytest.approx(1.2**i, abs=1e-4)
        assert m["rule"][b]["width"] == pytest.approx(1.1**i, abs=1e-4)
        assert m["rule"][b]["resolution"] == rule.resolution
    table2 = {0: (5.3, 0.39), 1: (7.8, 0.70), 2: (9.2, 1.0), 3: (12, 1.8), 4: (19, 4.2), 5: (30, 9.9),
              6: (43, 19), 7: (66, 37)}  # fmt: skip
    for i, (params, macs) in table2.items():
        assert m["params"][f"efficientnet_b{i}"] == pytest.approx(params * 1e6, rel=0.05)
        assert m["macs"][f"efficientnet_b{i}"] == pytest.approx(macs * 1e9, rel=0.05)
    assert m["params"]["efficientnet_b0"] == 5_288_548  # torchvision's num_params
    assert m["alpha_beta2_gamma2"] == pytest.approx(1.2 * 1.1**2 * 1.15**2)
    growth = list(m["flops_growth"].values())
    assert len(growth) == 7 and m["flops_growth_geometric_mean"] == pytest.approx(
        math.prod(growth) ** (1 / 7)
    )
    worst_rule = max(abs(v) for d in m["released_vs_rule"].values() for v in d.values())
    worst_table = max(abs(v) for d in m["table2_relative_error"].values() for v in d.values())
    expected = abs(m["flops_growth_geometric_mean"] - 2) <= 0.2 and worst_rule <= 0.15 and worst_table <= 0.05
    assert r["holds"] is expected  # the verdict follows the stated criterion
    if not r["holds"]:
        assert "φ" in r["notes"]
