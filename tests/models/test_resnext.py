"""ResNeXt (Xie et al. CVPR 2017): grouped bottlenecks, counts, MACs, torchvision's files."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision

from cnnzoo import create_model, get_model_config, list_models
from cnnzoo.analysis import analyze
from cnnzoo.errors import ConfigError

TV = ["resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d"]
ALL = TV + ["resnext101_32x4d", "resnext29_8x64d", "resnext29_16x64d"]


def test_registry_and_configs():
    assert set(ALL) <= set(list_models())
    for name in ALL:
        cfg = get_model_config(name)
        assert "Aggregated Residual" in cfg.paper and cfg.year == 2017
        assert cfg.input_size == ((3, 32, 32) if name.startswith("resnext29") else (3, 224, 224))
    assert get_model_config("resnext29_8x64d").extra["reported"] == {
        "dataset": "cifar10+",
        "error": 3.65,
        "source": "Xie et al. 2017, Table 7",
    }
    assert get_model_config("resnext50_32x4d").extra["reported"]["top1"] == pytest.approx(77.8)


@pytest.mark.parametrize("name", TV)
def test_counts_equal_torchvision(name, meta_count):
    assert meta_count(name) == meta_count(lambda: getattr(torchvision.models, name)())


def test_counts_of_the_paper(meta_count):
    assert meta_count("resnext101_32x4d") == meta_count(lambda: timm.create_model("resnext101_32x4d"))
    assert round(meta_count("resnext50_32x4d") / 1e6, 1) == 25.0
    assert round(meta_count("resnext29_8x64d") / 1e6, 1) == 34.4
    # Table 7's 68.1 M counts conv and fc weights: BN's γ/β (0.10 M) make it 68.16 M
    assert round(meta_count("resnext29_16x64d", weights_only=True) / 1e6, 1) == 68.1
    assert meta_count("resnext29_16x64d") == 68_155_210


def test_cifar_resnext29_by_hand(meta_count):
    """Stem 3x3x64 + BN; 3 stages x 3 bottlenecks (C·d inner width, 4·planes out); fc 1024 -> 10."""

    def by_hand(c_card: int) -> int:
        total, c = 9 * 3 * 64 + 2 * 64, 64
        for planes in (64, 128, 256):
            w, out = planes * c_card, 4 * planes  # d = planes · 64 / 64
            for j in range(3):
                total += c * w + 2 * w + 9 * w * (w // c_card) + 2 * w + w * out + 2 * out
                if j == 0:
                    total += c * out + 2 * out  # projection + BN
                c = out
        return total + 1024 * 10 + 10

    assert meta_count("resnext29_8x64d") == by_hand(8) == 34_426_698
    assert meta_count("resnext29_16x64d") == by_hand(16)


def test_grouped_convolutions():
    with torch.device("meta"):
        m, c = create_model("resnext50_32x4d"), create_model("resnext29_16x64d")
    assert [getattr(m, f"layer{i}")[0].conv2.groups for i in (1, 2, 3, 4)] == [32] * 4
    assert [getattr(m, f"layer{i}")[0].width for i in (1, 2, 3, 4)] == [128, 256, 512, 1024]
    assert m.layer2[0].conv2.stride == (2, 2)  # the stride in the grouped 3x3
    assert [getattr(c, f"layer{i}")[0].width for i in (1, 2, 3)] == [1024, 2048, 4096]
    assert [f.channels for f in c.feature_info] == [256, 512, 1024]
    assert c.conv1.kernel_size == (3, 3) and c.bn1 is not None  # 3x3 conv of 64 with BN-ReLU


@pytest.mark.parametrize("name", TV)
def test_macs_at_224_equal_torchvision(name):
    ops = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
    macs = sum(r.flops for r in analyze(name).layers if r.type in ("conv", "linear")) / 2
    assert round(macs / 1e9, 3) == pytest.approx(ops, abs=1e-9)
    assert get_model_config(name).extra["macs"]["value"] == pytest.approx(ops * 1e9)
    if name == "resnext50_32x4d":
        assert round(macs / 1e9, 1) == 4.2  # Table 1


def test_analyzer_counts_a_grouped_conv_by_its_groups():
    rows = {r.name: r for r in analyze("resnext50_32x4d").layers}
    conv2 = rows["layer1.0.conv2"]  # 128 -> 128 in 32 groups of 4, 3x3, on 56x56
    assert conv2.flops == 2 * 56 * 56 * 128 * 4 * 9 and conv2.params == 128 * 4 * 9
    assert conv2.receptive_field == 19  # 11 after the stem's pool, + 2 · 4 px
    folded = {r.name: r for r in analyze("resnext50_32x4d", depth=2).layers}
    assert folded["layer1.0"].detail == "residual stage 1, block 0, cardinality 32"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(base_width=6, widths=(16, 32, 64)), "fractional per-group width"),
        (dict(groups=0), "groups"),
        (dict(groups=2.5), "groups"),
        (dict(base_width=True), "base_width"),
    ],
)
def test_cardinality_or_width_that_does_not_divide(kwargs, match):
    with pytest.raises(ConfigError, match=match) as e:
        create_model("resnext29_8x64d", **kwargs)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="takes no cardinality"):
        create_model("resnet18", groups=32, base_width=4)


def test_loads_torchvision_resnext50(library_roundtrip):
    library_roundtrip(torchvision.models.resnext50_32x4d(), "resnext50_32x4d", 40)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnext101_32x8d", "resnext101_64x4d"])
def test_loads_torchvision_resnext101(name, library_roundtrip):
    library_roundtrip(getattr(torchvision.models, name)(), name, 40)
