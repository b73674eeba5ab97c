"""Cost tables: the lecture's per-layer FLOPs, memory and receptive fields for any ``nn.Module``.

>>> import cnnzoo
>>> report = cnnzoo.analyze("alexnet", batch_size=128)  # doctest: +SKIP
>>> print(report.to_markdown())  # doctest: +SKIP

See ``docs/cost-tables.md`` for the rules. The package, by job: ``ops`` (the op table), ``fields``
(receptive fields), ``kinds`` (row types), ``meta`` (building on the meta device), ``tracer`` (the
dispatch mode), ``step`` (a training step traced on meta: what autograd saves and frees, backward
FLOPs), ``memory`` (the step's peak, optimizers, the largest batch that fits), ``rows`` (trace to
table rows), ``costs`` (``analyze``, ``fit_batch_size``), ``report`` (the exports), ``coverage`` (which input
positions reach an output: ``input_coverage``).
"""

from __future__ import annotations

from cnnzoo._lazy import lazy_getattr

# Imported lazily: `cnnzoo list` loads this package's CLI module and must not import torch.
_EXPORTS = {
    "analyze": "costs",
    "fit_batch_size": "costs",
    "parse_input_sizes": "costs",
    "Training": "report",
    "OPTIMIZERS": "memory",
    "parse_bytes": "memory",
    "trace_step": "step",
    "AnalysisError": "costs",
    "OPTIMIZER_STATES": "costs",
    "parse_input_size": "costs",
    "CostReport": "report",
    "LayerCost": "report",
    "ROW_TYPES": "kinds",
    "COMPOSITE_KINDS": "kinds",
    "Field": "fields",
    "FastMetaInit": "meta",
    "MetaShapes": "tracer",
    "input_coverage": "coverage",
    "Coverage": "coverage",
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
