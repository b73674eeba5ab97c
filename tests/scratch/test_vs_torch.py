"""Every op against torch autograd on identical inputs and weights.

Relative error (‖a − b‖/max‖·‖) ≤ 1e-10 in float64 and ≤ 1e-5 in float32, for outputs and every
gradient; the two convolution paths agree with each other and with torch on stride, padding,
dilation and groups.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnzoo.scratch import ops

TOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]


def _t(a: np.ndarray, grad: bool = True) -> torch.Tensor:
    return torch.tensor(np.ascontiguousarray(a), requires_grad=grad)


def _compare(tools, dtype, pairs) -> None:
    for name, ours, ref in pairs:
        ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else ref
        assert np.asarray(ours).dtype == dtype, f"{name}: dtype {np.asarray(ours).dtype}, expected {dtype}"
        err = tools.rel_err(ours, ref)
        assert err <= TOL[dtype], f"{name}: relative error {err:.2e} > {TOL[dtype]:.0e}"


CONV_CASES = [  # (N, C, H, W, O, k, stride, padding, dilation, groups)
    (2, 3, 8, 8, 4, 3, 1, 0, 1, 1),
    (2, 3, 8, 8, 4, 3, 1, 1, 1, 1),  # "wide" fast path with padding
    (2, 4, 9, 8, 6, 3, 2, 1, 1, 2),
    (2, 4, 9, 9, 4, 3, 1, 2, 2, 1),  # dilation
    (2, 6, 10, 11, 6, 3, 3, 2, 1, 3),
    (3, 4, 6, 6, 4, 3, 1, 1, 1, 4),  # depthwise
    (2, 2, 7, 9, 3, (2, 3), (2, 1), (1, 0), (1, 2), 1),  # rectangular everything
    (4, 16, 5, 5, 12, 5, 1, 0, 1, 1),  # LeNet's C5 shape (general path)
]


def _conv_inputs(case, dtype, seed=0):
    n, c, h, w, o, k, s, p, d, g = case
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c // g, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    return x, wt, b, dict(stride=s, padding=p, dilation=d, groups=g)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv2d_fast_matches_torch(case, dtype, tools):
    x, w, b, geo = _conv_inputs(case, dtype)
    y, cache = ops.conv2d_forward(x, w, b, **geo)
    dy = np.random.default_rng(9).standard_normal(y.shape).astype(dtype)
    dx, dw, db = ops.conv2d_backward(dy, cache)
    xt, wt, bt = _t(x), _t(w), _t(b)
    yt = F.conv2d(xt, wt, bt, **geo)
    yt.backward(torch.from_numpy(dy))
    _compare(tools, dtype, [("y", y, yt), ("dx", dx, xt.grad), ("dw", dw, wt.grad), ("db", db, bt.grad)])


@pytest.mark.parametrize("case", CONV_CASES[:7], ids=[str(i) for i in range(7)])
def test_conv2d_paths_agree(case, tools):
    """The lectures' plain derivation and the im2col fast path give the same numbers (and torch's)."""
    x, w, b, geo = _conv_inputs(case, np.float64, seed=1)
    y1, c1 = ops.conv2d_forward(x, w, b, **geo, impl="fast")
    y2, c2 = ops.conv2d_forward(x, w, b, **geo, impl="reference")
    dy = np.random.default_rng(2).standard_normal(y1.shape)
    g1 = ops.conv2d_backward(dy, c1)
    g2 = ops.conv2d_backward(dy, c2)
    assert tools.rel_err(y1, y2) <= 1e-12
    for a, b_ in zip(g1, g2, strict=True):
        assert tools.rel_err(a, b_) <= 1e-12
    xt, wt = _t(x), _t(w)
    F.conv2d(xt, wt, _t(b), **geo).backward(torch.from_numpy(dy))
    assert tools.rel_err(g2[0], xt.grad.numpy()) <= 1e-10
    assert tools.rel_err(g2[1], wt.grad.numpy()) <= 1e-10


def test_conv2d_without_bias_and_skip_dx():
    x, w, _, geo = _conv_inputs(CONV_CASES[2], np.float64)
    y, cache = ops.conv2d_forward(x, w, None, **geo)
    dx, dw, db = ops.conv2d_backward(np.ones_like(y), cache, need_dx=False)
    assert dx is None and db is None and dw.shape == w.shape
    np.testing.assert_allclose(
        y, F.conv2d(torch.from_numpy(x), torch.from_numpy(w), **geo).numpy(), rtol=1e-12
    )


def test_conv2d_bad_groups_is_a_clear_error():
    with pytest.raises(ValueError, match="groups=2"):
        ops.conv2d_forward(np.zeros((1, 3, 5, 5)), np.zeros((4, 3, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="does not fit"):
        ops.conv2d_forward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), (3, 1, 1), ((2, 3), (1, 2), (1, 1))])
def test_pools_match_torch(k, s, p, dtype, tools):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 8)).astype(dtype)
    for fwd, bwd, tf in (
        (ops.maxpool2d_forward, ops.maxpool2d_backward, F.max_pool2d),
        (ops.avgpool2d_forward, ops.avgpool2d_backward, F.avg_pool2d),
    ):
        y, cache = fwd(x, k, s, p)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx = bwd(dy, cache)
        xt = _t(x)
        yt = tf(xt, k, s, p)
        yt.backward(torch.from_numpy(dy))
        _compare(tools, dtype, [(f"{tf.__name__} y", y, yt), (f"{tf.__name__} dx", dx, xt.grad)])


def test_maxpool_ties_go_to_the_first_position_like_torch():
    x = np.array([[[[1.0, 1.0, 0.0, 2.0], [1.0, 1.0, 2.0, 2.0]]]])  # both windows are all-ties
    y, cache = ops.maxpool2d_forward(x, 2)
    dx = ops.maxpool2d_backward(np.ones_like(y), cache)
    xt = _t(x)
    F.max_pool2d(xt, 2).sum().backward()
    np.testing.assert_array_equal(dx, xt.grad.numpy())


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_subsampling_matches_torch_zoo_layer(dtype, tools):
    from cnnzoo.models.lenet import Subsampling

    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 8, 8)).astype(dtype)
    wgt, bias = rng.standard_normal(6).astype(dtype), rng.standard_normal(6).astype(dtype)
    y, cache = ops.subsampling_forward(x, wgt, bias)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = ops.subsampling_backward(dy, cache)
    layer = Subsampling(6).to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(wgt))
        layer.bias.copy_(torch.from_numpy(bias))
    xt = _t(x)
    yt = layer(xt)
    yt.backward(torch.from_numpy(dy))
    _compare(
        tools,
        dtype,
        [("y", y, yt), ("dx", dx, xt.grad), ("dw", dw, layer.weight.grad), ("db", db, layer.bias.grad)],
    )


ACTS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "scaled_tanh": lambda t: 1.7159 * torch.tanh(2.0 / 3.0 * t),
    "sigmoid": torch.sigmoid,
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(ACTS))
def test_activations_match_torch(name, dtype, tools):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3, 4, 5, 5)) * 3).astype(dtype)
    y, cache = getattr(ops, f"{name}_forward")(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = getattr(ops, f"{name}_backward")(dy, cache)
    xt = _t(x)
    yt = ACTS[name](xt)
    yt.backward(torch.from_numpy(dy))
    _compare(tools, dtype, [("y", y, yt), ("dx", dx, xt.grad)])


def test_scaled_tanh_matches_torch_zoo_layer(tools):
    from cnnzoo.models.lenet import ScaledTanh

    x = np.linspace(-4, 4, 50)
    y, _ = ops.scaled_tanh_forward(x)
    assert tools.rel_err(y, ScaledTanh()(torch.from_numpy(x)).numpy()) <= 1e-12


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_linear_and_flatten_match_torch(dtype, tools):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3, 2, 2)).astype(dtype)
    w, b = rng.standard_normal((5, 12)).astype(dtype), rng.standard_normal(5).astype(dtype)
    f, fc = ops.flatten_forward(x)
    y, lc = ops.linear_forward(f, w, b)
    dy = rng.standard_normal(y.shape).astype(dtype)
    df, dw, db = ops.linear_backward(dy, lc)
    dx = ops.flatten_backward(df, fc)
    xt, wt, bt = _t(x), _t(w), _t(b)
    yt = F.linear(torch.flatten(xt, 1), wt, bt)
    yt.backward(torch.from_numpy(dy))
    _compare(tools, dtype, [("y", y, yt), ("dx", dx, xt.grad), ("dw", dw, wt.grad), ("db", db, bt.grad)])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_dropout_matches_torch_with_the_same_mask(dtype, tools):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((64, 50)).astype(dtype)
    y, cache = ops.dropout_forward(x, 0.4, rng=rng)
    mask = y != 0
    assert abs(1 - mask.mean() - 0.4) < 0.03  # about p of the units dropped
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.dropout_backward(dy, cache)
    xt = _t(x)
    yt = xt * torch.from_numpy(mask) / (1 - 0.4)
    yt.backward(torch.from_numpy(dy))
    _compare(tools, dtype, [("y", y, yt), ("dx", dx, xt.grad)])
    y_eval, c_eval = ops.dropout_forward(x, 0.4, training=False)
    assert y_eval is x and ops.dropout_backward(dy, c_eval) is dy


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_matches_torch(training, dtype, tools):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((4, 3, 5, 5)) * 2 + 1).astype(dtype)
    gamma, beta = rng.standard_normal(3).astype(dtype), rng.standard_normal(3).astype(dtype)
    rm, rv = rng.standard_normal(3).astype(dtype), (0.5 + rng.random(3)).astype(dtype)
    rm_t, rv_t = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    y, cache = ops.batchnorm2d_forward(x, gamma, beta, rm, rv, training=training)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dg, db = ops.batchnorm2d_backward(dy, cache)
    xt, gt, bt = _t(x), _t(gamma), _t(beta)
    yt = F.batch_norm(xt, rm_t, rv_t, gt, bt, training=training, momentum=0.1, eps=1e-5)
    yt.backward(torch.from_numpy(dy))
    _compare(
        tools,
        dtype,
        [
            ("y", y, yt),
            ("dx", dx, xt.grad),
            ("dgamma", dg, gt.grad),
            ("dbeta", db, bt.grad),
            ("running_mean", rm, rm_t),
            ("running_var", rv, rv_t),
        ],
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_cross_entropy_matches_torch(dtype, tools):
    rng = np.random.default_rng(9)
    z = (rng.standard_normal((16, 10)) * 4).astype(dtype)
    t = rng.integers(0, 10, 16)
    loss, cache = ops.softmax_cross_entropy(z, t)
    g = ops.softmax_cross_entropy_backward(cache)
    zt = _t(z)
    lt = F.cross_entropy(zt, torch.from_numpy(t))
    lt.backward()
    _compare(tools, dtype, [("dz", g, zt.grad)])
    assert abs(loss - lt.item()) <= TOL[dtype] * abs(lt.item())


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_rbf_matches_torch_zoo_layer(dtype, tools):
    from cnnzoo.models.lenet import EuclideanRBF

    layer = EuclideanRBF(84, 10)
    layer = layer.double() if dtype == np.float64 else layer
    protos = layer.prototypes.numpy()
    x = np.random.default_rng(10).standard_normal((5, 84)).astype(dtype)
    y, cache = ops.rbf_forward(x, protos)
    dy = np.random.default_rng(11).standard_normal(y.shape).astype(dtype)
    dx = ops.rbf_backward(dy, cache)
    xt = _t(x)
    yt = layer(xt)
    yt.backward(torch.from_numpy(dy))
    _compare(tools, dtype, [("y", y, yt), ("dx", dx, xt.grad)])
