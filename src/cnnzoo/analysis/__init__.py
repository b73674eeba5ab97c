"""Cost tables: the lecture's per-layer FLOPs, memory and receptive fields for any ``nn.Module``.

>>> import cnnzoo
>>> report = cnnzoo.analyze("alexnet", batch_size=128)  # doctest: +SKIP
>>> print(report.to_markdown())  # doctest: +SKIP

See ``docs/cost-tables.md`` for the rules.
"""

from __future__ import annotations

from cnnzoo._lazy import lazy_getattr

# Imported lazily: `cnnzoo list` loads this package's CLI module and must not import torch.
_EXPORTS = {
    "analyze": "costs",
    "AnalysisError": "costs",
    "OPTIMIZER_STATES": "costs",
    "inception_widths": "costs",
    "parse_input_size": "costs",
    "CostReport": "report",
    "LayerCost": "report",
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
