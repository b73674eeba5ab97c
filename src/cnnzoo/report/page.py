"""One self-contained HTML file: the page's data as JSON, and the script and styles that draw it.

Nothing is fetched: the script (``assets/report.js``), the styles (``assets/report.css``) and the
images (PNG data URIs) are inline, and the diagram is laid out by the script itself (layered, as
graphviz's ``dot`` draws, but in a few hundred lines and without graphviz).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from cnnzoo import __version__

__all__ = ["render", "page_json", "ASSETS"]

ASSETS = Path(__file__).parent / "assets"


def _clean(x: Any) -> Any:
    """JSON-safe: non-finite floats as null (JSON has no NaN), tuples as lists."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def page_json(data: dict[str, Any]) -> str:
    """The data as JSON safe inside ``<script>``: ``<`` is escaped, so no ``</script>`` can end it."""
    text = json.dumps(_clean(data), separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render(data: dict[str, Any], title: str) -> str:
    """The page: ``data["kind"]`` is ``model``, ``run`` or ``compare``."""
    css = (ASSETS / "report.css").read_text()
    js = (ASSETS / "report.js").read_text()
    data = {**data, "version": __version__}
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<meta name="generator" content="cnnzoo {html.escape(__version__)}">
<title>cnnzoo report: {html.escape(title)}</title>
<style>{css}</style>
</head>
<body class="kind-{html.escape(data["kind"])}">
<header><h1>{html.escape(title)}</h1><p class="sub" id="subtitle"></p></header>
<main id="app"><noscript>This report draws its diagram and charts with JavaScript; enable it to see them.</noscript></main>
<div id="tooltip" role="tooltip" hidden></div>
<script type="application/json" id="report-data">{page_json(data)}</script>
<script>{js}</script>
</body>
</html>
"""
