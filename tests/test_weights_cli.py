"""cnnzoo weights inspect / convert: library, layout, fit, and the preprocessing beside the weights."""

from __future__ import annotations

import pytest
import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import save_file

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.weights import PREPROCESSING_KEY, Preprocessing, read_preprocessing


@pytest.fixture(scope="module")
def tv_resnet18(tmp_path_factory):
    """torchvision's resnet18 layout, random weights, 10 classes (no download)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tv_resnet18.pth"
    torch.save({"model": torchvision.models.resnet18(num_classes=10).state_dict()}, path)
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_inspect_names_library_layout_and_the_models_it_fits(tv_resnet18, capsys):
    assert main(["weights", "inspect", str(tv_resnet18)]) == 0
    out = capsys.readouterr().out
    assert "pytorch, 122 tensors" in out and "layout: torchvision resnet18" in out
    assert "resnet18  (as torchvision resnet18; build with num_classes=10)" in out


def test_inspect_a_file_that_fits_nothing_shows_the_nearest_names(tmp_path, capsys):
    state = cnnzoo.create_model("lenet5_relu").state_dict()
    state = {k.replace("c3.", "conv3."): v.contiguous() for k, v in state.items()}
    path = tmp_path / "renamed.safetensors"
    save_file(state, path)
    assert main(["weights", "inspect", str(path), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "fits no cnnzoo model" in out
    assert "lenet5_relu" in out and "c3.weight (nearest: conv3.weight)" in out


def test_a_pickle_that_needs_code_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "whole_model.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    assert main(["weights", "inspect", str(path)]) == 2
    err = _one_line_error(capsys)
    assert "needs code to load (torch.nn.modules.linear.Linear)" in err and "weights_only=True" in err


def test_convert_writes_preprocessing_that_create_model_reads_back(tv_resnet18, tmp_path, capsys):
    out = tmp_path / "r18.safetensors"
    argv = ["weights", "convert", str(tv_resnet18), "--model", "resnet18", "--out", str(out)]
    argv += ["--class-names", ",".join(f"k{i}" for i in range(10)), "--interpolation", "bicubic"]
    assert main(argv) == 0
    assert "122 tensors in resnet18's keys" in capsys.readouterr().out
    pre = read_preprocessing(out)
    assert pre == Preprocessing(
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
        (3, 224, 224),
        "bicubic",
        tuple(f"k{i}" for i in range(10)),
    )
    with safe_open(str(out), framework="pt") as f:
        assert f.metadata()["cnnzoo_model"] == "resnet18" and PREPROCESSING_KEY in f.metadata()
    model = cnnzoo.create_model("resnet18", weights=out)
    assert model.num_classes == 10 and model.default_cfg.extra["interpolation"] == "bicubic"
    assert model.default_cfg.extra["class_names"][3] == "k3"
    src = torch.load(tv_resnet18, weights_only=True)["model"]
    assert all(torch.equal(v, src[k]) for k, v in model.state_dict().items())
    assert main(argv) == 2 and "--force" in _one_line_error(capsys)  # an existing --out is kept


def test_convert_a_run_records_its_data(tmp_path):
    from cnnzoo.train.config import TrainConfig
    from cnnzoo.train.loop import fit

    run = tmp_path / "run"
    cfg = TrainConfig(
        model="lenet5_relu", classes=(5, 7), train_per_class=8, epochs=1, batch_size=16, test_samples=20,
        threads=1, warmup_epochs=0, out=str(run),
    )  # fmt: skip
    fit(cfg, progress=False, report=False)
    out = tmp_path / "l.safetensors"
    argv = [
        "weights",
        "convert",
        str(run / "weights.safetensors"),
        "--model",
        "lenet5_relu",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    pre = read_preprocessing(out)
    assert pre.class_names == ("Sandal", "Sneaker") and pre.interpolation == "pad"
    assert pre.input_size == (1, 32, 32)
    assert cnnzoo.create_model("lenet5_relu", weights=out).default_cfg.mean == pre.mean


def test_weights_for_the_wrong_model_name_the_model_and_what_the_file_fits(tv_resnet18, tmp_path, capsys):
    argv = [
        "weights",
        "convert",
        str(tv_resnet18),
        "--model",
        "vgg11",
        "--out",
        str(tmp_path / "v.safetensors"),
    ]
    assert main(argv) == 2
    err = _one_line_error(capsys)
    assert "does not fit vgg11" in err and "which fits resnet18" in err
    assert not (tmp_path / "v.safetensors").exists()
    argv = ["finetune", "vgg11", "--weights", str(tv_resnet18), "--data", "fashion-mnist"]
    assert main(argv) == 2
    assert "does not fit vgg11" in _one_line_error(capsys)
