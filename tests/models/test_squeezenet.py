"""SqueezeNet (Iandola et al. 2016): Table 1's counts and maps, torchvision's files, the bypasses."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

from cnnzoo import analyze, create_model, get_model_config
from cnnzoo.errors import ConfigError
from cnnzoo.models.base import InputShapeError
from cnnzoo.models.squeezenet import Fire

NAMES = ["squeezenet1_0", "squeezenet1_1", "squeezenet1_0_bypass", "squeezenet1_0_complex_bypass"]


def _meta(name, **kw):
    with torch.device("meta"):
        return create_model(name, **kw)


def _fire_params(cin: int, s: int, e1: int, e3: int) -> int:
    return (cin * s + s) + (s * e1 + e1) + (9 * s * e3 + e3)


def test_squeezenet1_0_has_table1s_parameter_count():
    """Table 1's column of weights, summed by hand: 1,248,424 (the paper's 4.8 MB at 32 bits)."""
    fires = [(96, 16, 64, 64), (128, 16, 64, 64), (128, 32, 128, 128), (256, 32, 128, 128),
             (256, 48, 192, 192), (384, 48, 192, 192), (384, 64, 256, 256), (512, 64, 256, 256)]  # fmt: skip
    by_hand = (3 * 49 * 96 + 96) + sum(_fire_params(*f) for f in fires) + (512 * 1000 + 1000)
    assert by_hand == 1_248_424
    assert _meta("squeezenet1_0").num_params() == by_hand == _meta("squeezenet1_0_bypass").num_params()
    assert by_hand * 4 / 2**20 == pytest.approx(4.8, abs=0.05)


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_counts_and_macs_equal_torchvisions(name, macs):
    meta = torchvision.models.get_model_weights(name).DEFAULT.meta
    assert _meta(name).num_params() == meta["num_params"]
    assert round(macs(name) / 1e9, 3) == meta["_ops"]  # 0.819 and 0.349 GMACs at 224
    assert get_model_config(name).extra["macs"]["value"] == meta["_ops"] * 1e9


def test_complex_bypass_adds_the_four_1x1_convs():
    extra = sum(cin * cout + cout for cin, cout in ((96, 128), (128, 256), (256, 384), (384, 512)))
    assert _meta("squeezenet1_0_complex_bypass").num_params() == 1_248_424 + extra == 1_589_672
    m = _meta("squeezenet1_0_complex_bypass")
    kinds = {f"fire{i}": m.get_submodule(f"fire{i}").kind for i in range(2, 10)}
    assert kinds == {f"fire{i}": "simple" if i % 2 else "complex" for i in range(2, 10)}
    assert all(isinstance(m.get_submodule(f"fire{i}").bypass, nn.Conv2d) for i in (2, 4, 6, 8))


def test_table1_map_sizes_at_the_authors_227_crop():
    """Table 1's output sizes (111, 55, 27, 13) follow from Caffe's 227 crop and ceil-mode pooling."""
    rows = {
        r.name: r.output_shape for r in analyze("squeezenet1_0", input_size=(3, 227, 227), depth=1).layers
    }
    assert rows["conv1"] == (96, 111, 111) and rows["maxpool1"] == (96, 55, 55)
    assert rows["fire4"] == (256, 55, 55) and rows["maxpool4"] == (256, 27, 27)
    assert rows["fire8"] == (512, 27, 27) and rows["maxpool8"] == (512, 13, 13)
    assert rows["fire9"] == (512, 13, 13) and rows["conv10"] == (1000, 13, 13)
    assert [r.detail for r in analyze("squeezenet1_0", depth=1).layers if r.name == "fire2"] == [
        "s1×1 16, e1×1 64, e3×3 64"
    ]


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_torchvision_file_loads_with_the_same_logits(library_roundtrip, name):
    torch.manual_seed(0)
    library_roundtrip(torchvision.models.get_model(name, weights=None), name, 64)


def test_simple_bypass_adds_the_input_and_complex_adds_a_1x1_conv():
    torch.manual_seed(0)
    plain = create_model("squeezenet1_0").eval()
    bypass = create_model("squeezenet1_0_bypass").eval()
    bypass.load_state_dict(plain.state_dict())  # the simple bypass holds no weights
    x = torch.randn(2, 128, 9, 9)
    with torch.no_grad():
        assert torch.equal(bypass.fire3(x), plain.fire3(x) + x)
        z = torch.randn(2, 96, 9, 9)
        assert torch.equal(bypass.fire2(z), plain.fire2(z))  # no bypass where the widths differ
    fire = Fire(96, 16, 64, 64, "complex").eval()
    y = torch.randn(1, 96, 5, 5)
    with torch.no_grad():
        expected = torch.cat([fire.expand1x1(fire.squeeze(y)), fire.expand3x3(fire.squeeze(y))], 1)
        assert torch.allclose(fire(y), expected + fire.bypass(y))


def test_a_simple_bypass_needs_equal_widths():
    with pytest.raises(ConfigError, match="bypass='complex'") as e:
        Fire(96, 16, 64, 64, "simple")
    assert "\n" not in str(e.value) and isinstance(e.value, ValueError)


@pytest.mark.parametrize("init, gain", [("he", 6), ("caffe", 3)])
def test_inits_he_by_default_or_the_authors_caffe_fillers(init, gain):
    torch.manual_seed(0)
    m = create_model("squeezenet1_0", **({} if init == "he" else {"init": init}))
    w = m.fire9.expand3x3.conv.weight  # fan-in 64 * 9
    bound = math.sqrt(gain / (64 * 9))
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound  # U(±√(gain / fan_in))
    assert m.conv10.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert all(not c.bias.any() for c in m.modules() if isinstance(c, nn.Conv2d))
    with pytest.raises(ConfigError, match="init must be one of he, caffe"):
        create_model("squeezenet1_0", init="xavier")


@pytest.mark.parametrize("name, side", [("squeezenet1_0", 21), ("squeezenet1_1", 17)])
def test_minimum_input_trains_and_one_pixel_less_is_refused(name, side):
    m = create_model(name, num_classes=10).train()
    assert m.default_cfg.min_input_size == side
    m(torch.randn(2, 3, side, side)).sum().backward()
    with pytest.raises(InputShapeError, match=f"at least {side}x{side}"):
        m(torch.randn(1, 3, side - 1, side - 1))


def test_pre_logits_are_fire9s_pooled_features():
    m = create_model("squeezenet1_1", num_classes=10).eval()
    feats = m.forward_features(torch.randn(2, 3, 64, 64))
    assert m.forward_head(feats, pre_logits=True).shape == (2, 512)
    assert torch.allclose(m.forward_head(feats, pre_logits=True), feats.mean((2, 3)), atol=1e-6)


@pytest.mark.slow
def test_squeezenet1_1_learns_fashion_mnist(fashion_short_run):
    """150 steps of 32 images at 64×64 (lr 0.005: see the init note): 43 % measured, chance 10 %."""
    assert fashion_short_run("squeezenet1_1", steps=150, lr=0.005) > 0.3
