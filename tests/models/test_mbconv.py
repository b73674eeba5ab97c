"""The MBConv lineage's one builder (models/_mbconv.py): rows, scaling, drop connect, bad input, and
the torchvision / timm checkpoints of every family loading with the libraries' logits.

The library tests build the *library's* network with random weights and random BN statistics,
save its state_dict, load the file with ``create_model(NAME, weights=FILE)`` and compare eval
logits at a small input. B6 and B7 are checked on the meta device only (their keys and shapes, by
``tests/test_weights.py::test_every_key_map_fits_its_library_network``); B5 runs for real.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torchvision
from torch import nn

import cnnzoo
from cnnzoo import weights as W
from cnnzoo.errors import ConfigError
from cnnzoo.layers import Conv2dSame, DepthwiseSeparableConv, InvertedResidual, UnknownActivationError
from cnnzoo.models._mbconv import (
    BlockRow,
    MBConvNet,
    MBConvTable,
    check_multiplier,
    drop_path_rates,
    scale_depth,
    scale_width,
)
from cnnzoo.models.base import InputShapeError

FAMILIES = [
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mnasnet_a1",
    "mnasnet_b1",
    "efficientnet_b0",
]


# --- the builder --------------------------------------------------------------------------------


def test_width_rounding_is_the_tensorflow_rule():
    # make_divisible: nearest multiple of 8, at least 8, never more than 10% below c·w
    assert [scale_width(c, 0.35) for c in (32, 16, 24, 320)] == [16, 8, 8, 112]
    assert [scale_width(c, 1.1) for c in (32, 40, 112, 192)] == [32, 48, 120, 208]
    assert scale_width(1280, 1.4) == 1792
    # TF-slim MobileNet v1: int(c·α), at least 8
    assert [scale_width(c, 0.75, "floor") for c in (32, 64, 1024)] == [24, 48, 768]
    assert scale_width(32, 0.1, "floor") == 8


def test_depth_rounds_up():
    assert [scale_depth(n, 1.1) for n in (1, 2, 3, 4)] == [2, 3, 4, 5]
    assert [scale_depth(n, 3.1) for n in (1, 2, 3, 4)] == [4, 7, 10, 13]
    assert scale_depth(3, 1.0) == 3


def test_a_table_row_is_the_papers_row():
    """Two stages of three rows build the blocks the rows say, with the strides and widths they say."""
    table = MBConvTable(
        stem=16,
        stages=(
            (BlockRow("ir", 1, 3, 1, 1, 8),),  # t = 1: the DS block with a linear output
            (BlockRow("ir", 2, 5, 2, 6, 16, se=0.25), BlockRow("ds", 1, 3, 2, 1, 24)),
        ),
        act="relu6",
        head=32,
    )
    m = MBConvNet(table, num_classes=5)
    b0, b1, b2, b3 = m.blocks[0][0], m.blocks[1][0], m.blocks[1][1], m.blocks[1][2]
    assert isinstance(b0, DepthwiseSeparableConv) and b0.act2 is None and b0.se is None
    assert isinstance(b1, InvertedResidual) and (b1.in_channels, b1.mid_channels, b1.out_channels) == (
        8,
        48,
        16,
    )
    assert b1.kernel_size == 5 and b1.stride == 2 and b1.se.rd_channels == 2 and not b1.has_skip
    assert b2.stride == 1 and b2.has_skip and b2.se.rd_channels == 4  # a quarter of the *input* width
    assert isinstance(b3, DepthwiseSeparableConv) and b3.act2 is not None and not b3.has_skip
    assert [f.reduction for f in m.feature_info] == [2, 4, 8]
    assert m.feature_info[-1].module == "conv_head" and m.num_features == 32
    assert m(torch.randn(2, 3, 33, 33)).shape == (2, 5)


def test_drop_connect_rises_linearly_per_sample_and_is_the_identity_at_eval():
    m = cnnzoo.create_model("efficientnet_b0")
    blocks = [b for stage in m.blocks for b in stage]
    rates = drop_path_rates(len(blocks), 0.2)
    assert len(blocks) == 16 and rates[0] == 0 and math.isclose(rates[-1], 0.2 * 15 / 16)
    for block, rate in zip(blocks, rates, strict=True):
        if block.has_skip and rate > 0:
            dp = block.drop_path
            assert math.isclose(dp.drop_prob, rate) and (dp.mode, dp.scale) == ("sample", "train")
        else:
            assert block.drop_path is None
    x = torch.randn(4, 3, 33, 33)
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x), m(x))  # nothing random at eval
        ref = cnnzoo.create_model("efficientnet_b0", drop_path_rate=0.0).eval()
        ref.load_state_dict(m.state_dict())
        torch.testing.assert_close(m(x), ref(x), rtol=0, atol=0)


def test_bn_eps_and_padding_follow_the_network_matched(meta_model):
    for name, eps in [("efficientnet_b0", 1e-5), ("efficientnet_b4", 1e-5), ("efficientnet_b5", 1e-3),
                      ("efficientnet_b7", 1e-3), ("tf_efficientnet_b0", 1e-3), ("tf_efficientnet_b4", 1e-3),
                      ("mobilenet_v3_small", 1e-3), ("mobilenet_v2", 1e-5), ("mnasnet_b1", 1e-5)]:  # fmt: skip
        bns = [m for m in meta_model(name).modules() if isinstance(m, nn.BatchNorm2d)]
        assert bns and {bn.eps for bn in bns} == {eps}, name
    tf = meta_model("tf_efficientnet_b0")
    same = [n for n, c in tf.named_modules() if isinstance(c, Conv2dSame)]
    strided = [n for n, c in tf.named_modules() if isinstance(c, nn.Conv2d) and c.stride == (2, 2)]
    assert same == strided and len(same) == 5  # the stem and the four stride-2 depthwise convs
    assert not any(isinstance(c, Conv2dSame) for c in meta_model("efficientnet_b0").modules())


def test_tensorflow_padding_changes_the_outputs_where_it_is_asymmetric():
    """The same weights in the two layouts: at 64 every stride-2 "SAME" pad is 0 before and 1 after
    (64 → 32 → ... all even), so the features differ; at 65 (65 → 33 → 17 → 9 → 5) every one is
    symmetric, and the two layouts agree."""
    torch.manual_seed(0)
    tf = _randomize(cnnzoo.create_model("tf_efficientnet_b0"))
    sym = cnnzoo.create_model("tf_efficientnet_b0", padding=None).eval()
    sym.load_state_dict(tf.state_dict())
    x64, x65 = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 65, 65)
    with torch.no_grad():
        assert (tf.forward_features(x64) - sym.forward_features(x64)).abs().max() > 1e-4  # rounding: 1e-7
        torch.testing.assert_close(tf.forward_features(x65), sym.forward_features(x65))
        assert tf.forward_features(x64).shape[-1] == 2 and tf.forward_features(x65).shape[-1] == 3


# --- bad input: one clear line each ---------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("width", [0, -0.5, "1.0", None, True, float("nan"), float("inf")])
def test_a_bad_width_multiplier_is_one_clear_line(name, width, meta_model):
    with pytest.raises(ConfigError, match=r"width must be a number > 0") as e:
        meta_model(name, width=width)
    assert isinstance(e.value, ValueError) and "\n" not in str(e.value) and "width=0.5" in str(e.value)


def test_a_bad_depth_multiplier_or_rate_is_one_clear_line(meta_model):
    for kwargs, text in (({"depth": 0}, "depth must be a number > 0"), ({"depth": "2"}, "depth must be"),
                         ({"dropout": 1.0}, "dropout must be a probability"),
                         ({"drop_path_rate": -0.1}, "drop_path_rate must be a probability"),
                         ({"padding": "valid"}, "padding must be None")):  # fmt: skip
        with pytest.raises(ConfigError, match=text) as e:
            meta_model("efficientnet_b0", **kwargs)
        assert "\n" not in str(e.value)
    assert check_multiplier("width", 2) == 2.0


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "efficientnet_b0"])
def test_an_unknown_activation_is_one_clear_line(name, meta_model):
    with pytest.raises(
        UnknownActivationError, match=r"unknown activation 'relu7'; use one of relu, relu6"
    ) as e:
        meta_model(name, act="relu7")
    assert isinstance(e.value, ConfigError) and isinstance(e.value, ValueError) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v3_small", "mnasnet_a1", "tf_efficientnet_b0"])
def test_an_input_below_the_minimum_is_one_clear_line_and_the_minimum_trains(name):
    m = cnnzoo.create_model(name, num_classes=4)
    assert m.min_input_size == m.default_cfg.min_input_size == 33
    with pytest.raises(InputShapeError, match="needs inputs of at least 33x33 pixels, got 32x32") as e:
        m(torch.randn(2, 3, 32, 32))
    assert "\n" not in str(e.value)
    m.train()
    loss = nn.functional.cross_entropy(m(torch.randn(2, 3, 33, 33)), torch.tensor([0, 3]))
    loss.backward()
    assert torch.isfinite(loss)


# --- the analyzer: depthwise costs ---------------------------------------------------------------


def _conv_linear_macs(model: nn.Module | str, side: int) -> int:
    r = cnnzoo.analyze(model, input_size=(3, side, side))
    return sum(row.flops for row in r.layers if row.type in ("conv", "linear")) // 2


def test_depthwise_separable_macs_are_the_papers_equation_5(macs):
    """MobileNet v1's MACs by the paper's Eq. 5, D_K·D_K·M·D_F² + M·N·D_F² per separable conv, from
    Table 1 by hand: the analyzer counts a depthwise 3×3 conv as 9·M·D_F², not 9·M·M·D_F²."""
    ds = [(32, 64, 112), (64, 128, 56), (128, 128, 56), (128, 256, 28), (256, 256, 28), (256, 512, 14),
          *[(512, 512, 14)] * 5, (512, 1024, 7), (1024, 1024, 7)]  # fmt: skip
    macs = 112 * 112 * 3 * 3 * 3 * 32 + sum(f * f * (9 * m + m * n) for m, n, f in ds) + 1024 * 1000
    assert macs == _conv_linear_macs("mobilenet_v1", 224) == 568_740_352  # Table 4: 569 M
    dw = next(r for r in cnnzoo.analyze("mobilenet_v1").layers if r.name == "blocks.0.0.conv_dw")
    assert dw.flops == 2 * 112 * 112 * 32 * 9 and dw.params == 32 * 9


# --- torchvision and timm checkpoints ------------------------------------------------------------


def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN affine parameters, and running statistics that are the real ones of a random batch.

    At their init these networks' activations vanish in eval mode (a depthwise conv's fan-out init
    ignores its groups), so random running statistics alone would leave every early layer's mistake
    invisible in the logits. A train-mode pass with momentum 1 sets each BN's statistics to its
    input's (variances at least 0.05), and eval then keeps every layer's output near unit scale.
    """
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
            m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            m.momentum = 1.0
        model.train()(torch.randn(8, 3, 64, 64, generator=g))
    for m in bns:  # a dead channel's variance near 0 would make the eval outputs hang on eps alone
        m.momentum = 0.1
        m.running_var.clamp_(min=0.05)
    return model.eval()


def _library(lib: str, name: str) -> nn.Module:
    torch.manual_seed(0)
    if lib == "torchvision":
        return _randomize(torchvision.models.get_model(name, weights=None))
    import timm

    return _randomize(timm.create_model(name, pretrained=False))


def _logits(model: nn.Module, side: int) -> torch.Tensor:
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model.eval()(x)


LIBRARY_CASES = [
    # (library, its name, cnnzoo name, cnnzoo kwargs); all at 64×64 (even maps: TF's asymmetric pads)
    ("torchvision", "mobilenet_v2", "mobilenet_v2", {}),
    ("torchvision", "mobilenet_v3_large", "mobilenet_v3_large", {}),
    ("torchvision", "mobilenet_v3_small", "mobilenet_v3_small", {}),
    *[
        ("torchvision", f"mnasnet{w}", f"mnasnet_b1{s}", {})
        for w, s in (("0_5", "_050"), ("0_75", "_075"), ("1_0", ""), ("1_3", "_130"))
    ],  # fmt: skip
    *[("torchvision", f"efficientnet_b{i}", f"efficientnet_b{i}", {}) for i in range(6)],
    ("timm", "mobilenetv1_100", "mobilenet_v1", {"act": "relu6"}),
    ("timm", "semnasnet_100", "mnasnet_a1", {}),
    *[("timm", f"tf_efficientnet_b{i}", f"tf_efficientnet_b{i}", {}) for i in range(6)],
]


@pytest.mark.parametrize("lib, lib_name, name, kwargs", LIBRARY_CASES, ids=[c[1] for c in LIBRARY_CASES])
def test_library_checkpoint_loads_with_the_same_logits(tmp_path, lib, lib_name, name, kwargs):
    ref = _library(lib, lib_name)
    expected = _logits(ref, 64)
    path = tmp_path / f"{lib_name}.pth"
    torch.save(ref.state_dict(), path)
    del ref
    with warnings.catch_warnings():
        warnings.simplefilter("error", W.WeightsWarning)  # a full fit loads without a notice
        model = cnnzoo.create_model(name, weights=path, **kwargs)
    torch.testing.assert_close(_logits(model, 64), expected, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # unit-scale features, so that every layer shows in the logits
        assert model.forward_features(torch.randn(2, 3, 64, 64)).std() > 0.05


def test_timm_relu6_weights_in_the_relu_mobilenet_v1_load_with_one_notice(tmp_path):
    path = tmp_path / "mobilenetv1_100.pth"
    ref = _library("timm", "mobilenetv1_100")
    torch.save(ref.state_dict(), path)
    with pytest.warns(W.WeightsWarning) as record:
        model = cnnzoo.create_model("mobilenet_v1", weights=path)
    (text,) = [str(w.message) for w in record]
    assert "ReLU6" in text and "act='relu6'" in text and "\n" not in text
    assert not torch.allclose(_logits(model, 64), _logits(ref, 64))  # the notice is true


def test_a_checkpoint_with_another_class_count_loads_all_but_the_head(tmp_path):
    ref = _randomize(torchvision.models.mobilenet_v3_small(num_classes=10))
    path = tmp_path / "v3s10.pth"
    torch.save(ref.state_dict(), path)
    with pytest.warns(W.WeightsWarning, match="classifier has 10 classes"):
        model = cnnzoo.create_model("mobilenet_v3_small", num_classes=7, weights=path)
    assert model.classifier.out_features == 7
    torch.testing.assert_close(model.head_fc.weight, ref.classifier[0].weight)
    plain = cnnzoo.create_model("mobilenet_v3_small", weights=path)  # the class count from the file
    torch.testing.assert_close(_logits(plain, 64), _logits(ref, 64), rtol=1e-5, atol=1e-6)


# --- learning -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_mobilenet_v3_small_learns_fashion_mnist(fashion_fit):
    """Real data: 60 Adam steps (batch 32, 1,920 images at the family's 64×64) take MobileNet v3 Small
    well above chance (10%) on 1,000 test images, once the BN statistics are re-estimated for the
    final weights (a few dozen steps outrun BN's momentum 0.01). benchmarks/mbconv_zoo.py runs every
    variant."""
    torch.manual_seed(0)
    steps, cl = 60, torch.channels_last
    model = cnnzoo.create_model("mobilenet_v3_small", in_chans=1, num_classes=10).to(memory_format=cl)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    acc = fashion_fit(
        model, opt, steps=steps, size=64, mode="resize", decay=False, memory_format=cl, bn_batches=20
    )
    print(f"mobilenet_v3_small on Fashion-MNIST: {steps} steps, test acc {acc:.3f}")
    assert acc > 0.4  # chance is 0.1; 0.67 measured
