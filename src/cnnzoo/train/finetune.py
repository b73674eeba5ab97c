"""Transfer learning: train a pre-trained network on new classes, frozen, whole, or stage by stage.

The lecture's recipe (and Yosinski et al. 2014, "How transferable are features in deep neural
networks?"; Howard & Ruder 2018, ULMFiT, for the layer-wise rates and gradual unfreezing): pre-train
on a large dataset, then use the network as a frozen feature extractor, or fine-tune it, starting
frozen, with a smaller learning rate, smaller still for the lower layers. The four modes:

================  ==================================================================================
``linear-probe``  a new head on a frozen extractor; BatchNorm's running statistics stay frozen
                  too (:mod:`cnnzoo.train.freeze`)
``finetune``      a new head, and every parameter trained at one (smaller) learning rate
``progressive``   layer-wise learning-rate decay by stage group: group ``g`` trains at
                  ``lr × decay^(groups between g and the head)`` (the head at ``lr``)
``gradual``       starts as a linear probe, then unfreezes one stage group every N epochs, from
                  the top down, in the same optimizer (its state is kept)
================  ==================================================================================

The stage groups are the model's :meth:`~cnnzoo.models.base.ZooModel.stage_groups`: ``stem``,
``stage0`` … ``stage{n-1}``, ``neck``, ``head``. Parameters matching a ``freeze`` pattern stay
frozen in every mode. Each group's learning rate has its own ``lr_NAME`` column in metrics.csv.

This is not a second training loop: :func:`finetune` is :func:`cnnzoo.train.loop.fit` with
:class:`~cnnzoo.train.setup.RunHooks` that build the model from the pre-trained network (a new
head of the data's class count), give the optimizer the groups, and unfreeze at epoch starts. The
output is a normal run directory: ``cnnzoo eval`` re-scores it, ``cnnzoo export`` exports it, and
``config.json``/``summary.json`` carry a ``finetune`` entry (mode, source, groups and their lrs).

An interrupted fine-tuning run resumes bit-exactly with ``finetune(network, None, resume=DIR)``
(``cnnzoo finetune SOURCE --out DIR --resume``): the same source network rebuilds the model and
the groups, the recorded mode and options are used, and the checkpoint restores the rest. The
frozen set of ``gradual`` is a function of the epoch (:func:`trainable_at`), so the resumed epoch
starts with exactly the groups the uninterrupted run had unfrozen. ``cnnzoo train --resume`` refuses
such a run (it has no hooks to rebuild it), and a resume with another source or option is refused
with the differences named (:class:`~cnnzoo.train.checkpoint.ResumeMismatchError`).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from torch import nn

from cnnzoo.errors import ConfigError
from cnnzoo.rundir import RunDir
from cnnzoo.train.checkpoint import ResumeMismatchError
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.freeze import match_names, set_frozen
from cnnzoo.train.runs import Network
from cnnzoo.train.setup import RunHooks, resume_config

__all__ = ["MODES", "DEFAULT_LR", "DEFAULT_LR_DECAY", "Group", "plan_groups", "trainable_at", "finetune"]

MODES = ("linear-probe", "finetune", "progressive", "gradual")
#: the head's learning rate when the command line gives no --lr: a probe trains a fresh linear layer
#: (the trainer's 0.05); the modes that move the extractor take 5× less, so as not to wipe it out
DEFAULT_LR = {"linear-probe": 0.05, "finetune": 0.01, "progressive": 0.05, "gradual": 0.01}
#: ``decay`` per stage group below the head; gradual unfreezing uses one lr unless asked
DEFAULT_LR_DECAY = {"progressive": 0.5, "gradual": 1.0}
_STAGED = ("progressive", "gradual")


class Group(NamedTuple):
    """One parameter group of a fine-tuning run: its name, parameter names and learning rate."""

    name: str
    params: tuple[str, ...]
    lr: float


def _stage_groups(model: nn.Module, mode: str, name: str) -> list[tuple[str, list[str]]]:
    from cnnzoo.models.base import ModelInterfaceError

    try:
        return model.stage_groups()  # type: ignore[operator]
    except (AttributeError, ModelInterfaceError):
        raise ConfigError(
            f"--mode {mode} needs stage groups and {name} declares no stages (feature_info); "
            "use --mode linear-probe or finetune"
        ) from None


def _head_params(model: nn.Module, mode: str, name: str) -> list[str]:
    from cnnzoo.models.base import ModelInterfaceError

    try:
        heads = model.classifier_names()  # type: ignore[operator]
    except (AttributeError, ModelInterfaceError):
        raise ConfigError(
            f"--mode {mode} replaces the classifier and {name} declares none (head_name); "
            "fine-tune a cnnzoo model"
        ) from None
    return [n for n, _ in model.named_parameters() if any(n.startswith(h + ".") for h in heads)]


def plan_groups(
    model: nn.Module,
    mode: str,
    lr: float,
    *,
    lr_decay: float | None = None,
    pinned: Sequence[str] = (),
    name: str = "the model",
) -> list[Group]:
    """The parameter groups of ``mode``, from the input up, without the ``pinned`` (frozen) names.

    ``linear-probe``: one group, ``head``. ``finetune``: one group, ``all``. ``progressive`` and
    ``gradual``: the model's stage groups, group ``i`` of ``n`` at ``lr × lr_decay^(n-1-i)``.

    Raises:
        ConfigError: an unknown mode, a decay outside (0, 1], a decay for a mode without stage
            groups, or a staged mode for a model without stages.
    """
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if lr_decay is not None and mode not in _STAGED:
        raise ConfigError(f"--lr-decay applies to --mode progressive or gradual, not {mode}")
    decay = DEFAULT_LR_DECAY.get(mode, 1.0) if lr_decay is None else lr_decay
    if not 0 < decay <= 1:
        raise ConfigError(f"--lr-decay must be in (0, 1], e.g. 0.5; got {decay}")
    if mode == "linear-probe":
        raw = [("head", _head_params(model, mode, name))]
    elif mode == "finetune":
        _head_params(model, mode, name)
        raw = [("all", [n for n, _ in model.named_parameters()])]
    else:
        _head_params(model, mode, name)
        raw = _stage_groups(model, mode, name)
    skip = set(pinned)
    n = len(raw)
    groups = [
        Group(g, tuple(p for p in params if p not in skip), lr * decay ** (n - 1 - i))
        for i, (g, params) in enumerate(raw)
    ]
    groups = [g for g in groups if g.params]
    if not groups:
        raise ConfigError(f"--freeze leaves nothing of {name} to train in --mode {mode}; freeze less")
    return groups


def trainable_at(groups: Sequence[Group], mode: str, epoch: int, unfreeze_every: int) -> set[str]:
    """The parameter names trained in epoch ``epoch`` (0-based): every group's, but for ``gradual``,
    the top ``1 + epoch // unfreeze_every`` groups (the head first, then the neck, the last stage...)."""
    shown = groups if mode != "gradual" else groups[::-1][: 1 + epoch // unfreeze_every]
    return {p for g in shown for p in g.params}


def _optimizer_groups(
    model: nn.Module, groups: Sequence[Group], weight_decay: float, no_decay_bn_bias: bool
) -> list[dict[str, Any]]:
    params = dict(model.named_parameters())
    out = []
    for g in groups:
        ps = [params[n] for n in g.params]
        if no_decay_bn_bias:  # norm weights and biases: the ndim <= 1 parameters (optim.param_groups)
            split = [[p for p in ps if p.ndim > 1], [p for p in ps if p.ndim <= 1]]
            out += [
                {"params": part, "lr": g.lr, "weight_decay": wd, "name": g.name}
                for part, wd in zip(split, (weight_decay, 0.0), strict=True)
                if part
            ]
        else:
            out.append({"params": ps, "lr": g.lr, "weight_decay": weight_decay, "name": g.name})
    return out


def _config_for(network: Network, cfg: TrainConfig) -> TrainConfig:
    """``cfg`` for the network: its model name and builder keywords, a run's input size by default."""
    over: dict[str, Any] = {"model": network.name}
    if network.run is not None:
        over["model_kwargs"] = dict(network.config.get("model_kwargs", {}))
        if cfg.input_size is None and network.config.get("input_size"):
            over["input_size"] = int(network.config["input_size"])
    return dataclasses.replace(cfg, **over).validate()


def _source_of(network: Network) -> tuple[str, str, str | None]:
    """(source, its kind, weights) as a run records them: a run directory or a model name."""
    weights = str(network.weights) if network.weights is not None else None
    if network.run is not None:
        return str(network.run), "run", weights
    return network.name, "model", weights


def _same_path(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    return a == b or Path(a).resolve() == Path(b).resolve()


def _resumed_options(
    out: str | Path, network: Network, given: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recorded ``finetune`` entry and config of the run in ``out``, after checking that this call
    continues it: the same source network and weights, and no option (``given``: those the caller
    set, None for the others) other than the recorded one.

    Raises:
        CheckpointError: ``out`` holds no checkpoint.
        ResumeMismatchError: ``out`` holds no fine-tuning run, or another source, weights or option
            (the message names every difference and the command that resumes it as recorded).
    """
    resume_config(out)  # raises when there is no checkpoint to resume
    run = RunDir(out)
    rec = run.finetune_record()
    if rec is None:
        raise ResumeMismatchError(
            f"{run.path} holds a `cnnzoo train` run, not a fine-tuning one; resume it with "
            f"`{run.resume_command()}`"
        )
    source, _, weights = _source_of(network)
    differ = []
    if not _same_path(source, rec.get("source")):
        differ.append(("source", rec.get("source"), source))
    if not _same_path(weights, rec.get("weights")):
        differ.append(("--weights", rec.get("weights"), weights))
    for key, flag in _OPTION_FLAGS.items():
        value = given.get(key)
        if value is not None and _comparable(value) != _comparable(rec.get(key)):
            differ.append((flag, rec.get(key), value))
    if differ:
        was = ", ".join(f"{what} {_shown(old)}" for what, old, _ in differ)
        now = ", ".join(f"{what} {_shown(new)}" for what, _, new in differ)
        raise ResumeMismatchError(
            f"--resume {run.path}: the run was fine-tuned with {was}, and this command gives {now}; "
            f"resume it as recorded with `{run.resume_command()}`, or give another --out for a new run"
        )
    return rec, run.read_config()


#: the options a fine-tuning run records, and their flags (for the messages of a mismatched resume)
_OPTION_FLAGS = {
    "mode": "--mode",
    "lr_decay": "--lr-decay",
    "unfreeze_every": "--unfreeze-every",
    "freeze": "--freeze",
}


def _comparable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple | list) else value


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "(none)"
    return "(none)" if value is None else str(value)


def finetune(
    network: Network,
    cfg: TrainConfig | None,
    *,
    mode: str | None = None,
    lr_decay: float | None = None,
    unfreeze_every: int | None = None,
    freeze: Sequence[str] | None = None,
    console: Any = None,
    progress: bool = True,
    report: bool = True,
    resume: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    overwrite: bool = False,
    stop_after_steps: int | None = None,
    on_step: Callable[[int, nn.Module], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune a pre-trained network on ``cfg.data`` (its ``--classes``, ``--train-per-class``...).

    Args:
        network: from :func:`cnnzoo.train.runs.open_network` (a run directory, or a model name with
            ``weights=FILE``); it is copied, not changed.
        cfg: the run's config; ``cfg.lr`` is the head's learning rate (see :data:`DEFAULT_LR` for the
            command line's defaults), ``cfg.model`` is replaced by the network's name, and a run's
            input size is kept unless ``cfg.input_size`` is set. Ignored with ``resume``.
        mode: one of :data:`MODES` (see the module docstring); default ``finetune``, or with
            ``resume`` the recorded one.
        lr_decay: ``progressive``/``gradual``: the lr factor per stage group below the head
            (default :data:`DEFAULT_LR_DECAY`).
        unfreeze_every: ``gradual``: epochs between two unfreezings (default 1).
        freeze: fnmatch patterns of parameter names frozen throughout (``conv1.*``, ``layer1.*``).
        console, progress, report: as :func:`cnnzoo.train.loop.fit`.
        resume: the run directory of an interrupted fine-tuning run of ``network``: continue it
            exactly, with its recorded mode, groups, learning rates, frozen set and unfreezing
            schedule (the options above left None take the recorded values; one given otherwise is
            an error).
        overrides: with ``resume``, config fields to change (as ``cnnzoo train --resume``).
        overwrite: replace a run that ``cfg.out`` already holds (else that is an error).
        stop_after_steps, on_step: (tests) as :func:`cnnzoo.train.loop.fit`.

    Returns:
        The run's summary (summary.json), with ``finetune``: ``mode``, ``source``, ``source_kind``
        (``run`` or ``model``), ``weights``, ``groups`` (name, lr, parameter count), ``freeze``,
        ``lr_decay``, ``unfreeze_every``.

    Raises:
        ConfigError: an impossible mode or option for this network (one line naming the fix).
        ResumeMismatchError: ``resume`` of a run with another source, weights or option, or of a run
            that was not fine-tuned.
    """
    from cnnzoo.train.loop import fit

    given = {"mode": mode, "lr_decay": lr_decay, "unfreeze_every": unfreeze_every, "freeze": freeze}
    if resume is not None:
        if overwrite:
            raise ConfigError("--resume continues the run in its directory; drop --overwrite (or --resume)")
        rec, saved = _resumed_options(resume, network, given)
        mode, lr_decay = rec["mode"], rec.get("lr_decay") if rec["mode"] in _STAGED else None
        unfreeze_every, freeze = rec.get("unfreeze_every") or 1, tuple(rec.get("freeze") or ())
        # the groups' lrs are the recorded run's; a --lr override scales them with the schedule
        # (loop.resume_state), as `cnnzoo train --resume --lr` does
        lr = float(saved["lr"])
        run_cfg = resume_config(resume, overrides)
    else:
        mode = "finetune" if mode is None else mode
        unfreeze_every = 1 if unfreeze_every is None else unfreeze_every
        freeze = tuple(freeze or ())
        if cfg is None:
            raise ConfigError("finetune needs a TrainConfig for a new run (cfg=None only with resume=DIR)")
        run_cfg = _config_for(network, cfg)
        lr = run_cfg.lr
    if not (isinstance(unfreeze_every, int) and unfreeze_every >= 1):
        raise ConfigError(f"--unfreeze-every must be >= 1 epoch, got {unfreeze_every}")
    source = network.model
    pinned = match_names(source, freeze) if freeze else []
    groups = plan_groups(source, mode, lr, lr_decay=lr_decay, pinned=pinned, name=network.name)
    every_param = [n for n, _ in source.named_parameters()]

    def frozen_at(epoch: int) -> list[str]:
        train = trainable_at(groups, mode, epoch, unfreeze_every)
        return [n for n in every_param if n not in train]

    def build_model(num_classes: int, in_chans: int) -> nn.Module:
        model = copy.deepcopy(source)
        model.reset_classifier(num_classes)  # a new head, drawn after the run's seed
        set_frozen(model.train(), frozen_at(0))
        return model

    def on_epoch_start(run: Any, state: Any) -> None:
        # from the epoch alone, so a resumed run unfreezes exactly what the uninterrupted one had
        if mode == "gradual":
            set_frozen(state.model, frozen_at(state.epoch))

    src, kind, weights = _source_of(network)
    record = {
        "finetune": {
            "mode": mode,
            "source": src,
            "source_kind": kind,
            "weights": weights,
            "groups": [{"name": g.name, "lr": g.lr, "params": len(g.params)} for g in groups],
            "freeze": list(freeze),
            "lr_decay": lr_decay if lr_decay is not None else DEFAULT_LR_DECAY.get(mode),
            "unfreeze_every": unfreeze_every if mode == "gradual" else None,
        }
    }
    if resume is not None and record["finetune"]["groups"] != rec.get("groups"):
        raise ResumeMismatchError(
            f"--resume {resume}: {network.name}'s parameter groups are now "
            f"{_groups_text(record['finetune']['groups'])}, and the run recorded "
            f"{_groups_text(rec.get('groups') or [])}; the source network changed since, so the "
            "checkpoint cannot continue: start a new run"
        )
    hooks = RunHooks(
        build_model=build_model,
        param_groups=lambda m: _optimizer_groups(m, groups, run_cfg.weight_decay, run_cfg.no_decay_bn_bias),
        on_epoch_start=on_epoch_start,
        record=record,
    )
    return fit(
        run_cfg,
        console=console,
        progress=progress,
        report=report,
        run_hooks=hooks,
        resume=resume,
        overrides=overrides,
        overwrite=overwrite,
        stop_after_steps=stop_after_steps,
        on_step=on_step,
    )


def _groups_text(groups: Sequence[dict[str, Any]]) -> str:
    return (
        ", ".join(f"{g.get('name')} ({g.get('params')} tensors, lr {g.get('lr'):g})" for g in groups)
        or "none"
    )
