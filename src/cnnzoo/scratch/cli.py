"""``cnnzoo scratch``: train and explain with the NumPy engine (no torch at any point)."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scratch", help="the from-scratch NumPy engine: train LeNet-5, explain conv/pool backprop"
    )
    ssub = p.add_subparsers(dest="scratch_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])

    t = ssub.add_parser("train", help="train lenet5_relu or lenet5 with the NumPy engine")
    t.add_argument("model", help="lenet5_relu or lenet5")
    t.add_argument("--data", default="fashion-mnist", help="dataset (default fashion-mnist)")
    t.add_argument("--data-dir", default=None, help="directory with the dataset files")
    t.add_argument("--epochs", type=int, default=4)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=None, help="peak lr (default: 0.05 lenet5_relu, 0.002 lenet5)")
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument(
        "--no-nesterov", dest="nesterov", action="store_false", help="plain (not Nesterov) momentum"
    )
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--schedule", choices=("cosine", "constant"), default="cosine")
    t.add_argument("--warmup-epochs", type=float, default=0.5)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--train-samples", type=int, default=None, help="train on a random subset of this size")
    t.add_argument("--test-samples", type=int, default=None, help="evaluate on a random subset of this size")
    t.add_argument("--threads", type=int, default=None, help="BLAS threads (default: NumPy's default)")
    t.add_argument("--workers", type=int, default=1, help="data-parallel threads (each with 1 BLAS thread)")
    t.add_argument("--micro-batch", type=int, default=64, help="largest micro-batch per forward/backward")
    t.add_argument("--out", default=None, help="run directory (default runs/scratch-MODEL-TIME)")
    t.add_argument(
        "--overwrite", action="store_true", help="replace the run that --out already holds (else refused)"
    )
    t.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = ssub.add_parser("explain", help="walk through conv or max-pool backprop on the lectures' example")
    e.add_argument("what", choices=("conv", "maxpool"))
    e.set_defaults(func=cmd_explain)


def cmd_train(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cnnzoo.scratch.train import ScratchTrainConfig, fit

    cfg = ScratchTrainConfig(
        model=args.model,
        data=args.data,
        data_dir=args.data_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        nesterov=args.nesterov,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        warmup_epochs=args.warmup_epochs,
        seed=args.seed,
        train_samples=args.train_samples,
        test_samples=args.test_samples,
        threads=args.threads,
        workers=args.workers,
        micro_batch=args.micro_batch,
        out=args.out,
    )
    console = Console()
    s = fit(cfg, console=console, progress=args.progress, overwrite=args.overwrite)
    console.print(
        f"[bold green]test top-1 {s['test_top1']:.2f}%[/] after {s['epochs']} epochs, "
        f"{s['wall_seconds']:.1f} s wall, {s['images_per_second']:,.0f} img/s (NumPy engine); "
        f"artefacts in {s['out']}/: weights.safetensors (sha256 {s['weights_sha256'][:12]}…), "
        f"config.json, metrics.csv, summary.json"
    )
    return 0


def cmd_explain(args: argparse.Namespace, console=None) -> int:
    from cnnzoo.scratch import explain

    (explain.print_conv if args.what == "conv" else explain.print_maxpool)(console)
    return 0
