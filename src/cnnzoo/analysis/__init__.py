"""Cost tables: the lecture's per-layer FLOPs, memory and receptive fields for any ``nn.Module``.

>>> import cnnzoo
>>> report = cnnzoo.analyze("alexnet", batch_size=128)  # doctest: +SKIP
>>> print(report.to_markdown())  # doctest: +SKIP

See ``docs/cost-tables.md`` for the rules.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
