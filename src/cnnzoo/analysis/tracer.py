"""The tracer behind :func:`cnnzoo.analysis.analyze`: one forward pass, recorded op by op.

A :class:`~torch.utils._python_dispatch.TorchDispatchMode` sees every aten op of the forward pass
(``+``, ``torch.add``, ``torch.cat`` and ``x.chunk`` written inside ``forward`` included, which
module hooks alone miss), and global module pre/post hooks say which module each op runs in. On
the meta device the pass computes shapes only, so batch 128 at 224×224 costs nothing. What the
tracer does with each op is a row of the op table (:mod:`cnnzoo.analysis.ops`).

Per tensor the tracer keeps, keyed by ``id`` (the tensors are kept alive, so ids are never reused
during a trace), its receptive field (:class:`~cnnzoo.analysis.fields.Field`) and the id of the
storage it aliases (views and in-place ops share their input's), so that rows which only alias
their input cost no activation memory. Every output of a multi-output op (``split``, ``chunk``,
``unbind``) is followed; of other ops (batch norm's statistics, max-pool's indices) only the first.

Rows are leaf modules (or modules with a leaf ``cost_type``, whose ops all count for them) and
functional ops that run in a composite module's own ``forward`` (residual adds, concats, splits,
flatten, functional activations).

The training step (:mod:`cnnzoo.analysis.step`) subclasses this tracer: same rows, same names, so
that what autograd saves and what the backward pass costs land on the rows of this table.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.utils._python_dispatch import TorchDispatchMode

from cnnzoo.analysis.fields import Field
from cnnzoo.analysis.kinds import COMPOSITE_KINDS, module_kind
from cnnzoo.analysis.ops import Geometry, OpCost, OpRule, linear_or_matmul, rule_of
from cnnzoo.errors import CnnzooError

__all__ = [
    "Tracer",
    "MetaShapes",
    "RawRow",
    "Frame",
    "TraceError",
    "Inputs",
    "Modules",
    "ModuleHooks",
    "TrainMode",
    "FrameOut",
    "frame_output",
    "trace",
    "first_tensor",
    "make_inputs",
]


#: ops whose own kernel this process has run (see :meth:`Tracer._run`)
_KERNELS_RUN: set[Any] = set()


class TraceError(RuntimeError):
    """The forward pass failed; ``module`` names the innermost module that was running."""

    def __init__(self, module: str, module_type: str, cause: BaseException) -> None:
        self.module = module
        self.module_type = module_type
        self.cause = cause
        where = f"inside module {module!r} ({module_type})" if module else "in the model's own forward"
        super().__init__(f"analysis failed {where}: {type(cause).__name__}: {cause}")


class FrameOut(NamedTuple):
    """What the table needs of a module call's output: its shape and its receptive field."""

    shape: tuple[int, ...]
    numel: int
    field: Field | None


@dataclass(eq=False, slots=True)
class Frame:
    """One call of a named module."""

    name: str
    module: nn.Module
    parent: Frame | None
    depth: int  # call depth below the root (root = 0)
    inputs: list[Tensor] = field(default_factory=list)
    out: Any = None
    first_row: int = -1
    summary: FrameOut | None = None  # kept by a tracer that lets go of ``out``


def frame_output(tracer: Tracer, frame: Frame) -> FrameOut:
    """The output of a module call: from its summary, or from the tensor itself."""
    if frame.summary is not None:
        return frame.summary
    o = first_tensor(frame.out)
    if o is None:
        return FrameOut((), 0, None)
    return FrameOut(tuple(o.shape), o.numel(), tracer.fields.get(id(o)))


@dataclass(eq=False, slots=True)
class RawRow:
    """One row as traced: a leaf module call or a functional op in a composite module's forward."""

    name: str
    kind: str  # row type
    chain: tuple[Frame, ...]  # enclosing (non-root) frames, outermost first; a module row's own last
    module: nn.Module | None
    op: str | None = None
    inputs: list[Tensor] = field(default_factory=list)
    out: Any = None
    mm_flops: int = 0  # convolutions and matrix products, 2 per multiply-add (FlopCounterMode's count)
    pool_flops: int = 0
    other_flops: int = 0  # everything else, by the per-op rules
    geom: Geometry | None = None  # of the first conv/pool op
    groups: int | None = None  # of the first convolution
    params: int = 0
    n_ops: int = 0

    @property
    def functional(self) -> bool:
        return self.module is None

    def charge(self, cost: OpCost) -> None:
        """Count one op that ran for this row."""
        self.mm_flops += cost.mm
        self.pool_flops += cost.pool
        self.other_flops += cost.other
        self.n_ops += 1
        if cost.geom is not None and self.geom is None:
            self.geom = cost.geom
        if cost.groups is not None and self.groups is None:
            self.groups = cost.groups


def first_tensor(x: Any) -> Tensor | None:
    """The first tensor in a (nested) output, or None."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, list | tuple):
        for v in x:
            t = first_tensor(v)
            if t is not None:
                return t
    if isinstance(x, dict):
        for v in x.values():
            t = first_tensor(v)
            if t is not None:
                return t
    return None


class Inputs(NamedTuple):
    """The forward's tensor arguments, by position and by name, batch dim included."""

    args: tuple[tuple[int, ...], ...]
    kwargs: dict[str, tuple[int, ...]]

    @classmethod
    def of(cls, shapes: Any) -> Inputs:
        """One shape ``(B, C, H, W)``, a sequence of shapes, or a mapping of name -> shape."""
        if isinstance(shapes, Inputs):
            return shapes
        if isinstance(shapes, Mapping):
            return cls((), {k: tuple(v) for k, v in shapes.items()})
        if shapes and isinstance(shapes[0], Sequence):
            return cls(tuple(tuple(v) for v in shapes), {})
        return cls((tuple(shapes),), {})

    def shapes(self) -> list[tuple[int, ...]]:
        return [*self.args, *self.kwargs.values()]


def make_inputs(inputs: Inputs, device: str, dtype: torch.dtype = torch.float32) -> tuple[list, dict]:
    """The tensors of ``inputs``: empty on meta, seeded random values on a real device."""
    gen = torch.Generator().manual_seed(0)

    def one(shape: tuple[int, ...]) -> Tensor:
        if device == "meta":
            return torch.empty(shape, device="meta", dtype=dtype)
        return torch.randn(shape, generator=gen, dtype=dtype)

    return [one(s) for s in inputs.args], {k: one(s) for k, s in inputs.kwargs.items()}


class Tracer(TorchDispatchMode):
    """Records rows while a model runs under it; see the module docstring.

    After the pass: ``rows`` (in call order), ``frames`` (every named module call), ``fields`` and
    ``alias`` (per tensor id), ``seen_params`` (ids of the parameters some row counted),
    ``class_typed`` (leaf modules that state no kind and were typed by their class name) and
    ``unsupported`` (op name -> the rows it ran in, for ops with no cost rule).
    """

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # nothing here is ever compiled: skip the per-op wrapper torch adds for torch.compile
        return False

    def __init__(self, names: dict[int, str], root: nn.Module) -> None:
        super().__init__()
        self.names = names
        self.root = root
        self.fields: dict[int, Field] = {}
        self.alias: dict[int, int] = {}
        self.keep: list[Tensor] = []
        self.rows: list[RawRow] = []
        self.frames: list[Frame] = []
        self.stack: list[Frame] = []
        self.name_stack: list[tuple[str, nn.Module]] = []
        self.row: RawRow | None = None
        self.row_depth = 0
        self.op_row: RawRow | None = None  # the row the last op was charged to
        self.op_rule: OpRule | None = None  # and its rule
        self.seen_params: set[int] = set()
        self.func_count: dict[tuple[str, str], int] = {}
        self.class_typed: list[str] = []
        self.unsupported: dict[str, list[str]] = {}
        self._rules: dict[Any, OpRule] = {}
        self._leaf: dict[int, bool] = {}

    # -- tensors -------------------------------------------------------------------------------
    def mark_input(self, x: Tensor) -> None:
        self.fields[id(x)] = Field.of_input(max(x.dim() - 2, 0))
        self.keep.append(x)

    def field_of(self, x: Any) -> Field | None:
        """The receptive field of a tensor (or of the first tensor of an output)."""
        t = first_tensor(x)
        return None if t is None else self.fields.get(id(t))

    def root_of(self, t: Tensor) -> int:
        i = id(t)
        return self.alias.get(i, i)

    # -- hooks -----------------------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        name = self.names.get(id(module))
        if name is None:
            return
        self.name_stack.append((name, module))
        if self.row_depth:
            self.row_depth += 1
            return
        if module is self.root:
            return
        parent = self.stack[-1] if self.stack else None
        frame = Frame(name, module, parent, (parent.depth if parent else 0) + 1)
        frame.inputs = [a for a in args if isinstance(a, Tensor)]
        frame.first_row = len(self.rows)
        self.stack.append(frame)
        self.frames.append(frame)
        kind = module_kind(module)
        leaf = self._leaf.get(id(module))
        if leaf is None:
            leaf = self._leaf[id(module)] = next(iter(module.children()), None) is None
        if leaf or (kind is not None and kind not in COMPOSITE_KINDS):
            self._open_module_row(name, module, kind, frame)

    def _open_module_row(self, name: str, module: nn.Module, kind: str | None, frame: Frame) -> None:
        if kind is None:  # a leaf of another library that states no kind
            kind = type(module).__name__.lower()
            self.class_typed.append(name)
        calls = self.func_count.get(("#", name), 0) + 1
        self.func_count[("#", name)] = calls
        row = RawRow(name if calls == 1 else f"{name}#{calls}", kind, tuple(self.stack), module)
        row.inputs = frame.inputs
        # a leaf's own parameters are its ``_parameters``: skip the recursive generator
        params = module._parameters.values() if self._leaf[id(module)] else module.parameters()
        n = 0
        seen = self.seen_params
        for p in params:
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
        row.params = n
        self.row = row
        self.row_depth = 1

    def post_hook(self, module: nn.Module, args: tuple, out: Any) -> None:
        if id(module) not in self.names:
            return
        if self.name_stack:
            self.name_stack.pop()
        if self.row_depth > 1:
            self.row_depth -= 1
            return
        if module is self.root:
            return
        frame = self.stack.pop()
        frame.out = out
        row = None
        if self.row_depth == 1:
            row = self.row
            row.out = out
            self.row = None
            self.row_depth = 0
            if row.kind != "identity":
                self.rows.append(row)
        self.closed(frame, row)

    def closed(self, frame: Frame | None, row: RawRow | None) -> None:
        """A module call (``frame``, with its ``row`` if it is one) or a functional row is complete."""

    def current_module(self) -> tuple[str, str]:
        if not self.name_stack:
            return "", type(self.root).__name__
        name, mod = self.name_stack[-1]
        return name, type(mod).__name__

    # -- ops -------------------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        rule = self._rules.get(func)
        if rule is None:
            rule = self._rules[func] = rule_of(func)
        out = self._run(func, rule, args, kwargs)
        row = self.row
        self.op_row = row
        self.op_rule = rule
        if not rule.supported:
            self._unsupported(func)
        ins = self._traced_inputs(args)
        if not ins:
            if row is not None and (rule.row == "conv" or rule.row is linear_or_matmul):
                self._charge_untraced(rule, args, kwargs, out, row)
            return out
        outs = [out] if isinstance(out, Tensor) else self._followed_outputs(rule, out)
        if not outs:
            return out
        self._follow(func, rule, args, kwargs, ins, outs)
        cost = rule.cost(args, kwargs, ins[0][0], outs[0])
        if row is not None:
            row.charge(cost)
        elif rule.row is not None:
            self._functional_rows(func, rule, args, ins, outs, cost)
        return out

    @staticmethod
    def _charge_untraced(rule: OpRule, args: tuple, kwargs: dict, out: Any, row: RawRow) -> None:
        """A product of tensors that do not derive from the input (a weight-only product) still
        counts for the row it runs in."""
        o = first_tensor(out)
        x = first_tensor(args)
        if o is None or x is None:
            return
        try:
            mm = rule.cost(args, kwargs, x, o).mm
        except Exception:  # never let bookkeeping break a trace
            mm = 0
        row.mm_flops += mm

    def _unsupported(self, func: Any) -> None:
        name = str(func._overloadpacket).removeprefix("aten.")
        where = self.name_stack[-1][0] if self.name_stack else "(model)"
        rows = self.unsupported.setdefault(name, [])
        if where not in rows:
            rows.append(where)

    @staticmethod
    def _run(func, rule: OpRule, args: tuple, kwargs: dict) -> Any:
        """The op's output: the table's meta shape where it has one, else torch's kernel.

        The first time this process runs torch's own kernel for an op, its cached first-call path
        may leave reference cycles holding the op's tensors (lazy imports raise and catch); with
        the collector paused they would outlive the op, so they are collected right away.
        """
        if rule.shape is not None and args:
            x = args[0]
            if not isinstance(x, Tensor) or x.is_meta:
                try:
                    out = rule.shape(args, kwargs)
                except Exception:  # a shape rule that does not fit: torch's own meta kernel decides
                    out = None
                if out is not None:
                    return out
        out = func(*args, **kwargs)
        if func not in _KERNELS_RUN:
            _KERNELS_RUN.add(func)
            if not gc.isenabled():
                gc.collect(0)
        return out

    def _traced_inputs(self, args: tuple) -> list[tuple[Tensor, Field]]:
        """The op's tensor inputs that derive from the network input, with their fields."""
        fields = self.fields
        ins: list[tuple[Tensor, Field]] = []
        for a in args:
            if isinstance(a, Tensor):
                f = fields.get(id(a))
                if f is not None:
                    ins.append((a, f))
            elif isinstance(a, list | tuple) and a and isinstance(a[0], Tensor):
                for b in a:
                    f = fields.get(id(b))
                    if f is not None:
                        ins.append((b, f))
        return ins

    @staticmethod
    def _followed_outputs(rule: OpRule, out: Any) -> list[Tensor]:
        """Of a tuple or list output: every tensor of a split, the first of anything else."""
        if rule.every_output:
            return [t for t in out if isinstance(t, Tensor)]
        t = first_tensor(out)
        return [] if t is None else [t]

    def _follow(self, func, rule: OpRule, args: tuple, kwargs: dict, ins: list, outs: list[Tensor]) -> None:
        """Give each followed output its receptive field and the storage it aliases."""
        x0, first = ins[0]
        if first.error:
            fields = [first] * len(outs)
        else:
            try:
                if rule.every_output:
                    fields = rule.field(func, args, kwargs, ins, outs)
                else:
                    fields = [rule.field(func, args, kwargs, ins, outs[0])]
            except Exception as e:  # never let bookkeeping break a trace
                fields = [Field.unknown(f"receptive field not tracked through {func}: {e}")] * len(outs)
        a0 = args[0] if args else None
        aliases = rule.aliases or func.is_view
        for o, f in zip(outs, fields, strict=True):
            self.fields[id(o)] = f
            self.keep.append(o)
            if aliases or o is x0 or o is a0:
                self.alias[id(o)] = self.root_of(a0 if isinstance(a0, Tensor) else x0)

    def _functional_rows(
        self, func, rule: OpRule, args: tuple, ins: list, outs: list[Tensor], cost: OpCost
    ) -> None:
        """An op in a composite module's own forward: a row per followed output."""
        pk = func._overloadpacket
        x0 = ins[0][0]
        parent = self.stack[-1] if self.stack else None
        prefix = f"{parent.name}." if parent else ""
        for i, o in enumerate(outs):
            kind = rule.row if isinstance(rule.row, str) else rule.row(pk, x0, o, cost)
            key = (prefix, kind)
            c = self.func_count.get(key, 0)
            self.func_count[key] = c + 1
            name = f"{prefix}{kind}" + (f"_{c}" if c else "")
            row = RawRow(name, kind, tuple(self.stack), None, op=str(func))
            row.inputs = [t for t, _ in ins]
            row.out = o
            if i == 0:  # the op's cost and parameters count once, on its first output's row
                row.charge(cost)
                row.params = self._new_params(args)
                self.op_row = row
            else:
                row.n_ops = 1
            self.rows.append(row)
            self.closed(None, row)

    def _new_params(self, args: tuple) -> int:
        n = 0
        for a in args:
            if isinstance(a, nn.Parameter) and id(a) not in self.seen_params:
                self.seen_params.add(id(a))
                n += a.numel()
        return n


def call(model: nn.Module, args: list, kwargs: dict, state: dict[str, Tensor] | None) -> Any:
    """``model(*args, **kwargs)``, on meta stand-ins for its weights when ``state`` is given."""
    if state is None:
        return model(*args, **kwargs)
    return torch.func.functional_call(model, state, tuple(args), kwargs, strict=False, tie_weights=True)


class Modules(NamedTuple):
    """A model's modules, walked once per analysis: by id (the hooks' lookup), in order, and their
    parameters and buffers as ``named_parameters()`` / ``named_buffers()`` give them."""

    names: dict[int, str]
    modules: list[nn.Module]
    custom_train: bool  # some module overrides ``train()`` (it must be called, not bypassed)
    params: list[tuple[str, nn.Parameter]]
    buffers: list[tuple[str, Tensor]]

    @classmethod
    def of(cls, model: nn.Module) -> Modules:
        named = list(model.named_modules())
        mods = [m for _, m in named]
        base = nn.Module.train
        return cls(
            {id(m): n for n, m in named},
            mods,
            any(type(m).train is not base for m in mods),
            _members(named, "_parameters"),
            _members(named, "_buffers"),
        )


def _members(named: list[tuple[str, nn.Module]], attr: str) -> list[tuple[str, Any]]:
    seen: set[int] = set()
    out = []
    for prefix, m in named:
        for k, v in getattr(m, attr).items():
            if v is not None and id(v) not in seen:
                seen.add(id(v))
                out.append((f"{prefix}.{k}" if prefix else k, v))
    return out


class TrainMode:
    """``model.train(training)`` for the duration of a ``with`` block; every flag restored after.

    ``nn.Module.train`` walks the tree through ``__setattr__``, a sixth of a trace's time on
    ResNet-152; where no module overrides ``train()``, the flags are set directly.
    """

    def __init__(self, model: nn.Module, modules: Modules, training: bool) -> None:
        self.model, self.modules, self.training = model, modules, training

    def __enter__(self) -> TrainMode:
        mods = self.modules.modules
        self.flags = [m.training for m in mods]
        if self.modules.custom_train:
            self.model.train(self.training)
        else:
            for m in mods:
                m.__dict__["training"] = self.training
        return self

    def __exit__(self, *exc: object) -> None:
        for m, t in zip(self.modules.modules, self.flags, strict=True):
            m.__dict__["training"] = t


class ModuleHooks:
    """The tracer's global module hooks for the duration of a ``with`` block."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def __enter__(self) -> ModuleHooks:
        self.handles = (
            register_module_forward_pre_hook(self.tracer.pre_hook),
            register_module_forward_hook(self.tracer.post_hook),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self.handles:
            h.remove()


def trace(
    model: nn.Module,
    shape: Any,
    device: str = "meta",
    state: dict[str, Tensor] | None = None,
    dtype: torch.dtype = torch.float32,
    modules: Modules | None = None,
) -> Tracer:
    """Run ``model`` once on inputs of ``shape`` under a :class:`Tracer`, in eval mode.

    ``shape`` is one shape (batch dim included), a sequence of shapes (positional inputs) or a
    mapping of argument name -> shape. ``state`` (from :func:`~cnnzoo.analysis.meta.meta_state`)
    runs a user's module on meta stand-ins for its weights. The train/eval flags are restored.

    Raises:
        TraceError: the forward pass failed (a :class:`~cnnzoo.errors.CnnzooError` passes as-is).
    """
    modules = modules or Modules.of(model)
    tracer = Tracer(modules.names, model)
    args, kwargs = make_inputs(Inputs.of(shape), device, dtype)
    for x in (*args, *kwargs.values()):
        tracer.mark_input(x)
    try:
        with TrainMode(model, modules, False), torch.no_grad(), ModuleHooks(tracer), tracer:
            call(model, args, kwargs, state)
    except CnnzooError:
        raise
    except Exception as e:
        name, typ = tracer.current_module()
        raise TraceError(name, typ, e) from e
    return tracer


class MetaShapes(TorchDispatchMode):
    """Run anything on meta tensors with the op table's shape rules instead of torch's meta kernels.

    The outputs are the same shapes (``tests/analysis/test_shapes.py`` checks every rule against
    torch's kernel); the point is speed where torch's kernels are Python: BatchNorm's meta kernel is
    a decomposition of ~5 ms, so a plain meta forward of ResNet-1202 takes seconds, and 5-10× less
    under this mode. Ops on real tensors, and ops without a rule, run torch's own kernel.

    >>> with MetaShapes():  # doctest: +SKIP
    ...     y = model(torch.empty(2, 3, 32, 32, device="meta"))
    """

    def __init__(self) -> None:
        super().__init__()
        self._rules: dict[Any, OpRule] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        rule = self._rules.get(func)
        if rule is None:
            rule = self._rules[func] = rule_of(func)
        return Tracer._run(func, rule, args, kwargs or {})
