"""Squeeze-and-Excitation ResNets (Hu et al. CVPR 2018): SE on the branch, counts, MACs, timm's files."""

from __future__ import annotations

import pytest
import timm
import torch

from cnnzoo import create_model, get_model_config, list_models
from cnnzoo.analysis import analyze
from cnnzoo.layers.squeeze_excite import SqueezeExcite

TIMM_SAME = ["seresnet50", "seresnet101", "seresnet152", "seresnext50_32x4d", "seresnext101_32x4d"]
ALL = TIMM_SAME + ["seresnet18", "seresnet34", "seresnet50_v1"]


def se_params(widths_and_blocks) -> int:
    """Each SE block: fc1 C -> C/16 and fc2 C/16 -> C, with biases."""
    return sum(n * (c * (c // 16) + c // 16 + (c // 16) * c + c) for c, n in widths_and_blocks)


def test_registry_and_configs():
    assert set(ALL) <= set(list_models())
    for name in ALL:
        cfg = get_model_config(name)
        assert "Squeeze-and-Excitation" in cfg.paper and cfg.year == 2018 and cfg.input_size == (3, 224, 224)
    assert get_model_config("seresnet50_v1").min_input_size == 35
    assert get_model_config("seresnet50").extra["reported"]["top1"] == pytest.approx(76.71)


@pytest.mark.parametrize("name", TIMM_SAME)
def test_counts_equal_timm(name, meta_count):
    assert meta_count(name) == meta_count(lambda: timm.create_model(name))


def test_counts_of_the_paper_and_by_hand(meta_count):
    assert meta_count("seresnet50") == meta_count("seresnet50_v1") == 28_088_024  # 28.1 M
    assert meta_count("seresnet50_v1") == meta_count(lambda: timm.create_model("legacy_seresnet50"))
    bottleneck = [(256, 3), (512, 4), (1024, 6), (2048, 3)]
    assert meta_count("seresnet50") == meta_count("resnet50") + se_params(bottleneck)
    basic18 = [(64, 2), (128, 2), (256, 2), (512, 2)]
    assert meta_count("seresnet18") == meta_count("resnet18") + se_params(basic18)
    # timm rounds the squeeze width up to a multiple of 8 (8 where C/16 = 4 at 64 channels)
    timm18 = meta_count(lambda: timm.create_model("seresnet18"))
    assert timm18 - meta_count("seresnet18") == 2 * (2 * 64 * (8 - 4) + (8 - 4))


def test_se_rescales_the_branch_before_the_addition():
    torch.manual_seed(0)
    m = create_model("seresnet50").eval()
    blk = m.layer2[0]
    assert isinstance(blk.se, SqueezeExcite) and blk.se.rd_channels == 512 // 16
    x = torch.randn(2, 256, 9, 9)
    with torch.no_grad():
        out = blk.relu(blk.bn1(blk.conv1(x)))
        out = blk.relu(blk.bn2(blk.conv2(out)))
        out = blk.bn3(blk.conv3(out))
        gate = torch.sigmoid(blk.se.fc2(torch.relu(blk.se.fc1(out.mean((2, 3), keepdim=True)))))
        assert torch.allclose(blk(x), torch.relu(out * gate + blk.downsample(x)), atol=1e-5)


def test_v1_is_the_authors_layout():
    with torch.device("meta"):
        v1, v15 = create_model("seresnet50_v1"), create_model("seresnet50")
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    assert v1.maxpool.ceil_mode and v1.maxpool.padding == 0 and v15.maxpool.padding == 1


def _convs(name: str) -> float:
    return sum(r.flops for r in analyze(name).layers if r.type in ("conv", "linear")) / 2


def test_macs_close_to_the_paper():
    """Table 2: ResNet-50 3.86 G, SE-ResNet-50 3.87 G (the authors' layout, stride in the 1x1)."""
    base, se = _convs("resnet50_v1"), _convs("seresnet50_v1")
    bottleneck = [(256, 3), (512, 4), (1024, 6), (2048, 3)]
    assert se - base == sum(n * 2 * c * (c // 16) for c, n in bottleneck)  # the SE FCs: 2.5 M
    assert round(base / 1e9, 2) == 3.86
    # the paper counts the whole SE block; its pooling and its scaling touch every value once
    rows = [r for r in analyze("seresnet50_v1").layers if ".se." in r.name and r.type in ("pool", "mul")]
    assert round((se + sum(r.flops for r in rows)) / 1e9, 2) == 3.87
    assert abs(se / 3.87e9 - 1) < 0.005
    assert get_model_config("seresnet50_v1").extra["macs"]["value"] == 3.87e9


def test_analyzer_shows_the_se_rows():
    folded = {r.name: r for r in analyze("seresnet50", depth=2).layers}
    assert folded["layer3.1"].detail == "residual stage 3, block 1, se"
    se = {r.name: r for r in analyze("seresnet50", depth=3).layers}["layer3.1.se"]
    assert se.type == "se" and se.detail == "squeeze 64"


@pytest.mark.parametrize("name", ["seresnet50", "seresnext50_32x4d"])
def test_loads_timm_files(name, library_roundtrip):
    library_roundtrip(timm.create_model(name), name, 40)


@pytest.mark.parametrize("size", [35, 47])
def test_loads_timm_legacy_seresnet50(size, library_roundtrip):
    """Odd sides where a padded pool and Caffe's ceil-mode pool differ: the logits still match."""
    library_roundtrip(timm.create_model("legacy_seresnet50"), "seresnet50_v1", size)
