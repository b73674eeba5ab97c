"""Degradation: a deeper plain net trains worse; a deeper residual net trains better.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, Fig. 1 and Fig. 6:
on CIFAR-10 the 56-layer plain net has higher *training* error than the 20-layer one throughout
training (so it is not overfitting), while ResNet-56 ends below ResNet-20.

Here: the CIFAR nets ``plain20``, ``plain56``, ``resnet20`` and ``resnet56`` are trained by the
real trainer, at :func:`cnnzoo.experiments._trained.cifar_setting`'s setting (Fashion-MNIST by
default, narrow widths, a data subset and a few epochs at ``cpu`` scale). The nets go into the
shared cache, where ``lesion``, ``paths`` and ``loss_landscape`` find them.

The training error of an epoch is the running error over its mini-batches in training mode (the
trainer's ``train_top1``), as the thin curves of the paper's figures; the test error is measured at
the end of every epoch on the fixed test subset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnzoo.experiments._trained import cifar_setting, describe, mean_curve, seed_stats, trained
from cnnzoo.experiments.base import Context, Experiment, Outcome, new_figure, save_figure

MODELS = ("plain20", "plain56", "resnet20", "resnet56")
_STYLE = {"plain20": ("tab:orange", "-"), "plain56": ("tab:red", "-"),
          "resnet20": ("tab:cyan", "-"), "resnet56": ("tab:blue", "-")}  # fmt: skip


def _curves(ctx: Context, setting: dict[str, Any]) -> dict[str, dict[str, list[list[float]]]]:
    """model -> {"train": per-seed curves, "test": per-seed curves} of error in %."""
    out: dict[str, dict[str, list[list[float]]]] = {m: {"train": [], "test": []} for m in MODELS}
    for seed in ctx.seed_list():
        for m in MODELS:
            _, history = trained(ctx, m, seed=seed, **setting)
            out[m]["train"].append([100.0 - r["train_top1"] for r in history])
            out[m]["test"].append([100.0 - r["test_top1"] for r in history])
    return out


def _plot(train: dict[str, list[float]], test: dict[str, list[float]], path: Path, title: str) -> Path:
    """Fig. 1 / Fig. 6 layout: training error (left) and test error (right) against epochs."""
    fig, axes = new_figure((8.0, 3.2), ncols=2)
    for ax, curves, what in ((axes[0], train, "training error (%)"), (axes[1], test, "test error (%)")):
        for m, c in curves.items():
            color, ls = _STYLE[m]
            ax.plot(range(1, len(c) + 1), c, ls, color=color, marker="o", ms=3, label=m)
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[0].set_title(title, fontsize=8)
    return save_figure(fig, path)


def run(ctx: Context) -> Outcome:
    setting = cifar_setting(ctx.scale)
    curves = _curves(ctx, setting)
    train = {m: mean_curve(curves[m]["train"]) for m in MODELS}
    test = {m: mean_curve(curves[m]["test"]) for m in MODELS}
    final_train = {m: seed_stats([c[-1] for c in curves[m]["train"]]) for m in MODELS}
    final_test = {m: seed_stats([c[-1] for c in curves[m]["test"]]) for m in MODELS}
    ft = {m: final_train[m]["mean"] for m in MODELS}
    plain_degrades = ft["plain56"] > ft["plain20"]
    residual_improves = ft["resnet56"] < ft["resnet20"]
    holds = plain_degrades and residual_improves
    width = "-".join(map(str, setting["widths"]))
    metrics = {
        "final_train_error": ft,
        "final_test_error": {m: final_test[m]["mean"] for m in MODELS},
        "train_error_curve": train,
        "test_error_curve": test,
        "width": width,
        "final_train_error_spread": {m: final_train[m]["spread"] for m in MODELS},
        "final_test_error_spread": {m: final_test[m]["spread"] for m in MODELS},
        "final_train_error_per_seed": {m: final_train[m]["per_seed"] for m in MODELS},
        "plain_degrades": plain_degrades,
        "residual_improves": residual_improves,
    }
    title = f"{ctx.data}, widths {width}, mean of {ctx.seeds} seed(s)"
    notes = []
    if not plain_degrades:
        notes.append("plain56 did not end with a higher training error than plain20 here")
    if not residual_improves:
        notes.append("resnet56 did not end with a lower training error than resnet20 here")
    if ctx.scale == "quick":
        notes.append("quick scale trains one epoch on 256 images: the claim is not expected to show")
    return Outcome(
        holds=holds,
        metrics=metrics,
        criterion=(
            "on the mean over seeds of the last epoch's training error: plain56 > plain20 (the deeper "
            "plain net trains worse) and resnet56 < resnet20 (the deeper residual net trains better)"
        ),
        setup=(
            f"{', '.join(MODELS)} (He et al. §4.2 CIFAR nets, option-A shortcuts) trained on {ctx.data} "
            f"by cnnzoo's trainer: {describe(setting)}; {ctx.seeds} seed(s). The paper: CIFAR-10, widths "
            f"16-32-64, 64k iterations at lr 0.1 divided by 10 at 32k and 48k, crop+flip augmentation."
        ),
        plots=[_plot(train, test, ctx.out / "degradation.png", title)],
        notes="; ".join(notes),
    )


EXPERIMENT = Experiment(
    name="degradation",
    claim="A deeper plain net has higher training error than a shallower one; residual nets get better "
    "with depth.",
    source="He, Zhang, Ren, Sun 2016, Deep Residual Learning, Fig. 1 and Fig. 6 (CIFAR-10)",
    costs={"quick": "~15 s", "cpu": "~10 min", "paper": "GPU hours"},
    run=run,
    trained=True,
)
