"""Subsets for transfer learning: some of a dataset's classes (relabelled), and N labelled images per class.

``--classes 5,6,7,8,9`` keeps those classes of every split and relabels them ``0..k-1`` in the order
given, so that a model trained on classes 0–4 and one trained on 5–9 both have a 5-way head (the
lecture's transfer setting). A class is given by its index or by its name (``--classes
Sandal,Sneaker``; for an ImageFolder tree, the folder's name, its index being its position among the
sorted folder names); an entry that is exactly a class's name is that class, so a tree of folders
``0`` … ``9`` is selected by folder name (:func:`resolve_classes`). ``--train-per-class N`` then takes N training images of each class,
drawn by the seed: the "few labels" of the lecture, the same images for every mode compared.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from cnnzoo.data.datasets import ImageDataset
from cnnzoo.errors import ConfigError

__all__ = ["UnknownClassError", "resolve_classes", "select_classes", "per_class_indices"]

#: how many class names an error lists before it says how many there are
_SHOWN = 20


class UnknownClassError(ConfigError):
    """A ``--classes`` name that is not one of the dataset's classes; the message lists them."""


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _SHOWN else "")


def resolve_classes(wanted: Sequence[int | str], names: Sequence[str], dataset: str) -> list[int]:
    """The positions in ``names`` (a dataset's classes, index = label) of the ``--classes`` entries.

    An entry that is exactly a class's name (an int compared as its digits) is that class; else an
    int, or a string of digits, is an index. The order given is kept.

    Raises:
        UnknownClassError: a name that is no class of ``dataset`` (the message lists its classes).
        ConfigError: an index out of range, or a class given twice (by name or index).
    """
    given = ",".join(map(str, wanted))
    where = {n: i for i, n in enumerate(names)}
    ids, bad = [], []
    for c in wanted:
        if str(c) in where:
            ids.append(where[str(c)])
        elif isinstance(c, int) or (isinstance(c, str) and c.isdigit()):
            (ids if 0 <= int(c) < len(names) else bad).append(int(c))
        else:
            raise UnknownClassError(
                f"--classes {given}: {dataset} has no class {c!r}; its classes are {_listed(names)} "
                f"(or give indices 0..{len(names) - 1})"
            )
    if bad:
        raise ConfigError(
            f"--classes {given}: {dataset} has classes 0..{len(names) - 1}, "
            f"so {', '.join(map(str, bad))} is out of range"
        )
    if len(set(ids)) != len(ids):
        twice = sorted({names[i] for i in ids if ids.count(i) > 1})
        raise ConfigError(f"--classes {given} repeats a class ({', '.join(twice)}); give each class once")
    return ids


def select_classes(ds: ImageDataset, classes: Sequence[int | str]) -> ImageDataset:
    """The images of ``classes`` (indices or names, :func:`resolve_classes`) only, labelled by their
    position in ``classes``.

    Raises:
        UnknownClassError: a class name the dataset lacks.
        ConfigError: an id outside the dataset's classes, or one given twice.
    """
    if not list(classes):
        return ds
    ids = resolve_classes(list(classes), ds.classes, ds.name)
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
