"""The ``transfer`` experiment at quick scale: it runs, writes the contract, honours the labels per
class, and trains what each mode says it trains."""

from __future__ import annotations

import json
import math

import pytest

from cnnzoo.experiments import cache_dir, get_experiment
from cnnzoo.experiments._trained import cache_key, train_config
from cnnzoo.experiments.base import ScaleError
from cnnzoo.experiments.transfer import (
    _TRANSFER,
    LABELS,
    MODEL,
    MODES,
    backbone_shift,
    pretrain_setting,
    transfer_setting,
)


def test_transfer_quick(run_quick):
    r = run_quick("transfer")
    m = r["metrics"]
    labels = [str(n) for n in LABELS]
    for key in ("test_accuracy", "test_accuracy_spread", "test_accuracy_per_seed"):
        assert list(m[key]) == list(MODES) and all(list(m[key][mode]) == labels for mode in MODES)
    assert all(0 <= m["test_accuracy"][mode][n] <= 100 for mode in MODES for n in labels)
    assert all(len(m["test_accuracy_per_seed"][mode][n]) == r["seeds"] == 1 for mode in MODES for n in labels)

    # labels per class honoured: every run of a count trains epochs x ceil(5 labels / batch) steps
    tr = _TRANSFER["quick"]
    assert m["steps"] == {str(n): tr["epochs"] * math.ceil(5 * n / tr["batch_size"]) for n in LABELS}

    # the linear probe trains its head only: the backbone is bit-for-bit the pre-trained one; one
    # epoch of gradual unfreezing (a group per epoch, head first) is a probe too; finetune moves it,
    # more with more steps
    shift = m["backbone_shift"]
    assert all(shift["linear_probe"][n] == 0.0 and shift["gradual"][n] == 0.0 for n in labels)
    assert 0 < shift["finetune"]["10"] < shift["finetune"]["500"]
    assert 0 < shift["progressive"]["500"]

    # the verdict follows the stated criterion from the numbers
    acc = m["test_accuracy"]
    best = max(acc["linear_probe"]["10"], acc["finetune"]["10"])
    assert m["pretrained_minus_scratch"]["10"] == pytest.approx(best - acc["scratch"]["10"])
    assert m["few_labels_holds"] == (best > acc["scratch"]["10"])  # one seed: spread 0
    assert m["labels_grow_holds"] == all(
        acc[k]["500"] > acc["linear_probe"]["500"] for k in ("finetune", "progressive")
    )
    assert r["holds"] == (m["few_labels_holds"] and m["labels_grow_holds"])
    assert "not a judgement" in r["notes"]

    # the pre-trained net and the scratch runs are ordinary cached runs of the trainer, on their classes
    cache = cache_dir()
    pre = cache / cache_key(train_config(MODEL, data="fashion-mnist", seed=0, **pretrain_setting("quick")))
    assert json.loads((pre / "config.json").read_text())["classes"] == [0, 1, 2, 3, 4]
    for n in LABELS:
        setting = {**transfer_setting("quick", n), "lr": 0.05}
        cfg = json.loads(
            (
                cache
                / cache_key(train_config(MODEL, data="fashion-mnist", seed=0, **setting))
                / "config.json"
            ).read_text()
        )
        assert cfg["classes"] == [5, 6, 7, 8, 9] and cfg["train_per_class"] == n


def test_backbone_shift_ignores_the_head_and_measures_the_rest():
    import copy

    import torch

    from cnnzoo.registry import create_model

    src = create_model(MODEL, num_classes=5)
    tuned = copy.deepcopy(src)
    with torch.no_grad():
        tuned.output.weight.add_(1.0)  # the head: not counted
    assert backbone_shift(src, tuned) == 0.0
    with torch.no_grad():
        tuned.c1.weight.mul_(2.0)  # c1 doubles: the shift is |c1| / |backbone|
    with torch.no_grad():
        backbone = [p for n, p in src.named_parameters() if not n.startswith("output.")]
        expected = src.c1.weight.norm() / torch.sqrt(sum(p.pow(2).sum() for p in backbone))
    assert backbone_shift(src, tuned) == pytest.approx(float(expected), rel=1e-5)


def test_transfer_has_no_paper_scale():
    assert set(get_experiment("transfer").costs) == {"quick", "cpu"}
    from cnnzoo.experiments import check_scale

    with pytest.raises(ScaleError, match="supports: quick, cpu"):
        check_scale(get_experiment("transfer"), "paper")
