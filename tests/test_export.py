"""ONNX export: every wave-1 family runs in onnxruntime with PyTorch's outputs, at any batch size."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.export import ExportError, export_onnx

ort = pytest.importorskip("onnxruntime")

# One model of each family, at a small input; LRN (AlexNet, ZFNet), BN (VGG-BN, ResNet), the
# Inception branches (GoogLeNet), NiN's mlpconv and global pooling, LeNet's subsampling, SE and MBConv
# (EfficientNet).
# hidden=64 shrinks AlexNet's/VGG's fc6-fc7 (same graph, 1/100 of the file).
FAMILIES = [
    ("lenet5", {}, 32),
    ("alexnet", {"hidden": 64}, 67),
    ("zfnet", {"hidden": 64}, 47),
    ("vgg11_bn", {"hidden": 64}, 32),
    ("nin", {}, 32),
    ("googlenet", {}, 79),
    ("resnet18", {}, 33),
    ("efficientnet_b0", {}, 33),  # MBConv, squeeze-and-excitation, swish
]


def _relative_diff(model: torch.nn.Module, path, size: int, batch: int) -> float:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(batch, model.in_chans, size, size, generator=torch.Generator().manual_seed(batch))
    with torch.no_grad():
        ref = model(x).numpy()
    (got,) = sess.run(None, {"x": x.numpy()})
    assert got.shape == ref.shape
    return float(np.abs(got - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize(("name", "kwargs", "size"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_each_family_matches_pytorch_at_batch_1_and_3(tmp_path, name, kwargs, size):
    torch.manual_seed(0)
    model = cnnzoo.create_model(name, num_classes=7, **kwargs).eval()
    path = cnnzoo.export_onnx(model, tmp_path / f"{name}.onnx", input_size=(model.in_chans, size, size))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[0] == "batch" and sess.get_outputs()[0].shape == ["batch", 7]
    for batch in (1, 3):
        assert _relative_diff(model, path, size, batch) <= 1e-4
    assert model.training is False and not list(tmp_path.glob(".*.tmp"))


def test_train_mode_is_restored_and_the_default_size_is_the_models(tmp_path):
    model = cnnzoo.create_model("lenet5_relu").train()
    export_onnx(model, tmp_path / "l.onnx")
    assert model.training
    sess = ort.InferenceSession(str(tmp_path / "l.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == ["batch", 1, 32, 32]


def test_bad_input_sizes_are_one_line(tmp_path):
    model = cnnzoo.create_model("resnet18")
    with pytest.raises(ExportError, match="below the model's minimum 33x33"):
        export_onnx(model, tmp_path / "r.onnx", (3, 20, 20))
    with pytest.raises(ExportError, match="takes 3"):
        export_onnx(model, tmp_path / "r.onnx", (1, 64, 64))
    with pytest.raises(ExportError, match=r"\(C, H, W\)"):
        export_onnx(model, tmp_path / "r.onnx", (64, 64))
    assert not list(tmp_path.iterdir())


class _NotExportable(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # control flow on data: torch.export cannot trace it
            return x * 2
        return x


def test_a_failed_export_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    with pytest.raises(ExportError, match="could not be exported"):
        export_onnx(_NotExportable(), path, (1, 8, 8))
    assert path.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_cli_exports_a_model_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "n.onnx"
    assert main(["export", "nin", "--input-size", "16", "--out", str(out), "--check"]) == 0
    text = capsys.readouterr().out
    assert "(batch, 3, 16, 16)" in text and "relative difference" in text
    assert main(["export", "nin", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "exists" in err and "--force" in err and len(err.splitlines()) == 1


def _batch_statistics(model: torch.nn.Module, size: int) -> None:
    """Give every BN the statistics of one random batch, then switch to eval mode.

    At init the running statistics are mean 0, variance 1, so in eval mode BN does not normalise,
    and in a deep residual net the stream then doubles at every block: pre-activation ResNet-1001's
    output is inf/NaN at init in PyTorch itself (measured), which says nothing about the export.
    """
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average: after one batch, that batch's statistics
    model.train()
    with torch.no_grad():
        model(torch.randn(4, model.in_chans, size, size))
    model.eval()


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("CNNZOO_ONNX_SWEEP"),
    reason="the sweep over every registered model takes minutes: set CNNZOO_ONNX_SWEEP=1 (benchmarks/README.md)",
)
@pytest.mark.parametrize("name", cnnzoo.list_models())
def test_sweep_every_registered_model(tmp_path, name):
    torch.manual_seed(0)
    model = cnnzoo.create_model(name)
    cfg = model.default_cfg  # gray models at their own size (CapsNet takes 28x28 only), others small
    size = cfg.input_size[-1] if model.in_chans == 1 else max(cfg.min_input_size, 16)
    _batch_statistics(model, size)
    path = export_onnx(model, tmp_path / f"{name}.onnx", (model.in_chans, size, size))
    try:
        for batch in (1, 3):
            assert _relative_diff(model, path, size, batch) <= 1e-4
    finally:
        path.unlink()  # VGG's files are 0.5 GB each
