"""The end-of-run report: confusion matrix, per-class accuracy, misclassified grid, curves; top-k."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from cnnzoo.train.config import TrainConfig
from cnnzoo.train.evaluate import topk_correct
from cnnzoo.train.loop import fit
from cnnzoo.train.report import confusion_matrix, per_class_accuracy

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_confusion_matrix_and_per_class_accuracy_by_hand():
    preds = torch.tensor([0, 1, 1, 2, 2, 2, 0])
    true = torch.tensor([0, 1, 0, 2, 2, 1, 0])
    cm = confusion_matrix(preds, true, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 2]]
    assert per_class_accuracy(cm) == pytest.approx([200 / 3, 50.0, 100.0])


def test_topk_correct_by_hand():
    logits = torch.tensor(
        [
            [0.1, 0.5, 0.2, 0.9, 0.0, 0.3],  # ranks: 3, 1, 5, 2, 0, 4
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
        ]
    )  # ranks: 5, 4, 3, 2, 1, 0
    target = torch.tensor([1, 0, 0])
    # sample 0: target is 2nd -> top-1 miss, top-2 hit; sample 1: top-1 hit; sample 2: last -> top-5 miss
    assert topk_correct(logits, target, ks=(1, 2, 5)) == [1, 2, 2]
    assert topk_correct(logits[:, :3], target, ks=(1, 5)) == [2, 3]  # k > classes: every sample counts


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    s = fit(
        TrainConfig(
            model="lenet5_relu",
            epochs=2,
            train_samples=1000,
            test_samples=600,
            batch_size=50,
            threads=1,
            out=str(out),
        ),
        progress=False,
    )
    return out, s


def test_report_artefacts_exist_and_are_sane(reported):
    out, s = reported
    rows = list(csv.reader(open(out / "confusion_matrix.csv")))
    assert rows[0][1:] == [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
    cm = torch.tensor([[int(v) for v in r[1:]] for r in rows[1:]])
    assert cm.shape == (10, 10) and int(cm.sum()) == 600  # every test image counted once
    assert float(cm.diag().sum()) / 600 * 100 == pytest.approx(s["test_top1"], abs=1e-6)
    per_class = s["per_class_top1"]
    assert list(per_class) == rows[0][1:]
    for i, acc in enumerate(per_class.values()):
        assert acc == pytest.approx(100.0 * float(cm[i, i]) / float(cm[i].sum()))
    for png in ("confusion_matrix.png", "misclassified.png", "curves.png"):
        data = (out / png).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5_000, png
    import matplotlib.image as mpimg

    img = mpimg.imread(out / "misclassified.png")
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 200


def test_summary_and_metrics_fields(reported):
    out, s = reported
    for key in ("test_top1", "test_top5", "wall_seconds", "epochs", "images_per_second", "weights_sha256"):
        assert key in s
    assert json.loads((out / "summary.json").read_text())["weights_sha256"] == s["weights_sha256"]
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and [int(r["step"]) for r in rows] == [20, 40]
    for r in rows:
        assert float(r["test_top5"]) >= float(r["test_top1"]) and float(r["images_per_second"]) > 0
        assert float(r["lr"]) >= 0
    assert not (out / "best.safetensors").exists()  # no validation split: no best checkpoint
