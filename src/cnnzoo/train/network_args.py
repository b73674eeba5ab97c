"""The ``MODEL | RUN_DIR [--weights FILE]`` arguments of every loading command, torch-free.

Command modules register their parsers before anything imports torch (``cnnzoo list`` starts
without it), so the arguments live here; :func:`cnnzoo.train.runs.open_network` reads them.
"""

from __future__ import annotations

import argparse

__all__ = ["WEIGHTS_FROM", "add_network_arguments"]

WEIGHTS_FROM = ("raw", "ema")


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``MODEL | RUN_DIR [--weights FILE] [--weights-from raw|ema]`` arguments, for every loading command."""
    parser.add_argument("network", metavar="MODEL|RUN_DIR", help="a registered model name or a run directory")
    parser.add_argument(
        "--weights", default=None, metavar="FILE", help="a checkpoint for MODEL (torchvision, timm or cnnzoo)"
    )
    parser.add_argument(
        "--weights-from",
        choices=WEIGHTS_FROM,
        default=None,
        help="for a RUN_DIR: the trained weights or their moving average (--ema); default: the ones it reports",
    )
