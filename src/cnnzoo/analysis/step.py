"""One training step on the meta device: what autograd holds, when it lets go, and what backward costs.

The lecture's activation memory books a value and a gradient for every row at once; a real step
holds much less, and not what the rule says (a convolution keeps its *input*, max-pooling its int64
indices, in-place ReLU nothing new). So the analyzer runs the step itself, on meta tensors, under
a :class:`StepTracer` (the forward tracer plus bookkeeping of storages):

* **forward**, in train mode with autograd on, then the model's loss (its own ``loss`` method if it
  has one, as the trainer uses; else cross-entropy), then ``loss.backward()``: every op of the
  three phases passes through the same dispatch mode;
* **storages** are live from the op that creates them until the last tensor viewing them dies.
  Deaths are observed, not guessed: a weak reference per tensor says when Python (or autograd's
  graph) drops it, so intermediates die when the forward's code lets go of them, saved tensors
  when backward has used them, gradients when the next node has consumed them;
* **saved tensors** are observed with ``torch.autograd.graph.saved_tensors_hooks``: with hooks,
  autograd keeps the very tensor object it was given (also for an op's own outputs, which it would
  otherwise keep as a copy the tracer cannot see), and the unpack hook runs inside the node that
  uses it, which names the row;
* **transients**: the workspaces op kernels hold while they run (:attr:`OpRule.scratch
  <cnnzoo.analysis.ops.OpRule>`), and the loss and softmax buffers (ordinary storages here).

Parameters, buffers and the data batch are fixed storages (live all step); gradients of the
parameters appear when ``AccumulateGrad`` takes them, as in a step after
``zero_grad(set_to_none=True)``. :mod:`cnnzoo.analysis.memory` adds the optimizer and turns the
timeline into the peak.

Where the model's forward makes the same rows in train and eval mode
(:func:`same_in_train_and_eval`), this trace also makes the inference table's rows, as each row
closes and while its tensors still live: one forward instead of two.
"""

from __future__ import annotations

import weakref
from functools import partial
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import _pop_mode_temporarily

from cnnzoo.analysis.kinds import row_flops
from cnnzoo.analysis.ops import OpRule, no_cost, rule_of
from cnnzoo.analysis.report import LayerCost
from cnnzoo.analysis.rows import Units, traced_row
from cnnzoo.analysis.tracer import (
    Frame,
    Inputs,
    ModuleHooks,
    Modules,
    RawRow,
    TraceError,
    Tracer,
    TrainMode,
    call,
    first_tensor,
    frame_output,
    make_inputs,
)
from cnnzoo.errors import CnnzooError

__all__ = ["StepTracer", "StepTrace", "Fixed", "trace_step", "same_in_train_and_eval", "LOSS_ROW"]

#: the row the loss's FLOPs and saved tensors are booked on (it runs outside the model)
LOSS_ROW = "(loss)"
_ACCUMULATE_GRAD = 2**64 - 1  # the sequence number autograd gives AccumulateGrad nodes
_DETACH = torch.ops.aten.detach.default
_PARAMETER = nn.Parameter


class Fixed(NamedTuple):
    """Bytes of the storages live all step (each storage counted once), by kind."""

    params: int  # every parameter, trainable or frozen
    buffers: int  # BN running statistics and the like
    data: int  # the input batch and the targets
    grads: int  # one gradient per trainable parameter storage
    grad_sizes: tuple[int, ...]  # bytes of each trainable parameter, in order (the optimizer's loop)
    n_trainable: int  # trainable parameter values (the optimizer's update touches each)


class StepTrace(NamedTuple):
    """What one traced training step holds and costs (bytes exact; FLOPs 2 per multiply-add).

    Dynamic bytes are those above the fixed storages: activations, saved tensors, gradients,
    workspaces. ``timeline`` has the live dynamic bytes at every allocation (and every kernel's
    workspace moment) with gradients freed by ``zero_grad(set_to_none=True)``, ``kept`` the same
    when gradients are kept and zeroed in place.
    """

    timeline: list[int]
    kept: list[int]
    peak: int  # max of ``timeline``
    peak_kept: int  # max of ``kept`` (add ``fixed.grads``: the kept gradients)
    peak_at: str  # "backward of layer1.0.conv1", "forward, layer2.0.bn1", "loss"
    live_end: int  # live dynamic bytes after backward: the new gradients (and what the code keeps)
    live_end_kept: int  # the same with gradients kept (the new ones were added into them)
    fixed: Fixed
    saved: dict[str, int]  # row -> bytes autograd saved for its backward (on the last saver's row)
    saved_fixed: dict[str, int]  # row -> bytes of parameters and buffers it saved (live anyway)
    forward_flops: int  # the training forward by the table's rules (aux heads included)
    loss_flops: int  # the loss's forward (its backward is in ``backward_flops``, row ``(loss)``)
    backward_flops: dict[str | None, int]  # row -> FLOPs of its backward (None: not attributed)
    unsupported: dict[str, list[str]]  # op name -> where it ran
    loss: str  # which loss the step took
    tracer: StepTracer  # its rows, frames and (if it was given units) the table's rows

    @property
    def saved_total(self) -> int:
        return sum(self.saved.values())


class _Discard(list):
    """A list that keeps nothing (the base tracer's ``keep``)."""

    def append(self, item: Any) -> None:
        pass


class StepTracer(Tracer):
    """The forward :class:`~cnnzoo.analysis.tracer.Tracer`, plus the lifetimes of storages, saved
    tensors and the backward pass (module docstring). It keeps no tensor alive itself."""

    def __init__(
        self,
        names: dict[int, str],
        root: nn.Module,
        fixed: set[int],
        data: set[int],
        units: Units | None = None,
    ) -> None:
        super().__init__(names, root)
        self.keep = _Discard()  # nothing is kept alive here: fields and aliases go with their tensor
        self.units = units  # given: the table's rows are made here, while their tensors live
        self.costs: list[LayerCost] = []
        self.fixed = fixed  # storage keys live all step
        self.data = data  # of those, the input batch's (saved by the first layer, like any input)
        self.phase = "forward"
        self.live = 0
        self.taken = 0  # bytes of gradients AccumulateGrad took so far: the kept curve's offset
        self.peak = self.peak_kept = 0
        self._peak_at: tuple[str, str | None] = ("forward", None)
        self.timeline: list[int] = []
        self.kept: list[int] = []
        self._holders: dict[int, int] = {}
        self._sizes: dict[int, int] = {}
        self._key: dict[int, int] = {}
        self._refs: dict[int, Any] = {}
        self._taken: set[int] = set()
        self._prev: tuple[Tensor, str] | None = None
        self.node_rows: dict[int, str] = {}  # autograd node's sequence number -> row
        self.saved_last: dict[int, tuple[int, int]] = {}  # storage -> (last saver's seq, bytes)
        self.saved_fixed: dict[str, int] = {}
        self.forward_flops = 0
        self.loss_flops = 0
        self.backward_flops: dict[str | None, int] = {}

    # -- storages ------------------------------------------------------------------------------------
    def hold(self, t: Tensor) -> None:
        """Count ``t``'s storage as live (once per storage) until every tensor viewing it is gone."""
        i = id(t)
        if i in self._refs:
            return
        st = t.untyped_storage()
        k = st._cdata
        if k in self.fixed:
            return
        h = self._holders.get(k)
        if h is None:
            n = st.nbytes()
            self._sizes[k] = n
            self._holders[k] = 1
            self.live += n
            self.moment(0)
        else:
            self._holders[k] = h + 1
        self._key[i] = k
        self._refs[i] = weakref.ref(t, partial(self._release, i, k))

    def _release(self, i: int, k: int, _ref: Any) -> None:
        del self._refs[i], self._key[i]
        self.fields.pop(i, None)
        self.alias.pop(i, None)
        h = self._holders[k] - 1
        if h:
            self._holders[k] = h
        else:
            del self._holders[k]
            self.live -= self._sizes.pop(k)

    def moment(self, scratch: int) -> None:
        """Record the live bytes now, plus a kernel's workspace while it runs."""
        live = self.live + scratch
        kept = live - self.taken
        self.timeline.append(live)
        self.kept.append(kept)
        if live > self.peak:
            self.peak = live
            self._peak_at = self._where()
        if kept > self.peak_kept:
            self.peak_kept = kept

    def _where(self) -> tuple[str, str | None]:
        """(phase, row) of the moment; words only for the peak's (:attr:`peak_at`)."""
        if self.phase == "backward":
            return "backward", self._node_row()
        if self.phase == "loss":
            return "loss", None
        row = self.op_row
        return "forward", row.name if row is not None else (
            self.name_stack[-1][0] if self.name_stack else None
        )

    @property
    def peak_at(self) -> str:
        phase, row = self._peak_at
        if phase == "backward":
            return f"backward of {row}" if row else "backward"
        return f"{phase}, {row}" if row else phase

    def _hold_outputs(self, out: Any) -> None:
        if isinstance(out, Tensor):
            self.hold(out)
        elif isinstance(out, tuple | list):
            for o in out:
                if isinstance(o, Tensor):
                    self.hold(o)

    def closed(self, frame: Frame | None, row: RawRow | None) -> None:
        """Count a finished row's forward FLOPs by the table's rules (and make its table row, if
        this trace is the table's), then let go of its tensors."""
        if row is not None:
            o = first_tensor(row.out)
            self.forward_flops += row_flops(row, row.kind, o.numel() if o is not None else 0, len(row.inputs))
            if self.units is not None and row.kind != "identity":
                self.costs.append(traced_row(self, row, self.units))
            row.out, row.inputs = None, []
        if frame is not None:
            if self.units is not None:
                frame.summary = frame_output(self, frame)
            frame.out, frame.inputs = None, []

    # -- saved tensors -----------------------------------------------------------------------------------
    def pack(self, t: Tensor) -> Tensor:
        # ``isinstance(t, nn.Parameter)`` runs a metaclass check; a parameter's storage is fixed
        # anyway, so ``hold`` would skip it: the exact type is only a shortcut
        if type(t) is not _PARAMETER:
            self.hold(t)
        return t  # autograd keeps this very object: its lifetime is the saved tensor's

    def unpack(self, t: Tensor) -> Tensor:
        node = torch._C._current_autograd_node()
        if node is None:
            return t
        seq = node._sequence_nr()
        k = self._key.get(id(t))
        if k is None:  # a fixed storage: the data batch is saved like any input, weights are live anyway
            st = t.untyped_storage()
            k = st._cdata
            if k not in self.data:
                row = self.node_rows.get(seq)
                if row is not None:
                    self.saved_fixed[row] = self.saved_fixed.get(row, 0) + t.numel() * t.element_size()
                return t
            size = st.nbytes()
        else:
            size = self._sizes[k]
        last = self.saved_last.get(k)
        if last is None or seq > last[0]:
            self.saved_last[k] = (seq, size)
        return t

    def saved_by_row(self) -> dict[str, int]:
        """Each saved storage's bytes, on the row of the last op (in forward order) that saved it."""
        out: dict[str, int] = {}
        for seq, n in self.saved_last.values():
            row = self.node_rows.get(seq, "")
            out[row] = out.get(row, 0) + n
        return out

    # -- ops ---------------------------------------------------------------------------------------------
    def _resolve_prev(self) -> None:
        """The previous op's autograd node (set once its kernel returned) belongs to its row."""
        prev = self._prev
        if prev is not None:
            self._prev = None
            g = prev[0].grad_fn
            if g is not None:
                self.node_rows.setdefault(g._sequence_nr(), prev[1])

    def _node_row(self) -> str | None:
        node = torch._C._current_autograd_node()
        return None if node is None else self.node_rows.get(node._sequence_nr())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.phase != "forward":
            return self._step_op(func, args, kwargs)
        if self._prev is not None:
            self._resolve_prev()
        out = Tracer.__torch_dispatch__(self, func, types, args, kwargs)
        if isinstance(out, Tensor):
            self.hold(out)
            o = out
        else:
            self._hold_outputs(out)
            o = first_tensor(out)
        rule = self.op_rule
        if rule.scratch is not None:
            self.moment(rule.scratch(args, out))
        row = self.op_row
        if row is not None and o is not None:  # autograd gives the output its node once this returns
            self._prev = (o, row.name)
        return out

    def _step_op(self, func, args: tuple, kwargs: dict) -> Any:
        """An op of the loss or of the backward pass: no rows; its FLOPs go to the row its
        autograd node belongs to."""
        backward = self.phase == "backward"
        if backward:
            node = torch._C._current_autograd_node()
            seq = node._sequence_nr() if node is not None else -1
            if func is _DETACH and seq != _ACCUMULATE_GRAD:
                # a node unpacking a saved tensor: a view of a storage the saved tensor holds
                # for at least as long, no cost; the one place it matters is AccumulateGrad's
                return func(*args, **kwargs)
            row = self.node_rows.get(seq)
        rule = self._rules.get(func)
        if rule is None:
            rule = self._rules[func] = rule_of(func)
        out = self._run(func, rule, args, kwargs)
        if not backward:
            self._resolve_prev()
            seq, row = -1, LOSS_ROW
        if not rule.supported:
            where = (f"backward of {row}" if row else "backward") if backward else "the loss"
            self._unsupported_at(func, where)
        self._hold_outputs(out)
        if rule.scratch is not None:
            self.moment(rule.scratch(args, out))
        if seq == _ACCUMULATE_GRAD:
            self._took_grad(out)
        flops = 0 if rule.cost is no_cost else self._flops(rule, args, kwargs, out)
        if backward:
            self.backward_flops[row] = self.backward_flops.get(row, 0) + flops
        else:
            self.loss_flops += flops
            o = first_tensor(out)
            if o is not None:
                self._prev = (o, LOSS_ROW)
        return out

    def _took_grad(self, out: Any) -> None:
        """``AccumulateGrad`` took a parameter's gradient (a ``detach``, or a ``clone``). With
        gradients kept it would have been added into the existing ``.grad`` and freed, so from
        here on the kept curve no longer counts it."""
        o = first_tensor(out)
        k = self._key.get(id(o)) if o is not None else None
        if k is not None and k not in self._taken:
            self._taken.add(k)
            self.taken += self._sizes[k]

    @staticmethod
    def _flops(rule: OpRule, args: tuple, kwargs: dict, out: Any) -> int:
        o, x = first_tensor(out), first_tensor(args)
        if o is None or x is None:
            return 0
        try:
            return rule.cost(args, kwargs, x, o).flops
        except Exception:  # never let bookkeeping break a trace
            return 0

    def _unsupported_at(self, func: Any, where: str) -> None:
        name = str(func._overloadpacket).removeprefix("aten.")
        places = self.unsupported.setdefault(name, [])
        if where not in places:
            places.append(where)


# -- the step ----------------------------------------------------------------------------------------


def _targets(out: Tensor, tracer: StepTracer) -> Tensor:
    """Class indices shaped as the output without its class dim (cross-entropy's targets). A
    training loop has them before the step: they are data, live all step, not an allocation."""
    with _pop_mode_temporarily():
        y = torch.zeros((out.shape[0], *out.shape[2:]), dtype=torch.long, device=out.device)
    key = y.untyped_storage()._cdata
    tracer.fixed.add(key)
    tracer.data.add(key)
    return y


def _loss(model: nn.Module, out: Any, tracer: StepTracer) -> tuple[Tensor, str, list[Tensor]]:
    """The loss a training step takes of ``out``: the model's own ``loss`` (aux heads included)
    with class targets, as the trainer does; else cross-entropy of the logits; else, for an
    output without a class dim, its sum."""
    logits = getattr(out, "logits", out)
    logits = logits if isinstance(logits, Tensor) else first_tensor(out)
    if logits is None:
        raise CnnzooError("the model's output holds no tensor, so no training step can be traced")
    if logits.dim() >= 2 and logits.is_floating_point():
        y = _targets(logits, tracer)
        custom = getattr(model, "loss", None)
        if callable(custom):
            return custom(out, y), f"{type(model).__name__}.loss", [y]
        return F.cross_entropy(logits, y), "cross-entropy", [y]
    return logits.sum(), "the sum of the output", []


def _storages(tensors: list[Tensor]) -> dict[int, int]:
    out: dict[int, int] = {}
    for t in tensors:
        st = t.untyped_storage()
        out.setdefault(st._cdata, st.nbytes())
    return out


def trace_step(
    model: nn.Module,
    inputs: Inputs,
    state: dict[str, Tensor] | None = None,
    dtype: torch.dtype = torch.float32,
    modules: Modules | None = None,
    units: Units | None = None,
) -> StepTrace:
    """Trace one training step of ``model`` on meta inputs (module docstring).

    ``state`` (meta stand-ins by name, :func:`~cnnzoo.analysis.meta.meta_state`) runs a user's
    module without touching it; a zoo model built on meta runs as it is. Train/eval flags are
    restored and the gradients the step leaves on meta parameters are dropped. With ``units``,
    the trace also makes the table's rows (``tracer.costs``), for a model whose forward is the
    same in train and eval mode (:func:`same_in_train_and_eval`).

    Raises:
        TraceError: the step failed (a :class:`~cnnzoo.errors.CnnzooError` passes as-is).
    """
    args, kwargs = make_inputs(inputs, "meta", dtype)
    data = [*args, *kwargs.values()]
    modules = modules or Modules.of(model)
    if state is None:
        params = [p for _, p in modules.params]
        buffers = [b for _, b in modules.buffers]
    else:
        params = [t for t in state.values() if isinstance(t, nn.Parameter)]
        buffers = [t for t in state.values() if not isinstance(t, nn.Parameter)]
    p_st, b_st, d_st = _storages(params), _storages(buffers), _storages(data)
    grads = _storages([p for p in params if p.requires_grad])
    tracer = StepTracer(modules.names, model, {*p_st, *b_st, *d_st}, set(d_st), units)
    for x in data:
        tracer.mark_input(x)
    try:
        with TrainMode(model, modules, True), torch.enable_grad(), ModuleHooks(tracer), tracer:
            with torch.autograd.graph.saved_tensors_hooks(tracer.pack, tracer.unpack):
                out = call(model, args, kwargs, state)
                tracer.phase = "loss"
                loss, how, targets = _loss(model, out, tracer)
                tracer._resolve_prev()
                tracer.phase = "backward"
                if loss.requires_grad:
                    loss.backward()
                live_end, live_end_kept = tracer.live, tracer.live - tracer.taken
                del out, loss
    except CnnzooError:
        raise
    except Exception as e:
        name, typ = tracer.current_module()
        raise TraceError(name, typ, e) from e
    finally:
        for p in params:
            p.grad = None
    fixed = Fixed(
        params=sum(p_st.values()),
        buffers=sum(n for k, n in b_st.items() if k not in p_st),
        data=sum(d_st.values()) + sum(t.numel() * t.element_size() for t in targets),
        grads=sum(grads.values()),
        grad_sizes=tuple(grads.values()),
        n_trainable=sum(p.numel() for p in params if p.requires_grad),
    )
    return StepTrace(
        timeline=tracer.timeline,
        kept=tracer.kept,
        peak=tracer.peak,
        peak_kept=tracer.peak_kept,
        peak_at=tracer.peak_at,
        live_end=live_end,
        live_end_kept=live_end_kept,
        fixed=fixed,
        saved=tracer.saved_by_row(),
        saved_fixed=tracer.saved_fixed,
        forward_flops=tracer.forward_flops,
        loss_flops=tracer.loss_flops,
        backward_flops=tracer.backward_flops,
        unsupported=tracer.unsupported,
        loss=how,
        tracer=tracer,
    )


# -- one trace for the table and the step ------------------------------------------------------------

#: torch modules whose train-mode forward differs from eval only inside their own row: batch norm
#: uses the batch's statistics, dropout draws a mask (the row's type, FLOPs rule, output and
#: receptive field are the same in both modes)
_SAME_ROWS = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.modules.dropout._DropoutNd,
)
#: methods that run outside the forward pass
_NOT_FORWARD = {"train", "eval", "__init__", "reset_parameters", "extra_repr", "__repr__", "cost_details"}
#: names whose reading lets a forward depend on the mode or on autograd being on (the table's trace
#: has it off, the step's on): ``self.training``, ``torch.is_grad_enabled()``, ``x.requires_grad``,
#: activation checkpointing
_MODE_NAMES = {"training", "is_grad_enabled", "requires_grad", "checkpoint", "grad_checkpointing"}
_mode_free: dict[type, bool] = {}


def _reads_training(code: Any) -> bool:
    names = set(code.co_names)
    if names & _MODE_NAMES or any(c in _MODE_NAMES for c in code.co_consts if isinstance(c, str)):
        return True
    return any(_reads_training(c) for c in code.co_consts if hasattr(c, "co_names"))


def _class_mode_free(cls: type) -> bool:
    """Whether no method of ``cls`` (its bases up to ``nn.Module`` included) reads ``training``."""
    free = _mode_free.get(cls)
    if free is None:
        free = True
        for klass in cls.__mro__:
            if klass in (nn.Module, object) or (
                issubclass(klass, _SAME_ROWS) and klass.__module__.startswith("torch.nn")
            ):
                continue
            for name, v in vars(klass).items():
                fn = getattr(v, "__func__", v)
                code = getattr(fn, "__code__", None)
                if code is not None and name not in _NOT_FORWARD and _reads_training(code):
                    free = False
                    break
            if not free:
                break
        _mode_free[cls] = free
    return free


def same_in_train_and_eval(modules: Modules) -> bool:
    """Whether the model's forward runs the same rows in train and eval mode, with autograd on or
    off, so that the step's train-mode forward can also make the (inference) table: no module's
    code reads ``training`` (GoogLeNet's auxiliary heads, stochastic depth, functional dropout do),
    ``is_grad_enabled``, ``requires_grad`` or checkpointing, torch's batch norm and dropout apart.
    A static check of the code (methods other than ``__init__`` and the like): a model that decides
    otherwise (a global flag) is not seen, which is why it errs on the side of two traces.
    """
    return all(_class_mode_free(c) for c in {type(m) for m in modules.modules})
