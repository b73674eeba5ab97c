"""Re-opening a run directory: rebuild the model from ``config.json`` and load its weights."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from torch import nn

from cnnzoo.errors import ConfigError
from cnnzoo.io import sha256_file
from cnnzoo.registry import create_model
from cnnzoo.rundir import BEST, RunDir, RunDirError
from cnnzoo.train.checkpoint import load_weights
from cnnzoo.train.network_args import WEIGHTS_FROM, add_network_arguments

__all__ = [
    "load_run",
    "run_weights",
    "run_test_indices",
    "verify_weights",
    "WeightsChangedError",
    "WEIGHTS_FROM",
    "default_weights_from",
    "Network",
    "is_run_dir",
    "open_network",
    "add_network_arguments",
]

#: summary.json's record of each weights file a run writes: (file-name key, default name, sha256 key)
RECORDS = {
    "raw": ("weights_file", "weights.safetensors", "weights_sha256"),
    "ema": ("ema_file", "ema.safetensors", "ema_sha256"),
    "best": ("best_file", BEST, "best_sha256"),
}


class WeightsChangedError(RunDirError):
    """A run's weights file is not the one its run recorded (its sha256 differs, or none was recorded)."""


def verify_weights(path: str | Path, expected: str | None, *, record: str = "summary.json") -> Path:
    """Check that ``path``'s sha256 is ``expected`` (the run's record); return ``path``.

    Raises:
        RunDirError: the file is missing.
        WeightsChangedError: no sha256 was recorded, or the file's differs from it.
    """
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"weights file not found: {path}")
    if not expected:
        raise WeightsChangedError(
            f"{record} records no sha256 for {path.name}, so its weights cannot be checked; "
            "retrain the run (or restore its summary.json)"
        )
    got = sha256_file(path)
    if got != expected:
        raise WeightsChangedError(
            f"{path} has changed since training: its sha256 {got[:12]}… is not the {expected[:12]}… that "
            f"{record} records; restore the file or retrain"
        )
    return path


def default_weights_from(run_dir: str | Path) -> str:
    """The weights a run reports (``summary.json``'s ``reported_weights``; ``raw`` if it does not say)."""
    run = RunDir(run_dir)
    return run.read_summary().get("reported_weights", "raw") if run.summary.is_file() else "raw"


def run_weights(run_dir: str | Path, weights_from: str | None = None) -> tuple[Path, str]:
    """The weights file of a finished run, checked against its recorded sha256, and its kind.

    Args:
        run_dir: the run directory.
        weights_from: ``"raw"``, ``"ema"`` or ``"best"`` (``best.safetensors``, with
            ``--val-samples``); None: the ones whose test accuracy the run reports.

    Raises:
        RunDirError: the run did not finish (no ``summary.json``), or the file is missing.
        WeightsChangedError: the file is not the one the run recorded.
        ConfigError: ``weights_from`` is not raw, ema or best.
    """
    run = RunDir(run_dir)
    kind = weights_from or default_weights_from(run.path)
    if kind not in RECORDS:
        raise ConfigError(f"--weights-from must be raw, ema or best, got {kind!r}")
    if not run.summary.is_file():
        hint = f"resume it with `{run.resume_command()}`" if run.has_checkpoint() else "train it again"
        raise RunDirError(
            f"{run.path} has no summary.json: the run did not finish, so its weights were never "
            f"recorded; {hint}"
        )
    summary = run.read_summary()
    file_key, default_name, sha_key = RECORDS[kind]
    path = run / str(summary.get(file_key, default_name))
    if kind == "ema" and not path.is_file():
        raise RunDirError(
            f"{run.path} has no {path.name}: it was trained without --ema; use --weights-from raw"
        )
    if kind == "best" and not path.is_file():
        raise RunDirError(f"{run.path} has no {path.name}: it was trained without --val-samples")
    return verify_weights(path, summary.get(sha_key), record=str(run.summary)), kind


def load_run(
    run_dir: str | Path, *, device: str = "cpu", weights_from: str | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """The trained model of a run directory (eval mode) and its resolved config.

    The weights are checked against the sha256 that the run recorded in ``summary.json``
    (:func:`run_weights`) before they are loaded: every command that opens a run (eval, report,
    export, finetune, through :func:`open_network`) refuses a file that changed since training.

    Args:
        run_dir: the ``--out`` directory of ``cnnzoo train`` or ``cnnzoo scratch train``.
        device: where to put the model.
        weights_from: ``"raw"`` (``weights.safetensors``), ``"ema"`` (``ema.safetensors``, from
            ``--ema``) or ``"best"`` (``best.safetensors``); None: the ones whose test accuracy the
            run reports.

    Raises:
        RunDirError: the directory, its config or the chosen weights are missing or damaged, or the
            run did not finish.
        WeightsChangedError: the weights are not the ones the run recorded.
        ConfigError: ``weights_from`` is not raw, ema or best.
    """
    model, cfg, _ = _open_run(run_dir, device, weights_from)
    return model, cfg


def _check_spec(spec: Any, what: str) -> None:
    if not isinstance(spec, str | os.PathLike):
        raise ConfigError(f"expected {what}, got {spec!r} ({type(spec).__name__})")


def _open_run(run_dir: str | Path, device: str, weights_from: str | None) -> tuple[nn.Module, dict, Path]:
    _check_spec(run_dir, "a run directory (a path)")
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise RunDirError(f"run directory not found: {run.path} (give the --out directory of `cnnzoo train`)")
    cfg = run.read_config()
    for key in ("model", "num_classes", "in_chans"):
        if key not in cfg:
            raise RunDirError(f"{run.config} lacks {key!r}; it was not written by `cnnzoo train`")
    path, _ = run_weights(run.path, weights_from)
    model = create_model(
        cfg["model"], num_classes=cfg["num_classes"], in_chans=cfg["in_chans"], **cfg.get("model_kwargs", {})
    )
    load_weights(model, path)
    return model.to(device).eval(), cfg, path


def run_test_indices(cfg: dict[str, Any], n: int) -> list[int] | None:
    """The test images a run evaluated (``--test-samples``), as indices into its ``n``-image test
    split; None: all of them. Drawn as each engine drew them, so that ``cnnzoo eval`` scores the
    same images as the accuracy the run recorded."""
    k = cfg.get("test_samples")
    if not k or k >= n:
        return None
    seed = int(cfg.get("seed", 0)) + 1
    if cfg.get("engine") == "numpy":  # cnnzoo.scratch.train._subset
        import numpy as np

        return np.random.default_rng(seed).permutation(n)[:k].tolist()
    import torch  # cnnzoo.train.setup._random_subset

    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].tolist()


class Network(NamedTuple):
    """A network named on a command line: a registered model, or the trained model of a run.

    Attributes:
        model: the module, in eval mode, on the requested device.
        name: its registry name (``config.json``'s ``model`` for a run).
        run: the run directory, or None for a model name.
        config: the run's resolved config (``{}`` for a model name).
        weights: the weights file that was loaded, or None (a model name without ``--weights``).
    """

    model: nn.Module
    name: str
    run: Path | None
    config: dict[str, Any]
    weights: Path | None


def is_run_dir(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` names an existing directory that holds a run (finished or interrupted)."""
    path = Path(spec)
    return path.is_dir() and RunDir(path).holds_run()


def open_network(
    spec: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    weights_from: str | None = None,
    device: str = "cpu",
    **model_kwargs: Any,
) -> Network:
    """Open ``MODEL | RUN_DIR [--weights FILE]``, the one form every loading command takes.

    An argument naming an existing directory that holds a run is that run (rebuilt from its
    ``config.json``, its weights checked by :func:`load_run`); anything else is a model name, built
    with ``model_kwargs`` and, with ``weights``, loaded from that file through the key maps.

    Raises:
        ConfigError: ``weights`` given with a run directory (a run carries its own weights), or
            ``weights_from`` given with a model name.
        RunDirError: the run directory is damaged (see :func:`load_run`).
        UnknownModelError: ``spec`` is neither a run directory nor a registered model.
    """
    _check_spec(spec, "a model name or a run directory")
    if is_run_dir(spec):
        if weights is not None:
            raise ConfigError(
                f"{spec} is a run directory and carries its own weights; drop --weights, or give a "
                "model name with --weights FILE"
            )
        model, cfg, path = _open_run(spec, device, weights_from)
        return Network(model, cfg["model"], RunDir(spec).path, cfg, path)
    if weights_from is not None:
        raise ConfigError(
            f"--weights-from applies to a run directory, and {spec!r} is not one "
            "(a directory holding config.json and weights.safetensors)"
        )
    path = Path(spec)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{spec} is a file: give it as --weights {spec} after a model name")
    if path.is_dir():
        raise RunDirError(
            f"{spec} is a directory but holds no run (no config.json or weights.safetensors); "
            "give a run's --out directory or a model name"
        )
    model = create_model(str(spec), weights=weights, **model_kwargs)
    return Network(model.to(device).eval(), str(spec), None, {}, None if weights is None else Path(weights))
