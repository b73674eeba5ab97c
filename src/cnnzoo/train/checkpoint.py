"""Weights and checkpoints on disk: safetensors for tensors, ``torch.load(weights_only=True)`` for state.

The file names are the run directory's (:mod:`cnnzoo.rundir`). A checkpoint is ``ckpt-STEP.safetensors``
(the weights) plus ``train_state.pt`` (a :class:`cnnzoo.train.state.RunState`'s ``state_dict``: optimizer,
schedule, scaler, EMA, RNG states, position, metrics so far, best validation record), which names its
weights file and their sha256.

A checkpoint is written weights first (a new file), then the state (atomically replacing the old
one), then the previous weights file is deleted: a crash at any point leaves one consistent
checkpoint, and a NaN never reaches disk because the loop checks the loss before saving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.io import atomic_write, sha256_file
from cnnzoo.rundir import RunDir, RunDirError

__all__ = [
    "CheckpointError",
    "ResumeMismatchError",
    "save_weights",
    "load_weights",
    "save_checkpoint",
    "load_checkpoint",
]

STATE_FORMAT = "cnnzoo-train-state"
STATE_VERSION = 2  # 2: RunState (EMA, validation record, tallies by name)


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


class ResumeMismatchError(CheckpointError):
    """A ``--resume`` that is not the run it continues: a fine-tuning run resumed with another mode,
    source, weights or option than it recorded, or resumed by the command of another kind of run."""


def save_checkpoint(run_dir: str | Path, model: nn.Module, state: dict[str, Any]) -> Path:
    """Write a checkpoint atomically: ``ckpt-STEP.safetensors`` then ``train_state.pt``.

    ``state`` holds tensors and plain Python types only (it is read back with ``weights_only=True``);
    its ``global_step`` names the weights file. Returns the state file's path.
    """
    run = RunDir(run_dir)
    wpath = run.checkpoint_weights(int(state["global_step"]))
    sha = save_weights(model, wpath)
    full = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "weights_file": wpath.name,
        "weights_sha256": sha,
        **state,
    }
    atomic_write(run.state, lambda tmp: torch.save(full, tmp))
    for old in run.checkpoint_files():
        if old != wpath:
            old.unlink(missing_ok=True)
    return run.state


def load_checkpoint(run_dir: str | Path, model: nn.Module | None = None) -> dict[str, Any]:
    """Read ``train_state.pt`` (``weights_only=True``), check it, and load its weights into ``model``.

    Raises:
        CheckpointError: the file is missing, truncated, foreign, or its weights file does not match.
    """
    run_dir = Path(run_dir)
    path = RunDir(run_dir).state
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
