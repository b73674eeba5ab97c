"""CIFAR-10/100 pickle batches, KMNIST IDX and ImageFolder trees, on small files in the real formats."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from cnnzoo.data import (
    DatasetFormatError,
    DatasetNotFoundError,
    ImageFolderFeed,
    load_dataset,
    read_cifar_batch,
)
from cnnzoo.data.cifar import CIFAR100_CLASSES


def _cifar_batch(path, n, label_key, seed):
    rng = np.random.default_rng(seed)
    d = {
        b"batch_label": b"testing batch",
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key.encode(): rng.integers(0, 10, n).tolist(),
        b"filenames": [b"x.png"] * n,
    }
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)  # the archives were written by Python 2 with protocol 2
    return d


def make_cifar10(root, n=4):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    batches = [_cifar_batch(d / f"data_batch_{i}", n, "labels", i) for i in range(1, 6)]
    _cifar_batch(d / "test_batch", n, "labels", 9)
    return batches


def test_cifar10_layout_and_channel_order(tmp_path):
    batches = make_cifar10(tmp_path)
    train = load_dataset("cifar10", "train", data_dir=tmp_path)
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.classes[0] == "airplane" and len(train.mean) == 3
    # row 0 of data_batch_1: the first 1024 bytes are the red plane, row-major
    first = batches[0][b"data"][0]
    assert torch.equal(train.images[0, 0].flatten(), torch.from_numpy(first[:1024]))
    assert torch.equal(train.images[0, 2].flatten(), torch.from_numpy(first[2048:]))
    assert train.labels[:4].tolist() == batches[0][b"labels"]
    assert len(load_dataset("cifar10", "test", data_dir=tmp_path)) == 4


def test_cifar100_fine_labels(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    _cifar_batch(d / "train", 6, "fine_labels", 0)
    _cifar_batch(d / "test", 3, "fine_labels", 1)
    ds = load_dataset("cifar100", "train", data_dir=tmp_path)
    assert len(ds) == 6 and ds.num_classes == 100 and CIFAR100_CLASSES[99] == "worm"


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_pickle_with_code_is_refused(tmp_path):
    p = tmp_path / "data_batch_1"
    with open(p, "wb") as f:
        pickle.dump({b"data": _Evil()}, f, protocol=2)
    with pytest.raises(DatasetFormatError, match="refusing to load"):
        read_cifar_batch(p)


def test_cifar_truncated_and_malformed(tmp_path):
    make_cifar10(tmp_path)
    p = tmp_path / "cifar-10-batches-py" / "test_batch"
    p.write_bytes(p.read_bytes()[:300])
    with pytest.raises(DatasetFormatError, match="test_batch"):
        load_dataset("cifar10", "test", data_dir=tmp_path, use_cache=False)
    with open(p, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(DatasetFormatError, match=r"expected uint8 \(N, 3072\)"):
        load_dataset("cifar10", "test", data_dir=tmp_path, use_cache=False)


def test_cifar_missing_says_what_was_expected(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNZOO_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("cifar10", data_dir=tmp_path)
    msg = str(e.value)
    assert "data_batch_1, " in msg and "--data-dir" in msg and "tar xzf cifar-10-python.tar.gz" in msg


def test_kmnist_idx(tmp_path):
    from cnnzoo.data import write_idx

    root = tmp_path / "kmnist"
    root.mkdir()
    rng = np.random.default_rng(0)
    for stem, n in (("train", 8), ("t10k", 4)):
        write_idx(root / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    ds = load_dataset("kmnist", "train", data_dir=tmp_path)  # finds the kmnist/ subdirectory
    assert len(ds) == 8 and ds.classes[0] == "o" and ds.images.shape == (8, 1, 28, 28)


def _png(path, rgb):
    from PIL import Image

    Image.new("RGB", (60, 40), tuple(rgb)).save(path)


def make_tree(root, classes=("cat", "dog"), per_class=3):
    for split in ("train", "val"):
        for k, c in enumerate(classes):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(per_class):
                _png(d / f"{i}.png", [200 * k, 10 * i, 50])
    return root


def test_imagefolder_streams_batches(tmp_path):
    make_tree(tmp_path)
    feed = ImageFolderFeed(tmp_path, "train", size=16, in_chans=3, mean=(0.0,) * 3, std=(1.0,) * 3, workers=0)
    assert len(feed) == 6 and feed.classes == ("cat", "dog") and feed.num_batches(4) == 2
    xs, ys = zip(*feed.batches(4), strict=True)
    assert [x.shape for x in xs] == [(4, 3, 16, 16), (2, 3, 16, 16)]
    y = torch.cat(ys)
    assert y.tolist() == [0, 0, 0, 1, 1, 1]
    x = torch.cat(xs)
    assert torch.allclose(x[3:, 0], torch.full_like(x[3:, 0], 200 / 255), atol=1e-6)  # dog images are red
    # shuffled and sharded: two ranks see disjoint halves of one permutation, from the same seed
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    r0 = torch.cat([b[1] for b in feed.batches(2, shuffle=True, generator=g(), rank=0, world=2)])
    r1 = torch.cat([b[1] for b in feed.batches(2, shuffle=True, generator=g(), rank=1, world=2)])
    assert len(r0) == len(r1) == 3
    # resuming at batch 1 skips exactly the first batch
    full = [b[1].tolist() for b in feed.batches(2, shuffle=True, generator=g())]
    rest = [b[1].tolist() for b in feed.batches(2, shuffle=True, generator=g(), start=1)]
    assert rest == full[1:]


def test_imagefolder_with_workers_and_gray_model(tmp_path):
    make_tree(tmp_path, per_class=2)
    feed = ImageFolderFeed(tmp_path, "test", size=8, in_chans=1, workers=2)
    ((x, y),) = list(feed.batches(8))
    assert x.shape == (4, 1, 8, 8) and y.shape == (4,)


def test_imagefolder_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNZOO_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError, match="--data-dir"):
        ImageFolderFeed(None, "train", size=8)
    with pytest.raises(DatasetNotFoundError, match="train/<class>"):
        ImageFolderFeed(tmp_path, "train", size=8)
    (tmp_path / "train").mkdir()
    with pytest.raises(DatasetFormatError, match="no class folders"):
        ImageFolderFeed(tmp_path, "train", size=8)
    make_tree(tmp_path / "t", per_class=1)
    bad = tmp_path / "t" / "train" / "cat" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    feed = ImageFolderFeed(tmp_path / "t", "train", size=8, workers=0)
    with pytest.raises(DatasetFormatError, match="broken.png"):
        list(feed.batches(4))
