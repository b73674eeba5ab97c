"""``cnnzoo experiment list`` and ``cnnzoo experiment run NAME``: the lectures' claims, rerun."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="the lectures' claims as experiments (list, run)")
    esub = p.add_subparsers(dest="experiment_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])

    q = esub.add_parser("list", help="every experiment: name, claim, source, cost per scale")
    q.set_defaults(func=cmd_list)

    q = esub.add_parser("run", help="run one experiment and write result.json, plots and README.md")
    q.add_argument("name", help="an experiment's name (see `cnnzoo experiment list`)")
    q.add_argument(
        "--scale",
        default="cpu",
        help="quick (seconds, for tests), cpu (default: where claims are judged) "
        "or paper (the paper's setting, for a GPU)",
    )
    q.add_argument(
        "--seeds", type=int, default=None, help="seeds for trained experiments (default 2 at cpu scale)"
    )
    q.add_argument(
        "--data", default="fashion-mnist", help="dataset for trained experiments (default fashion-mnist)"
    )
    q.add_argument("--out", default=None, help="output directory (default runs/experiments/NAME)")
    q.add_argument("--overwrite", action="store_true", help="replace the result already in --out")
    q.set_defaults(func=cmd_run)


def cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from cnnzoo.experiments import SCALES, list_experiments

    exps = list_experiments()
    table = Table(title=f"cnnzoo experiments ({len(exps)})", header_style="bold", show_lines=True)
    table.add_column("name", no_wrap=True)
    table.add_column("claim")
    table.add_column("source")
    for s in SCALES:
        table.add_column(s, justify="right", no_wrap=True)
    for e in exps:
        table.add_row(e.name, e.claim, e.source, *(e.costs.get(s, "—") for s in SCALES))
    Console().print(table)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cnnzoo.experiments import run_experiment

    con = Console()
    result = run_experiment(
        args.name,
        scale=args.scale,
        seeds=args.seeds,
        data=args.data,
        out=args.out,
        console=con,
        overwrite=args.overwrite,
    )
    verdict = "[green]holds[/]" if result["holds"] else "[red]does not hold[/]"
    con.print(
        f"[bold]{result['name']}[/] ({result['scale']}, {result['seconds']:.1f} s): the claim {verdict}"
    )
    con.print(f"  criterion: {result['criterion']}", markup=False, highlight=False)
    if result["notes"]:
        con.print(f"  notes: {result['notes']}", markup=False, highlight=False)
    out = args.out or f"runs/experiments/{result['name']}"
    con.print(
        f"  wrote {out}/result.json, {out}/README.md" + "".join(f", {out}/{p}" for p in result["plots"]),
        markup=False,
        highlight=False,
    )
    return 0
