"""Feeding in-memory datasets to a model: batching, shuffling and input adaptation on tensors.

No DataLoader and no per-sample Python: the whole split lives in memory as uint8 and batches are
index-selected from it. When the adapted float copy is small (LeNet at 32×32: 245 MB for 60k
images) it is made once and reused every epoch; otherwise each batch is adapted on the fly.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from cnnzoo.data import ImageDataset, adapt_images

__all__ = ["DataFeed"]

PREADAPT_LIMIT_BYTES = 1 << 30


class DataFeed:
    """Batches of ``(inputs, targets)`` from an :class:`ImageDataset`, adapted for a model.

    Args:
        ds: the split, uint8 (N, C, H, W).
        size, mode: the model's input side and ``"pad"``/``"resize"``/``"none"``
            (from :func:`cnnzoo.data.resolve_input`).
        in_chans: the model's input channels.
        device: where batches go.
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
        self.images = ds.images.to(device)
        self.labels = ds.labels.to(device)
        self._adapted: Tensor | None = None
        if len(ds) * in_chans * size * size * 4 <= PREADAPT_LIMIT_BYTES:
            self._adapted = self._adapt(self.images)

    def __len__(self) -> int:
        return len(self.ds)

    def _adapt(self, images: Tensor) -> Tensor:
        return adapt_images(
            images,
            size=self.size,
            mode=self.mode,
            mean=self.ds.mean,
            std=self.ds.std,
            in_chans=self.in_chans,
            memory_format=self.memory_format,
        )

    def num_batches(self, batch_size: int, *, world: int = 1) -> int:
        """Batches per epoch of one rank (``world`` ranks share the data as DistributedSampler does)."""
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
        """Yield batches in order (or a shuffled permutation drawn from ``generator``), from batch ``start``.

        With ``world > 1`` every rank draws the same permutation (same generator state), drops the
        last ``n % world`` indices and takes ``order[rank::world]``: DistributedSampler with
        ``drop_last=True`` semantics, so ranks see disjoint, equal-sized shards.
        """
        n = len(self)
        if world > 1:
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            order = order[: n - n % world][rank::world].to(self.device)
        else:
            order = torch.randperm(n, generator=generator).to(self.device) if shuffle else None
        m = n if order is None else order.numel()
        for i in range(start * batch_size, m, batch_size):
            if order is None:
                idx = slice(i, min(i + batch_size, n))
                x = self._adapted[idx] if self._adapted is not None else self._adapt(self.images[idx])
                yield x, self.labels[idx]
            else:
                idx = order[i : i + batch_size]
                src = self._adapted if self._adapted is not None else self.images
                x = src.index_select(0, idx)
                yield (x if self._adapted is not None else self._adapt(x)), self.labels.index_select(0, idx)

    def shard(self, batch_size: int, *, rank: int, world: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Evaluation batches of rank ``rank``: the contiguous slice ``[rank·n/world, (rank+1)·n/world)``,
        nothing dropped (sum the counts over ranks to cover the split exactly once)."""
        n = len(self)
        lo, hi = rank * n // world, (rank + 1) * n // world
        for i in range(lo, hi, batch_size):
            idx = slice(i, min(i + batch_size, hi))
            x = self._adapted[idx] if self._adapted is not None else self._adapt(self.images[idx])
            yield x, self.labels[idx]
