"""Three stacked 3×3 convolutions against one 7×7 (Simonyan & Zisserman 2015, §2.3).

VGG's argument: a stack of three 3×3 convs (stride 1) has the receptive field of one 7×7, with
3·(3²C²) = 27C² weights instead of 49C², and three non-linearities instead of one. Deck 001 makes the
same argument for one 5×5 against two 3×3: 25C²+C against 18C²+2C parameters, 50C²HW against
36C²HW FLOPs, one ReLU against two, and CHW against 2CHW activations ("memory for activations
doubles"). Both pairs are built as plain ``nn.Sequential`` stacks and measured by the analyzer.
"""

from __future__ import annotations

from pathlib import Path

from cnnzoo.experiments._costs import conv_costs
from cnnzoo.experiments.base import Context, Experiment, Outcome, new_figure, save_figure

#: The paper's comparison: C = 64 channels (VGG's first stage) on a 56×56 map, biases included.
CHANNELS = 64
SIZE = 56


def conv_stack(channels: int, kernel: int, depth: int):
    """``depth`` same-padded ``kernel``×``kernel`` convs (with biases), each followed by a ReLU."""
    from torch import nn

    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Conv2d(channels, channels, kernel, padding=kernel // 2), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def _compare(pairs: dict[str, tuple[int, int]], c: int, hw: int) -> dict[str, dict[str, int]]:
    """Metric → {stack name: value} for each (kernel, depth) stack in ``pairs``."""
    costs = {name: conv_costs(conv_stack(c, k, d), (c, hw, hw)) for name, (k, d) in pairs.items()}
    keys = ("params", "flops", "activations", "relus", "receptive_field")
    return {key: {name: costs[name][key] for name in pairs} for key in keys}


def _plot(vgg: dict, deck: dict, path: Path) -> Path:
    fig, axes = new_figure((7.5, 3.0), ncols=2)
    for ax, (title, m) in zip(axes, (("params", "params"), ("FLOPs", "flops")), strict=True):
        names = [*vgg[m], *deck[m]]
        values = [*vgg[m].values(), *deck[m].values()]
        colors = ["tab:blue", "tab:orange", "tab:blue", "tab:orange"]
        ax.bar(range(4), [v / 1e6 for v in values], color=colors)
        ax.set_xticks(range(4), [n.replace("_", "\n") for n in names], fontsize=7)
        ax.set_title(f"{title} (millions), C={CHANNELS}, {SIZE}×{SIZE}", fontsize=9)
    return save_figure(fig, path)


def run(ctx: Context) -> Outcome:
    c, hw = CHANNELS, SIZE
    vgg = _compare({"stack3x3": (3, 3), "conv7x7": (7, 1)}, c, hw)
    deck = _compare({"conv5x5": (5, 1), "two_3x3": (3, 2)}, c, hw)
    metrics = {**vgg, "channels": c, "map_size": hw, "five_vs_two_threes": deck}
    p, rf, relus = vgg["params"], vgg["receptive_field"], vgg["relus"]
    dp, drf = deck["params"], deck["receptive_field"]
    holds = (
        rf["stack3x3"] == rf["conv7x7"] == 7
        and p["stack3x3"] < p["conv7x7"]
        and relus["stack3x3"] == 3 * relus["conv7x7"]
        and drf["conv5x5"] == drf["two_3x3"] == 5
        and dp["two_3x3"] < dp["conv5x5"]
        and deck["activations"]["two_3x3"] == 2 * deck["activations"]["conv5x5"]
    )
    return Outcome(
        holds=holds,
        metrics=metrics,
        criterion=(
            "the stacks see the same receptive field as the single large conv (7 and 5) with fewer "
            "parameters and more ReLUs, and two 3×3 convs keep twice the activations of one 5×5"
        ),
        setup=(
            f"single conv stacks of C={c} channels (biases included) on a {hw}×{hw} map, measured by the "
            "meta-device analyzer; FLOPs are 2 per multiply-add of the conv rows, activations are the conv "
            "outputs. The paper's argument is the same count; nothing is trained."
        ),
        plots=[_plot(vgg, deck, ctx.out / "small_filters.png")],
    )


EXPERIMENT = Experiment(
    name="small_filters",
    claim="three stacked 3×3 convs see what one 7×7 sees, with 27C² instead of 49C² weights and three "
    "non-linearities",
    source="Simonyan & Zisserman 2015, §2.3; lecture tables (deck 001)",
    costs={"quick": "~3 s", "cpu": "~3 s", "paper": "~3 s"},
    run=run,
)
