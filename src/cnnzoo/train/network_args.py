"""The ``MODEL | RUN_DIR [--weights FILE]`` arguments of every loading command, torch-free.

Command modules register their parsers before anything imports torch (``cnnzoo list`` starts
without it), so the arguments live here; :func:`cnnzoo.train.runs.open_network` reads them.
"""

from __future__ import annotations

import argparse

__all__ = ["WEIGHTS_FROM", "add_network_arguments"]

#: which of a run's weights to load: the trained ones, their moving average (``--ema``), or the
#: epoch with the best validation top-1 (``--val-samples``); ``train.runs.RECORDS`` maps each to its file
WEIGHTS_FROM = ("raw", "ema", "best")


def add_network_arguments(parser: argparse.ArgumentParser, *, optional: bool = False) -> None:
    """The ``MODEL | RUN_DIR [--weights FILE] [--weights-from raw|ema|best]`` arguments, for every
    loading command; ``optional`` makes the network optional (``cnnzoo report --compare``)."""
    parser.add_argument(
        "network",
        metavar="MODEL|RUN_DIR",
        nargs="?" if optional else None,
        default=None,
        help="a registered model name or a run directory",
    )
    parser.add_argument(
        "--weights", default=None, metavar="FILE", help="a checkpoint for MODEL (torchvision, timm or cnnzoo)"
    )
    parser.add_argument(
        "--weights-from",
        choices=WEIGHTS_FROM,
        default=None,
        help="for a RUN_DIR: the trained weights, their moving average (--ema) or the best validation epoch; "
        "default: the ones it reports",
    )
