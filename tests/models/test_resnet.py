"""ResNet (He et al. CVPR 2016): ImageNet family, v1, ResNet-C/D, CIFAR family and plain nets."""

from __future__ import annotations

import time

import pytest
import torch
import torchvision
from torch import nn

from cnnzoo.data import adapt_images
from cnnzoo.layers.residual import Bottleneck, ZeroPadShortcut
from cnnzoo.models.base import InputShapeError
from cnnzoo.registry import create_model, get_model_config, list_models

IMAGENET = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
ALL_IMAGENET = IMAGENET + ["resnet50_v1", "resnet101_v1", "resnet152_v1", "resnet50c", "resnet50d"]
CIFAR = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202"]
PLAIN = ["plain20", "plain32", "plain44", "plain56", "plain110"]

# The spec's exact figures (1000 classes).
SPEC_COUNTS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


def meta_params(name: str, **kwargs) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name, **kwargs).parameters())


def test_registry_has_every_name():
    names = set(list_models())
    assert set(ALL_IMAGENET + CIFAR + PLAIN) <= names


@pytest.mark.parametrize("name", IMAGENET)
def test_param_counts_match_spec_and_torchvision(name):
    with torch.device("meta"):
        tv = sum(p.numel() for p in getattr(torchvision.models, name)(weights=None).parameters())
    assert meta_params(name) == SPEC_COUNTS[name] == tv


@pytest.mark.parametrize("depth", [50, 101, 152])
def test_v1_has_the_same_count_and_keys_but_strides_the_1x1(depth):
    assert meta_params(f"resnet{depth}_v1") == SPEC_COUNTS[f"resnet{depth}"]
    with torch.device("meta"):
        v1, v15 = create_model(f"resnet{depth}_v1"), create_model(f"resnet{depth}")
    assert v1.state_dict().keys() == v15.state_dict().keys()
    for stage in ("layer2", "layer3", "layer4"):
        b1, b15 = getattr(v1, stage)[0], getattr(v15, stage)[0]
        assert (b1.conv1.stride, b1.conv2.stride) == ((2, 2), (1, 1))  # the paper: stride in the 1x1
        assert (b15.conv1.stride, b15.conv2.stride) == ((1, 1), (2, 2))  # torchvision: in the 3x3


def test_resnet_c_and_d_counts_by_hand_and_against_timm():
    import timm

    # ResNet-C swaps the 7x7x3x64 conv (9,408 weights) for three 3x3 convs 3->32->32->64 with
    # two extra BNs (32 channels each: gamma and beta): the avg-pool of ResNet-D has no params.
    deep_stem = 3 * 3 * 3 * 32 + 2 * 32 + 3 * 3 * 32 * 32 + 2 * 32 + 3 * 3 * 32 * 64
    expected = SPEC_COUNTS["resnet50"] - 7 * 7 * 3 * 64 + deep_stem
    assert expected == 25_576_264
    with torch.device("meta"):
        for name in ("resnet50c", "resnet50d"):
            assert (
                meta_params(name) == expected == sum(p.numel() for p in timm.create_model(name).parameters())
            )


@pytest.mark.parametrize("name", IMAGENET)
def test_loads_torchvision_state_dict_and_matches_logits(name):
    torch.manual_seed(0)
    tv = getattr(torchvision.models, name)(weights=None).eval()
    with torch.no_grad():  # BN stats are 0/1 and γ/β 1/0 at init: perturb them so eval BN is tested
        for m in tv.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    with torch.device("meta"):  # materialised by the strict load below (skips our own init)
        ours = create_model(name).eval()
    ours.to_empty(device="cpu").load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(2, 3, 40, 40)
    with torch.no_grad():
        assert (ours(x) - tv(x)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("name", ["resnet50c", "resnet50d"])
def test_loads_timm_state_dict_and_matches_logits(name):
    import timm

    torch.manual_seed(0)
    ref = timm.create_model(name).eval()
    with torch.device("meta"):
        ours = create_model(name).eval()
    ours.to_empty(device="cpu").load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 33, 33)  # odd sides exercise the ceil-mode average pool of ResNet-D
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-5


def test_resnet_d_averages_before_the_projection():
    with torch.device("meta"):
        c, d = create_model("resnet50c"), create_model("resnet50d")
    ds_c, ds_d = c.layer2[0].downsample, d.layer2[0].downsample
    assert ds_c[0].stride == (2, 2) and ds_c[0].kernel_size == (1, 1)  # ResNet-B/C: strided 1x1
    assert isinstance(ds_d[0], nn.AvgPool2d) and ds_d[0].kernel_size == 2 and ds_d[0].stride == 2
    assert ds_d[1].stride == (1, 1)
    assert isinstance(d.layer1[0].downsample[0], nn.Identity)  # stride-1 stage: no pool
    assert [m.kernel_size for m in c.conv1 if isinstance(m, nn.Conv2d)] == [(3, 3)] * 3


def test_shortcut_options_on_the_whole_net():
    base = SPEC_COUNTS["resnet18"]
    # option B (default) projects only at the three stage changes (64->128, 128->256, 256->512):
    # a 1x1 conv (cin*cout) and a BN (2*cout) each.
    b_proj = sum(ci * co + 2 * co for ci, co in [(64, 128), (128, 256), (256, 512)])
    # option C also projects in the other five blocks (two in layer1, one per later stage).
    c_extra = sum(c * c + 2 * c for c in [64, 64, 128, 256, 512])
    assert meta_params("resnet18", shortcut="A") == base - b_proj == 11_515_688
    assert meta_params("resnet18", shortcut="C") == base + c_extra == 12_043_816
    m = create_model("resnet18", shortcut="A").eval()
    shortcuts = [blk.downsample for layer in (m.layer2, m.layer3, m.layer4) for blk in layer[:1]]
    assert all(isinstance(s, ZeroPadShortcut) and not list(s.parameters()) for s in shortcuts)
    assert m(torch.randn(2, 3, 40, 40)).shape == (2, 1000)
    with pytest.raises(ValueError, match="shortcut option"):
        create_model("resnet18", shortcut="D")


def test_cifar_counts_derived_by_hand_round_to_the_paper():
    """Exact counts for the 6n+2 CIFAR nets (3 input channels, 10 classes, option A).

    conv1: 3x3x3x16 = 432, bn1: 32. A basic block of width w has two 3x3 convs and two BNs:
      stage 1 (w=16):  n blocks of 2*9*16*16 + 4*16 = 4,672
      stage 2 (w=32):  first block 9*16*32 + 9*32*32 + 4*32 = 13,952, then n-1 of 18,560
      stage 3 (w=64):  first block 9*32*64 + 9*64*64 + 4*64 = 55,552, then n-1 of 73,984
    fc: 64*10 + 10 = 650. Option A shortcuts have no parameters. In total:
      432 + 32 + 4,672n + 13,952 + 18,560(n-1) + 55,552 + 73,984(n-1) + 650 = 97,216n - 21,926.
    """

    def by_hand(n: int) -> int:
        stage1 = n * (2 * 9 * 16 * 16 + 4 * 16)
        stage2 = (9 * 16 * 32 + 9 * 32 * 32 + 4 * 32) + (n - 1) * (2 * 9 * 32 * 32 + 4 * 32)
        stage3 = (9 * 32 * 64 + 9 * 64 * 64 + 4 * 64) + (n - 1) * (2 * 9 * 64 * 64 + 4 * 64)
        return 9 * 3 * 16 + 2 * 16 + stage1 + stage2 + stage3 + 64 * 10 + 10

    paper_millions = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7, 1202: 19.4}
    for depth, paper in paper_millions.items():
        n = (depth - 2) // 6
        exact = by_hand(n)
        assert exact == 97_216 * n - 21_926
        assert meta_params(f"resnet{depth}") == exact
        digits = 1 if paper >= 1 else 2
        assert round(exact / 1e6, digits) == paper, (depth, exact)
    assert meta_params("resnet20") == 269_722  # the figure the CIFAR literature quotes
    assert meta_params("resnet8") == by_hand(1) == 75_290  # n = 1: not in the paper


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_plain_nets_match_resnets_without_shortcuts(depth):
    assert meta_params(f"plain{depth}") == meta_params(f"resnet{depth}")  # option A is param-free
    with torch.device("meta"):
        plain = create_model(f"plain{depth}")
    blocks = [b for layer in (plain.layer1, plain.layer2, plain.layer3) for b in layer]
    assert len(blocks) * 2 + 2 == depth
    assert all(not b.residual and b.downsample is None for b in blocks)


def test_plain_and_residual_differ_only_by_the_shortcut():
    torch.manual_seed(0)
    res, plain = create_model("resnet20").eval(), create_model("plain20").eval()
    plain.load_state_dict(res.state_dict(), strict=True)  # the same keys: shortcuts carry nothing
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        blk_r, blk_p = res.layer2[0], plain.layer2[0]
        h = torch.randn(2, 16, 16, 16)
        pre = blk_r.bn2(blk_r.conv2(blk_r.relu(blk_r.bn1(blk_r.conv1(h)))))
        shortcut = torch.cat([h[:, :, ::2, ::2], torch.zeros(2, 16, 8, 8)], 1)  # option A by hand
        assert torch.allclose(blk_r(h), torch.relu(pre + shortcut), atol=1e-6)
        assert torch.allclose(blk_p(h), torch.relu(pre), atol=1e-6)
        assert not torch.allclose(res(x), plain(x))


def test_cifar_geometry():
    m = create_model("resnet20", in_chans=1)
    x = torch.randn(2, 1, 32, 32)
    sides = []
    h = m.relu(m.bn1(m.conv1(x)))
    for layer in (m.layer1, m.layer2, m.layer3):
        h = layer(h)
        sides.append(tuple(h.shape[1:]))
    assert sides == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    assert m.conv1.kernel_size == (3, 3) and m.conv1.out_channels == 16
    assert isinstance(m.maxpool, nn.Identity)


def test_he_init_and_zero_init_residual():
    torch.manual_seed(0)
    m = create_model("resnet50")
    w = m.layer4[0].conv2.weight  # 512 out x 512 in x 3x3: fan_out = 512 * 9
    he_std = (2 / (512 * 9)) ** 0.5
    assert abs(w.std().item() / he_std - 1) < 0.02
    assert torch.all(m.layer4[0].bn3.weight == 1)
    z = create_model("resnet50", zero_init_residual=True)
    assert all(torch.all(b.bn3.weight == 0) for b in z.modules() if isinstance(b, Bottleneck))
    z18 = create_model("resnet18", zero_init_residual=True).eval()
    # every block starts as its shortcut, so an identity block passes its (non-negative) input
    blk = z18.layer1[1]
    h = torch.relu(torch.randn(2, 64, 8, 8))
    with torch.no_grad():
        assert torch.allclose(blk(h), h)


def test_builders_work_on_meta():
    with torch.device("meta"):
        m = create_model("resnet1202")
    assert all(p.is_meta for p in m.parameters())


@pytest.mark.parametrize(
    ("name", "minimum"),
    [("resnet18", 33), ("resnet50d", 33), ("resnet50_v1", 33), ("resnet20", 5), ("plain20", 5)],
)
def test_min_input_size_is_enforced(name, minimum):
    """Training sets the minimum: the last map must be 2x2 for its BatchNorms (see the model docs)."""
    cfg = get_model_config(name)
    m = create_model(name, num_classes=10).train()
    assert cfg.min_input_size == m.min_input_size == minimum
    out = m(torch.randn(1, m.in_chans, minimum, minimum))  # batch 1 in training works at the minimum
    assert out.shape == (1, 10) and torch.isfinite(out).all()
    # one pixel less: the last map is 1x1 and torch's BatchNorm refuses a batch of 1 in training
    below = torch.randn(1, m.in_chans, minimum - 1, minimum - 1)
    with pytest.raises(InputShapeError, match=rf"{name} needs inputs of at least {minimum}x{minimum}"):
        m(below)
    # forward_features checks too: switch the check off to probe the network itself
    m.check_input = lambda x: None
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        m.forward_head(m.forward_features(below))
    with torch.no_grad():  # eval mode has no such limit: 1x1 runs (every stride-2 layer pads)
        assert m.eval().forward_head(m.forward_features(torch.randn(1, m.in_chans, 1, 1))).shape == (1, 10)


def test_batch_of_two_at_the_minimum_trains_every_layer():
    torch.manual_seed(0)
    m = create_model("resnet50", num_classes=10).train()
    out = m(torch.randn(2, 3, 33, 33))
    nn.functional.cross_entropy(out, torch.tensor([0, 1])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


@pytest.mark.parametrize("name", ["resnet50", "resnet50d", "resnet20", "plain56"])
def test_runs_on_fashion_mnist_sized_input(name):
    cfg = get_model_config(name)
    side = cfg.small_input_size
    assert side is not None and side >= cfg.min_input_size
    m = create_model(name, in_chans=1, num_classes=10).train()
    images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    x = adapt_images(images, size=side, mode=cfg.small_input_mode, mean=cfg.mean, std=cfg.std, in_chans=1)
    assert x.shape == (2, 1, side, side)
    out = m(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_configs_cite_the_papers():
    for name in ALL_IMAGENET + CIFAR + PLAIN:
        cfg = get_model_config(name)
        assert "Deep Residual Learning" in cfg.paper or "Bag of Tricks" in cfg.paper
        assert cfg.year == (2019 if name in ("resnet50c", "resnet50d") else 2016)
    assert get_model_config("resnet20").input_size == (3, 32, 32)
    assert get_model_config("resnet20").small_input_mode == "pad"
    assert get_model_config("resnet50").input_size == (3, 224, 224)


def test_resnet20_learns_fashion_mnist(fashion_fit):
    """Real-data smoke test: 200 plain SGD steps (batch 32, 6,400 images, about a ninth of an epoch)
    take ResNet-20 well above chance (10%) on 2,000 test images: 0.77 measured."""
    torch.manual_seed(0)
    steps, cl = 200, torch.channels_last  # channels-last: faster convs on CPU
    model = create_model("resnet20", in_chans=1, num_classes=10).to(memory_format=cl)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    t0 = time.perf_counter()
    # 28x28 straight in (the CIFAR nets take any size; see the model docs)
    acc = fashion_fit(model, opt, steps=steps, size=28, mode="none", n_test=2000, memory_format=cl)
    print(f"resnet20 on Fashion-MNIST: {steps} steps, test acc {acc:.3f}, {time.perf_counter() - t0:.1f}s")
    assert acc >= 0.70


def test_block_options_make_resnext_and_se_resnet_arguments_not_forks():
    """The families of the next issue are ResNet's block arguments; timm's networks load strictly."""
    import timm

    from cnnzoo.layers.squeeze_excite import SqueezeExcite

    torch.manual_seed(0)
    for options, timm_name, count in (
        (dict(groups=32, base_width=4), "resnext50_32x4d", 25_028_904),  # Xie et al.: 25.0 M
        (dict(attn_layer=SqueezeExcite), "seresnet50", 28_088_024),  # Hu et al.: 28.1 M
    ):
        ref = timm.create_model(timm_name).eval()
        ours = create_model("resnet50", **options).eval()
        assert sum(p.numel() for p in ours.parameters()) == count == sum(p.numel() for p in ref.parameters())
        ours.load_state_dict(ref.state_dict(), strict=True)
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert torch.allclose(ours(x), ref(x), atol=1e-4), timm_name


def test_drop_path_rate_rises_linearly_to_the_last_block():
    """Huang et al. Eq. 4: block l of L drops with probability l / L · (1 − p_L)."""
    with torch.device("meta"):
        m = create_model("resnet110", drop_path_rate=0.5)
    blocks = [b for layer in (m.layer1, m.layer2, m.layer3) for b in layer]
    rates = [b.drop_path.drop_prob for b in blocks]
    assert len(rates) == 54 and rates[-1] == 0.5 and rates[0] == pytest.approx(0.5 / 54)
    assert all(b.drop_path.mode == "batch" for b in blocks)
    assert create_model("resnet20").layer1[0].drop_path is None  # off by default: no module, no row
