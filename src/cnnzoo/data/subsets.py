"""Subsets for transfer learning: some of a dataset's classes (relabelled), and N labelled images per class.

``--classes 5,6,7,8,9`` keeps those classes of every split and relabels them ``0..k-1`` in the order
given, so that a model trained on classes 0–4 and one trained on 5–9 both have a 5-way head (the
lecture's transfer setting). ``--train-per-class N`` then takes N training images of each class,
drawn by the seed: the "few labels" of the lecture, the same images for every mode compared.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from cnnzoo.data.datasets import ImageDataset
from cnnzoo.errors import ConfigError

__all__ = ["select_classes", "per_class_indices"]


def select_classes(ds: ImageDataset, classes: Sequence[int]) -> ImageDataset:
    """The images of ``classes`` only, labelled by their position in ``classes``.

    Raises:
        ConfigError: an id outside the dataset's classes, or one given twice.
    """
    ids = list(classes)
    if not ids:
        return ds
    bad = [c for c in ids if not 0 <= c < ds.num_classes]
    if bad:
        raise ConfigError(
            f"--classes {','.join(map(str, ids))}: {ds.name} has classes 0..{ds.num_classes - 1}, "
            f"so {', '.join(map(str, bad))} is out of range"
        )
    if len(set(ids)) != len(ids):
        raise ConfigError(f"--classes {','.join(map(str, ids))} repeats a class; give each class id once")
    relabel = torch.full((ds.num_classes,), -1, dtype=torch.long)
    relabel[torch.tensor(ids)] = torch.arange(len(ids))
    new = relabel[ds.labels]
    keep = (new >= 0).nonzero().flatten()
    return ImageDataset(
        ds.name,
        ds.split,
        ds.images[keep],
        new[keep],
        tuple(ds.classes[c] for c in ids),
        ds.mean,
        ds.std,
        ds.root,
    )


def per_class_indices(
    labels: Tensor, n: int, seed: int, *, classes: Sequence[str] = (), held_out: bool = False
) -> Tensor:
    """Indices of ``n`` samples of each label in ``labels``, drawn by ``seed``, in increasing order.

    ``classes`` (the class names, index = label) sets the class count; without it, the largest label.
    Each class's draw is the first ``n`` of a permutation of its samples from one generator seeded
    with ``seed``, so the choice is a function of the labels, ``n`` and ``seed`` alone.

    Raises:
        ConfigError: a class with fewer than ``n`` samples (the message names it and its count;
            ``held_out``: a validation split was taken from them first).
    """
    labels = labels.cpu()
    num = len(classes) if classes else (int(labels.max()) + 1 if labels.numel() else 0)
    counts = torch.bincount(labels, minlength=num)
    short = [(c, int(counts[c])) for c in range(num) if counts[c] < n]
    if short:
        c, have = min(short, key=lambda t: t[1])
        name = repr(classes[c]) if c < len(classes) else str(c)
        raise ConfigError(
            f"--train-per-class {n}: class {name} has only {have:,} training images"
            f"{' left after --val-samples' if held_out else ''}; use --train-per-class {have} or fewer"
        )
    gen = torch.Generator().manual_seed(seed)
    picked = []
    for c in range(num):
        members = (labels == c).nonzero().flatten()
        picked.append(members[torch.randperm(members.numel(), generator=gen)[:n]])
    return torch.cat(picked).sort().values if picked else torch.zeros(0, dtype=torch.long)
