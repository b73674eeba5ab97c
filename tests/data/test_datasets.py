"""Dataset location, loading, caching and input adaptation."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from cnnzoo.data import (
    FASHION_MNIST_CLASSES,
    DatasetFormatError,
    DatasetNotFoundError,
    adapt_images,
    load_arrays,
    load_dataset,
    resolve_input,
    write_idx,
)
from cnnzoo.errors import ConfigError
from cnnzoo.registry import get_model_config


def make_mnist_dir(root, n_train=12, n_test=6, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for stem, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{stem}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{stem}-labels-idx1-ubyte{ext}", rng.integers(0, 10, n, dtype=np.uint8))
    return root


def test_real_fashion_mnist(fashion_train, fashion_test):
    assert fashion_train.images.shape == (60000, 1, 28, 28) and fashion_train.images.dtype == torch.uint8
    assert fashion_test.images.shape == (10000, 1, 28, 28)
    assert fashion_train.labels.dtype == torch.int64
    assert torch.bincount(fashion_train.labels).tolist() == [6000] * 10  # balanced classes
    assert fashion_train.classes == FASHION_MNIST_CLASSES and fashion_train.classes[9] == "Ankle boot"
    x = fashion_train.images[:10000].float() / 255
    assert (
        abs(x.mean().item() - fashion_train.mean[0]) < 0.01
        and abs(x.std().item() - fashion_train.std[0]) < 0.01
    )


def test_mnist_from_any_directory_gz_or_raw(tmp_path):
    for gz in (True, False):
        d = make_mnist_dir(tmp_path / f"m{gz}", gz=gz)
        train = load_dataset("mnist", "train", data_dir=d)
        test = load_dataset("mnist", "test", data_dir=d)
        assert len(train) == 12 and len(test) == 6 and train.classes[3] == "3"


def test_env_variable_and_subdirectory(tmp_path, monkeypatch):
    make_mnist_dir(tmp_path / "data" / "mnist")
    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path / "data"))
    assert len(load_dataset("mnist", "test")) == 6


def test_missing_dataset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNZOO_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("fashion-mnist", data_dir=tmp_path / "empty")
    msg = str(e.value)
    assert (
        "sudo apt-get install dataset-fashion-mnist" in msg and "CNNZOO_DATA" in msg and "--data-dir" in msg
    )
    assert str(tmp_path / "empty") in msg and "train-images-idx3-ubyte" in msg
    with pytest.raises(DatasetNotFoundError, match="CNNZOO_DATA"):
        load_dataset("mnist", data_dir=tmp_path)


def test_corrupt_dataset_file_is_named(tmp_path):
    d = make_mnist_dir(tmp_path / "m", gz=False)
    p = d / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-50])
    with pytest.raises(DatasetFormatError, match="t10k-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", "test", data_dir=d, use_cache=False)


def test_image_label_count_mismatch(tmp_path):
    d = make_mnist_dir(tmp_path / "m")
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DatasetFormatError, match="6 images but .* 5 labels"):
        load_dataset("mnist", "test", data_dir=d)


def test_cache_is_written_and_invalidated(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CNNZOO_CACHE", str(cache))
    d = make_mnist_dir(tmp_path / "m")
    x1, y1, _, _ = load_arrays("mnist", "train", data_dir=d)
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and all(f.endswith(".npy") for f in files)
    x2, _, _, _ = load_arrays("mnist", "train", data_dir=d)  # served from the cache
    np.testing.assert_array_equal(x1, x2)
    # new files (other size/mtime) -> a new cache entry, never stale data
    make_mnist_dir(d, n_train=20, seed=1)
    os.utime(d / "train-images-idx3-ubyte.gz", ns=(1, 1))
    x3, y3, _, _ = load_arrays("mnist", "train", data_dir=d)
    assert x3.shape[0] == 20


def test_load_arrays_does_not_import_torch(tmp_path):
    import subprocess
    import sys

    d = make_mnist_dir(tmp_path / "m")
    code = (
        "import sys; from cnnzoo.data import load_arrays; x, y, s, r = load_arrays('mnist', 'test', "
        f"data_dir={str(d)!r}); assert x.shape == (6, 1, 28, 28); assert 'torch' not in sys.modules"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_unknown_dataset_suggests():
    with pytest.raises(ConfigError, match="fashion-mnist"):
        load_dataset("fashion-mnst")


def test_pad_28_to_32_uses_background_and_normalises():
    x = torch.full((2, 1, 28, 28), 255, dtype=torch.uint8)
    y = adapt_images(x, size=32, mode="pad", mean=(0.5,), std=(0.5,))
    assert y.shape == (2, 1, 32, 32)
    assert (y[:, :, :2] == -1).all() and (y[:, :, :, -2:] == -1).all()  # border = background 0 -> -1
    assert (y[:, :, 2:30, 2:30] == 1).all()


def test_resize_and_channel_adaptation():
    x = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    y = adapt_images(x, size=64, mode="resize", mean=(0.0,), std=(1.0,), in_chans=3)
    assert y.shape == (3, 3, 64, 64) and torch.equal(y[:, 0], y[:, 2])
    assert 0 <= y.min() and y.max() <= 1


def test_resolve_input_defaults_and_minimum():
    cfg = get_model_config("lenet5")
    assert resolve_input(cfg, None, 28) == (32, "pad")
    assert resolve_input(cfg, 32, 32) == (32, "none")
    with pytest.raises(ConfigError, match="minimum input size 32"):
        resolve_input(cfg, 16, 28)
