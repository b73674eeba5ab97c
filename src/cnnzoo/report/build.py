"""The three pages: a model's, a run's, a comparison's; from the command line's arguments to a file.

``MODEL | RUN_DIR [--weights FILE]`` is opened the one way every loading command opens it
(:func:`cnnzoo.train.runs.open_network`); a bare model name needs no weights and is analyzed on
the meta device by name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnzoo.analysis.costs import analyze, parse_input_size
from cnnzoo.errors import CnnzooError, ConfigError
from cnnzoo.io import atomic_write_text
from cnnzoo.registry import get_model_config
from cnnzoo.train.runs import Network, is_run_dir, open_network

from .model import Subject, model_data
from .page import render

__all__ = [
    "ReportError",
    "open_subject",
    "model_page",
    "compare_page",
    "write_report",
    "check_output",
    "DEFAULT_BATCH",
]

DEFAULT_BATCH = 32


class ReportError(CnnzooError, OSError):
    """The report cannot be written where it was asked to go."""


def check_output(out: str | os.PathLike) -> Path:
    """The output path, checked before any work: its directory must exist and be writable."""
    path = Path(out)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ReportError(f"--out {out} is a directory; give a file name such as {path / 'report.html'}")
    if not parent.is_dir():
        raise ReportError(
            f"cannot write {out}: directory {parent} does not exist (create it, or choose another --out)"
        )
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ReportError(f"cannot write {out}: {parent} is not writable by this user (choose another --out)")
    return path


def _run_input(net: Network) -> tuple[int, ...]:
    cfg = net.model.default_cfg
    side = net.config.get("input_size") or cfg.input_size[-1]
    return (int(net.config.get("in_chans", cfg.input_size[0])), int(side), int(side))


def open_subject(
    spec: str, *, weights: str | None = None, weights_from: str | None = None, input_size: Any = None
) -> tuple[Subject, Network | None]:
    """The page's subject, and the opened network for a run or a model with ``weights``.

    Raises:
        UnknownModelError: ``spec`` is neither a run directory nor a registered model.
        RunDirError: a damaged run (its weights failing their checksum included).
    """
    size = parse_input_size(input_size) if input_size is not None else None
    if is_run_dir(spec) or weights is not None:
        net = open_network(spec, weights=weights, weights_from=weights_from)
        size = size or (_run_input(net) if net.run is not None else tuple(net.model.default_cfg.input_size))
        return Subject(net.name, net.model, size, net.model.default_cfg), net
    cfg = get_model_config(spec)  # an unknown name raises with the closest names
    if weights_from is not None:
        open_network(spec, weights_from=weights_from)  # its one-line error
    return Subject(spec, None, size or tuple(cfg.input_size), cfg), None


def model_page(
    spec: str,
    *,
    weights: str | None = None,
    weights_from: str | None = None,
    input_size: Any = None,
    batch: int = DEFAULT_BATCH,
) -> str:
    """The HTML of a model's page, or a run's (a run directory adds its training and results)."""
    subject, net = open_subject(spec, weights=weights, weights_from=weights_from, input_size=input_size)
    data: dict[str, Any] = {"kind": "model", "model": model_data(subject, batch)}
    if net is not None and net.run is not None:
        from .run import run_data

        data["kind"] = "run"
        data["run"] = run_data(net, data["model"]["flops_per_image"])
    elif net is not None:
        from .run import first_layer_filters

        data["model"]["filters"] = first_layer_filters(net.model)
        data["model"]["weights"] = str(net.weights)
    title = f"{subject.name} — run {net.run.name}" if data["kind"] == "run" else subject.name
    return render(data, title)


def _accuracy(subject: Subject, net: Network | None) -> dict[str, Any] | None:
    """The run's test top-1, else the paper's reported top-1 (with its source), else None."""
    if net is not None and net.run is not None:
        from cnnzoo.rundir import RunDir

        run = RunDir(net.run)
        summary = run.read_summary() if run.summary.is_file() else {}
        if summary.get("test_top1") is not None:
            return {
                "top1": summary["test_top1"],
                "dataset": net.config.get("data", "?"),
                "source": f"this run ({net.run.name})",
            }
    cfg = subject.config
    reported = (cfg.extra or {}).get("reported") if cfg is not None else None
    if reported and reported.get("top1") is not None:
        return {
            "top1": reported["top1"],
            "dataset": reported.get("dataset", "?"),
            "source": reported.get("source", cfg.paper),
        }
    return None


def compare_entry(spec: str, batch: int, input_size: Any = None) -> dict[str, Any]:
    """One column of the comparison: totals, the training step's peak and an accuracy."""
    subject, net = open_subject(spec, input_size=input_size)
    report = analyze(subject.target, input_size=subject.input_size, batch_size=batch)
    totals = report.totals
    return {
        "spec": spec,
        "name": subject.name,
        "label": f"{subject.name} ({Path(spec).name})"
        if net is not None and net.run is not None
        else subject.name,
        "input_size": list(subject.input_size),
        "params": totals["params"],
        "flops_per_image": report.flops_per_image,
        "macs_per_image": totals["macs"] / batch,
        "activation_memory_bytes": totals["activation_memory_bytes"],
        "parameter_memory_bytes": totals["parameter_memory_bytes"],
        "peak_training_bytes": totals["peak_training_bytes"],
        "receptive_field": report.final_receptive_field,
        "year": subject.config.year if subject.config is not None else None,
        "accuracy": _accuracy(subject, net),
    }


def compare_page(specs: Sequence[str], *, batch: int = DEFAULT_BATCH, input_size: Any = None) -> str:
    """The HTML of a comparison of models or runs, side by side."""
    if len(specs) < 2:
        raise ConfigError(
            "--compare needs at least two models or run directories, e.g. --compare resnet18 vgg16"
        )
    entries = [compare_entry(s, batch, input_size) for s in specs]
    return render(
        {"kind": "compare", "compare": {"batch": batch, "entries": entries}},
        "comparison: " + ", ".join(specs),
    )


def write_report(html: str, out: str | os.PathLike) -> Path:
    """Write the page atomically (a crash leaves the old page or the new one)."""
    path = check_output(out)
    try:
        return atomic_write_text(path, html)
    except OSError as e:
        raise ReportError(f"cannot write {out}: {e.strerror or e}") from e
