"""The report (``cnnzoo.analysis.report``): the spec's JSON shape and the human tables."""

from __future__ import annotations

import csv
import io
import json

import pytest
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
