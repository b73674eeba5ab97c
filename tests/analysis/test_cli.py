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


def test_every_format_and_the_training_options(tmp_path, capsys):
    from html.parser import HTMLParser

    for fmt, check in (
        ("html", lambda t: t.startswith("<!DOCTYPE html>") and "</html>" in t),
        ("latex", lambda t: "\\toprule" in t and "\\bottomrule" in t),
        ("csv", lambda t: t.splitlines()[0].endswith("groups,macs,saved_bytes,backward_flops")),
        ("markdown", lambda t: "| c1 | conv |" in t and "MMACs" in t),
        ("json", lambda t: json.loads(t)["training"]["optimizer"] == "rmsprop"),
    ):
        assert main(["summary", "lenet5_relu", "--format", fmt, "--optimizer", "rmsprop"]) == 0
        text = capsys.readouterr().out
        assert check(text), fmt
    HTMLParser().feed(text)
    assert main(["summary", "lenet5_relu", "--format", "json", "--no-backward"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["peak_training_bytes"] is None
    assert main(["summary", "lenet5_relu", "--format", "json", "--keep-grads", "--batch", "4"]) == 0
    kept = json.loads(capsys.readouterr().out)["training"]
    assert (
        kept["set_to_none"] is False and kept["peak_training_bytes"] == kept["peak_training_bytes_grads_kept"]
    )
    page = tmp_path / "t.html"
    assert main(["summary", "resnet20", "--format", "html", "--output", str(page)]) == 0
    assert page.read_text().count("<tr") > 20


def test_optimizer_choices_are_the_analyzers():
    from cnnzoo.analysis.cli import OPTIMIZERS
    from cnnzoo.analysis.memory import OPTIMIZERS as TABLE

    assert set(OPTIMIZERS) == set(TABLE)


def test_fit_prints_the_largest_batch_that_fits(capsys):
    assert main(["summary", "resnet20", "--fit", "1GiB"]) == 0
    out = capsys.readouterr().out
    assert "largest whose predicted training peak fits 1GiB (1,073,741,824 bytes)" in out and "GiB" in out
    assert main(["summary", "resnet20", "--fit", "1GB", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["budget_bytes"] == 10**9 and d["affine"] is True
    b = d["batch"]
    peak = analyze("resnet20", batch_size=b).totals["peak_training_bytes"]
    assert peak == d["peak_training_bytes"] <= 10**9 < d["next_batch_peak_bytes"]
    assert str(b) in d["traced"] and str(b + 1) in d["traced"]
    assert main(["summary", "vgg16", "--fit", "100MB"]) == 0
    assert "not even batch 1 fits 100MB" in capsys.readouterr().out


def test_fit_errors_are_one_line_exit_2(capsys):
    for argv, text in (
        (["summary", "resnet20", "--fit", "16"], "write a number and a unit"),
        (["summary", "resnet20", "--fit", "lots"], "16GiB (2^30 bytes)"),
        (["summary", "resnet20", "--fit", "1GiB", "--batch", "8"], "drop --batch"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and text in err
