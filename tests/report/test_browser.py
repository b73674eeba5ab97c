"""The pages in a real browser: Debian's chromium, headless, driven by selenium and chromium-driver.

``make test`` installs the browser when it is missing (``scripts/ensure-browser.sh``). One driver
serves the module, and the tests run in one xdist group, so one browser starts per suite.
"""

from __future__ import annotations

import shutil

import pytest

from cnnzoo.report import compare_page, model_page, write_report
from cnnzoo.rundir import RunDir

pytestmark = pytest.mark.xdist_group("report")  # one worker trains the shared run

CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser")
DRIVER = ("/usr/bin/chromedriver", "chromedriver")


def _which(names: tuple[str, ...]) -> str:
    for n in names:
        path = shutil.which(n)
        if path:
            return path
    pytest.fail(f"{names[0]} is not installed: run `bash scripts/ensure-browser.sh` (make test does)")


@pytest.fixture(scope="module")
def driver():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra")
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
    opts.binary_location = _which(CHROMIUM)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(_which(DRIVER)), options=opts)
    d.set_page_load_timeout(30)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory, tiny_run):
    out = tmp_path_factory.mktemp("pages")
    return {
        "model": write_report(model_page("resnet18"), out / "model.html"),
        "run": write_report(model_page(str(tiny_run)), out / "run.html"),
        "compare": write_report(
            compare_page(["resnet18", "efficientnet_b0", str(tiny_run)]), out / "compare.html"
        ),
    }


def _open(driver, path):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def _nodes(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#diagram g.node')].map(g => g.dataset.name)"
    )


def _click_node(driver, name: str) -> None:
    # a mouse click on the SVG group, as the reader gives it (the diagram is redrawn after)
    driver.execute_script(
        "document.querySelector(`#diagram g.node[data-name='${arguments[0]}']`)"
        ".dispatchEvent(new MouseEvent('click', {bubbles: true}))",
        name,
    )


@pytest.mark.parametrize("kind", ["model", "run", "compare"])
def test_pages_render_without_console_errors(driver, pages, kind):
    assert _open(driver, pages[kind]) == []
    sections = driver.execute_script("return [...document.querySelectorAll('main section')].map(s => s.id)")
    expected = {
        "model": {"overview", "architecture", "table", "charts", "memory"},
        "run": {"run", "curves", "confusion", "misclassified", "filters", "stages", "config", "architecture"},
        "compare": {"side", "compare-charts", "bubbles"},
    }[kind]
    assert expected <= set(sections)


def test_diagram_has_a_node_per_layer_and_blocks_expand(driver, pages):
    from selenium.webdriver.common.by import By

    _open(driver, pages["model"])
    # He et al. Table 1, ResNet-18: the stem, then two basic blocks per stage; layer1's two blocks
    # are the same block, drawn once as ×2
    assert _nodes(driver) == [
        "input", "conv1", "bn1", "relu", "maxpool", "layer1.0–1", "layer2.0", "layer2.1", "layer3.0",
        "layer3.1", "layer4.0", "layer4.1", "avgpool", "flatten", "fc",
    ]  # fmt: skip
    run = driver.find_element(By.CSS_SELECTOR, "#diagram g.node[data-name='layer1.0–1']")
    assert run.get_attribute("data-kind") == "run" and "×2" in run.text
    _click_node(driver, "layer1.0–1")
    assert _nodes(driver)[5:7] == ["layer1.0", "layer1.1"]
    _click_node(driver, "layer2.0")
    names = _nodes(driver)
    block = names[names.index("layer2.0.conv1") : names.index("layer2.1")]
    assert block == [
        "layer2.0.conv1", "layer2.0.bn1", "layer2.0.relu", "layer2.0.conv2", "layer2.0.bn2",
        "layer2.0.downsample", "layer2.0.add", "layer2.0.relu#2",
    ]  # fmt: skip
    # the residual add's two inputs: the main path, and the projection shortcut drawn as a skip
    skips = driver.execute_script(
        "return [...document.querySelectorAll('#diagram path.edge.skip')].map(p => p.dataset.from + '>' + p.dataset.to)"
    )
    assert skips == ["layer2.0.downsample>layer2.0.add"]
    shapes = driver.execute_script(
        "return [...document.querySelectorAll('#diagram text.elabel')].map(t => t.textContent)"
    )
    assert "128×28×28" in shapes and "3×224×224" in shapes
    _click_node(driver, "layer2.0.conv1")  # a layer folds its block back
    assert "layer2.0" in _nodes(driver) and "layer2.0.conv1" not in _nodes(driver)


def test_colour_hover_and_sort(driver, pages):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open(driver, pages["model"])
    fill = lambda: driver.execute_script(  # noqa: E731
        "return [...document.querySelectorAll('#diagram g.node rect')].map(r => r.getAttribute('fill')).join()"
    )
    before = fill()
    Select(driver.find_element(By.ID, "colour-by")).select_by_value("params")
    assert fill() != before
    ActionChains(driver).move_to_element(
        driver.find_element(By.CSS_SELECTOR, "#diagram g.node[data-name='conv1']")
    ).perform()
    tip = driver.find_element(By.ID, "tooltip")
    assert tip.is_displayed() and "9,408" in tip.text  # conv1: 64·3·7·7 weights
    driver.find_element(By.CSS_SELECTOR, "#cost-table th[data-key='flops']").click()
    first = driver.find_element(By.CSS_SELECTOR, "#cost-table tbody tr").get_attribute("data-name")
    assert first == "conv1"  # the 7×7 stem is ResNet-18's costliest row
    assert driver.find_element(By.CSS_SELECTOR, "#cost-table tfoot td").text == "total"


def test_batch_changes_the_training_memory(driver, pages):
    _open(driver, pages["model"])
    peak = lambda: int(driver.execute_script("return document.getElementById('memory-peak').dataset.peak"))  # noqa: E731
    at_32 = peak()
    driver.execute_script(
        "const s = document.getElementById('batch-slider'); s.value = 128; s.dispatchEvent(new Event('input'))"
    )
    assert peak() > at_32


def test_run_page_shows_the_runs_accuracy(driver, pages, tiny_run):
    from selenium.webdriver.common.by import By

    _open(driver, pages["run"])
    top1 = RunDir(tiny_run).read_summary()["test_top1"]
    assert driver.find_element(By.ID, "test-top1").text == f"{top1:.2f}%"
    cells = driver.execute_script(
        "return [...document.querySelectorAll('#confusion-matrix td')].map(c => +c.textContent)"
    )
    assert len(cells) == 100 and sum(cells) == 200  # ten classes; the run's 200 test images
    # LeNet-5 has no repeated block: every row of the table is a node
    assert len(_nodes(driver)) == 1 + driver.execute_script(
        "return JSON.parse(document.getElementById('report-data').textContent).model.graph.nodes.length"
    )


def test_compare_page_draws_a_bubble_per_known_accuracy(driver, pages):
    from selenium.webdriver.common.by import By

    _open(driver, pages["compare"])
    bubbles = driver.execute_script(
        "return [...document.querySelectorAll('#bubble-chart circle')].map(c => c.dataset.name)"
    )
    # EfficientNet-B0's top-1 is its paper's (from its config), the run's its own; ResNet-18's config has none
    assert bubbles == ["efficientnet_b0", "lenet5_relu (lenet)"]
    assert "no accuracy known for: resnet18" in driver.find_element(By.ID, "bubbles").text
    heads = driver.execute_script(
        "return [...document.querySelectorAll('#compare-table th')].map(t => t.textContent)"
    )
    assert heads == ["", "resnet18", "efficientnet_b0", "lenet5_relu (lenet)"]
