"""The traced graph: which row feeds which, with the shapes on the edges, and the blocks around them.

The cost table lists rows in the order they run; a diagram also needs the edges between them:
the residual ``+`` that takes the block's input again, the concatenation of an Inception module's
four branches. The :class:`GraphTracer` is the analyzer's forward tracer plus one map, tensor ->
the rows that made it, so its nodes are the table's rows under the table's names (``conv1``,
``layer2.0.conv1``, ``inception3a.cat``). An op in a composite module's own forward that makes no
row (a ``view``, a ``mean``) passes its inputs' producers on to its output, so an edge goes from
row to row through it.

Groups are the module calls that hold rows (``layer2``, ``layer2.0``, ``inception3a``), with a
structural ``signature``: two calls with the same signature are the same block repeated (ResNet's
``layer3.1`` … ``layer3.35``), which a diagram can draw once as ×N.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from torch import Tensor, nn

from cnnzoo.analysis.kinds import module_kind
from cnnzoo.analysis.rows import block_details
from cnnzoo.analysis.tracer import Frame, RawRow, TraceError, Tracer, first_tensor, trace

__all__ = ["GraphNode", "GraphEdge", "GraphGroup", "Graph", "GraphTracer", "graph_of", "trace_graph", "INPUT"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)

#: the source index of an edge that starts at the network input
INPUT = -1


class GraphNode(NamedTuple):
    """One row of the table: its name and type, its output shape (no batch) and its groups."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    groups: tuple[int, ...]  # indices into ``Graph.groups``, outermost first


class GraphEdge(NamedTuple):
    """A tensor from one row (or the input, :data:`INPUT`) into another.

    ``kind``: ``"data"``; ``"skip"`` for the input of a residual add that comes from further back
    than its other input (the identity or projection shortcut); ``"concat"`` into a concatenation.
    """

    src: int
    dst: int
    shape: tuple[int, ...]  # of the tensor, without the batch dim
    kind: str


class GraphGroup(NamedTuple):
    """A module call that holds rows ``first`` … ``last - 1`` (rows of a call are contiguous)."""

    name: str
    type: str  # the module's kind (``block``, ``inception``, ``stage``...) or ``container``
    detail: str | None  # its ``cost_details()`` in words (Inception widths, residual position)
    parent: int  # the enclosing group's index, or -1
    first: int
    last: int
    signature: str  # equal for calls of the same structure (names relative to the call)
    module_class: str


class Graph(NamedTuple):
    """The nodes (in run order), edges and groups of one traced forward pass."""

    input_shape: tuple[int, ...]
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    groups: list[GraphGroup]

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "nodes": [
                {"name": n.name, "type": n.type, "shape": list(n.output_shape), "groups": list(n.groups)}
                for n in self.nodes
            ],
            "edges": [[e.src, e.dst, list(e.shape), e.kind] for e in self.edges],
            "groups": [g._asdict() for g in self.groups],
        }


def _tensors(x: Any) -> list[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, list | tuple):
        return [t for v in x for t in _tensors(v)]
    return []


class GraphTracer(Tracer):
    """The forward tracer, plus which rows made each tensor (module docstring).

    After the pass, ``inputs_of[i]`` lists the (source rows, tensor) of row ``i``'s inputs, and the
    base tracer's ``keep`` holds the tensors alive, so ids are not reused during the trace.
    """

    def __init__(self, names: dict[int, str], root: nn.Module) -> None:
        super().__init__(names, root)
        self.made_by: dict[int, tuple[int, ...]] = {}
        self.inputs_of: list[list[tuple[tuple[int, ...], tuple[int, ...]]]] = []

    def sources(self, t: Tensor) -> tuple[int, ...]:
        return self.made_by.get(id(t), (INPUT,))

    def closed(self, frame: Frame | None, row: RawRow | None) -> None:
        # an identity row is not appended to ``rows``: its output is its input, made by the same rows
        if row is None or not self.rows or self.rows[-1] is not row:
            return
        i = len(self.rows) - 1
        # the inputs are read before the output is booked: an in-place row's output is its input
        self.inputs_of.append([(self.sources(t), tuple(t.shape[1:])) for t in row.inputs])
        o = first_tensor(row.out)
        if o is not None:
            self.made_by[id(o)] = (i,)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        n = len(self.rows)
        out = super().__torch_dispatch__(func, types, args, kwargs)
        if self.row is None and len(self.rows) == n:  # an op of a composite forward that made no row
            srcs: dict[int, None] = {}
            for t in _tensors(list(args)):
                if id(t) in self.fields:
                    srcs.update(dict.fromkeys(self.sources(t)))
            if srcs:
                for o in _tensors(out):
                    self.made_by.setdefault(id(o), tuple(srcs))
        return out


def _edges(tracer: GraphTracer) -> list[GraphEdge]:
    """The edges, each input of a row once; of a residual add's inputs, the shorter paths are skips.

    The shortcut is the input with the fewer rows behind it (the identity, or a projection's
    conv and norm), whichever order the block's forward computes the two paths in.
    """
    edges: list[GraphEdge] = []
    depth: list[int] = []
    for dst, ins in enumerate(tracer.inputs_of):
        srcs = list(dict.fromkeys(s for ss, _ in ins for s in ss))
        shapes = {s: shape for ss, shape in ins for s in ss}
        d_of = {s: depth[s] if s != INPUT else 0 for s in srcs}
        deepest = max(d_of.values(), default=0)
        depth.append(deepest + 1)
        kind_of_dst = tracer.rows[dst].kind
        for s in srcs:
            if kind_of_dst == "concat":
                kind = "concat"
            elif kind_of_dst == "add" and len(srcs) > 1 and d_of[s] < deepest:
                kind = "skip"
            else:
                kind = "data"
            edges.append(GraphEdge(s, dst, shapes[s], kind))
    return edges


def _groups(tracer: GraphTracer) -> tuple[list[GraphGroup], list[tuple[int, ...]]]:
    """The module calls that hold rows, outermost first, and each row's groups."""
    rows = tracer.rows
    own = {id(r.chain[-1]) for r in rows if not r.functional and r.chain}
    index: dict[int, int] = {}
    groups: list[GraphGroup] = []
    members: dict[int, list[int]] = {}
    for i, r in enumerate(rows):
        for f in r.chain:
            if id(f) not in own:
                members.setdefault(id(f), []).append(i)
    frames = [f for f in tracer.frames if id(f) in members]
    for f in frames:
        idx = members[id(f)]
        kind, detail = block_details(f, [rows[i] for i in idx])
        if module_kind(f.module) is None and isinstance(f.module, _CONTAINERS):
            kind = "container"  # torch's containers (a ResNet stage) hold blocks; they are no block
        prefix = f.name + "."
        parts = [(rows[i].name.removeprefix(prefix), rows[i].kind, rows[i].params) for i in idx]
        o = first_tensor(rows[idx[-1]].out)
        shape = tuple(o.shape[1:]) if o is not None else ()
        sig = hashlib.sha1(repr((type(f.module).__name__, parts, shape)).encode()).hexdigest()[:12]
        parent = f.parent
        while parent is not None and id(parent) not in index:
            parent = parent.parent
        index[id(f)] = len(groups)
        groups.append(
            GraphGroup(
                f.name,
                kind,
                detail,
                index[id(parent)] if parent is not None else -1,
                idx[0],
                idx[-1] + 1,
                sig,
                type(f.module).__name__,
            )
        )
    of_row = [tuple(index[id(f)] for f in r.chain if id(f) in index) for r in rows]
    return groups, of_row


def graph_of(tracer: GraphTracer, input_shape: tuple[int, ...]) -> Graph:
    """The graph of a finished :class:`GraphTracer` pass (``input_shape`` without the batch)."""
    groups, of_row = _groups(tracer)
    nodes = []
    for r, g in zip(tracer.rows, of_row, strict=True):
        o = first_tensor(r.out)
        nodes.append(GraphNode(r.name, r.kind, tuple(o.shape[1:]) if o is not None else (), g))
    return Graph(tuple(input_shape), nodes, _edges(tracer), groups)


def trace_graph(model_or_name: str | nn.Module, input_size: tuple[int, ...] | None = None) -> Graph:
    """The traced graph of a zoo model (by name, built on meta) or of any module, at batch 1.

    A module is run on meta stand-ins for its weights (it is not modified); ``input_size`` is
    (C, H, W), the model's config's by default. A forward that cannot run on meta is traced on the
    CPU, as :func:`~cnnzoo.analysis.analyze` does.

    Raises:
        UnknownModelError: an unregistered name.
        AnalysisError: a forward pass that fails (the message names the module).
    """
    from cnnzoo.analysis.costs import AnalysisError, parse_input_size
    from cnnzoo.analysis.meta import build_zoo_model, meta_state

    state = None
    if isinstance(model_or_name, str):
        from cnnzoo.registry import create_model, get_model_config

        cfg = get_model_config(model_or_name)
        model = build_zoo_model(model_or_name, [])
    else:
        model, cfg = model_or_name, getattr(model_or_name, "default_cfg", None)
        state = meta_state(model)
    if input_size is None:
        if cfg is None:
            raise AnalysisError(f"{type(model).__name__} has no default config: give input_size=(C, H, W)")
        input_size = tuple(cfg.input_size)
    size = parse_input_size(input_size)
    try:
        tracer = trace(model, (1, *size), "meta", state, tracer_cls=GraphTracer)
    except TraceError:
        if isinstance(model_or_name, str):
            model = create_model(model_or_name)
        try:
            tracer = trace(model, (1, *size), "cpu", tracer_cls=GraphTracer)
        except TraceError as e:
            raise AnalysisError(str(e)) from e.cause
    assert isinstance(tracer, GraphTracer)
    return graph_of(tracer, size)
