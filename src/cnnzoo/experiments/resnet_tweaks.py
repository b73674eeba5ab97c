"""A 1×1 stride-2 conv ignores ¾ of its input; ResNet-B and ResNet-D fix it (He et al. 2019, §4.1-4.2).

In the original ResNet-50 (``resnet50_v1``: the stride in the first 1×1 of each downsampling
bottleneck, and a 1×1/2 projection shortcut) both paths of a downsampling block read only the
even rows and columns of the block's input. ResNet-B (``resnet50``, torchvision's "v1.5") moves the
stride to the 3×3 conv, so the main path reads everything while the shortcut still skips ¾;
ResNet-D (``resnet50d``) puts a 2×2 average pool before a stride-1 projection, so both do.
Coverage is measured exactly by :func:`cnnzoo.analysis.coverage.input_coverage`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnzoo.experiments.base import Context, Experiment, Outcome, new_figure, save_figure

MODELS = {"resnet50_v1": "ResNet (v1)", "resnet50": "ResNet-B", "resnet50d": "ResNet-D"}
EXPECTED = {"resnet50_v1": (0.25, 0.25), "resnet50": (1.0, 0.25), "resnet50d": (1.0, 1.0)}
#: The block of the headline numbers (the first downsampling block), and every downsampling block.
BLOCK = "layer2.0"
DOWNSAMPLING = ("layer2.0", "layer3.0", "layer4.0")
#: The side of the small input on which every downsampling block is also checked.
SMALL_SIDE = 8


def _block_inputs(name: str, blocks: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
    """The (C, H, W) each named top-level block receives at the model's input size: the output of
    the row before it in the analyzer's table folded at depth 2 (``layer2.0`` is one row)."""
    from cnnzoo.experiments._costs import cost_table

    rows = cost_table(name, depth=2).layers
    index = {r.name: i for i, r in enumerate(rows)}
    return {b: tuple(rows[index[b] - 1].output_shape) for b in blocks}


def measure(name: str) -> dict[str, Any]:
    """Coverage of the block and its shortcut alone: at the model's own sizes for :data:`BLOCK`,
    on a :data:`SMALL_SIDE`² input for every downsampling block; and the masks' top-left corner."""
    import torch

    from cnnzoo.analysis.coverage import input_coverage
    from cnnzoo.registry import create_model

    with torch.device("meta"):
        model = create_model(name)
    sizes = _block_inputs(name, DOWNSAMPLING)
    out: dict[str, Any] = {"block_input": list(sizes[BLOCK]), "by_block": {}, "masks": {}}
    for layer in DOWNSAMPLING:
        block = model.get_submodule(layer)
        parts = {"block": block, "shortcut": block.downsample}
        c = sizes[layer][0]
        small = {k: input_coverage(m, (c, SMALL_SIDE, SMALL_SIDE)) for k, m in parts.items()}
        out["by_block"][layer] = {k: v.fraction for k, v in small.items()}
        if layer == BLOCK:
            full = {k: input_coverage(m, sizes[layer]) for k, m in parts.items()}
            out["coverage"] = {k: v.fraction for k, v in full.items()}
            out["positions"] = {k: v.positions for k, v in full.items()}
            out["masks"] = {k: v.mask[:6, :6].int().tolist() for k, v in full.items()}
    return out


def _plot(results: dict[str, dict], path: Path) -> Path:
    fig, axes = new_figure((6.0, 4.2), nrows=2, ncols=3)
    for j, (name, label) in enumerate(MODELS.items()):
        for i, part in enumerate(("block", "shortcut")):
            ax = axes[i][j]
            ax.imshow(results[name]["masks"][part], cmap="Greens", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{label} {part}: {results[name]['coverage'][part]:.0%}", fontsize=8)
    fig.suptitle(f"input positions of {BLOCK} that reach its output (6×6 corner; green = read)", fontsize=9)
    return save_figure(fig, path)


def run(ctx: Context) -> Outcome:
    results = {name: measure(name) for name in MODELS}
    coverage = {n: r["coverage"] for n, r in results.items()}
    holds = all(
        (coverage[n]["block"], coverage[n]["shortcut"]) == EXPECTED[n]
        and all((b["block"], b["shortcut"]) == EXPECTED[n] for b in results[n]["by_block"].values())
        for n in MODELS
    )
    metrics = {
        "input_coverage": coverage,
        "input_positions": {n: r["positions"] for n, r in results.items()},
        "block": BLOCK,
        "block_input": results["resnet50"]["block_input"],
        f"input_coverage_by_block_{SMALL_SIDE}x{SMALL_SIDE}": {n: r["by_block"] for n, r in results.items()},
    }
    return Outcome(
        holds=holds,
        metrics=metrics,
        criterion=(
            "in every downsampling block, ResNet's block and shortcut read ¼ of the input, ResNet-B's block "
            "reads all of it and its shortcut ¼, and ResNet-D's both read all of it"
        ),
        setup=(
            f"the zoo's resnet50_v1, resnet50 (ResNet-B) and resnet50d at 224×224; {BLOCK} at its own "
            f"{'×'.join(map(str, results['resnet50']['block_input']))} input, and {', '.join(DOWNSAMPLING)} on a "
            f"{SMALL_SIDE}×{SMALL_SIDE} input of their width. Coverage is structural (positive weights, "
            "gradient of the output w.r.t. the input), so it does not depend on training."
        ),
        plots=[_plot(results, ctx.out / "resnet_tweaks.png")],
    )


EXPERIMENT = Experiment(
    name="resnet_tweaks",
    claim="a 1×1 stride-2 conv ignores ¾ of its input; ResNet-B and ResNet-D fix it",
    source="lecture (deck 001); He et al. 2019 (Bag of Tricks), §4.1-4.2 and Fig. 2",
    costs={"quick": "~8 s", "cpu": "~8 s", "paper": "~8 s"},
    run=run,
)
