"""Optimizers by name: types, Nesterov, parameter groups without decay for norms and biases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo.errors import ConfigError
from cnnzoo.train.optim import build_optimizer


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 3),
        nn.LayerNorm(3),
    )


KW = dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)


def test_sgd_nesterov_flag_and_values():
    opt = build_optimizer(_net(), name="sgd", **KW)
    assert type(opt) is torch.optim.SGD
    g = opt.param_groups[0]
    assert g["nesterov"] is True and g["momentum"] == 0.9 and g["lr"] == 0.1 and g["weight_decay"] == 5e-4
    plain = build_optimizer(_net(), name="SGD", **{**KW, "nesterov": False})
    assert plain.param_groups[0]["nesterov"] is False
    # Nesterov needs momentum: with momentum 0 it is switched off rather than raising deep in torch
    assert build_optimizer(_net(), name="sgd", **{**KW, "momentum": 0.0}).param_groups[0]["nesterov"] is False


def test_nesterov_changes_the_update():
    torch.manual_seed(0)
    base = _net()
    x, y = torch.randn(8, 1, 6, 6), torch.randint(0, 3, (8,))
    results = []
    for nesterov in (False, True):
        model = _net()
        model.load_state_dict(base.state_dict())
        opt = build_optimizer(model, name="sgd", **{**KW, "nesterov": nesterov})
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        results.append(model[4].weight.detach().clone())
    assert not torch.allclose(results[0], results[1])


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_adam_family(name, cls):
    opt = build_optimizer(_net(), name=name, betas=(0.8, 0.99), **KW)
    assert type(opt) is cls
    assert opt.param_groups[0]["betas"] == (0.8, 0.99) and opt.param_groups[0]["weight_decay"] == 5e-4


def test_no_decay_bn_bias_groups():
    model = _net()
    opt = build_optimizer(model, name="sgd", no_decay_bn_bias=True, **KW)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(decay["params"]) == {id(model[0].weight), id(model[4].weight)}
    assert ids(no_decay["params"]) == {
        id(model[1].weight),
        id(model[1].bias),
        id(model[4].bias),
        id(model[5].weight),
        id(model[5].bias),
    }
    # every trainable parameter is in exactly one group
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_no_decay_leaves_bn_weights_untouched_by_decay():
    model = _net()
    with torch.no_grad():
        model[1].weight.fill_(2.0)
    opt = build_optimizer(
        model, name="sgd", **{**KW, "weight_decay": 0.5, "momentum": 0.0}, no_decay_bn_bias=True
    )
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # zero gradient: only weight decay could move a parameter
    assert torch.equal(model[1].weight, torch.full((4,), 2.0))


def test_frozen_parameters_are_skipped_and_default_is_one_group():
    model = _net()
    model[0].weight.requires_grad_(False)
    opt = build_optimizer(model, name="sgd", **KW)
    assert len(opt.param_groups) == 1
    assert id(model[0].weight) not in {id(p) for p in opt.param_groups[0]["params"]}


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(name="lamb"), "sgd, adam, adamw, rmsprop, rmsprop_tf"),
        (dict(name="rmsprop_tf", eps=0.0), "eps"),
        (dict(name="rmsprop", alpha=1.0), "alpha"),
        (dict(name="sgd", lr=0.0), "lr"),
        (dict(name="sgd", momentum=1.0), "momentum"),
        (dict(name="adam", betas=(0.9, 1.0)), "betas"),
    ],
)
def test_bad_optimizer_configs(kw, match):
    with pytest.raises(ConfigError, match=match):
        build_optimizer(_net(), **{**KW, **kw})


def _tf_rmsprop_reference(p, grads, lrs, *, alpha, eps, momentum, wd):
    """TensorFlow's ApplyRMSProp, written out: ms from 1, eps inside the root, lr inside the momentum."""
    ms, mom = torch.ones_like(p), torch.zeros_like(p)
    out = []
    for g, lr in zip(grads, lrs, strict=True):
        g = g + wd * p
        ms = ms + (g * g - ms) * (1 - alpha)
        mom = momentum * mom + lr * g / torch.sqrt(ms + eps)
        p = p - mom
        out.append(p.clone())
    return out


@pytest.mark.parametrize("momentum, wd", [(0.9, 1e-5), (0.0, 0.0)])
def test_rmsprop_tf_matches_timm_and_the_tf_update_step_for_step(momentum, wd):
    timm_optim = pytest.importorskip("timm.optim")
    torch.manual_seed(0)
    p0 = torch.randn(5, 3, dtype=torch.float64)
    grads = [torch.randn(5, 3, dtype=torch.float64) * 10 ** (-k % 3) for k in range(12)]
    lrs = [0.016 * (0.97**k) for k in range(12)]  # a decaying lr: TF keeps the lr inside the momentum
    ours = torch.nn.Parameter(p0.clone())
    ref = torch.nn.Parameter(p0.clone())
    kw = dict(alpha=0.9, eps=1e-3, momentum=momentum, weight_decay=wd)  # EfficientNet's settings
    a = build_optimizer(
        torch.nn.ParameterList([ours]),
        name="rmsprop_tf",
        lr=lrs[0],
        nesterov=False,
        **{k: v for k, v in kw.items()},
    )
    b = timm_optim.RMSpropTF([ref], lr=lrs[0], **kw, lr_in_momentum=True)
    hand = _tf_rmsprop_reference(p0.clone(), grads, lrs, alpha=0.9, eps=1e-3, momentum=momentum, wd=wd)
    for g, lr, want in zip(grads, lrs, hand, strict=True):
        for opt, p in ((a, ours), (b, ref)):
            opt.param_groups[0]["lr"] = lr
            p.grad = g.clone()
            opt.step()
        torch.testing.assert_close(ours.detach(), ref.detach(), rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(ours.detach(), want, rtol=1e-12, atol=1e-14)
    assert torch.equal(a.state[ours]["square_avg"], b.state[ref]["square_avg"])


def test_rmsprop_tf_differs_from_pytorchs_rmsprop():
    """Same numbers, different update: PyTorch's eps is outside the root and its average starts at 0."""
    torch.manual_seed(0)
    p0, g = torch.randn(4), torch.randn(4) * 1e-3
    after = {}
    for name in ("rmsprop", "rmsprop_tf"):
        p = torch.nn.Parameter(p0.clone())
        opt = build_optimizer(
            torch.nn.ParameterList([p]),
            name=name,
            lr=0.01,
            momentum=0.9,
            nesterov=False,
            weight_decay=0.0,
            alpha=0.9,
            eps=1e-3,
        )
        assert type(opt).__name__ == ("RMSprop" if name == "rmsprop" else "RMSpropTF")
        assert opt.param_groups[0]["alpha"] == 0.9 and opt.param_groups[0]["eps"] == 1e-3
        p.grad = g.clone()
        opt.step()
        after[name] = p.detach() - p0
    # first step: torch moves lr·g/(sqrt(0.1 g²) + eps); TF moves lr·g/sqrt(0.9 + 0.1 g² + eps) ≈ lr·g
    torch.testing.assert_close(after["rmsprop_tf"], -0.01 * g / torch.sqrt(0.9 + 0.1 * g * g + 1e-3))
    assert (after["rmsprop"].abs() > 10 * after["rmsprop_tf"].abs()).all()


def test_optimizer_defaults_for_alpha_and_eps():
    tf = build_optimizer(_net(), name="rmsprop_tf", **KW)
    pt = build_optimizer(_net(), name="rmsprop", **KW)
    adam = build_optimizer(_net(), name="adam", eps=1e-6, **KW)
    assert (tf.param_groups[0]["alpha"], tf.param_groups[0]["eps"]) == (0.9, 1e-10)  # TensorFlow's
    assert (pt.param_groups[0]["alpha"], pt.param_groups[0]["eps"]) == (0.99, 1e-8)  # PyTorch's
    assert tf.param_groups[0]["momentum"] == 0.9 and adam.param_groups[0]["eps"] == 1e-6
