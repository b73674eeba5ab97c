"""``cnnzoo list`` and ``cnnzoo info``: what is in the zoo."""

from __future__ import annotations

import argparse
import fnmatch


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the registered models (wildcards allowed)")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*' or 'vgg1?_bn'")
    p.add_argument("--live", action="store_true", help="build the models instead of reading the index")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="a model's default config and module tree")
    p.add_argument("model")
    p.add_argument("--json", action="store_true", help="print the config as JSON only")
    p.set_defaults(func=cmd_info)


def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} K"


def cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from cnnzoo.model_index import build_index, load_index

    index = None if args.live else load_index()
    if index is None:
        index = build_index()
    names = [n for n in index if fnmatch.fnmatchcase(n, args.pattern.lower())]
    if not names:
        from cnnzoo.registry import _unknown, list_models

        if not list_models(args.pattern):
            raise _unknown(args.pattern)
        index = build_index(list_models(args.pattern))  # registered after the index was written
        names = list(index)
    from cnnzoo.registry import _natural_key

    table = Table(title=f"cnnzoo models ({len(names)})", header_style="bold")
    for col, just in (("name", "left"), ("family", "left"), ("params", "right"), ("input", "right"),
                      ("min", "right"), ("year", "right"), ("notes", "left")):
        table.add_column(col, justify=just)
    for n in sorted(names, key=_natural_key):
        e = index[n]
        c, h, w = e["input_size"]
        table.add_row(n, e["family"], f"{e['params']:,}", f"{c}x{h}x{w}", str(e["min_input_size"]),
                      str(e["year"]), e.get("notes", ""))
    Console().print(table)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.panel import Panel

    from cnnzoo.registry import create_model, get_model_config

    cfg = get_model_config(args.model)
    if args.json:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    import torch

    with torch.device("meta"):
        model = create_model(args.model)
    n = sum(p.numel() for p in model.parameters())
    con = Console()
    d = cfg.to_dict()
    lines = [f"[bold]{k}[/]: {v}" for k, v in d.items() if v not in ("", None)]
    lines.append(f"[bold]params[/]: {n:,} ({_fmt_params(n)})")
    con.print(Panel("\n".join(lines), title=args.model))
    con.print(str(model), markup=False, highlight=False)
    return 0
