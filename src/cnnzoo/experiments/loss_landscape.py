"""Loss landscape: skip connections keep the surface smooth; without them a deep net's turns chaotic.

Li, Xu, Taylor, Studer, Goldstein, "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018,
Fig. 1 and Fig. 5 (deck 001): around the trained weights of ResNet-56 the loss, along two
filter-normalised random directions, is a wide convex bowl; around ResNet-56 without shortcuts it
rises steeply and is full of non-convex structure.

Here on the shared, trained ``resnet56`` and ``plain56`` of ``degradation``, with
:mod:`cnnzoo.analysis.landscape`: the training loss on a small grid over [-1, 1]² of the two
directions (the paper: 51×51), on a fixed batch of training images. ``loss_rise_at_radius`` is the
mean rise over the four grid points at distance r on the axes (±r along each direction) above the
loss at the trained weights; ``interior_local_minima`` counts the grid points below their eight
neighbours (a bowl has one).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from cnnzoo.experiments._trained import cifar_setting, describe, feeds, seed_stats, trained
from cnnzoo.experiments.base import Context, Experiment, Outcome, new_figure, save_figure

MODELS = ("resnet56", "plain56")
RADII = (0.25, 0.5, 1.0)
#: per scale: grid points per side over [-1, 1] (odd, with 0.25 steps at cpu), training images
_PLAN = {
    "quick": dict(side=5, images=32),
    "cpu": dict(side=9, images=256),
    "paper": dict(side=51, images=10000),
}


def _rise(surface: list[list[float]], coords: list[float], r: float) -> float:
    c = len(coords) // 2
    j = min(range(len(coords)), key=lambda i: abs(coords[i] - r))
    d = j - c
    ring = [surface[c][c + d], surface[c][c - d], surface[c + d][c], surface[c - d][c]]
    return statistics.fmean(ring) - surface[c][c]


def _local_minima(s: list[list[float]]) -> int:
    n = len(s)
    return sum(
        all(s[i][j] < s[i + a][j + b] for a in (-1, 0, 1) for b in (-1, 0, 1) if a or b)
        for i in range(1, n - 1)
        for j in range(1, n - 1)
    )


def _surface(ctx: Context, model: str, seed: int, setting: dict[str, Any], plan: dict[str, Any], coords):
    import torch

    from cnnzoo.analysis.landscape import filter_normalized_direction, loss_surface

    net, _ = trained(ctx, model, seed=seed, **setting)
    x, y = next(iter(feeds(ctx, model, seed=seed, **setting).train.batches(plan["images"])))
    gen = torch.Generator().manual_seed(1000 + seed)  # the same draw for both nets of a seed
    dirs = (filter_normalized_direction(net, gen), filter_normalized_direction(net, gen))
    return loss_surface(net, [(x, y)], dirs, coords, coords)


def _plot(surfaces: dict[str, list[list[float]]], coords: list[float], path: Path) -> Path:
    """Fig. 1 as contours of log10(loss) (the plain net's loss spans orders of magnitude)."""
    import numpy as np

    fig, axes = new_figure((8.0, 3.6), ncols=2)
    logs = {m: np.log10(np.maximum(np.asarray(s), 1e-6)) for m, s in surfaces.items()}
    lo, hi = min(v.min() for v in logs.values()), max(v.max() for v in logs.values())
    levels = np.linspace(lo, hi, 21) if hi > lo else 10
    for ax, (m, z) in zip(axes, logs.items(), strict=True):
        cs = ax.contour(coords, coords, z, levels=levels, cmap="viridis", linewidths=0.8)
        ax.clabel(cs, cs.levels[::4], fontsize=6, fmt="%.1f")
        ax.plot([0], [0], "r+", ms=8)
        ax.set_title(
            f"{m}{' (no shortcuts)' if m.startswith('plain') else ''}: log10 training loss", fontsize=9
        )
        ax.set_xlabel("direction 1 (filter-normalised)")
        ax.set_ylabel("direction 2")
        ax.set_aspect("equal")
    return save_figure(fig, path)


def run(ctx: Context) -> Outcome:
    setting, plan = cifar_setting(ctx.scale), _PLAN[ctx.scale]
    side = plan["side"]
    coords = [-1 + 2 * i / (side - 1) for i in range(side)]
    per_seed: dict[str, list[list[list[float]]]] = {m: [] for m in MODELS}
    for seed in ctx.seed_list():
        for m in MODELS:
            per_seed[m].append(_surface(ctx, m, seed, setting, plan, coords))
    radii = [r for r in RADII if r <= 1.0 and any(math.isclose(abs(c), r) for c in coords)] or [1.0]
    rises = {
        m: {str(r): seed_stats([_rise(s, coords, r) for s in per_seed[m]]) for r in radii} for m in MODELS
    }
    rise_mean = {m: {r: v["mean"] for r, v in rises[m].items()} for m in MODELS}
    holds = all(rise_mean["plain56"][r] > rise_mean["resnet56"][r] for r in rise_mean["resnet56"])
    surfaces = {m: per_seed[m][0] for m in MODELS}
    metrics = {
        "surface": surfaces,
        "coordinates": coords,
        "loss_rise_at_radius": rise_mean,
        "loss_rise_spread": {m: {r: v["spread"] for r, v in rises[m].items()} for m in MODELS},
        "loss_at_minimum": {m: seed_stats([s[side // 2][side // 2] for s in per_seed[m]]) for m in MODELS},
        "interior_local_minima": {m: [_local_minima(s) for s in per_seed[m]] for m in MODELS},
    }
    notes = [] if holds else ["the plain net's surface does not rise faster than the residual net's here"]
    if ctx.scale == "quick":
        notes.append("quick scale: nets trained one epoch on 256 images, a 5x5 grid on 32 images; the claim "
                     "is not expected to show")  # fmt: skip
    if set(radii) != set(RADII):
        notes.append(f"the {side}x{side} grid has points at radii {radii} only")
    return Outcome(
        holds=holds,
        metrics=metrics,
        criterion=(
            "on the seed means, the training loss rises more from the trained weights for plain56 than for "
            "resnet56 at every measured radius (0.25, 0.5, 1.0 along the filter-normalised directions)"
        ),
        setup=(
            f"the shared resnet56/plain56 of `degradation` ({describe(setting)}; {ctx.data}; {ctx.seeds} "
            f"seed(s)); a {side}x{side} grid over [-1, 1]^2 of two filter-normalised Gaussian directions "
            f"(zero on biases and BN), the loss on {plan['images']} training images in eval mode; the surface "
            f"shown is seed 0's. The paper: CIFAR-10 ResNet-56 and ResNet-56-noshort, 51x51 grid, the whole "
            f"training set."
        ),
        plots=[_plot(surfaces, coords, ctx.out / "loss_landscape.png")],
        notes="; ".join(notes),
    )


EXPERIMENT = Experiment(
    name="loss_landscape",
    claim="Skip connections keep the loss surface smooth; without them a deep net's surface turns chaotic.",
    source="Li, Xu, Taylor, Studer, Goldstein 2018, Visualizing the Loss Landscape of Neural Nets, Fig. 1",
    costs={"quick": "~10 s", "cpu": "~6 min", "paper": "GPU hours"},
    run=run,
    trained=True,
)
