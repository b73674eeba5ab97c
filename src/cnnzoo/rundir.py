"""The run directory: one contract for both engines (``cnnzoo train`` and ``cnnzoo scratch train``).

A run directory holds::

    config.json            the resolved config (the model, num_classes and in_chans to rebuild it)
    weights.safetensors    the final weights, torch ``state_dict`` keys, no pickle
    ema.safetensors        the exponential moving average of the weights (``--ema``, torch engine)
    best.safetensors       the weights of the epoch with the best validation top-1 (``--val-samples``)
    metrics.csv            one row per epoch (:data:`METRIC_CORE` first, then the engine's columns)
    summary.json           the outcome (:data:`SUMMARY_FIELDS` at least)
    ckpt-STEP.safetensors  the latest checkpoint's weights (STEP = optimizer steps done)
    train_state.pt         the latest checkpoint's training state (torch engine)
    confusion_matrix.{csv,png}, misclassified.png, curves.png   the end-of-run report (torch engine)

Everything is written atomically (:mod:`cnnzoo.io`): a crash leaves the previous file or the new one
under its name, never half of one. This module is torch-free, so the NumPy engine uses it as it is.

A directory that holds a run is never written over unasked: :func:`claim` refuses it (naming the run
that is there, and the two choices: ``--resume`` or ``--overwrite``), and a run that fails before its
first checkpoint removes what it created, and only that (:class:`Claim`).
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cnnzoo.errors import CnnzooError
from cnnzoo.io import atomic_write, atomic_write_json, can_write_in

__all__ = [
    "CONFIG",
    "WEIGHTS",
    "EMA_WEIGHTS",
    "BEST",
    "METRICS",
    "SUMMARY",
    "STATE",
    "REPORT_FILES",
    "METRIC_CORE",
    "SUMMARY_FIELDS",
    "RunDir",
    "RunDirError",
    "RunExistsError",
    "TrainingDivergedError",
    "Claim",
    "claim",
    "checkpoint_weights_name",
    "read_json",
    "write_metrics",
    "read_metrics",
    "check_summary",
]

CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
EMA_WEIGHTS = "ema.safetensors"
BEST = "best.safetensors"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
STATE = "train_state.pt"
CHECKPOINT_GLOB = "ckpt-*.safetensors"
REPORT_FILES = ("confusion_matrix.csv", "confusion_matrix.png", "misclassified.png", "curves.png")

#: The metrics.csv columns every engine writes, in this order (an engine may add columns after them).
METRIC_CORE = (
    "epoch",
    "step",
    "train_loss",
    "train_top1",
    "test_loss",
    "test_top1",
    "test_top5",
    "lr",
    "images_per_second",
    "epoch_seconds",
    "elapsed_seconds",
)

#: The summary.json keys every engine writes (``cnnzoo eval`` and ``load_run`` rely on them).
SUMMARY_FIELDS = (
    "model",
    "data",
    "engine",
    "epochs",
    "steps",
    "batch_size",
    "seed",
    "test_top1",
    "test_loss",
    "train_loss",
    "wall_seconds",
    "train_seconds",
    "images_per_second",
    "weights_sha256",
    "weights_file",
    "params",
    "threads",
    "host",
    "cpu_count",
    "out",
)


class RunDirError(CnnzooError, FileNotFoundError):
    """A run directory or one of its files is missing, truncated or foreign."""


class RunExistsError(CnnzooError, FileExistsError):
    """``--out`` already holds a run; the message names it and the two choices (resume, overwrite)."""


class TrainingDivergedError(CnnzooError, RuntimeError):
    """The loss became NaN or infinite; the message names the step and what to lower."""


def checkpoint_weights_name(step: int) -> str:
    """The weights file of the checkpoint taken after ``step`` optimizer steps."""
    return f"ckpt-{step:08d}.safetensors"


def read_json(path: str | Path) -> dict[str, Any]:
    """A run directory's JSON file, with one clear error when it is missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} not found; is {path.parent} a cnnzoo run directory (from `cnnzoo train`)?")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise RunDirError(f"{path} is not valid JSON ({e}); the run directory is damaged") from e


def _cell(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else v


def write_metrics(path: str | Path, fields: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``rows`` (dicts keyed by column) under the header ``fields``, atomically.

    Floats are written with 6 significant digits, a missing value as ``nan``; the whole file is
    rewritten each epoch, so a crash never leaves a half-written row.
    """
    rows = list(rows)

    def w(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(fields)
            for r in rows:
                out.writerow([_cell(r.get(k, math.nan)) for k in fields])

    return atomic_write(path, w)


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """metrics.csv as a list of dicts of floats (``epoch`` and ``step`` as ints)."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} not found; is {path.parent} a cnnzoo run directory?")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ints = ("epoch", "step")
    return [{k: (int(v) if k in ints else float(v)) for k, v in r.items()} for r in rows]


def check_summary(summary: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` (a bug, not a user error) when a summary lacks a contract field."""
    missing = [k for k in SUMMARY_FIELDS if k not in summary]
    if missing:
        raise ValueError(f"summary.json lacks the run-directory fields {missing}")


class RunDir:
    """The files of one run directory, by name.

    ``RunDir(out).weights`` is ``out/weights.safetensors`` and so on; :meth:`write_summary` checks the
    contract's fields, :meth:`write_metrics` writes the CSV atomically.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    config = property(lambda self: self.path / CONFIG)
    weights = property(lambda self: self.path / WEIGHTS)
    ema = property(lambda self: self.path / EMA_WEIGHTS)
    best = property(lambda self: self.path / BEST)
    metrics = property(lambda self: self.path / METRICS)
    summary = property(lambda self: self.path / SUMMARY)
    state = property(lambda self: self.path / STATE)

    def checkpoint_weights(self, step: int) -> Path:
        return self.path / checkpoint_weights_name(step)

    def checkpoint_files(self) -> list[Path]:
        return sorted(self.path.glob(CHECKPOINT_GLOB))

    def has_checkpoint(self) -> bool:
        return self.state.is_file()

    def holds_run(self) -> bool:
        """Whether a run (finished or interrupted) was written here."""
        return any(p.is_file() for p in (self.config, self.summary, self.state, self.weights))

    def run_files(self) -> list[Path]:
        """The files and folders a run writes here (the contract's names), those that exist."""
        names = (CONFIG, WEIGHTS, EMA_WEIGHTS, BEST, METRICS, SUMMARY, STATE, *REPORT_FILES, "tensorboard")
        found = [self.path / n for n in names if (self.path / n).exists()]
        return found + self.checkpoint_files()

    def describe(self) -> str:
        """The run that is here, in a few words: model, engine, epochs done, state and date."""
        cfg = _quiet_json(self.config)
        summ = _quiet_json(self.summary)
        model = summ.get("model") or cfg.get("model") or "unknown model"
        engine = summ.get("engine") or cfg.get("engine") or "torch"
        planned = cfg.get("epochs")
        if summ:
            done, state = summ.get("epochs", planned), "finished"
        else:
            done = len(read_metrics(self.metrics)) if self.metrics.is_file() else 0
            state = "interrupted, resumable" if self.has_checkpoint() else "interrupted, no checkpoint"
        epochs = f"{done}/{planned} epochs" if planned is not None else f"{done} epochs"
        newest = max((p.stat().st_mtime for p in self.run_files() if p.is_file()), default=None)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(newest)) if newest else "date unknown"
        return f"{model} ({engine} engine), {epochs}, {state}, written {when}"

    def finetune_record(self) -> dict[str, Any] | None:
        """config.json's ``finetune`` entry (mode, source, groups...) of a ``cnnzoo finetune`` run, else None."""
        rec = _quiet_json(self.config).get("finetune")
        return rec if isinstance(rec, dict) else None

    def resume_command(self) -> str:
        """The command that continues the run here: ``cnnzoo train --resume DIR``, or for a fine-tuning
        run (whose model is built from its source network) ``cnnzoo finetune SOURCE ... --resume``."""
        ft = self.finetune_record()
        if ft is None:
            return f"cnnzoo train --resume {self.path}"
        weights = ft.get("weights")
        w = f" --weights {weights}" if weights and ft.get("source_kind") == "model" else ""
        return f"cnnzoo finetune {ft.get('source')}{w} --mode {ft.get('mode')} --out {self.path} --resume"

    def remove_run(self) -> None:
        """Delete the run's files (:meth:`run_files`) and nothing else the folder holds."""
        for p in self.run_files():
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)

    def mkdir(self) -> RunDir:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def read_config(self) -> dict[str, Any]:
        return read_json(self.config)

    def read_summary(self) -> dict[str, Any]:
        return read_json(self.summary)

    def write_config(self, config: Mapping[str, Any]) -> Path:
        return atomic_write_json(self.config, dict(config))

    def write_summary(self, summary: Mapping[str, Any]) -> Path:
        check_summary(summary)
        return atomic_write_json(self.summary, dict(summary))

    def write_metrics(self, fields: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Path:
        if tuple(fields[: len(METRIC_CORE)]) != METRIC_CORE:
            raise ValueError(f"metrics.csv must start with the columns {METRIC_CORE}, got {tuple(fields)}")
        return write_metrics(self.metrics, fields, rows)

    def read_metrics(self) -> list[dict[str, float]]:
        return read_metrics(self.metrics)


def _quiet_json(path: Path) -> dict[str, Any]:
    """A JSON file's dict, or ``{}`` when it is missing or damaged (for descriptions only)."""
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


class Claim:
    """What a new run created in its ``--out`` directory, so that a failed run removes just that.

    Made by :func:`claim` before the run writes anything: it remembers the entries the directory
    held and the highest folder that did not exist yet. :meth:`release` (on failure) deletes the
    entries that appeared since, then the folders it made, when they are empty.
    """

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.before = {p.name for p in run.path.iterdir()} if run.path.is_dir() else set()
        top, p = None, run.path.absolute()
        while not p.exists():
            top, p = p, p.parent
        self.made_from = top  # the first folder this run creates (None: the directory existed)

    def release(self) -> None:
        """Remove what the run created (never a file that was there before the run started)."""
        path = self.run.path
        if path.is_dir():
            for p in path.iterdir():
                if p.name in self.before:
                    continue
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
        if self.made_from is None:
            return
        p = path.absolute()
        while True:
            try:
                p.rmdir()  # only when empty
            except OSError:
                return
            if p == self.made_from:
                return
            p = p.parent


def claim(
    out: str | Path,
    *,
    overwrite: bool = False,
    resume_hint: bool = True,
    flag: str = "--out",
    write: bool = True,
) -> Claim | None:
    """Check that a new run may write to ``out`` and make it; returns the :class:`Claim`.

    Args:
        out: the run directory.
        overwrite: replace a run that is there (its files only; other files stay).
        resume_hint: offer the run's resume command (:meth:`RunDir.resume_command`; a run of the
            NumPy engine cannot resume).
        flag: the option that named ``out``, for the messages.
        write: make the directory (and remove the old run with ``overwrite``); False: check only
            (the other processes of a multi-process run, which write nothing), and return None.

    Raises:
        RunExistsError: ``out`` holds a run and ``overwrite`` is false (the message names the run).
        RunDirError: ``out`` is a file, or cannot be created or written.
    """
    if not str(out).strip():
        raise RunDirError(f"{flag} is empty; give the run's directory (e.g. {flag} runs/my-run)")
    run = RunDir(out)
    if run.path.exists() and not run.path.is_dir():
        raise RunDirError(f"{flag} {run.path} is a file; give a directory for the run (new or empty)")
    if run.holds_run():
        if not overwrite:
            there = run.describe()
            cont = (
                f"continue it with `{run.resume_command()}`"
                if resume_hint and run.has_checkpoint()
                else f"give another {flag} (it has no checkpoint to --resume)"
            )
            raise RunExistsError(
                f"{run.path} already holds a run: {there}; {cont}, or pass --overwrite to replace it"
            )
        if write:
            run.remove_run()
    if not write:
        return None
    c = Claim(run)
    try:
        run.path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(
            f"cannot create {flag} {run.path}: {e.strerror or e}; choose a writable directory"
        ) from e
    why = can_write_in(run.path)
    if why:
        c.release()
        raise RunDirError(f"cannot write to {flag} {run.path}: {why}; choose a writable directory")
    return c
