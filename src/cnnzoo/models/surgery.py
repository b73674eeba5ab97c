"""Test-time surgery on residual networks: delete blocks, swap blocks.

Veit, Wilber, Belongie, "Residual Networks Behave Like Ensembles of Relatively Shallow Networks",
NeurIPS 2016, §4: deleting one residual block of a trained ResNet at test time barely changes its
error (Fig. 3a), except for the downsampling blocks; deleting a layer of a plain net (VGG) breaks
it (Fig. 3b); the error grows smoothly with the number of blocks deleted (Fig. 5a) and with the
number of blocks swapped (Fig. 5b).

Blocks are numbered in forward order across the stages, from 0: ``layer1.0`` is block 0, and a
CIFAR ResNet-56 has blocks 0 … 26 (:func:`block_names`). Every function works on a deep copy; the
model passed in is never changed.

What deleting means:

* a **residual** block becomes :class:`DeletedBlock`: its branch is gone and what remains is its
  shortcut, followed by the block's output activation for post-activation blocks: exactly what
  the block computes when stochastic depth drops its branch. A downsampling block keeps its
  shortcut (option A's zero padding, or the projection), so it can be deleted too; Veit et al.
  find that this is the deletion that hurts.
* a **plain** block (``residual=False``, the plain nets of He et al. §4.1) becomes the identity,
  where its input and output have the same shape. A plain block that changes the shape (the first
  of a stage: stride 2, more channels) has no shortcut to carry its input past it, and deleting it
  is refused with :class:`SurgeryError`.

Swapping exchanges two blocks of the same input and output shape and stride (Veit et al. swap
blocks within a stage); the parameter count is unchanged.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable, Sequence

from torch import Tensor, nn

from cnnzoo.errors import CnnzooError
from cnnzoo.layers.residual import BasicBlock, Bottleneck

__all__ = [
    "SurgeryError",
    "DeletedBlock",
    "blocks",
    "block_names",
    "downsampling_blocks",
    "deletable_blocks",
    "swappable_pairs",
    "delete_blocks",
    "reorder_blocks",
    "random_swaps",
]


class SurgeryError(CnnzooError, ValueError):
    """A deletion or swap that cannot be done on this network (the message says which can)."""


class DeletedBlock(nn.Module):
    """What remains of a residual block whose branch was deleted: its shortcut (and output act).

    Post-activation blocks (:class:`~cnnzoo.layers.residual.BasicBlock`,
    :class:`~cnnzoo.layers.residual.Bottleneck`) return ``act(shortcut(x))``; a pre-activation
    unit with an identity shortcut returns ``x``. ``deleted`` names the block it replaced.
    """

    cost_type = "shortcut"

    def __init__(self, block: nn.Module, name: str = "") -> None:
        super().__init__()
        self.downsample = block.downsample
        self.act = block.relu if isinstance(block, BasicBlock | Bottleneck) else None
        self.in_channels, self.out_channels = block.in_channels, block.out_channels
        self.stride = block.stride
        self.deleted = name

    def forward(self, x: Tensor) -> Tensor:
        sc = x if self.downsample is None else self.downsample(x)
        if self.act is None:
            return sc
        return self.act(sc.clone() if sc is x else sc)  # an in-place act must not touch x

    def extra_repr(self) -> str:
        return f"deleted={self.deleted!r}, {self.in_channels}, {self.out_channels}, stride={self.stride}"


def _stages(model: nn.Module) -> list[nn.Sequential]:
    names = getattr(model, "stage_names", None)
    if not names:
        raise SurgeryError(
            f"{type(model).__name__} has no stages of blocks (stage_names); block surgery works on "
            f"the ResNet family (cnnzoo.models.resnet: resnet20/56/110, plain20/56, ...)"
        )
    return [getattr(model, n) for n in names]


def _positions(model: nn.Module) -> list[tuple[nn.Sequential, int, str]]:
    """(stage, index in stage, dotted name) of every block, in forward order."""
    out = []
    stages = _stages(model)
    for name, stage in zip(model.stage_names, stages, strict=True):
        out.extend((stage, j, f"{name}.{j}") for j in range(len(stage)))
    return out


def blocks(model: nn.Module) -> list[nn.Module]:
    """The blocks of a ResNet-family model in forward order (block 0 is ``layer1.0``)."""
    return [stage[j] for stage, j, _ in _positions(model)]


def block_names(model: nn.Module) -> list[str]:
    """The dotted names of the blocks, in forward order: ``["layer1.0", "layer1.1", …]``."""
    return [name for _, _, name in _positions(model)]


def _changes_shape(block: nn.Module) -> bool:
    return getattr(block, "stride", 1) != 1 or block.in_channels != block.out_channels


def downsampling_blocks(model: nn.Module) -> list[int]:
    """Indices of the blocks that change the shape (stride 2 or more channels)."""
    return [i for i, b in enumerate(blocks(model)) if _changes_shape(b)]


def _is_residual(block: nn.Module) -> bool:
    return bool(getattr(block, "residual", False))


def _why_not_deletable(block: nn.Module) -> str | None:
    if isinstance(block, DeletedBlock):
        return "it is already deleted"
    if not hasattr(block, "in_channels"):
        return f"it is a {type(block).__name__}, not a residual-family block"
    if _is_residual(block):
        if block.downsample is not None and not isinstance(block, BasicBlock | Bottleneck):
            return "its projection shortcut takes the unit's own pre-activation, which is its branch's"
        return None
    if _changes_shape(block):
        return (
            f"it changes the shape ({block.in_channels}->{block.out_channels} channels, stride "
            f"{block.stride}) and a plain net has no shortcut to carry its input past it"
        )
    return None


def deletable_blocks(model: nn.Module) -> list[int]:
    """Indices of the blocks :func:`delete_blocks` accepts (every block of a post-activation
    ResNet; the shape-keeping blocks of a plain net)."""
    return [i for i, b in enumerate(blocks(model)) if _why_not_deletable(b) is None]


def _check_indices(model: nn.Module, indices: Iterable[int]) -> list[int]:
    n = len(blocks(model))
    out = sorted({int(i) for i in indices})
    bad = [i for i in out if not 0 <= i < n]
    if bad:
        raise SurgeryError(f"block index {bad[0]} is out of range: this network has blocks 0..{n - 1}")
    return out


def delete_blocks(model: nn.Module, indices: Iterable[int]) -> nn.Module:
    """A copy of ``model`` with the blocks ``indices`` deleted (see the module docstring).

    Args:
        model: a ResNet-family model (:class:`~cnnzoo.models.resnet.ResNet`), residual or plain.
        indices: block numbers in forward order (0 = ``layer1.0``); repeats are ignored.

    Raises:
        SurgeryError: an index out of range, or a block that cannot be deleted (the message says
            why, and which blocks can).
    """
    wanted = _check_indices(model, indices)
    for i in wanted:
        why = _why_not_deletable(blocks(model)[i])
        if why is not None:
            ok = deletable_blocks(model)
            raise SurgeryError(
                f"cannot delete block {i} ({block_names(model)[i]}): {why}; delete others "
                f"(the deletable blocks are {_ranges(ok)})"
            )
    out = copy.deepcopy(model)
    for i in wanted:
        stage, j, name = _positions(out)[i]
        stage[j] = DeletedBlock(stage[j], name) if _is_residual(stage[j]) else nn.Identity()
    return out


def _signature(block: nn.Module) -> tuple[int, int, int]:
    return block.in_channels, block.out_channels, getattr(block, "stride", 1)


def swappable_pairs(model: nn.Module) -> list[tuple[int, int]]:
    """Every pair ``(i, j)``, ``i < j``, of blocks with the same input/output widths and stride."""
    sig = [_signature(b) if hasattr(b, "in_channels") else None for b in blocks(model)]
    n = len(sig)
    return [(i, j) for i in range(n) for j in range(i + 1, n) if sig[i] is not None and sig[i] == sig[j]]


def reorder_blocks(model: nn.Module, swaps: Sequence[tuple[int, int]]) -> nn.Module:
    """A copy of ``model`` with the blocks of each pair in ``swaps`` exchanged, in order.

    Raises:
        SurgeryError: an index out of range, or a pair of blocks of different shapes or strides.
    """
    out = copy.deepcopy(model)
    for i, j in swaps:
        _check_indices(out, (i, j))
        pos = _positions(out)
        (si, ji, ni), (sj, jj, nj) = pos[i], pos[j]
        a, b = si[ji], sj[jj]
        if _signature(a) != _signature(b):
            raise SurgeryError(
                f"cannot swap blocks {i} ({ni}, in/out/stride {_signature(a)}) and {j} ({nj}, "
                f"{_signature(b)}): swap blocks of the same shape (see swappable_pairs)"
            )
        si[ji], sj[jj] = b, a
    return out


def random_swaps(model: nn.Module, k: int, rng: random.Random) -> list[tuple[int, int]]:
    """``k`` distinct pairs drawn from :func:`swappable_pairs` (Veit et al. Fig. 5b's random swaps).

    Raises:
        SurgeryError: fewer than ``k`` swappable pairs.
    """
    pairs = swappable_pairs(model)
    if k > len(pairs):
        raise SurgeryError(f"asked for {k} swaps, this network has {len(pairs)} swappable pairs")
    return rng.sample(pairs, k)


def _ranges(ix: Sequence[int]) -> str:
    """``[0, 1, 2, 4]`` as ``"0-2, 4"``."""
    parts, start = [], None
    for a, b in zip(ix, [*ix[1:], None], strict=True):
        start = a if start is None else start
        if b != a + 1:
            parts.append(f"{start}" if start == a else f"{start}-{a}")
            start = None
    return ", ".join(parts) or "none"
