"""What an experiment is: a lecture's claim, the run that measures it, and the outcome it reports.

An experiment module defines one module-level ``EXPERIMENT = Experiment(...)``; its ``run`` takes a
:class:`Context` (scale, seeds, dataset, output and cache directories, a console) and returns an
:class:`Outcome` (does the claim hold, by which criterion, with which numbers, in which setting).
:func:`cnnzoo.experiments.run_experiment` validates the request, times the run and writes
``result.json`` and ``README.md`` (``docs/experiments.md``, "The contract").

Experiment modules import torch and the zoo inside ``run``, not at module level, so that
``cnnzoo experiment list`` starts without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnzoo.errors import CnnzooError, ConfigError
from cnnzoo.io import atomic_write

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "SCALES",
    "Experiment",
    "Context",
    "Outcome",
    "UnknownExperimentError",
    "ScaleError",
    "OutputExistsError",
    "new_figure",
    "save_figure",
]

#: ``quick``: ≤ 20 s on 2 cores (the test suite); ``cpu``: ≤ 15 min on 2 cores, where a claim is
#: judged; ``paper``: the paper's setting, for a GPU.
SCALES = ("quick", "cpu", "paper")

#: Seeds when ``--seeds`` is not given. Trained claims use ≥ 2 seeds where they are judged (issue 17).
_TRAINED_SEEDS = {"quick": 1, "cpu": 2, "paper": 3}


class UnknownExperimentError(CnnzooError, KeyError):
    """An experiment name that no module defines; the message lists the closest names."""

    def __str__(self) -> str:  # KeyError quotes its argument; print the message plainly
        return str(self.args[0]) if self.args else ""


class ScaleError(ConfigError):
    """A scale that is not one of :data:`SCALES`, or one the experiment does not support."""


class OutputExistsError(CnnzooError, FileExistsError):
    """The output directory already holds files; the message says to pass ``--overwrite``."""


@dataclass(frozen=True)
class Experiment:
    """One lecture claim as a runnable measurement.

    Attributes:
        name: the CLI name (the module's name under ``cnnzoo.experiments``).
        claim: the claim in one sentence, as the lecture or paper states it.
        source: paper, figure or table, or the lecture's worked example.
        costs: scale → a human cost (``"~5 s"``), only for the scales the experiment supports.
            Analytic experiments support every scale at the same cost.
        run: the measurement, ``run(ctx) -> Outcome``.
        trained: whether it trains networks (and so needs the dataset installed).
    """

    name: str
    claim: str
    source: str
    costs: Mapping[str, str]
    run: Callable[[Context], Outcome]
    trained: bool = False

    def default_seeds(self, scale: str) -> int:
        """Seeds used when none are asked for: 1 for analytic experiments (nothing is random)."""
        return _TRAINED_SEEDS[scale] if self.trained else 1


@dataclass
class Context:
    """What a run is asked to do, and where it writes.

    Attributes:
        scale: one of :data:`SCALES`, supported by the experiment.
        seeds: how many seeds to run (trained experiments report mean and spread over them).
        data: the dataset's name (``fashion-mnist`` by default; ``cifar10`` when asked and present).
        out: the run's output directory (exists, empty or being overwritten); plots go here.
        cache: trained-net cache, shared between experiments and keyed by the full setting
            (``$CNNZOO_CACHE/experiments``, else ``~/.cache/cnnzoo/experiments``).
        console: where progress is printed.
    """

    scale: str
    seeds: int
    data: str
    out: Path
    cache: Path
    console: Console

    def seed_list(self) -> list[int]:
        """The seeds to run, ``0 .. seeds-1``."""
        return list(range(self.seeds))


@dataclass
class Outcome:
    """What a run found.

    Attributes:
        holds: does the measurement support the claim, by ``criterion``.
        metrics: the numbers, with the keys of the spec's table (JSON-serialisable values).
        criterion: how ``holds`` is decided, in one sentence.
        setup: the setting used and how it differs from the paper's.
        plots: files the run wrote into ``ctx.out``.
        notes: anything a reader must know (e.g. "the claim does not show at this scale").
    """

    holds: bool
    metrics: dict[str, Any]
    criterion: str
    setup: str
    plots: list[Path] = field(default_factory=list)
    notes: str = ""


def new_figure(figsize: tuple[float, float] = (5.0, 3.6), *, ncols: int = 1, nrows: int = 1):
    """A matplotlib figure and its axes through the object API: no pyplot, so no GUI backend to
    resolve and no global figure list (as ``cnnzoo.train.report`` does)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols)


def save_figure(fig, path: Path, *, dpi: int = 90) -> Path:
    """Write ``fig`` as a small PNG, atomically; returns ``path``."""
    fig.tight_layout()
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
