"""Setting a run up: the device, the data (train, validation, test feeds), the model, and the objects
that train it. :func:`build_run` returns the fixed part (:class:`Run`), :func:`new_state` the part that
changes (:class:`cnnzoo.train.state.RunState`), which a checkpoint restores.

The order of what draws random numbers is fixed, so that a run and its resumption agree: the model
modules are imported first, then ``torch.manual_seed(seed)`` and the model (the same initial weights on
every rank), then each rank's own seed (distinct dropout masks), then the augmentation generator.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnzoo.data import load_dataset, resolve_input
from cnnzoo.data.datasets import dataset_spec
from cnnzoo.data.feed import DataFeed, Feed, holdout_split
from cnnzoo.errors import ConfigError
from cnnzoo.registry import create_model, get_model_config
from cnnzoo.rundir import RunDir
from cnnzoo.train import distributed as D
from cnnzoo.train.checkpoint import CheckpointError
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.ema import ModelEma
from cnnzoo.train.evaluate import logits_of
from cnnzoo.train.state import RunState

__all__ = [
    "Run",
    "RunHooks",
    "Data",
    "build_run",
    "new_state",
    "open_data",
    "resume_config",
    "select_device",
    "resolve_amp",
    "cpu_has_native_bf16",
    "prewarm_optimizer_import",
    "default_out_dir",
]


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; an unavailable device is a clear error."""
    mps = getattr(torch.backends, "mps", None)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps and mps.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(
            f"unknown --device {name!r}; use auto, cpu, cuda, cuda:N (N a GPU index) or mps"
        ) from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {name!r} is not supported here; use auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but CUDA is not available; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(
            f"--device {name} does not exist: this machine has {torch.cuda.device_count()} CUDA "
            f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}"
        )
    if dev.type == "mps" and not (mps and mps.is_available()):
        raise ConfigError("--device mps requested but MPS is not available; use --device cpu or auto")
    return dev


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX tiles), where oneDNN's bf16
    convolutions run about twice as fast as fp32; without them bf16 is emulated and slower."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``--amp`` on ``device`` (None: full fp32).

    ``auto`` is fp16 (with a GradScaler) on CUDA and off elsewhere: bf16 autocast on CPUs without
    AMX/AVX512-BF16 is slower than fp32 for these small convnets (``benchmarks/trainer_speed.py``
    measures it), so it is opt-in there with ``--amp bf16``. ``native`` is ``auto`` except on a CPU
    that computes bf16 in hardware (:func:`cpu_has_native_bf16`), where it is bf16: the choice of a
    recipe that is timed on whatever CPU it lands on (``fashion-best``).
    """
    if amp == "native":
        if device.type == "cpu":
            return torch.bfloat16 if cpu_has_native_bf16() else None
        amp = "auto"
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.float16
    if amp == "fp16" and device.type == "cpu":
        raise ConfigError("--amp fp16 needs a CUDA or MPS device; on the CPU use --amp bf16 (or off)")
    return torch.bfloat16 if amp == "bf16" else torch.float16


def default_out_dir(model: str) -> Path:
    return Path("runs") / f"{model}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def resume_config(run_dir: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The config of the run in ``run_dir`` (its ``config.json``), with ``overrides`` applied."""
    run = RunDir(run_dir)
    if not run.has_checkpoint():
        raise CheckpointError(
            f"{run.state} not found: {run.path} holds no training checkpoint to resume (expected "
            f"the --out directory of an interrupted `cnnzoo train`)"
        )
    saved = run.read_config()
    fields = set(TrainConfig.field_names())
    cfg = TrainConfig.from_dict({k: v for k, v in saved.items() if k in fields})
    cfg.out = str(run.path)
    for k, v in (overrides or {}).items():
        setattr(cfg, k, v)
    cfg.__post_init__()
    return cfg


# ---------------------------------------------------------------------------------------------- hooks
@dataclass
class RunHooks:
    """What a caller changes in how a run is built and stepped (transfer learning uses all four).

    Attributes:
        build_model: ``build_model(num_classes, in_chans)`` returns the model to train, instead of
            ``create_model(cfg.model, ...)``; it is called after ``torch.manual_seed(cfg.seed)``. The
            model must be what ``create_model(cfg.model, num_classes=..., in_chans=model.in_chans,
            **cfg.model_kwargs)`` builds (same keys), so that ``cnnzoo eval`` reopens the run.
        param_groups: ``param_groups(model)`` returns the optimizer's parameter groups (each a dict
            with ``params`` and optionally its own ``lr`` and ``weight_decay``); a group with a
            ``name`` gets an ``lr_NAME`` column in metrics.csv. Frozen parameters may be in a group:
            they have no gradient, so the optimizer skips them until they are unfrozen.
        on_epoch_start: ``on_epoch_start(run, state)`` before each epoch's first step (and before a
            resumed epoch's next step), e.g. to unfreeze a stage.
        record: extra entries for config.json and summary.json.
    """

    build_model: Callable[[int, int], nn.Module] | None = None
    param_groups: Callable[[nn.Module], list[dict[str, Any]]] | None = None
    on_epoch_start: Callable[[Any, RunState], None] | None = None
    record: dict[str, Any] = field(default_factory=dict)


def _model_builder(cfg: TrainConfig, hooks: RunHooks) -> Callable[[int, int], nn.Module]:
    if hooks.build_model is not None:
        return hooks.build_model
    return lambda num_classes, in_chans: create_model(
        cfg.model, num_classes=num_classes, in_chans=in_chans, **cfg.model_kwargs
    )


# ---------------------------------------------------------------------------------------------- data
class Data(NamedTuple):
    """The run's feeds and its model (built between loading the data and adapting it)."""

    train: Feed
    val: Feed | None
    test: Feed
    model: nn.Module
    size: int
    mode: str
    val_split: dict[str, Any] | None


def _open_imagefolder(cfg: TrainConfig, device, memory_format, build) -> tuple[Feed, Feed, nn.Module, int]:
    from cnnzoo.data.imagefolder import ImageFolderFeed

    spec, mcfg = dataset_spec(cfg.data), get_model_config(cfg.model)
    size = cfg.input_size or mcfg.input_size[-1]
    if size < mcfg.min_input_size:
        raise ConfigError(
            f"--input-size {size} is below {cfg.model}'s minimum input size "
            f"{mcfg.min_input_size}; use --input-size {mcfg.min_input_size} or more"
        )
    in_chans = mcfg.input_size[0]
    kw = dict(size=size, in_chans=in_chans, mean=spec.mean, std=spec.std, device=device)
    kw.update(workers=cfg.workers, memory_format=memory_format)
    train = ImageFolderFeed(cfg.data_dir, "train", select=cfg.classes or None, **kw)
    # by name: the test split's folders are matched to the train split's classes, whatever it holds besides
    test = ImageFolderFeed(
        cfg.data_dir, "test", classes=train.classes, select=train.classes if cfg.classes else None, **kw
    )
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run
    model = build(train.num_classes, in_chans)
    return train, test, model, size


def _open_in_memory(cfg: TrainConfig, device, memory_format, build) -> tuple[Feed, Feed, nn.Module, int, str]:
    from cnnzoo.data.subsets import select_classes

    train_ds = select_classes(load_dataset(cfg.data, "train", data_dir=cfg.data_dir), cfg.classes)
    test_ds = select_classes(load_dataset(cfg.data, "test", data_dir=cfg.data_dir), cfg.classes)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run
    model = build(train_ds.num_classes, train_ds.channels)
    size, mode = resolve_input(model.default_cfg, cfg.input_size, train_ds.images.shape[-1])
    kw = dict(size=size, mode=mode, in_chans=model.in_chans, device=device, memory_format=memory_format)
    return DataFeed(train_ds, **kw), DataFeed(test_ds, **kw), model, size, mode


def _random_subset(feed: Feed, n: int | None, seed: int) -> Feed:
    if not n or n >= len(feed):
        return feed
    return feed.select(torch.randperm(len(feed), generator=torch.Generator().manual_seed(seed))[:n])


def split_validation(cfg: TrainConfig, train: Feed) -> tuple[Feed, Feed | None, dict[str, Any] | None]:
    """Hold ``cfg.val_samples`` training images out (:func:`cnnzoo.data.feed.holdout_split`), then take
    the ``--train-samples`` subset of the rest; returns (train, val, the split's record)."""
    n = len(train)
    if cfg.val_samples >= n:
        raise ConfigError(
            f"--val-samples {cfg.val_samples} leaves nothing to train on: the training split has {n:,} "
            f"images; hold out fewer"
        )
    val = record = None
    if cfg.val_samples:
        keep, held = holdout_split(n, cfg.val_samples, cfg.seed)
        val, train = train.select(held), train.select(keep)
        record = {
            "val_samples": cfg.val_samples,
            "seed": cfg.seed,
            "of": n,
            "indices": "sorted(torch.randperm(of, generator=torch.Generator().manual_seed(seed))[:val_samples])",
            "indices_sha256": hashlib.sha256(held.numpy().astype("<i8").tobytes()).hexdigest(),
        }
    if cfg.train_per_class:
        from cnnzoo.data.subsets import per_class_indices

        n, held = cfg.train_per_class, cfg.val_samples > 0
        picked = per_class_indices(train.labels, n, cfg.seed, classes=train.classes, held_out=held)
        return train.select(picked), val, record
    return _random_subset(train, cfg.train_samples, cfg.seed), val, record


def open_data(cfg: TrainConfig, device: torch.device, memory_format, hooks: RunHooks | None = None) -> Data:
    """The train/validation/test feeds and the model (not yet on ``device``)."""
    get_model_config(cfg.model)  # imports the model modules first: importing must not shift the seed
    build = _model_builder(cfg, hooks or RunHooks())
    counts = sorted({"num_classes", "in_chans"} & set(cfg.model_kwargs))
    if counts:
        raise ConfigError(
            f"--model-arg {counts[0]}=... is not a builder keyword here: the trainer sets {counts[0]} "
            "from the data; drop it"
        )
    if dataset_spec(cfg.data).streaming:
        train, test, model, size = _open_imagefolder(cfg, device, memory_format, build)
        mode = "resize"
    else:
        train, test, model, size, mode = _open_in_memory(cfg, device, memory_format, build)
    train, val, record = split_validation(cfg, train)
    test = _random_subset(test, cfg.test_samples, cfg.seed + 1)
    return Data(train, val, test, model, size, mode, record)


# ---------------------------------------------------------------------------------------------- run
@dataclass
class Run:
    """The fixed part of a run: config, places, data, and how one step and one evaluation are done."""

    cfg: TrainConfig
    dir: RunDir
    dist: D.DistInfo
    device: torch.device
    memory_format: torch.memory_format
    data: Data
    local_batch: int
    steps_per_epoch: int
    total_steps: int
    n_epochs: int
    amp_dtype: torch.dtype | None
    loss_fn: Callable
    augment: Callable | None
    predict: Callable | None
    forward: nn.Module  # the model as called in training (the DDP / compiled wrapper, or the model)
    forward_takes_target: bool  # training calls forward(x, target=y) (ZooModel.train_forward_takes_target)
    console: Any  # a rich Console; a quiet one on ranks other than 0
    t_start: float
    hooks: RunHooks = field(default_factory=RunHooks)

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def autocast(self) -> contextlib.AbstractContextManager:
        """The one autocast context of training and evaluation (disabled when ``amp_dtype`` is None)."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def progressive_side(self, epoch: int) -> int | None:
        sizes = self.cfg.progressive_sizes
        return sizes[epoch] if epoch < len(sizes) else None


def _loss_fn(model: nn.Module, label_smoothing: float) -> Callable[[Any, Tensor, Tensor], Tensor]:
    """``loss(output, labels, inputs)``: the model's own ``loss`` where it has one, else cross-entropy."""
    custom = getattr(model, "loss", None)
    if not callable(custom):
        return lambda out, y, x: F.cross_entropy(logits_of(out), y, label_smoothing=label_smoothing)
    kwargs: dict[str, Any] = {"label_smoothing": label_smoothing} if label_smoothing else {}
    if getattr(model, "loss_takes_inputs", False):
        return lambda out, y, x: custom(out, y, inputs=x, **kwargs)
    return lambda out, y, x: custom(out, y, **kwargs)


def _augment(cfg: TrainConfig, std: tuple[float, ...]) -> Callable | None:
    if not (cfg.crop_padding or cfg.hflip or cfg.pca_lighting or cfg.scale_jitter or cfg.random_erasing):
        return None
    from cnnzoo.train.augment import build_augment

    return build_augment(
        crop_padding=cfg.crop_padding,
        hflip=cfg.hflip,
        pca_lighting=cfg.pca_lighting,
        scale_jitter=tuple(cfg.scale_jitter) if cfg.scale_jitter else None,
        random_erasing=cfg.random_erasing,
        out_size=cfg.eval_crop,
        std=std,
    )


def _predict(cfg: TrainConfig) -> Callable | None:
    if cfg.eval_mode == "none":
        return None
    from cnnzoo.train.tta import predict

    return lambda m, x: predict(m, x, mode=cfg.eval_mode, crop=cfg.eval_crop)


def _check_progressive(cfg: TrainConfig, model: nn.Module) -> None:
    low = model.default_cfg.min_input_size
    if any(s < low for s in cfg.progressive_sizes):
        raise ConfigError(
            f"--progressive-sizes {','.join(map(str, cfg.progressive_sizes))} goes below {cfg.model}'s "
            f"minimum input size {low}; use sides of at least that"
        )


def _console(dist: D.DistInfo, console):
    from rich.console import Console

    if not dist.is_main:
        return Console(quiet=True)
    return console if console is not None else Console()


def build_run(cfg: TrainConfig, *, t_start: float, console=None, hooks: RunHooks | None = None) -> Run:
    """Validate ``cfg``, join the process group, open the data and build the model (``hooks``: see
    :class:`RunHooks`).

    Raises:
        ConfigError: an impossible setting (the message names the fix).
    """
    cfg.validate()
    dist = D.detect()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.batch_size % dist.world:
        raise ConfigError(
            f"the global batch {cfg.batch_size} does not divide over {dist.world} processes; use a "
            f"--batch-size that is a multiple of {dist.world}"
        )
    device = D.init(dist, select_device(cfg.device))
    local_batch = cfg.batch_size // dist.world
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    hooks = hooks or RunHooks()
    data = open_data(cfg, device, memory_format, hooks)
    data.model.to(device, memory_format=memory_format)
    _check_progressive(cfg, data.model)
    steps_per_epoch = data.train.num_batches(local_batch, world=dist.world)
    total_steps = cfg.iterations or steps_per_epoch * cfg.epochs
    return Run(
        cfg=cfg,
        dir=RunDir(cfg.out or default_out_dir(cfg.model)),
        dist=dist,
        device=device,
        memory_format=memory_format,
        data=data,
        local_batch=local_batch,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        n_epochs=math.ceil(total_steps / steps_per_epoch),
        amp_dtype=resolve_amp(cfg.amp, device),
        loss_fn=_loss_fn(data.model, cfg.label_smoothing),
        augment=_augment(cfg, data.train.std),
        predict=_predict(cfg),
        forward=_wrap(cfg, dist, device, data.model),
        forward_takes_target=bool(getattr(data.model, "train_forward_takes_target", False)),
        console=_console(dist, console),
        t_start=t_start,
        hooks=hooks,
    )


def prewarm_optimizer_import() -> threading.Thread | None:
    """Import ``torch._dynamo`` in a background thread (None: it is imported already).

    Every ``torch.optim`` optimizer imports it when it is built (torch 2.x wraps their methods in
    ``torch._disable_dynamo``): 1.2-1.8 s of pure Python at the start of every run on this machine.
    ``cnnzoo train`` starts it as soon as torch is imported and ``fit`` again (a no-op then) before
    the data are adapted (torch kernels that release the GIL, 0.7 s for Fashion-MNIST at 32×32), so
    that it overlaps reading the config and the data (``benchmarks/train_startup.py``). The
    optimizer waits on the import lock if it gets there first; a failed import is left for it to
    report.
    """
    import sys

    if "torch._dynamo" in sys.modules:
        return None

    def work() -> None:
        try:
            import torch._dynamo  # noqa: F401
        except Exception:
            pass

    t = threading.Thread(target=work, name="cnnzoo-optimizer-import", daemon=True)
    t.start()
    return t


def new_state(run: Run) -> RunState:
    """A fresh :class:`RunState`: optimizer, schedule, scaler, EMA, augmentation generator."""
    from cnnzoo.train.optim import build_optimizer
    from cnnzoo.train.schedules import build_schedule

    cfg, model, rank = run.cfg, run.data.model, run.dist.rank
    if rank:
        torch.manual_seed(cfg.seed + 1_000_003 * rank)  # distinct dropout masks per rank
    opt = build_optimizer(
        model,
        name=cfg.optimizer,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
        betas=tuple(cfg.betas),
        no_decay_bn_bias=cfg.no_decay_bn_bias,
        alpha=cfg.alpha,
        eps=cfg.eps,
        groups=run.hooks.param_groups(model) if run.hooks.param_groups is not None else None,
    )
    sched = build_schedule(
        opt,
        name=cfg.schedule,
        steps_per_epoch=run.steps_per_epoch,
        total_steps=run.total_steps,
        warmup_steps=round(cfg.warmup_epochs * run.steps_per_epoch),
        warmup_start_factor=cfg.warmup_start_factor,
        milestones=tuple(cfg.milestones),
        milestone_unit=cfg.milestone_unit,
        gamma=cfg.gamma,
        step_size=cfg.step_size,
        plateau_patience=cfg.plateau_patience,
        min_lr_factor=cfg.min_lr_factor,
        onecycle_pct_start=cfg.onecycle_pct_start,
    )
    fp16 = run.amp_dtype == torch.float16 and run.device.type == "cuda"
    return RunState(
        model=model,
        optimizer=opt,
        schedule=sched,
        scaler=torch.amp.GradScaler(run.device.type, enabled=fp16),
        ema=ModelEma(model, cfg.ema, warmup=cfg.ema_warmup) if cfg.ema else None,
        aug_generator=torch.Generator().manual_seed(cfg.seed * 2 + 1 + 7_919 * rank),
    )


def _wrap(cfg: TrainConfig, dist: D.DistInfo, device: torch.device, model: nn.Module) -> nn.Module:
    """torchrun/DDP and torch.compile wrap the forward; ``model`` stays the plain module we save."""
    fwd: nn.Module = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        fwd = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        fwd = torch.compile(fwd)
    return fwd


def resolved_config(run: Run, state: RunState) -> dict[str, Any]:
    """``config.json``: the config and what the run derived from it (input, batches, split, model)."""
    model = state.model
    return {
        **run.cfg.to_dict(),
        "out": str(run.dir.path),
        "input_size": run.data.size,
        "input_mode": run.data.mode,
        "num_classes": model.num_classes,
        "in_chans": model.in_chans,
        "world_size": run.dist.world,
        "local_batch_size": run.local_batch,
        "steps_per_epoch": run.steps_per_epoch,
        "total_steps": run.total_steps,
        "amp_dtype": str(run.amp_dtype).replace("torch.", "") if run.amp_dtype else "off",
        "val_split": run.data.val_split,
        "class_names": list(run.data.test.classes),  # index = label (after --classes)
        "model_config": model.default_cfg.to_dict(),
        **run.hooks.record,
    }
