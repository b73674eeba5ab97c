"""The training configuration: one flat dataclass, saved as ``config.json`` in every run directory."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cnnzoo.errors import ConfigError

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Everything a run needs. Defaults are the LeNet-5 demo recipe (see README)."""

    model: str = "lenet5_relu"
    data: str = "fashion-mnist"
    data_dir: str | None = None
    epochs: int = 12
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # "constant" or "cosine" (per step, after warmup)
    warmup_epochs: float = 0.5
    seed: int = 0
    input_size: int | None = None  # side fed to the model; default from the model config
    train_samples: int | None = None  # use a random subset of the training set
    eval_batch_size: int = 1000
    device: str = "auto"
    threads: int | None = None
    out: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> TrainConfig:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight decay must be >= 0, got {self.weight_decay}")
        if self.schedule not in ("constant", "cosine"):
            raise ConfigError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if self.train_samples is not None and self.train_samples < 1:
            raise ConfigError(f"train samples must be >= 1, got {self.train_samples}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**d)
