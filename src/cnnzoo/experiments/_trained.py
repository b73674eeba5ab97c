"""Trained nets for the experiments, shared between them through a cache keyed by their setting.

:func:`trained` trains a registered model with the real trainer (:func:`cnnzoo.train.loop.fit`)
into a normal run directory under ``ctx.cache/KEY/``, where ``KEY`` names the model and seed and
hashes the full :class:`~cnnzoo.train.config.TrainConfig` (model, widths, data, subset, epochs, lr,
schedule, seed, …): the same setting asked for by two experiments is trained once, and a changed
setting is a different net. The run is written under a temporary name and renamed when complete,
so an interrupted training leaves no half net in the cache.

:func:`cifar_setting` is the one setting of the CIFAR ResNets and plain nets (He et al. §4.2) per
scale, so that ``degradation``, ``lesion``, ``paths`` and ``loss_landscape`` share the same trained
``resnet20/56`` and ``plain20/56``:

=========  ============  =============================  ======  =====  ======================
scale      widths        train / test images            epochs  input  schedule
=========  ============  =============================  ======  =====  ======================
``quick``  4-8-16        256 / 256                      1       28     cosine, lr 0.1
``cpu``    8-16-32       3,000 / 1,000                  4       28     cosine, lr 0.1
``paper``  16-32-64      all (50k CIFAR-10) / all       64k it  32     ÷10 at 32k and 48k steps
=========  ============  =============================  ======  =====  ======================

All use SGD with momentum 0.9, batch 128 and weight decay 1e-4, as §4.2; ``quick`` and ``cpu`` add
a half-epoch warmup and no augmentation (``paper``: 4-pixel crops and flips, as §4.2).

``quick`` and ``cpu`` run torch on one thread: on a loaded 2-core machine (several jobs at once)
two OpenMP threads per process made a ResNet-56 step ten times slower than one thread (21.7 s
against 2.0 s at load 9), while on an idle machine two threads are about 1.7× faster. The thread
count is left out of the cache key: it changes nothing but the summation order.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnzoo.experiments.base import Context

if TYPE_CHECKING:  # torch is imported inside the functions: `cnnzoo experiment list` runs without it
    from torch import nn

__all__ = [
    "CACHE_VERSION",
    "cifar_setting",
    "describe",
    "train_config",
    "use_threads",
    "cache_key",
    "trained_run",
    "trained",
    "feeds",
    "error_of",
    "seed_stats",
    "mean_curve",
]

#: Bumped when the trainer changes in a way that makes older cached nets wrong.
CACHE_VERSION = 1

_BASE: dict[str, Any] = dict(batch_size=128, optimizer="sgd", momentum=0.9, nesterov=False,
                             weight_decay=1e-4, lr=0.1, amp="off", eval_batch_size=500)  # fmt: skip

_CIFAR: dict[str, dict[str, Any]] = {
    "quick": dict(widths=(4, 8, 16), train_samples=256, test_samples=256, epochs=1, input_size=28,
                  schedule="cosine", warmup_epochs=0.5, device="cpu", threads=1),
    "cpu": dict(widths=(8, 16, 32), train_samples=3000, test_samples=1000, epochs=4, input_size=28,
                schedule="cosine", warmup_epochs=0.5, device="cpu", threads=1),
    "paper": dict(widths=(16, 32, 64), train_samples=None, test_samples=None, epochs=164, iterations=64000,
                  input_size=32,
                  schedule="multistep", milestones=(32000, 48000), milestone_unit="iter",
                  warmup_epochs=0.0, crop_padding=4, hflip=True, device="auto"),
}  # fmt: skip


def cifar_setting(scale: str) -> dict[str, Any]:
    """The training setting of the CIFAR ResNets/plain nets at ``scale`` (see the module table)."""
    return {**_BASE, **_CIFAR[scale]}


def _side(setting: dict[str, Any]) -> str:
    side = setting.get("input_size")
    return f"{side}x{side}" if side else "the model's default size"


def describe(setting: dict[str, Any]) -> str:
    """One line for an experiment's setup: widths, images, epochs, input side, optimiser."""
    n = setting.get("train_samples")
    widths = "-".join(map(str, setting["widths"])) if "widths" in setting else "the model's own"
    images = f"{n:,}" if n else "all"
    test = f"{setting['test_samples']:,}" if setting.get("test_samples") else "all"
    optimizer = setting.get("optimizer", "sgd")
    if optimizer == "sgd":
        optimizer = f"SGD lr {setting['lr']} momentum {setting['momentum']}"
    else:
        optimizer = f"{optimizer.capitalize()} lr {setting['lr']}"
    return (
        f"widths {widths}, {images} training images, {test} test images, {setting['epochs']} epoch(s), "
        f"input {_side(setting)}, {optimizer} batch {setting['batch_size']} wd {setting['weight_decay']}, "
        f"{setting['schedule']} schedule"
    )


def use_threads(threads: int | None) -> None:
    """Run torch on ``threads`` threads (None: leave torch's choice), as the trainer does."""
    import torch

    if threads:
        torch.set_num_threads(threads)


def train_config(model: str, *, data: str, seed: int, **setting: Any):
    """The :class:`~cnnzoo.train.config.TrainConfig` of ``model`` under ``setting``.

    ``widths`` (per-stage widths of a CIFAR ResNet; the stem takes the first) and any
    ``model_kwargs`` go to the builder; every other key is a TrainConfig field.
    """
    from cnnzoo.train.config import TrainConfig

    setting = dict(setting)
    kwargs = dict(setting.pop("model_kwargs", {}))
    widths = setting.pop("widths", None)
    if widths is not None:
        kwargs.update(widths=list(widths), stem_width=int(widths[0]))
    return TrainConfig(model=model, data=data, seed=seed, model_kwargs=kwargs, **setting).validate()


def cache_key(cfg) -> str:
    """``MODEL-sSEED-HASH``: the hash covers every field of ``cfg`` but where the run is written."""
    d = {k: v for k, v in cfg.to_dict().items() if k not in ("out", "data_dir", "workers", "threads")}
    blob = json.dumps({"v": CACHE_VERSION, **d}, sort_keys=True, default=str)
    return f"{cfg.model}-s{cfg.seed}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def trained_run(ctx: Context, model: str, *, seed: int, **setting: Any) -> Path:
    """The run directory of ``model`` trained under ``setting``, training it into the cache first
    if it is not there (arguments as :func:`trained`). For an experiment that goes on from the run
    itself, e.g. fine-tunes it with :func:`cnnzoo.train.finetune.finetune`."""
    from cnnzoo.train.loop import fit

    cfg = train_config(model, data=ctx.data, seed=seed, **setting)
    use_threads(cfg.threads)
    final = Path(ctx.cache) / cache_key(cfg)
    if not (final / "summary.json").is_file():
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        cfg.out = str(tmp)
        ctx.console.print(f"[dim]training {model} (seed {seed}) into the cache: {final}[/]")
        try:
            fit(cfg, console=ctx.console, progress=False, report=False)
        except BaseException:  # an interrupted or failed training leaves nothing behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if (final / "summary.json").is_file():  # another process finished it first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(final, ignore_errors=True)  # a damaged leftover without summary.json
            os.replace(tmp, final)
    return final


def trained(
    ctx: Context, model: str, *, seed: int, **setting: Any
) -> tuple[nn.Module, list[dict[str, float]]]:
    """``model`` trained under ``setting`` (cached), in eval mode, and its history (metrics.csv rows).

    Args:
        ctx: the experiment's context (its ``cache``, ``data`` and ``console``).
        model: a registry name.
        seed: the run's seed (initial weights, subset, shuffling).
        setting: TrainConfig fields plus ``widths`` (see :func:`train_config`).
    """
    from cnnzoo.rundir import RunDir
    from cnnzoo.train.runs import load_run

    final = trained_run(ctx, model, seed=seed, **setting)
    net, _ = load_run(final, device="cpu")
    return net, RunDir(final).read_metrics()


def feeds(ctx: Context, model: str, *, seed: int, **setting: Any):
    """The run's data (:class:`cnnzoo.train.setup.Data`): the same training subset and test subset
    that :func:`trained` trained and evaluated on, adapted for ``model``."""
    import torch

    from cnnzoo.train.setup import open_data

    cfg = train_config(model, data=ctx.data, seed=seed, **{**setting, "device": "cpu"})
    use_threads(cfg.threads)
    state = torch.random.get_rng_state()
    try:  # open_data seeds torch for the model it builds; the experiment's RNG is its own business
        return open_data(cfg, torch.device("cpu"), torch.contiguous_format)
    finally:
        torch.random.set_rng_state(state)


def error_of(model: nn.Module, feed, *, limit: int | None = None, batch_size: int = 500) -> float:
    """Top-1 error (%) of ``model`` on ``feed`` (its first ``limit`` images), in eval mode."""
    from cnnzoo.train.evaluate import evaluate

    n = len(feed) if limit is None else min(limit, len(feed))
    part = feed if n == len(feed) else feed.select(list(range(n)))
    ev = evaluate(model, part.batches(batch_size), num_samples=n)
    return 100.0 - ev["top1"]


def seed_stats(values: list[float]) -> dict[str, Any]:
    """``{"mean", "spread", "per_seed"}`` of one number over the seeds; the spread is the sample
    standard deviation (0 for one seed)."""
    import statistics

    return {
        "mean": statistics.fmean(values),
        "spread": statistics.stdev(values) if len(values) > 1 else 0.0,
        "per_seed": list(values),
    }


def mean_curve(curves: list[list[float]]) -> list[float]:
    """The per-epoch mean of several seeds' curves (to the shortest)."""
    n = min(len(c) for c in curves)
    return [sum(c[i] for c in curves) / len(curves) for i in range(n)]
