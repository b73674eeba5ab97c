"""The lectures' claims as experiments: ``cnnzoo experiment list|run`` (issue 17).

Each claim is a module under ``cnnzoo.experiments`` that defines ``EXPERIMENT``
(:class:`~cnnzoo.experiments.base.Experiment`). :func:`run_experiment` checks the request (name,
scale, dataset, output directory), runs it, and writes into the output directory:

- ``result.json``: ``name, claim, source, scale, seeds, holds, metrics, seconds`` (the spec's
  contract, ``shared/spec/experiments.md``) and ``criterion, setup, notes, plots``;
- the plots the run made;
- ``README.md``: the claim, the setup, the numbers, the verdict and what differs from the paper.

Analytic experiments (costs, coverage) compute their numbers from :mod:`cnnzoo.analysis` and are the
same at every scale; trained ones train on Fashion-MNIST by default and share trained nets through
the cache in :attr:`Context.cache`.
"""

from __future__ import annotations

import difflib
import importlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from cnnzoo.errors import ConfigError
from cnnzoo.experiments.base import (
    SCALES,
    Context,
    Experiment,
    Outcome,
    OutputExistsError,
    ScaleError,
    UnknownExperimentError,
)
from cnnzoo.io import atomic_write_json, atomic_write_text

__all__ = [
    "EXPERIMENT_MODULES",
    "SCALES",
    "Context",
    "Experiment",
    "Outcome",
    "UnknownExperimentError",
    "ScaleError",
    "OutputExistsError",
    "list_experiments",
    "get_experiment",
    "run_experiment",
    "cache_dir",
    "RESULT_KEYS",
]

#: One module per experiment, in the order ``cnnzoo experiment list`` shows them.
EXPERIMENT_MODULES: tuple[str, ...] = (
    # analytic: exact costs and coverage from cnnzoo.analysis, the same at every scale
    "small_filters",
    "bottleneck",
    "separable",
    "gap_head",
    "resnet_tweaks",
    "compound_scaling",
    #
    # trained: on Fashion-MNIST by default, nets shared through Context.cache
    "degradation",
    "lesion",
    "paths",
    "loss_landscape",
    "stochastic_depth",
    "first_layer_filters",
    "transfer",
)

#: The keys of ``result.json``: the spec's contract, then how the verdict was reached.
RESULT_KEYS = (
    "name",
    "claim",
    "source",
    "scale",
    "seeds",
    "holds",
    "metrics",
    "seconds",
    "criterion",
    "setup",
    "notes",
    "plots",
)

_loaded: dict[str, Experiment] = {}


def list_experiments() -> list[Experiment]:
    """Every experiment, in :data:`EXPERIMENT_MODULES` order."""
    return [get_experiment(m) for m in EXPERIMENT_MODULES]


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; :class:`UnknownExperimentError` lists the closest names."""
    key = name.strip().lower().replace("-", "_")
    if key not in EXPERIMENT_MODULES:
        close = difflib.get_close_matches(key, EXPERIMENT_MODULES, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownExperimentError(
            f"unknown experiment {name!r}.{hint} Run `cnnzoo experiment list` to see all "
            f"{len(EXPERIMENT_MODULES)}."
        )
    if key not in _loaded:
        exp = importlib.import_module(f"{__name__}.{key}").EXPERIMENT
        if exp.name != key:
            raise RuntimeError(f"cnnzoo.experiments.{key} defines EXPERIMENT named {exp.name!r}")
        _loaded[key] = exp
    return _loaded[key]


def cache_dir() -> Path:
    """The trained-net cache: ``$CNNZOO_CACHE/experiments``, else ``~/.cache/cnnzoo/experiments``."""
    env = os.environ.get("CNNZOO_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "cnnzoo"
    return base / "experiments"


def check_scale(exp: Experiment, scale: str) -> None:
    """:class:`ScaleError` unless ``scale`` is one of :data:`SCALES` that ``exp`` supports."""
    if scale not in SCALES:
        raise ScaleError(f"unknown scale {scale!r}: choose one of {', '.join(SCALES)}")
    if scale not in exp.costs:
        raise ScaleError(
            f"experiment {exp.name!r} does not run at scale {scale!r}; it supports: {', '.join(exp.costs)}"
        )


def check_dataset(exp: Experiment, data: str) -> str:
    """The dataset's canonical name; for a trained experiment, also that its files are installed.

    Raises the dataset's :class:`~cnnzoo.data.datasets.DatasetNotFoundError` with one line that
    says how to get it (the loader's own message spans several lines, one per way to get it).
    """
    from cnnzoo.data.datasets import DatasetNotFoundError, dataset_spec, locate

    spec = dataset_spec(data)  # an unknown name: ConfigError with the close names
    if not exp.trained:
        return spec.name
    try:
        locate(spec)
    except DatasetNotFoundError:
        if spec.debian_package:
            how = f"`sudo apt-get install {spec.debian_package}`"
        elif spec.how_to_get:
            how = spec.how_to_get.rstrip(".")
        else:
            how = "download it"
        raise DatasetNotFoundError(
            f"dataset {spec.name!r} is not installed: {how}, or set CNNZOO_DATA to the directory holding its files"
        ) from None
    return spec.name


def _prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` unless asked to overwrite; then remove the previous result's files."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"--out {out} is a file, not a directory: choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(
                f"--out {out} is not empty (it holds another result): pass --overwrite or choose another --out"
            )
        old = out / "result.json"
        try:  # stale plots of the previous run would read as this run's
            stale = json.loads(old.read_text()).get("plots", []) if old.is_file() else []
        except (OSError, ValueError):
            stale = []
        for name in [*stale, "result.json", "README.md"]:
            p = out / name
            if p.is_file() and p.resolve().parent == out.resolve():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _jsonable(x: Any) -> Any:
    """Plain JSON values: tuples to lists, NumPy/torch scalars to numbers, keys to strings."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, (bool, str, int)) or x is None:
        return x
    if isinstance(x, float):
        return x
    if hasattr(x, "item"):  # numpy / torch scalars
        return _jsonable(x.item())
    raise TypeError(f"metric value {x!r} of type {type(x).__name__} is not JSON-serialisable")


def run_experiment(
    name: str,
    *,
    scale: str = "cpu",
    seeds: int | None = None,
    data: str = "fashion-mnist",
    out: str | Path | None = None,
    console=None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run one experiment and write its ``result.json``, plots and ``README.md`` into ``out``.

    Args:
        name: an experiment's name (``cnnzoo experiment list``).
        scale: ``quick``, ``cpu`` or ``paper``, among those the experiment supports.
        seeds: seeds to run; default 1 for analytic experiments, 1/2/3 at quick/cpu/paper for trained.
        data: dataset for trained experiments (``fashion-mnist``; ``cifar10`` when installed).
        out: output directory, default ``runs/experiments/NAME``; a non-empty one is refused
            unless ``overwrite``.
        console: a ``rich`` Console for progress (a quiet one by default).
        overwrite: replace the result already in ``out``.

    Returns:
        The result as written to ``result.json`` (keys :data:`RESULT_KEYS`).
    """
    exp = get_experiment(name)
    check_scale(exp, scale)
    if seeds is None:
        seeds = exp.default_seeds(scale)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"--seeds must be a positive integer, got {seeds!r}")
    data = check_dataset(exp, data)
    out = Path(out) if out is not None else Path("runs") / "experiments" / exp.name
    _prepare_out(out, overwrite)
    if console is None:
        from rich.console import Console

        console = Console(quiet=True)
    ctx = Context(scale=scale, seeds=seeds, data=data, out=out, cache=cache_dir(), console=console)
    t0 = time.perf_counter()
    outcome = exp.run(ctx)
    seconds = time.perf_counter() - t0
    result = _result(exp, ctx, outcome, seconds)
    atomic_write_json(out / "result.json", result)
    atomic_write_text(out / "README.md", render_readme(result))
    return result


def _result(exp: Experiment, ctx: Context, outcome: Outcome, seconds: float) -> dict[str, Any]:
    plots = []
    for p in outcome.plots:
        p = Path(p)
        if not p.is_file():
            raise RuntimeError(f"experiment {exp.name!r} lists plot {p} but did not write it")
        plots.append(os.path.relpath(p, ctx.out))
    result = {
        "name": exp.name,
        "claim": exp.claim,
        "source": exp.source,
        "scale": ctx.scale,
        "seeds": ctx.seeds,
        "holds": bool(outcome.holds),
        "metrics": _jsonable(outcome.metrics),
        "seconds": round(seconds, 3),
        "criterion": outcome.criterion,
        "setup": outcome.setup,
        "notes": outcome.notes,
        "plots": plots,
    }
    return json.loads(json.dumps(result))  # exactly what the file holds (int keys become strings)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:,.0f}" if abs(v) >= 1e5 else f"{v:.4g}"
    if isinstance(v, list):
        shown = ", ".join(_fmt(x) for x in v[:16])
        return f"[{shown}{', …' if len(v) > 16 else ''}]"
    return str(v)


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            rows.extend(_flatten(v, key))
        else:
            rows.append((key, v))
    return rows


def render_readme(result: dict[str, Any]) -> str:
    """The run's ``README.md``: claim, setup, numbers, verdict and how the setting differs."""
    verdict = "**holds**" if result["holds"] else "**does not hold**"
    lines = [
        f"# Experiment `{result['name']}`",
        "",
        f"**Claim.** {result['claim']}",
        "",
        f"**Source.** {result['source']}",
        "",
        f"**Setup, and how it differs from the paper** (scale `{result['scale']}`, {result['seeds']} seed(s), {result['seconds']:.1f} s). "
        f"{result['setup']}",
        "",
        f"**Verdict.** The claim {verdict}. Criterion: {result['criterion']}",
    ]
    if result["notes"]:
        lines += ["", f"**Notes.** {result['notes']}"]
    lines += ["", "## Numbers", "", "| metric | value |", "|---|---|"]
    lines += [f"| `{k}` | {_fmt(v)} |" for k, v in _flatten(result["metrics"])]
    if result["plots"]:
        lines += ["", "## Plots", ""]
        lines += [f"![{Path(p).stem}]({p})" for p in result["plots"]]
    return "\n".join(lines) + "\n"
