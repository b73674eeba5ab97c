"""The uniform model interface shared by every zoo model.

timm's convention, and its method names, so that timm users know their way around:

* ``forward_features(x)`` maps images to the last feature map, ``forward_head(x, pre_logits=)``
  maps features to logits, and ``forward`` chains the two. Every entry point checks its input
  once (:class:`InputShapeError`); families write only the computation.
* ``feature_info``: the stages, as :class:`FeatureInfo` rows; ``forward_intermediates`` returns
  their outputs.
* ``head_name``: the classifier; ``get_classifier()`` and ``reset_classifier(num_classes)``.
* ``stage_groups()``: the parameter names by stage, from the input up, for layer-wise learning
  rates and gradual unfreezing.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.registry import check_count

__all__ = [
    "ZooModel",
    "FeatureInfo",
    "InputShapeError",
    "StageIndexError",
    "ModelInterfaceError",
]


class InputShapeError(CnnzooError, ValueError):
    """An input whose shape the model cannot take; the message says what it expects."""


class StageIndexError(CnnzooError, IndexError):
    """Stage indices outside a model's stages; the message gives the valid range."""


class ModelInterfaceError(CnnzooError, TypeError):
    """A model that does not declare what an operation needs (stages, a classifier)."""


class FeatureInfo(NamedTuple):
    """One stage of a model, as timm's ``feature_info`` describes it.

    Attributes:
        module: qualified name of the module whose output is the stage's output (``layer2``,
            ``features.8``); ``model.get_submodule(module)`` finds it.
        channels: channel count of that output.
        reduction: its total stride relative to the input (4 for a map at 1/4 of the input side).
    """

    module: str
    channels: int
    reduction: int


class _StopForward(BaseException):
    """Raised by the hook of the last requested stage to end the forward (``stop_early``).

    A BaseException, so that no ``except Exception`` inside a model can swallow it.
    """

    def __init__(self, output: Tensor) -> None:
        super().__init__()
        self.output = output


def _is_symbolic_trace() -> bool:
    from torch.fx import _symbolic_trace as st

    fn = getattr(st, "is_fx_symbolic_tracing", None) or getattr(st, "is_fx_tracing", None)
    return bool(fn and fn())


def _checked_forward_features(fn: Any) -> Any:
    """Wrap a family's ``forward_features`` so that it checks its input first."""

    @functools.wraps(fn)
    def forward_features(self: ZooModel, x: Tensor, *args: Any, **kwargs: Any) -> Any:
        self.check_input(x)
        return fn(self, x, *args, **kwargs)

    forward_features._checks_input = True  # type: ignore[attr-defined]
    return forward_features


def _in_tree(module: str, root: str) -> bool:
    """``module`` is ``root`` or one of its descendants (qualified names)."""
    return module == root or module.startswith(root + ".")


class ZooModel(nn.Module):
    """Base class of every zoo model: ``forward(x) = forward_head(forward_features(x))``.

    A family's constructor sets:

    * ``num_classes`` and ``in_chans``: validated on assignment (ints ≥ 1; anything else is a
      :class:`~cnnzoo.errors.ConfigError`), so set them before building layers from them;
    * ``min_input_size`` where it depends on the options (else :func:`cnnzoo.create_model` sets
      the registry config's);
    * ``feature_info``: one :class:`FeatureInfo` per stage, from the input up. A stage is the
      model's computation at one resolution, and its output is the **last layer at that
      resolution** (after its activation, before the downsampling that starts the next stage).
      Name the block where the stage is one (ResNet's ``layer1``-``layer4``; what runs before
      the first block is then the stem), or the last, parameter-free layer where the stage is a
      run of layers (VGG's last ReLU before each max-pool, AlexNet's LRN). Reductions never
      decrease. The module must run exactly once in ``forward_features``, and nothing may modify
      its output in place afterwards;
    * ``head_name``: the qualified name of the classifier layer (an ``nn.Linear`` or ``nn.Conv2d``
      whose output has ``num_classes`` channels: ``fc``, ``classifier.6``); ``aux_head_names``
      names auxiliary classifier modules (GoogLeNet's ``aux1``, ``aux2``), each with its own
      ``head_name``.

    It implements ``forward_features(x)`` and ``forward_head(x, *, pre_logits=False)``, and only
    those: the base wraps every ``forward_features`` defined by a subclass so that it runs
    :meth:`check_input` first. ``forward`` therefore checks once (through ``forward_features``),
    and ``forward_features`` and ``forward_intermediates`` check as ``forward`` does. The check
    reads only shapes, so it adds no op to a trace, and it is skipped under ``torch.fx`` and
    ``torch.jit`` tracing.

    A model whose training needs more than ``loss(model(x), y)`` says so with two flags, which the
    trainer reads: ``train_forward_takes_target`` (training calls ``forward(x, target=y)``: CapsNet
    masks its decoder by the true class) and ``loss_takes_inputs`` (training calls
    ``loss(output, y, inputs=x)``: CapsNet's reconstruction error). Evaluation calls ``forward(x)``.

    Everything else is derived here from those declarations: :meth:`forward_intermediates`,
    :meth:`get_classifier`, :meth:`reset_classifier`, :meth:`stage_groups`. A family whose
    classifier is neither a Linear nor a Conv2d overrides :meth:`_new_classifier`.
    """

    #: the analyzer's row type of a whole model used inside another (composite: its rows show)
    cost_type = "container"
    min_input_size: int | None = None
    feature_info: list[FeatureInfo]
    head_name: str
    #: qualified names of auxiliary classifier modules; each declares its own ``head_name``
    aux_head_names: tuple[str, ...] = ()
    #: training calls ``forward(x, target=y)`` (the output depends on the labels)
    train_forward_takes_target: bool = False
    #: training calls ``loss(output, y, inputs=x)`` (the loss reads the inputs)
    loss_takes_inputs: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("forward_features")
        if fn is not None and not getattr(fn, "_checks_input", False):
            cls.forward_features = _checked_forward_features(fn)  # type: ignore[method-assign]

    # -- num_classes and in_chans, validated ---------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Classifier outputs (an int ≥ 1, checked when set)."""
        return self._num_classes

    @num_classes.setter
    def num_classes(self, value: int) -> None:
        self._num_classes = check_count("num_classes", value, type(self).__name__)

    @property
    def in_chans(self) -> int:
        """Input channels (an int ≥ 1, checked when set)."""
        return self._in_chans

    @in_chans.setter
    def in_chans(self, value: int) -> None:
        self._in_chans = check_count("in_chans", value, type(self).__name__)

    # -- the two halves ----------------------------------------------------------------------
    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))  # forward_features checks x

    def _display_name(self) -> str:
        cfg = getattr(self, "default_cfg", None)
        return (cfg.name if cfg is not None else "") or type(self).__name__

    def check_input(self, x: Tensor) -> None:
        """Raise :class:`InputShapeError` for a wrong rank, channel count or too small an image."""
        if not isinstance(x, Tensor) or _is_symbolic_trace() or torch.jit.is_tracing():
            return
        name = self._display_name()
        if x.dim() != 4:
            raise InputShapeError(
                f"{name} expects a batch of images shaped (N, C, H, W), got a {x.dim()}-d tensor "
                f"of shape {tuple(x.shape)}; add a batch dimension with x.unsqueeze(0)."
            )
        if x.shape[1] != self.in_chans:
            raise InputShapeError(
                f"{name} expects {self.in_chans} input channel(s), got {x.shape[1]} "
                f"(input shape {tuple(x.shape)}). Build it with in_chans={x.shape[1]} "
                f"or convert the images to {self.in_chans} channel(s)."
            )
        m = self.min_input_size
        if m is not None and (x.shape[2] < m or x.shape[3] < m):
            raise InputShapeError(
                f"{name} needs inputs of at least {m}x{m} pixels, got {x.shape[2]}x{x.shape[3]}. "
                f"Resize or pad the images to {m}x{m} or larger."
            )

    @torch.no_grad()
    def num_params(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- stages ------------------------------------------------------------------------------
    def _require_feature_info(self) -> list[FeatureInfo]:
        info = getattr(self, "feature_info", None)
        if not info:
            raise ModelInterfaceError(
                f"{self._display_name()} declares no stages (feature_info), so it has no stage outputs "
                "or stage groups; set self.feature_info in its constructor (see docs/adding-a-model.md)."
            )
        return info

    def _take_indices(self, indices: int | Sequence[int] | None) -> list[int]:
        """Stage indices as sorted non-negative ints: all, the last ``n``, or the given ones."""
        n = len(self._require_feature_info())
        if indices is None:
            return list(range(n))

        def bad() -> StageIndexError:
            return StageIndexError(
                f"{self._display_name()} has {n} stages: pass indices as stage numbers in 0..{n - 1} "
                f"(or -{n}..-1), or an int in 1..{n} for the last stages; got indices={indices!r}."
            )

        def is_int(v: Any) -> bool:
            return isinstance(v, numbers.Integral) and not isinstance(v, bool)

        if is_int(indices):
            if not 1 <= int(indices) <= n:  # type: ignore[arg-type]
                raise bad()
            return list(range(n - int(indices), n))  # type: ignore[arg-type]
        if isinstance(indices, (str, bytes)) or not isinstance(indices, Sequence) or not indices:
            raise bad()
        if not all(is_int(i) and -n <= i < n for i in indices):
            raise bad()
        return sorted({int(i) % n for i in indices})

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        *,
        stop_early: bool = False,
        intermediates_only: bool = False,
    ) -> tuple[Tensor, list[Tensor]] | list[Tensor]:
        """The outputs of the stages of :attr:`feature_info`, as timm's ``forward_intermediates``.

        Args:
            x: the input batch, checked as ``forward`` checks it.
            indices: ``None`` for every stage, an int ``n`` for the last ``n``, or a sequence of
                stage indices (negative counts from the last).
            stop_early: end the forward right after the last requested stage (the layers after
                it do not run); the final features are then that stage's output.
            intermediates_only: return only the list.

        Returns:
            ``(final_features, [stage outputs])``, the stages in network order (each once), and
            ``final_features`` what ``forward_features`` returns; or only the list.

        Raises:
            StageIndexError: for indices outside the stages; the message gives the range.
        """
        take = self._take_indices(indices)
        info = self._require_feature_info()
        outputs: dict[int, Tensor] = {}

        def hook_for(i: int) -> Any:
            def hook(module: nn.Module, args: Any, out: Tensor) -> None:
                if i in outputs:
                    raise ModelInterfaceError(
                        f"{self._display_name()}'s stage module {info[i].module!r} ran twice in one "
                        "forward; feature_info must name modules that run once."
                    )
                outputs[i] = out
                if stop_early and i == take[-1]:
                    raise _StopForward(out)

            return hook

        handles = [self.get_submodule(info[i].module).register_forward_hook(hook_for(i)) for i in take]
        try:
            final = self.forward_features(x)
        except _StopForward as stop:
            final = stop.output
        finally:
            for h in handles:
                h.remove()
        missing = [info[i].module for i in take if i not in outputs]
        if missing:
            raise ModelInterfaceError(
                f"{self._display_name()}'s stage modules {missing} did not run in forward_features; "
                "feature_info must name modules on the forward_features path."
            )
        stages = [outputs[i] for i in take]
        return stages if intermediates_only else (final, stages)

    # -- the classifier ----------------------------------------------------------------------
    def _require_head_name(self) -> str:
        name = getattr(self, "head_name", None)
        if not name:
            raise ModelInterfaceError(
                f"{self._display_name()} declares no classifier (head_name); set self.head_name in its "
                "constructor to the qualified name of its last layer (see docs/adding-a-model.md)."
            )
        return name

    def classifier_names(self) -> list[str]:
        """Qualified names of every classifier layer: ``head_name``, then each aux head's."""
        names = [self._require_head_name()]
        for aux in self.aux_head_names:
            names.append(f"{aux}.{self.get_submodule(aux).head_name}")
        return names

    def get_classifier(self) -> nn.Module:
        """The classifier layer (``head_name``): its output has ``num_classes`` channels."""
        return self.get_submodule(self._require_head_name())

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier (and every aux classifier) with a fresh one of ``num_classes``.

        Each replacement is a freshly initialised module of the same kind and input width
        (PyTorch's default init, as timm's ``reset_classifier``), on the old one's device and
        dtype; every other parameter is left as it is. ``num_classes`` and ``default_cfg`` follow.

        Raises:
            ConfigError: for a ``num_classes`` that is not an int ≥ 1.
        """
        num_classes = check_count("num_classes", num_classes, self._display_name())
        for name in self.classifier_names():
            self.set_submodule(name, self._new_classifier(self.get_submodule(name), num_classes))
        self.num_classes = num_classes
        cfg = getattr(self, "default_cfg", None)
        if cfg is not None:
            self.default_cfg = replace(cfg, num_classes=num_classes)

    def _new_classifier(self, old: nn.Module, num_classes: int) -> nn.Module:
        """A fresh classifier like ``old`` with ``num_classes`` outputs (the hook families override)."""
        w = getattr(old, "weight", None)
        factory = dict(device=w.device, dtype=w.dtype) if isinstance(w, Tensor) else {}
        if isinstance(old, nn.Linear):
            return nn.Linear(old.in_features, num_classes, bias=old.bias is not None, **factory)
        if isinstance(old, nn.Conv2d) and old.groups == 1:
            return nn.Conv2d(
                old.in_channels, num_classes, old.kernel_size, old.stride, old.padding, old.dilation,
                bias=old.bias is not None, padding_mode=old.padding_mode, **factory,
            )  # fmt: skip
        raise ModelInterfaceError(
            f"{self._display_name()}'s classifier is a {type(old).__name__}; reset_classifier replaces "
            "nn.Linear and ungrouped nn.Conv2d heads, so override _new_classifier for this one."
        )

    # -- parameter groups --------------------------------------------------------------------
    def stage_groups(self) -> list[tuple[str, list[str]]]:
        """Parameter names grouped by stage, from the input up, for layer-wise learning rates.

        Groups, in order (a group with no parameters is left out):

        * ``"stem"``: the parameters registered before the first stage's module, when that module
          holds parameters itself (ResNet's ``conv1``/``bn1`` before ``layer1``). When the first
          stage is a parameter-free tap (a ReLU, pool or LRN, as in VGG), the layers before the
          tap are that stage;
        * ``"stage0"`` … ``"stage{n-1}"``: stage ``i`` holds the parameters registered after
          stage ``i-1``'s module and up to the end of stage ``i``'s (``feature_info[i]``);
        * ``"neck"``: what lies between the last stage and the classifier (VGG's and AlexNet's
          fc6/fc7, LeNet's F6, GoogLeNet's aux heads but for their last layers);
        * ``"head"``: the classifier layers that :meth:`reset_classifier` replaces.

        The rule reads the module tree in registration order, so a family registers its modules
        in the order ``forward`` runs them (a test holds every model to it). Every parameter is in
        exactly one group; names are those of ``named_parameters()``.
        """
        info = self._require_feature_info()
        heads = self.classifier_names()
        pos = {name: i for i, (name, _) in enumerate(self.named_modules())}
        ends = [max(p for n, p in pos.items() if _in_tree(n, s.module)) for s in info]
        first = self.get_submodule(info[0].module)
        stem_before = pos[info[0].module] if any(True for _ in first.parameters()) else -1
        order = ["stem", *(f"stage{i}" for i in range(len(info))), "neck", "head"]
        groups: dict[str, list[str]] = {g: [] for g in order}
        for pname, _ in self.named_parameters():
            owner = pname.rpartition(".")[0]
            if any(_in_tree(owner, h) for h in heads):
                groups["head"].append(pname)
            elif any(_in_tree(owner, a) for a in self.aux_head_names):
                groups["neck"].append(pname)
            elif pos[owner] < stem_before:
                groups["stem"].append(pname)
            else:
                stage = next((i for i, end in enumerate(ends) if pos[owner] <= end), None)
                groups["neck" if stage is None else f"stage{stage}"].append(pname)
        return [(g, groups[g]) for g in order if groups[g]]
