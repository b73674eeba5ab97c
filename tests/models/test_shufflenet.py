"""ShuffleNet v1 (Zhang et al. 2018): Table 1's widths and MACs, Table 2's widths, the units, bad input."""

from __future__ import annotations

import pytest
import torch

from cnnzoo import analyze, create_model, get_model_config
from cnnzoo.errors import ConfigError
from cnnzoo.layers.shuffle import ChannelShuffle
from cnnzoo.models.shufflenet import TABLE1, TABLE2_MACS, VARIANTS, ShuffleNetV1, ShuffleUnit, stage_widths

GROUPS = (1, 2, 3, 4, 8)


def _meta(groups: int, **kw) -> ShuffleNetV1:
    with torch.device("meta"):
        return ShuffleNetV1(groups, **kw).eval()


def _params_by_hand(g: int, stem: int, c2: int, classes: int = 1000) -> int:
    """§3.3 and Table 1: conv1 + BN; per unit a 1×1 GConv (stage 2's first ungrouped) to c/4, a 3×3
    depthwise conv, a 1×1 GConv to c (c − c_in at stride 2), each with a BN (2 per channel); the fc."""
    total, c_in = 27 * stem + 2 * stem, stem
    for i, (n, c) in enumerate(zip((4, 8, 4), (c2, 2 * c2, 4 * c2), strict=True)):
        for j in range(n):
            mid, out = c // 4, c - c_in if j == 0 else c
            g1 = 1 if i == j == 0 else g
            total += c_in * mid // g1 + 2 * mid + 9 * mid + 2 * mid + mid * out // g + 2 * out
            c_in = c
    return total + c_in * classes + classes


@pytest.mark.parametrize("g", GROUPS)
def test_table1_widths_and_complexity_at_1x(g, macs):
    m = _meta(g)
    assert m.stage_channels == TABLE1[g] and m.conv1.out_channels == 24
    assert m.num_params() == _params_by_hand(g, 24, TABLE1[g][0])
    name = f"shufflenet_v1_g{g}"
    assert get_model_config(name).extra["macs"]["value"] == VARIANTS[name].table1_macs
    # Table 1: 143, 140, 137, 133, 137 MFLOPs (multiply-adds); ours within 1 % (see the docstring)
    assert macs(name) == pytest.approx(VARIANTS[name].table1_macs, rel=0.011)


@pytest.mark.parametrize("width", [0.5, 0.25])
@pytest.mark.parametrize("g", GROUPS)
def test_table2_widths_round_to_the_groups(g, width, macs):
    stem, (c2, c3, c4) = stage_widths(g, width)
    assert (c3, c4) == (2 * c2, 4 * c2) and c2 % (4 * g) == 0 and stem % g == 0
    assert abs(c2 - width * TABLE1[g][0]) <= 2 * g and abs(stem - 24 * width) < g  # the nearest multiple
    m = _meta(g, width=width)
    assert m.num_params() == _params_by_hand(g, stem, c2)
    # Table 2: 38 M (0.5x) and 13 M (0.25x), one rounded figure for every g; ours 38-41 and 10-12 M
    tolerance = {0.5: 0.08, 0.25: 0.21}[width]
    assert macs(m, 224) == pytest.approx(TABLE2_MACS[width], rel=tolerance)


def test_unit_structure_follows_fig2():
    m = _meta(3)
    first, unit = m.stage2[0], m.stage3[1]
    assert first.conv1.conv.groups == 1 and first.conv3.conv.groups == 3  # stage 2's first 1x1 ungrouped
    assert unit.conv1.conv.groups == 3 and unit.conv2.conv.groups == unit.conv2.conv.in_channels == 120
    assert isinstance(unit.shuffle, ChannelShuffle) and unit.shuffle.groups == 3
    assert first.shortcut is not None and first.conv3.conv.out_channels == 240 - 24  # concat widens
    assert unit.shortcut is None and unit.conv1.act is not None and unit.conv2.act is None


def test_stride2_unit_concatenates_the_pooled_input():
    torch.manual_seed(0)
    unit = ShuffleUnit(24, 240, 2, 3, 1).eval()
    x = torch.rand(2, 24, 8, 8)  # non-negative, as a ReLU's output
    with torch.no_grad():
        out = unit(x)
        assert out.shape == (2, 240, 4, 4)
        assert torch.allclose(out[:, :24], unit.shortcut(x))  # ReLU of a non-negative average
        branch = unit.conv3(unit.conv2(unit.shuffle(unit.conv1(x))))
        assert torch.allclose(out[:, 24:], branch.relu())


def test_stride1_unit_adds_its_input():
    torch.manual_seed(0)
    unit = ShuffleUnit(240, 240, 1, 3, 3).eval()
    x = torch.randn(1, 240, 5, 5)
    with torch.no_grad():
        assert torch.allclose(unit(x), (unit.conv3(unit.conv2(unit.shuffle(unit.conv1(x)))) + x).relu())
    rows = {r.name: r.detail for r in analyze(_meta(8), input_size=(3, 64, 64), depth=2).layers}
    assert (
        rows["stage2.0"] == "groups 8, stride 2, concat"
        and rows["stage3.1"] == "groups 8, stride 1, residual stage 3, block 1"
    )


def test_groups_that_do_not_divide_the_widths_are_refused():
    with pytest.raises(
        ConfigError, match=r"divisible by 4 x groups = 32 .*got channels=\(240, 480, 960\)"
    ) as e:
        ShuffleNetV1(8, channels=(240, 480, 960))
    assert "\n" not in str(e.value) and isinstance(e.value, ValueError)
    with pytest.raises(ConfigError, match=r"groups \[1, 2, 3, 4, 8\], not groups=5"):
        create_model("shufflenet_v1_g3", groups=5)
    with torch.device("meta"):  # any g works with widths it divides
        assert ShuffleNetV1(5, channels=(240, 480, 960), stem_width=20).stage_channels == (240, 480, 960)


@pytest.mark.parametrize("width", [0, -0.5, "1", None, True])
def test_a_width_that_is_not_positive_is_refused(width):
    with pytest.raises(ConfigError, match=f"width must be a positive number .*got {width!r}") as e:
        create_model("shufflenet_v1_g3", width=width)
    assert "\n" not in str(e.value)


def test_width_is_a_builder_argument():
    with torch.device("meta"):
        m = create_model("shufflenet_v1_g8", width=0.5)
    assert (m.conv1.out_channels, m.stage_channels) == (16, (192, 384, 768))  # the authors' 0.5x g=8
    assert m(torch.empty(1, 3, 224, 224, device="meta")).shape == (1, 1000)


@pytest.mark.slow
def test_shufflenet_v1_learns_fashion_mnist(fashion_short_run):
    """100 steps of 32 images at 64×64, g = 3: well above chance (10 %)."""
    assert fashion_short_run("shufflenet_v1_g3", steps=100, lr=0.05) > 0.5
