"""Checks every registered model must pass: shapes, num_classes/in_chans, gradients, NaNs, minimum size,
and the interface of stages, classifier and stage groups that transfer learning builds on.

Shapes are checked on the meta device (no memory, no compute), so the paper-size inputs of the big
ImageNet models cost nothing; gradients and NaNs are checked with real compute at each model's
minimum input size, which keeps the whole file cheap.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnzoo import create_model, list_models
from cnnzoo.errors import ConfigError
from cnnzoo.layers.drop import DropPath
from cnnzoo.models.base import FeatureInfo, InputShapeError, ZooModel
from cnnzoo.registry import _builders, get_model_config
from cnnzoo.train.evaluate import logits_of

MODELS = list_models()


def _meta(name: str, **kw):
    with torch.device("meta"):
        return create_model(name, **kw)


@pytest.mark.parametrize("name", MODELS)
def test_default_config_is_complete(name):
    cfg = get_model_config(name)
    c, h, w = cfg.input_size
    assert c >= 1 and h == w and 1 <= cfg.min_input_size <= h
    assert cfg.num_classes >= 2 and cfg.paper and 1989 <= cfg.year <= 2030 and cfg.family
    assert len(cfg.mean) == len(cfg.std) and all(s > 0 for s in cfg.std)
    assert cfg.small_input_mode in ("pad", "resize")


@pytest.mark.parametrize("name", MODELS)
def test_uniform_interface_and_forward_shape_at_default_input(name):
    m = _meta(name).eval()
    assert isinstance(m, ZooModel)
    cfg = m.default_cfg
    assert m.num_classes == cfg.num_classes and m.in_chans == cfg.input_size[0]
    x = torch.empty(2, *cfg.input_size, device="meta")
    feats = m.forward_features(x)
    assert feats.shape[0] == 2
    assert m.forward_head(feats).shape == (2, cfg.num_classes)
    assert m(x).shape == (2, cfg.num_classes)


@pytest.mark.parametrize("name", MODELS)
def test_num_classes_and_in_chans_change(name):
    cfg = get_model_config(name)
    m = _meta(name, num_classes=7, in_chans=2).eval()
    assert (m.num_classes, m.in_chans) == (7, 2)
    assert m(torch.empty(3, 2, *cfg.input_size[1:], device="meta")).shape == (3, 7)
    with pytest.raises(InputShapeError, match="2 input channel"):
        m(torch.empty(1, 3, *cfg.input_size[1:], device="meta"))


@pytest.mark.parametrize("name", MODELS)
def test_minimum_input_size_is_enforced_and_tight(name):
    cfg = get_model_config(name)
    m = _meta(name).eval()
    s = cfg.min_input_size
    assert m(torch.empty(1, cfg.input_size[0], s, s, device="meta")).shape == (1, cfg.num_classes)
    if s == 1:
        return
    with pytest.raises(InputShapeError, match=f"{s}x{s}"):
        m(torch.empty(1, cfg.input_size[0], s - 1, s - 1, device="meta"))
    # Without the check, one pixel less really fails inside the network, so the minimum is tight.
    # Probed in train mode at batch 1: a BatchNorm seeing one value per channel fails there, which is
    # how the BN nets define their (trainable) minimum; GoogLeNet's aux heads also run in train mode.
    m.train()
    m.check_input = lambda x: None
    try:
        m(torch.empty(1, cfg.input_size[0], s - 1, s - 1, device="meta"))
    except Exception:  # any torch error proves the smaller size is invalid
        return
    pytest.fail(f"{name} still runs at {s - 1}x{s - 1}: min_input_size {s} is not the minimum")


@pytest.mark.parametrize("name", MODELS)
def test_gradient_reaches_every_parameter_without_nans(name):
    torch.manual_seed(0)
    cfg = get_model_config(name)
    m = create_model(name).train()
    for layer in m.modules():  # stochastic depth skips whole branches in training (no gradient by design)
        if isinstance(layer, DropPath):
            layer.eval()
    s = cfg.min_input_size
    x = torch.randn(2, cfg.input_size[0], s, s)
    y = torch.tensor([0, 1])
    out = m(x, target=y) if m.train_forward_takes_target else m(x)  # the trainer's protocol
    logits = logits_of(out)
    assert logits.shape == (2, cfg.num_classes) and torch.isfinite(logits).all()
    kwargs = {"inputs": x} if m.loss_takes_inputs else {}
    loss = m.loss(out, y, **kwargs) if callable(getattr(m, "loss", None)) else F.cross_entropy(logits, y)
    assert torch.isfinite(loss)
    loss.backward()
    no_grad = [n for n, p in m.named_parameters() if p.grad is None]
    assert not no_grad, f"no gradient reaches {no_grad[:5]}"
    bad = [n for n, p in m.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients in {bad[:5]}"
    zero = [n for n, p in m.named_parameters() if p.grad.abs().sum() == 0]
    assert len(zero) <= len(list(m.parameters())) // 10, f"zero gradients in {zero[:5]}"


# -- the interface that transfer learning builds on (stages, classifier, stage groups) -----------


def _unchecked(m):
    """The model with its input check off, to probe the network at sizes the check refuses."""
    m.check_input = lambda x: None
    return m


def _default_input(m, batch: int = 2):
    return torch.empty(batch, *m.default_cfg.input_size, device="meta")


@pytest.mark.parametrize("name", MODELS)
def test_feature_info_matches_the_stage_outputs(name):
    m = _meta(name).eval()
    info = m.feature_info
    assert info and all(isinstance(f, FeatureInfo) for f in info)
    for f in info:
        m.get_submodule(f.module)  # every stage module resolves
        assert isinstance(f.channels, int) and f.channels >= 1 and isinstance(f.reduction, int)
    reductions = [f.reduction for f in info]
    assert reductions == sorted(reductions) and reductions[0] >= 1
    x = _default_input(m)
    final, stages = m.forward_intermediates(x)
    assert m.forward_head(final).shape == (2, m.num_classes)  # the final features feed the head
    assert [tuple(s.shape[:2]) for s in stages] == [(2, f.channels) for f in info]
    # a reduction is a total stride: grow the input side by the largest one, R, and stage i's map
    # grows by exactly R / reduction_i (every conv and pool then steps by whole strides)
    big_r = reductions[-1]
    side = x.shape[-1] + big_r
    bigger = _unchecked(m).forward_intermediates(
        torch.empty(1, x.shape[1], side, side, device="meta"), intermediates_only=True
    )
    for f, a, b in zip(info, stages, bigger, strict=True):
        assert big_r % f.reduction == 0, f
        grow = (b.shape[-2] - a.shape[-2], b.shape[-1] - a.shape[-1])
        assert grow == (big_r // f.reduction,) * 2, f"{f}: the map grew by {grow} for +{big_r} pixels"


@pytest.mark.parametrize("name", MODELS)
def test_stage_modules_run_once_and_nothing_overwrites_their_output(name):
    m = _meta(name).eval()
    seen: dict[int, list] = {}

    def record(i):
        return lambda mod, args, out: seen.setdefault(i, []).append((out, out._version))

    hooks = [m.get_submodule(f.module).register_forward_hook(record(i)) for i, f in enumerate(m.feature_info)]
    m(_default_input(m))
    for h in hooks:
        h.remove()
    assert sorted(seen) == list(range(len(m.feature_info)))
    for i, calls in seen.items():
        assert len(calls) == 1, f"{m.feature_info[i].module} ran {len(calls)} times"
        out, version = calls[0]
        assert out._version == version, f"{m.feature_info[i].module}'s output is modified in place later"


@pytest.mark.parametrize("name", MODELS)
def test_get_classifier_makes_the_logits(name):
    m = _meta(name, num_classes=7).eval()
    head = m.get_classifier()
    assert head is m.get_submodule(m.head_name) and m.classifier_names()[0] == m.head_name
    outs = []
    hook = head.register_forward_hook(lambda mod, args, out: outs.append(out))
    assert m(_default_input(m)).shape == (2, 7)
    hook.remove()
    assert len(outs) == 1 and tuple(outs[0].shape[:2]) == (2, 7)


@pytest.mark.parametrize("name", MODELS)
def test_reset_classifier_replaces_the_heads_and_nothing_else(name):
    m = _meta(name).eval()
    heads = m.classifier_names()
    before = dict(m.named_parameters())
    keys = list(m.state_dict())
    m.reset_classifier(7)
    assert (m.num_classes, m.default_cfg.num_classes) == (7, 7)
    assert list(m.state_dict()) == keys
    after = dict(m.named_parameters())
    assert list(after) == list(before)
    for n, p in after.items():
        if any(n.startswith(h + ".") for h in heads):
            assert p is not before[n] and p.shape[0] == 7, n
        else:
            assert p is before[n] and p.requires_grad == before[n].requires_grad, n
    x = _default_input(m)
    assert m(x).shape == (2, 7)
    out = m.train()(x)  # aux heads too (GoogLeNet returns them in training)
    assert all(o.shape == (2, 7) for o in (out if isinstance(out, tuple) else (out,)))
    assert (
        m.forward_intermediates(x, [-1], intermediates_only=True)[0].shape[1] == m.feature_info[-1].channels
    )


@pytest.mark.parametrize("name", MODELS)
def test_stage_groups_cover_every_parameter_once(name):
    m = _meta(name)
    groups = m.stage_groups()
    names = [g for g, _ in groups]
    order = ["stem", *(f"stage{i}" for i in range(len(m.feature_info))), "neck", "head"]
    assert names == [g for g in order if g in names], names  # stem first, stages up, head last
    assert all(params for _, params in groups)
    flat = [p for _, params in groups for p in params]
    assert sorted(flat) == sorted(n for n, _ in m.named_parameters()) and len(flat) == len(set(flat))
    head = [n for n, _ in m.named_parameters() if any(n.startswith(h + ".") for h in m.classifier_names())]
    assert dict(groups).get("head", []) == head


@pytest.mark.parametrize("name", MODELS)
def test_stage_groups_follow_the_forward_order(name):
    """Group i holds what forward_features runs between stage i-1's output and stage i's."""
    m = _meta(name).eval()
    done = [0]  # stage outputs produced so far
    window: dict[str, int] = {}
    hooks = []

    def entered(name):
        def hook(mod, args):
            window.setdefault(name, done[0])  # the first call counts

        return hook

    for mod_name, mod in m.named_modules():
        if any(True for _ in mod.parameters(recurse=False)):
            hooks.append(mod.register_forward_pre_hook(entered(mod_name)))
    for f in m.feature_info:
        hooks.append(
            m.get_submodule(f.module).register_forward_hook(lambda *a: done.__setitem__(0, done[0] + 1))
        )
    m.forward_features(_default_input(m))
    for h in hooks:
        h.remove()
    n = len(m.feature_info)
    for group, params in m.stage_groups():
        for p in params:
            ran = window.get(p.rpartition(".")[0])
            if group == "stem":
                assert ran == 0, p
            elif group.startswith("stage"):
                assert ran == int(group[5:]), f"{p} is in {group} but runs in window {ran}"
            elif group == "neck":
                assert ran in (None, n), f"{p} is in the neck but runs in window {ran}"


@pytest.mark.parametrize("name", MODELS)
def test_forward_features_checks_its_input(name):
    m = _meta(name).eval()
    c, h, w = m.default_cfg.input_size
    for entry in (m.forward_features, m.forward_intermediates):
        with pytest.raises(InputShapeError, match=f"expects {c} input channel"):
            entry(torch.empty(1, c + 1, h, w, device="meta"))
        with pytest.raises(InputShapeError, match=r"\(N, C, H, W\)"):
            entry(torch.empty(c, h, w, device="meta"))
        s = m.min_input_size
        if s > 1:
            with pytest.raises(InputShapeError, match=f"{s}x{s}"):
                entry(torch.empty(1, c, s - 1, s - 1, device="meta"))


@pytest.mark.parametrize("name", MODELS)
def test_bad_num_classes_and_in_chans_are_refused(name):
    builder = _builders[name]
    for arg in ("num_classes", "in_chans"):
        for bad in (2.5, "10", True, 0, -1):
            with pytest.raises(ConfigError, match=f"{arg} must be an int of at least 1"):
                create_model(name, **{arg: bad})
            with torch.device("meta"), pytest.raises(ConfigError, match=f"{arg} must be an int"):
                builder(**{arg: bad})
