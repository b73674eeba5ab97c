"""Pre-activation ResNets (He et al. ECCV 2016): the unit, the layouts, the counts."""

from __future__ import annotations

import re

import pytest
import timm
import torch
from torch import nn

from cnnzoo import create_model, get_model_config, list_models
from cnnzoo.analysis import analyze
from cnnzoo.layers.residual import PreActBasicBlock, PreActBottleneck

IMAGENET = ["preact_resnet18", "preact_resnet34", "preact_resnet50", "preact_resnet101", "preact_resnet152"]
CIFAR = ["preact_resnet110", "preact_resnet164", "preact_resnet1001"]


def test_registry_and_configs():
    assert set(IMAGENET + CIFAR + ["preact_resnet200"]) <= set(list_models())
    for name in IMAGENET + ["preact_resnet200"]:
        cfg = get_model_config(name)
        assert (cfg.input_size, cfg.num_classes, cfg.min_input_size) == ((3, 224, 224), 1000, 33)
        assert "Identity Mappings" in cfg.paper and cfg.year == 2016
    for name in CIFAR:
        cfg = get_model_config(name)
        assert (cfg.input_size, cfg.num_classes, cfg.min_input_size) == ((3, 32, 32), 10, 5)
        assert cfg.extra["reported"]["dataset"] == "cifar10+"
    assert get_model_config("preact_resnet164").extra["reported"]["error"] == 5.46
    assert get_model_config("preact_resnet1001").extra["reported"]["error"] == 4.92
    assert get_model_config("preact_resnet200").extra["reported"]["crop"] == 320


@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_counts_equal_timm_resnetv2(name, meta_count):
    """timm's resnetv2 moves the stem's BN into the first unit: the same number of parameters."""
    depth = name.removeprefix("preact_resnet")
    assert meta_count(name) == meta_count(lambda: timm.create_model(f"resnetv2_{depth}"))


def test_preact_resnet200_by_hand(meta_count):
    # 16 more stage-2 units than ResNet-152 (3-24-36-3 against 3-8-36-3), each 512 -> 128 -> 512:
    # BN(512) + 1x1 512x128 + BN(128) + 3x3 128x128 + BN(128) + 1x1 128x512
    unit = 2 * 512 + 512 * 128 + 2 * 128 + 9 * 128 * 128 + 2 * 128 + 128 * 512
    assert meta_count("preact_resnet200") == meta_count("preact_resnet152") + 16 * unit == 64_666_152


def test_cifar_counts_round_to_the_paper():
    """Table 4's 1.7 M and 10.2 M count conv and fc weights (BN's γ/β left out: 10.33 M with them)."""
    counts = {}
    for name in ("preact_resnet164", "preact_resnet1001"):
        with torch.device("meta"):
            m = create_model(name)
        bn = sum(
            p.numel() for mod in m.modules() if isinstance(mod, nn.BatchNorm2d) for p in mod.parameters()
        )
        counts[name] = (sum(p.numel() for p in m.parameters()), bn)
    total, bn = counts["preact_resnet164"]
    assert round(total / 1e6, 1) == round((total - bn) / 1e6, 1) == 1.7
    total, bn = counts["preact_resnet1001"]
    assert round((total - bn) / 1e6, 1) == 10.2 and total == 10_327_706

    def bottleneck_net(n: int) -> int:  # widths b = 16, 32, 64; outputs 4b; projections at stage starts
        total, c = 9 * 3 * 16, 16
        for b in (16, 32, 64):
            for j in range(n):
                total += 2 * c + c * b + 2 * b + 9 * b * b + 2 * b + b * 4 * b + (c * 4 * b if j == 0 else 0)
                c = 4 * b
        return total + 2 * c + c * 10 + 10

    assert counts["preact_resnet164"][0] == bottleneck_net(18)
    assert counts["preact_resnet1001"][0] == bottleneck_net(111)


def test_imagenet_layout_follows_preresnet_lua():
    with torch.device("meta"):
        m = create_model("preact_resnet50")
    assert isinstance(m.bn1, nn.BatchNorm2d) and m.conv1.kernel_size == (7, 7)  # conv-BN-ReLU stem
    first = m.layer1[0]
    assert isinstance(first, PreActBottleneck) and first.bn1 is None  # the stem already activated
    assert all(b.bn1 is not None for layer in (m.layer1[1:], m.layer2, m.layer3, m.layer4) for b in layer)
    assert m.layer2[0].conv2.stride == (2, 2)  # the stride in the 3x3, as fb.resnet.torch
    proj = m.layer2[0].downsample
    assert len(proj) == 1 and isinstance(proj[0], nn.Conv2d)  # a bare 1x1: the next BN follows the add
    assert isinstance(m.final_bn, nn.BatchNorm2d) and m.feature_info[-1].module == "final_relu"


def test_cifar_layout_follows_resnet_1k_layers():
    with torch.device("meta"):
        m, basic = create_model("preact_resnet164"), create_model("preact_resnet110")
    assert m.bn1 is None and m.relu is None and m.conv1.out_channels == 16  # a bare conv stem
    assert m.layer1[0].bn1 is not None and m.layer1[0].downsample is not None  # 16 -> 64: projection
    assert m.layer2[0].conv1.stride == (2, 2) and m.layer2[0].conv2.stride == (1, 1)  # stride in the 1x1
    assert [f.channels for f in m.feature_info] == [64, 128, 256]
    assert isinstance(basic.layer1[0], PreActBasicBlock) and basic.layer1[0].downsample is None
    assert [len(getattr(basic, f"layer{i}")) for i in (1, 2, 3)] == [18, 18, 18]


def test_the_unit_is_full_preactivation():
    torch.manual_seed(0)
    m = create_model("preact_resnet110").eval()
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)
    unit, x = m.layer1[3], torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        branch = unit.conv2(torch.relu(unit.bn2(unit.conv1(torch.relu(unit.bn1(x))))))
        assert torch.allclose(unit(x), branch + x, atol=1e-6)  # nothing after the addition
        feats = m.forward_features(torch.randn(2, 3, 32, 32))
        assert feats.min() >= 0  # the final BN-ReLU


def test_with_a_bare_stem_it_computes_timm_resnetv2_50():
    """``stem_act=False`` is timm's resnetv2 layout: its random weights give the same logits."""
    torch.manual_seed(0)
    ref = timm.create_model("resnetv2_50").eval()
    for mod in ref.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
    rules = [
        (r"^stem\.conv\.", "conv1."),
        (r"^stages\.(\d)\.blocks\.", lambda mt: f"layer{int(mt.group(1)) + 1}."),
        (r"\.norm(\d)\.", r".bn\1."),
        (r"\.downsample\.conv\.", ".downsample.0."),
        (r"^norm\.", "final_bn."),
        (r"^head\.fc\.", "fc."),
    ]
    state = {}
    for k, v in ref.state_dict().items():
        for pat, repl in rules:
            k = re.sub(pat, repl, k)
        state[k] = v.flatten(1) if k == "fc.weight" else v
    ours = create_model("preact_resnet50", stem_act=False).eval()
    ours.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-4)


def test_macs_match_resnet50():
    """Pre-activation moves BN-ReLU, not convs: ResNet-50's 4.09 G conv and linear MACs (torchvision)."""
    convs = lambda name: sum(r.flops for r in analyze(name).layers if r.type in ("conv", "linear"))
    assert convs("preact_resnet50") == convs("resnet50")


def test_options_of_the_shared_blocks_apply():
    with torch.device("meta"):
        m = create_model("preact_resnet164", drop_path_rate=0.2, groups=2, base_width=64)
    blocks = [b for layer in (m.layer1, m.layer2, m.layer3) for b in layer]
    assert blocks[-1].drop_path.drop_prob == pytest.approx(0.2) and blocks[0].conv2.groups == 2
