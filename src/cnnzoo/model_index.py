"""A small generated index of every registered model's headline facts.

``cnnzoo list`` reads ``model_index.json`` so it starts without importing torch (the CUDA build
of torch alone takes about 2 s to import). The index is derived data: regenerate it with
``python -m cnnzoo.model_index`` after adding or changing a model; ``tests/test_model_index.py``
fails while it is stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

INDEX_PATH = Path(__file__).with_name("model_index.json")

__all__ = ["INDEX_PATH", "build_index", "load_index", "write_index"]


def build_index(names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Build every model on the meta device (no memory, no compute) and record its facts."""
    import torch

    from cnnzoo.registry import create_model, get_model_config, list_models

    out: dict[str, dict[str, Any]] = {}
    for name in names or list_models():
        cfg = get_model_config(name)
        with torch.device("meta"):
            model = create_model(name)
        out[name] = {
            "family": cfg.family,
            "params": sum(p.numel() for p in model.parameters()),
            "input_size": list(cfg.input_size),
            "min_input_size": cfg.min_input_size,
            "num_classes": cfg.num_classes,
            "year": cfg.year,
            "notes": cfg.notes,
        }
    return out


def load_index() -> dict[str, dict[str, Any]] | None:
    try:
        return json.loads(INDEX_PATH.read_text())
    except (OSError, ValueError):
        return None


def write_index(index: dict[str, dict[str, Any]] | None = None) -> Path:
    index = build_index() if index is None else index
    tmp = INDEX_PATH.with_suffix(".tmp")
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    tmp.replace(INDEX_PATH)
    return INDEX_PATH


if __name__ == "__main__":
    p = write_index()
    print(f"wrote {p} ({len(load_index() or {})} models)")
