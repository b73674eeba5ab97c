"""Re-opening a run directory: rebuild the model from ``config.json`` and load its weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from cnnzoo.registry import create_model
from cnnzoo.train.checkpoint import CONFIG, WEIGHTS, RunDirError, load_weights, read_json

__all__ = ["load_run"]


def load_run(run_dir: str | Path, *, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The trained model of a run directory (eval mode) and its resolved config."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory not found: {run_dir} (give the --out directory of `cnnzoo train`)")
    cfg = read_json(run_dir / CONFIG)
    for key in ("model", "num_classes", "in_chans"):
        if key not in cfg:
            raise RunDirError(f"{run_dir / CONFIG} lacks {key!r}; it was not written by `cnnzoo train`")
    model = create_model(
        cfg["model"], num_classes=cfg["num_classes"], in_chans=cfg["in_chans"], **cfg.get("model_kwargs", {})
    )
    load_weights(model, run_dir / cfg.get("weights_file", WEIGHTS))
    return model.to(device).eval(), cfg
