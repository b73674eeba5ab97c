"""Finite-difference gradient checks, float64, relative error ≤ 1e-7, for every op of cnnzoo.scratch.ops.

Each check builds the scalar L = Σ y·R (R random, fixed) and compares the op's backward with
central differences of L in every input and parameter.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnzoo.scratch import ops

TOL = 1e-7


def _check(tools, forward, backward, inputs: dict[str, np.ndarray], rng, tol: float = TOL) -> None:
    """forward(**inputs) -> (y, cache); backward(dy, cache) -> dict of grads keyed like inputs."""
    y, cache = forward(**inputs)
    r = rng.standard_normal(np.shape(y))
    grads = backward(r, cache)
    for name, g in grads.items():
        num = tools.numerical_grad(lambda: float(np.sum(forward(**inputs)[0] * r)), inputs[name])
        err = tools.rel_err(g, num)
        assert err <= tol, f"d/d{name}: relative error {err:.2e}"


CONV_CASES = [  # (N, C, H, W, O, k, stride, padding, dilation, groups)
    (2, 3, 6, 6, 4, 3, 1, 0, 1, 1),
    (2, 4, 7, 6, 4, 3, 2, 1, 1, 2),
    (1, 2, 8, 8, 3, 3, 1, 2, 2, 1),
    (2, 4, 5, 5, 4, 2, (2, 1), (1, 0), 1, 4),  # depthwise, unequal stride/padding
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"k{c[5]}s{c[6]}p{c[7]}d{c[8]}g{c[9]}")
def test_conv2d_fast(case, tools):
    n, c, h, w, o, k, s, p, d, g = case
    rng = np.random.default_rng(1)
    inputs = {
        "x": rng.standard_normal((n, c, h, w)),
        "w": rng.standard_normal((o, c // g, k, k)),
        "b": rng.standard_normal(o),
    }
    fwd = lambda x, w, b: ops.conv2d_forward(x, w, b, s, p, d, g)

    def bwd(dy, cache):
        dx, dw, db = ops.conv2d_backward(dy, cache)
        return {"x": dx, "w": dw, "b": db}

    _check(tools, fwd, bwd, inputs, rng)


def test_conv2d_reference(tools):
    """The lectures' path on its own (stride, padding, dilation and groups at once)."""
    rng = np.random.default_rng(2)
    inputs = {
        "x": rng.standard_normal((1, 2, 6, 6)),
        "w": rng.standard_normal((2, 1, 2, 2)),
        "b": rng.standard_normal(2),
    }
    fwd = lambda x, w, b: ops.conv2d_forward(
        x, w, b, stride=2, padding=1, dilation=2, groups=2, impl="reference"
    )

    def bwd(dy, cache):
        dx, dw, db = ops.conv2d_backward(dy, cache)
        return {"x": dx, "w": dw, "b": db}

    _check(tools, fwd, bwd, inputs, rng)


@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), (3, 1, 1)])
def test_maxpool(k, s, p, tools):
    rng = np.random.default_rng(3)
    inputs = {"x": tools.distinct(rng, (2, 2, 6, 7))}
    _check(
        tools,
        lambda x: ops.maxpool2d_forward(x, k, s, p),
        lambda dy, c: {"x": ops.maxpool2d_backward(dy, c)},
        inputs,
        rng,
    )


@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1)])
def test_avgpool(k, s, p, tools):
    rng = np.random.default_rng(4)
    inputs = {"x": rng.standard_normal((2, 2, 6, 7))}
    _check(
        tools,
        lambda x: ops.avgpool2d_forward(x, k, s, p),
        lambda dy, c: {"x": ops.avgpool2d_backward(dy, c)},
        inputs,
        rng,
    )


def test_subsampling(tools):
    rng = np.random.default_rng(5)
    inputs = {
        "x": rng.standard_normal((2, 3, 6, 6)),
        "weight": rng.standard_normal(3),
        "bias": rng.standard_normal(3),
    }

    def bwd(dy, c):
        dx, dw, db = ops.subsampling_backward(dy, c)
        return {"x": dx, "weight": dw, "bias": db}

    _check(tools, lambda x, weight, bias: ops.subsampling_forward(x, weight, bias), bwd, inputs, rng)


@pytest.mark.parametrize("name", ["relu", "tanh", "scaled_tanh", "sigmoid"])
def test_activations(name, tools):
    rng = np.random.default_rng(6)
    fwd, bwd = getattr(ops, f"{name}_forward"), getattr(ops, f"{name}_backward")
    inputs = {"x": tools.away_from_zero(rng, (3, 4, 5))}
    _check(tools, fwd, lambda dy, c: {"x": bwd(dy, c)}, inputs, rng)


def test_linear(tools):
    rng = np.random.default_rng(7)
    inputs = {"x": rng.standard_normal((4, 5)), "w": rng.standard_normal((3, 5)), "b": rng.standard_normal(3)}

    def bwd(dy, c):
        dx, dw, db = ops.linear_backward(dy, c)
        return {"x": dx, "w": dw, "b": db}

    _check(tools, ops.linear_forward, bwd, inputs, rng)


def test_flatten(tools):
    rng = np.random.default_rng(8)
    _check(
        tools,
        ops.flatten_forward,
        lambda dy, c: {"x": ops.flatten_backward(dy, c)},
        {"x": rng.standard_normal((2, 3, 2, 2))},
        rng,
    )


def test_dropout_with_fixed_mask(tools):
    rng = np.random.default_rng(9)
    mask = rng.random((4, 6)) >= 0.3
    _check(
        tools,
        lambda x: ops.dropout_forward(x, 0.3, mask=mask),
        lambda dy, c: {"x": ops.dropout_backward(dy, c)},
        {"x": rng.standard_normal((4, 6))},
        rng,
    )


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm(training, tools):
    rng = np.random.default_rng(10)
    rm, rv = rng.standard_normal(3), 0.5 + rng.random(3)
    inputs = {
        "x": rng.standard_normal((4, 3, 3, 3)),
        "gamma": rng.standard_normal(3),
        "beta": rng.standard_normal(3),
    }

    def fwd(x, gamma, beta):  # running stats are state, not inputs: give each call fresh copies
        return ops.batchnorm2d_forward(x, gamma, beta, rm.copy(), rv.copy(), training=training)

    def bwd(dy, c):
        dx, dg, db = ops.batchnorm2d_backward(dy, c)
        return {"x": dx, "gamma": dg, "beta": db}

    _check(tools, fwd, bwd, inputs, rng)


def test_softmax_cross_entropy(tools):
    rng = np.random.default_rng(11)
    z = rng.standard_normal((5, 7)) * 3
    t = rng.integers(0, 7, 5)
    _, cache = ops.softmax_cross_entropy(z, t)
    g = ops.softmax_cross_entropy_backward(cache)
    num = tools.numerical_grad(lambda: ops.softmax_cross_entropy(z, t)[0], z)
    assert tools.rel_err(g, num) <= TOL


def test_softmax_cross_entropy_is_stable():
    z = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4 + 5]])
    loss, cache = ops.softmax_cross_entropy(z, np.array([0, 2]))
    assert np.isfinite(loss) and loss < 0.01
    assert np.all(np.isfinite(ops.softmax_cross_entropy_backward(cache)))


def test_rbf(tools):
    rng = np.random.default_rng(12)
    protos = np.sign(rng.standard_normal((10, 6)))
    _check(
        tools,
        lambda x: ops.rbf_forward(x, protos),
        lambda dy, c: {"x": ops.rbf_backward(dy, c)},
        {"x": rng.standard_normal((3, 6))},
        rng,
    )
