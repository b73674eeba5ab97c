"""The result of :func:`cnnzoo.analysis.analyze`: per-layer rows, totals, and their exports.

The columns and units follow ``shared/spec/cost-tables.md``: FLOPs and bytes are exact integers
(JSON, CSV); human tables show K params (10^3), MFLOPs (10^6) and MB (2^20 bytes).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LayerCost", "CostReport", "MB"]

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

    def to_dict(self) -> dict[str, Any]:
        """The spec's layer object (its keys exactly), plus ``start_offset`` and ``detail``."""

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
        }


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


@dataclass
class CostReport:
    """A model's cost table: ``layers`` (one :class:`LayerCost` per row) and ``totals``.

    ``include_activations`` says whether activation-function rows (type ``act``) count in the
    totals; every other row always does, the ``input`` row included.
    """

    model: str
    input_size: tuple[int, ...]
    batch_size: int
    dtype: str
    optimizer: str
    layers: list[LayerCost]
    include_activations: bool = True
    depth: int | None = None
    notes: list[str] = field(default_factory=list)

    # -- totals ----------------------------------------------------------------------------------
    @property
    def rows(self) -> list[LayerCost]:
        return self.layers

    def counted(self, row: LayerCost) -> bool:
        return self.include_activations or row.type != "act"

    @property
    def totals(self) -> dict[str, int]:
        keys = ("params", "flops", "activation_memory_bytes", "parameter_memory_bytes")
        out = dict.fromkeys(keys, 0)
        for r in self.layers:
            if self.counted(r):
                for k in keys:
                    out[k] += int(getattr(r, k))
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
            "input_size": [int(v) for v in self.input_size],
            "batch_size": int(self.batch_size),
            "dtype": self.dtype,
            "optimizer": self.optimizer,
            "layers": [r.to_dict() for r in self.layers],
            "totals": self.totals,
            "totals_include": self.totals_rows,
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The spec's JSON shape (exact integers), plus ``totals_include`` and ``notes``."""
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
    )

    def _csv_cells(self, r: LayerCost) -> dict[str, Any]:
        def two(v):
            return ("", "") if v is None else (v[-2] if len(v) > 1 else v[0], v[-1])

        (kh, kw), (sh, sw), (ph, pw) = two(r.kernel_size), two(r.stride), two(r.padding)
        return {
            "name": r.name,
            "type": r.type,
            "kernels": "" if r.kernels is None else r.kernels,
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
            "receptive_field": "" if r.receptive_field is None else r.receptive_field,
            "jump": "" if r.jump is None else r.jump,
            "counted_in_totals": int(self.counted(r)),
            "detail": r.detail or "",
        }

    def to_csv(self) -> str:
        """One line per row with exact integers, then a ``total`` line."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.CSV_COLUMNS)
        for r in self.layers:
            cells = self._csv_cells(r)
            w.writerow([cells[c] for c in self.CSV_COLUMNS])
        total = dict.fromkeys(self.CSV_COLUMNS, "") | self.totals
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
        }

    def _total_cells(self) -> dict[str, str]:
        t = self.totals
        return dict.fromkeys(self.HEADERS, "") | {
            "layer": "total",
            "#params (K)": _num(t["params"] / 1e3),
            "MFLOPs": _num(t["flops"] / 1e6),
            "act mem (MB)": _num(t["activation_memory_bytes"] / MB),
            "param mem (MB)": _num(t["parameter_memory_bytes"] / MB),
        }

    @property
    def title(self) -> str:
        size = "×".join(str(v) for v in self.input_size)
        return (
            f"{self.model}: input {size}, batch {self.batch_size}, {self.dtype}, optimizer {self.optimizer}"
            + (f", depth {self.depth}" if self.depth is not None else "")
        )

    def footer_lines(self) -> list[str]:
        t = self.totals
        lines = [
            f"{self.totals_rows}.",
            f"params {t['params']:,}; FLOPs {t['flops']:,} "
            f"({self.flops_per_image / 1e9:,.3f} GFLOPs per image); "
            f"activation memory {t['activation_memory_bytes'] / MB:,.1f} MB; "
            f"parameter memory {t['parameter_memory_bytes'] / MB:,.1f} MB (MB = 2^20 bytes).",
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
        """A ``booktabs`` tabular (needs ``\\usepackage{booktabs}``)."""

        def esc(s: str) -> str:
            for a, b in (
                ("\\", r"\textbackslash{}"),
                ("&", r"\&"),
                ("%", r"\%"),
                ("_", r"\_"),
                ("#", r"\#"),
                ("×", r"$\times$"),
                ("—", "--"),
            ):
                s = s.replace(a, b)
            return s

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
    )
    _OPTIONAL = ("start", "#act", "kernels", "jump", "type")  # dropped in this order on a narrow terminal

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
    }

    def _term_row(self, cells: dict[str, str], ksp: str) -> list[str]:
        return [ksp if h == "k/s/p" else cells[self._TERM_SOURCE[h]] for h in self.TERM_HEADERS]

    def _term_cells(self, r: LayerCost) -> list[str]:
        ksp = "" if r.kernel_size is None else f"{_hw(r.kernel_size)}/{_hw(r.stride)}/{_hw(r.padding)}"
        return self._term_row(self._cells(r), ksp)

    def rich_table(self, width: int | None = None):
        """The table for a terminal (``rich``), with the lecture's columns and units.

        Kernel, stride and padding share one ``k/s/p`` column; on a terminal narrower than the
        table, the start, #act, kernels and jump columns are left out (in that order).
        """
        from rich import box
        from rich.table import Table

        body = [self._term_cells(r) for r in self.layers]
        total = self._term_row(self._total_cells(), "")
        cols = list(self.TERM_HEADERS)
        widths = [max(len(h), *(len(row[i]) for row in body + [total])) for i, h in enumerate(cols)]
        keep, pad = list(range(len(cols))), 1
        if width is not None:
            widths[0] = min(widths[0], 28)
            fits = None
            for pad in (1, 0):  # roomy first, then one space between columns
                keep = list(range(len(cols)))
                for name in (None, *self._OPTIONAL):
                    if name is not None:
                        keep.remove(cols.index(name))
                    if sum(widths[i] + 1 + 2 * pad for i in keep) <= width:
                        fits = keep
                        break
                if fits is not None:
                    break
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
