"""What a model's page shows: the analyzer's table and traced graph, and a training step's memory.

Everything here is data for the page (plain dicts and lists that become its JSON); the page draws
it (:mod:`cnnzoo.report.page`). Costs come from :func:`cnnzoo.analysis.analyze` and the edges from
:func:`cnnzoo.analysis.graph.trace_graph`, both on the meta device, so a 152-layer ResNet costs
well under a second and no weights are needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from cnnzoo.analysis.costs import OPTIMIZER_STATES, analyze
from cnnzoo.analysis.graph import trace_graph
from cnnzoo.analysis.report import CostReport

__all__ = ["Subject", "model_data", "memory_batches", "ROW_KEYS"]

#: the table's columns the page carries, per row (the analyzer's :class:`LayerCost` keys)
ROW_KEYS = (
    "name",
    "type",
    "kernels",
    "kernel_size",
    "stride",
    "padding",
    "output_shape",
    "activations",
    "params",
    "flops",
    "macs",
    "activation_memory_bytes",
    "parameter_memory_bytes",
    "receptive_field",
    "jump",
    "detail",
    "saved_bytes",
    "backward_flops",
)


@dataclass
class Subject:
    """What one page is about: a registered name (analyzed on meta) or a module with its name.

    ``model`` is None for a bare registry name; with weights (a run, ``--weights``) it is the
    loaded module, analyzed through meta stand-ins of its weights.
    """

    name: str
    model: nn.Module | None
    input_size: tuple[int, ...]
    config: Any  # the registry's ModelConfig, or None

    @property
    def target(self) -> str | nn.Module:
        return self.model if self.model is not None else self.name


def memory_batches(batch: int) -> list[int]:
    """The batches whose training step is traced for the page's memory chart: 1, B and 4B.

    At every moment of a step the live bytes are affine in the batch, so the peak is their maximum,
    convex and piecewise linear; the page interpolates between these traced points.
    """
    return sorted({1, batch, 4 * batch})


def _rows(report: CostReport) -> list[dict[str, Any]]:
    out = []
    for r in report.layers:
        d = r.to_dict()
        row = {k: d[k] for k in ROW_KEYS}
        row["counted"] = report.counted(r)
        row["whole_input"] = r.whole_input
        out.append(row)
    return out


def _trainable_bytes(subject: Subject, report: CostReport, itemsize: int) -> int:
    """Bytes of one gradient per trainable parameter."""
    if subject.model is not None:
        return sum(p.numel() for p in subject.model.parameters() if p.requires_grad) * itemsize
    return report.totals["params"] * itemsize


def _memory_point(report: CostReport, grads: int) -> dict[str, Any]:
    t = report.training
    if t is None:
        return {"batch": report.batch_size, "peak": None}
    m = t.memory
    params = m.params + m.buffers
    rest = max(m.peak - params - grads - m.optimizer_state, 0)
    return {
        "batch": report.batch_size,
        "peak": m.peak,
        "peak_at": m.peak_at,
        "params": params,
        "grads": grads,
        "optimizer_state": m.optimizer_state,
        "activations": rest,
        "data": m.data,
    }


def _memory(subject: Subject, report: CostReport, optimizer: str) -> dict[str, Any]:
    """The real peak at the traced batches, split, and the lecture's bookkeeping per sample."""
    itemsize = 2 if report.dtype in ("float16", "bfloat16") else 8 if report.dtype == "float64" else 4
    grads = _trainable_bytes(subject, report, itemsize)
    points = []
    for b in memory_batches(report.batch_size):
        r = report if b == report.batch_size else _analyze(subject, b, optimizer, backward=True)
        points.append(_memory_point(r, grads))
    totals = report.totals
    k = OPTIMIZER_STATES[optimizer]
    return {
        "optimizer": optimizer,
        "optimizer_states": k,
        "itemsize": itemsize,
        "batch": report.batch_size,
        "points": [p for p in points if p["peak"] is not None],
        "lecture": {
            "activations_per_sample": totals["activation_memory_bytes"] / report.batch_size,
            "params": totals["params"] * itemsize,
            "grads": totals["params"] * itemsize,
            "optimizer_state": k * totals["params"] * itemsize,
        },
    }


def _analyze(subject: Subject, batch: int, optimizer: str, backward: bool) -> CostReport:
    return analyze(
        subject.target,
        input_size=subject.input_size,
        batch_size=batch,
        optimizer=optimizer,
        backward=backward,
    )


def _config(subject: Subject) -> dict[str, Any] | None:
    cfg = subject.config
    if cfg is None:
        return None
    return {
        "paper": cfg.paper,
        "year": cfg.year,
        "family": cfg.family,
        "notes": cfg.notes,
        "input_size": list(cfg.input_size),
        "reported": (cfg.extra or {}).get("reported"),
    }


def model_data(subject: Subject, batch: int = 32, optimizer: str = "momentum") -> dict[str, Any]:
    """The model page's data: table rows and totals, graph, memory points, the paper's config."""
    report = _analyze(subject, batch, optimizer, backward=True)
    graph = trace_graph(subject.target, subject.input_size)
    totals = report.totals
    return {
        "name": subject.name,
        "input_size": list(subject.input_size),
        "batch": batch,
        "dtype": report.dtype,
        "optimizer": optimizer,
        "rows": _rows(report),
        "totals": totals,
        "totals_include": report.totals_rows,
        "flops_per_image": report.flops_per_image,
        "final_receptive_field": report.final_receptive_field,
        "graph": graph.to_dict(),
        "memory": _memory(subject, report, optimizer),
        "config": _config(subject),
        "notes": list(report.notes),
    }
