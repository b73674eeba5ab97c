"""The module side of the cost-row contract: every cnnzoo module declares its row type, and the
blocks' ``cost_details()`` reproduce the frozen wave-1 folded rows (type and detail text)."""

from __future__ import annotations

import gzip
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnzoo.layers
import cnnzoo.models
from cnnzoo import create_model

# The analyzer's composite kinds (contract: /work/contracts/cost-rows.md).
COMPOSITE_KINDS = {
    "block",
    "stage",
    "inception",
    "residual",
    "sequential",
    "container",
    "stem",
    "se",
    "head",
    "cell",
}


def _module_classes() -> list[type[nn.Module]]:
    found = []
    for pkg in (cnnzoo.layers, cnnzoo.models):
        for info in pkgutil.iter_modules(pkg.__path__):
            module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, nn.Module) and cls.__module__ == module.__name__:
                    found.append(cls)
    return found


def test_the_walk_finds_the_blocks():
    names = {c.__name__ for c in _module_classes()}
    assert {"ConvNormAct", "SqueezeExcite", "DropPath", "InvertedResidual", "ResNet", "GoogLeNet"} <= names


@pytest.mark.parametrize("cls", _module_classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_module_class_declares_a_cost_type(cls):
    kind = getattr(cls, "cost_type", None)
    assert isinstance(kind, str) and kind, f"{cls.__module__}.{cls.__name__} has no cost_type"
    assert kind == kind.lower() and " " not in kind
    details = getattr(cls, "cost_details", None)
    assert details is None or callable(details)


def _render(details: dict) -> str | None:
    """The contract's rendering of ``cost_details()`` into a row's detail column."""
    parts = []
    for key, value in details.items():
        if value is True:
            parts.append(key)
        elif value is None:
            parts.append(f"{key} —")
        elif isinstance(value, int) and not isinstance(value, bool):
            parts.append(f"{key} {value:,}")
        elif value is not False:
            parts.append(f"{key} {value}")
    return ", ".join(parts) or None


def _detail(name: str, module: nn.Module) -> str | None:
    fn = getattr(module, "cost_details", None)
    details = dict(fn()) if callable(fn) else {}
    if not details.pop("residual", False):
        return _render(details)
    parts = name.split(".")  # the analyzer reads "layer2.0" as stage 2, block 0
    stage = re.search(r"(\d+)$", parts[-2]) if len(parts) >= 2 else None
    where = [f"stage {stage.group(1)}"] if stage else []
    where += [f"block {parts[-1]}"] if parts[-1].isdigit() else []
    text = "residual " + ", ".join(where) if where else "residual block"
    rest = _render(details)
    return f"{text}, {rest}" if rest else text


GOLDEN = json.loads(gzip.decompress((Path(__file__).parent / "golden" / "wave1.json.gz").read_bytes()))


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_folded_wave1_rows_come_from_cost_type_and_cost_details(name):
    with torch.device("meta"):
        modules = dict(create_model(name).named_modules())
    for depth in (1, 2):
        for row in GOLDEN[name][f"summary_depth{depth}"]["layers"]:
            if row["type"] not in COMPOSITE_KINDS:
                continue
            module = modules[row["name"]]
            kind = getattr(module, "cost_type", None)
            if kind is None:  # a plain torch container folds as a block
                assert isinstance(module, nn.Sequential | nn.ModuleList | nn.ModuleDict), row["name"]
                kind = "block"
            assert kind in COMPOSITE_KINDS and kind == row["type"], (row["name"], kind, row["type"])
            assert _detail(row["name"], module) == row["detail"], row["name"]
