"""cnnzoo finetune: the four modes on real Fashion-MNIST (classes 0-4 pre-trained, 5-9 transferred)."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from cnnzoo.cli import main
from cnnzoo.errors import ConfigError
from cnnzoo.models.base import ZooModel
from cnnzoo.train.config import TrainConfig
from cnnzoo.train.finetune import Group, finetune, plan_groups, trainable_at
from cnnzoo.train.loop import fit
from cnnzoo.train.runs import Network, open_network

NEW = (5, 6, 7, 8, 9)
NEW_NAMES = ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _cfg(out, **kw) -> TrainConfig:
    base = dict(
        model="resnet8", classes=NEW, train_per_class=10, epochs=1, batch_size=16, test_samples=100,
        threads=1, warmup_epochs=0, schedule="constant", out=str(out),
    )  # fmt: skip
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "pre"
    fit(_cfg(out, classes=(0, 1, 2, 3, 4), train_per_class=50, lr=0.05), progress=False, report=False)
    return out


def _changed(a: dict, b: dict) -> set[str]:
    return {k for k in a if not torch.equal(a[k], b[k])}


def _metrics(run) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_linear_probe_trains_only_the_head_and_bn_statistics_stay(pretrained, tmp_path, capsys):
    out = tmp_path / "probe"
    s = finetune(
        open_network(pretrained), _cfg(out, epochs=2), mode="linear-probe", progress=False, report=False
    )
    before, after = load_file(pretrained / "weights.safetensors"), load_file(out / "weights.safetensors")
    assert _changed(before, after) == {"fc.weight", "fc.bias"}  # running means and counts included
    assert list(s["per_class_top1"]) == NEW_NAMES
    assert s["finetune"]["mode"] == "linear-probe" and s["finetune"]["source"] == str(pretrained)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["classes"] == list(NEW) and cfg["finetune"]["groups"][0]["name"] == "head"
    assert [r["lr_head"] for r in _metrics(out)] == ["0.05", "0.05"]
    assert cfg["steps_per_epoch"] == 4  # 10 images of each of 5 classes, batches of 16
    assert main(["eval", str(out)]) == 0  # a normal run directory, scored on its own classes
    text = capsys.readouterr().out.replace("\n", " ")
    assert "5,000" in text and "recorded at training" in text  # of the 5,000 test images of 5-9


def test_progressive_decays_the_lr_by_stage_group_and_logs_each(pretrained, tmp_path):
    out = tmp_path / "prog"
    s = finetune(
        open_network(pretrained),
        _cfg(out, lr=0.04),
        mode="progressive",
        lr_decay=0.5,
        progress=False,
        report=False,
    )
    groups = [(g["name"], g["lr"]) for g in s["finetune"]["groups"]]
    assert groups == [("stem", 0.0025), ("stage0", 0.005), ("stage1", 0.01), ("stage2", 0.02), ("head", 0.04)]
    row = _metrics(out)[0]
    assert [float(row[f"lr_{n}"]) for n, _ in groups] == [lr for _, lr in groups]
    before, after = load_file(pretrained / "weights.safetensors"), load_file(out / "weights.safetensors")
    assert {"conv1.weight", "layer1.0.conv1.weight", "fc.weight"} <= _changed(before, after)


def test_gradual_unfreezes_one_group_per_epoch_in_one_optimizer(pretrained, tmp_path):
    out = tmp_path / "grad"
    finetune(
        open_network(pretrained),
        _cfg(out, epochs=3),
        mode="gradual",
        unfreeze_every=1,
        progress=False,
        report=False,
    )
    before, after = load_file(pretrained / "weights.safetensors"), load_file(out / "weights.safetensors")
    changed = _changed(before, after)
    assert {"fc.weight", "layer3.0.conv1.weight", "layer2.0.bn1.running_mean"} <= changed  # epochs 1-3
    assert not any(k.startswith(("conv1.", "bn1.", "layer1.")) for k in changed)  # still frozen
    st = torch.load(out / "train_state.pt", weights_only=True)["optimizer"]
    assert [g["name"] for g in st["param_groups"]] == ["stem", "stage0", "stage1", "stage2", "head"]
    stepped = {i for i, v in st["state"].items() if "momentum_buffer" in v}
    groups = {g["name"]: set(g["params"]) for g in st["param_groups"]}
    assert stepped == groups["stage1"] | groups["stage2"] | groups["head"]


def test_finetune_with_a_frozen_pattern_and_the_cli(pretrained, tmp_path, capsys):
    out = tmp_path / "ft"
    argv = [
        "finetune", str(pretrained), "--mode", "finetune", "--freeze", "conv1.*", "--freeze", "layer1.*",
        "--data", "fashion-mnist", "--classes", "5,6,7,8,9", "--train-per-class", "10", "--epochs", "1",
        "--batch-size", "16", "--test-samples", "100", "--threads", "1", "--warmup-epochs", "0",
        "--out", str(out), "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    assert "learning rates: all 0.01" in capsys.readouterr().out.replace("\n", " ")
    before, after = load_file(pretrained / "weights.safetensors"), load_file(out / "weights.safetensors")
    changed = _changed(before, after)
    assert not any(k.startswith(("conv1.", "layer1.")) for k in changed)
    assert {"bn1.weight", "layer2.0.conv1.weight", "fc.weight"} <= changed


class _NoStages(ZooModel):
    def __init__(self) -> None:
        super().__init__()
        self.num_classes, self.in_chans = 3, 1
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 3)
        self.head_name = "fc"

    def forward_features(self, x):
        return self.conv(x).mean((2, 3))

    def forward_head(self, x, *, pre_logits=False):
        return x if pre_logits else self.fc(x)


def test_bad_modes_are_one_line(tmp_path):
    model = _NoStages()
    for mode in ("progressive", "gradual"):
        with pytest.raises(ConfigError, match=f"--mode {mode} needs stage groups.*declares no stages") as e:
            plan_groups(model, mode, 0.1, name="nostages")
        assert "linear-probe or finetune" in str(e.value) and "\n" not in str(e.value)
        with pytest.raises(ConfigError, match="declares no stages"):
            finetune(Network(model, "lenet5_relu", None, {}, None), _cfg(tmp_path / mode), mode=mode)
    assert [g.name for g in plan_groups(model, "linear-probe", 0.1)] == ["head"]
    with pytest.raises(ConfigError, match="--lr-decay applies to --mode progressive or gradual"):
        plan_groups(model, "finetune", 0.1, lr_decay=0.5)
    with pytest.raises(ConfigError, match="--mode must be one of"):
        plan_groups(model, "frozen", 0.1)
    with pytest.raises(ConfigError, match="leaves nothing"):
        plan_groups(model, "linear-probe", 0.1, pinned=["fc.weight", "fc.bias"])
    with pytest.raises(ConfigError, match="declares none"):
        plan_groups(nn.Linear(2, 2), "finetune", 0.1)
    assert not list(tmp_path.iterdir())  # refused before any run directory was made


def test_gradual_order_is_top_down():
    groups = [Group(n, (f"{n}.w",), 1.0) for n in ("stem", "stage0", "neck", "head")]
    seen = [sorted(trainable_at(groups, "gradual", e, 2)) for e in range(6)]
    assert seen[0] == seen[1] == ["head.w"] and seen[2] == ["head.w", "neck.w"]
    assert seen[5] == ["head.w", "neck.w", "stage0.w"]
    assert trainable_at(groups, "finetune", 0, 1) == {g.params[0] for g in groups}
