"""Transfer: a pre-trained extractor against training from scratch, as the labels per class grow.

Yosinski, Clune, Bengio, Lipson, "How transferable are features in deep neural networks?", NIPS
2014, and the lecture's recipe (deck 001): pre-train on a large dataset; with few labels, use the
network as a frozen feature extractor (a new linear head) rather than train from scratch; with more
labels, fine-tune it, with a smaller learning rate, smaller still for the lower layers (Howard &
Ruder 2018 for the layer-wise rates and gradual unfreezing).

Here LeNet-5 (ReLU) is pre-trained on Fashion-MNIST classes 0-4 (garments) by the real trainer,
cached through :func:`cnnzoo.experiments._trained.trained_run` (one net per seed), and transferred
to classes 5-9 (sandal, shirt, sneaker, bag, ankle boot) with 10, 50 and 500 labelled images per
class, five ways: ``scratch`` (a plain ``cnnzoo train``: :func:`cnnzoo.train.loop.fit` on the
subset, also cached) and the four :data:`cnnzoo.train.finetune.MODES` of
:func:`cnnzoo.train.finetune.finetune` at their command-line learning rates
(:data:`~cnnzoo.train.finetune.DEFAULT_LR`, :data:`~cnnzoo.train.finetune.DEFAULT_LR_DECAY`). Every
run of a seed trains on the same labelled images (``train_per_class`` draws them with the seed)
with the same schedule, and is tested on the same test images of classes 5-9. The setting follows
``benchmarks/transfer_recipe.py`` (docs/transfer.md), which measured 10 and 50 labels per class.

The verdict's criterion is fixed in :data:`CRITERION` (before any cpu-scale run). The experiment
also records how far each fine-tuned backbone moved from its pre-trained weights (``backbone_shift``:
‖w − w₀‖ / ‖w₀‖ over every parameter but the head's; 0 for the linear probe, which trains only its
head) and the trainer's step count per labels count (``steps``: epochs × ⌈5 · labels / batch⌉).
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from cnnzoo.experiments._trained import seed_stats, trained_run
from cnnzoo.experiments.base import Context, Experiment, Outcome, new_figure, save_figure

MODEL = "lenet5_relu"
SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
LABELS = (10, 50, 500)
#: the metric's mode names: ``scratch`` and the ``finetune --mode`` values with ``_`` for ``-``
MODES = ("scratch", "linear_probe", "finetune", "progressive", "gradual")
#: ``scratch`` at the trainer's default lr, as ``cnnzoo train`` and benchmarks/transfer_recipe.py
SCRATCH_LR = 0.05

_COMMON: dict[str, Any] = dict(device="cpu", threads=1, amp="off", eval_every=0)
#: pre-training on classes 0-4: all 30,000 images at cpu scale (docs/transfer.md's 92.2% net)
_PRETRAIN = {
    "quick": dict(train_samples=1000, test_samples=500, epochs=1, batch_size=64, lr=0.05),
    "cpu": dict(epochs=4, batch_size=128, lr=0.05),
}
#: transfer to classes 5-9: one schedule for every mode (30 epochs of batch 16: enough steps for 50
#: images to converge); ``unfreeze_every`` paces gradual's 5 groups (all open by epoch 12 of 30)
_TRANSFER = {
    "quick": dict(epochs=1, batch_size=32, test_samples=500, unfreeze_every=1),
    "cpu": dict(epochs=30, batch_size=16, unfreeze_every=3),
}

CRITERION = (
    "both parts on the seed means, each difference larger than the larger seed spread (sample std) of "
    "the two means compared: (few labels) at 10 labels per class the better of linear_probe and "
    "finetune beats scratch; (labels grow) at 500 labels per class finetune and progressive each beat "
    "linear_probe. The first comparison at 50 and 500 labels says where the first part stops holding "
    "(reported, not part of the verdict)."
)


def pretrain_setting(scale: str) -> dict[str, Any]:
    """The cached pre-training run's setting (TrainConfig fields) at ``scale``."""
    return {**_COMMON, "classes": SOURCE_CLASSES, **_PRETRAIN[scale]}


def transfer_setting(scale: str, labels: int) -> dict[str, Any]:
    """The TrainConfig fields of every transfer run with ``labels`` labelled images per class
    (without its ``lr``, which depends on the mode)."""
    s = {k: v for k, v in _TRANSFER[scale].items() if k != "unfreeze_every"}
    return {**_COMMON, "classes": TARGET_CLASSES, "train_per_class": labels, **s}


def backbone_shift(source, tuned) -> float:
    """‖w − w₀‖ / ‖w₀‖ over every parameter of ``source`` but its classifier's (the new head)."""
    import torch

    heads = tuple(h + "." for h in source.classifier_names())
    after = dict(tuned.named_parameters())
    num = den = 0.0
    with torch.no_grad():
        for name, w0 in source.named_parameters():
            if name.startswith(heads):
                continue
            num += float((after[name].detach() - w0).pow(2).sum())
            den += float(w0.pow(2).sum())
    return math.sqrt(num / den)


def _finetune_run(ctx: Context, network, seed: int, labels: int, mode: str, work: Path) -> dict[str, Any]:
    """Fine-tune ``network`` in ``mode`` (a ``finetune --mode`` value) into ``work``; its summary and
    backbone shift. The run directory is deleted: its numbers are the result."""
    from cnnzoo.train.config import TrainConfig
    from cnnzoo.train.finetune import DEFAULT_LR, finetune
    from cnnzoo.train.runs import open_network

    out = work / f"{mode}-{labels}-s{seed}"
    cfg = TrainConfig(data=ctx.data, seed=seed, lr=DEFAULT_LR[mode], out=str(out),
                      **transfer_setting(ctx.scale, labels))  # fmt: skip
    unfreeze = _TRANSFER[ctx.scale]["unfreeze_every"] if mode == "gradual" else 1
    summary = finetune(network, cfg, mode=mode, unfreeze_every=unfreeze, console=ctx.console,
                       progress=False, report=False)  # fmt: skip
    shift = backbone_shift(network.model, open_network(out).model)
    shutil.rmtree(out, ignore_errors=True)
    return {"top1": float(summary["test_top1"]), "steps": int(summary["steps"]), "shift": shift}


def _runs(ctx: Context) -> tuple[dict, dict, dict, list[float]]:
    """Every (mode, labels, seed) run: accuracies, backbone shifts, steps, pre-training accuracies."""
    import torch

    from cnnzoo.rundir import RunDir
    from cnnzoo.train.runs import open_network

    acc = {m: {n: [] for n in LABELS} for m in MODES}
    shift = {m: {n: [] for n in LABELS} for m in MODES[1:]}
    steps: dict[int, set[int]] = {n: set() for n in LABELS}
    pre_acc: list[float] = []
    work = Path(tempfile.mkdtemp(prefix="cnnzoo-transfer-"))
    state = torch.random.get_rng_state()
    try:
        for seed in ctx.seed_list():
            pre = trained_run(ctx, MODEL, seed=seed, **pretrain_setting(ctx.scale))
            pre_acc.append(float(RunDir(pre).read_summary()["test_top1"]))
            network = open_network(pre)
            for n in LABELS:
                run = trained_run(ctx, MODEL, seed=seed, lr=SCRATCH_LR, **transfer_setting(ctx.scale, n))
                summary = RunDir(run).read_summary()
                acc["scratch"][n].append(float(summary["test_top1"]))
                steps[n].add(int(summary["steps"]))
                for mode in MODES[1:]:
                    r = _finetune_run(ctx, network, seed, n, mode.replace("_", "-"), work)
                    acc[mode][n].append(r["top1"])
                    shift[mode][n].append(r["shift"])
                    steps[n].add(r["steps"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
        torch.random.set_rng_state(state)
    if any(len(s) != 1 for s in steps.values()):
        raise RuntimeError(f"transfer runs of one labels count trained different step counts: {steps}")
    return acc, shift, {n: s.pop() for n, s in steps.items()}, pre_acc


def _beats(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """``a``'s mean exceeds ``b``'s by more than the larger of their seed spreads."""
    return a["mean"] - b["mean"] > max(a["spread"], b["spread"])


def _plot(stats: dict[str, dict[int, dict[str, Any]]], path: Path) -> Path:
    fig, ax = new_figure((5.6, 3.8))
    style = {"scratch": ("k", "s--"), "linear_probe": ("tab:blue", "o-"), "finetune": ("tab:red", "o-"),
             "progressive": ("tab:green", "^-"), "gradual": ("tab:purple", "v-")}  # fmt: skip
    for mode, by_n in stats.items():
        color, fmt = style[mode]
        ax.errorbar(list(LABELS), [by_n[n]["mean"] for n in LABELS], yerr=[by_n[n]["spread"] for n in LABELS],
                    fmt=fmt, color=color, ms=4, capsize=3, label=mode)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xticks(list(LABELS), [str(n) for n in LABELS])
    ax.set_xlabel("labelled images per class (classes 5-9)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title("Fashion-MNIST 0-4 → 5-9: mean ± std over seeds", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def _points(values: list[float]) -> str:
    return ", ".join(f"{v:+.1f}" for v in values)


def _notes(ctx: Context, stats, few: bool, grow: bool, pretrained_wins: dict[int, bool]) -> str:
    """What the numbers say beyond the verdict: each part of the claim, and where it stops holding."""
    a = {m: {n: stats[m][n]["mean"] for n in LABELS} for m in MODES}
    counts = "/".join(map(str, LABELS))
    best = {n: max(a["linear_probe"][n], a["finetune"][n]) for n in LABELS}
    notes = [
        f"pre-trained (best of linear_probe and finetune) minus scratch at {counts} labels per class: "
        f"{_points([best[n] - a['scratch'][n] for n in LABELS])} points"
    ]
    if not few:
        notes.append(
            "with 10 labels per class the pre-trained net does not beat scratch by more than the seed spread"
        )
    lost = [n for n in LABELS if not pretrained_wins[n]]
    if lost:
        notes.append(f"the pre-trained net's lead over scratch is not larger than the seed spread at {', '.join(map(str, lost))} labels per class: there the first part of the claim stops holding")  # fmt: skip
    else:
        notes.append(f"the pre-trained net beats scratch by more than the seed spread at every labels count measured ({counts})")  # fmt: skip
    below = [n for n in LABELS if a["linear_probe"][n] <= a["scratch"][n]]
    if below:
        notes.append(f"the frozen extractor alone (linear_probe) is not above scratch at {', '.join(map(str, below))} labels per class: there the pre-trained net wins only when fine-tuned")  # fmt: skip
    gap = [a["finetune"][n] - a["linear_probe"][n] for n in LABELS]
    notes.append(f"finetune minus linear_probe at {counts}: {_points(gap)} points")
    if not grow:
        notes.append(
            f"at 500 labels per class fine-tuning does not beat the frozen extractor as the criterion asks (finetune "
            f"{a['finetune'][500]:.1f}%, progressive {a['progressive'][500]:.1f}%, linear_probe {a['linear_probe'][500]:.1f}%)"
        )  # fmt: skip
    elif gap[0] >= gap[-1] and gap[0] > 0:
        notes.append("fine-tuning already beats the frozen extractor at 10 labels per class, by more than at 500: its lead does not grow with the labels, the frozen extractor catches up")  # fmt: skip
    layerwise = [m for m in ("progressive", "gradual") if any(_beats(stats[m][n], stats["finetune"][n]) for n in LABELS)]  # fmt: skip
    if not layerwise:
        notes.append("the layer-wise schedules (progressive, gradual) beat one smaller rate for every layer (finetune) by more than the seed spread at no labels count")  # fmt: skip
    if ctx.scale == "quick":
        notes.append(
            "quick scale: 1,000 pre-training images, one epoch per run, 500 test images, one seed: not a judgement"
        )
    if ctx.seeds == 1:
        notes.append("one seed: the spread is 0, so every difference counts")
    return "; ".join(notes)


def _setup(ctx: Context) -> str:
    """The setting as run, and how it differs from the paper's."""
    from cnnzoo.train.finetune import DEFAULT_LR, DEFAULT_LR_DECAY

    pre, tr = pretrain_setting(ctx.scale), _TRANSFER[ctx.scale]
    return (
        f"{MODEL} pre-trained by cnnzoo's trainer on {ctx.data} classes 0-4 "
        f"({pre.get('train_samples') or 'all their'} training images, {pre['epochs']} epoch(s), batch {pre['batch_size']}, "
        f"SGD lr {pre['lr']}, cosine), one net per seed, cached; transferred to classes 5-9 with 10/50/500 "
        f"labelled images per class (drawn by the seed, the same for every mode), {tr['epochs']} epoch(s) of "
        f"batch {tr['batch_size']} for every run, tested on {tr.get('test_samples') or 'all the'} test images of "
        f"classes 5-9. scratch: `cnnzoo train` at lr {SCRATCH_LR}; linear_probe lr {DEFAULT_LR['linear-probe']}; "
        f"finetune lr {DEFAULT_LR['finetune']}; progressive head lr {DEFAULT_LR['progressive']} x"
        f"{DEFAULT_LR_DECAY['progressive']} per stage group below; gradual lr {DEFAULT_LR['gradual']}, one group "
        f"unfrozen every {tr['unfreeze_every']} epoch(s) from the head down; SGD momentum 0.9 (Nesterov), wd 5e-4, "
        f"cosine with half an epoch of warmup, one torch thread; {ctx.seeds} seed(s). The paper: AlexNet on "
        f"two halves of ImageNet (500 classes each, about 645,000 images per half), transferring the first n "
        f"layers, frozen or fine-tuned; here a 5-layer net on small images, five classes per half, "
        f"and the number of labels varies instead of the layer at which the net is cut."
    )


def run(ctx: Context) -> Outcome:
    acc, shift, steps, pre_acc = _runs(ctx)
    stats = {m: {n: seed_stats(acc[m][n]) for n in LABELS} for m in MODES}
    best_pre = {
        n: max((stats["linear_probe"][n], stats["finetune"][n]), key=lambda s: s["mean"]) for n in LABELS
    }
    pretrained_wins = {n: _beats(best_pre[n], stats["scratch"][n]) for n in LABELS}
    few = pretrained_wins[10]
    grow = all(_beats(stats[m][500], stats["linear_probe"][500]) for m in ("finetune", "progressive"))
    stops = next((n for n in LABELS if not pretrained_wins[n]), None)
    metrics = {
        "test_accuracy": {m: {n: stats[m][n]["mean"] for n in LABELS} for m in MODES},
        "test_accuracy_spread": {m: {n: stats[m][n]["spread"] for n in LABELS} for m in MODES},
        "test_accuracy_per_seed": {m: {n: stats[m][n]["per_seed"] for n in LABELS} for m in MODES},
        "pretrained_minus_scratch": {n: best_pre[n]["mean"] - stats["scratch"][n]["mean"] for n in LABELS},
        "pretrained_beats_scratch": pretrained_wins,
        "finetune_minus_linear_probe": {
            m: {n: stats[m][n]["mean"] - stats["linear_probe"][n]["mean"] for n in LABELS}
            for m in ("finetune", "progressive", "gradual")
        },
        "claim_stops_at_labels_per_class": stops,
        "few_labels_holds": few,
        "labels_grow_holds": grow,
        "backbone_shift": {m: {n: statistics.fmean(shift[m][n]) for n in LABELS} for m in shift},
        "steps": steps,
        "pretrain_test_accuracy": seed_stats(pre_acc),
    }
    return Outcome(
        holds=few and grow,
        metrics=metrics,
        criterion=CRITERION,
        setup=_setup(ctx),
        plots=[_plot(stats, ctx.out / "transfer.png")],
        notes=_notes(ctx, stats, few, grow, pretrained_wins),
    )


EXPERIMENT = Experiment(
    name="transfer",
    claim="A pretrained extractor beats training from scratch when labels are few; fine-tuning with "
    "smaller, layer-wise learning rates beats a frozen extractor as labels grow.",
    source="lecture (deck 001); Yosinski, Clune, Bengio, Lipson 2014, How transferable are features in "
    "deep neural networks?",
    costs={"quick": "~10 s", "cpu": "~7 min"},
    run=run,
    trained=True,
)
