"""Freezing: frozen parameters get no gradient, and frozen BatchNorm stays in eval mode."""

import pytest
import torch

import cnnzoo
from cnnzoo.errors import ConfigError
from cnnzoo.train.freeze import frozen_names, is_frozen_norm, match_names, set_frozen


def _resnet8():
    torch.manual_seed(0)
    return cnnzoo.create_model("resnet8", num_classes=5)


def test_frozen_bn_stays_in_eval_when_a_parent_calls_train():
    model = _resnet8()
    body = [n for n, _ in model.named_parameters() if not n.startswith("fc.")]
    set_frozen(model, body)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.training and is_frozen_norm(m) for m in bns)
    assert model.training and model.fc.training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model(torch.randn(4, 3, 32, 32) * 3 + 1).sum().backward()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if "running" in k or "num_batches" in k)
    assert all(p.grad is None for n, p in model.named_parameters() if n in body)
    assert model.fc.weight.grad is not None
    assert sorted(frozen_names(model)) == sorted(body)


def test_unfreezing_gives_bn_back_to_its_parent():
    model = _resnet8()
    set_frozen(model, [n for n, _ in model.named_parameters() if n.startswith("bn1.")])
    assert is_frozen_norm(model.bn1) and not model.bn1.training
    set_frozen(model, [])
    assert not is_frozen_norm(model.bn1) and model.bn1.training
    model.eval()
    model.train()
    assert model.bn1.training and all(p.requires_grad for p in model.parameters())


def test_a_partly_frozen_bn_trains_and_deepcopy_keeps_the_lock():
    import copy

    model = _resnet8()
    set_frozen(model, ["bn1.weight"])  # bn1.bias still trains: its statistics follow the batches
    model.train()
    assert model.bn1.training
    set_frozen(model, ["bn1.weight", "bn1.bias"])
    clone = copy.deepcopy(model).train()
    assert not clone.bn1.training and model.bn1 is not clone.bn1
    assert clone.state_dict().keys() == model.state_dict().keys()


def test_patterns_and_unknown_names():
    model = _resnet8()
    assert match_names(model, ["conv1.*", "bn1.*"]) == ["conv1.weight", "bn1.weight", "bn1.bias"]
    with pytest.raises(ConfigError, match="matches no parameter") as e:
        match_names(model, ["features.*"])
    assert "conv1.weight" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="not parameters"):
        set_frozen(model, ["nope.weight"])
