"""The screenshots in ``docs/`` of each kind of report page: a model's, a run's, a comparison's.

Writes ``docs/report-model.png`` (ResNet-50, ``layer2.0`` expanded: its projection shortcut drawn
as a skip edge), ``docs/report-run.png`` (a LeNet-5 run) and ``docs/report-compare.png``, as
palette PNGs of the browser's viewport (headless chromium). The run is ``--run DIR`` or a short
training on a slice of Fashion-MNIST.

Run: ``.venv/bin/python benchmarks/report_screenshots.py [--run DIR]``
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

from cnnzoo.report import compare_page, model_page, write_report

DOCS = Path(__file__).resolve().parent.parent / "docs"
#: networks whose configs carry their papers' ImageNet top-1 (``extra["reported"]``)
COMPARED = [
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "densenet121",
    "resnext50_32x4d",
    "seresnet50",
    "efficientnet_b0",
    "efficientnet_b3",
]


def _run(tmp: Path) -> Path:
    from cnnzoo.train.config import TrainConfig
    from cnnzoo.train.loop import fit

    out = tmp / "lenet-run"
    fit(
        TrainConfig(model="lenet5_relu", epochs=3, train_samples=6000, test_samples=1000, out=str(out)),
        progress=False,
    )
    return out


def _shot(d, path: Path, png: Path, script: str = "", height: int = 1100) -> None:
    from PIL import Image
    from selenium.webdriver.support.ui import WebDriverWait

    d.set_window_size(1280, height)
    d.get(path.as_uri())
    WebDriverWait(d, 20).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    if script:
        d.execute_script(script)
    img = Image.open(io.BytesIO(d.get_screenshot_as_png())).convert("RGB")
    img.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)
    print(f"{png}: {png.stat().st_size / 1024:.0f} KB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", help="a run directory (default: train LeNet-5 on 6,000 images for 3 epochs)")
    args = ap.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        opts.add_argument(a)
    opts.binary_location = "/usr/bin/chromium"
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            run = Path(args.run) if args.run else _run(tmp)
            model = write_report(model_page("resnet50"), tmp / "model.html")
            expand = (
                "document.querySelector(\"#diagram g.node[data-name='layer2.0']\")"
                ".dispatchEvent(new MouseEvent('click', {bubbles: true}));"
                "document.getElementById('architecture').scrollIntoView();"
                "document.querySelector('.diagram-wrap').scrollTop = 260;"
            )
            _shot(d, model, DOCS / "report-model.png", expand)
            page = write_report(model_page(str(run)), tmp / "run.html")
            _shot(d, page, DOCS / "report-run.png", "window.scrollTo(0, 0)", height=1500)
            cmp = write_report(
                compare_page(COMPARED),
                tmp / "compare.html",
            )
            _shot(
                d,
                cmp,
                DOCS / "report-compare.png",
                "document.getElementById('bubbles').scrollIntoView()",
                height=900,
            )
    finally:
        d.quit()


if __name__ == "__main__":
    main()
