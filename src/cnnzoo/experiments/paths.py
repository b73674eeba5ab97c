"""Paths: a ResNet is an ensemble of 2^n paths of Binomial(n, ½) lengths, trained mostly by the short ones.

Veit, Wilber, Belongie, "Residual Networks Behave Like Ensembles of Relatively Shallow Networks",
NeurIPS 2016, §5 and Fig. 6: unrolled, n residual blocks give 2^n paths, and the number of paths
through k residual branches is C(n, k) (Fig. 6a). The gradient a single path carries shrinks fast
with its length (Fig. 6b), so that, weighted by how many paths have each length, the gradient
comes from paths much shorter than the typical n/2 (Fig. 6c: 5-17 of ResNet-110's 54 blocks).

Here on the shared, trained ``resnet56`` of ``degradation`` (n = 27), with
:mod:`cnnzoo.analysis.paths`: the path counts are exact; the gradient per path length is sampled
as §5 samples it (k random blocks pass the gradient through their branch only, the others through
their skip only; the norm at the first block's input).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from cnnzoo.experiments._trained import cifar_setting, describe, feeds, seed_stats, trained
from cnnzoo.experiments.base import Context, Experiment, Outcome, new_figure, save_figure

#: per scale: images in the batch, draws per path length
_PLAN = {
    "quick": dict(batch=8, samples=1),
    "cpu": dict(batch=64, samples=4),
    "paper": dict(batch=128, samples=20),
}


def _central(weights: list[float], mass: float = 0.9) -> list[int]:
    """The path lengths [lo, hi] between the (1 − mass)/2 and (1 + mass)/2 quantiles of ``weights``."""
    lo_q, hi_q, acc, lo, hi = (1 - mass) / 2, (1 + mass) / 2, 0.0, None, len(weights) - 1
    for k, w in enumerate(weights):
        acc += w
        if lo is None and acc >= lo_q:
            lo = k
        if acc >= hi_q:
            hi = k
            break
    return [lo or 0, hi]


def _plot(dist: list[float], grad: list[float], total: list[float], n: int, path: Path) -> Path:
    """Fig. 6: (a) paths by length, (b) gradient per path by length, (c) total gradient by length."""
    fig, axes = new_figure((10.0, 3.0), ncols=3)
    ks = list(range(n + 1))
    axes[0].bar(ks, dist, color="tab:gray")
    axes[0].set_title(f"(a) path lengths: Binomial({n}, 1/2)", fontsize=9)
    axes[0].set_ylabel("fraction of the 2^n paths")
    axes[1].semilogy(ks, grad, "o-", ms=3, color="tab:blue")
    axes[1].set_title("(b) gradient norm per path", fontsize=9)
    axes[2].bar(ks, total, color="tab:blue", alpha=0.8)
    axes[2].plot(ks, dist, "--", color="tab:gray", label="path count (a)")
    axes[2].set_title("(c) total gradient by path length", fontsize=9)
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("path length k (residual branches taken)")
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def run(ctx: Context) -> Outcome:
    import torch

    from cnnzoo.analysis.paths import (
        count_paths,
        gradient_by_path_length,
        mean_length,
        path_length_distribution,
        total_gradient_by_length,
    )

    setting, plan = cifar_setting(ctx.scale), _PLAN[ctx.scale]
    grads, totals, means = [], [], []
    for seed in ctx.seed_list():
        net, _ = trained(ctx, "resnet56", seed=seed, **setting)
        x, y = next(iter(feeds(ctx, "resnet56", seed=seed, **setting).train.batches(plan["batch"])))
        torch.manual_seed(seed)
        g = gradient_by_path_length(net, x, y, samples=plan["samples"], seed=seed)
        total = total_gradient_by_length(g)
        grads.append(g.mean)
        totals.append(total)
        means.append(mean_length(total))
    n = len(grads[0]) - 1
    grad = [statistics.fmean(c) for c in zip(*grads, strict=True)]
    total = [statistics.fmean(c) for c in zip(*totals, strict=True)]
    dist = path_length_distribution(n)
    sigma = n**0.5 / 2
    weighted = seed_stats(means)
    short = [grad[k] for k in range(n + 1) if k < n / 2]
    long = [grad[k] for k in range(n + 1) if k >= n / 2]
    shrinks = statistics.fmean(long) < statistics.fmean(short)
    shifted = weighted["mean"] < n / 2 - sigma
    metrics: dict[str, Any] = {
        "n": n,
        "num_paths": count_paths(n),
        "path_length_distribution": dist,
        "gradient_by_path_length": grad,
        "total_gradient_by_path_length": total,
        "mean_path_length": n / 2,
        "gradient_weighted_mean_length": weighted,
        "central_90_percent_of_gradient": _central(total),
        "gradient_shrinks_with_length": shrinks,
    }
    notes = ""
    if not (shifted and shrinks):
        notes = "the gradient does not come mostly from the short paths at this scale"
    if ctx.scale == "quick":
        notes = "; ".join(filter(None, [notes, "quick scale: a net trained for one epoch on 256 images and one "
                                        "draw per length; the claim is not expected to show"]))  # fmt: skip
    return Outcome(
        holds=shifted and shrinks,
        metrics=metrics,
        criterion=(
            f"the path counts are C(n, k) (exact); and, on the seed mean, the gradient-weighted mean path "
            f"length (Fig. 6c) is more than one binomial standard deviation (sqrt(n)/2 = {sigma:.2f}) below "
            f"the mean path length n/2 = {n / 2:g}, and paths of length >= n/2 carry less gradient each "
            f"than the shorter ones"
        ),
        setup=(
            f"the shared resnet56 of `degradation` (n = {n} blocks; {describe(setting)}; {ctx.data}; "
            f"{ctx.seeds} seed(s)); one training batch of {plan['batch']} images, {plan['samples']} random "
            f"block draw(s) per path length, gradient norm at the first block's input, eval-mode BN. The "
            f"paper: ResNet-110 (n = 54) on CIFAR-10."
        ),
        plots=[_plot(dist, grad, total, n, ctx.out / "paths.png")],
        notes=notes,
    )


EXPERIMENT = Experiment(
    name="paths",
    claim="A ResNet is an ensemble of 2^n paths whose lengths are Binomial(n, 1/2), and the gradient "
    "comes mostly from the short ones.",
    source="Veit, Wilber, Belongie 2016, Residual Networks Behave Like Ensembles, Fig. 6",
    costs={"quick": "~10 s", "cpu": "~4 min", "paper": "GPU hours"},
    run=run,
    trained=True,
)
