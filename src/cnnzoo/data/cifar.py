"""CIFAR-10 and CIFAR-100 from their "python version" pickle batches, read safely.

Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009. The archives unpack to
``cifar-10-batches-py/`` (``data_batch_1``…``5``, ``test_batch``, ``batches.meta``) and
``cifar-100-python/`` (``train``, ``test``, ``meta``). Each batch is a pickled dict whose
``data`` is a uint8 (N, 3072) array, channel-major (1024 R, 1024 G, 1024 B).

Pickles can run code when loaded, so we never call ``pickle.load`` on them: a restricted
unpickler resolves only the globals a numpy array needs and refuses everything else.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from cnnzoo.data.constants import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from cnnzoo.data.datasets import DatasetFormatError, DatasetSpec, register_dataset

__all__ = ["read_cifar_batch"]

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # numpy pickled under Python 3 encodes raw bytes through it
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR batch")


def read_cifar_batch(path: str | Path) -> dict[str, Any]:
    """Load one CIFAR pickle batch with the restricted unpickler; keys are decoded to ``str``."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = _SafeUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise
    except Exception as e:  # UnpicklingError, EOFError, ValueError on truncated or foreign files
        raise DatasetFormatError(f"{path}: not a readable CIFAR python batch ({e})") from e
    if not isinstance(raw, dict):
        raise DatasetFormatError(f"{path}: expected a pickled dict, got {type(raw).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _images(d: dict[str, Any], path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    if "data" not in d or label_key not in d:
        raise DatasetFormatError(f"{path}: missing 'data' or {label_key!r} (keys: {sorted(d)})")
    data = np.asarray(d["data"])
    labels = np.asarray(d[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetFormatError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (data.shape[0],):
        raise DatasetFormatError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
    return data.reshape(-1, 3, 32, 32), labels


def _loader(files: dict[str, tuple[str, ...]], label_key: str):
    def load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for name in files[split]:
            p = root / name
            x, y = _images(read_cifar_batch(p), p, label_key)
            xs.append(x)
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    return load


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# The 100 fine labels in label order (as in the archive's meta file).
CIFAR100_CLASSES = tuple(
    """apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup
dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion
lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear
pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew
skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger
tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm""".split()
)

_C10 = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_C100 = {"train": ("train",), "test": ("test",)}

register_dataset(
    DatasetSpec(
        name="cifar10",
        aliases=("cifar-10",),
        classes=CIFAR10_CLASSES,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        loader=_loader(_C10, "labels"),
        files=(*_C10["train"], *_C10["test"]),
        subdirs=("cifar-10-batches-py",),
        gzip_ok=False,
        how_to_get="extract the CIFAR-10 python version (cifar-10-python.tar.gz): tar xzf cifar-10-python.tar.gz",
        description="CIFAR-10: 50k/10k 32x32 RGB, 10 classes (python pickle batches, read safely)",
    )
)
register_dataset(
    DatasetSpec(
        name="cifar100",
        aliases=("cifar-100",),
        classes=CIFAR100_CLASSES,
        mean=CIFAR100_MEAN,
        std=CIFAR100_STD,
        loader=_loader(_C100, "fine_labels"),
        files=("train", "test"),
        subdirs=("cifar-100-python",),
        gzip_ok=False,
        how_to_get="extract the CIFAR-100 python version: tar xzf cifar-100-python.tar.gz",
        description="CIFAR-100: 50k/10k 32x32 RGB, 100 fine classes (python pickle batches, read safely)",
    )
)
