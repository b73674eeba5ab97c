"""The lectures' worked examples: the numbers, the derivation's pieces, and the CLI walk-through."""

from __future__ import annotations

import argparse
import io

import numpy as np
import torch
import torch.nn.functional as F

from cnnzoo.scratch import explain
from cnnzoo.scratch.conv_reference import correlate2d_valid, dilate, full_convolution, rot180


def test_the_lectures_cross_correlation():
    y = correlate2d_valid(explain.LECTURE_INPUT, explain.LECTURE_KERNEL)
    np.testing.assert_array_equal(y, [[12, 12, 17], [10, 17, 19], [9, 6, 14]])
    np.testing.assert_array_equal(y, explain.LECTURE_OUTPUT)


def test_rotation_dilation_and_full_convolution():
    k = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(rot180(k), [[8, 7, 6], [5, 4, 3], [2, 1, 0]])
    np.testing.assert_array_equal(
        dilate(np.array([[1.0, 2.0], [3.0, 4.0]]), 2), [[1, 0, 2], [0, 0, 0], [3, 0, 4]]
    )
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    full = full_convolution(a, k)
    assert full.shape == (4, 4)
    # the full convolution is the true convolution (torch's conv_transpose is exactly that)
    ref = F.conv_transpose2d(torch.from_numpy(a)[None, None], torch.from_numpy(k)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(full, ref)


def test_conv_example_gradients_match_torch_autograd():
    e = explain.conv_example()
    assert e["fast_path_agrees"]
    for stride, dy, dx, dw in (
        (1, e["dy"], e["dx"], e["dw"]),
        (2, e["dy_stride2"], e["dx_stride2"], e["dw_stride2"]),
    ):
        xt = torch.tensor(e["x"][None, None], requires_grad=True)
        wt = torch.tensor(e["k"][None, None], requires_grad=True)
        F.conv2d(xt, wt, stride=stride).backward(torch.from_numpy(dy)[None, None])
        np.testing.assert_allclose(dx, xt.grad[0, 0].numpy())
        np.testing.assert_allclose(dw, wt.grad[0, 0].numpy())
    np.testing.assert_array_equal(e["y_stride2"], [[12, 17], [9, 14]])
    np.testing.assert_array_equal(e["k_rot"], [[2, 1, 0], [0, 2, 2], [2, 1, 0]])
    assert e["dy_padded"].shape == (7, 7) and e["dy_padded"][2:5, 2:5].tolist() == e["dy"].tolist()


def test_maxpool_example_routes_the_gradient_to_the_argmax():
    e = explain.maxpool_example()
    np.testing.assert_array_equal(e["y"], [[4, 2], [2, 5]])
    assert e["winners"] == [(1, 0), (0, 2), (3, 1), (2, 3)]
    expected = np.zeros((4, 4))
    for (r, c), g in zip(e["winners"], e["dy"].ravel(), strict=True):
        expected[r, c] = g
    np.testing.assert_array_equal(e["dx"], expected)


def _run_cli(what: str) -> str:
    from rich.console import Console

    from cnnzoo.scratch import cli

    buf = io.StringIO()
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["scratch", "explain", what])
    assert args.func is cli.cmd_explain
    assert cli.cmd_explain(args, console=Console(file=buf, width=400, color_system=None)) == 0
    return buf.getvalue()


def test_explain_conv_cli_prints_the_walkthrough():
    out = _run_cli("conv")
    for needle in ("Y[0,0]", "= 12", "rot180(W)", "dY padded by 2", "full_conv", "dilated", "✓"):
        assert needle in out, needle
    assert "│ 12 │ 12 │ 17 │" in out


def test_explain_maxpool_cli_prints_the_walkthrough():
    out = _run_cli("maxpool")
    assert "argmax" in out and "│ 4 │ 2 │" in out
