"""``cnnzoo scratch explain conv|maxpool``: the lectures' worked examples, step by step.

The numbers come from :func:`conv_example` and :func:`maxpool_example`, which compute them with the
plain derivation (:mod:`cnnzoo.scratch.conv_reference`) and check them against the fast path
(:mod:`cnnzoo.scratch.ops`); the printing functions only lay them out with rich.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnzoo.scratch import ops
from cnnzoo.scratch.conv_reference import correlate2d_valid, dilate, full_convolution, pad2d, rot180

__all__ = [
    "LECTURE_INPUT",
    "LECTURE_KERNEL",
    "LECTURE_OUTPUT",
    "conv_example",
    "maxpool_example",
    "print_conv",
    "print_maxpool",
]

LECTURE_INPUT = np.array(
    [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]], dtype=np.float64
)
LECTURE_KERNEL = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]], dtype=np.float64)
LECTURE_OUTPUT = np.array([[12, 12, 17], [10, 17, 19], [9, 6, 14]], dtype=np.float64)
#: the upstream gradient used in the walk-through (any 3×3 works; this one makes the rotation visible)
EXAMPLE_DY = np.array([[1, 2, 0], [0, 1, -1], [2, 0, 1]], dtype=np.float64)

MAXPOOL_INPUT = np.array([[1, 3, 2, 1], [4, 2, 0, 1], [1, 1, 3, 5], [0, 2, 4, 1]], dtype=np.float64)
MAXPOOL_DY = np.array([[1, 2], [3, 4]], dtype=np.float64)


def conv_example(
    x: np.ndarray = LECTURE_INPUT, k: np.ndarray = LECTURE_KERNEL, dy: np.ndarray = EXAMPLE_DY
) -> dict[str, Any]:
    """Every intermediate of the forward and backward pass of one 2-D cross-correlation (stride 1),
    plus the stride-2 variant (dY dilated with zeros), each checked against the fast im2col path."""
    y = correlate2d_valid(x, k)
    dw = correlate2d_valid(x, dy)  # filter gradient: input ⋆ dY
    kh, kw = k.shape
    dy_padded = pad2d(dy, kh - 1, kw - 1)
    k_rot = rot180(k)
    dx = full_convolution(dy, k)  # = correlate2d_valid(dy_padded, k_rot)
    # the same with stride 2: keep every other output; backward dilates dY with zeros first
    y2 = correlate2d_valid(x, k)[::2, ::2]
    dy2 = dy[: y2.shape[0], : y2.shape[1]]
    dy2_dilated = dilate(dy2, 2)
    dw2 = correlate2d_valid(x, dy2_dilated)
    dx2 = full_convolution(dy2_dilated, k)

    # cross-check against the fast path
    fy, cache = ops.conv2d_forward(x[None, None], k[None, None])
    fdx, fdw, _ = ops.conv2d_backward(dy[None, None], cache)
    fy2, cache2 = ops.conv2d_forward(x[None, None], k[None, None], stride=2)
    fdx2, fdw2, _ = ops.conv2d_backward(dy2[None, None], cache2)
    agrees = all(
        np.allclose(a, b)
        for a, b in (
            (y, fy[0, 0]),
            (dw, fdw[0, 0]),
            (dx, fdx[0, 0]),
            (y2, fy2[0, 0]),
            (dw2, fdw2[0, 0]),
            (dx2, fdx2[0, 0]),
        )
    )
    return {
        "x": x,
        "k": k,
        "y": y,
        "dy": dy,
        "dw": dw,
        "dy_padded": dy_padded,
        "k_rot": k_rot,
        "dx": dx,
        "y_stride2": y2,
        "dy_stride2": dy2,
        "dy_stride2_dilated": dy2_dilated,
        "dw_stride2": dw2,
        "dx_stride2": dx2,
        "fast_path_agrees": agrees,
    }


def maxpool_example(x: np.ndarray = MAXPOOL_INPUT, dy: np.ndarray = MAXPOOL_DY, k: int = 2) -> dict[str, Any]:
    """2×2 max-pool forward, the winning positions, and the routed gradient."""
    y, cache = ops.maxpool2d_forward(x[None, None], k)
    dx = ops.maxpool2d_backward(dy[None, None], cache)[0, 0]
    arg = cache["arg"][0, 0]
    winners = [(p * k + int(a) // k, q * k + int(a) % k) for (p, q), a in np.ndenumerate(arg)]
    return {"x": x, "y": y[0, 0], "winners": winners, "dy": dy, "dx": np.asarray(dx)}


# ----------------------------------------------------------------------------- printing
def _fmt(v: float) -> str:
    return f"{int(v)}" if float(v).is_integer() else f"{v:.3g}"


def _matrix(
    a: np.ndarray,
    title: str,
    *,
    mark: set[tuple[int, int]] | None = None,
    style: str = "bold yellow",
    dim_zero_border: int = 0,
):
    from rich import box
    from rich.table import Table

    t = Table(title=title, show_header=False, box=box.SQUARE, padding=(0, 1))
    for _ in range(a.shape[1]):
        t.add_column(justify="right")
    h, w = a.shape
    for i in range(h):
        cells = []
        for j in range(w):
            s = _fmt(a[i, j])
            border = dim_zero_border and (
                i < dim_zero_border
                or j < dim_zero_border
                or i >= h - dim_zero_border
                or j >= w - dim_zero_border
            )
            if mark and (i, j) in mark:
                s = f"[{style}]{s}[/]"
            elif border:
                s = f"[dim]{s}[/]"
            cells.append(s)
        t.add_row(*cells)
    return t


def _row(*tables):
    from rich.columns import Columns

    return Columns(tables, padding=(0, 3))


def print_conv(console=None) -> dict[str, Any]:
    """Print the convolution walk-through; return the numbers (see :func:`conv_example`)."""
    from rich.console import Console
    from rich.rule import Rule

    c = console or Console()
    e = conv_example()
    x, k, dy = e["x"], e["k"], e["dy"]
    c.print(Rule("[bold]Convolution: forward and backward, the lectures' way"))
    c.print(
        "Deep-learning 'convolution' is a cross-correlation: slide the kernel over the input, multiply "
        "elementwise, sum.\n"
    )
    win = {(i, j) for i in range(3) for j in range(3)}
    c.print(_row(_matrix(x, "input X (5×5)", mark=win), _matrix(k, "kernel W (3×3)")))
    terms = " + ".join(f"{_fmt(x[i, j])}·{_fmt(k[i, j])}" for i in range(3) for j in range(3))
    c.print(
        f"\n[bold]1. Forward.[/] Y\\[0,0] = Σ X\\[i,j]·W\\[i,j] over the highlighted window = {terms} "
        f"= [bold]{_fmt(e['y'][0, 0])}[/]. Sliding over all 3×3 positions (valid, stride 1):"
    )
    c.print(_row(_matrix(e["y"], "Y = X ⋆ W (3×3)", mark={(0, 0)})))
    c.print("\n[bold]2. Backward.[/] Suppose the loss sends back this gradient dY = ∂L/∂Y:")
    c.print(_row(_matrix(dy, "dY (3×3)")))
    c.print(
        "\n[bold]3. Filter gradient.[/] Every weight W\\[i,j] met X\\[p+i, q+j] at each output (p, q), so "
        "dW\\[i,j] = Σ_pq dY\\[p,q]·X\\[p+i,q+j]: the [bold]valid cross-correlation of the input with dY[/]."
    )
    c.print(_row(_matrix(e["dw"], "dW = X ⋆ dY (3×3)")))
    c.print(
        "\n[bold]4. Input gradient.[/] X\\[m,n] reached Y\\[p,q] through W\\[m−p, n−q], so "
        "dX\\[m,n] = Σ_pq dY\\[p,q]·W\\[m−p,n−q]: a [bold]full convolution[/]. Written as a slide: pad dY "
        "with k−1 = 2 zeros on every side, turn the kernel by 180°, and cross-correlate."
    )
    c.print(
        _row(
            _matrix(e["dy_padded"], "dY padded by 2 (7×7)", dim_zero_border=2),
            _matrix(e["k_rot"], "rot180(W)"),
        )
    )
    first = e["dy_padded"][:3, :3]
    terms = " + ".join(f"{_fmt(first[i, j])}·{_fmt(e['k_rot'][i, j])}" for i in range(3) for j in range(3))
    c.print(f"dX\\[0,0] = {terms} = [bold]{_fmt(e['dx'][0, 0])}[/]; over all 5×5 positions:")
    c.print(_row(_matrix(e["dx"], "dX = full_conv(dY, rot180(W)) (5×5)", mark={(0, 0)})))
    c.print(
        "\n[bold]5. Stride 2.[/] The forward keeps every other output; in the backward pass dY is "
        "[bold]dilated with zeros[/] back to the stride-1 grid, then steps 3–4 apply unchanged."
    )
    c.print(
        _row(
            _matrix(e["y_stride2"], "Y, stride 2"),
            _matrix(e["dy_stride2"], "dY (2×2)"),
            _matrix(e["dy_stride2_dilated"], "dY dilated (3×3)"),
            _matrix(e["dw_stride2"], "dW"),
            _matrix(e["dx_stride2"], "dX"),
        )
    )
    ok = (
        "[green]✓ the fast im2col path gives the same Y, dW and dX[/]"
        if e["fast_path_agrees"]
        else "[red]✗ the fast path disagrees[/]"
    )
    c.print(f"\n{ok}  (cnnzoo.scratch.ops.conv2d_forward / conv2d_backward)")
    return e


def print_maxpool(console=None) -> dict[str, Any]:
    """Print the max-pool walk-through; return the numbers (see :func:`maxpool_example`)."""
    from rich.console import Console
    from rich.rule import Rule

    c = console or Console()
    e = maxpool_example()
    win = set(e["winners"])
    c.print(Rule("[bold]Max-pool 2×2, stride 2: forward and backward"))
    c.print(
        "[bold]1. Forward.[/] Each output is the largest value of its 2×2 window; remember where it was "
        "(highlighted)."
    )
    c.print(_row(_matrix(e["x"], "input X (4×4)", mark=win), _matrix(e["y"], "Y (2×2)")))
    c.print(
        "\n[bold]2. Backward.[/] Y = max(window) depends only on the winner (derivative 1); the other "
        "three inputs did not change the output (derivative 0). So each dY goes to its window's "
        "[bold]argmax[/] and nowhere else (ties: the first in scan order, like PyTorch)."
    )
    c.print(_row(_matrix(e["dy"], "dY (2×2)"), _matrix(e["dx"], "dX (4×4)", mark=win)))
    return e
