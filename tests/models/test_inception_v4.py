"""Inception-v4 and Inception-ResNet (Szegedy et al. AAAI 2017): the figures' widths and grids, the
residual-width fixes, residual scaling, timm's files (the logits match), costs against the paper's
claims."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnzoo.errors import ConfigError
from cnnzoo.layers.inception import InceptionBlock
from cnnzoo.models.base import InputShapeError
from cnnzoo.registry import create_model, get_model_config

NAMES = ["inception_v4", "inception_resnet_v1", "inception_resnet_v2", "inception_resnet_v2_tf"]


def cbn(cin: int, cout: int, kh: int = 1, kw: int | None = None) -> int:
    """A bias-free conv and its BN's γ and β."""
    return kh * (kh if kw is None else kw) * cin * cout + 2 * cout


def proj(cat: int, width: int) -> int:
    """An Inception-ResNet block's linear 1x1 projection, with its bias."""
    return cat * width + width


def fig3_stem() -> int:
    return (
        cbn(3, 32, 3) + cbn(32, 32, 3) + cbn(32, 64, 3) + cbn(64, 96, 3)
        + cbn(160, 64) + cbn(64, 96, 3) + cbn(160, 64) + cbn(64, 64, 1, 7) + cbn(64, 64, 7, 1) + cbn(64, 96, 3)
        + cbn(192, 192, 3)
    )  # fmt: skip


def ir_v1_count(num_classes: int = 1000) -> int:
    """Figs. 10-15 (5/10/5 blocks), independently of the model file."""
    stem = cbn(3, 32, 3) + cbn(32, 32, 3) + cbn(32, 64, 3) + cbn(64, 80) + cbn(80, 192, 3) + cbn(192, 256, 3)
    a = cbn(256, 32) + cbn(256, 32) + cbn(32, 32, 3) + cbn(256, 32) + 2 * cbn(32, 32, 3) + proj(96, 256)
    red_a = cbn(256, 384, 3) + cbn(256, 192) + cbn(192, 192, 3) + cbn(192, 256, 3)  # k, l, m, n
    b = cbn(896, 128) + cbn(896, 128) + cbn(128, 128, 1, 7) + cbn(128, 128, 7, 1) + proj(256, 896)
    red_b = (
        cbn(896, 256)
        + cbn(256, 384, 3)
        + cbn(896, 256)
        + cbn(256, 256, 3)
        + cbn(896, 256)
        + 2 * cbn(256, 256, 3)
    )
    c = cbn(1792, 192) + cbn(1792, 192) + cbn(192, 192, 1, 3) + cbn(192, 192, 3, 1) + proj(384, 1792)
    return stem + 5 * a + red_a + 10 * b + red_b + 5 * c + 1792 * num_classes + num_classes


def ir_v2_count(num_classes: int = 1000) -> int:
    """Figs. 3 and 15-19 (5/10/5 blocks) with the projections at 1,152 and 2,144 (not 1,154 and 2,048)."""
    a = (
        cbn(384, 32)
        + cbn(384, 32)
        + cbn(32, 32, 3)
        + cbn(384, 32)
        + cbn(32, 48, 3)
        + cbn(48, 64, 3)
        + proj(128, 384)
    )
    red_a = cbn(384, 384, 3) + cbn(384, 256) + cbn(256, 256, 3) + cbn(256, 384, 3)
    b = cbn(1152, 192) + cbn(1152, 128) + cbn(128, 160, 1, 7) + cbn(160, 192, 7, 1) + proj(384, 1152)
    red_b = cbn(1152, 256) + cbn(256, 384, 3) + cbn(1152, 256) + cbn(256, 288, 3) + cbn(1152, 256)
    red_b += cbn(256, 288, 3) + cbn(288, 320, 3)
    c = cbn(2144, 192) + cbn(2144, 192) + cbn(192, 224, 1, 3) + cbn(224, 256, 3, 1) + proj(448, 2144)
    return fig3_stem() + 5 * a + red_a + 10 * b + red_b + 5 * c + 2144 * num_classes + num_classes


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _timm(name: str, device: str = "meta") -> nn.Module:
    with torch.device(device):
        return timm.create_model(name, pretrained=False)


# -- counts and costs --------------------------------------------------------------------------------


def test_counts_are_timms_where_timm_has_the_network(meta_model):
    assert _count(meta_model("inception_v4")) == _count(_timm("inception_v4")) == 42_679_816
    assert _count(meta_model("inception_resnet_v2_tf")) == _count(_timm("inception_resnet_v2")) == 55_843_464


def test_paper_counts_from_the_figures(meta_model):
    assert _count(meta_model("inception_resnet_v1")) == ir_v1_count()
    assert _count(meta_model("inception_resnet_v2")) == ir_v2_count()
    assert _count(meta_model("inception_resnet_v2", num_classes=10)) == ir_v2_count(10)


@pytest.mark.parametrize(
    ("ours", "lib"), [("inception_v4", "inception_v4"), ("inception_resnet_v2_tf", "inception_resnet_v2")]
)
def test_macs_equal_timms_networks(ours, lib, macs):
    net = _timm(lib).eval()
    with FlopCounterMode(display=False) as counter:
        net(torch.empty(1, 3, 299, 299, device="meta"))
    assert macs(ours) * 2 == counter.get_total_flops()


def test_costs_against_the_papers_claims(macs):
    """§3.1: Inception-ResNet-v1 costs about as much as Inception-v3, v2 as much as Inception-v4."""
    v3, v4 = macs("inception_v3_tv"), macs("inception_v4")
    assert macs("inception_resnet_v1") == pytest.approx(v3, rel=0.10)
    assert macs("inception_resnet_v2_tf") == pytest.approx(v4, rel=0.10)
    # with Fig. 15's 5/10/5 blocks v2 is a quarter cheaper than v4: the release's 10/20/10 match the text
    assert 0.70 * v4 < macs("inception_resnet_v2") < 0.80 * v4


# -- the figures -------------------------------------------------------------------------------------


def _shapes(m: nn.Module) -> dict[str, tuple[int, ...]]:
    m = m.eval()
    seen = {}
    for n, mod in m.named_children():
        mod.register_forward_hook(lambda mod, a, o, n=n: seen.__setitem__(n, tuple(o.shape[1:])))
    m(torch.empty(1, 3, 299, 299, device="meta"))
    return seen


def test_inception_v4_grids_and_widths_of_fig9(meta_model):
    s = _shapes(meta_model("inception_v4"))
    assert s["conv3"] == (64, 147, 147) and s["mixed_3a"] == (160, 73, 73) and s["mixed_4a"] == (192, 71, 71)
    assert s["mixed_5a"] == (384, 35, 35)  # Fig. 3's output: its last 3x3 conv has stride 2
    assert s["inception_a"] == (384, 35, 35) and s["reduction_a"] == (1024, 17, 17)
    assert s["inception_b"] == (1024, 17, 17) and s["reduction_b"] == (1536, 8, 8)
    assert s["inception_c"] == (1536, 8, 8)
    m = meta_model("inception_v4")
    assert (len(m.inception_a), len(m.inception_b), len(m.inception_c)) == (4, 7, 3)
    assert m.dropout.p == 0.2


@pytest.mark.parametrize(
    ("name", "widths", "blocks"),
    [
        ("inception_resnet_v1", (256, 896, 1792), (5, 10, 5)),
        ("inception_resnet_v2", (384, 1152, 2144), (5, 10, 5)),
        ("inception_resnet_v2_tf", (320, 1088, 2080), (10, 20, 10)),
    ],
)
def test_inception_resnet_widths_grids_and_blocks(name, widths, blocks, meta_model):
    s, m = _shapes(meta_model(name)), meta_model(name)
    groups = ("inception_resnet_a", "inception_resnet_b", "inception_resnet_c")
    assert [s[g] for g in groups] == [(widths[0], 35, 35), (widths[1], 17, 17), (widths[2], 8, 8)]
    assert tuple(len(getattr(m, g)) for g in groups) == blocks
    for g, w, scale in zip(groups, widths, (0.17, 0.10, 0.20), strict=True):
        for block in getattr(m, g):
            assert isinstance(block, InceptionBlock) and block.proj.out_channels == w  # the residual adds up
        assert getattr(m, g)[0].scale == scale
    last = m.inception_resnet_c[-1]
    assert (last.act is None, last.scale) == ((True, 1.0) if name.endswith("_tf") else (False, 0.2))


def test_residual_scales_and_bad_ones(meta_model):
    m = meta_model("inception_resnet_v1", residual_scales=(0.3, 0.2, 0.1))
    assert [m.inception_resnet_a[0].scale, m.inception_resnet_b[0].scale, m.inception_resnet_c[0].scale] == [
        0.3,
        0.2,
        0.1,
    ]
    for bad in ((0.1, 0.2), (0.1, 0.0, 0.2), (0.1, -1, 0.2), "0.1", (True, 0.1, 0.1)):
        with pytest.raises(ConfigError, match="residual_scales must be three positive numbers"):
            create_model("inception_resnet_v2", residual_scales=bad)


@pytest.mark.parametrize("name", NAMES)
def test_minimum_input_is_107(name, meta_model):
    assert get_model_config(name).min_input_size == 107
    with pytest.raises(InputShapeError, match="at least 107x107"):
        meta_model(name)(torch.empty(1, 3, 106, 106, device="meta"))
    assert meta_model(name).forward_features(torch.empty(1, 3, 107, 107, device="meta")).shape[-1] == 2


# -- timm's files --------------------------------------------------------------------------------------


def _randomised_timm(name: str) -> nn.Module:
    torch.manual_seed(0)
    net = timm.create_model(name, pretrained=False)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(1 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.2 * torch.randn(mod.bias.shape, generator=g))
                mod.running_mean.copy_(0.2 * torch.randn(mod.running_mean.shape, generator=g))
                mod.running_var.uniform_(0.5, 2.0, generator=g)
            elif isinstance(mod, nn.Conv2d) and mod.bias is not None:  # the residual projections
                mod.bias.normal_(0, 0.1, generator=g)
    return net.eval()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("ours", "lib"), [("inception_v4", "inception_v4"), ("inception_resnet_v2_tf", "inception_resnet_v2")]
)
def test_timm_file_loads_and_the_logits_match(tmp_path, ours, lib):
    net = _randomised_timm(lib)
    path = tmp_path / f"{lib}.pth"
    torch.save(net.state_dict(), path)
    model = create_model(ours, weights=path).eval()
    x = torch.randn(2, 3, 107, 107, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = model(x), net(x)
    assert b.abs().max() > 0.05 and ((a - b).abs().max() / b.abs().max()).item() < 1e-5


def test_transform_input_maps_imagenet_normalisation_to_minus_one_one():
    m = create_model("inception_v4", transform_input=True, num_classes=3).eval()
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    pixels = torch.rand(1, 3, 107, 107)
    normalised = (pixels - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    plain = create_model("inception_v4", num_classes=3).eval()
    plain.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert torch.allclose(m(normalised), plain(pixels * 2 - 1), atol=1e-5)
    with pytest.raises(ConfigError, match="transform_input needs 3 input channels"):
        create_model("inception_v4", transform_input=True, in_chans=1)
