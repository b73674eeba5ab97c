"""Run directories: weights (safetensors), config and summary (JSON), written atomically.

Layout of a run directory::

    config.json          the resolved TrainConfig plus the model's default config
    weights.safetensors  final weights (state_dict keys), no pickle
    metrics.csv          one row per epoch
    summary.json         test_top1, wall_seconds, epochs, images_per_second, weights_sha256, ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.io import atomic_write, sha256_file

__all__ = ["RunDirError", "save_weights", "load_weights", "read_json"]

WEIGHTS = "weights.safetensors"
CONFIG = "config.json"
SUMMARY = "summary.json"
METRICS = "metrics.csv"


class RunDirError(CnnzooError, FileNotFoundError):
    """A run directory or one of its files is missing, truncated or foreign."""


def save_weights(model: nn.Module, path: str | Path) -> str:
    """Save ``model.state_dict()`` as safetensors atomically; return the file's sha256."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"format": "pt", "library": "cnnzoo"}))
    return sha256_file(path)


def load_weights(model: nn.Module, path: str | Path, *, strict: bool = True) -> None:
    """Load safetensors weights into ``model``, with clear errors for bad files or foreign keys."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"weights file not found: {path}")
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises SafetensorError / OSError on damaged files
        raise RunDirError(
            f"{path} is not a readable safetensors file ({e}); it may be truncated or not cnnzoo weights"
        ) from e
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = [k for k in own.keys() & state.keys() if own[k].shape != state[k].shape]
    if strict and (missing or unexpected or bad_shape):
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s) e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s) e.g. {unexpected[:3]}")
        if bad_shape:
            k = bad_shape[0]
            parts.append(f"shape mismatch at {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}")
        raise RunDirError(f"{path} does not match {type(model).__name__}: " + "; ".join(parts))
    with torch.no_grad():
        model.load_state_dict(state, strict=strict)


def read_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} not found; is {path.parent} a cnnzoo run directory (from `cnnzoo train`)?")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise RunDirError(f"{path} is not valid JSON ({e}); the run directory is damaged") from e
