"""Stochastic depth (Huang et al. ECCV 2016) on the residual families: survival probabilities per
block, whole blocks skipped for the mini-batch, the test-time scaling, and bad rates."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnzoo import create_model, get_model_config
from cnnzoo.errors import ConfigError
from cnnzoo.layers.drop import DropPath


def blocks_of(model: nn.Module) -> list[nn.Module]:
    return [b for name in model.stage_names for b in getattr(model, name)]


@pytest.mark.parametrize(("name", "n_blocks"), [("resnet110_sd", 54), ("resnet1202_sd", 600)])
def test_survival_probabilities_follow_the_linear_decay_rule(name, n_blocks):
    with torch.device("meta"):
        m = create_model(name)
    blocks = blocks_of(m)
    assert len(blocks) == n_blocks
    p_last = 0.5
    for i, b in enumerate(blocks, start=1):
        assert b.drop_path.keep_prob == pytest.approx(1 - i / n_blocks * (1 - p_last))  # p_l
        assert (b.drop_path.mode, b.drop_path.scale) == ("batch", "test")
    cfg = get_model_config(name)
    assert "Stochastic Depth" in cfg.paper and cfg.extra["reported"]["dataset"] == "cifar10+"
    assert get_model_config("resnet110_sd").extra["reported"]["error"] == 5.25


def test_each_block_survives_with_its_probability():
    """Drawn in training: block l's branch runs in a fraction p_l of the mini-batches."""
    m = create_model("resnet110_sd").train()
    blocks = blocks_of(m)
    torch.manual_seed(0)
    trials = 4000
    x = torch.empty(1)
    for idx in (0, 26, 53):
        dp = blocks[idx].drop_path
        survived = sum(not dp.drops_branch(x) for _ in range(trials)) / trials
        p = dp.keep_prob
        assert abs(survived - p) < 4 * math.sqrt(p * (1 - p) / trials), (idx, survived, p)
    assert not blocks[53].drop_path.eval().drops_branch(x)  # every branch runs at test time


def test_a_dropped_block_is_skipped_for_the_whole_batch_without_computing_its_branch():
    torch.manual_seed(0)
    m = create_model("resnet110_sd").train()
    transition = m.layer2[0]  # 16 -> 32 channels, stride 2: option A's subsampled, zero-padded shortcut
    calls = []
    transition.conv1.register_forward_hook(lambda *a: calls.append(1))
    transition.drop_path.drops_branch = lambda x: True
    x = torch.randn(4, 16, 8, 8)
    out = transition(x)
    assert not calls  # the branch was never computed
    expected = torch.relu(torch.cat([x[:, :, ::2, ::2], torch.zeros(4, 16, 4, 4)], 1))
    assert torch.equal(out, expected)  # H_l = ReLU(id(H_{l-1})) for every sample of the batch
    transition.drop_path.drops_branch = lambda x: False
    transition(x)
    assert calls == [1]


def test_test_time_scaling_by_the_survival_probability():
    torch.manual_seed(0)
    m = create_model("resnet110_sd").eval()
    blk = m.layer3[17]  # the last block: p_L = 0.5
    assert blk.drop_path.keep_prob == pytest.approx(0.5)
    x = torch.randn(2, 64, 4, 4)
    with torch.no_grad():
        branch = blk.bn2(blk.conv2(torch.relu(blk.bn1(blk.conv1(x)))))
        assert torch.allclose(blk(x), torch.relu(0.5 * branch + x), atol=1e-6)
        p1 = m.layer1[0].drop_path.keep_prob  # 1 - 0.5 / 54
        b0 = m.layer1[0]
        h = torch.randn(2, 16, 8, 8)
        branch = b0.bn2(b0.conv2(torch.relu(b0.bn1(b0.conv1(h)))))
        assert torch.allclose(b0(h), torch.relu(p1 * branch + h), atol=1e-6)
        # training keeps a surviving branch unscaled
        b0.train()
        b0.drop_path.drops_branch = lambda x: False
        b0.bn1.eval(), b0.bn2.eval()
        assert torch.allclose(b0(h), torch.relu(branch + h), atol=1e-6)


@pytest.mark.parametrize(
    "name", ["preact_resnet110", "resnext29_8x64d", "wrn16_8", "seresnet18", "resnet50", "preact_resnet50"]
)
def test_drop_path_rate_switches_it_on_for_any_residual_family(name):
    with torch.device("meta"):
        m = create_model(name, drop_path_rate=0.2)
        off = create_model(name)
    blocks = blocks_of(m)
    rates = [b.drop_path.drop_prob for b in blocks]
    assert rates == pytest.approx([0.2 * i / len(blocks) for i in range(1, len(blocks) + 1)])
    assert all(b.drop_path is None for b in blocks_of(off))  # off by default: no module, no row


def test_the_per_sample_form_is_an_option_of_the_same_layer():
    torch.manual_seed(0)
    m = create_model("preact_resnet110", drop_path_rate=0.5, drop_path_mode="sample")
    dp = blocks_of(m)[-1].drop_path
    assert isinstance(dp, DropPath) and (dp.mode, dp.scale) == ("sample", "train")
    blk = blocks_of(m)[-1].train()
    for bn in (blk.bn1, blk.bn2):
        bn.eval()
    x = torch.randn(64, 64, 4, 4)
    with torch.no_grad():
        branch = blk.conv2(torch.relu(blk.bn2(blk.conv1(torch.relu(blk.bn1(x))))))
        out = blk(x) - x  # per sample: 0 or branch / keep
        kept = [torch.allclose(o, b / 0.5, atol=1e-5) for o, b in zip(out, branch, strict=True)]
        dropped = [torch.allclose(o, torch.zeros_like(o)) for o in out]
        assert all(k or d for k, d in zip(kept, dropped, strict=True)) and 10 < sum(kept) < 54
        blk.eval()
        assert torch.allclose(blk(x), branch + x, atol=1e-5)  # eval is the identity on the branch


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, "0.5", True, float("nan")])
def test_drop_path_rate_outside_0_1_is_one_clear_line(bad):
    with pytest.raises(ConfigError, match=r"drop_path_rate .* must be in \[0, 1\)") as e:
        create_model("resnet110", drop_path_rate=bad)
    assert "\n" not in str(e.value) and isinstance(e.value, ValueError)
    with pytest.raises(ConfigError, match="drop_path_mode"):
        create_model("resnet110", drop_path_rate=0.5, drop_path_mode="layer")
