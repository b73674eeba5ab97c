"""Image datasets held in memory as uint8 tensors.

Every dataset is loaded once into ``(N, C, H, W)`` uint8 images and int64 labels. Decoded
arrays are cached as ``.npy`` under ``$CNNZOO_CACHE`` (default ``~/.cache/cnnzoo``), keyed by the
source files' paths, sizes and mtimes, so later starts skip the gzip decoding.

Where the files are looked for, first match wins:

1. ``data_dir`` (the CLI's ``--data-dir``), either the directory with the files or its parent;
2. ``$CNNZOO_DATA``, the same way;
3. the Debian package's directory (``/usr/share/datasets/fashion-mnist`` for Fashion-MNIST).

Other datasets register themselves with :func:`register_dataset`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnzoo.data.constants import (
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    KMNIST_MEAN,
    KMNIST_STD,
    MNIST_MEAN,
    MNIST_STD,
)
from cnnzoo.data.idx import IdxError, read_idx
from cnnzoo.errors import CnnzooError, ConfigError

if TYPE_CHECKING:  # torch is imported only by load_dataset: the NumPy engine reads arrays without it
    from torch import Tensor

__all__ = [
    "ImageDataset",
    "DatasetSpec",
    "DatasetNotFoundError",
    "DatasetFormatError",
    "register_dataset",
    "list_datasets",
    "load_dataset",
    "load_arrays",
    "dataset_spec",
    "FASHION_MNIST_CLASSES",
]

FASHION_MNIST_CLASSES = (
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
)
MNIST_CLASSES = tuple(str(i) for i in range(10))


class DatasetNotFoundError(CnnzooError, FileNotFoundError):
    """The dataset's files are not where they were looked for; the message says how to get them."""


class DatasetFormatError(CnnzooError, ValueError):
    """A dataset file exists but is malformed; the message names the file."""


@dataclass
class ImageDataset:
    """An in-memory split: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,)."""

    name: str
    split: str
    images: Tensor
    labels: Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    root: Path | None = None

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def subset(self, n: int, *, seed: int = 0) -> ImageDataset:
        """A class-stratified-by-chance random subset of ``n`` samples (all if n >= len)."""
        if n >= len(self):
            return self
        import torch

        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return ImageDataset(
            self.name,
            self.split,
            self.images[idx],
            self.labels[idx],
            self.classes,
            self.mean,
            self.std,
            self.root,
        )


@dataclass(frozen=True)
class DatasetSpec:
    """How to find and read one dataset.

    ``loader(root, split) -> (images uint8 NCHW numpy, labels int64 numpy)`` reads a split;
    ``files`` are the names that must exist under ``root`` (used to find the directory and to
    key the cache); ``debian_dir``/``debian_package`` say where Debian installs it, if anywhere.
    """

    name: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    loader: Callable[[Path, str], tuple[np.ndarray, np.ndarray]]
    files: tuple[str, ...]
    subdirs: tuple[str, ...] = ()
    debian_dir: str | None = None
    debian_package: str | None = None
    cacheable: bool = True
    streaming: bool = False  # too big for memory: read through cnnzoo.data.imagefolder.ImageFolderFeed
    gzip_ok: bool = True  # files may also be stored as NAME.gz (the IDX datasets)
    how_to_get: str = ""  # a line telling users where the files come from, when Debian has no package
    description: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)


_DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    for key in (spec.name, *spec.aliases):
        if key in _DATASETS:
            raise ValueError(f"dataset {key!r} is already registered")
        _DATASETS[key] = spec
    return spec


def list_datasets() -> list[str]:
    return sorted({s.name for s in _DATASETS.values()})


def dataset_spec(name: str) -> DatasetSpec:
    if not isinstance(name, str):
        raise ConfigError(f"a dataset name is a string, got {name!r}; known: {', '.join(list_datasets())}")
    key = "".join(name.split()).lower().replace("_", "-")
    if key not in _DATASETS:
        import difflib

        close = difflib.get_close_matches(key, list(_DATASETS), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown dataset {name!r}.{hint} Known: {', '.join(list_datasets())}")
    return _DATASETS[key]


# ----------------------------------------------------------------------------- locating files
def _find_file(root: Path, stem: str) -> Path | None:
    for cand in (root / stem, root / f"{stem}.gz"):
        if cand.is_file():
            return cand
    return None


def _has_files(root: Path, spec: DatasetSpec) -> bool:
    return all(_find_file(root, f) is not None for f in spec.files)


def _candidates(base: Path, spec: DatasetSpec) -> list[Path]:
    return [base, *(base / s for s in spec.subdirs)]


def locate(spec: DatasetSpec, data_dir: str | Path | None = None) -> Path:
    """The directory holding ``spec``'s files, or :class:`DatasetNotFoundError` saying how to get them."""
    tried: list[str] = []
    sources: list[tuple[str, Path]] = []
    if data_dir is not None:
        sources.append(("--data-dir", Path(data_dir).expanduser()))
    env = os.environ.get("CNNZOO_DATA")
    if env:
        sources.append(("$CNNZOO_DATA", Path(env).expanduser()))
    if spec.debian_dir:
        sources.append(("Debian package", Path(spec.debian_dir)))
    for label, base in sources:
        for cand in _candidates(base, spec):
            if _has_files(cand, spec):
                return cand
        tried.append(f"{label}: {base}")
        if label == "--data-dir":  # an explicit directory that is wrong is an error, not a fallback
            break
    files = ", ".join(f"{f}[.gz]" if spec.gzip_ok else f for f in spec.files)
    how = []
    if spec.debian_package:
        how.append(f"install it with `sudo apt-get install {spec.debian_package}` (to {spec.debian_dir})")
    if spec.how_to_get:
        how.append(spec.how_to_get)
    how.append(f"set CNNZOO_DATA or pass --data-dir DIR (a folder holding the {spec.name} files)")
    raise DatasetNotFoundError(
        f"{spec.name} not found (looked in: {'; '.join(tried) or 'nowhere: no directory given'}; "
        f"expected the files {files}): " + ", or ".join(how)
    )


# ----------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    env = os.environ.get("CNNZOO_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "cnnzoo"


def _cache_key(spec: DatasetSpec, root: Path, split: str) -> str:
    h = hashlib.sha1(f"{spec.name}|{split}|v1".encode())
    for f in spec.files:
        p = _find_file(root, f)
        if p is not None:
            st = p.stat()
            h.update(f"|{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return f"{spec.name}-{split}-{h.hexdigest()[:16]}"


def _atomic_save_npy(path: Path, arr: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_cached(spec: DatasetSpec, root: Path, split: str, use_cache: bool) -> tuple[np.ndarray, np.ndarray]:
    if not (use_cache and spec.cacheable):
        return spec.loader(root, split)
    key = _cache_key(spec, root, split)
    d = cache_dir()
    xi, yi = d / f"{key}-images.npy", d / f"{key}-labels.npy"
    if xi.is_file() and yi.is_file():
        try:
            x = np.load(xi, allow_pickle=False)
            y = np.load(yi, allow_pickle=False)
            if x.shape[0] == y.shape[0]:
                return x, y
        except (OSError, ValueError):
            pass  # a damaged cache entry is rebuilt below
    x, y = spec.loader(root, split)
    try:
        d.mkdir(parents=True, exist_ok=True)
        _atomic_save_npy(xi, x)
        _atomic_save_npy(yi, y)
    except OSError:
        pass  # a read-only home is fine: we just decode every time
    return x, y


def load_arrays(
    name: str, split: str = "train", *, data_dir: str | Path | None = None, use_cache: bool = True
) -> tuple[np.ndarray, np.ndarray, DatasetSpec, Path]:
    """One split as numpy arrays, without torch: (images uint8 NCHW, labels int64, spec, root).

    Same search order, cache and errors as :func:`load_dataset`.
    """
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    spec = dataset_spec(name)
    if spec.streaming:
        raise ConfigError(
            f"{spec.name} is streamed from disk, not loaded into memory; "
            "use cnnzoo.data.imagefolder.ImageFolderFeed (cnnzoo train does this for you)"
        )
    root = locate(spec, data_dir)
    try:
        x, y = _load_cached(spec, root, split, use_cache)
    except IdxError as e:
        raise DatasetFormatError(str(e)) from e
    if x.dtype != np.uint8 or x.ndim != 4:
        raise DatasetFormatError(
            f"{spec.name} loader returned {x.dtype} {x.shape}, expected uint8 (N, C, H, W)"
        )
    _check_labels(y, len(x), spec, root, split)
    return np.ascontiguousarray(x), np.ascontiguousarray(y).astype(np.int64, copy=False), spec, root


def _check_labels(y: np.ndarray, n: int, spec: DatasetSpec, root: Path, split: str) -> None:
    """One label per image, each a class index in ``[0, len(spec.classes))``; else DatasetFormatError."""
    where = f"{spec.name} {split} labels in {root}"
    if y.ndim != 1 or len(y) != n:
        raise DatasetFormatError(
            f"{where}: expected {n:,} labels (one per image), got shape {tuple(y.shape)}"
        )
    if not len(y):
        return
    k = len(spec.classes)
    bad = np.flatnonzero((y < 0) | (y >= k))
    if bad.size:
        i = int(bad[0])
        raise DatasetFormatError(
            f"{where}: label {int(y[i])} at index {i:,} is outside the {k} classes (0 to {k - 1}), "
            f"{bad.size:,} such label(s); the file is damaged or not {spec.name}: replace it"
        )


def load_dataset(
    name: str, split: str = "train", *, data_dir: str | Path | None = None, use_cache: bool = True
) -> ImageDataset:
    """Load one split of a registered dataset into memory as torch tensors.

    Args:
        name: ``"fashion-mnist"``, ``"mnist"``, or any registered dataset (:func:`list_datasets`).
        split: ``"train"`` or ``"test"``.
        data_dir: where the files are (else ``$CNNZOO_DATA``, else the Debian path).
        use_cache: read and write the decoded ``.npy`` cache.

    Raises:
        DatasetNotFoundError: the files are missing; the message gives the exact fix.
        DatasetFormatError: a file is corrupt or truncated; the message names it.
    """
    import torch

    x, y, spec, root = load_arrays(name, split, data_dir=data_dir, use_cache=use_cache)
    return ImageDataset(
        spec.name, split, torch.from_numpy(x), torch.from_numpy(y), spec.classes, spec.mean, spec.std, root
    )


# ----------------------------------------------------------------------------- MNIST family (IDX)
def _idx_loader(prefixes: dict[str, str]) -> Callable[[Path, str], tuple[np.ndarray, np.ndarray]]:
    def load(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        stem = prefixes[split]
        xp = _find_file(root, f"{stem}-images-idx3-ubyte")
        yp = _find_file(root, f"{stem}-labels-idx1-ubyte")
        if xp is None or yp is None:
            raise DatasetNotFoundError(
                f"{root}: missing {stem}-images-idx3-ubyte or {stem}-labels-idx1-ubyte"
            )
        x = read_idx(xp, expect_ndim=3)
        y = read_idx(yp, expect_ndim=1)
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise IdxError(f"{xp}/{yp.name}: expected unsigned-byte IDX data, got {x.dtype}/{y.dtype}")
        if x.shape[0] != y.shape[0]:
            raise IdxError(f"{xp} has {x.shape[0]:,} images but {yp} has {y.shape[0]:,} labels")
        return x[:, None], y.astype(np.int64)

    return load


_MNIST_FILES = tuple(
    f"{s}-{k}" for s in ("train", "t10k") for k in ("images-idx3-ubyte", "labels-idx1-ubyte")
)

register_dataset(
    DatasetSpec(
        name="fashion-mnist",
        aliases=("fashionmnist", "fmnist"),
        classes=FASHION_MNIST_CLASSES,
        mean=FASHION_MNIST_MEAN,
        std=FASHION_MNIST_STD,
        loader=_idx_loader({"train": "train", "test": "t10k"}),
        files=_MNIST_FILES,
        subdirs=("fashion-mnist", "FashionMNIST/raw"),
        debian_dir="/usr/share/datasets/fashion-mnist",
        debian_package="dataset-fashion-mnist",
        description="Zalando's Fashion-MNIST: 60k/10k 28x28 grayscale, 10 clothing classes",
    )
)
register_dataset(
    DatasetSpec(
        name="kmnist",
        aliases=("kuzushiji-mnist",),
        classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        mean=KMNIST_MEAN,
        std=KMNIST_STD,
        loader=_idx_loader({"train": "train", "test": "t10k"}),
        files=_MNIST_FILES,
        subdirs=("kmnist", "KMNIST/raw"),
        description="Kuzushiji-MNIST (Clanuwat et al. 2018): 60k/10k 28x28 cursive Japanese, IDX files",
        how_to_get="get the four KMNIST IDX files (train/t10k images and labels, .gz) from the KMNIST release",
    )
)
register_dataset(
    DatasetSpec(
        name="mnist",
        classes=MNIST_CLASSES,
        mean=MNIST_MEAN,
        std=MNIST_STD,
        loader=_idx_loader({"train": "train", "test": "t10k"}),
        files=_MNIST_FILES,
        subdirs=("mnist", "MNIST/raw"),
        description="LeCun's MNIST digits: 60k/10k 28x28 grayscale (any directory of its IDX files)",
        how_to_get="get the four MNIST IDX files (train/t10k images and labels, .gz) from the MNIST page",
    )
)


def _streamed(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    raise ConfigError("imagefolder is streamed by cnnzoo.data.imagefolder.ImageFolderFeed")


register_dataset(
    DatasetSpec(
        name="imagefolder",
        aliases=("image-folder", "imagenet"),
        classes=(),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        loader=_streamed,
        files=(),
        cacheable=False,
        streaming=True,
        description="any ImageFolder tree (ROOT/train/<class>/*, ROOT/val/<class>/*), streamed with workers",
    )
)

# Importing this registers CIFAR-10 and CIFAR-100 (torch-free, like everything in this module).
from cnnzoo.data import cifar as _cifar  # noqa: E402,F401
