"""Stochastic depth: dropping blocks with linearly decaying survival trains faster, and regularises.

Huang, Sun, Liu, Sedra, Weinberger, "Deep Networks with Stochastic Depth", ECCV 2016, Table 1 and
Fig. 3: ResNet-110 on CIFAR-10 with block l of L kept with probability p_l = 1 − (l / L)(1 − p_L),
p_L = 0.5, has an expected depth of about 40 of its 54 blocks, trains about 25% faster, and reaches
a lower test error (5.25% against 6.41%).

Here ``resnet110`` against ``resnet110_sd`` (the zoo's stochastic-depth ResNet-110: batch-mode drop
path, a dropped branch is not computed) at narrow widths, trained by the real trainer; seconds per
epoch are the trainer's training time of each epoch (``epoch_seconds``), and the nets are trained
one after the other for each seed, so a changing machine load falls on both.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from cnnzoo.experiments._trained import cifar_setting, describe, mean_curve, seed_stats, trained
from cnnzoo.experiments.base import Context, Experiment, Outcome, new_figure, save_figure

MODELS = ("resnet110", "resnet110_sd")
#: departures from the shared CIFAR setting: ResNet-110 costs twice ResNet-56 per image
_SMALLER = {"quick": dict(train_samples=128, test_samples=128), "cpu": dict(train_samples=2000, epochs=3),
            "paper": dict(iterations=None, epochs=500, milestones=(250, 375), milestone_unit="epoch")}  # fmt: skip


def setting_for(scale: str) -> dict[str, Any]:
    """The shared CIFAR setting, smaller at quick/cpu; the paper's 500 epochs at paper scale."""
    s = {**cifar_setting(scale), **_SMALLER[scale]}
    if scale == "quick":
        s["widths"] = (2, 4, 8)
    return s


def expected_depth(model) -> float:
    """Σ_l p_l over the residual blocks: the expected number of blocks a mini-batch passes (Eq. 5)."""
    from cnnzoo.models.surgery import blocks

    return sum(1.0 - (b.drop_path.drop_prob if b.drop_path is not None else 0.0) for b in blocks(model))


def _plot(test_curves: dict[str, list[float]], seconds: dict[str, float], path: Path) -> Path:
    fig, axes = new_figure((8.0, 3.0), ncols=2)
    for m, c in test_curves.items():
        axes[0].plot(range(1, len(c) + 1), c, "o-", ms=3, label=m)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("test error (%)")
    axes[0].set_title("test error (Fig. 3)", fontsize=9)
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    axes[1].bar(list(seconds), list(seconds.values()), color=["tab:blue", "tab:green"])
    axes[1].set_ylabel("training seconds per epoch")
    axes[1].set_title("training time (Table 1's 'training time')", fontsize=9)
    return save_figure(fig, path)


def run(ctx: Context) -> Outcome:
    setting = setting_for(ctx.scale)
    curves: dict[str, list[list[float]]] = {m: [] for m in MODELS}
    secs: dict[str, list[float]] = {m: [] for m in MODELS}
    finals: dict[str, list[float]] = {m: [] for m in MODELS}
    depth = blocks_total = 0.0
    for seed in ctx.seed_list():
        for m in MODELS:
            net, history = trained(ctx, m, seed=seed, **setting)
            curves[m].append([100.0 - r["test_top1"] for r in history])
            finals[m].append(curves[m][-1][-1])
            secs[m].append(statistics.fmean(r["epoch_seconds"] for r in history))
            if m == "resnet110_sd":
                depth = expected_depth(net)
            else:
                blocks_total = expected_depth(net)
    err = {m: seed_stats(finals[m]) for m in MODELS}
    sec = {m: seed_stats(secs[m]) for m in MODELS}
    faster = sec["resnet110_sd"]["mean"] < sec["resnet110"]["mean"]
    regularises = err["resnet110_sd"]["mean"] <= err["resnet110"]["mean"]
    metrics = {
        "test_error": {m: err[m]["mean"] for m in MODELS},
        "seconds_per_epoch": {m: sec[m]["mean"] for m in MODELS},
        "expected_depth": depth,
        "blocks": blocks_total,
        "time_ratio": sec["resnet110_sd"]["mean"] / sec["resnet110"]["mean"],
        "expected_time_ratio_of_blocks": depth / blocks_total,
        "test_error_spread": {m: err[m]["spread"] for m in MODELS},
        "seconds_per_epoch_spread": {m: sec[m]["spread"] for m in MODELS},
        "test_error_curve": {m: mean_curve(curves[m]) for m in MODELS},
        "faster": faster,
        "regularises": regularises,
    }
    notes = []
    if not faster:
        notes.append("stochastic depth did not train faster per epoch here")
    if not regularises:
        notes.append(
            "stochastic depth did not reach a lower test error here: a few epochs on a small subset are "
            "too short for its regularisation to show (the paper trains 500 epochs)"
        )
    if ctx.scale == "quick":
        notes.append(
            "quick scale: one epoch on 128 images at widths 2-4-8; the claim is not expected to show"
        )
    return Outcome(
        holds=faster and regularises,
        metrics=metrics,
        criterion=(
            "on the seed means, resnet110_sd trains with fewer seconds per epoch than resnet110 (faster) and "
            "ends with a test error no higher than resnet110's (regularises)"
        ),
        setup=(
            f"resnet110 and resnet110_sd (p_L = 0.5, linear decay, batch-mode: a dropped block's branch is "
            f"not computed) trained on {ctx.data} by cnnzoo's trainer: {describe(setting)}; {ctx.seeds} "
            f"seed(s), trained alternately. The paper: CIFAR-10 with augmentation, widths 16-32-64, 500 "
            f"epochs, lr 0.1 divided by 10 at epochs 250 and 375."
        ),
        plots=[
            _plot(metrics["test_error_curve"], metrics["seconds_per_epoch"], ctx.out / "stochastic_depth.png")
        ],
        notes="; ".join(notes),
    )


EXPERIMENT = Experiment(
    name="stochastic_depth",
    claim="Dropping residual blocks with linearly decaying survival probability trains faster, and "
    "regularises.",
    source="Huang, Sun, Liu, Sedra, Weinberger 2016, Deep Networks with Stochastic Depth, Table 1, Fig. 3",
    costs={"quick": "~10 s", "cpu": "~10 min", "paper": "GPU days"},
    run=run,
    trained=True,
)
