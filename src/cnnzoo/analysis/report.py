"""The result of :func:`cnnzoo.analysis.analyze`: per-layer rows, totals, and their exports.

The columns and units follow ``shared/spec/cost-tables.md``: FLOPs and bytes are exact integers
(JSON, CSV); human tables show K params (10^3), MFLOPs and MMACs (10^6) and MB (2^20 bytes).
FLOPs count 2 per multiply-add, MACs 1; every format says which one a column shows.

Exports: :meth:`CostReport.to_json` (the spec's shape, new keys only), ``to_csv``, ``to_markdown``,
``to_latex`` (booktabs), ``to_html`` (one self-contained, escaped page), ``to_dataframe`` and the
terminal table (``print``).
"""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnzoo.analysis.memory import TrainingMemory

__all__ = ["LayerCost", "CostReport", "Training", "MB", "format_sizes"]

MB = 2**20


@dataclass
class LayerCost:
    """One row of a cost table (see the spec for what each column means)."""

    name: str
    type: str
    kernels: int | None
    kernel_size: tuple[int, int] | None
    stride: tuple[int, int] | None
    padding: tuple[int, int] | None
    output_shape: tuple[int, ...]
    activations: int
    params: int
    flops: int
    activation_memory_bytes: int
    parameter_memory_bytes: int
    receptive_field: int | None
    jump: int | None
    start_offset: tuple[float, ...] | None = None
    receptive_field_hw: tuple[int, ...] | None = None
    detail: str | None = None  # Inception branch widths, residual stage/block, why a field is unknown
    whole_input: bool = False  # the output has lost its spatial layout and sees the whole input
    groups: int | None = None  # of a conv row (depthwise: = channels)
    macs: int = 0  # multiply-adds of the row's convolutions and matrix products (their FLOPs / 2)
    saved_bytes: int | None = None  # what autograd keeps for the row's backward (training step)
    backward_flops: int | None = None  # the row's backward pass (training step)

    def to_dict(self) -> dict[str, Any]:
        """The spec's layer object (its keys exactly), plus ``start_offset``, ``detail`` and the
        wave-2 keys ``groups``, ``macs``, ``saved_bytes`` and ``backward_flops``."""

        def pair(v):
            return None if v is None else [int(a) if float(a).is_integer() else float(a) for a in v]

        return {
            "name": self.name,
            "type": self.type,
            "kernels": self.kernels,
            "kernel_size": pair(self.kernel_size),
            "stride": pair(self.stride),
            "padding": pair(self.padding),
            "output_shape": [int(v) for v in self.output_shape],
            "activations": int(self.activations),
            "params": int(self.params),
            "flops": int(self.flops),
            "activation_memory_bytes": int(self.activation_memory_bytes),
            "parameter_memory_bytes": int(self.parameter_memory_bytes),
            "receptive_field": self.receptive_field,
            "jump": self.jump,
            "start_offset": pair(self.start_offset),
            "detail": self.detail,
            "groups": self.groups,
            "macs": int(self.macs),
            "saved_bytes": self.saved_bytes,
            "backward_flops": self.backward_flops,
        }


@dataclass
class Training:
    """One steady-state training step, as traced on the meta device (:mod:`cnnzoo.analysis.step`)."""

    optimizer: str
    set_to_none: bool  # the step follows zero_grad(set_to_none=True): last step's grads are freed
    loss: str
    memory: TrainingMemory
    peak_set_to_none: int
    peak_grads_kept: int
    saved_bytes: int  # everything autograd saved over the step (the loss's included)
    forward_flops: int  # the training forward by the table's rules (auxiliary heads included)
    loss_flops: int  # the loss's forward
    backward_flops: int  # every op of the backward pass, the loss's included
    optimizer_flops: int

    @property
    def peak_training_bytes(self) -> int:
        return self.memory.peak

    @property
    def training_step_flops(self) -> int:
        return self.forward_flops + self.loss_flops + self.backward_flops + self.optimizer_flops

    def to_dict(self) -> dict[str, Any]:
        m = self.memory
        return {
            "optimizer": self.optimizer,
            "set_to_none": self.set_to_none,
            "loss": self.loss,
            "peak_training_bytes": m.peak,
            "peak_training_bytes_set_to_none": self.peak_set_to_none,
            "peak_training_bytes_grads_kept": self.peak_grads_kept,
            "peak_at": m.peak_at,
            "parameter_bytes": m.params,
            "buffer_bytes": m.buffers,
            "data_bytes": m.data,
            "kept_gradient_bytes": m.gradients_kept,
            "optimizer_state_bytes": m.optimizer_state,
            "dynamic_peak_bytes": m.dynamic,
            "optimizer_step_bytes": m.optimizer_step,
            "saved_bytes": self.saved_bytes,
            "forward_flops": self.forward_flops,
            "loss_flops": self.loss_flops,
            "backward_flops": self.backward_flops,
            "optimizer_flops": self.optimizer_flops,
            "training_step_flops": self.training_step_flops,
        }


def format_sizes(sizes: Any, sep: str = "×") -> str:
    """``(3, 224, 224)`` -> ``3×224×224``; several inputs are listed (by name if named)."""
    if isinstance(sizes, dict):
        return ", ".join(f"{k} {sep.join(map(str, v))}" for k, v in sizes.items())
    if sizes and isinstance(sizes[0], tuple | list):
        return ", ".join(sep.join(map(str, v)) for v in sizes)
    return sep.join(str(v) for v in sizes)


def _json_sizes(sizes: Any) -> Any:
    if isinstance(sizes, dict):
        return {k: [int(v) for v in s] for k, s in sizes.items()}
    if sizes and isinstance(sizes[0], tuple | list):
        return [[int(v) for v in s] for s in sizes]
    return [int(v) for v in sizes]


def _hw(v: tuple | None) -> str:
    if v is None:
        return ""
    vals = [int(a) if float(a).is_integer() else round(float(a), 2) for a in v]
    return str(vals[0]) if len(set(vals)) == 1 else "×".join(map(str, vals))


def _shape(s: tuple[int, ...]) -> str:
    """Per-sample output as the lectures write it: H×W×C for maps, C for vectors."""
    s = tuple(s)
    if len(s) >= 3:
        return "×".join(str(v) for v in (*s[1:], s[0]))
    return "×".join(str(v) for v in s)


def _num(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def _opt(v: int | None, scale: float) -> str:
    return "" if v is None else _num(v / scale)


_LATEX = (
    ("\\", r"\textbackslash{}"),
    ("&", r"\&"),
    ("%", r"\%"),
    ("$", r"\$"),
    ("_", r"\_"),
    ("#", r"\#"),
    ("{", r"\{"),
    ("}", r"\}"),
    ("~", r"\textasciitilde{}"),
    ("^", r"\textasciicircum{}"),
)


def latex_escape(s: str) -> str:
    """LaTeX's special characters escaped; × and — as math and an en dash."""
    out = []
    for ch in s:
        for a, b in _LATEX:
            if ch == a:
                ch = b
                break
        else:
            if ch == "×":
                ch = r"$\times$"
            elif ch == "—":
                ch = "--"
        out.append(ch)
    return "".join(out)


@dataclass
class CostReport:
    """A model's cost table: ``layers`` (one :class:`LayerCost` per row), ``totals`` and, when a
    training step was traced, ``training``.

    ``include_activations`` says whether activation-function rows (type ``act``) count in the
    lecture's totals; every other row always does, the ``input`` row included.
    """

    model: str
    input_size: Any  # (C, H, W), or a tuple / dict of sizes for several inputs
    batch_size: int
    dtype: str
    optimizer: str
    layers: list[LayerCost]
    include_activations: bool = True
    depth: int | None = None
    notes: list[str] = field(default_factory=list)
    training: Training | None = None

    # -- totals ----------------------------------------------------------------------------------
    @property
    def rows(self) -> list[LayerCost]:
        return self.layers

    def counted(self, row: LayerCost) -> bool:
        return self.include_activations or row.type != "act"

    LECTURE_TOTALS = ("params", "flops", "activation_memory_bytes", "parameter_memory_bytes")

    @property
    def totals(self) -> dict[str, int | None]:
        """The lecture's sums over the rows, ``macs``, and the training step's figures (None
        without a traced step): ``peak_training_bytes``, ``saved_bytes``, ``backward_flops``,
        ``training_step_flops``."""
        out: dict[str, int | None] = dict.fromkeys((*self.LECTURE_TOTALS, "macs"), 0)
        for r in self.layers:
            if self.counted(r):
                for k in (*self.LECTURE_TOTALS, "macs"):
                    out[k] += int(getattr(r, k))
        t = self.training
        out["peak_training_bytes"] = t.peak_training_bytes if t else None
        out["saved_bytes"] = t.saved_bytes if t else None
        out["backward_flops"] = t.backward_flops if t else None
        out["training_step_flops"] = t.training_step_flops if t else None
        return out

    @property
    def totals_rows(self) -> str:
        """Which rows the totals include, in words."""
        if self.include_activations:
            return "totals are the sum of all rows (the input and activation-function rows included)"
        n = sum(1 for r in self.layers if r.type == "act")
        return (
            f"totals are the sum of all rows except the {n} activation-function rows (type 'act'); "
            "the input row is included"
        )

    @property
    def flops_per_image(self) -> float:
        return self.totals["flops"] / self.batch_size

    @property
    def final_receptive_field(self) -> int | None:
        """Receptive field of the last spatial feature map (before global pooling / flatten)."""
        for r in reversed(self.layers):
            if r.type in ("input", "unused"):
                continue
            if r.whole_input:
                continue
            if r.receptive_field is not None:
                return r.receptive_field
        return None

    # -- exports ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_size": _json_sizes(self.input_size),
            "batch_size": int(self.batch_size),
            "dtype": self.dtype,
            "optimizer": self.optimizer,
            "layers": [r.to_dict() for r in self.layers],
            "totals": self.totals,
            "totals_include": self.totals_rows,
            "units": {"flops": "2 per multiply-add", "macs": "multiply-adds", "bytes": "exact bytes"},
            "training": self.training.to_dict() if self.training else None,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The spec's JSON shape (exact integers), plus ``totals_include``, ``units``,
        ``training`` and ``notes``; training figures are null without a traced step."""
        return json.dumps(self.to_dict(), indent=indent)

    CSV_COLUMNS = (
        "name",
        "type",
        "kernels",
        "kernel_h",
        "kernel_w",
        "stride_h",
        "stride_w",
        "pad_h",
        "pad_w",
        "output_shape",
        "activations",
        "params",
        "flops",
        "activation_memory_bytes",
        "parameter_memory_bytes",
        "receptive_field",
        "jump",
        "counted_in_totals",
        "detail",
        "groups",
        "macs",
        "saved_bytes",
        "backward_flops",
    )

    def _csv_cells(self, r: LayerCost) -> dict[str, Any]:
        def two(v):
            return ("", "") if v is None else (v[-2] if len(v) > 1 else v[0], v[-1])

        def opt(v):
            return "" if v is None else v

        (kh, kw), (sh, sw), (ph, pw) = two(r.kernel_size), two(r.stride), two(r.padding)
        return {
            "name": r.name,
            "type": r.type,
            "kernels": opt(r.kernels),
            "kernel_h": kh,
            "kernel_w": kw,
            "stride_h": sh,
            "stride_w": sw,
            "pad_h": ph,
            "pad_w": pw,
            "output_shape": "x".join(map(str, r.output_shape)),
            "activations": r.activations,
            "params": r.params,
            "flops": r.flops,
            "activation_memory_bytes": r.activation_memory_bytes,
            "parameter_memory_bytes": r.parameter_memory_bytes,
            "receptive_field": opt(r.receptive_field),
            "jump": opt(r.jump),
            "counted_in_totals": int(self.counted(r)),
            "detail": r.detail or "",
            "groups": opt(r.groups),
            "macs": r.macs,
            "saved_bytes": opt(r.saved_bytes),
            "backward_flops": opt(r.backward_flops),
        }

    def to_csv(self) -> str:
        """One line per row with exact integers, then a ``total`` line (FLOPs are 2 per
        multiply-add, ``macs`` the multiply-adds; the training totals include the loss's share)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.CSV_COLUMNS)
        for r in self.layers:
            cells = self._csv_cells(r)
            w.writerow([cells[c] for c in self.CSV_COLUMNS])
        totals = {k: ("" if v is None else v) for k, v in self.totals.items() if k in self.CSV_COLUMNS}
        total = dict.fromkeys(self.CSV_COLUMNS, "") | totals
        total |= {"name": "total", "detail": self.totals_rows}
        w.writerow([total[c] for c in self.CSV_COLUMNS])
        return buf.getvalue()

    HEADERS = (
        "layer",
        "type",
        "kernels",
        "kernel",
        "stride",
        "pad",
        "output",
        "#activations",
        "#params (K)",
        "MFLOPs",
        "act mem (MB)",
        "param mem (MB)",
        "RF",
        "jump",
        "start",
        "groups",
        "MMACs",
        "saved (MB)",
        "bwd MFLOPs",
    )

    _LEFT = ("layer", "type", "output")  # left-aligned in Markdown; the numbers are right-aligned

    def _cells(self, r: LayerCost) -> dict[str, str]:
        """One row's cells in the lecture's units, keyed by :attr:`HEADERS`."""
        return {
            "layer": r.name,
            "type": r.type,
            "kernels": "" if r.kernels is None else f"{r.kernels:,}",
            "kernel": _hw(r.kernel_size),
            "stride": _hw(r.stride),
            "pad": _hw(r.padding),
            "output": _shape(r.output_shape),
            "#activations": f"{r.activations:,}",
            "#params (K)": _num(r.params / 1e3),
            "MFLOPs": _num(r.flops / 1e6),
            "act mem (MB)": _num(r.activation_memory_bytes / MB),
            "param mem (MB)": _num(r.parameter_memory_bytes / MB),
            "RF": "—" if r.receptive_field is None else f"{r.receptive_field:,}",
            "jump": "—" if r.jump is None else f"{r.jump:,}",
            "start": _hw(r.start_offset),
            "groups": "" if r.groups is None else f"{r.groups:,}",
            "MMACs": _num(r.macs / 1e6) if r.macs else "",
            "saved (MB)": _opt(r.saved_bytes, MB),
            "bwd MFLOPs": _opt(r.backward_flops, 1e6),
        }

    def _total_cells(self) -> dict[str, str]:
        t = self.totals
        return dict.fromkeys(self.HEADERS, "") | {
            "layer": "total",
            "#params (K)": _num(t["params"] / 1e3),
            "MFLOPs": _num(t["flops"] / 1e6),
            "act mem (MB)": _num(t["activation_memory_bytes"] / MB),
            "param mem (MB)": _num(t["parameter_memory_bytes"] / MB),
            "MMACs": _num(t["macs"] / 1e6),
            "saved (MB)": _opt(t["saved_bytes"], MB),
            "bwd MFLOPs": _opt(t["backward_flops"], 1e6),
        }

    @property
    def title(self) -> str:
        plural = isinstance(self.input_size, dict) or (
            self.input_size and isinstance(self.input_size[0], tuple | list)
        )
        return (
            f"{self.model}: input{'s' if plural else ''} {format_sizes(self.input_size)}, batch {self.batch_size}, "
            f"{self.dtype}, optimizer {self.optimizer}"
            + (f", depth {self.depth}" if self.depth is not None else "")
        )

    def training_lines(self) -> list[str]:
        """The training step in words: its peak and what it is made of, its FLOPs by phase."""
        t = self.training
        if t is None:
            return []
        m = t.memory
        grads = "freed by zero_grad(set_to_none=True)" if t.set_to_none else "kept, zeroed in place"
        other = t.peak_grads_kept if t.set_to_none else t.peak_set_to_none
        other_how = "with gradients kept" if t.set_to_none else "with set_to_none=True"
        return [
            f"training step ({self.optimizer}, loss {t.loss}, last step's gradients {grads}): "
            f"peak {m.peak / MB:,.1f} MB at {m.peak_at} = fixed {m.fixed / MB:,.1f} MB (params "
            f"{m.params / MB:,.1f}, optimizer state {m.optimizer_state / MB:,.1f}, buffers {m.buffers / MB:,.1f}, "
            f"data {m.data / MB:,.1f}"
            + (f", kept gradients {m.gradients_kept / MB:,.1f}" if m.gradients_kept else "")
            + f") + {max(m.dynamic, m.optimizer_step) / MB:,.1f} MB of activations, saved tensors, gradients "
            f"and workspaces; {other / MB:,.1f} MB {other_how}. Autograd saves {t.saved_bytes / MB:,.1f} MB "
            "for backward.",
            f"FLOPs per training step: forward {t.forward_flops / 1e9:,.3f} G + loss {t.loss_flops / 1e9:,.3f} G "
            f"+ backward {t.backward_flops / 1e9:,.3f} G + optimizer {t.optimizer_flops / 1e9:,.3f} G = "
            f"{t.training_step_flops / 1e9:,.3f} GFLOPs (2 per multiply-add; MMACs count multiply-adds once).",
        ]

    def footer_lines(self) -> list[str]:
        t = self.totals
        lines = [
            f"{self.totals_rows}.",
            f"params {t['params']:,}; FLOPs {t['flops']:,} "
            f"({self.flops_per_image / 1e9:,.3f} GFLOPs per image, 2 per multiply-add; {t['macs']:,} MACs); "
            f"activation memory {t['activation_memory_bytes'] / MB:,.1f} MB; "
            f"parameter memory {t['parameter_memory_bytes'] / MB:,.1f} MB (MB = 2^20 bytes).",
            *self.training_lines(),
        ]
        details = [f"{r.name}: {r.detail}" for r in self.layers if r.detail]
        return lines + [f"note: {n}" for n in self.notes] + details

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table in the lecture's units, then the totals and notes."""
        out = [
            f"**{self.title}**",
            "",
            "| " + " | ".join(self.HEADERS) + " |",
            "|" + "|".join("---" if h in self._LEFT else "---:" for h in self.HEADERS) + "|",
        ]
        for r in self.layers:
            cells = self._cells(r)
            out.append("| " + " | ".join(cells[h].replace("|", "\\|") for h in self.HEADERS) + " |")
        total = self._total_cells()
        out.append("| " + " | ".join(f"**{total[h]}**" if total[h] else "" for h in self.HEADERS) + " |")
        out.append("")
        out += [f"- {line}" for line in self.footer_lines()]
        return "\n".join(out) + "\n"

    def to_latex(self) -> str:
        """A ``booktabs`` tabular (needs ``\\usepackage{booktabs}``), every cell escaped."""
        esc = latex_escape
        cols = "ll" + "r" * (len(self.HEADERS) - 2)
        lines = [
            f"% {esc(self.title)}",
            f"\\begin{{tabular}}{{{cols}}}",
            r"\toprule",
            " & ".join(esc(h) for h in self.HEADERS) + r" \\",
            r"\midrule",
        ]
        for r in self.layers:
            cells = self._cells(r)
            lines.append(" & ".join(esc(cells[h]) for h in self.HEADERS) + r" \\")
        total = self._total_cells()
        lines += [
            r"\midrule",
            " & ".join(esc(total[h]) for h in self.HEADERS) + r" \\",
            r"\bottomrule",
            r"\end{tabular}",
        ]
        lines += [f"% {esc(line)}" for line in self.footer_lines()]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """One self-contained HTML page: the table, its totals and notes, every text escaped."""
        e = html.escape
        head = "".join(f"<th>{e(h)}</th>" for h in self.HEADERS)
        body = []
        for r in self.layers:
            cells = self._cells(r)
            cls = "" if self.counted(r) else ' class="excluded"'
            body.append(f"<tr{cls}>" + "".join(self._td(h, cells[h]) for h in self.HEADERS) + "</tr>")
        total = self._total_cells()
        foot = "<tr>" + "".join(self._td(h, total[h]) for h in self.HEADERS) + "</tr>"
        notes = "".join(f"<li>{e(line)}</li>" for line in self.footer_lines())
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{e(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{e(self.title)}</h1>\n<table>\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>\n" + "\n".join(body) + f"\n</tbody>\n<tfoot>{foot}</tfoot>\n</table>\n"
            f"<ul>{notes}</ul>\n</body>\n</html>\n"
        )

    def _td(self, header: str, text: str) -> str:
        cls = "" if header in self._LEFT else ' class="num"'
        return f"<td{cls}>{html.escape(text)}</td>"

    def to_dataframe(self):
        """The rows as a ``pandas.DataFrame`` (exact integers), one column per JSON key."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            from cnnzoo.errors import CnnzooError

            raise CnnzooError(
                "CostReport.to_dataframe() needs pandas, which is not installed: run `pip install pandas` "
                "(or use to_csv() / to_json(), which need nothing)."
            ) from e
        return pd.DataFrame([r.to_dict() for r in self.layers])

    TERM_HEADERS = (
        "layer",
        "type",
        "kernels",
        "k/s/p",
        "output",
        "#act",
        "params (K)",
        "MFLOPs",
        "act MB",
        "param MB",
        "RF",
        "jump",
        "start",
        "saved MB",
        "bwd MFLOPs",
    )
    # dropped in this order on a narrow terminal
    _OPTIONAL = ("bwd MFLOPs", "saved MB", "start", "#act", "kernels", "jump", "type")

    #: terminal column -> the :attr:`HEADERS` cell it shows (``k/s/p`` joins kernel, stride and pad)
    _TERM_SOURCE = {
        "layer": "layer",
        "type": "type",
        "kernels": "kernels",
        "output": "output",
        "#act": "#activations",
        "params (K)": "#params (K)",
        "MFLOPs": "MFLOPs",
        "act MB": "act mem (MB)",
        "param MB": "param mem (MB)",
        "RF": "RF",
        "jump": "jump",
        "start": "start",
        "saved MB": "saved (MB)",
        "bwd MFLOPs": "bwd MFLOPs",
    }

    def _term_columns(self) -> tuple[str, ...]:
        if self.training is None:  # forward only: no empty training columns
            return tuple(h for h in self.TERM_HEADERS if h not in ("saved MB", "bwd MFLOPs"))
        return self.TERM_HEADERS

    def _term_row(self, cells: dict[str, str], ksp: str) -> list[str]:
        return [ksp if h == "k/s/p" else cells[self._TERM_SOURCE[h]] for h in self._term_columns()]

    def _term_cells(self, r: LayerCost) -> list[str]:
        ksp = "" if r.kernel_size is None else f"{_hw(r.kernel_size)}/{_hw(r.stride)}/{_hw(r.padding)}"
        return self._term_row(self._cells(r), ksp)

    def _fit_columns(self, widths: list[int], cols: list[str], width: int) -> tuple[list[int], int]:
        """The columns kept on a terminal of ``width`` and the padding, optional ones dropped first."""
        keep, pad = list(range(len(cols))), 1
        for pad in (1, 0):  # roomy first, then one space between columns
            keep = list(range(len(cols)))
            for name in (None, *(c for c in self._OPTIONAL if c in cols)):
                if name is not None:
                    keep.remove(cols.index(name))
                if sum(widths[i] + 1 + 2 * pad for i in keep) <= width:
                    return keep, pad
        return keep, pad

    def rich_table(self, width: int | None = None):
        """The table for a terminal (``rich``), with the lecture's columns and units.

        Kernel, stride and padding share one ``k/s/p`` column; on a terminal narrower than the
        table, the training columns, then start, #act, kernels, jump and type are left out.
        """
        from rich import box
        from rich.table import Table

        body = [self._term_cells(r) for r in self.layers]
        total = self._term_row(self._total_cells(), "")
        cols = list(self._term_columns())
        widths = [max(len(h), *(len(row[i]) for row in body + [total])) for i, h in enumerate(cols)]
        keep, pad = list(range(len(cols))), 1
        if width is not None:
            widths[0] = min(widths[0], 28)
            keep, pad = self._fit_columns(widths, cols, width)
            widths[0] = min(widths[0], max(8, width - sum(widths[i] + 1 + 2 * pad for i in keep[1:]) - 1))
        self._hidden = [c for i, c in enumerate(cols) if i not in keep]
        table = Table(
            title=self.title,
            header_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            padding=(0, pad),
            collapse_padding=True,
        )
        for i in keep:
            table.add_column(
                cols[i],
                justify="left" if cols[i] in ("layer", "type") else "right",
                no_wrap=True,
                overflow="ellipsis",
                min_width=widths[i] if i else None,
                max_width=widths[0] if i == 0 else None,
            )
        for r, row in zip(self.layers, body, strict=True):
            table.add_row(*(row[i] for i in keep), style=None if self.counted(r) else "dim")
        table.add_section()
        table.add_row(*(total[i] for i in keep), style="bold")
        return table

    def print(self, console=None) -> None:
        """Print the rich table, then the totals line and the notes."""
        from rich.console import Console

        console = console or Console()
        console.print(self.rich_table(console.width))
        lines = self.footer_lines()
        if self._hidden:
            lines.append(
                f"(narrow terminal: columns {', '.join(self._hidden)} hidden; "
                "--format markdown shows them all)"
            )
        for line in lines:
            console.print(line, markup=False, highlight=False)

    def __str__(self) -> str:
        return self.to_markdown()


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:1.5em}"
    "table{border-collapse:collapse;font-size:0.85em}"
    "th,td{padding:0.2em 0.6em;border-bottom:1px solid #ddd;white-space:nowrap}"
    "th{text-align:right;border-bottom:2px solid #333}th:nth-child(-n+2),th:nth-child(7){text-align:left}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "tfoot td{font-weight:bold;border-top:2px solid #333}"
    "tr.excluded{color:#999}li{margin:0.2em 0}"
)
