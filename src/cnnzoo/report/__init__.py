"""The visual report: one self-contained, offline HTML page per model, run or comparison.

>>> from cnnzoo.report import model_page, write_report
>>> write_report(model_page("resnet50"), "resnet50.html")  # doctest: +SKIP

``cnnzoo report MODEL|RUN_DIR --out FILE.html`` and ``cnnzoo report --compare A B ... --out
FILE.html`` on the command line; ``docs/report.md`` describes the pages.
"""

from __future__ import annotations

from cnnzoo._lazy import lazy_getattr

# Imported lazily: the CLI registers this package's command without importing torch.
_EXPORTS = {
    "model_page": "build",
    "compare_page": "build",
    "write_report": "build",
    "ReportError": "build",
    "open_subject": "build",
    "render": "page",
}

__all__ = list(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
