"""--classes (a relabelled subset) and --train-per-class (N seeded images per class)."""

import pytest
import torch

from cnnzoo.cli import main
from cnnzoo.data.datasets import ImageDataset
from cnnzoo.data.subsets import per_class_indices, select_classes
from cnnzoo.errors import ConfigError
from cnnzoo.train.config import TrainConfig


def _ds(n_per=4, k=10):
    labels = torch.arange(k).repeat_interleave(n_per)
    images = labels.view(-1, 1, 1, 1).expand(-1, 1, 2, 2).to(torch.uint8).clone()
    return ImageDataset("toy", "train", images, labels, tuple(f"c{i}" for i in range(k)), (0.5,), (0.5,))


def test_select_classes_relabels_in_the_order_given():
    sub = select_classes(_ds(), [7, 2, 9])
    assert sub.classes == ("c7", "c2", "c9") and len(sub) == 12
    assert torch.equal(sub.images[:, 0, 0, 0].long(), torch.tensor([7, 2, 9])[sub.labels])  # pixel = old id
    assert sorted(sub.labels.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    assert select_classes(_ds(), []) is not None and len(select_classes(_ds(), [])) == 40


def test_select_classes_errors_are_one_line():
    with pytest.raises(ConfigError, match=r"classes 0\.\.9, so 10, 12 is out of range"):
        select_classes(_ds(), [3, 10, 12])
    with pytest.raises(ConfigError, match="repeats"):
        select_classes(_ds(), [3, 3])
    with pytest.raises(ConfigError, match="class 5 more than once"):
        TrainConfig(classes=(5, 5, 6)).validate()
    with pytest.raises(ConfigError, match="ids >= 0"):
        TrainConfig(classes=(-1,)).validate()


def test_per_class_indices_is_seeded_and_balanced():
    labels = torch.arange(5).repeat(20)[torch.randperm(100, generator=torch.Generator().manual_seed(1))]
    a = per_class_indices(labels, 3, seed=0)
    assert torch.bincount(labels[a], minlength=5).tolist() == [3] * 5
    assert torch.equal(a, per_class_indices(labels, 3, seed=0))
    assert not torch.equal(a, per_class_indices(labels, 3, seed=1))
    assert torch.equal(a, a.sort().values)
    uneven = torch.cat([labels[labels != 2], torch.full((5,), 2)])  # class 2 has 5 images
    with pytest.raises(ConfigError, match="class 'c2' has only 5 training images; use --train-per-class 5"):
        per_class_indices(uneven, 6, seed=0, classes=[f"c{i}" for i in range(5)])


def test_per_class_and_train_samples_exclude_each_other():
    with pytest.raises(ConfigError, match="give one of them"):
        TrainConfig(train_per_class=5, train_samples=100).validate()
    with pytest.raises(ConfigError, match=">= 1"):
        TrainConfig(train_per_class=0).validate()


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--classes", "5,5,6"], "more than once"),
        (["--classes", "3,12"], "so 12 is out of range"),
        (
            ["--classes", "5,6", "--train-per-class", "7000"],
            "class 'Sandal' has only 6,000 training images; use --train-per-class 6000",
        ),
    ],
)
def test_train_cli_says_it_in_one_line(tmp_path, capsys, flags, needle):
    argv = ["train", "lenet5_relu", "--epochs", "1", "--out", str(tmp_path / "r"), "--no-progress", *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r").exists()
