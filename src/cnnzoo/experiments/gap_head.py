"""Global average pooling removes the fc layers' parameters (Lin et al. 2014; Szegedy et al. 2015, §5).

AlexNet and VGG flatten their last feature map into three fully connected layers; GoogLeNet and
ResNet average each channel over the map and keep one linear classifier. Deck 001 puts it as
"GoogLeNet 1 M against VGG 124 M in the head". The head here is every parameterised row of the
cost table after the last convolution that is not a norm layer of the last stage (ResNet's final
BN belongs to its block) and not an unused branch (GoogLeNet's auxiliary classifiers, which only
train). As a counterfactual, GoogLeNet's 7×7×1024 map under a VGG-style head is measured too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnzoo.experiments._costs import cost_table
from cnnzoo.experiments.base import Context, Experiment, Outcome, new_figure, save_figure

MODELS = ("alexnet", "vgg16", "googlenet", "resnet50")
#: The nets whose head starts with global average pooling.
GAP_MODELS = ("googlenet", "resnet50")


def head(report) -> dict[str, Any]:
    """The head's parameterised rows (after the last conv; no norm, no unused branch) and totals."""
    last_conv = max(i for i, r in enumerate(report.layers) if r.type == "conv")
    rows = [r for r in report.layers[last_conv + 1 :] if r.params and r.type not in ("norm", "unused")]
    unused = sum(r.params for r in report.layers if r.type == "unused")
    return {
        "params": sum(r.params for r in rows),
        "layers": [r.name for r in rows],
        "total_params": int(report.totals["params"]) - unused,
        "unused_params": unused,
    }


def vgg_head_on(channels: int, size: int, classes: int = 1000) -> int:
    """Params of VGG's fc head (4096, 4096, classes) on a flattened ``channels``×``size``² map."""
    import torch
    from torch import nn

    with torch.device("meta"):  # 226 M weights: never allocate them
        fc = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, 4096), nn.ReLU(),
                           nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, classes))  # fmt: skip
    return int(cost_table(fc, (channels, size, size)).totals["params"])


def _plot(heads: dict, path: Path) -> Path:
    fig, ax = new_figure((5.0, 3.0))
    names = list(heads)
    body = [(heads[n]["total_params"] - heads[n]["params"]) / 1e6 for n in names]
    top = [heads[n]["params"] / 1e6 for n in names]
    ax.bar(names, body, color="tab:gray", label="conv stages")
    ax.bar(names, top, bottom=body, color="tab:red", label="head (after the last conv)")
    for i, t in enumerate(top):
        ax.text(i, body[i] + t, f"{t:.1f} M", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("parameters (millions)")
    ax.set_title("where the parameters are", fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def run(ctx: Context) -> Outcome:
    heads = {m: head(cost_table(m)) for m in MODELS}
    counterfactual = vgg_head_on(1024, 7)
    fc_min = min(heads[m]["params"] for m in MODELS if m not in GAP_MODELS)
    gap_max = max(heads[m]["params"] for m in GAP_MODELS)
    holds = all(len(heads[m]["layers"]) == 1 for m in GAP_MODELS) and gap_max * 20 < fc_min
    metrics = {
        "head_params": {m: h["params"] for m, h in heads.items()},
        "head_layers": {m: h["layers"] for m, h in heads.items()},
        "total_params": {m: h["total_params"] for m, h in heads.items()},
        "head_fraction": {m: h["params"] / h["total_params"] for m, h in heads.items()},
        "googlenet_aux_params": heads["googlenet"]["unused_params"],
        "googlenet_with_vgg_head": counterfactual,
    }
    return Outcome(
        holds=holds,
        metrics=metrics,
        criterion=(
            "the global-average-pooling nets' heads are one linear classifier each, with under a twentieth "
            "of the parameters of the smallest fully connected head"
        ),
        setup=(
            "cost tables of the zoo's alexnet, vgg16, googlenet and resnet50 at 224×224 (ImageNet's 1000 "
            "classes); GoogLeNet's auxiliary classifiers (training only) are left out of its totals and "
            "reported apart. Nothing is trained."
        ),
        plots=[_plot(heads, ctx.out / "gap_head.png")],
    )


EXPERIMENT = Experiment(
    name="gap_head",
    claim="global average pooling removes the fc layers' parameters",
    source="lecture (deck 001): GoogLeNet 1 M vs VGG 124 M in the head; Lin et al. 2014 (NiN)",
    costs={"quick": "~3 s", "cpu": "~3 s", "paper": "~3 s"},
    run=run,
)
