"""``cnnzoo train``, ``cnnzoo eval`` and ``cnnzoo demo``."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _kv(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    try:
        return k, json.loads(v)
    except ValueError:
        return k, v


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from cnnzoo.train.config import TrainConfig

    d = TrainConfig()
    p.add_argument("model", nargs="?", default=d.model, help=f"registry name (default {d.model})")
    p.add_argument("--data", default=d.data, help=f"dataset name (default {d.data})")
    p.add_argument("--data-dir", default=None, help="directory with the dataset files (else $CNNZOO_DATA)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate")
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=d.nesterov)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--schedule", choices=("constant", "cosine"), default=d.schedule)
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--input-size", type=int, default=None, help="side fed to the model (default: per model)")
    p.add_argument("--train-samples", type=int, default=None, help="train on a random subset of N images")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:1 or mps")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--out", default=None, help="run directory (default runs/MODEL-TIMESTAMP)")
    p.add_argument("--model-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="extra builder keyword, e.g. --model-arg criterion=map (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (per-epoch lines only)")


def config_from_args(args: argparse.Namespace):
    from cnnzoo.train.config import TrainConfig

    return TrainConfig(
        model=args.model, data=args.data, data_dir=args.data_dir, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, momentum=args.momentum, nesterov=args.nesterov,
        weight_decay=args.weight_decay, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
        seed=args.seed, input_size=args.input_size, train_samples=args.train_samples, device=args.device,
        threads=args.threads, out=args.out, model_kwargs=dict(args.model_arg),
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (SGD with momentum, eval every epoch)")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="re-evaluate a saved run directory on its test split")
    p.add_argument("run_dir")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("demo", help="the main job: cost tables, then LeNet-5 on Fashion-MNIST")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--model", default="lenet5_relu")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)


def _print_summary(console, s: dict[str, Any], out: str) -> None:
    console.print(
        f"[bold green]{s['model']}: test top-1 {s['test_top1']:.2f}%[/] (top-5 {s['test_top5']:.2f}%) after "
        f"{s['epochs']} epochs in {s['wall_seconds']:.1f} s ({s['images_per_second']:,.0f} train img/s)\n"
        f"artefacts in {out}/: weights.safetensors (sha256 {s['weights_sha256'][:12]}…), config.json, "
        f"metrics.csv, summary.json"
    )


def cmd_train(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cnnzoo.train.loop import fit

    console = Console()
    cfg = config_from_args(args)
    s = fit(cfg, console=console, progress=not args.no_progress)
    _print_summary(console, s, s.get("out") or cfg.out or "the run directory")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from cnnzoo.data import load_dataset, resolve_input
    from cnnzoo.train.checkpoint import SUMMARY, read_json
    from cnnzoo.train.data_feed import DataFeed
    from cnnzoo.train.evaluate import evaluate
    from cnnzoo.train.loop import select_device
    from cnnzoo.train.runs import load_run

    device = select_device(args.device)
    model, cfg = load_run(args.run_dir, device=str(device))
    ds = load_dataset(cfg["data"], "test", data_dir=args.data_dir or cfg.get("data_dir"))
    size, mode = resolve_input(model.default_cfg, cfg.get("input_size"), ds.images.shape[-1])
    feed = DataFeed(ds, size=size, mode=mode, in_chans=model.in_chans, device=device)
    ev = evaluate(model, feed.batches(args.batch_size), num_samples=len(feed))
    msg = (f"{cfg['model']} on {cfg['data']} test ({len(ds):,} images): top-1 {ev['top1']:.2f}%  "
           f"top-5 {ev['top5']:.2f}%  loss {ev['loss']:.4f}")
    summary_path = Path(args.run_dir) / SUMMARY
    if summary_path.is_file():
        rec = read_json(summary_path).get("test_top1")
        if rec is not None:
            msg += f"  (recorded at training: {rec:.2f}%)"
    Console().print(msg)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.rule import Rule

    from cnnzoo.train.config import TrainConfig
    from cnnzoo.train.loop import fit

    console = Console()
    try:  # the cost analyzer's tables (lands with issue 4)
        from cnnzoo.analysis.cli import print_demo_tables
    except ImportError:
        print_demo_tables = None
    if print_demo_tables is not None:
        console.print(Rule("cost tables"))
        print_demo_tables(console, args.model, batch_size=128)
    console.print(Rule(f"training {args.model} on Fashion-MNIST"))
    cfg = TrainConfig(model=args.model, out=args.out, data_dir=args.data_dir)
    if args.epochs:
        cfg.epochs = args.epochs
    s = fit(cfg, console=console, progress=not args.no_progress)
    console.print(Rule("result"))
    _print_summary(console, s, args.out)
    return 0
