"""Lesion study: a trained ResNet survives losing a block; a plain net does not.

Veit, Wilber, Belongie, "Residual Networks Behave Like Ensembles of Relatively Shallow Networks",
NeurIPS 2016, Figs. 3-5: deleting one residual block of a trained ResNet at test time barely changes
its error, except for the downsampling blocks (Fig. 3a); deleting one layer of a plain net (VGG)
sends it to chance (Fig. 3b); deleting k blocks at random raises the error smoothly with k (Fig. 5a);
swapping k random pairs of blocks hurts gracefully too (Fig. 5b).

Here on the shared ``resnet56`` and ``plain56`` of ``degradation`` (the same cached nets), with the
library's surgery (:mod:`cnnzoo.models.surgery`): a deleted residual block keeps its shortcut, a
deleted plain block becomes the identity (the two plain blocks that change the shape cannot be
deleted, and are recorded as ``null``). The random deletions draw from the blocks that keep the
shape (the downsampling ones are measured alone in Fig. 3's sweep); the swaps from the pairs of
blocks with the same shape.
"""

from __future__ import annotations

import itertools
import random
import statistics
from pathlib import Path
from typing import Any

from cnnzoo.experiments._trained import cifar_setting, describe, error_of, feeds, seed_stats, trained
from cnnzoo.experiments.base import Context, Experiment, Outcome, new_figure, save_figure

#: per scale: test images scored, numbers of blocks deleted at random, numbers of swaps, draws each
_PLAN: dict[str, dict[str, Any]] = {
    "quick": dict(images=64, num_deleted=(0, 1, 4), swaps=(0, 1, 4), draws=1),
    "cpu": dict(images=500, num_deleted=(0, 1, 2, 4, 6, 8, 10, 15, 20), swaps=(0, 1, 2, 4, 8, 12), draws=2),
    "paper": dict(images=None, num_deleted=(0, 1, 2, 4, 6, 8, 10, 15, 20), swaps=(0, 1, 2, 4, 8, 12, 16, 20),
                  draws=10),
}  # fmt: skip


def _resnet_lesions(net, feed, plan: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    from cnnzoo.models.surgery import blocks, delete_blocks, downsampling_blocks, random_swaps, reorder_blocks

    def err(m) -> float:
        return error_of(m, feed, limit=plan["images"])

    down = downsampling_blocks(net)
    keep_shape = [i for i in range(len(blocks(net))) if i not in down]
    by_block = [err(delete_blocks(net, [i])) for i in range(len(blocks(net)))]
    by_num = []
    for k in plan["num_deleted"]:
        draws = [err(delete_blocks(net, rng.sample(keep_shape, k))) for _ in range(plan["draws"] if k else 1)]
        by_num.append(statistics.fmean(draws))
    by_swaps = []
    for k in plan["swaps"]:
        draws = [
            err(reorder_blocks(net, random_swaps(net, k, rng))) for _ in range(plan["draws"] if k else 1)
        ]
        by_swaps.append(statistics.fmean(draws))
    return {"baseline_error": err(net), "error_by_deleted_block": by_block, "downsampling_blocks": down,
            "error_by_num_deleted": by_num, "error_by_swaps": by_swaps}  # fmt: skip


def _plain_lesions(net, feed, plan: dict[str, Any]) -> dict[str, Any]:
    from cnnzoo.models.surgery import blocks, deletable_blocks, delete_blocks

    ok = set(deletable_blocks(net))
    by_layer = [
        error_of(delete_blocks(net, [i]), feed, limit=plan["images"]) if i in ok else None
        for i in range(len(blocks(net)))
    ]
    return {"baseline_error": error_of(net, feed, limit=plan["images"]), "error_by_deleted_layer": by_layer}


def _mean_over_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Element-wise means of the seeds' numbers (lists stay lists; ``None`` stays ``None``)."""
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        if key == "downsampling_blocks":
            out[key] = first
        elif isinstance(first, list):
            cols = zip(*(r[key] for r in runs), strict=True)
            out[key] = [None if c[0] is None else statistics.fmean(c) for c in cols]
        else:
            out[key] = statistics.fmean(r[key] for r in runs)
    return out


def _never_falls(errors: list[float], slack: float = 1.0) -> bool:
    """No step of ``errors`` falls by more than ``slack`` points (the test subset's noise)."""
    return all(b >= a - slack for a, b in itertools.pairwise(errors))


def _checks(res: dict[str, Any], plain: dict[str, Any]) -> dict[str, Any]:
    """The sub-claims, on the seed means (see the criterion)."""
    base, down = res["baseline_error"], set(res["downsampling_blocks"])
    rise = [e - base for i, e in enumerate(res["error_by_deleted_block"]) if i not in down]
    rise_down = [res["error_by_deleted_block"][i] - base for i in down]
    plain_rise = [e - plain["baseline_error"] for e in plain["error_by_deleted_layer"] if e is not None]
    r1, p1 = statistics.fmean(rise), statistics.fmean(plain_rise)
    num, swaps = res["error_by_num_deleted"], res["error_by_swaps"]
    return {
        "resnet_mean_rise": r1,
        "resnet_downsampling_mean_rise": statistics.fmean(rise_down) if rise_down else None,
        "plain_mean_rise": p1,
        "resnet_survives": r1 < 5.0,
        "plain_breaks": p1 > 10.0 and p1 > 4 * max(r1, 0.0),
        "downsampling_hurts_more": bool(rise_down) and statistics.fmean(rise_down) > r1,
        "smooth_in_num_deleted": _never_falls(num) and num[-1] > num[0],
        "graceful_swaps": _never_falls(swaps) and swaps[1] - swaps[0] < p1,
    }


def _plot_deletions(res: dict[str, Any], plain: dict[str, Any], path: Path) -> Path:
    """Fig. 3: test error against the deleted block (residual) and the deleted layer (plain)."""
    fig, axes = new_figure((8.0, 3.0), ncols=2)
    ax = axes[0]
    errs, down = res["error_by_deleted_block"], res["downsampling_blocks"]
    ax.plot(range(len(errs)), errs, "o-", ms=3, color="tab:blue", label="block deleted")
    ax.plot(down, [errs[i] for i in down], "s", color="tab:red", ms=6, label="downsampling block")
    ax.axhline(res["baseline_error"], ls="--", color="gray", label="no deletion")
    ax.set_title("resnet56: delete one residual block", fontsize=9)
    ax.set_xlabel("deleted block (0 = layer1.0)")
    ax.set_ylabel("test error (%)")
    ax.legend(fontsize=7)
    ax = axes[1]
    pe = plain["error_by_deleted_layer"]
    xs = [i for i, e in enumerate(pe) if e is not None]
    ax.plot(xs, [pe[i] for i in xs], "o-", ms=3, color="tab:orange", label="plain block deleted")
    ax.axhline(plain["baseline_error"], ls="--", color="gray", label="no deletion")
    ax.set_title("plain56: delete one block (2 layers)", fontsize=9)
    ax.set_xlabel("deleted block (0 = layer1.0)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    for a in axes:
        a.grid(alpha=0.3)
    return save_figure(fig, path)


def _plot_ensemble(res: dict[str, Any], plan: dict[str, Any], path: Path) -> Path:
    """Fig. 5: test error against the number of blocks deleted (a) and of pairs swapped (b)."""
    fig, axes = new_figure((8.0, 3.0), ncols=2)
    for ax, xs, ys, what in (
        (axes[0], plan["num_deleted"], res["error_by_num_deleted"], "blocks deleted at random"),
        (axes[1], plan["swaps"], res["error_by_swaps"], "pairs of blocks swapped"),
    ):
        ax.plot(xs, ys, "o-", color="tab:blue")
        ax.set_xlabel(f"number of {what}")
        ax.set_ylabel("test error (%)")
        ax.set_title(f"resnet56: {what}", fontsize=9)
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def run(ctx: Context) -> Outcome:
    setting, plan = cifar_setting(ctx.scale), _PLAN[ctx.scale]
    runs_r, runs_p = [], []
    for seed in ctx.seed_list():
        feed = feeds(ctx, "resnet56", seed=seed, **setting).test
        resnet, _ = trained(ctx, "resnet56", seed=seed, **setting)
        plain, _ = trained(ctx, "plain56", seed=seed, **setting)
        runs_r.append(_resnet_lesions(resnet, feed, plan, random.Random(seed)))
        runs_p.append(_plain_lesions(plain, feed, plan))
    res, pl = _mean_over_seeds(runs_r), _mean_over_seeds(runs_p)
    checks = _checks(res, pl)
    holds = all(checks[k] for k in ("resnet_survives", "plain_breaks", "downsampling_hurts_more",
                                    "smooth_in_num_deleted", "graceful_swaps"))  # fmt: skip
    spread = {
        "resnet_baseline_error": seed_stats([r["baseline_error"] for r in runs_r]),
        "plain_baseline_error": seed_stats([r["baseline_error"] for r in runs_p]),
    }
    metrics = {"resnet": res, "plain": pl, "num_deleted": list(plan["num_deleted"]),
               "swaps": list(plan["swaps"]), "checks": checks, "spread": spread}  # fmt: skip
    failed = [k for k, v in checks.items() if v is False]
    notes = f"sub-claims that did not show: {', '.join(failed)}" if failed else ""
    if ctx.scale == "quick":
        notes = "; ".join(filter(None, [notes, "quick scale: nets trained for one epoch on 256 images, so "
                                        "the claim is not expected to show"]))  # fmt: skip
    return Outcome(
        holds=holds,
        metrics=metrics,
        criterion=(
            "on the seed means: deleting one non-downsampling block raises resnet56's test error by < 5 "
            "points on average; deleting one plain56 block raises it by > 10 points and > 4x the resnet's "
            "rise; downsampling blocks hurt more than the others; the error by number deleted and by "
            "number of swaps never falls by more than 1 point as the number grows, ends higher than it "
            "starts, and one swap costs less than one plain deletion"
        ),
        setup=(
            f"the shared resnet56/plain56 of `degradation` ({describe(setting)}; {ctx.data}; {ctx.seeds} "
            f"seed(s)), errors on the first {plan['images'] or 'all'} images of the test subset; "
            f"{plan['draws']} random draw(s) per number deleted or swapped. The paper: ResNet-110 (54 "
            f"blocks) and VGG-15 on CIFAR-10, full test set."
        ),
        plots=[
            _plot_deletions(res, pl, ctx.out / "lesion_deleted_block.png"),
            _plot_ensemble(res, plan, ctx.out / "lesion_num_deleted.png"),
        ],  # fmt: skip
        notes=notes,
    )


EXPERIMENT = Experiment(
    name="lesion",
    claim="Deleting one residual block at test time barely hurts (except the downsampling ones), deleting "
    "a layer of a plain net breaks it, and the error grows smoothly with the number deleted or swapped.",
    source="Veit, Wilber, Belongie 2016, Residual Networks Behave Like Ensembles, Figs. 3-5",
    costs={"quick": "~10 s", "cpu": "~8 min", "paper": "GPU hours"},
    run=run,
    trained=True,
)
