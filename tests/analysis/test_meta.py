"""Building on the meta device (``cnnzoo.analysis.meta``): fast, and never touching a user's model."""

from __future__ import annotations

import torch
from torch import nn

from cnnzoo.analysis import FastMetaInit, analyze
from cnnzoo.analysis.meta import build_zoo_model, meta_state


def test_fast_meta_init_skips_initialisers_on_meta_only_and_restores_them():
    before = torch.Tensor.uniform_
    real = torch.zeros(3)
    with FastMetaInit():
        assert torch.Tensor.uniform_ is not before
        m = torch.empty(3, device="meta")
        assert m.uniform_() is m  # skipped: nothing to compute on meta
        real.fill_(2.0)  # real tensors still initialise
    assert torch.Tensor.uniform_ is before
    assert torch.equal(real, torch.full((3,), 2.0))


def test_meta_state_keeps_tied_weights_tied():
    a = nn.Linear(4, 4)
    m = nn.Sequential(a, nn.ReLU(), nn.Linear(4, 4))
    m[2].weight = a.weight
    state = meta_state(m)
    assert state["0.weight"] is state["2.weight"] and state["0.weight"].is_meta
    assert isinstance(state["0.bias"], nn.Parameter)


def test_zoo_models_are_built_on_meta():
    notes: list[str] = []
    model = build_zoo_model("resnet18", notes)
    assert not notes and all(p.is_meta for p in model.parameters())


def test_user_module_is_left_untouched(tiny_resnet):
    m = tiny_resnet.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    analyze(m, input_size=(3, 16, 16), batch_size=64)
    assert m.training and all(x.training for x in m.modules())
    assert all(p.device.type == "cpu" for p in m.parameters())
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
