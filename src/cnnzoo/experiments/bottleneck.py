"""1×1 reductions cut an Inception module's cost (Szegedy et al. 2015, §4; He et al. 2016, Fig. 5).

Deck 001's worked example is GoogLeNet's module 3a on its 28×28×192 input: the 5×5 branch (32
filters) costs 240.8 M FLOPs on the full input and 24.9 M after a 1×1 reduction to 16 channels; the
3×3 branch (128 filters) 346.8 M, and 202.3 M after reducing to 96. The numbers here are the rows of
the zoo's ``googlenet`` and ``googlenet_naive`` cost tables (Table 1's widths, the naive module of
Fig. 2a), not formulas.

Deck 000 makes the same point on a 28×28×256 input with a 1×1 of 128, a 3×3 of 192, a 5×5 of 96
and a pool branch: 854 M multiply-adds naive. Its list of reduced convs (64-wide 1×1 reductions
before the 3×3 and the 5×5 and a 64-wide pool projection, as on the slide) is built the same way
and measured; the slide's total of 353 M is not what the list adds up to (see :data:`DECK000`).

The ResNet bottleneck (Fig. 5) is the same idea inside a residual block: at 256 channels on 56×56,
1×1 to 64 → 3×3 → 1×1 to 256 against two 3×3 convs of 256.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnzoo.experiments._costs import cost_table, row_sum
from cnnzoo.experiments.base import Context, Experiment, Outcome, new_figure, save_figure

#: Deck 000's module: input 28×28×256; #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj.
#: The slide sums its list of reduced convs to 353 M multiply-adds.
DECK000 = {"input": (256, 28, 28), "widths": (128, 64, 192, 64, 96, 64), "slide_total_macs": 353_000_000}

#: The reduced module's conv rows, named as the slide lists them.
_DECK000_ROWS = {"branch1": "1x1", "branch2.0": "3x3_reduce", "branch2.1": "3x3", "branch3.0": "5x5_reduce",
                 "branch3.1": "5x5", "branch4.1": "pool_proj"}  # fmt: skip

#: ResNet blocks at 256 channels on a 56×56 map (He et al. 2016, Fig. 5: the bottleneck of a
#: 256-d stage reduces to 64).
BLOCK_CHANNELS, BLOCK_SIZE, BOTTLENECK_WIDTH = 256, 56, 64


def _branch_flops(report, prefix: str) -> int:
    """FLOPs of the conv rows under one module (``inception3a.branch3``)."""
    return sum(r.flops for r in report.layers if r.type == "conv" and r.name.startswith(prefix + "."))


def googlenet_3a() -> dict[str, Any]:
    """Module 3a's branches and whole, with and without the 1×1 reductions, from the zoo's nets."""
    naive, reduced = cost_table("googlenet_naive"), cost_table("googlenet")
    flops = {
        "naive_5x5": _branch_flops(naive, "inception3a.branch3"),
        "reduced_5x5": _branch_flops(reduced, "inception3a.branch3"),
        "naive_3x3": _branch_flops(naive, "inception3a.branch2"),
        "reduced_3x3": _branch_flops(reduced, "inception3a.branch2"),
    }
    module = {k: _branch_flops(r, "inception3a") for k, r in (("naive", naive), ("reduced", reduced))}
    params = {
        k: sum(r.params for r in rep.layers if r.name.startswith("inception3a."))
        for k, rep in (("naive", naive), ("reduced", reduced))
    }
    return {"flops": flops, "module_flops": module, "module_params": params}


def deck000() -> dict[str, Any]:
    """Deck 000's module, naive and reduced: MACs of its convs, and what the reduced list adds up to."""
    from cnnzoo.layers.inception import Inception, NaiveInception

    c = DECK000["input"][0]
    n1, r3, n3, r5, n5, pp = DECK000["widths"]
    naive = cost_table(NaiveInception(c, n1, n3, n5), DECK000["input"])
    reduced = cost_table(Inception(c, n1, r3, n3, r5, n5, pp), DECK000["input"])
    by_row = {r.name.removesuffix(".conv"): r.macs for r in reduced.layers if r.type == "conv"}
    terms = {paper: by_row[row] for row, paper in _DECK000_ROWS.items()}
    macs = {"naive": row_sum(naive, "macs"), "reduced": row_sum(reduced, "macs")}
    return {"macs": macs, "reduced_terms": terms, "slide_total": DECK000["slide_total_macs"]}


def resnet_blocks() -> dict[str, dict[str, int]]:
    """Params (BN included) and conv FLOPs of a basic and a bottleneck block at 256 channels."""
    from cnnzoo.layers.residual import BasicBlock, Bottleneck

    c, hw = BLOCK_CHANNELS, BLOCK_SIZE
    blocks = {"basic": BasicBlock(c, c), "bottleneck": Bottleneck(c, BOTTLENECK_WIDTH)}
    out = {}
    for name, block in blocks.items():
        r = cost_table(block, (c, hw, hw))
        out[name] = {"params": row_sum(r, "params", ("conv", "norm")), "flops": row_sum(r, "flops")}
        out[name]["conv_params"] = row_sum(r, "params")
    return out


def _plot(m: dict, path: Path) -> Path:
    fig, axes = new_figure((8.0, 3.0), ncols=2)
    f = m["flops"]
    groups = [("5×5 branch", f["naive_5x5"], f["reduced_5x5"]), ("3×3 branch", f["naive_3x3"], f["reduced_3x3"]),
              ("module 3a", m["module_flops"]["naive"], m["module_flops"]["reduced"])]  # fmt: skip
    xs = range(len(groups))
    axes[0].bar([x - 0.2 for x in xs], [g[1] / 1e6 for g in groups], 0.4, label="naive")
    axes[0].bar([x + 0.2 for x in xs], [g[2] / 1e6 for g in groups], 0.4, label="1×1 reduced")
    axes[0].set_xticks(list(xs), [g[0] for g in groups], fontsize=8)
    axes[0].set_ylabel("MFLOPs (2 per multiply-add)")
    axes[0].set_title("GoogLeNet 3a, 28×28×192 input", fontsize=9)
    axes[0].legend(fontsize=8)
    d = m["deck000_macs"]
    axes[1].bar([0, 1, 2], [d["naive"] / 1e6, d["reduced"] / 1e6, DECK000["slide_total_macs"] / 1e6],
                color=["tab:blue", "tab:orange", "tab:gray"])  # fmt: skip
    axes[1].set_xticks([0, 1, 2], ["naive", "reduced\n(measured)", "reduced\n(slide)"], fontsize=8)
    axes[1].set_ylabel("M multiply-adds")
    axes[1].set_title("deck 000, 28×28×256 input", fontsize=9)
    return save_figure(fig, path)


def run(ctx: Context) -> Outcome:
    g = googlenet_3a()
    d = deck000()
    blocks = resnet_blocks()
    metrics = {
        "flops": g["flops"],
        "module_flops": g["module_flops"],
        "module_params": g["module_params"],
        "deck000_macs": d["macs"],
        "deck000_reduced_terms": d["reduced_terms"],
        "deck000_slide_reduced_macs": d["slide_total"],
        "resnet_blocks": blocks,
    }
    f = g["flops"]
    holds = (
        f["reduced_5x5"] < f["naive_5x5"]
        and f["reduced_3x3"] < f["naive_3x3"]
        and g["module_flops"]["reduced"] < g["module_flops"]["naive"]
        and d["macs"]["reduced"] < d["macs"]["naive"]
        and blocks["bottleneck"]["flops"] < blocks["basic"]["flops"]
    )
    red = d["macs"]["reduced"]
    notes = (
        f"deck 000's list of reduced convs adds up to {red:,} multiply-adds ({red / 1e6:.1f} M), not the "
        f"slide's {d['slide_total'] / 1e6:.0f} M ({red / d['slide_total']:.0%} of it); the naive module's "
        f"{d['macs']['naive']:,} matches the slide. Counting FLOPs instead (2 per multiply-add) gives "
        f"{2 * red / 1e6:.1f} M, so no choice between the two conventions explains the slide's total."
    )
    return Outcome(
        holds=holds,
        metrics=metrics,
        criterion=(
            "with the 1×1 reductions, each branch, GoogLeNet's module 3a, deck 000's module and the "
            "ResNet bottleneck block cost fewer FLOPs than without them"
        ),
        setup=(
            "cost tables of the zoo's googlenet (Table 1's widths) and googlenet_naive (Fig. 2a: no "
            "reductions, the pool branch passes through) at 224×224, deck 000's module built from "
            "cnnzoo.layers.inception on 28×28×256, and cnnzoo.layers.residual blocks at 256 channels on "
            "56×56; FLOPs are 2 per multiply-add of the conv rows (biases, ReLUs and pooling not "
            "counted), block params include BN. Nothing is trained."
        ),
        plots=[_plot(metrics, ctx.out / "bottleneck.png")],
        notes=notes,
    )


EXPERIMENT = Experiment(
    name="bottleneck",
    claim="1×1 reductions cut an Inception module's cost",
    source="lecture worked example (deck 001): 28×28×192 input, module 3a; deck 000; He et al. 2016, Fig. 5",
    costs={"quick": "~5 s", "cpu": "~5 s", "paper": "~5 s"},
    run=run,
)
