"""Wave-1 models keep their structure through refactors (issue 10): cost tables, keys, counts.

``tests/golden/wave1.json.gz`` was frozen from the wave-1 code before the foundation refactor
(``tests/golden/freeze_wave1.py``). Keys added to the summary JSON later are allowed (the spec's
JSON shape grows by new keys); every key frozen there must keep its value.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from cnnzoo import create_model
from cnnzoo.analysis import analyze

GOLDEN = json.loads(gzip.decompress((Path(__file__).parent / "golden" / "wave1.json.gz").read_bytes()))


def _same_keys(frozen: dict, now: dict, where: str) -> None:
    for key, value in frozen.items():
        assert key in now, f"{where}: key {key!r} disappeared"
        assert now[key] == value, f"{where}.{key}: {now[key]!r} != frozen {value!r}"


def _same_report(frozen: dict, now: dict, where: str) -> None:
    rows_then, rows_now = frozen["layers"], now["layers"]
    names_then = [r["name"] for r in rows_then]
    names_now = [r["name"] for r in rows_now]
    assert names_now == names_then, f"{where}: rows changed"
    for a, b in zip(rows_then, rows_now, strict=True):
        _same_keys(a, b, f"{where} row {a['name']}")
    _same_keys(frozen["totals"], now["totals"], f"{where} totals")
    for key in ("model", "input_size", "batch_size", "dtype", "optimizer"):
        assert now[key] == frozen[key], f"{where}: {key}"


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_wave1_model_unchanged(name):
    frozen = GOLDEN[name]
    with torch.device("meta"):
        m = create_model(name)
    assert sum(p.numel() for p in m.parameters()) == frozen["params"]
    assert {k: list(v.shape) for k, v in m.state_dict().items()} == frozen["state_dict"]
    _same_report(frozen["summary"], json.loads(analyze(name, batch_size=1).to_json()), name)
    for depth in (1, 2):
        _same_report(
            frozen[f"summary_depth{depth}"],
            json.loads(analyze(name, batch_size=1, depth=depth).to_json()),
            f"{name} depth {depth}",
        )
