"""``RunState``: everything that changes during a run, which is exactly what a checkpoint holds.

The rest of a run (the config, the data, the device) is rebuilt from ``config.json``; a ``RunState``
restored from ``train_state.pt`` then continues the uninterrupted run bit for bit: the weights and the
EMA, the optimizer's buffers, the schedule's counters, the GradScaler, every RNG (torch CPU/CUDA for
dropout, the augmentation generator), the position (epoch and step within it: each epoch's shuffle is
drawn from a generator seeded with ``(seed, epoch)``), the metrics so far and the best validation
record. The weights themselves go to a safetensors file next to the state; everything else is tensors
and plain Python types, read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from cnnzoo.train.ema import ModelEma

__all__ = ["RunState", "EpochTally", "BestRecord", "Totals", "rng_state", "set_rng_state"]


@dataclass
class EpochTally:
    """The running sums of the epoch in progress (a mid-epoch checkpoint saves them)."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0


@dataclass
class BestRecord:
    """The best validation top-1 so far, its epoch (1-based), and the epochs since it improved."""

    top1: float = -math.inf
    epoch: int = 0
    bad_epochs: int = 0
    sha256: str = ""  # of best.safetensors, checked when it is loaded

    def offer(self, top1: float, epoch: int) -> bool:
        """Record epoch ``epoch``'s validation top-1; True if it is a new best."""
        if top1 > self.top1:
            self.top1, self.epoch, self.bad_epochs = top1, epoch, 0
            return True
        self.bad_epochs += 1
        return False


@dataclass
class Totals:
    """Time and images over the whole run, resumed runs included."""

    train_seconds: float = 0.0
    train_images: int = 0
    wall_seconds: float = 0.0  # of the earlier sessions of a resumed run


def rng_state(aug_generator: torch.Generator) -> dict[str, Any]:
    """This process's random state: torch's CPU (and CUDA) generators and the augmentation generator."""
    st = {"torch": torch.get_rng_state(), "aug": aug_generator.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any], aug_generator: torch.Generator) -> None:
    torch.set_rng_state(st["torch"])
    aug_generator.set_state(st["aug"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


@dataclass
class RunState:
    """The mutable state of a run: the live training objects and the run's progress.

    Attributes:
        model: the module being trained (not a DDP/compiled wrapper).
        optimizer, schedule, scaler: their state dicts go into the checkpoint (``scaler`` is None
            without fp16 autocast).
        ema: the moving average of the weights, or None (``--ema 0``).
        aug_generator: the generator of every augmentation draw.
        epoch: epochs finished; the epoch in progress is ``epoch`` (0-based).
        step_in_epoch: optimizer steps done in the epoch in progress.
        global_step: optimizer steps done in the run.
        tally: the epoch in progress's running sums.
        metrics: one row per finished epoch (metrics.csv).
        best: the best validation top-1 and its epoch (``--val-samples``).
        stopped_early: ``--early-stop`` ended the run.
        totals: time and images over the whole run.
        loss_reference: the run's first checked training loss (NaN until then): the scale against
            which a loss counts as exploding (:data:`cnnzoo.train.loop.EXPLODING`).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Any
    aug_generator: torch.Generator
    scaler: Any = None
    ema: ModelEma | None = None
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    tally: EpochTally = field(default_factory=EpochTally)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    best: BestRecord = field(default_factory=BestRecord)
    stopped_early: bool = False
    totals: Totals = field(default_factory=Totals)
    loss_reference: float = math.nan

    def state_dict(self, rng: list[dict[str, Any]]) -> dict[str, Any]:
        """The checkpoint's contents, less the weights (``rng``: every rank's :func:`rng_state`)."""
        return {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": rng,
            "tally": asdict(self.tally),
            "metrics": [dict(r) for r in self.metrics],
            "best": asdict(self.best),
            "stopped_early": self.stopped_early,
            "totals": asdict(self.totals),
            "loss_reference": self.loss_reference,
        }

    def load_state_dict(self, st: dict[str, Any], *, rank: int = 0) -> None:
        """Restore from :meth:`state_dict`'s output (the weights are loaded separately)."""
        self.optimizer.load_state_dict(st["optimizer"])
        self.schedule.load_state_dict(st["schedule"])
        if self.scaler is not None and st.get("scaler"):
            self.scaler.load_state_dict(st["scaler"])
        if self.ema is not None:
            if not st.get("ema"):
                raise KeyError("the checkpoint holds no EMA weights (the run was started without --ema)")
            self.ema.load_state_dict(st["ema"])
        set_rng_state(st["rng"][rank], self.aug_generator)
        self.epoch, self.step_in_epoch, self.global_step = (
            int(st["epoch"]),
            int(st["step_in_epoch"]),
            int(st["global_step"]),
        )
        self.tally = EpochTally(**st["tally"])
        self.metrics = [dict(r) for r in st["metrics"]]
        self.best = BestRecord(**st["best"])
        self.stopped_early = bool(st["stopped_early"])
        self.totals = Totals(**st["totals"])
        self.loss_reference = float(st.get("loss_reference", math.nan))  # absent before issue 11
