"""Feeds: what the trainer reads batches through, one interface for in-memory and streamed data.

:class:`Feed` is the interface and its base class; :class:`DataFeed` (a split held in memory as uint8,
batches selected by index, no DataLoader and no per-sample Python) and
:class:`cnnzoo.data.imagefolder.ImageFolderFeed` (files decoded by DataLoader workers) subclass it, so
the training loop never asks which it has.

Both feeds order an epoch the same way, in :class:`Feed` (:func:`epoch_order`): a permutation drawn from the caller's
generator, and with ``world > 1`` processes the tail of ``n % world`` dropped and ``order[rank::world]``
taken (DistributedSampler with ``drop_last``), so ranks see disjoint, equal shards whose union per
step is the 1-process run's global batch. Evaluation shards are contiguous (:func:`shard_bounds`).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from cnnzoo.data.datasets import ImageDataset
from cnnzoo.data.transforms import adapt_images

__all__ = ["Feed", "DataFeed", "epoch_order", "shard_bounds", "holdout_split", "PREADAPT_LIMIT_BYTES"]

PREADAPT_LIMIT_BYTES = 1 << 30


class Feed(abc.ABC):
    """Batches of ``(inputs, targets)`` for a model: normalised float inputs on the feed's device.

    The base class orders every feed's epochs and shards the same way (:func:`epoch_order`,
    :func:`shard_bounds`), so a subclass only says how to gather a contiguous span
    (:meth:`_span`) and a list of indices (:meth:`_pick`), plus its length, channels and
    :meth:`select`. Inputs are normalised and adapted for the model by :meth:`_adapt`.

    Attributes:
        classes: the class names, index = label.
        mean, std: the per-channel normalisation applied to the inputs (to undo it for display).
        labels: every sample's label (int64, in the feed's order).
        size, mode, in_chans, memory_format: how inputs are adapted for the model
            (see :func:`cnnzoo.data.transforms.adapt_images`).
    """

    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    labels: Tensor
    size: int
    mode: str
    in_chans: int
    memory_format: torch.memory_format

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    @abc.abstractmethod
    def channels(self) -> int:
        """Channels of the stored images (the model may take another count: the feed adapts)."""

    @abc.abstractmethod
    def select(self, indices: Sequence[int] | Tensor) -> Feed:
        """A feed of the samples at ``indices`` (in that order), same settings."""

    def num_batches(self, batch_size: int, *, world: int = 1) -> int:
        """Batches per epoch of one of ``world`` ranks."""
        n = len(self) // world if world > 1 else len(self)
        return -(-n // batch_size)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        start: int = 0,
        rank: int = 0,
        world: int = 1,
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """An epoch of batches from batch ``start``, in :func:`epoch_order`."""
        order = epoch_order(len(self), shuffle=shuffle, generator=generator, rank=rank, world=world)
        if order is None:
            yield from self._span(start * batch_size, len(self), batch_size)
        else:
            yield from self._pick(order[start * batch_size :], batch_size)

    def shard(self, batch_size: int, *, rank: int, world: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Evaluation batches of rank ``rank``: a contiguous slice, nothing dropped."""
        lo, hi = shard_bounds(len(self), rank, world)
        yield from self._span(lo, hi, batch_size)

    def preload(self) -> None:
        """Do now what the first batch would otherwise do (a no-op where nothing is prepared ahead)."""
        return None

    @abc.abstractmethod
    def _span(self, lo: int, hi: int, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Batches of the samples ``lo, ..., hi - 1`` in order (the last one may be short)."""

    @abc.abstractmethod
    def _pick(self, order: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Batches of the samples at ``order`` (int64 indices), in that order."""

    def _adapt(self, images: Tensor) -> Tensor:
        return adapt_images(
            images,
            size=self.size,
            mode=self.mode,
            mean=self.mean,
            std=self.std,
            in_chans=self.in_chans,
            memory_format=self.memory_format,
        )


def epoch_order(
    n: int, *, shuffle: bool, generator: torch.Generator | None, rank: int = 0, world: int = 1
) -> Tensor | None:
    """The sample indices of one rank's epoch (``None``: all of them in order, one process)."""
    if world == 1:
        return torch.randperm(n, generator=generator) if shuffle else None
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    return order[: n - n % world][rank::world]


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rank ``rank``'s evaluation slice ``[lo, hi)``: the ranks together cover ``[0, n)`` once."""
    return rank * n // world, (rank + 1) * n // world


def holdout_split(n: int, n_val: int, seed: int) -> tuple[Tensor, Tensor]:
    """Split ``range(n)`` into (train, validation) indices: ``n_val`` drawn by ``seed``.

    The validation indices are ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:n_val]``
    sorted; the training indices are the rest, in increasing order. The split is a function of
    ``(n, n_val, seed)`` alone, so a run directory reproduces it from its config.
    """
    if not 0 <= n_val < n:
        raise ValueError(f"cannot hold out {n_val} of {n} samples")
    val = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:n_val].sort().values
    keep = torch.ones(n, dtype=torch.bool)
    keep[val] = False
    return keep.nonzero().flatten(), val


class DataFeed(Feed):
    """A :class:`Feed` over an in-memory :class:`ImageDataset`, adapted for a model.

    When the adapted float copy is small (LeNet at 32×32: 245 MB for 60k images) it is made once, on
    first use, and reused every epoch; otherwise each batch is adapted on the fly.

    Args:
        ds: the split, uint8 (N, C, H, W).
        size, mode: the model's input side and ``"pad"``/``"resize"``/``"none"``
            (from :func:`cnnzoo.data.resolve_input`).
        in_chans: the model's input channels.
        device: where batches go.
        memory_format: of the input batches (``torch.channels_last`` for channels-last models).
    """

    def __init__(
        self,
        ds: ImageDataset,
        *,
        size: int,
        mode: str,
        in_chans: int,
        device: torch.device,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> None:
        self.ds = ds
        self.size, self.mode, self.in_chans = size, mode, in_chans
        self.device = device
        self.memory_format = memory_format
        self.classes, self.mean, self.std = tuple(ds.classes), tuple(ds.mean), tuple(ds.std)
        self.images = ds.images.to(device)
        self.labels = ds.labels.to(device)
        self._adapted: Tensor | None = None

    def __len__(self) -> int:
        return len(self.ds)

    @property
    def channels(self) -> int:
        return self.ds.channels

    def select(self, indices: Sequence[int] | Tensor) -> DataFeed:
        idx = torch.as_tensor(indices, dtype=torch.long)
        ds = dataclasses.replace(self.ds, images=self.ds.images[idx], labels=self.ds.labels[idx])
        return DataFeed(
            ds,
            size=self.size,
            mode=self.mode,
            in_chans=self.in_chans,
            device=self.device,
            memory_format=self.memory_format,
        )

    def preload(self) -> None:
        """Make the adapted copy of the split now (if it fits), rather than at the first batch."""
        self._source()

    def _source(self) -> Tensor | None:
        """The adapted copy of the whole split, made on first use when it fits the limit."""
        fits = len(self) * self.in_chans * self.size * self.size * 4 <= PREADAPT_LIMIT_BYTES
        if self._adapted is None and fits:
            self._adapted = self._adapt(self.images)
        return self._adapted

    def _pick(self, order: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        order = order.to(self.device)
        adapted = self._source()
        for i in range(0, order.numel(), batch_size):
            idx = order[i : i + batch_size]
            if adapted is not None:
                x = adapted.index_select(0, idx)
            else:
                x = self._adapt(self.images.index_select(0, idx))
            yield x, self.labels.index_select(0, idx)

    def _span(self, lo: int, hi: int, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        adapted = self._source()
        for i in range(lo, hi, batch_size):
            idx = slice(i, min(i + batch_size, hi))
            x = adapted[idx] if adapted is not None else self._adapt(self.images[idx])
            yield x, self.labels[idx]
