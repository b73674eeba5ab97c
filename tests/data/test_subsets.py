"""--classes (a relabelled subset) and --train-per-class (N seeded images per class)."""

import json

import pytest
import torch

from cnnzoo.cli import main
from cnnzoo.data.datasets import ImageDataset
from cnnzoo.data.subsets import UnknownClassError, per_class_indices, resolve_classes, select_classes
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


# --------------------------------------------------------------------------- by name, and imagefolder
def test_select_classes_by_name_or_index_keeps_the_order():
    sub = select_classes(_ds(), ["c7", 2, "9"])  # a name, an index, an index given as text
    assert sub.classes == ("c7", "c2", "c9")
    assert torch.equal(sub.images[:, 0, 0, 0].long(), torch.tensor([7, 2, 9])[sub.labels])
    with pytest.raises(UnknownClassError, match=r"toy has no class 'c11'; its classes are c0, c1, .*c9") as e:
        select_classes(_ds(), ["c1", "c11"])
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"repeats a class \(c3\)"):
        select_classes(_ds(), ["c3", 3])
    # a class named like a number is that class, not the index
    assert resolve_classes([2, "0"], ("10", "2", "0"), "digits") == [1, 2]
    assert TrainConfig(classes=["Ankle boot", 5]).validate().classes == ("Ankle boot", 5)


COLOURS = {"ant": (250, 0, 0), "bee": (0, 250, 0), "cow": (0, 0, 250), "dog": (250, 250, 0)}


def _tree(root, per_class=(4, 2)):
    from PIL import Image

    for split, n in zip(("train", "val"), per_class, strict=True):
        for name, rgb in COLOURS.items():
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (36, 36), rgb).save(d / f"{i}.png")
    return root


def test_imagefolder_select_by_folder_name_or_index(tmp_path):
    from cnnzoo.data.imagefolder import ImageFolderFeed

    root = _tree(tmp_path)
    kw = dict(size=8, mean=(0.0,) * 3, std=(1.0,) * 3, workers=0)
    feed = ImageFolderFeed(root, "train", select=["dog", 1], **kw)  # dog, then index 1 (bee)
    assert feed.classes == ("dog", "bee") and len(feed) == 8
    x, y = next(iter(feed.batches(8)))
    red, green = x[:, 0, 0, 0], x[:, 1, 0, 0]  # dog is yellow, bee green: red tells them apart
    assert torch.equal((red > 0.5).long(), (y == 0).long()) and bool((green > 0.5).all())
    with pytest.raises(UnknownClassError, match=r"has no class 'emu'; its classes are ant, bee, cow, dog"):
        ImageFolderFeed(root, "train", select=["emu"], **kw)
    with pytest.raises(ConfigError, match=r"classes 0\.\.3, so 4 is out of range"):
        ImageFolderFeed(root, "train", select=[4], **kw)


def test_an_imagefolder_run_on_some_classes_reports_their_names(tmp_path, capsys):
    from cnnzoo.train.loop import fit

    root = _tree(tmp_path / "tree")
    cfg = TrainConfig(
        model="lenet5_relu", data="imagefolder", data_dir=str(root), classes=("cow", 0), input_size=32,
        epochs=1, batch_size=4, workers=0, threads=1, warmup_epochs=0, out=str(tmp_path / "run"),
    )  # fmt: skip
    s = fit(cfg, progress=False, report=False)
    assert list(s["per_class_top1"]) == ["cow", "ant"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["class_names"] == ["cow", "ant"] and config["num_classes"] == 2
    assert config["steps_per_epoch"] == 2  # 4 train images of each of the 2 classes, batches of 4
    argv = ["train", "lenet5_relu", "--data", "imagefolder", "--data-dir", str(root), "--classes", "cow,emu",
            "--input-size", "32", "--epochs", "1", "--workers", "0", "--out", str(tmp_path / "bad"), "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "has no class 'emu'; its classes are ant, bee, cow, dog" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad").exists()
