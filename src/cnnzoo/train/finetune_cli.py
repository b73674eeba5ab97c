"""``cnnzoo finetune MODEL | RUN_DIR [--weights FILE] --data ... --mode MODE``: transfer learning.

Every ``cnnzoo train`` config field is a flag here too (``--epochs``, ``--classes``,
``--train-per-class``...), so a fine-tuning run and the scratch run it is compared with are set
the same way. Without ``--lr``, the head's learning rate is the mode's
(:data:`cnnzoo.train.finetune.DEFAULT_LR`).

``--out DIR --resume`` continues the interrupted fine-tuning run in DIR exactly, with its recorded
mode and options (give the same MODEL | RUN_DIR [--weights FILE]; an option other than the
recorded one is refused, naming it). An ``--out`` that holds a run is refused without ``--resume``
or ``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys

#: cnnzoo.train.finetune.MODES, repeated here because this module must not import torch
MODES = ("linear-probe", "finetune", "progressive", "gradual")


def register(sub: argparse._SubParsersAction) -> None:
    from cnnzoo.train.cli import add_config_arguments
    from cnnzoo.train.network_args import add_network_arguments

    p = sub.add_parser(
        "finetune",
        help="transfer a trained network to new data: linear probe, finetune, progressive, gradual",
        description="Train a pre-trained network (a run directory, or a model name with --weights FILE) "
        "on new data. Modes: linear-probe (a new head on a frozen extractor, BatchNorm statistics "
        "frozen), finetune (everything at one smaller lr), progressive (lr x decay^(stage groups below "
        "the head)), gradual (unfreeze one stage group every N epochs). The output is a run directory.",
    )
    add_network_arguments(p)
    p.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="how to transfer (default finetune; with --resume the run's)",
    )
    p.add_argument(
        "--lr-decay",
        type=float,
        default=None,
        help="progressive/gradual: lr factor per stage group below the head (default 0.5 progressive, 1 gradual)",
    )
    p.add_argument(
        "--unfreeze-every",
        type=int,
        default=None,
        metavar="N",
        help="gradual: epochs between unfreezings (default 1)",
    )
    p.add_argument(
        "--freeze",
        action="append",
        default=None,
        metavar="PATTERN",
        help="also keep parameters matching this fnmatch pattern frozen, e.g. 'conv1.*' (repeatable)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted fine-tuning run in --out DIR exactly (its recorded mode and options)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run that --out already holds (without it, such a directory is refused)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (per-epoch lines only)")
    add_config_arguments(p.add_argument_group("config fields (as cnnzoo train)"), exclude=("model",))
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cnnzoo.errors import ConfigError
    from cnnzoo.train.cli import _print_summary, overrides_from_args
    from cnnzoo.train.config import TrainConfig
    from cnnzoo.train.finetune import DEFAULT_LR, finetune
    from cnnzoo.train.loop import TrainingInterrupted
    from cnnzoo.train.runs import open_network

    over = overrides_from_args(args)
    resume = None
    if args.resume:
        if not over.get("out"):
            raise ConfigError("--resume continues the run in --out DIR; give the run's --out")
        if args.overwrite:
            raise ConfigError("--resume continues the run in its directory; drop --overwrite (or --resume)")
        from cnnzoo.rundir import RunDir

        resume = over.pop("out")
        kwargs = over.get("model_kwargs") or RunDir(resume).read_config().get("model_kwargs", {})
    else:
        over.setdefault("lr", DEFAULT_LR[args.mode or "finetune"])
        kwargs = over.get("model_kwargs", {})
    network = open_network(args.network, weights=args.weights, weights_from=args.weights_from, **kwargs)
    console = Console()
    if network.run is None and network.weights is None:
        console.print(
            f"[yellow]note: {network.name} has no pre-trained weights here (no --weights FILE, not a run "
            "directory): it starts from its random init[/]"
        )
    try:
        s = finetune(
            network,
            None if resume else TrainConfig.from_dict({**over, "model": network.name}),
            mode=args.mode,
            lr_decay=args.lr_decay,
            unfreeze_every=args.unfreeze_every,
            freeze=None if args.freeze is None else tuple(args.freeze),
            console=console,
            progress=not args.no_progress,
            resume=resume,
            overrides=over if resume else None,
            overwrite=args.overwrite,
        )
    except TrainingInterrupted as e:
        print(f"cnnzoo finetune: {e}", file=sys.stderr)
        return 130
    _print_summary(console, s, s.get("out", "the run directory"))
    groups = ", ".join(f"{g['name']} {g['lr']:.3g}" for g in s["finetune"]["groups"])
    console.print(f"mode {s['finetune']['mode']}; learning rates: {groups}")
    return 0
