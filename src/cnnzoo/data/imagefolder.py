"""Any ImageFolder tree (the ImageNet layout), decoded and streamed by torchvision with workers.

Layout: ``ROOT/train/<class>/<image>`` and ``ROOT/val/<class>/<image>`` (``test/`` is accepted for
the test split too). Classes are the sorted folder names of ``train/``; the test split must use the
same names. Images are decoded by Pillow (JPEG, PNG, GIF, WebP, ...) as RGB in
DataLoader worker processes, resized so the short side is ``size · 256/224`` and centre-cropped to
``size`` (the ImageNet evaluation convention), and batched as uint8. Random augmentation happens
afterwards on whole batches (``cnnzoo.train.augment``), from the trainer's generator, so a run is
reproducible and resumable whatever the number of workers.

``select`` (``--classes``) keeps some classes only, by folder name or by index among the sorted
folder names, in the order given and relabelled ``0..k-1``; ``classes`` then holds their names, so
the report and the per-class accuracy read them (:func:`cnnzoo.data.subsets.resolve_classes`).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor

from cnnzoo.data.constants import IMAGENET_MEAN, IMAGENET_STD
from cnnzoo.data.datasets import DatasetFormatError, DatasetNotFoundError
from cnnzoo.data.feed import Feed

__all__ = ["ImageFolderFeed", "find_split_dir", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".JPEG", ".JPG", ".PNG")
_SPLIT_DIRS = {"train": ("train",), "test": ("val", "test")}


def find_split_dir(root: str | Path | None, split: str) -> Path:
    """``ROOT/train`` or ``ROOT/val`` (or ``ROOT/test``), with a clear error when missing."""
    if root is None:
        env = os.environ.get("CNNZOO_DATA")
        if not env:
            raise DatasetNotFoundError(
                "imagefolder needs a directory: pass --data-dir ROOT (or set CNNZOO_DATA) where "
                "ROOT/train/<class>/*.jpg and ROOT/val/<class>/*.jpg hold the images (the ImageNet layout)"
            )
        root = env
    root = Path(root).expanduser()
    for name in _SPLIT_DIRS[split]:
        d = root / name
        if d.is_dir():
            return d
    raise DatasetNotFoundError(
        f"{root}: no {' or '.join(_SPLIT_DIRS[split])}/ directory for the {split} split. Expected the "
        f"ImageNet layout: {root}/train/<class>/<image> and {root}/val/<class>/<image>"
    )


class _Decoded(torch.utils.data.Dataset):
    """Decode one file to a (3, size, size) uint8 tensor: short side to size·256/224, centre crop."""

    def __init__(self, samples: list[tuple[str, int]], size: int) -> None:
        self.samples = samples
        self.size = size
        self.resize = max(size, round(size * 256 / 224))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        from PIL import Image
        from torchvision.transforms.v2 import functional as TF

        path, label = self.samples[i]
        try:
            with Image.open(path) as im:
                img = TF.pil_to_tensor(im.convert("RGB"))
        except Exception as e:  # PIL's UnidentifiedImageError / OSError on a damaged file
            raise DatasetFormatError(f"{path}: cannot decode this image ({e})") from e
        img = TF.resize(img, self.resize, antialias=True)
        return TF.center_crop(img, [self.size, self.size]), label


class ImageFolderFeed(Feed):
    """A :class:`cnnzoo.data.feed.Feed` streamed from an ImageFolder split (decoded by DataLoader workers).

    Args:
        root: the tree's root (holding ``train/`` and ``val/``).
        split: ``"train"`` or ``"test"``.
        size: the model's input side.
        in_chans: the model's input channels (1 averages RGB to gray).
        mean, std: normalisation (ImageNet's by default).
        device: where batches go.
        workers: DataLoader worker processes decoding images.
        classes: class names to enforce (the train split's, for the test split).
        memory_format: of the input batches.
        select: keep only these classes (folder names or indices among the sorted folders), in this
            order, labelled by their position; the split's other folders are ignored.

    Raises:
        UnknownClassError: a ``select`` name that is no folder of the split (the message lists them).
        DatasetFormatError: no class folders, no images, or folders that ``classes`` lacks.
    """

    def __init__(
        self,
        root: str | Path | None,
        split: str,
        *,
        size: int,
        in_chans: int = 3,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        device: torch.device | str = "cpu",
        workers: int = 2,
        classes: tuple[str, ...] | None = None,
        memory_format: torch.memory_format = torch.contiguous_format,
        select: Sequence[int | str] | None = None,
    ) -> None:
        from torchvision.datasets.folder import find_classes, make_dataset

        from cnnzoo.data.subsets import resolve_classes

        self.dir = find_split_dir(root, split)
        found, _ = find_classes(str(self.dir)) if any(p.is_dir() for p in self.dir.iterdir()) else ([], {})
        if not found:
            raise DatasetFormatError(f"{self.dir}: no class folders; expected {self.dir}/<class>/<image>")
        if select:
            found = [found[i] for i in resolve_classes(list(select), found, f"the imagefolder {self.dir}")]
        self.classes = tuple(classes) if classes is not None else tuple(found)
        unknown = [c for c in found if c not in self.classes]
        if unknown:
            raise DatasetFormatError(f"{self.dir}: class folder(s) {unknown[:5]} are not in the train split")
        index = {c: i for i, c in enumerate(self.classes)}
        samples = make_dataset(
            str(self.dir), index, extensions=tuple(e.lower() for e in IMAGE_EXTENSIONS), allow_empty=True
        )
        if not samples:
            raise DatasetFormatError(f"{self.dir}: no images with extensions {IMAGE_EXTENSIONS}")
        self.size, self.in_chans, self.mean, self.std = size, in_chans, tuple(mean), tuple(std)
        self.mode = "none"  # decoded at the model's size already
        self.device = torch.device(device)
        self.workers = workers
        self.memory_format = memory_format
        self._set_samples(samples)

    def _set_samples(self, samples: list[tuple[str, int]]) -> None:
        self.data = _Decoded(samples, self.size)
        self.labels = torch.tensor([s[1] for s in samples], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def channels(self) -> int:
        return 3  # decoded as RGB

    def select(self, indices: Sequence[int] | Tensor) -> ImageFolderFeed:
        out = copy.copy(self)
        out._set_samples([self.data.samples[int(i)] for i in indices])
        return out

    def _span(self, lo: int, hi: int, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        yield from self._load([list(range(i, min(i + batch_size, hi))) for i in range(lo, hi, batch_size)])

    def _pick(self, order: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        idx = order.tolist()
        yield from self._load([idx[i : i + batch_size] for i in range(0, len(idx), batch_size)])

    def _load(self, chunks: list[list[int]]) -> Iterator[tuple[Tensor, Tensor]]:
        loader = torch.utils.data.DataLoader(
            self.data,
            batch_sampler=chunks,
            num_workers=self.workers,
            persistent_workers=False,
            pin_memory=self.device.type == "cuda",
        )
        for x, y in loader:
            yield self._adapt(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)
