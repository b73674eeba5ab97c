"""The report's pages for deep nets: their size, how fast headless chromium draws them, how many
diagram nodes a reader sees collapsed (issue 18).

Targets: ResNet-152's page ≤ 3 MB and drawn in ≤ 2 s headless; EfficientNet-B7's page readable,
collapsed by default. For each model this writes the page (``cnnzoo.report.model_page``, timed:
the analyzer's traces included), opens it in headless chromium (selenium with Debian's
chromium-driver) and reports:

* ``render``: from navigation start to the first frame painted after the page's script drew the
  diagram, table and charts (``performance.now()`` in a ``requestAnimationFrame`` callback:
  layout and paint included), the median of 3 loads;
* ``all``: the same to the frame after the whole cost table is in (the page draws the first 80
  rows with its first frame and the rest right after), the median of 3 loads; the target is on it;
* ``load``: what selenium's ``get`` waited for (the document's load event), the median of 3 loads;
* ``baseline``: the same two for an empty page in the same browser and run, so that a loaded
  machine shows as a slower baseline rather than a slower report;
* ``nodes``: the diagram's nodes collapsed (as the page opens) and expanded (``expand all``), and
  the time of the expansion's redraw.

Run: ``.venv/bin/python benchmarks/report_pages.py [--models resnet152 efficientnet_b7 ...]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from cnnzoo.report import model_page, write_report

MB = 2**20
TARGETS = {"resnet152": (3.0, 2.0)}  # MB, seconds


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        opts.add_argument(a)
    opts.binary_location = "/usr/bin/chromium"
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def _load(d, path: Path) -> tuple[float, float, float]:
    """(first frame and complete page, in seconds by the page's clock; load seconds as selenium waited)."""
    from selenium.webdriver.support.ui import WebDriverWait

    t = time.perf_counter()
    d.get(path.as_uri())
    load = time.perf_counter() - t
    WebDriverWait(d, 20, poll_frequency=0.02).until(
        lambda d: d.execute_script("return document.body.dataset.completeMs !== undefined")
    )
    ms, done = d.execute_script(
        "return [Number(document.body.dataset.paintMs), Number(document.body.dataset.completeMs)]"
    )
    errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    if errors:
        raise SystemExit(f"{path.name}: console errors {errors}")
    return ms / 1000, done / 1000, load


def _median(d, path: Path, n: int = 3) -> tuple[float, ...]:
    runs = [_load(d, path) for _ in range(n)]
    return tuple(statistics.median(r[k] for r in runs) for k in range(3))


def _nodes(d) -> int:
    return d.execute_script("return document.querySelectorAll('#diagram g.node').length")


def measure(d, name: str, out: Path) -> dict:
    t = time.perf_counter()
    html = model_page(name)
    build = time.perf_counter() - t
    path = write_report(html, out / f"{name}.html")
    render, complete, load = _median(d, path)
    collapsed = _nodes(d)
    t = time.perf_counter()
    d.execute_script("document.getElementById('expand-all').click()")
    expanded = _nodes(d)
    expand = time.perf_counter() - t
    return {
        "model": name,
        "MB": path.stat().st_size / MB,
        "build_s": build,
        "render_s": render,
        "complete_s": complete,
        "load_s": load,
        "collapsed": collapsed,
        "expanded": expanded,
        "expand_s": expand,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--models", nargs="+", default=["resnet18", "resnet152", "densenet121", "efficientnet_b7"]
    )
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    d = _driver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            blank = out / "blank.html"
            blank.write_text(
                "<!DOCTYPE html><html><body><script>requestAnimationFrame(() => setTimeout(() => "
                "document.body.dataset.paintMs = document.body.dataset.completeMs = performance.now()))"
                "</script></body></html>"
            )
            base_render, _, base_load = _median(d, blank)
            print(f"baseline (empty page): first frame {base_render:.3f} s, load {base_load:.3f} s")
            print(
                f"{'model':<18}{'MB':>7}{'build s':>9}{'frame s':>9}{'all s':>7}{'all/base':>9}{'load s':>8}"
                f"{'nodes':>7}{'expanded':>10}{'expand s':>10}  target"
            )
            for name in args.models:
                r = measure(d, name, out)
                target = TARGETS.get(name)
                verdict = ""
                if target:
                    ok = r["MB"] <= target[0] and r["complete_s"] <= target[1]
                    verdict = f"≤ {target[0]} MB, ≤ {target[1]} s: {'met' if ok else 'MISSED'}"
                print(
                    f"{name:<18}{r['MB']:>7.2f}{r['build_s']:>9.2f}{r['render_s']:>9.3f}{r['complete_s']:>7.3f}"
                    f"{r['complete_s'] / base_render:>9.1f}{r['load_s']:>8.3f}"
                    f"{r['collapsed']:>7}{r['expanded']:>10}{r['expand_s']:>10.3f}  {verdict}"
                )
    finally:
        d.quit()


if __name__ == "__main__":
    main()
