"""The ``cnnzoo`` command line.

Each area of the package contributes its subcommands through a ``register(subparsers)`` function
in its own ``cli`` module (listed in ``COMMAND_MODULES``), so areas stay independent. Command
modules must not import torch at module level: ``cnnzoo list`` starts without it.

Errors a user can fix (:class:`cnnzoo.errors.CnnzooError`) print as one message and exit 2;
``CNNZOO_DEBUG=1`` shows the traceback.

Before anything imports torch, :func:`main` shortens how long PyTorch's OpenMP threads spin at a
barrier (``GOMP_SPINCOUNT``, unless the user set it or ``OMP_WAIT_POLICY``): libgomp's default of
300,000 spins makes a waiting thread burn the time slice that the thread it waits for needs whenever
another process shares the cores, and made a short training run up to 6× slower on the 2-core
development machine (``benchmarks/train_startup.py``, ``benchmarks/README.md``).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence

from cnnzoo import _startup

#: libgomp's spin count at a barrier before a waiting thread sleeps (default 300,000): a few microseconds.
GOMP_SPINCOUNT = "1000"

COMMAND_MODULES = (
    "cnnzoo.commands",  # list, info
    "cnnzoo.train.cli",  # train, recipes, eval, demo
    "cnnzoo.analysis.cli",  # summary, compare
    "cnnzoo.scratch.cli",  # scratch train / scratch explain
    "cnnzoo.train.finetune_cli",  # finetune
    "cnnzoo.weights_cli",  # weights inspect / convert, export
    "cnnzoo.experiments.cli",  # experiment list / experiment run
    "cnnzoo.report.cli",  # report
)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``cnnzoo train: error: ...``) instead of usage text, exit 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from cnnzoo import __version__

    parser = _Parser(
        prog="cnnzoo",
        description="The landmark CNNs, paper-exact: model zoo, cost tables, trainer, NumPy engine.",
    )
    parser.add_argument("--version", action="version", version=f"cnnzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def calm_openmp(environ: dict[str, str] = os.environ) -> None:
    """Set a short OpenMP spin (:data:`GOMP_SPINCOUNT`) unless the user chose a wait policy; it only
    takes effect in a process that has not imported torch yet (libgomp reads it when it loads)."""
    if "OMP_WAIT_POLICY" not in environ:
        environ.setdefault("GOMP_SPINCOUNT", GOMP_SPINCOUNT)


def main(argv: Sequence[str] | None = None) -> int:
    calm_openmp()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "train":  # `fit` settles once its optimizer exists: the rest of start-up
        _startup.settle()
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    from cnnzoo.errors import CnnzooError

    try:
        rc = args.func(args)
    except CnnzooError as e:
        if os.environ.get("CNNZOO_DEBUG"):
            raise
        print(f"cnnzoo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


def console_main() -> None:
    """The ``cnnzoo`` program: :func:`main` with the collector off while it starts (:mod:`cnnzoo._startup`),
    then exit without a long interpreter shutdown.

    Once torch (and the ``torch._dynamo`` that every ``torch.optim`` optimizer imports) is loaded,
    Python's shutdown walks its ~400,000 objects for cyclic garbage: 1.2-1.6 s of every command on
    the development machine, twice a short training run's report (``benchmarks/train_startup.py``).
    ``gc.freeze()`` moves them to the permanent generation that no collection visits; the files
    are closed and flushed already, and atexit handlers still run. Not done by :func:`main`, which
    tests and other programs call in their own process.
    """
    _startup.defer()
    rc = main()
    _startup.settle()
    sys.stdout.flush()
    gc.freeze()
    sys.exit(rc)


if __name__ == "__main__":
    console_main()
