"""Shared checks for the experiments' tests: every run writes the contract of
``shared/spec/experiments.md`` (result.json with its keys, README.md, plots)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnzoo.experiments import RESULT_KEYS, get_experiment, run_experiment


def assert_contract(result: dict, out: Path, name: str, scale: str = "quick") -> dict:
    """``result`` is what ``out/result.json`` holds, with exactly the contract's keys, a README
    that states the claim, the verdict and every metric, and the plots it lists as real PNGs."""
    on_disk = json.loads((out / "result.json").read_text())
    assert on_disk == result
    assert tuple(result) == RESULT_KEYS
    exp = get_experiment(name)
    assert (result["name"], result["claim"], result["source"]) == (name, exp.claim, exp.source)
    assert result["scale"] == scale and result["seeds"] >= 1
    assert isinstance(result["holds"], bool) and result["seconds"] > 0
    assert result["criterion"] and result["setup"] and isinstance(result["metrics"], dict)
    readme = (out / "README.md").read_text()
    assert exp.claim in readme and result["criterion"] in readme
    assert ("**holds**" if result["holds"] else "**does not hold**") in readme
    assert result["plots"], "every experiment draws its claim"
    for p in result["plots"]:
        data = (out / p).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" or data.lstrip().startswith(b"<")  # PNG or SVG
        assert len(data) < 400_000, f"{p} is {len(data)} bytes: keep plots small"
        assert f"({p})" in readme
    return result


@pytest.fixture
def run_quick(tmp_path):
    """Run experiment ``name`` at quick scale into a fresh directory and check the contract."""

    def run(name: str, **kwargs) -> dict:
        out = tmp_path / name
        result = run_experiment(name, scale="quick", out=out, **kwargs)
        return assert_contract(result, out, name)

    return run
