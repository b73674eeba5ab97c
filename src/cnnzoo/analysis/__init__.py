"""Cost tables: the lecture's per-layer FLOPs, memory and receptive fields for any ``nn.Module``.

>>> import cnnzoo
>>> report = cnnzoo.analyze("alexnet", batch_size=128)  # doctest: +SKIP
>>> print(report.to_markdown())  # doctest: +SKIP

See ``docs/cost-tables.md`` for the rules.
"""

from cnnzoo.analysis.analyze import (
    OPTIMIZER_STATES,
    AnalysisError,
    analyze,
    inception_widths,
    parse_input_size,
)
from cnnzoo.analysis.report import CostReport, LayerCost

__all__ = [
    "analyze",
    "CostReport",
    "LayerCost",
    "AnalysisError",
    "OPTIMIZER_STATES",
    "inception_widths",
    "parse_input_size",
]
