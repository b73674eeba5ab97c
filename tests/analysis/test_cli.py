"""``cnnzoo summary``, ``cnnzoo compare`` and the demo tables."""

from __future__ import annotations

import json

from rich.console import Console

from cnnzoo.analysis import analyze
from cnnzoo.analysis.cli import print_demo_tables
from cnnzoo.cli import main


def test_summary_json_matches_the_api(capsys):
    assert main(["summary", "lenet5_relu", "--batch", "8", "--format", "json", "--optimizer", "adam"]) == 0
    d = json.loads(capsys.readouterr().out)
    api = analyze("lenet5_relu", batch_size=8, optimizer="adam")
    assert d["totals"] == api.totals and d["batch_size"] == 8 and d["optimizer"] == "adam"
    assert [x["name"] for x in d["layers"]] == [x.name for x in api.layers]


def test_summary_table_has_the_lecture_columns_and_units(capsys):
    assert main(["summary", "alexnet", "--batch", "128"]) == 0
    out = capsys.readouterr().out
    for col in ("params (K)", "MFLOPs", "act MB", "param MB", "RF"):
        assert col in out
    assert "26,986.3" in out and "283.6" in out  # the spec's conv1 row, in MFLOPs and MB
    assert "totals are the sum of all rows" in out


def test_summary_options_and_output_file(tmp_path, capsys):
    out = tmp_path / "t.csv"
    rc = main(
        [
            "summary",
            "resnet20",
            "--input",
            "3x64x64",
            "--depth",
            "2",
            "--dtype",
            "float16",
            "--exclude-act",
            "--format",
            "csv",
            "--output",
            str(out),
        ]
    )
    assert rc == 0
    text = out.read_text()
    assert text.startswith("name,type,") and "layer3.2,block" in text
    assert "except the" in text.splitlines()[-1]
    tex = tmp_path / "t.tex"
    assert main(["summary", "lenet5", "--format", "latex", "--output", str(tex)]) == 0
    assert "\\begin{tabular}" in tex.read_text()
    assert main(["summary", "lenet5", "--format", "markdown"]) == 0
    assert "| c1 | conv |" in capsys.readouterr().out


def test_summary_errors_are_one_line_exit_2(capsys):
    assert main(["summary", "alexnet", "--input", "3x32x32"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "67x67" in err
    assert main(["summary", "resnet5"]) == 2
    assert "Did you mean" in capsys.readouterr().err


def test_compare_totals_and_plot(tmp_path, capsys):
    png = tmp_path / "cmp.png"
    rc = main(
        [
            "compare",
            "lenet5_relu",
            "resnet20",
            "alexnet",
            "--batch",
            "4",
            "--plot",
            str(png),
            "--format",
            "json",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    d = json.loads(out[: out.rindex("}") + 1])
    by = {m["model"]: m for m in d["models"]}
    alex = analyze("alexnet", batch_size=4)
    assert by["alexnet"]["params"] == alex.totals["params"]
    assert abs(by["alexnet"]["gflops_per_image"] - alex.totals["flops"] / 4 / 1e9) < 1e-12
    assert by["alexnet"]["final_receptive_field"] == 195 and by["resnet20"]["final_receptive_field"] == 81
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert main(["compare", "lenet5_relu", "resnet20"]) == 0
    assert "final RF" in capsys.readouterr().out


def test_print_demo_tables():
    con = Console(record=True, width=200)
    print_demo_tables(con, "lenet5_relu", batch_size=128)
    text = con.export_text()
    assert "lenet5_relu: input 1×32×32, batch 128" in text
    assert "alexnet: input 3×227×227, batch 128" in text
    assert "26,986.3" in text
