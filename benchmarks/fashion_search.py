"""Search harness for the ``fashion-best`` recipe (issue 10): train candidate configurations on a
validation split held out from Fashion-MNIST's 60k training images, measure their throughput, and
test only the finalists.

It rebuilds the trainer's loop (``cnnzoo.train.loop.fit`` as of the P9 recipe) from the same
pieces (``create_model``, ``DataFeed``, ``build_optimizer``, ``build_schedule``, ``build_augment``,
``tta.predict``, the same seeds for init, shuffling and augmentation), so that a configuration with
no extras trains exactly what ``cnnzoo train --recipe fashion-best`` trains. On top it prototypes
what the trainer does not have yet: an EMA of the weights (``ema``, ``ema_every``, ``ema_warmup``,
``ema_bn``), BN recalibration (``bn_recal``), an lr multiplier for the norm and bias parameters
(``bn_lr_mult``), lookahead (``lookahead``, ``lookahead_alpha``), alternating flips (``alt_flip``),
a patch-whitening init of the first conv (``whiten``), and the one-cycle end points
(``onecycle_div``, ``onecycle_final_div``).

**No decision reads the test set.** ``--split val`` (the default) trains on 50,000 images and
evaluates on the other 10,000 (a fixed permutation seeded with ``VAL_SEED``, independent of the
run's seed). ``--split test`` trains on all 60,000 and evaluates on the test set: finalists only.

Every configuration is a row of :data:`CONFIGS` (changes from ``P9``, today's recipe); the table is
the record of the search. Each run appends one JSON line to ``--log``.

Usage (from the repository root; one training at a time, one thread, on the shared 2-core box)::

    export PYTHONPATH=$PWD/src OMP_NUM_THREADS=1
    .venv/bin/python benchmarks/fashion_search.py list
    .venv/bin/python benchmarks/fashion_search.py train P9 --seed 0 --split val --log runs.jsonl
    .venv/bin/python benchmarks/fashion_search.py train P9 --seed 0 --split test --log runs.jsonl
    .venv/bin/python benchmarks/fashion_search.py speed P9 W1 --threads 1 --rounds 3
    .venv/bin/python benchmarks/fashion_search.py table --log runs.jsonl

``speed`` times the training step of each configuration at every side its schedule uses, in rounds
interleaved with ``P9`` (the baseline), and prints the estimated wall time of the whole
``cnnzoo train`` command at 2 threads: ``REF_WALL`` (P9's measured command, 2 threads, quiet box)
scaled by the ratio of the training seconds, plus the fixed costs (data, test pass, plots).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from cnnzoo.train.data_feed import DataFeed
from torch import Tensor, nn

from cnnzoo.data import ImageDataset, load_dataset, resolve_input
from cnnzoo.registry import create_model, get_model_config
from cnnzoo.train.augment import build_augment
from cnnzoo.train.evaluate import evaluate
from cnnzoo.train.optim import build_optimizer
from cnnzoo.train.schedules import build_schedule
from cnnzoo.train.tta import predict

VAL_SEED = 20_261_201
VAL_SAMPLES = 10_000
# P9's whole `cnnzoo train --recipe fashion-best` command at 2 threads on the quiet box: fit's
# 262.6 s median (docs/recipes.md) plus ~3 s of CLI imports. FIXED_WALL is the part that does not
# scale with the training step (imports, data load, one flip-TTA test pass, plots), estimated.
REF_WALL = 265.6
FIXED_WALL = 14.0

# Today's recipe (src/cnnzoo/train/recipes.py, "fashion-best") plus the harness's extras, all off.
BASE: dict[str, Any] = {
    "model": "resnet8",
    "model_kwargs": {},
    "input_size": 28,
    "progressive_sizes": (20, 20, 20, 24, 24),
    "epochs": 9,
    "batch_size": 128,
    "lr": 0.2,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "no_decay_bn_bias": True,
    "label_smoothing": 0.1,
    "onecycle_pct_start": 0.25,
    "onecycle_div": 25.0,
    "onecycle_final_div": 1e4,
    "hflip": True,
    "crop_padding": 0,
    "eval_mode": "flip",
    "channels_last": True,
    "amp": "off",  # "bf16": CPU autocast, as the trainer's --amp bf16 (weights and optimizer in fp32)
    # extras the trainer does not have (yet)
    "ema": 0.0,  # EMA decay per optimizer step (0: off)
    "ema_every": 1,  # update the EMA every k steps (with decay**k)
    "ema_warmup": True,  # decay min(ema, (1 + t) / (10 + t)) at step t (timm's ModelEmaV3 warmup)
    "ema_bn": "ema",  # BN buffers of the EMA model: "ema" (averaged too) or "copy" (the model's)
    # side measurements on every run: EMAs of these decays, evaluated with flip TTA, as they are
    # and after BN recalibration (their cost, ~0.1 ms a step, is in the measured train seconds)
    "ema_probe": (),
    "bn_recal": 0,  # recompute BN statistics over this many training batches at the end (0: off)
    "bn_lr_mult": 1.0,  # lr multiplier of the no-decay group (norm weights and biases)
    "lookahead": 0,  # lookahead every k steps (0: off)
    "lookahead_alpha": 0.5,
    "alt_flip": False,  # airbench: each image flipped in alternate epochs, random phase per image
    "whiten": False,  # conv1 initialised as 3x3 patch whitening (eigenvectors, ±), then trained
}

# The search: name -> changes from BASE (P9). Comments give the reason for each row.
CONFIGS: dict[str, dict[str, Any]] = {
    "P9": {},
    # round 1: where the epochs go. The 28x28 epochs are 59% of P9's time; the earlier search found
    # the net underfits, so trade full-resolution epochs for more low-resolution ones.
    "L11": {"progressive_sizes": (20,) * 7 + (24, 24), "epochs": 11},  # 20x7, 24x2, 28x2
    "L16": {"progressive_sizes": (16,) * 3 + (20,) * 3 + (24, 24), "epochs": 11},  # 16x3 20x3 24x2 28x3
    # shapes (speed survey first; P9's schedule unless noted)
    "S8": {"model_kwargs": {"widths": (8, 32, 64), "stem_width": 8}},  # thin 28x28 stage: less traffic
    "S8B": {"model_kwargs": {"widths": (8, 32, 64), "stem_width": 8, "shortcut": "B"}},
    "SB": {"model_kwargs": {"shortcut": "B"}},  # 1x1 projections at the stage changes
    "W128": {"model_kwargs": {"widths": (16, 32, 128)}},  # capacity where the maps are 7x7
    "W96": {"model_kwargs": {"widths": (16, 32, 96)}},
    "W4896": {"model_kwargs": {"widths": (16, 48, 96)}},
    "W24": {"model_kwargs": {"widths": (24, 48, 96), "stem_width": 24}},
    "R18": {
        "model": "resnet18",
        "model_kwargs": {"stem": "cifar", "stem_width": 16, "widths": (16, 32, 64, 128)},
    },
    "A7": {"progressive_sizes": (), "epochs": 7},  # the third search's A7: 7 epochs at 28
    "B64": {"batch_size": 64},
    "CF": {"channels_last": False},
    "S8CF": {"model_kwargs": {"widths": (8, 32, 64), "stem_width": 8}, "channels_last": False},
    "S8W96": {"model_kwargs": {"widths": (8, 32, 96), "stem_width": 8}},
    "S8W128": {"model_kwargs": {"widths": (8, 32, 128), "stem_width": 8}},
    "S8W48": {"model_kwargs": {"widths": (8, 48, 96), "stem_width": 8}},
    "S816": {"model_kwargs": {"widths": (8, 16, 64), "stem_width": 8}},
    # bf16 autocast: this CPU has AVX512-BF16 (Zen 4); with the contiguous layout it measured
    # ~1.8x the fp32 channels_last step (a first check, /tmp, 1 thread)
    "BF": {"amp": "bf16", "channels_last": False},
    "BFCL": {"amp": "bf16"},
    "S8BF": {"model_kwargs": {"widths": (8, 32, 64), "stem_width": 8}, "amp": "bf16", "channels_last": False},
    # bf16 makes the compute-bound convs cheaper, so capacity is cheaper too: shapes again
    "BFW96": {"model_kwargs": {"widths": (16, 32, 96)}, "amp": "bf16", "channels_last": False},
    "BFW128": {"model_kwargs": {"widths": (16, 32, 128)}, "amp": "bf16", "channels_last": False},
    "BFW24": {
        "model_kwargs": {"widths": (24, 48, 96), "stem_width": 24},
        "amp": "bf16",
        "channels_last": False,
    },
    "BFW32": {
        "model_kwargs": {"widths": (32, 64, 128), "stem_width": 32},
        "amp": "bf16",
        "channels_last": False,
    },
    "BFR20": {"model": "resnet20", "amp": "bf16", "channels_last": False},
    "BFR18": {
        "model": "resnet18",
        "model_kwargs": {"stem": "cifar", "stem_width": 16, "widths": (16, 32, 64, 128)},
        "amp": "bf16",
        "channels_last": False,
    },
    "BFSB": {"model_kwargs": {"shortcut": "B"}, "amp": "bf16", "channels_last": False},
    "BFW4896": {"model_kwargs": {"widths": (16, 48, 96)}, "amp": "bf16", "channels_last": False},
    "BFW160": {"model_kwargs": {"widths": (16, 32, 160)}, "amp": "bf16", "channels_last": False},
    "BFW96B": {
        "model_kwargs": {"widths": (16, 32, 96), "shortcut": "B"},
        "amp": "bf16",
        "channels_last": False,
    },
    "BFW96b256": {
        "model_kwargs": {"widths": (16, 32, 96)},
        "amp": "bf16",
        "channels_last": False,
        "batch_size": 256,
    },
    "BFW96S8": {
        "model_kwargs": {"widths": (8, 32, 96), "stem_width": 8},
        "amp": "bf16",
        "channels_last": False,
    },
    "BF12": {"amp": "bf16", "channels_last": False, "progressive_sizes": (20, 20, 24), "epochs": 12},
    # round 3: BF12 (93.80) > P9 (93.51) on val, and BF (P9's schedule in bf16) 93.43: bf16 costs
    # little accuracy and buys three epochs. Capacity instead of epochs, at the same cost:
    "BFW128E9": {
        "model_kwargs": {"widths": (16, 32, 128)},
        "amp": "bf16",
        "channels_last": False,
        "progressive_sizes": (20, 20, 24),
        "epochs": 9,
    },  # 20x2, 24x1, 28x6
    "BFW96E10": {
        "model_kwargs": {"widths": (16, 32, 96)},
        "amp": "bf16",
        "channels_last": False,
        "progressive_sizes": (20, 20, 24),
        "epochs": 10,
    },
    # round 4: BFW96E10 94.14 > BFW128E9 93.84 > BF12 93.80 on val, but BFW96E10 costs ~1.0-1.05x
    # P9: too close to the budget. Batch 256 measured ~18% cheaper per image in bf16 (the earlier
    # search: batch 256 at lr 0.4 = batch 128 at lr 0.4 in accuracy).
    "BFW96b256E10": {
        "model_kwargs": {"widths": (16, 32, 96)},
        "amp": "bf16",
        "channels_last": False,
        "progressive_sizes": (20, 20, 24),
        "epochs": 10,
        "batch_size": 256,
        "lr": 0.4,
    },
    # round 2: L11 < L16 < P9 on val: the 28x28 epochs are worth more than low-res ones. S8's thin
    # first stage costs 0.72x of P9 per epoch, so it buys more 28x28 epochs at the same cost.
    "S8E10": {
        "model_kwargs": {"widths": (8, 32, 64), "stem_width": 8},
        "progressive_sizes": (20, 20, 24),
        "epochs": 10,
    },  # 20x2, 24x1, 28x7
    # smoke test of every extra (not a candidate)
    "SMOKE": {
        "ema": 0.99,
        "bn_recal": 2,
        "bn_lr_mult": 4.0,
        "lookahead": 5,
        "alt_flip": True,
        "whiten": True,
    },
}


def resolved(name: str) -> dict[str, Any]:
    if name not in CONFIGS:
        sys.exit(f"unknown config {name!r}; known: {', '.join(CONFIGS)}")
    cfg = copy.deepcopy(BASE)
    cfg.update(copy.deepcopy(CONFIGS[name]))
    return cfg


def epoch_sides(cfg: dict[str, Any]) -> list[int]:
    sizes = list(cfg["progressive_sizes"])
    return [sizes[e] if e < len(sizes) else cfg["input_size"] for e in range(cfg["epochs"])]


def shuffle_seed(seed: int, epoch: int) -> int:
    """The trainer's per-epoch shuffle seed (cnnzoo.train.loop), so runs match it batch for batch."""
    return (seed * 1_000_003 + epoch * 7_919 + 1) % (2**63)


def splits(split: str) -> tuple[ImageDataset, ImageDataset]:
    train = load_dataset("fashion-mnist", "train")
    if split == "test":
        return train, load_dataset("fashion-mnist", "test")
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(VAL_SEED))

    def part(idx: Tensor, name: str) -> ImageDataset:
        idx = idx.sort().values
        return ImageDataset(
            train.name, name, train.images[idx], train.labels[idx], train.classes, train.mean, train.std
        )

    return part(perm[VAL_SAMPLES:], "train"), part(perm[:VAL_SAMPLES], "val")


class WeightEma:
    """An exponential moving average of a model's parameters (and BN buffers, per ``bn``)."""

    def __init__(self, model: nn.Module, decay: float, every: int, warmup: bool, bn: str) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay, self.every, self.warmup, self.bn = decay, every, warmup, bn
        self._params = list(self.model.parameters())
        self._bufs = [b for b in self.model.buffers() if b.is_floating_point()]

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        if step % self.every:
            return
        d = self.decay**self.every
        if self.warmup:
            d = min(d, (1 + step) / (10 + step))
        torch._foreach_lerp_(self._params, list(model.parameters()), 1.0 - d)
        src = [b for b in model.buffers() if b.is_floating_point()]
        if self.bn == "ema":
            torch._foreach_lerp_(self._bufs, src, 1.0 - d)
        else:
            torch._foreach_copy_(self._bufs, src)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, feed: DataFeed, side: int, batches: int, bs: int, fmt) -> None:
    """Recompute every BN's running mean/var as the plain average over ``batches`` training batches."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    was = model.training
    model.train()
    gen = torch.Generator().manual_seed(1)
    for i, (x, _) in enumerate(feed.batches(bs, shuffle=True, generator=gen)):
        if i >= batches:
            break
        model(resize(x, side, fmt))
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    model.train(was)


def autocast(cfg: dict[str, Any]):
    """The trainer's autocast context for ``--amp`` on the CPU (a no-op when off)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg["amp"] == "bf16")


def resize(x: Tensor, side: int, fmt) -> Tensor:
    if side == x.shape[-1]:
        return x
    x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    return x.contiguous(memory_format=fmt)


@torch.no_grad()
def whiten_conv1(model: nn.Module, feed: DataFeed, n: int = 5000) -> None:
    """Set ``conv1`` (k×k, 1 input channel) to the whitening filters of the k×k patches, ± each."""
    conv = model.conv1
    c_out, c_in, k, _ = conv.weight.shape
    x = feed._adapted[:n] if feed._adapted is not None else feed._adapt(feed.images[:n])
    patches = F.unfold(x.contiguous(), k).transpose(1, 2).reshape(-1, c_in * k * k)
    patches = patches - patches.mean(0)
    eigval, eigvec = torch.linalg.eigh(patches.T @ patches / patches.shape[0])
    order = eigval.argsort(descending=True)[: c_out // 2]
    w = (eigvec[:, order] / (eigval[order] + 1e-2).sqrt()).T.reshape(-1, c_in, k, k)
    conv.weight.copy_(torch.cat([w, -w])[:c_out])


def build(cfg: dict[str, Any], seed: int, train_ds: ImageDataset, eval_ds: ImageDataset):
    """The model, feeds and optimizer state of a run, built in the trainer's order (same init)."""
    fmt = torch.channels_last if cfg["channels_last"] else torch.contiguous_format
    get_model_config(cfg["model"])  # imports the model modules first: importing must not shift the seed
    torch.manual_seed(seed)
    model = create_model(cfg["model"], num_classes=10, in_chans=1, **cfg["model_kwargs"])
    size, mode = resolve_input(model.default_cfg, cfg["input_size"], 28)
    kw = dict(size=size, mode=mode, in_chans=1, device=torch.device("cpu"), memory_format=fmt)
    train_feed, eval_feed = DataFeed(train_ds, **kw), DataFeed(eval_ds, **kw)
    model = model.to(memory_format=fmt)
    if cfg["whiten"]:
        whiten_conv1(model, train_feed)
    opt = build_optimizer(
        model,
        name="sgd",
        lr=cfg["lr"],
        momentum=cfg["momentum"],
        nesterov=cfg["nesterov"],
        weight_decay=cfg["weight_decay"],
        no_decay_bn_bias=cfg["no_decay_bn_bias"],
    )
    if cfg["bn_lr_mult"] != 1.0:
        opt.param_groups[-1]["lr"] *= cfg["bn_lr_mult"]  # before the schedule reads the base lrs
    spe = train_feed.num_batches(cfg["batch_size"])
    sched = build_schedule(
        opt,
        name="onecycle",
        steps_per_epoch=spe,
        total_steps=spe * cfg["epochs"],
        onecycle_pct_start=cfg["onecycle_pct_start"],
        onecycle_div_factor=cfg["onecycle_div"],
        onecycle_final_div_factor=cfg["onecycle_final_div"],
    )
    aug = build_augment(hflip=cfg["hflip"] and not cfg["alt_flip"], crop_padding=cfg["crop_padding"])
    return model, train_feed, eval_feed, opt, sched, aug, fmt


def batches_with_flips(cfg, feed: DataFeed, bs: int, order_seed: int, epoch: int, phase: Tensor):
    """The feed's shuffled batches; with ``alt_flip`` each image is mirrored when its phase matches."""
    gen = torch.Generator().manual_seed(order_seed)
    if not cfg["alt_flip"]:
        yield from feed.batches(bs, shuffle=True, generator=gen)
        return
    # the permutation the feed draws first from an identically seeded generator
    order = torch.randperm(len(feed), generator=torch.Generator().manual_seed(order_seed))
    for i, (x, y) in enumerate(feed.batches(bs, shuffle=True, generator=gen)):
        flip = (phase[order[i * bs : (i + 1) * bs]] ^ bool(epoch % 2)).view(-1, 1, 1, 1)
        yield torch.where(flip, x.flip(3), x), y


def train_one(
    cfg: dict[str, Any], seed: int, split: str, max_seconds: float, limit: int = 0
) -> dict[str, Any]:
    """Train one configuration and evaluate it (raw weights, the EMA, plain and flip TTA)."""
    t_start = time.perf_counter()
    train_ds, eval_ds = splits(split)
    if limit:  # smoke tests of the harness only
        train_ds, eval_ds = train_ds.subset(limit, seed=0), eval_ds.subset(limit, seed=0)
    model, train_feed, eval_feed, opt, sched, aug, fmt = build(cfg, seed, train_ds, eval_ds)
    aug_gen = torch.Generator().manual_seed(seed * 2 + 1)
    phase = torch.rand(len(train_feed), generator=torch.Generator().manual_seed(seed + 7)) < 0.5
    ema = (
        WeightEma(model, cfg["ema"], cfg["ema_every"], cfg["ema_warmup"], cfg["ema_bn"])
        if cfg["ema"]
        else None
    )
    probes = {d: WeightEma(model, d, 1, True, "ema") for d in cfg["ema_probe"] if d != cfg["ema"]}
    slow = [p.detach().clone() for p in model.parameters()] if cfg["lookahead"] else None
    bs, step, epochs = cfg["batch_size"], 0, []
    model.train()
    for epoch, side in enumerate(epoch_sides(cfg)):
        t0, seen = time.perf_counter(), 0
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        for x, y in batches_with_flips(cfg, train_feed, bs, shuffle_seed(seed, epoch), epoch, phase):
            if aug is not None:
                x = aug(x, aug_gen)
            x = resize(x, side, fmt)
            with autocast(cfg):
                out = model(x)
                loss = F.cross_entropy(out, y, label_smoothing=cfg["label_smoothing"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step_batch()
            step += 1
            loss_sum += loss.detach() * y.shape[0]
            correct += (out.detach().argmax(1) == y).sum()
            seen += y.shape[0]
            if slow is not None and step % cfg["lookahead"] == 0:
                with torch.no_grad():
                    fast = list(model.parameters())
                    torch._foreach_lerp_(slow, fast, cfg["lookahead_alpha"])
                    torch._foreach_copy_(fast, slow)
            if ema is not None:
                ema.update(model, step)
            for pr in probes.values():
                pr.update(model, step)
        dt = time.perf_counter() - t0
        epochs.append(
            {
                "side": side,
                "seconds": round(dt, 2),
                "img_s": round(seen / dt, 1),
                "train_loss": round(float(loss_sum) / seen, 4),
                "train_top1": round(100.0 * float(correct) / seen, 2),
            }
        )
        print(f"  epoch {epoch + 1} ({side}x{side}): {epochs[-1]}", flush=True)
        if time.perf_counter() - t_start > max_seconds:
            raise SystemExit(f"over --max-seconds {max_seconds} after epoch {epoch + 1}: stopped")
    train_seconds = sum(e["seconds"] for e in epochs)
    t_eval = time.perf_counter()
    final = cfg["input_size"]
    res: dict[str, Any] = {}
    models = {"raw": model} | ({"ema": ema.model} if ema is not None else {})
    for tag, m in models.items():
        for mode in ("none", "flip"):
            res[f"{tag}_{mode}"] = top1(cfg, m, eval_feed, mode)
        if cfg["bn_recal"]:
            recalibrate_bn(m, train_feed, final, cfg["bn_recal"], 500, fmt)
            for mode in ("none", "flip"):
                res[f"{tag}_recal_{mode}"] = top1(cfg, m, eval_feed, mode)
    if cfg["amp"] != "off":  # the same weights evaluated without autocast
        res["raw_flip_fp32"] = top1({**cfg, "amp": "off"}, model, eval_feed, "flip")
    for d, pr in probes.items():
        res[f"probe{d}_flip"] = top1(cfg, pr.model, eval_feed, "flip")
        recalibrate_bn(pr.model, train_feed, final, 20, 500, fmt)
        res[f"probe{d}_recal_flip"] = top1(cfg, pr.model, eval_feed, "flip")
    return {
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(time.perf_counter() - t_eval, 1),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        "top1": res,
        "per_epoch": epochs,
    }


def top1(cfg: dict[str, Any], model: nn.Module, feed: DataFeed, mode: str) -> float:
    """Top-1 over ``feed`` under a TTA mode, with the run's autocast (as the trainer evaluates)."""
    ev = evaluate(
        model,
        feed.batches(1000),
        num_samples=len(feed),
        predict=lambda m, x: predict(m, x, mode=mode),
        autocast=(lambda: autocast(cfg)) if cfg["amp"] != "off" else None,
    )
    return round(ev["top1"], 2)


def headline(cfg: dict[str, Any], top1: dict[str, float]) -> tuple[str, float]:
    """The figure a recipe would report: its eval mode, of the EMA weights when it keeps one."""
    tag = "ema" if cfg["ema"] else "raw"
    if cfg["bn_recal"]:
        tag += "_recal"
    key = f"{tag}_{cfg['eval_mode']}"
    return key, top1[key]


# ----------------------------------------------------------------------------------- throughput
def time_side(cfg: dict[str, Any], side: int, steps: int, data: tuple[Tensor, Tensor]) -> float:
    """img/s of the training step of ``cfg`` at ``side`` (augment, resize, forward, backward, step)."""
    fmt = torch.channels_last if cfg["channels_last"] else torch.contiguous_format
    torch.manual_seed(0)
    model = create_model(cfg["model"], num_classes=10, in_chans=1, **cfg["model_kwargs"])
    model = model.to(memory_format=fmt).train()
    opt = build_optimizer(
        model, name="sgd", lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4, no_decay_bn_bias=True
    )
    ema = WeightEma(model, cfg["ema"], cfg["ema_every"], False, cfg["ema_bn"]) if cfg["ema"] else None
    aug = build_augment(hflip=cfg["hflip"], crop_padding=cfg["crop_padding"])
    gen = torch.Generator().manual_seed(0)
    xs, ys = data
    x_all = xs.contiguous(memory_format=fmt)
    if cfg["input_size"] != 28:
        x_all = resize(x_all, cfg["input_size"], fmt)
    bs = cfg["batch_size"]
    warm = 5
    for i in range(warm + steps):
        if i == warm:
            t0 = time.perf_counter()
        j = (i * bs) % (len(ys) - bs)
        x, y = x_all[j : j + bs], ys[j : j + bs]
        if aug is not None:
            x = aug(x, gen)
        with autocast(cfg):
            out = model(resize(x, side, fmt))
            loss = F.cross_entropy(out, y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        (out.detach().argmax(1) == y).sum()
        if ema is not None:
            ema.update(model, i + 1)
    return steps * bs / (time.perf_counter() - t0)


def speed(names: list[str], threads: int, rounds: int, steps: int) -> None:
    torch.set_num_threads(threads)
    ds = load_dataset("fashion-mnist", "train").subset(8192, seed=0)
    x = (ds.images.float() / 255.0 - ds.mean[0]) / ds.std[0]
    data = (x, ds.labels)
    names = ["P9"] + [n for n in names if n != "P9"]
    cfgs = {n: resolved(n) for n in names}
    ips: dict[tuple[str, int], list[float]] = {}
    print(f"== speed: {threads} thread(s), {rounds} interleaved rounds of {steps} steps; uptime {load()}")
    for _ in range(rounds):
        for n, cfg in cfgs.items():
            for side in sorted(set(epoch_sides(cfg))):
                ips.setdefault((n, side), []).append(time_side(cfg, side, steps, data))
    n_train = 60_000

    def train_secs(n: str) -> float:
        return sum(n_train / statistics.median(ips[(n, s)]) for s in epoch_sides(cfgs[n]))

    base = train_secs("P9")
    for n in names:
        per_side = ", ".join(
            f"{s}: {statistics.median(ips[(n, s)]):,.0f}" for s in sorted(set(epoch_sides(cfgs[n])))
        )
        ratio = train_secs(n) / base
        est = FIXED_WALL + (REF_WALL - FIXED_WALL) * ratio
        print(
            f"{n:8s} img/s by side {{{per_side}}} | train {train_secs(n):6.1f} s at {threads}t (60k) | "
            f"x{ratio:.3f} of P9 | est. 2-thread command wall {est:5.1f} s"
        )
    print(f"uptime after: {load()}")


# ----------------------------------------------------------------------------------- the CLI
def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def cmd_train(args: argparse.Namespace) -> None:
    cfg = resolved(args.config)
    torch.set_num_threads(args.threads)
    changes = CONFIGS[args.config]
    print(f"== {args.config} seed {args.seed} split {args.split}: {changes or '(P9)'}; uptime {load()}")
    up0 = load()
    if args.epochs:
        cfg["epochs"] = args.epochs
    r = train_one(cfg, args.seed, args.split, args.max_seconds, args.limit)
    key, value = headline(cfg, r["top1"])
    rec = {
        "config": args.config,
        "changes": changes,
        "seed": args.seed,
        "split": args.split,
        "threads": args.threads,
        "epochs": cfg["epochs"],
        "sides": epoch_sides(cfg),
        "headline": key,
        "top1_headline": value,
        **r,
        "load_start": up0,
        "load_end": load(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    with open(args.log, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"== {args.config} seed {args.seed} {args.split} {key} {value:.2f}%  all {r['top1']}")
    print(f"   train {r['train_seconds']} s, wall {r['wall_seconds']} s, uptime {load()}")


def cmd_table(args: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in Path(args.log).read_text().splitlines() if line.strip()]
    print("| config | changes from P9 | split | seed | epochs (sides) | headline | top-1 | all | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        sides = ",".join(map(str, r["sides"]))
        ch = ", ".join(f"{k}={v}" for k, v in r["changes"].items()) or "(recipe)"
        all_ = " ".join(f"{k} {v}" for k, v in r["top1"].items())
        print(
            f"| {r['config']} | {ch} | {r['split']} | {r['seed']} | {r['epochs']} ({sides}) | "
            f"{r['headline']} | {r['top1_headline']:.2f} | {all_} | {r['train_seconds']} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    t = sub.add_parser("train")
    t.add_argument("config")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--split", choices=("val", "test"), default="val")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--max-seconds", type=float, default=1500.0)
    t.add_argument("--log", default="fashion_search.jsonl")
    t.add_argument("--limit", type=int, default=0, help="smoke test: train and evaluate on N images")
    t.add_argument("--epochs", type=int, default=0, help="smoke test: override the epochs")
    s = sub.add_parser("speed")
    s.add_argument("configs", nargs="+")
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--steps", type=int, default=20)
    tb = sub.add_parser("table")
    tb.add_argument("--log", default="fashion_search.jsonl")
    args = p.parse_args()
    if args.cmd == "list":
        for n in CONFIGS:
            print(f"{n:8s} {CONFIGS[n] or '(P9: today fashion-best)'}")
    elif args.cmd == "train":
        cmd_train(args)
    elif args.cmd == "speed":
        speed(args.configs, args.threads, args.rounds, args.steps)
    else:
        cmd_table(args)


if __name__ == "__main__":
    main()
