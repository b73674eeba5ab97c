"""Helpers shared by the analytic experiments: a module's cost table, summed by row type.

The numbers come from :func:`cnnzoo.analysis.analyze` (a forward trace on the meta device), never
from formulas typed into the experiment: the formulas are what the tests check the analyzer against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from cnnzoo.analysis.report import CostReport


def cost_table(
    model: str | nn.Module, input_size: tuple[int, ...] | None = None, *, depth: int | None = None
) -> CostReport:
    """The forward-only cost table of ``model`` at batch 1 (the lecture's columns), leaf rows or
    folded at ``depth``."""
    from cnnzoo.analysis import analyze

    return analyze(model, input_size=input_size, batch_size=1, backward=False, depth=depth)


def row_sum(report: CostReport, key: str, types: tuple[str, ...] = ("conv",)) -> int:
    """The sum of column ``key`` over the rows whose type is in ``types``."""
    return sum(int(getattr(r, key)) for r in report.layers if r.type in types)


def row_count(report: CostReport, types: tuple[str, ...]) -> int:
    return sum(1 for r in report.layers if r.type in types)


def conv_costs(model: nn.Module, input_size: tuple[int, int, int]) -> dict[str, Any]:
    """Params, FLOPs (2 per multiply-add), MACs and output activations of ``model``'s conv rows,
    its ReLUs, and the receptive field of its output."""
    r = cost_table(model, input_size)
    return {
        "params": row_sum(r, "params"),
        "flops": row_sum(r, "flops"),
        "macs": row_sum(r, "macs"),
        "activations": row_sum(r, "activations"),
        "relus": row_count(r, ("act",)),
        "receptive_field": r.layers[-1].receptive_field,
    }
