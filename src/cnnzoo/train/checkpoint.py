"""Run directories: weights (safetensors), config and summary (JSON), written atomically.

Layout of a run directory::

    config.json          the resolved TrainConfig plus the model's default config
    weights.safetensors  final weights (state_dict keys), no pickle
    metrics.csv          one row per epoch
    summary.json         test_top1, wall_seconds, epochs, images_per_second, weights_sha256, ...
    best.safetensors     the weights of the epoch with the best test top-1
    ckpt-STEP.safetensors  the latest checkpoint's weights (STEP = optimizer steps done)
    train_state.pt       the latest checkpoint's training state: optimizer, schedule, scaler, RNG
                         states, sampler position, metrics so far; it names its weights file and
                         their sha256, and is loaded with ``torch.load(weights_only=True)``
    confusion_matrix.{csv,png}, misclassified.png, curves.png   the end-of-run report

A checkpoint is written weights first (a new file), then the state (atomically replacing the old
one), then the previous weights file is deleted: a crash at any point leaves one consistent
checkpoint, and a NaN never reaches disk because the loop checks the loss before saving.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.io import atomic_write, sha256_file

__all__ = [
    "RunDirError",
    "CheckpointError",
    "save_weights",
    "load_weights",
    "read_json",
    "save_checkpoint",
    "load_checkpoint",
    "has_checkpoint",
]

WEIGHTS = "weights.safetensors"
CONFIG = "config.json"
SUMMARY = "summary.json"
METRICS = "metrics.csv"
BEST = "best.safetensors"
STATE = "train_state.pt"
STATE_FORMAT = "cnnzoo-train-state"
STATE_VERSION = 1


class RunDirError(CnnzooError, FileNotFoundError):
    """A run directory or one of its files is missing, truncated or foreign."""


def save_weights(model: nn.Module, path: str | Path) -> str:
    """Save ``model.state_dict()`` as safetensors atomically; return the file's sha256."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    # One metadata key only: safetensors keeps metadata in a Rust HashMap whose order is random per
    # call, so two keys would make the file's sha256 (summary.json's weights_sha256) vary run to run.
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
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
            parts.append(
                f"shape mismatch at {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
            )
        raise RunDirError(f"{path} does not match {type(model).__name__}: " + "; ".join(parts))
    with torch.no_grad():
        model.load_state_dict(state, strict=strict)


class CheckpointError(CnnzooError, ValueError):
    """A training checkpoint is missing, truncated, inconsistent or not from cnnzoo."""


def has_checkpoint(run_dir: str | Path) -> bool:
    return (Path(run_dir) / STATE).is_file()


def save_checkpoint(run_dir: str | Path, model: nn.Module, state: dict[str, Any]) -> Path:
    """Write a checkpoint atomically: ``ckpt-STEP.safetensors`` then ``train_state.pt``.

    ``state`` holds tensors and plain Python types only (it is read back with ``weights_only=True``);
    its ``global_step`` names the weights file. Returns the state file's path.
    """
    run_dir = Path(run_dir)
    step = int(state["global_step"])
    wname = f"ckpt-{step:08d}.safetensors"
    sha = save_weights(model, run_dir / wname)
    full = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "weights_file": wname,
        "weights_sha256": sha,
        **state,
    }
    atomic_write(run_dir / STATE, lambda tmp: torch.save(full, tmp))
    for old in run_dir.glob("ckpt-*.safetensors"):
        if old.name != wname:
            old.unlink(missing_ok=True)
    return run_dir / STATE


def load_checkpoint(run_dir: str | Path, model: nn.Module | None = None) -> dict[str, Any]:
    """Read ``train_state.pt`` (``weights_only=True``), check it, and load its weights into ``model``.

    Raises:
        CheckpointError: the file is missing, truncated, foreign, or its weights file does not match.
    """
    run_dir = Path(run_dir)
    path = run_dir / STATE
    if not path.is_file():
        raise CheckpointError(
            f"{path} not found: {run_dir} holds no training checkpoint to resume (expected "
            f"the --out directory of an interrupted `cnnzoo train`)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle refused by weights_only, ...
        raise CheckpointError(
            f"{path} is not a readable cnnzoo training state ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:160]}); it may be truncated or foreign. Expected a "
            f"file written by `cnnzoo train` (format {STATE_FORMAT!r})"
        ) from e
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(
            f"{path} is not a cnnzoo training state: expected a dict with format "
            f"{STATE_FORMAT!r}, got {type(state).__name__}"
            + (f" with format {state.get('format')!r}" if isinstance(state, dict) else "")
        )
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(
            f"{path} has state version {state.get('version')!r}; this cnnzoo reads version {STATE_VERSION}"
        )
    wpath = run_dir / str(state.get("weights_file", ""))
    if not wpath.is_file():
        raise CheckpointError(f"{path} names weights {wpath.name!r}, which is missing from {run_dir}")
    if sha256_file(wpath) != state.get("weights_sha256"):
        raise CheckpointError(
            f"{wpath} does not match the sha256 recorded in {path}; the checkpoint is "
            "damaged (interrupted copy?)"
        )
    if model is not None:
        try:
            load_weights(model, wpath)
        except RunDirError as e:
            raise CheckpointError(str(e)) from e
    return state


def read_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} not found; is {path.parent} a cnnzoo run directory (from `cnnzoo train`)?")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise RunDirError(f"{path} is not valid JSON ({e}); the run directory is damaged") from e
