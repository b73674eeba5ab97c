"""A tiny trained run shared by the report's tests (LeNet-5 on a slice of Fashion-MNIST, seconds)."""

from __future__ import annotations

import json
import re

import pytest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished run directory of the torch engine, with its end-of-run report files."""
    from cnnzoo.train.config import TrainConfig
    from cnnzoo.train.loop import fit

    out = tmp_path_factory.mktemp("report-run") / "lenet"
    fit(
        TrainConfig(
            model="lenet5_relu",
            epochs=2,
            train_samples=512,
            test_samples=200,
            batch_size=64,
            threads=1,
            warmup_epochs=0,
            out=str(out),
        ),
        progress=False,
    )
    return out


def _page_data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m, "the page carries no report-data"
    return json.loads(m.group(1))


@pytest.fixture
def page_data():
    """``page_data(html)``: the JSON a page draws itself from."""
    return _page_data
