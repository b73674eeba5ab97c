"""Freeze the wave-1 models' observable structure before the foundation refactor (issue 10).

For every wave-1 model: ``cnnzoo summary --format json`` at the default input and batch 1 (full
depth, ``--depth 1`` and ``--depth 2``), the ``state_dict`` keys with their shapes, and the parameter count. The
test ``tests/test_golden.py`` compares the current code against this file, so a refactor that
changes any of them fails. Rerun only to accept a deliberate change:

    .venv/bin/python tests/golden/freeze_wave1.py
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import torch

from cnnzoo import create_model, list_models
from cnnzoo.analysis import analyze

OUT = Path(__file__).with_name("wave1.json.gz")


def snapshot(name: str) -> dict:
    with torch.device("meta"):
        m = create_model(name)
    return {
        "params": sum(p.numel() for p in m.parameters()),
        "state_dict": {k: list(v.shape) for k, v in m.state_dict().items()},
        "summary": json.loads(analyze(name, batch_size=1).to_json()),
        "summary_depth1": json.loads(analyze(name, batch_size=1, depth=1).to_json()),
        "summary_depth2": json.loads(analyze(name, batch_size=1, depth=2).to_json()),
    }


def main() -> None:
    data = {name: snapshot(name) for name in list_models()}
    OUT.write_bytes(gzip.compress(json.dumps(data, sort_keys=True).encode(), mtime=0))
    print(f"wrote {OUT} ({len(data)} models, {OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
