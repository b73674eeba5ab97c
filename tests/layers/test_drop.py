"""DropPath: the paper's per-batch form (skipping the branch) and timm's per-sample form, both scalings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.layers.drop import DropPath, as_drop_path, drop_path
from cnnzoo.layers.residual import BasicBlock

TRIALS = 4000
# 4 standard deviations of a binomial fraction at p = 0.5 over TRIALS draws: 0.032
TOL = 4 * (0.25 / TRIALS) ** 0.5


def test_batch_mode_drops_the_whole_batch_with_the_right_frequency():
    torch.manual_seed(0)
    dp = DropPath(0.3, mode="batch").train()
    assert dp.drop_prob == 0.3 and dp.keep_prob == pytest.approx(0.7) and dp.scale == "test"
    assert abs(sum(dp.drops_branch() for _ in range(TRIALS)) / TRIALS - 0.3) < TOL
    # standalone, it draws its own coin: each output is all zeros or the branch itself (unscaled)
    x = torch.rand(64, 8, 2, 2) + 0.5
    outs = [dp(x) for _ in range(400)]
    dropped = [bool(torch.all(o == 0)) for o in outs]
    assert all(d or torch.equal(o, x) for o, d in zip(outs, dropped, strict=True))
    assert 0.2 < sum(dropped) / len(dropped) < 0.4


def test_block_skips_computing_a_dropped_branch():
    """Huang et al.: a dropped block is the identity for the whole mini-batch, and its branch is not
    run (that is where the ~25% training-time saving comes from)."""
    torch.manual_seed(0)
    blk = BasicBlock(8, 8, drop_path=DropPath(0.5, mode="batch")).train()
    calls = []
    blk.conv1.register_forward_hook(lambda *a: calls.append(1))
    x = torch.relu(torch.randn(4, 8, 5, 5))
    n, skipped = 400, 0
    for _ in range(n):
        before = len(calls)
        y = blk(x)
        if len(calls) == before:  # the branch never ran: the output is relu(identity) = x
            skipped += 1
            assert torch.equal(y, x) and y is not x
    assert abs(skipped / n - 0.5) < 4 * (0.25 / n) ** 0.5 and len(calls) == n - skipped
    # a skipped block still backpropagates through its shortcut (and its in-place ReLU leaves x alone)
    sure = BasicBlock(8, 8, drop_path=DropPath(0.99, mode="batch")).train()
    ran = []
    sure.conv1.register_forward_hook(lambda *a: ran.append(1))
    h = torch.randn(4, 8, 5, 5, requires_grad=True)
    torch.manual_seed(0)
    sure(h).sum().backward()
    assert not ran and torch.equal(h.grad, (h > 0).float())


def test_block_in_eval_scales_the_branch_by_the_survival_probability():
    torch.manual_seed(0)
    with_dp = BasicBlock(8, 8, drop_path=DropPath(0.25, mode="batch")).eval()
    plain = BasicBlock(8, 8).eval()
    plain.load_state_dict(with_dp.state_dict())  # DropPath has no keys
    x = torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        f = plain.bn2(plain.conv2(plain.relu(plain.bn1(plain.conv1(x)))))
        assert torch.allclose(with_dp(x), torch.relu(0.75 * f + x), atol=1e-6)  # p_l · f_l(H) + id(H)
        assert torch.allclose(plain(x), torch.relu(f + x), atol=1e-6)


def test_sample_mode_masks_each_sample_and_rescales_by_one_over_keep():
    torch.manual_seed(0)
    dp = DropPath(0.2, mode="sample").train()
    assert dp.scale == "train" and not dp.drops_branch()  # never skips a whole batch
    y = dp(torch.ones(TRIALS, 3, 2, 2))
    per_sample = y.flatten(1)
    assert torch.all(per_sample == per_sample[:, :1])  # one coin per sample
    assert all(v == 0.0 or v == pytest.approx(1 / 0.8) for v in per_sample[:, 0].tolist())
    assert abs((per_sample[:, 0] == 0).float().mean().item() - 0.2) < TOL
    assert abs(y.mean().item() - 1.0) < 0.05  # unbiased: E[mask / keep] = 1


def test_eval_behaviour_of_every_mode_and_scale():
    x = torch.randn(4, 3, 2, 2)
    cases = {("batch", None): 0.6, ("batch", "train"): 1.0, ("sample", None): 1.0, ("sample", "test"): 0.6}
    for (mode, scale), factor in cases.items():
        dp = DropPath(0.4, mode=mode, scale=scale).eval()
        assert torch.allclose(dp(x), factor * x), (mode, scale)
        assert torch.allclose(dp(x, survived=True), factor * x), (mode, scale)
        assert torch.allclose(drop_path(x, 0.4, False, mode=mode, scale=scale), factor * x)


def test_training_scalings_of_the_other_combinations():
    torch.manual_seed(0)
    x = torch.ones(TRIALS, 1, 1, 1)
    kept = DropPath(0.4, mode="batch", scale="train").train()(x, survived=True)
    assert torch.allclose(kept, x / 0.6)  # the survivor is rescaled, eval is then the identity
    unscaled = DropPath(0.4, mode="sample", scale="test").train()(x)
    assert set(unscaled.flatten().tolist()) == {0.0, 1.0}
    # in expectation training equals evaluation, for every combination
    for mode in ("batch", "sample"):
        for scale in ("train", "test"):
            dp = DropPath(0.4, mode=mode, scale=scale)
            train_mean = torch.stack([dp.train()(torch.ones(64, 1)).mean() for _ in range(300)]).mean()
            assert abs(train_mean.item() - dp.eval()(torch.ones(1, 1)).item()) < 0.05, (mode, scale)


def test_zero_rate_is_the_identity_and_blocks_get_no_module():
    x = torch.randn(3, 4)
    assert DropPath(0.0).train()(x) is x and not DropPath(0.0).train().drops_branch()
    assert as_drop_path(0.0) is None and as_drop_path(None) is None
    assert as_drop_path(DropPath(0.0)) is None
    dp = as_drop_path(0.1)
    assert isinstance(dp, DropPath) and dp.mode == "batch" and as_drop_path(0.1, "sample").mode == "sample"
    assert BasicBlock(8, 8, drop_path=0.0).drop_path is None
    assert "drop_path" not in dict(BasicBlock(8, 8, drop_path=0.1).named_parameters())  # no keys


def test_meta_inputs_never_skip_so_cost_tables_are_deterministic():
    dp = DropPath(0.9, mode="batch").train()
    with torch.device("meta"):
        x = torch.empty(2, 3)
    assert not any(dp.drops_branch(x) for _ in range(50))
    assert DropPath(0.9, mode="sample").train()(x).is_meta


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_rates_outside_0_1_are_one_clear_error(p):
    with pytest.raises(CnnzooError, match=r"drop_prob must be in \[0, 1\)") as e:
        DropPath(p)
    assert isinstance(e.value, ValueError)
    with pytest.raises(CnnzooError):
        drop_path(torch.ones(1), p, True)


def test_bad_mode_or_scale():
    with pytest.raises(CnnzooError, match="mode must be"):
        DropPath(0.1, mode="row")
    with pytest.raises(CnnzooError, match="scale must be"):
        DropPath(0.1, scale="never")
    with pytest.raises(CnnzooError, match="plain block"):
        BasicBlock(8, 8, residual=False, drop_path=0.1)


def test_drop_path_is_a_leaf_module():
    dp = DropPath(0.1)
    assert dp.cost_type == "drop_path" and not list(dp.children()) and not list(dp.parameters())
    assert "drop_prob=0.1" in repr(dp) and isinstance(dp, nn.Module)
