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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from cnnzoo.analysis.fields import Field
from cnnzoo.analysis.kinds import COMPOSITE_KINDS, module_kind
from cnnzoo.analysis.ops import Geometry, OpCost, OpRule, rule_of
from cnnzoo.errors import CnnzooError

__all__ = ["Tracer", "RawRow", "Frame", "TraceError", "trace", "first_tensor"]


class TraceError(RuntimeError):
    """The forward pass failed; ``module`` names the innermost module that was running."""

    def __init__(self, module: str, module_type: str, cause: BaseException) -> None:
        self.module = module
        self.module_type = module_type
        self.cause = cause
        where = f"inside module {module!r} ({module_type})" if module else "in the model's own forward"
        super().__init__(f"analysis failed {where}: {type(cause).__name__}: {cause}")


@dataclass(eq=False)
class Frame:
    """One call of a named module."""

    name: str
    module: nn.Module
    parent: Frame | None
    depth: int  # call depth below the root (root = 0)
    inputs: list[Tensor] = field(default_factory=list)
    out: Any = None
    first_row: int = -1


@dataclass(eq=False)
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
    params: int = 0
    n_ops: int = 0

    @property
    def functional(self) -> bool:
        return self.module is None

    def charge(self, mm: int, cost: OpCost) -> None:
        """Count one op that ran for this row."""
        self.mm_flops += mm
        self.pool_flops += cost.pool
        self.other_flops += cost.other
        self.n_ops += 1
        if cost.geom is not None and self.geom is None:
            self.geom = cost.geom


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


class Tracer(TorchDispatchMode):
    """Records rows while a model runs under it; see the module docstring.

    After the pass: ``rows`` (in call order), ``frames`` (every named module call), ``fields`` and
    ``alias`` (per tensor id), ``seen_params`` (ids of the parameters some row counted), and
    ``class_typed`` (leaf modules that state no kind and were typed by their class name).
    """

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
        self.seen_params: set[int] = set()
        self.func_count: dict[tuple[str, str], int] = {}
        self.class_typed: list[str] = []
        self._rules: dict[Any, OpRule] = {}

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
        leaf = next(iter(module.children()), None) is None
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
        n = 0
        for p in module.parameters():
            if id(p) not in self.seen_params:
                self.seen_params.add(id(p))
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
        if self.row_depth == 1:
            row = self.row
            row.out = out
            self.row = None
            self.row_depth = 0
            if row.kind != "identity":
                self.rows.append(row)

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
        fl = flop_registry.get(func._overloadpacket)
        mm = int(fl(*args, **kwargs, out_val=out)) if fl is not None else 0
        ins = self._traced_inputs(args)
        row = self.row
        if not ins:
            if mm and row is not None:
                row.mm_flops += mm
            return out
        outs = [out] if isinstance(out, Tensor) else self._followed_outputs(rule, out)
        if not outs:
            return out
        self._follow(func, rule, args, kwargs, ins, outs)
        cost = rule.cost(args, kwargs, ins[0][0], outs[0])
        if row is not None:
            row.charge(mm, cost)
        elif rule.row is not None:
            self._functional_rows(func, rule, args, ins, outs, mm, cost)
        return out

    @staticmethod
    def _run(func, rule: OpRule, args: tuple, kwargs: dict) -> Any:
        """The op's output: the table's meta shape where it has one, else torch's kernel."""
        if rule.shape is not None and args and not kwargs:
            x = args[0]
            if isinstance(x, Tensor) and x.is_meta:
                try:
                    out = rule.shape(args)
                except Exception:  # a shape rule that does not fit: torch's own meta kernel decides
                    out = None
                if out is not None:
                    return out
        return func(*args, **kwargs)

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
        self, func, rule: OpRule, args: tuple, ins: list, outs: list[Tensor], mm: int, cost: OpCost
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
                row.charge(mm, cost)
                row.params = self._new_params(args)
            else:
                row.n_ops = 1
            self.rows.append(row)

    def _new_params(self, args: tuple) -> int:
        n = 0
        for a in args:
            if isinstance(a, nn.Parameter) and id(a) not in self.seen_params:
                self.seen_params.add(id(a))
                n += a.numel()
        return n


def trace(
    model: nn.Module, shape: tuple[int, ...], device: str = "meta", state: dict[str, Tensor] | None = None
) -> Tracer:
    """Run ``model`` once on an input of ``shape`` under a :class:`Tracer`, in eval mode.

    ``state`` (from :func:`~cnnzoo.analysis.meta.meta_state`) runs a user's module on meta
    stand-ins for its weights. The train/eval flags are restored afterwards.

    Raises:
        TraceError: the forward pass failed (a :class:`~cnnzoo.errors.CnnzooError` passes as-is).
    """
    names = {id(m): n for n, m in model.named_modules()}
    tracer = Tracer(names, model)
    if device == "meta":
        x = torch.empty(shape, device="meta")
    else:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    tracer.mark_input(x)
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    h1 = register_module_forward_pre_hook(tracer.pre_hook)
    h2 = register_module_forward_hook(tracer.post_hook)
    try:
        with torch.no_grad(), tracer:
            if state is None:
                model(x)
            else:
                torch.func.functional_call(model, state, (x,), strict=False, tie_weights=True)
    except CnnzooError:
        raise
    except Exception as e:
        name, typ = tracer.current_module()
        raise TraceError(name, typ, e) from e
    finally:
        h1.remove()
        h2.remove()
        for m, t in flags:
            m.training = t
    return tracer
