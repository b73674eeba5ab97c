"""A depthwise-separable conv costs about 1/N + 1/D_K² of a full one (Howard et al. 2017, §3.1).

A D_K×D_K conv of M input and N output channels on a D_F×D_F map costs D_K²·M·N·D_F² multiplies;
split into a depthwise D_K×D_K conv (one filter per input channel, D_K²·M·D_F²) and a pointwise
1×1 (M·N·D_F²), it costs 1/N + 1/D_K² of that (Eq. 5). Deck 003's worked example: 5×5×3 kernels,
an 8×8 output and 128 filters, 614,400 multiplies against 4,800 + 24,576. Table 4 of the paper
compares the whole MobileNet with its full-convolution twin ("Conv MobileNet": 29.3 M params,
4866 M MACs against 4.2 M and 569 M); the zoo builds it as ``mobilenet_v1(separable=False)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnzoo.experiments._costs import cost_table, row_sum
from cnnzoo.experiments.base import Context, Experiment, Outcome, new_figure, save_figure

#: Deck 003: D_K = 5, M = 3 input channels, N = 128 filters, D_F = 8 (the output side, no padding).
KERNEL, IN_CHANNELS, FILTERS, OUT_SIZE = 5, 3, 128, 8

#: Howard et al. 2017, Table 4: (params, MACs) of MobileNet and its full-convolution twin.
TABLE4 = {"conv": (29.3e6, 4866e6), "separable": (4.2e6, 569e6)}

#: How far the zoo's networks may sit from Table 4's rounded figures.
TOLERANCE = 0.01


def worked_example() -> dict[str, int]:
    """Multiplies of deck 003's standard, depthwise and pointwise convs (the analyzer's MACs)."""
    from torch import nn

    k, m, n, f = KERNEL, IN_CHANNELS, FILTERS, OUT_SIZE
    side = f + k - 1  # the input that a valid k×k conv maps to an f×f output
    layers = {
        "standard": (nn.Conv2d(m, n, k, bias=False), (m, side, side)),
        "depthwise": (nn.Conv2d(m, m, k, groups=m, bias=False), (m, side, side)),
        "pointwise": (nn.Conv2d(m, n, 1, bias=False), (m, f, f)),
    }
    return {name: row_sum(cost_table(conv, size), "macs") for name, (conv, size) in layers.items()}


def mobilenets() -> dict[str, dict[str, int]]:
    """Params and MACs of ``mobilenet_v1`` and its full-convolution twin at 224×224."""
    import torch

    from cnnzoo.registry import create_model

    out = {}
    for key, separable in (("conv", False), ("separable", True)):
        with torch.device("meta"):
            model = create_model("mobilenet_v1", separable=separable)
        totals = cost_table(model, (3, 224, 224)).totals
        out[key] = {"params": int(totals["params"]), "macs": int(totals["macs"])}
    return out


def _plot(mults: dict, nets: dict, path: Path) -> Path:
    fig, axes = new_figure((8.0, 3.0), ncols=2)
    sep = mults["depthwise"] + mults["pointwise"]
    axes[0].bar([0, 1], [mults["standard"], sep], color=["tab:blue", "tab:orange"])
    axes[0].bar([1], [mults["depthwise"]], color="tab:red", label="depthwise")
    axes[0].set_xticks([0, 1], ["standard 5×5", "depthwise + 1×1"], fontsize=8)
    axes[0].set_ylabel("multiplies")
    axes[0].set_title(f"deck 003: 5×5×3, 8×8 out, 128 filters ({sep / mults['standard']:.1%})", fontsize=9)
    axes[0].legend(fontsize=8)
    for i, key in enumerate(("conv", "separable")):
        axes[1].bar(i, nets[key]["macs"] / 1e6, color=["tab:blue", "tab:orange"][i])
        axes[1].plot(i, TABLE4[key][1] / 1e6, "k_", markersize=30, label="Table 4" if i == 0 else None)
    axes[1].set_xticks([0, 1], ["Conv MobileNet", "MobileNet"], fontsize=8)
    axes[1].set_ylabel("M multiply-adds at 224×224")
    axes[1].set_title("MobileNet v1 (Table 4)", fontsize=9)
    axes[1].legend(fontsize=8)
    return save_figure(fig, path)


def _ratios(mults: dict[str, int], nets: dict[str, dict[str, int]]) -> dict[str, Any]:
    return {
        "worked_example": (mults["depthwise"] + mults["pointwise"]) / mults["standard"],
        "eq5_prediction": 1 / FILTERS + 1 / KERNEL**2,
        "mobilenet_macs": nets["separable"]["macs"] / nets["conv"]["macs"],
        "mobilenet_params": nets["separable"]["params"] / nets["conv"]["params"],
    }


def run(ctx: Context) -> Outcome:
    mults = worked_example()
    nets = mobilenets()
    ratios = _ratios(mults, nets)
    off = {
        f"{key}_{col}": nets[key][col] / TABLE4[key][i] - 1
        for key in TABLE4
        for i, col in enumerate(("params", "macs"))
    }
    holds = (
        abs(ratios["worked_example"] - ratios["eq5_prediction"]) < 1e-12
        and ratios["mobilenet_macs"] < 0.2
        and all(abs(v) <= TOLERANCE for v in off.values())
    )
    return Outcome(
        holds=holds,
        metrics={"mults": mults, "mobilenet_v1": nets, "ratio": ratios, "table4_relative_error": off},
        criterion=(
            "the worked example's separable/standard ratio equals Eq. 5's 1/N + 1/D_K², the separable "
            f"MobileNet costs under a fifth of its full-conv twin, and both are within {TOLERANCE:.0%} of "
            "Table 4's params and MACs"
        ),
        setup=(
            "bias-free convs of deck 003's sizes (a 12×12×3 input gives the 8×8 output of a valid 5×5 conv) "
            "and the zoo's mobilenet_v1 with separable=True/False at 224×224, width 1.0, measured by the "
            "meta-device analyzer (MACs of convs and the classifier, params with BN). Nothing is trained."
        ),
        plots=[_plot(mults, nets, ctx.out / "separable.png")],
        notes=(
            f"Conv MobileNet counts {nets['conv']['macs'] / 1e6:.1f} M MACs where Table 4 prints 4866 M "
            "(the paper does not say how it rounds)."
        ),
    )


EXPERIMENT = Experiment(
    name="separable",
    claim="a depthwise-separable conv costs about 1/N + 1/D_K² of a full one",
    source="lecture worked example (deck 003): 5×5×3 kernels, 8×8 output, 128 filters; Howard et al. 2017, "
    "Eq. 5 and Table 4",
    costs={"quick": "~5 s", "cpu": "~5 s", "paper": "~5 s"},
    run=run,
)
