"""``cnnzoo summary`` and ``cnnzoo compare``: cost tables on the command line.

No torch at module level: ``cnnzoo list`` must start without it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

FORMATS = ("table", "markdown", "csv", "json", "latex", "html")
DTYPES = ("float32", "float16", "bfloat16")
#: the analyzer's optimizers (cnnzoo.analysis.memory.OPTIMIZERS; named here to keep torch out)
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop", "rmsprop_momentum")


def positive_int(text: str) -> int:
    """argparse type: an int >= 1 (batch sizes, depths), with a one-line error otherwise."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", metavar="CxHxW", help="input size of one sample (default: the model's config)")
    p.add_argument(
        "--batch", type=positive_int, default=None, metavar="N", help="minibatch size B (default 1)"
    )
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="training dtype (bytes per value)")
    p.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default="momentum",
        help="optimizer state per parameter: sgd 0, momentum 1 (default), adam/adamw 2, rmsprop 1, "
        "rmsprop_momentum 2",
    )
    p.add_argument(
        "--exclude-act",
        action="store_true",
        help="leave activation-function rows (type 'act') out of the lecture's totals",
    )
    p.add_argument(
        "--no-backward",
        action="store_true",
        help="trace the forward only: the lecture's columns, no training step (faster)",
    )
    p.add_argument(
        "--keep-grads",
        action="store_true",
        help="the training step keeps last step's gradients (zero_grad(set_to_none=False)); default: freed",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="the per-layer cost table of a model (FLOPs, memory, receptive field)",
        description="Per-layer cost table: kernels, stride, padding, output, #activations, #params, FLOPs "
        "(2 per multiply-add) and MACs, activation and parameter memory for a training minibatch (the "
        "lecture's bookkeeping), receptive field and jump; then what one traced training step holds and "
        "costs: saved bytes and backward FLOPs per row, peak training memory. --fit MEMORY prints the "
        "largest batch that fits. Rules: docs/cost-tables.md.",
    )
    p.add_argument("model", help="registered model name (see `cnnzoo list`)")
    _common(p)
    p.add_argument(
        "--depth", type=positive_int, metavar="K", help="fold modules below depth K into one row each"
    )
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: a rich table)")
    p.add_argument("--output", metavar="FILE", help="write to FILE instead of the terminal")
    p.add_argument(
        "--fit",
        metavar="MEMORY",
        help="print the largest batch whose predicted training peak fits MEMORY, e.g. 16GiB (2^30 bytes) "
        "or 16GB (10^9 bytes)",
    )
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser(
        "compare",
        help="side-by-side totals of several models, with an optional plot",
        description="Totals of several models side by side: params, GFLOPs per image, activation and "
        "parameter memory at the batch, and the final receptive field.",
    )
    p.add_argument("models", nargs="+", help="registered model names")
    _common(p)
    p.add_argument("--plot", metavar="FILE.png", help="save a GFLOPs-vs-params bubble plot (bubble = memory)")
    p.add_argument("--format", choices=("table", "markdown", "csv", "json"), default="table")
    p.set_defaults(func=cmd_compare)


def _analyze(model: str, args: argparse.Namespace, depth: int | None = None):
    from cnnzoo.analysis import analyze

    return analyze(
        model,
        input_size=args.input,
        batch_size=args.batch or 1,
        dtype=args.dtype,
        optimizer=args.optimizer,
        depth=depth,
        include_activations=not args.exclude_act,
        backward=not args.no_backward,
        set_to_none=not args.keep_grads,
    )


def check_writable(path: str, flag: str, *, suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` as a file this command can write (checked before any work), else a ConfigError."""
    import os

    from cnnzoo.errors import ConfigError
    from cnnzoo.io import can_write_in

    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise ConfigError(
            f"{flag} {path} is a directory; give a file name, e.g. {p / ('out' + (suffixes or ('.txt',))[0])}"
        )
    if not parent.is_dir():
        raise ConfigError(f"cannot write {flag} {path}: the folder {parent} does not exist; create it first")
    why = can_write_in(parent)
    if why or (p.exists() and not os.access(p, os.W_OK)):
        raise ConfigError(f"cannot write {flag} {path}: {why or 'permission denied'}; choose a writable path")
    if suffixes and p.suffix.lower() not in suffixes:
        raise ConfigError(
            f"{flag} {path}: unknown image format {p.suffix or '(none)'!r}; use one of {', '.join(suffixes)}"
        )
    return p


def _write(path: str, flag: str, writer) -> None:
    """Write ``path`` atomically with ``writer(tmp)``; an OS error is one line."""
    from cnnzoo.errors import ConfigError
    from cnnzoo.io import atomic_write

    try:
        atomic_write(path, writer)
    except OSError as e:
        raise ConfigError(f"cannot write {flag} {path}: {e.strerror or e}; choose a writable path") from e


def _emit(text: str, output: str | None) -> None:
    if output:
        _write(output, "--output", lambda tmp: Path(tmp).write_text(text))
        print(f"wrote {output}")
    else:
        print(text, end="" if text.endswith("\n") else "\n")


def cmd_summary(args: argparse.Namespace) -> int:
    if args.output:
        check_writable(args.output, "--output")
    if args.fit:
        return cmd_fit(args)
    report = _analyze(args.model, args, args.depth)
    if args.format == "table":
        from rich.console import Console

        if args.output:

            def write_table(tmp: str) -> None:
                with open(tmp, "w") as f:
                    report.print(Console(file=f, width=240, color_system=None))

            _write(args.output, "--output", write_table)
            print(f"wrote {args.output}")
        else:
            import sys

            # a file or pipe has no width: do not fold the table to 80 columns
            report.print(Console() if sys.stdout.isatty() else Console(width=250))
        return 0
    text = {
        "markdown": report.to_markdown,
        "csv": report.to_csv,
        "json": report.to_json,
        "latex": report.to_latex,
        "html": report.to_html,
    }[args.format]()
    _emit(text, args.output)
    return 0


# -- summary --fit ----------------------------------------------------------------------------------


def _size_text(n: float, binary: bool) -> str:
    """Bytes in the unit family the user wrote: GiB/MiB for 2^k sizes, GB/MB for 10^k."""
    base, units = (
        (1024, ("B", "KiB", "MiB", "GiB", "TiB")) if binary else (1000, ("B", "KB", "MB", "GB", "TB"))
    )
    i = 0
    while n >= base and i < len(units) - 1:
        n /= base
        i += 1
    return f"{n:,.2f} {units[i]}"


def cmd_fit(args: argparse.Namespace) -> int:
    """``cnnzoo summary MODEL --fit 16GiB``: the largest batch whose training peak fits."""
    from cnnzoo.analysis import fit_batch_size
    from cnnzoo.errors import ConfigError

    if args.batch is not None or args.depth is not None or args.no_backward:
        raise ConfigError(
            "--fit finds the batch from a traced training step: drop --batch, --depth and --no-backward"
        )
    fit = fit_batch_size(
        args.model,
        args.fit,
        input_size=args.input,
        dtype=args.dtype,
        optimizer=args.optimizer,
        set_to_none=not args.keep_grads,
    )
    binary = "i" in args.fit.lower()
    grads = "kept" if args.keep_grads else "freed by zero_grad(set_to_none=True)"
    if args.format == "json":
        import json

        text = json.dumps(
            {
                "model": args.model,
                "input_size": args.input,
                "dtype": args.dtype,
                "optimizer": args.optimizer,
                "set_to_none": not args.keep_grads,
                "memory": args.fit,
                "budget_bytes": fit.budget,
                "batch": fit.batch,
                "peak_training_bytes": fit.peak,
                "next_batch_peak_bytes": fit.next_peak,
                "per_sample_bytes": fit.per_sample,
                "traced": {str(b): p for b, p in sorted(fit.traced.items())},
                "affine": fit.affine,
            },
            indent=2,
        )
    elif fit.batch == 0:
        text = (
            f"{args.model}: not even batch 1 fits {args.fit} ({fit.budget:,} bytes): its predicted training peak "
            f"is {_size_text(fit.peak, binary)} ({args.dtype}, {args.optimizer}, gradients {grads})"
        )
    else:
        traced = sorted(fit.traced)
        text = (
            f"{args.model}: batch {fit.batch} is the largest whose predicted training peak fits {args.fit} "
            f"({fit.budget:,} bytes): {_size_text(fit.peak, binary)}; batch {fit.batch + 1} needs "
            f"{_size_text(fit.next_peak, binary)} ({args.dtype}, {args.optimizer}, gradients {grads}).\n"
            f"Traced at batches {', '.join(map(str, traced))}; the peak grows by "
            f"{_size_text(fit.per_sample, binary)} per sample"
            + (
                ", affine in the batch as predicted."
                if fit.affine
                else "; not affine, so the batch was bisected."
            )
        )
    _emit(text + "\n", args.output)
    return 0


# -- compare --------------------------------------------------------------------------------------


def compare_rows(reports: list) -> list[dict[str, Any]]:
    """One dict of totals per report (exact integers, plus GFLOPs per image; the training step's
    peak and FLOPs are None when it was not traced)."""
    out = []
    for r in reports:
        t = r.totals
        out.append(
            {
                "model": r.model,
                "input_size": list(r.input_size),
                "batch_size": r.batch_size,
                "params": t["params"],
                "flops": t["flops"],
                "gflops_per_image": t["flops"] / r.batch_size / 1e9,
                "activation_memory_bytes": t["activation_memory_bytes"],
                "parameter_memory_bytes": t["parameter_memory_bytes"],
                "peak_training_bytes": t["peak_training_bytes"],
                "training_step_flops": t["training_step_flops"],
                "final_receptive_field": r.final_receptive_field,
            }
        )
    return out


PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def cmd_compare(args: argparse.Namespace) -> int:
    if args.plot:
        check_writable(args.plot, "--plot", suffixes=PLOT_SUFFIXES)
    reports = [_analyze(m, args) for m in args.models]
    rows = compare_rows(reports)
    batch = args.batch or 1
    mb = 2**20
    if args.format == "json":
        import json

        print(
            json.dumps(
                {"batch_size": batch, "dtype": args.dtype, "optimizer": args.optimizer, "models": rows},
                indent=2,
            )
        )
    elif args.format == "csv":
        import csv
        import sys

        w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({**row, "input_size": "x".join(map(str, row["input_size"]))})
    else:
        headers = [
            "model",
            "input",
            "params (M)",
            "GFLOPs / image",
            f"act mem @{batch} (MB)",
            f"param mem @{args.optimizer} (MB)",
            f"peak train @{batch} (MB)",
            "final RF",
        ]
        cells = [
            [
                row["model"],
                "×".join(map(str, row["input_size"])),
                f"{row['params'] / 1e6:,.2f}",
                f"{row['gflops_per_image']:,.3f}",
                f"{row['activation_memory_bytes'] / mb:,.1f}",
                f"{row['parameter_memory_bytes'] / mb:,.1f}",
                "—" if row["peak_training_bytes"] is None else f"{row['peak_training_bytes'] / mb:,.1f}",
                "—" if row["final_receptive_field"] is None else f"{row['final_receptive_field']:,}",
            ]
            for row in rows
        ]
        if args.format == "markdown":
            print("| " + " | ".join(headers) + " |")
            print("|---|---|" + "---:|" * (len(headers) - 2))
            for c in cells:
                print("| " + " | ".join(c) + " |")
        else:
            from rich.console import Console
            from rich.table import Table

            table = Table(
                title=f"cnnzoo compare: batch {batch}, {args.dtype}, optimizer {args.optimizer}",
                header_style="bold",
            )
            for i, h in enumerate(headers):
                table.add_column(h, justify="left" if i < 2 else "right")
            for c in cells:
                table.add_row(*c)
            Console().print(table)
            print(
                "GFLOPs count 2 per multiply-add; act and param mem are the lecture's bookkeeping, peak train "
                "the traced peak of one training step (MB = 2^20 bytes); final RF = receptive field of the "
                "last feature map before global pooling."
            )
    if args.plot:
        plot_compare(rows, args.plot, batch=batch)
        print(f"wrote {args.plot}")
    return 0


def plot_compare(rows: list[dict[str, Any]], path: str, *, batch: int) -> None:
    """GFLOPs per image against params, bubble area = training memory at the batch, points labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mb = 2**20
    params = [r["params"] / 1e6 for r in rows]
    gflops = [r["gflops_per_image"] for r in rows]
    mem = [(r["activation_memory_bytes"] + r["parameter_memory_bytes"]) / mb for r in rows]
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    biggest = max(mem) or 1.0
    sizes = [80 + 2200 * m / biggest for m in mem]
    ax.scatter(params, gflops, s=sizes, alpha=0.45, c=range(len(rows)), cmap="viridis", edgecolors="black")
    for r, x, y, m in zip(rows, params, gflops, mem, strict=True):
        ax.annotate(
            f"{r['model']}\n{m:,.0f} MB", (x, y), textcoords="offset points", xytext=(8, 6), fontsize=9
        )
    if min(params) > 0 and max(params) / min(params) > 20:
        ax.set_xscale("log")
    if min(gflops) > 0 and max(gflops) / min(gflops) > 20:
        ax.set_yscale("log")
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel("GFLOPs per image (2 per multiply-add)")
    ax.set_title(f"Cost of the models: bubble area = training memory at batch {batch}")
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(0.15)
    fig.tight_layout()
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    try:  # the temporary file has no image suffix: name the format
        _write(path, "--plot", lambda tmp: fig.savefig(tmp, format=fmt))
    finally:
        plt.close(fig)


# -- make demo ------------------------------------------------------------------------------------


def print_demo_tables(console, model_name: str, batch_size: int = 128) -> None:
    """Print the cost table of ``model_name`` (default input) and the lecture's AlexNet table at batch 128.

    ``make demo`` calls this before training. The AlexNet table (3×227×227, batch 128, fp32, SGD
    with momentum) is the one the lectures draw; it is skipped if ``alexnet`` is not registered.
    """
    from cnnzoo.analysis import analyze
    from cnnzoo.registry import is_model

    analyze(model_name, batch_size=batch_size).print(console)
    if is_model("alexnet"):
        console.print()
        analyze("alexnet", input_size=(3, 227, 227), batch_size=128).print(console)
