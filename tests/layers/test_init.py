"""The named inits: their distributions, module order (the random stream of a hand loop), meta skipping."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnzoo.layers.init import (
    empty_linear,
    he_normal_init,
    init_weights_,
    is_meta,
    lecun_uniform_init,
    norm_init,
    normal_init,
    trunc_normal_init,
    xavier_uniform_init,
    zero_init_residual_,
)
from cnnzoo.layers.residual import BasicBlock, Bottleneck


def test_paper_normal_with_bias_constant():
    torch.manual_seed(0)
    fc = nn.Linear(1000, 500)
    normal_init(0.01, bias=1.0)(fc)  # AlexNet's fc6/fc7 (§5)
    assert abs(fc.weight.std().item() - 0.01) < 2e-4 and abs(fc.weight.mean().item()) < 1e-4
    assert torch.all(fc.bias == 1.0)
    kept = nn.Conv2d(3, 8, 3)
    b = kept.bias.clone()
    normal_init(0.1, bias=None)(kept)
    assert torch.equal(kept.bias, b)


@pytest.mark.parametrize("mode", ["fan_out", "fan_in"])
def test_he_normal(mode):
    torch.manual_seed(0)
    conv = nn.Conv2d(128, 256, 3)
    he_normal_init(mode)(conv)
    fan = (256 if mode == "fan_out" else 128) * 9
    assert abs(conv.weight.std().item() / math.sqrt(2 / fan) - 1) < 0.02
    assert torch.all(conv.bias == 0)


def test_xavier_and_lecun_bounds():
    torch.manual_seed(0)
    fc = nn.Linear(300, 200)
    xavier_uniform_init(bias=0.2)(fc)
    bound = math.sqrt(6 / (300 + 200))
    assert fc.weight.abs().max().item() <= bound and fc.weight.abs().max().item() > 0.99 * bound
    assert torch.all(fc.bias == 0.2)
    conv = nn.Conv2d(16, 120, 5)  # LeNet's C5: F_in = 16 * 25 = 400
    lecun_uniform_init(2.4)(conv)
    assert conv.weight.abs().max().item() <= 2.4 / 400 and conv.weight.abs().max().item() > 0.99 * 2.4 / 400
    assert torch.all(conv.bias == 0)


def test_trunc_normal_keeps_the_bias_and_norm_init():
    torch.manual_seed(0)
    fc = nn.Linear(100, 100)
    b = fc.bias.clone()
    trunc_normal_init(std=1.0, a=-0.5, b=0.5)(fc)
    assert fc.weight.abs().max().item() <= 0.5 and torch.equal(fc.bias, b)
    bn = nn.BatchNorm2d(8)
    nn.init.normal_(bn.weight)
    norm_init()(bn)
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    norm_init()(nn.BatchNorm2d(8, affine=False))  # no γ/β: nothing to do


def test_rules_apply_in_module_order_as_a_hand_written_loop():
    """The random stream must be the one the per-family loops drew, so seeded runs are unchanged."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3), nn.Flatten(), nn.Linear(8, 4)
    )
    torch.manual_seed(1)
    init_weights_(
        model, {nn.Conv2d: he_normal_init(), nn.Linear: normal_init(0.01), nn.BatchNorm2d: norm_init()}
    )
    ours = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    for m in model.modules():  # the VGG/ResNet loop this replaced
        if isinstance(m, nn.Conv2d | nn.Linear):
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            else:
                nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    assert all(torch.equal(ours[k], v) for k, v in model.state_dict().items())


def test_first_matching_rule_wins_and_unmatched_modules_keep_their_weights():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Linear(4, 4))
    w = model[1].weight.clone()
    init_weights_(model, {nn.Conv2d: normal_init(0.0, bias=3.0), (nn.Conv2d, nn.Linear): normal_init(1.0)})
    assert torch.all(model[0].weight == 0) and torch.all(model[0].bias == 3.0)
    model2 = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Linear(4, 4))
    model2[1].weight.data.copy_(w)
    init_weights_(model2, {nn.Conv2d: normal_init()})
    assert torch.equal(model2[1].weight, w)


def test_every_init_skips_meta_tensors():
    with torch.device("meta"):
        conv, fc, bn = nn.Conv2d(64, 64, 3), nn.Linear(4096, 4096), nn.BatchNorm2d(8)
        blk = Bottleneck(64, 16)
    assert is_meta(conv) and not is_meta(nn.ReLU())
    for init in (
        normal_init(),
        he_normal_init(),
        xavier_uniform_init(),
        lecun_uniform_init(),
        trunc_normal_init(),
    ):
        init(conv)
        init(fc)
    norm_init()(bn)
    init_weights_(blk, {nn.Conv2d: he_normal_init()})
    zero_init_residual_(blk)
    assert all(p.is_meta for m in (conv, fc, bn, blk) for p in m.parameters())


def test_zero_init_residual_zeroes_each_blocks_last_norm():
    model = nn.Sequential(BasicBlock(8, 8), Bottleneck(8, 2), nn.BatchNorm2d(8))
    zero_init_residual_(model)
    assert torch.all(model[0].bn2.weight == 0) and torch.all(model[1].bn3.weight == 0)
    assert torch.all(model[0].bn1.weight == 1) and torch.all(model[2].weight == 1)


def test_empty_linear_skips_pytorchs_init_and_follows_the_default_device():
    torch.manual_seed(0)
    fc = empty_linear(256, 10)
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(1), after)  # no random numbers drawn
    assert fc.weight.shape == (10, 256) and fc.bias.shape == (10,) and fc.weight.device.type == "cpu"
    assert empty_linear(4, 2, bias=False).bias is None
    with torch.device("meta"):
        assert empty_linear(4, 2).weight.is_meta
