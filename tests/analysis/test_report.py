"""The report (``cnnzoo.analysis.report``): the spec's JSON shape and the human tables."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch
from rich.console import Console

from cnnzoo.analysis import CostReport, analyze
from cnnzoo.errors import CnnzooError

SPEC_LAYER_KEYS = {
    "name",
    "type",
    "kernels",
    "kernel_size",
    "stride",
    "padding",
    "output_shape",
    "activations",
    "params",
    "flops",
    "activation_memory_bytes",
    "parameter_memory_bytes",
    "receptive_field",
    "jump",
}


def test_json_shape_is_the_spec():
    r = analyze("lenet5_relu", batch_size=3)
    d = json.loads(r.to_json())
    assert {"model", "input_size", "batch_size", "dtype", "optimizer", "layers", "totals"} <= set(d)
    assert (d["model"], d["input_size"], d["batch_size"], d["dtype"], d["optimizer"]) == (
        "lenet5_relu",
        [1, 32, 32],
        3,
        "float32",
        "momentum",
    )
    lecture = {"params", "flops", "activation_memory_bytes", "parameter_memory_bytes"}
    training = {"peak_training_bytes", "saved_bytes", "backward_flops", "training_step_flops"}
    assert set(d["totals"]) == lecture | training | {"macs"}  # wave 2 adds keys, changes none
    assert all(type(d["totals"][k]) is int for k in lecture | training | {"macs"})
    for layer in d["layers"]:
        assert SPEC_LAYER_KEYS <= set(layer)
        for k in ("activations", "params", "flops", "activation_memory_bytes", "parameter_memory_bytes"):
            assert type(layer[k]) is int
        for k in ("kernel_size", "stride", "padding"):
            assert layer[k] is None or (len(layer[k]) == 2 and all(type(v) is int for v in layer[k]))
    c1 = next(x for x in d["layers"] if x["name"] == "c1")
    assert c1["kernel_size"] == [5, 5] and c1["output_shape"] == [6, 28, 28] and c1["receptive_field"] == 5
    assert d["totals"]["params"] == 61_706


def test_csv_markdown_latex_dataframe():
    r = analyze("lenet5_relu", batch_size=2)
    rows = list(csv.DictReader(io.StringIO(r.to_csv())))
    assert rows[-1]["name"] == "total" and int(rows[-1]["flops"]) == r.totals["flops"]
    assert rows[-1]["detail"] == r.totals_rows and rows[-1]["kernel_h"] == ""
    c3 = next(x for x in rows if x["name"] == "c3")
    assert (int(c3["params"]), c3["kernel_h"], c3["stride_w"], c3["output_shape"]) == (
        2416,
        "5",
        "1",
        "16x10x10",
    )
    md = r.to_markdown()
    assert "| c3 | conv | 16 | 5 | 1 | 0 | 10×10×16 |" in md and "**total**" in md
    tex = r.to_latex()
    assert "\\begin{tabular}" in tex and "10$\\times$10$\\times$16" in tex and "\\bottomrule" in tex
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(CnnzooError, match="pip install pandas"):
            r.to_dataframe()
    else:
        df = r.to_dataframe()
        assert int(df["flops"].sum()) == r.totals["flops"]


def test_table_cells_are_keyed_by_column_name():
    r = analyze("lenet5_relu", batch_size=2)
    c3 = next(x for x in r.layers if x.name == "c3")
    cells = r._cells(c3)
    assert tuple(cells) == CostReport.HEADERS
    assert (cells["kernel"], cells["output"], cells["RF"]) == ("5", "10×10×16", "14")
    assert tuple(r._total_cells()) == CostReport.HEADERS
    # Markdown right-aligns the numbers, and only them
    sep = r.to_markdown().splitlines()[3].strip("|").split("|")
    aligned = dict(zip(CostReport.HEADERS, sep, strict=True))
    assert {h for h, s in aligned.items() if s == "---"} == {"layer", "type", "output"}


def test_narrow_terminal_hides_the_optional_columns():
    r = analyze("lenet5_relu", batch_size=2)
    wide, narrow = io.StringIO(), io.StringIO()
    r.print(Console(file=wide, width=250, color_system=None))
    assert "hidden" not in wide.getvalue() and "k/s/p" in wide.getvalue()
    r.print(Console(file=narrow, width=80, color_system=None))
    text = narrow.getvalue()
    assert "(narrow terminal: columns type, kernels, #act, jump, start, saved MB, bwd MFLOPs" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "k/s/p" in text and "MFLOPs" in text


# -- wave 2: training columns, MACs beside FLOPs, LaTeX and HTML ---------------------------------------


def test_training_columns_and_totals_in_every_format():
    r = analyze("lenet5_relu", batch_size=4)
    d = json.loads(r.to_json())
    c3 = next(x for x in d["layers"] if x["name"] == "c3")
    assert (c3["groups"], c3["macs"]) == (1, c3["flops"] // 2)
    assert c3["saved_bytes"] == 4 * 6 * 14 * 14 * 4  # its input, the pooled 14x14x6 map
    assert d["units"]["flops"] == "2 per multiply-add" and d["units"]["macs"] == "multiply-adds"
    assert d["training"]["peak_training_bytes"] == d["totals"]["peak_training_bytes"]
    assert d["training"]["training_step_flops"] == d["totals"]["training_step_flops"]
    rows = list(csv.DictReader(io.StringIO(r.to_csv())))
    assert {"groups", "macs", "saved_bytes", "backward_flops"} <= set(rows[0])
    assert (
        int(rows[-1]["backward_flops"]) == r.totals["backward_flops"]
        and int(rows[-1]["macs"]) == r.totals["macs"]
    )
    for text in (r.to_markdown(), r.to_latex(), r.to_html()):
        assert "MFLOPs" in text and "MMACs" in text and "2 per multiply-add" in text
        assert "training step" in text and "bwd MFLOPs" in text
    forward = analyze("lenet5_relu", batch_size=4, backward=False)
    assert json.loads(forward.to_json())["training"] is None
    assert "training step" not in forward.to_markdown()


class Odd(torch.nn.Module):
    """A module whose names and details carry LaTeX and HTML specials."""

    cost_type = "block"

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = torch.nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return self.conv_a(x)

    def cost_details(self):
        return {"<b>50% & $x_1$ #1</b>": "a<script>"}


def test_latex_is_booktabs_with_every_special_escaped():
    m = torch.nn.Sequential()
    m.add_module("my_block", Odd())
    r = analyze(m, input_size=(1, 6, 6), depth=1)
    tex = r.to_latex()
    lines = tex.splitlines()
    assert [x for x in lines if x in (r"\toprule", r"\midrule", r"\bottomrule")] == [
        r"\toprule",
        r"\midrule",
        r"\midrule",
        r"\bottomrule",
    ]
    assert (
        lines[1].startswith(r"\begin{tabular}{ll") and lines[-1 - len(r.footer_lines())] == r"\end{tabular}"
    )
    assert r"my\_block" in tex and r"50\% \& \$x\_1\$ \#1" in tex
    body = [x for x in lines if not x.startswith("%")]
    for x in body:  # every unescaped special outside comments would break the table
        stripped = (
            x.replace(r"\_", "").replace(r"\&", "").replace(r"\%", "").replace(r"\#", "").replace(r"\$", "")
        )
        assert "_" not in stripped and "%" not in stripped and "#" not in stripped
        if x.endswith(r"\\"):
            assert stripped.count("&") == len(CostReport.HEADERS) - 1
    assert tex.count(r"\begin{tabular}") == 1 == tex.count(r"\end{tabular}")


def test_html_is_self_contained_escaped_and_parseable():
    from html.parser import HTMLParser

    m = torch.nn.Sequential()
    m.add_module("my_block", Odd())
    r = analyze(m, input_size=(1, 6, 6), depth=1)
    page = r.to_html()
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;50% &amp;" in page
    assert "http" not in page and "<link" not in page  # nothing to fetch

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.stack, self.rows, self.cell = [], [], None

        def handle_starttag(self, tag, attrs):
            if tag != "meta":  # a void element: no end tag
                self.stack.append(tag)
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag):
            assert self.stack.pop() == tag  # well nested
            if tag in ("td", "th"):
                self.rows[-1].append(self.cell)
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    p = Cells()
    p.feed(page)
    p.close()
    assert not p.stack
    header, *body = p.rows
    assert header == list(CostReport.HEADERS)
    assert [row[0] for row in body] == [x.name for x in r.layers] + ["total"]
    assert all(len(row) == len(header) for row in body)
    assert any("<b>50% & $x_1$ #1</b> a<script>" in line for line in r.footer_lines())
