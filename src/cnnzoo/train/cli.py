"""``cnnzoo train``, ``cnnzoo recipes``, ``cnnzoo eval`` and ``cnnzoo demo``.

The ``train`` flags are generated from :class:`cnnzoo.train.config.TrainConfig`'s fields
(``weight_decay`` -> ``--weight-decay``), so every field is overridable and the CLI cannot drift
from the config. Precedence: the recipe (``--recipe``) < ``--config FILE`` < explicit flags.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
import typing
from typing import Any

from cnnzoo.train.network_args import WEIGHTS_FROM


def _kv(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    try:
        return k, json.loads(v)
    except ValueError:
        return k, v


def _tuple_of(kind: type) -> Any:
    def parse(text: str) -> tuple:
        parts = [p for p in text.replace(" ", "").split(",") if p]
        try:
            return tuple(kind(p) for p in parts)
        except ValueError as e:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind.__name__}s, got {text!r}"
            ) from e

    return parse


def _ids_or_names(text: str) -> tuple[int | str, ...]:
    """``--classes 5,6,7`` or ``--classes cat,dog`` (a name may hold spaces: ``Ankle boot``)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return tuple(int(p) if p.lstrip("-").isdigit() else p for p in parts)


def _json_dict(text: str) -> dict:
    try:
        d = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}") from e
    if not isinstance(d, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return d


def _flag_kwargs(name: str, hint: Any) -> dict[str, Any]:
    """argparse keywords for one TrainConfig field, from its (resolved) type hint."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):  # X | None
        inner = [a for a in args if a is not type(None)]
        return _flag_kwargs(name, inner[0])
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is tuple and typing.get_origin(args[0]) in (typing.Union, types.UnionType):
        return {"type": _ids_or_names, "metavar": "A,B,..."}  # int | str entries: --classes
    if origin is tuple:
        return {"type": _tuple_of(args[0]), "metavar": "A,B" if args[-1] is not Ellipsis else "A,B,..."}
    if origin is dict or hint is dict:
        return {"type": _json_dict, "metavar": "JSON"}
    if hint in (int, float, str):
        return {"type": hint}
    raise TypeError(f"no CLI flag type for TrainConfig.{name}: {hint}")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Every TrainConfig field as a flag (default SUPPRESS: only given flags reach the namespace)."""
    from cnnzoo.train.config import TrainConfig

    d = TrainConfig()
    p.add_argument(
        "model",
        nargs="?",
        default=argparse.SUPPRESS,
        help=f"registry name (default: the recipe's, else {d.model})",
    )
    p.add_argument("--recipe", default=None, help="a named preset (see `cnnzoo recipes`)")
    p.add_argument("--config", default=None, metavar="FILE", help="a YAML or TOML file of config fields")
    p.add_argument(
        "--resume",
        default=None,
        metavar="DIR",
        help="continue the interrupted run in DIR exactly (flags given here override its config)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run that --out already holds (without it, such a directory is refused)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (per-epoch lines only)")
    p.add_argument(
        "--model-arg",
        type=_kv,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra builder keyword, e.g. --model-arg criterion=map (repeatable)",
    )
    add_config_arguments(p.add_argument_group("config fields (override the recipe and --config)"))


def add_config_arguments(g: argparse._ActionsContainer, exclude: tuple[str, ...] = ("model",)) -> None:
    """A flag per TrainConfig field but ``exclude`` (default SUPPRESS); ``cnnzoo finetune`` shares them."""
    import dataclasses

    from cnnzoo.train.config import FIELD_HELP, TrainConfig

    d = TrainConfig()
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.name in exclude:
            continue
        default = getattr(d, f.name)
        g.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f.name,
            default=argparse.SUPPRESS,
            help=f"{FIELD_HELP.get(f.name, '')} (default {default})",
            **_flag_kwargs(f.name, hints[f.name]),
        )


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given on the command line (positional model and --model-arg included)."""
    from cnnzoo.train.config import TrainConfig

    over = {k: getattr(args, k) for k in TrainConfig.field_names() if hasattr(args, k)}
    if getattr(args, "model_arg", None):
        over["model_kwargs"] = {**over.get("model_kwargs", {}), **dict(args.model_arg)}
    return over


def config_from_args(args: argparse.Namespace):
    """Resolve recipe < config file < flags into a validated TrainConfig."""
    from cnnzoo.train.config import TrainConfig

    over = overrides_from_args(args)
    recipe, cfile = getattr(args, "recipe", None), getattr(args, "config", None)
    if recipe or cfile:
        from cnnzoo.train.recipes import resolve

        d = resolve(recipe, cfile, over)
    else:
        d = over
    fields = set(TrainConfig.field_names())
    extra = {k: d[k] for k in d if k not in fields and k in ("description", "name", "notes")}
    cfg = TrainConfig.from_dict({k: v for k, v in d.items() if k not in extra})
    return cfg.validate()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (recipes, schedules, augmentation, resume, torchrun)",
        description="Train a model. Precedence: --recipe < --config FILE < flags. "
        "Multi-process: torchrun --nproc_per_node N -m cnnzoo train ...",
    )
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("recipes", help="list the training recipes (named presets)")
    p.set_defaults(func=cmd_recipes)

    p = sub.add_parser("eval", help="re-evaluate a saved run directory on its test split")
    p.add_argument("run_dir")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--weights-from",
        choices=WEIGHTS_FROM,
        default=None,
        help="the trained weights, their moving average (--ema) or the best validation epoch; "
        "default: the ones the run reports",
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("demo", help="the main job: cost tables, then LeNet-5 on Fashion-MNIST")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--overwrite", action="store_true", help="replace the run that --out already holds")
    p.add_argument("--model", default="lenet5_relu")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)


def _print_summary(console, s: dict[str, Any], out: str) -> None:
    if not s:  # not rank 0 of a torchrun job
        return
    weights = "EMA weights" if s.get("reported_weights") == "ema" else "weights"
    extra = "".join(
        f", {s[k]}" for k in ("ema_file", "best_file") if k in s
    )  # ema.safetensors (--ema), best.safetensors (--val-samples)
    console.print(
        f"[bold green]{s['model']}: test top-1 {s['test_top1']:.2f}%[/] (top-5 {s['test_top5']:.2f}%, {weights}) "
        f"after {s['epochs']} epochs in {s['wall_seconds']:.1f} s ({s['images_per_second']:,.0f} train img/s)\n"
        f"artefacts in {out}/: weights.safetensors (sha256 {s['weights_sha256'][:12]}…){extra}, "
        f"config.json, metrics.csv, summary.json, confusion_matrix.{{csv,png}}, misclassified.png, curves.png"
    )


def _figure_helper():
    """A context holding the helper process that draws the run's figures, or None: started first,
    before torch is imported, so that it gets matplotlib ready on the core the import leaves idle
    (:mod:`cnnzoo.train.figures`). Rank 0 alone writes the report."""
    import contextlib

    from cnnzoo.train.figures import FigureWorker

    worker = FigureWorker.start() if os.environ.get("RANK", "0") == "0" else None
    return worker if worker is not None else contextlib.nullcontext()


def cmd_train(args: argparse.Namespace) -> int:
    with _figure_helper() as figures:
        return _train(args, figures)


def _train(args: argparse.Namespace, figures) -> int:
    from rich.console import Console

    from cnnzoo.train.config import TrainConfig
    from cnnzoo.train.loop import TrainingInterrupted, fit
    from cnnzoo.train.setup import prewarm_optimizer_import

    prewarm_optimizer_import()  # as soon as torch is in: it overlaps reading the config and the data too
    console = Console()
    try:
        if args.resume:
            if args.recipe or args.config:
                from cnnzoo.errors import ConfigError

                raise ConfigError(
                    "--resume continues a run with its saved config; drop --recipe/--config "
                    "(single flags such as --epochs may still override it)"
                )
            s = fit(
                TrainConfig(),
                console=console,
                progress=not args.no_progress,
                resume=args.resume,
                overrides=overrides_from_args(args),
                overwrite=args.overwrite,
                figures=figures,
            )
        else:
            cfg = config_from_args(args)
            s = fit(
                cfg, console=console, progress=not args.no_progress, overwrite=args.overwrite, figures=figures
            )
    except TrainingInterrupted as e:
        print(f"cnnzoo train: {e}", file=sys.stderr)
        return 130
    _print_summary(console, s, s.get("out", "the run directory"))
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from cnnzoo.train.recipes import get_recipe, list_recipes

    console = Console()
    wide = console.width >= 120  # the description column only where it fits
    t = Table(title="cnnzoo recipes (cnnzoo train --recipe NAME; any field can be overridden)")
    for col in ("name", "model", "data", "epochs", "batch", "optimizer", "schedule"):
        t.add_column(col, no_wrap=True)
    if wide:
        t.add_column("description", ratio=1, overflow="ellipsis", no_wrap=True, min_width=20)
    for name in list_recipes():
        r = get_recipe(name)
        epochs = f"{r['iterations']} it" if r.get("iterations") else str(r.get("epochs", ""))
        opt = f"{r.get('optimizer', 'sgd')} {r.get('lr', '')}"
        row = [
            name,
            str(r.get("model", "")),
            str(r.get("data", "")),
            epochs,
            str(r.get("batch_size", "")),
            opt,
            str(r.get("schedule", "")),
        ]
        if wide:
            row.append(str(r.get("description", "")).split(": ")[0])
        t.add_row(*row)
    console.print(t)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cnnzoo.data import load_dataset, resolve_input
    from cnnzoo.data.feed import DataFeed
    from cnnzoo.errors import ConfigError
    from cnnzoo.rundir import RunDir
    from cnnzoo.train.evaluate import evaluate
    from cnnzoo.train.runs import default_weights_from, load_run, run_test_indices
    from cnnzoo.train.setup import select_device

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    device = select_device(args.device)
    kind = args.weights_from or default_weights_from(args.run_dir)
    model, cfg = load_run(args.run_dir, device=str(device), weights_from=kind)
    from cnnzoo.data.subsets import select_classes

    ds = load_dataset(cfg["data"], "test", data_dir=args.data_dir or cfg.get("data_dir"))
    ds = select_classes(ds, cfg.get("classes") or ())  # a --classes run is scored on its classes
    size, mode = resolve_input(model.default_cfg, cfg.get("input_size"), ds.images.shape[-1])
    feed = DataFeed(ds, size=size, mode=mode, in_chans=model.in_chans, device=device)
    subset = run_test_indices(cfg, len(feed))
    if subset is not None:  # the run's --test-samples subset: what its recorded accuracy is on
        feed = feed.select(subset)
    predict = None
    if cfg.get("eval_mode", "none") != "none":
        from cnnzoo.train.tta import predict as tta_predict

        def predict(m, x):
            return tta_predict(m, x, mode=cfg["eval_mode"], crop=cfg.get("eval_crop"))

    ev = evaluate(model, feed.batches(args.batch_size), num_samples=len(feed), predict=predict)
    images = f"{len(feed):,} images" + (
        f", the run's --test-samples subset of {len(ds):,}" if subset is not None else ""
    )
    msg = (
        f"{cfg['model']} ({kind} weights) on {cfg['data']} test ({images}): top-1 {ev['top1']:.2f}%  "
        f"top-5 {ev['top5']:.2f}%  loss {ev['loss']:.4f}"
    )
    s = RunDir(args.run_dir).read_summary()  # load_run checked that it is there
    rec = s.get(f"{kind}_test_top1", s.get("test_top1") if s.get("reported_weights", "raw") == kind else None)
    if rec is not None:
        msg += f"  (recorded at training: {rec:.2f}%)"
    Console().print(msg)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    with _figure_helper() as figures:
        return _demo(args, figures)


def _demo(args: argparse.Namespace, figures) -> int:
    from rich.console import Console
    from rich.rule import Rule

    from cnnzoo.analysis.cli import print_demo_tables
    from cnnzoo.rundir import claim
    from cnnzoo.train.config import TrainConfig
    from cnnzoo.train.loop import fit

    claim(args.out, overwrite=args.overwrite, write=False)  # refuse before minutes of tables, not after
    console = Console()
    console.print(Rule("cost tables"))
    print_demo_tables(console, args.model, batch_size=128)
    console.print(Rule(f"training {args.model} on Fashion-MNIST"))
    cfg = TrainConfig(model=args.model, out=args.out, data_dir=args.data_dir)
    if args.epochs:
        cfg.epochs = args.epochs
    s = fit(cfg, console=console, progress=not args.no_progress, overwrite=args.overwrite, figures=figures)
    console.print(Rule("result"))
    _print_summary(console, s, args.out)
    if s:  # rank 0 ends with the run's page (cnnzoo report RUN_DIR)
        from cnnzoo.report import model_page, write_report

        page = write_report(model_page(args.out), f"{args.out}/report.html")
        console.print(f"report: {page.resolve()} (open it in a browser; it works offline)")
    return 0
