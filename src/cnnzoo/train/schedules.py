"""Learning-rate schedules as one per-step multiplier of the optimizer's base lr.

Every schedule is a function ``factor(step)`` (times a plateau factor that only "plateau" changes),
so that one small :class:`Schedule` serves them all and resuming needs four integers and floats.

================  ==========================================================  ===========================
name              multiplier of the base lr                                   used by
================  ==========================================================  ===========================
``constant``      1                                                           quick experiments
``step``          ``gamma ** floor(epoch / step_size)`` (step_size may be a   GoogLeNet (0.96 every 8),
                  fraction: TF's ``exponential_decay(staircase=True)``)       EfficientNet (0.97 / 2.4)
``exponential``   ``gamma ** (epoch / step_size)``, continuous per step       CapsNet's release (0.96 per
                  (TF's ``exponential_decay``, ``staircase=False``)           2,000 steps)
``multistep``     ``gamma ** (#milestones passed)``, milestones in epochs     ResNet (÷10 at 30, 60 /
                  or iterations (``milestone_unit``)                          at 32k, 48k iterations)
``plateau``       ``× gamma`` when the validation loss stops improving        AlexNet, VGG ("÷10 when the
                                                                              validation error stopped
                                                                              improving")
``cosine``        ``min + (1 - min)·½(1 + cos πt)``, t from 0 to 1            SGDR (Loshchilov & Hutter
                                                                              2017) without restarts
``onecycle``      up from ``1/div_factor`` to 1 over ``pct_start`` of the     Smith & Topin 2018,
                  run, then down to ``1/(div·final_div)``                     torch's ``OneCycleLR``
================  ==========================================================  ===========================

**Warmup** (Goyal et al. 2017, §2.2) composes with every schedule: for the first ``warmup_steps``
steps the multiplier is scaled by a linear ramp from ``warmup_start_factor`` to 1. For
``cosine`` and ``onecycle`` the curve itself starts when the warmup ends (it spans the remaining
``total_steps - warmup_steps`` steps); for the others (``constant``, ``step``, ``exponential``,
``multistep``, ``plateau``) milestones stay where the recipe puts them (epoch 30 is epoch 30 of
the run) and the ramp just multiplies.

Details that differ between libraries, fixed here:

* ``step``, ``multistep`` (in epochs) read the epoch from the step count, ``epoch = step //
  steps_per_epoch``, so they change lr at the first step of the new epoch even mid-epoch resumes.
* ``plateau`` follows ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (mode ``min``, relative
  threshold): an epoch improves if ``metric < best · (1 - threshold)``; after ``patience`` epochs
  without improvement the *next* one without improvement multiplies lr by ``gamma`` and resets the
  count (patience=2: the third bad epoch in a row reduces). lr never goes below ``min_lr_factor``.
* ``onecycle`` is torch's ``OneCycleLR`` (cosine or linear anneal, three-phase off) for the lr; the
  momentum cycling of the paper is not done (the recipes keep momentum fixed).

Call :meth:`Schedule.step_batch` after every optimizer step and :meth:`Schedule.step_epoch` after
every epoch's evaluation (with the validation loss; only ``plateau`` uses it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from cnnzoo.errors import ConfigError

__all__ = ["SCHEDULES", "Schedule", "build_schedule", "lr_curve"]

SCHEDULES = ("constant", "step", "exponential", "multistep", "plateau", "cosine", "onecycle")
MILESTONE_UNITS = ("epoch", "iter")
_SHIFTED = ("cosine", "onecycle")  # the curve starts after the warmup


class Schedule:
    """A per-step lr multiplier applied to every parameter group's base lr.

    Build it with :func:`build_schedule`. Construction sets the optimizer's lr for step 0; each
    :meth:`step_batch` moves to the next step. ``state_dict``/``load_state_dict`` make a resumed run
    continue exactly (the plateau counters included).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        name: str,
        steps_per_epoch: int,
        total_steps: int,
        warmup_steps: int = 0,
        warmup_start_factor: float = 0.1,
        milestones_steps: Sequence[int] = (),
        gamma: float = 0.1,
        step_size_steps: int = 1,
        plateau_patience: int = 5,
        plateau_threshold: float = 1e-4,
        min_lr_factor: float = 0.0,
        onecycle_pct_start: float = 0.25,
        onecycle_div_factor: float = 25.0,
        onecycle_final_div_factor: float = 1e4,
        onecycle_anneal: str = "cos",
    ) -> None:
        self.optimizer = optimizer
        self.name = name
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.warmup_start_factor = warmup_start_factor
        self.milestones_steps = tuple(sorted(int(m) for m in milestones_steps))
        self.gamma = gamma
        self.step_size_steps = step_size_steps
        self.plateau_patience = plateau_patience
        self.plateau_threshold = plateau_threshold
        self.min_lr_factor = min_lr_factor
        self.onecycle_pct_start = onecycle_pct_start
        self.onecycle_div_factor = onecycle_div_factor
        self.onecycle_final_div_factor = onecycle_final_div_factor
        self.onecycle_anneal = onecycle_anneal
        # The base lrs: a group's "initial_lr" if a scheduler already set one, else its lr now.
        self.base_lrs = [float(g.setdefault("initial_lr", g["lr"])) for g in optimizer.param_groups]
        self.step = 0  # optimizer steps taken
        self.epoch = 0  # epochs finished (step_epoch calls)
        self.plateau_factor = 1.0
        self.plateau_best = math.inf
        self.plateau_bad_epochs = 0
        self._apply()

    # ------------------------------------------------------------------ the curve
    def _warmup(self, s: int) -> float:
        if s >= self.warmup_steps:
            return 1.0
        a = self.warmup_start_factor
        return a + (1.0 - a) * s / self.warmup_steps

    def _main(self, s: int) -> float:
        """The schedule's own multiplier at step ``s`` (steps since the warmup for shifted curves)."""
        name = self.name
        if name in ("constant", "plateau"):
            return 1.0
        if name == "step":
            return self.gamma ** (s // self.step_size_steps)
        if name == "exponential":
            return self.gamma ** (s / self.step_size_steps)
        if name == "multistep":
            return self.gamma ** sum(1 for m in self.milestones_steps if s >= m)
        span = max(1, self.total_steps - self.warmup_steps)
        if name == "cosine":
            t = min(1.0, s / span)
            m = self.min_lr_factor
            return m + (1.0 - m) * 0.5 * (1.0 + math.cos(math.pi * t))
        # onecycle, as torch's OneCycleLR: phase ends at pct_start * total - 1 and total - 1.
        start = 1.0 / self.onecycle_div_factor
        end = start / self.onecycle_final_div_factor
        peak_at = float(self.onecycle_pct_start * span) - 1.0
        last = float(span - 1)
        s = min(s, span - 1)
        if s <= peak_at:
            pct, a, b = (s / peak_at if peak_at > 0 else 1.0), start, 1.0
        else:
            pct, a, b = (s - peak_at) / max(last - peak_at, 1e-12), 1.0, end
        if self.onecycle_anneal == "linear":
            return a + (b - a) * pct
        return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1.0)

    def factor_at(self, step: int) -> float:
        """The multiplier at ``step`` with the current plateau factor (no side effects)."""
        s = max(0, step - self.warmup_steps) if self.name in _SHIFTED else step
        return self._warmup(step) * self._main(s) * self.plateau_factor

    @property
    def lr_factor(self) -> float:
        """The multiplier in effect now (for the next optimizer step)."""
        return self.factor_at(self.step)

    def get_last_lr(self) -> list[float]:
        """The lr of each parameter group now (torch scheduler-style)."""
        return [g["lr"] for g in self.optimizer.param_groups]

    def _apply(self) -> None:
        f = self.lr_factor
        for g, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            g["lr"] = base * f

    # ------------------------------------------------------------------ stepping
    def step_batch(self) -> None:
        """Advance one optimizer step (call right after ``optimizer.step()``)."""
        self.step += 1
        self._apply()

    def step_epoch(self, metric: float | None = None) -> None:
        """End of an epoch (after its evaluation). ``plateau`` needs ``metric`` (the validation loss)."""
        self.epoch += 1
        if self.name != "plateau":
            return
        if metric is None:
            raise ValueError("the plateau schedule needs the epoch's validation loss: step_epoch(metric)")
        metric = float(metric)
        if metric < self.plateau_best * (1.0 - self.plateau_threshold):
            self.plateau_best = metric
            self.plateau_bad_epochs = 0
        else:
            self.plateau_bad_epochs += 1
        if self.plateau_bad_epochs > self.plateau_patience:
            self.plateau_factor = max(self.plateau_factor * self.gamma, self.min_lr_factor)
            self.plateau_bad_epochs = 0
        self._apply()

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """Everything that changes during a run, plus the name to check on load."""
        return {
            "name": self.name,
            "step": self.step,
            "epoch": self.epoch,
            "base_lrs": list(self.base_lrs),
            "plateau_factor": self.plateau_factor,
            "plateau_best": self.plateau_best,
            "plateau_bad_epochs": self.plateau_bad_epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ConfigError(
                f"the checkpoint's schedule is {state.get('name')!r}, this run's is {self.name!r}; "
                "resume with the same schedule"
            )
        if len(state["base_lrs"]) != len(self.optimizer.param_groups):
            raise ConfigError(
                f"the checkpoint has {len(state['base_lrs'])} parameter group(s), the optimizer "
                f"{len(self.optimizer.param_groups)}; resume with the same no_decay_bn_bias"
            )
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.base_lrs = [float(b) for b in state["base_lrs"]]
        self.plateau_factor = float(state["plateau_factor"])
        self.plateau_best = float(state["plateau_best"])
        self.plateau_bad_epochs = int(state["plateau_bad_epochs"])
        for g, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            g["initial_lr"] = base
        self._apply()

    def scale_base_lrs(self, factor: float) -> None:
        """Multiply every group's base lr by ``factor`` (a resume with another ``--lr``): the curve
        goes on where it was, at the new peak."""
        self.base_lrs = [b * factor for b in self.base_lrs]
        for g, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            g["initial_lr"] = base
        self._apply()

    def __repr__(self) -> str:
        return (
            f"Schedule({self.name!r}, step={self.step}/{self.total_steps}, warmup={self.warmup_steps}, "
            f"lr_factor={self.lr_factor:.4g})"
        )


def build_schedule(
    optimizer: torch.optim.Optimizer,
    *,
    name: str,
    steps_per_epoch: int,
    total_steps: int,
    warmup_steps: int = 0,
    warmup_start_factor: float = 0.1,
    milestones: Sequence[float] = (),
    milestone_unit: str = "epoch",
    gamma: float = 0.1,
    step_size: float = 30,
    plateau_patience: int = 5,
    plateau_threshold: float = 1e-4,
    min_lr_factor: float = 0.0,
    onecycle_pct_start: float = 0.25,
    onecycle_div_factor: float = 25.0,
    onecycle_final_div_factor: float = 1e4,
    onecycle_anneal: str = "cos",
) -> Schedule:
    """A :class:`Schedule` by name (see the module docstring for the curves).

    Args:
        optimizer: its groups' current lr is the base (peak) lr.
        name: one of ``SCHEDULES``.
        steps_per_epoch: optimizer steps per epoch (converts epochs to steps).
        total_steps: steps in the whole run (the end of ``cosine`` and ``onecycle``).
        warmup_steps: linear warmup length in steps (0: none).
        warmup_start_factor: the multiplier at step 0 of the warmup.
        milestones: ``multistep`` milestones, in epochs or iterations per ``milestone_unit``.
        milestone_unit: ``"epoch"`` or ``"iter"``.
        gamma: the decay factor of ``step``, ``exponential`` (per ``step_size``), ``multistep`` and
            ``plateau``.
        step_size: ``step``'s and ``exponential``'s period in epochs (a fraction is fine: it is
            rounded to whole steps, as TF's ``decay_steps``).
        plateau_patience: epochs without improvement tolerated before a reduction.
        plateau_threshold: relative improvement that counts.
        min_lr_factor: ``cosine``'s final multiplier and ``plateau``'s floor.
        onecycle_pct_start: fraction of the (post-warmup) steps spent going up.
        onecycle_div_factor: the start is ``1 / div_factor`` of the peak.
        onecycle_final_div_factor: the end is ``1 / (div_factor · final_div_factor)`` of the peak.
        onecycle_anneal: ``"cos"`` (torch's default) or ``"linear"`` (a triangle).

    Raises:
        ConfigError: unknown names or impossible values, with the valid choices.
    """
    key = name.lower()
    if key not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    if steps_per_epoch < 1 or total_steps < 1:
        raise ConfigError(
            f"steps per epoch and total steps must be >= 1, got {steps_per_epoch}, {total_steps}"
        )
    if warmup_steps < 0:
        raise ConfigError(f"warmup steps must be >= 0, got {warmup_steps}")
    if key in _SHIFTED and warmup_steps >= total_steps:
        raise ConfigError(
            f"warmup ({warmup_steps} steps) leaves nothing of the {total_steps}-step {key} "
            "schedule; shorten warmup_epochs"
        )
    if not 0 < gamma <= 1:
        raise ConfigError(f"gamma must be in (0, 1], got {gamma}")
    if not 0 <= min_lr_factor <= 1:
        raise ConfigError(f"min_lr_factor must be in [0, 1], got {min_lr_factor}")
    if not 0 <= warmup_start_factor <= 1:
        raise ConfigError(f"warmup_start_factor must be in [0, 1], got {warmup_start_factor}")
    if milestone_unit not in MILESTONE_UNITS:
        raise ConfigError(
            f"milestone_unit must be one of {', '.join(MILESTONE_UNITS)}, got {milestone_unit!r}"
        )
    if key == "multistep" and not milestones:
        raise ConfigError("the multistep schedule needs milestones (e.g. milestones: [30, 60])")
    if key in ("step", "exponential") and step_size <= 0:
        raise ConfigError(f"step_size must be > 0 epochs (e.g. 2.4), got {step_size}")
    if key == "plateau" and plateau_patience < 0:
        raise ConfigError(f"plateau_patience must be >= 0, got {plateau_patience}")
    if key == "onecycle":
        if not 0 < onecycle_pct_start < 1:
            raise ConfigError(f"onecycle_pct_start must be in (0, 1), got {onecycle_pct_start}")
        if onecycle_div_factor < 1 or onecycle_final_div_factor < 1:
            raise ConfigError("onecycle div factors must be >= 1")
        if onecycle_anneal not in ("cos", "linear"):
            raise ConfigError(f"onecycle_anneal must be 'cos' or 'linear', got {onecycle_anneal!r}")
    scale = steps_per_epoch if milestone_unit == "epoch" else 1
    return Schedule(
        optimizer,
        name=key,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        warmup_steps=warmup_steps,
        warmup_start_factor=warmup_start_factor,
        milestones_steps=[round(m * scale) for m in milestones],
        gamma=gamma,
        step_size_steps=max(1, round(step_size * steps_per_epoch)),
        plateau_patience=plateau_patience,
        plateau_threshold=plateau_threshold,
        min_lr_factor=min_lr_factor,
        onecycle_pct_start=onecycle_pct_start,
        onecycle_div_factor=onecycle_div_factor,
        onecycle_final_div_factor=onecycle_final_div_factor,
        onecycle_anneal=onecycle_anneal,
    )


def lr_curve(name: str, *, metrics: Sequence[float] | None = None, **kw: Any) -> list[float]:
    """The multiplier used by each optimizer step of a whole run (``total_steps`` values).

    ``kw`` are :func:`build_schedule`'s keywords (``steps_per_epoch`` and ``total_steps`` needed).
    For ``plateau`` pass ``metrics``, one validation loss per epoch, fed to ``step_epoch`` at each epoch end.
    """
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = build_schedule(opt, name=name, **kw)
    spe = sched.steps_per_epoch
    out: list[float] = []
    for s in range(sched.total_steps):
        out.append(opt.param_groups[0]["lr"])
        sched.step_batch()
        if (s + 1) % spe == 0:
            e = (s + 1) // spe - 1
            sched.step_epoch(_need_metric(metrics, e) if sched.name == "plateau" else None)
    return out


def _need_metric(metrics: Sequence[float] | None, epoch: int) -> float:
    if metrics is None or epoch >= len(metrics):
        raise ValueError(f"lr_curve('plateau') needs one metric per epoch; epoch {epoch} has none")
    return float(metrics[epoch])
