"""The pages' data and files: what a model, run or comparison page carries, and its errors."""

from __future__ import annotations

import io
import re
import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from cnnzoo.analysis import analyze
from cnnzoo.cli import main
from cnnzoo.errors import CnnzooError
from cnnzoo.registry import UnknownModelError, get_model_config
from cnnzoo.report import compare_page, model_page, write_report
from cnnzoo.report.build import ReportError
from cnnzoo.report.images import data_uri, png_bytes, tile
from cnnzoo.report.model import memory_batches
from cnnzoo.rundir import RunDir

pytestmark = pytest.mark.xdist_group("report")  # one worker trains the shared run (conftest.py)


def _png(uri: str) -> np.ndarray:
    import base64

    from matplotlib.image import imread

    assert uri.startswith("data:image/png;base64,")
    return imread(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])), format="png")


def test_png_round_trip():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    back = _png(data_uri(grey))
    assert back.shape == (3, 4) and np.allclose(back * 255, grey, atol=0.5)
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 1] = (255, 0, 10)
    assert np.allclose(_png(data_uri(rgb))[0, 1] * 255, (255, 0, 10), atol=0.5)
    grid = tile(np.stack([np.zeros((2, 2)), np.eye(2)]), cols=2)
    assert grid.shape == (2, 5) and grid[0, 2] == 255 and grid[0, 3] == 255 and grid[1, 3] == 0
    with pytest.raises(ValueError):
        png_bytes(np.zeros((2, 2, 2)))


def test_model_page_is_self_contained(page_data):
    html = model_page("resnet18", batch=16)
    # nothing is fetched: every src/href is inline, and the script makes no requests
    refs = re.findall(r'\b(?:src|href)\s*=\s*["\']([^"\']*)', html)
    assert refs and all(r.startswith(("data:", "#")) for r in refs)
    assert not re.search(r"\bfetch\(|XMLHttpRequest|import\(|<link[^>]+stylesheet", html)
    d = page_data(html)
    m = d["model"]
    assert d["kind"] == "model" and m["batch"] == 16
    report = analyze("resnet18", batch_size=16)
    assert [r["name"] for r in m["rows"]] == [r.name for r in report.layers]
    assert m["totals"]["flops"] == report.totals["flops"]
    assert [n["name"] for n in m["graph"]["nodes"]] == [r.name for r in report.layers if r.type != "input"]
    assert any(e[3] == "skip" for e in m["graph"]["edges"])


def test_memory_points_are_the_analyzers(page_data):
    m = page_data(model_page("alexnet", batch=8))["model"]
    mem = m["memory"]
    assert [p["batch"] for p in mem["points"]] == memory_batches(8) == [1, 8, 32]
    for p in mem["points"]:
        real = analyze("alexnet", batch_size=p["batch"]).training.memory.peak
        assert p["peak"] == real
        assert p["params"] + p["grads"] + p["optimizer_state"] + p["activations"] == real
    assert mem["points"][0]["activations"] < mem["points"][1]["activations"] < mem["points"][2]["activations"]
    lec = mem["lecture"]
    assert lec["activations_per_sample"] * 8 == m["totals"]["activation_memory_bytes"]
    assert lec["params"] + lec["grads"] + lec["optimizer_state"] == m["totals"]["parameter_memory_bytes"]


def test_run_page(tiny_run, page_data):
    d = page_data(model_page(str(tiny_run)))
    summary = RunDir(tiny_run).read_summary()
    r = d["run"]
    assert d["kind"] == "run" and r["test_top1"] == summary["test_top1"]
    assert r["checksum"]["sha256"] == summary["weights_sha256"] and r["checksum"]["verified"]
    counts = np.array(r["confusion"]["counts"])
    assert counts.sum() == 200 and "confusion_matrix.csv" in r["confusion"]["source"]
    assert 100 * np.trace(counts) / counts.sum() == pytest.approx(summary["test_top1"])
    assert r["per_class"] == pytest.approx(list(summary["per_class_top1"].values()), nan_ok=True)
    assert [c["epoch"] for c in r["curves"]] == [1, 2]
    assert r["filters"]["layer"] == "c1" and r["filters"]["shape"] == [6, 1, 5, 5]
    assert _png(r["filters"]["image"]).shape == (5, 6 * 5 + 5)  # six 5×5 kernels, 1-pixel gaps
    assert [s["stage"] for s in r["stages"]] == ["act1", "act2", "act3", "act4", "act5"]
    assert r["stages"][0]["shape"] == [6, 28, 28]
    assert all(w["true"] != w["pred"] for w in r["examples"]["wrong"])
    # the run's model, analyzed at the run's input (1×32×32, 10 classes)
    assert d["model"]["input_size"] == [1, 32, 32] and d["model"]["rows"][-1]["output_shape"] == [10]


def test_a_run_failing_its_checksum_is_refused(tiny_run, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_run, bad)
    w = load_file(bad / "weights.safetensors")
    k = next(iter(w))
    w[k] = w[k] + 1
    save_file(w, bad / "weights.safetensors")
    with pytest.raises(CnnzooError, match="(?i)sha256|checksum"):
        model_page(str(bad))
    assert main(["report", str(bad), "--out", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and ("sha256" in err.lower() or "checksum" in err.lower())
    assert not (tmp_path / "x.html").exists()


def test_cli_writes_pages_and_names_errors(tmp_path, capsys, page_data):
    out = tmp_path / "r.html"
    assert main(["report", "lenet5", "--batch", "4", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert page_data(out.read_text())["model"]["batch"] == 4
    assert main(["report", "lenet_nonexistent", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "lenet_nonexistent" in err
    for bad in (tmp_path / "no" / "dir" / "r.html", tmp_path):
        assert main(["report", "lenet5", "--out", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and ("--out" in err or "cannot write" in err)
    assert main(["report", "--compare", "lenet5", "--out", str(out)]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main(["report", "--out", str(out)]) == 2
    with pytest.raises(UnknownModelError):
        model_page("resnet_nonexistent")
    with pytest.raises(ReportError, match="does not exist"):
        write_report("<html></html>", tmp_path / "missing" / "x.html")


def test_compare_page(tiny_run, page_data):
    d = page_data(compare_page(["alexnet", "efficientnet_b0", str(tiny_run)], batch=8))
    e = {x["name"]: x for x in d["compare"]["entries"]}
    assert d["kind"] == "compare" and list(e) == ["alexnet", "efficientnet_b0", "lenet5_relu"]
    assert e["alexnet"]["params"] == analyze("alexnet", backward=False).totals["params"]
    assert e["alexnet"]["flops_per_image"] > e["lenet5_relu"]["flops_per_image"]
    assert (
        e["alexnet"]["peak_training_bytes"] == analyze("alexnet", batch_size=8).totals["peak_training_bytes"]
    )
    # the paper's reported accuracy, with its source, from the model config
    acc = e["efficientnet_b0"]["accuracy"]
    reported = get_model_config("efficientnet_b0").extra["reported"]
    assert acc == {"top1": reported["top1"], "dataset": "imagenet", "source": reported["source"]}
    run = e["lenet5_relu"]["accuracy"]
    assert run["top1"] == RunDir(tiny_run).read_summary()["test_top1"] and run["dataset"] == "fashion-mnist"


def test_a_model_with_weights_shows_its_filters(tmp_path, page_data):
    from cnnzoo.registry import create_model

    model = create_model("resnet18", num_classes=10)
    f = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f)
    m = page_data(model_page("resnet18", weights=str(f), batch=2))["model"]
    assert m["weights"] == str(f) and m["rows"][-1]["output_shape"] == [10]
    # He et al.: conv1 is 64 kernels of 7×7×3, shown as one RGB grid of 16 columns
    assert m["filters"]["layer"] == "conv1" and m["filters"]["shape"] == [64, 3, 7, 7]
    assert _png(m["filters"]["image"]).shape == (4 * 8 - 1, 16 * 8 - 1, 3)


def test_a_class_subset_run_page_shows_its_own_classes(tmp_path, page_data):
    """A --classes run (by name and by id) is shown on its own test images, labelled by its names."""
    from cnnzoo.train.config import TrainConfig
    from cnnzoo.train.loop import fit

    out = tmp_path / "sub"
    cfg = TrainConfig(
        model="lenet5_relu", classes=("Shirt", 0), train_per_class=16, epochs=1, batch_size=16,
        test_samples=64, threads=1, warmup_epochs=0, out=str(out),
    )  # fmt: skip
    fit(cfg, progress=False, report=False)  # no confusion_matrix.csv: the page evaluates its examples
    r = page_data(model_page(str(out)))["run"]
    assert r["confusion"]["classes"] == ["Shirt", "T-shirt/top"]
    counts = np.array(r["confusion"]["counts"])
    assert counts.shape == (2, 2) and counts.sum() > 0
    assert {w["true"] for w in r["examples"]["wrong"]} <= {"Shirt", "T-shirt/top"}
