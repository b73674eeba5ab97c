"""``cnnzoo report``: one offline HTML page for a model, a run, or a comparison.

No torch at module level: ``cnnzoo list`` imports every command module.
"""

from __future__ import annotations

import argparse

from cnnzoo.analysis.cli import positive_int
from cnnzoo.errors import ConfigError
from cnnzoo.train.network_args import add_network_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="one offline HTML page: a model's diagram, costs and memory; a run's results; a comparison",
        description="Write one self-contained HTML page (nothing fetched; works offline). For a model: "
        "its architecture diagram (repeated blocks collapsed, click to expand), the sortable cost table, "
        "per-layer charts, receptive-field growth and a training step's memory with the batch adjustable. "
        "For a run directory, also its learning curves, confusion matrix, per-class accuracy, "
        "misclassified images, first-layer filters, stage feature maps, config and checksum. "
        "--compare A B ...: models or runs side by side with the accuracy-versus-operations bubble chart. "
        "See docs/report.md.",
    )
    add_network_arguments(p, optional=True)
    p.add_argument("--compare", nargs="+", metavar="MODEL|RUN_DIR", help="compare these models or runs")
    p.add_argument("--input", metavar="CxHxW", help="input size (default: the model's, or the run's)")
    p.add_argument(
        "--batch",
        type=positive_int,
        default=32,
        metavar="B",
        help="the batch for memory and FLOPs (default 32)",
    )
    p.add_argument("--out", required=True, metavar="FILE.html", help="where to write the page")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from cnnzoo.report.build import check_output, compare_page, model_page, write_report

    check_output(args.out)  # before any work: an unwritable path fails in a second, not after the trace
    if args.compare:
        if args.network is not None or args.weights is not None or args.weights_from is not None:
            raise ConfigError(
                "--compare takes the networks after it (cnnzoo report --compare A B --out FILE); "
                "drop the MODEL and --weights"
            )
        html = compare_page(args.compare, batch=args.batch, input_size=args.input)
    else:
        if args.network is None:
            raise ConfigError(
                "give a MODEL or RUN_DIR (e.g. cnnzoo report resnet50 --out r.html), or --compare A B"
            )
        html = model_page(
            args.network,
            weights=args.weights,
            weights_from=args.weights_from,
            input_size=args.input,
            batch=args.batch,
        )
    path = write_report(html, args.out)
    print(f"wrote {path} ({len(html.encode()) / 2**20:.2f} MB); open it in a browser")
    return 0
