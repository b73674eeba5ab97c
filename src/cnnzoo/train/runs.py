"""Re-opening a run directory: rebuild the model from ``config.json`` and load its weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from cnnzoo.errors import ConfigError
from cnnzoo.registry import create_model
from cnnzoo.rundir import RunDir, RunDirError
from cnnzoo.train.checkpoint import load_weights

__all__ = ["load_run", "WEIGHTS_FROM", "default_weights_from"]

WEIGHTS_FROM = ("raw", "ema")


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
