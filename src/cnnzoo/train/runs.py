"""Re-opening a run directory: rebuild the model from ``config.json`` and load its weights."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from torch import nn

from cnnzoo.errors import ConfigError
from cnnzoo.registry import create_model
from cnnzoo.rundir import RunDir, RunDirError
from cnnzoo.train.checkpoint import load_weights
from cnnzoo.train.network_args import WEIGHTS_FROM, add_network_arguments

__all__ = [
    "load_run",
    "WEIGHTS_FROM",
    "default_weights_from",
    "Network",
    "is_run_dir",
    "open_network",
    "add_network_arguments",
]


def default_weights_from(run_dir: str | Path) -> str:
    """The weights a run reports (``summary.json``'s ``reported_weights``; ``raw`` if it does not say)."""
    run = RunDir(run_dir)
    return run.read_summary().get("reported_weights", "raw") if run.summary.is_file() else "raw"


def load_run(
    run_dir: str | Path, *, device: str = "cpu", weights_from: str | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """The trained model of a run directory (eval mode) and its resolved config.

    Args:
        run_dir: the ``--out`` directory of ``cnnzoo train`` or ``cnnzoo scratch train``.
        device: where to put the model.
        weights_from: ``"raw"`` (``weights.safetensors``) or ``"ema"`` (``ema.safetensors``, from
            ``--ema``); None: the ones whose test accuracy the run reports.

    Raises:
        RunDirError: the directory, its config or the chosen weights are missing or damaged.
        ConfigError: ``weights_from`` is not raw or ema.
    """
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise RunDirError(f"run directory not found: {run.path} (give the --out directory of `cnnzoo train`)")
    cfg = run.read_config()
    for key in ("model", "num_classes", "in_chans"):
        if key not in cfg:
            raise RunDirError(f"{run.config} lacks {key!r}; it was not written by `cnnzoo train`")
    kind = weights_from or default_weights_from(run.path)
    if kind not in WEIGHTS_FROM:
        raise ConfigError(f"--weights-from must be raw or ema, got {kind!r}")
    path = run.ema if kind == "ema" else run / cfg.get("weights_file", run.weights.name)
    if kind == "ema" and not path.is_file():
        raise RunDirError(
            f"{run.path} has no {path.name}: it was trained without --ema; use --weights-from raw"
        )
    model = create_model(
        cfg["model"], num_classes=cfg["num_classes"], in_chans=cfg["in_chans"], **cfg.get("model_kwargs", {})
    )
    load_weights(model, path)
    return model.to(device).eval(), cfg


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
    if is_run_dir(spec):
        if weights is not None:
            raise ConfigError(
                f"{spec} is a run directory and carries its own weights; drop --weights, or give a "
                "model name with --weights FILE"
            )
        model, cfg = load_run(spec, device=device, weights_from=weights_from)
        run = RunDir(spec)
        kind = weights_from or default_weights_from(run.path)
        path = run.ema if kind == "ema" else run / cfg.get("weights_file", run.weights.name)
        return Network(model, cfg["model"], run.path, cfg, path)
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
