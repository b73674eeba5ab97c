"""Receptive fields: the per-tensor record the tracer carries, and the rules that move it.

The rules are those of ``shared/spec/cost-tables.md`` ("Receptive field"), per spatial axis:
k_eff = d·(k − 1) + 1; r_out = r_in + (k_eff − 1)·j_in; j_out = j_in·s; and the centre of the first
unit's window moves by ((k_eff − 1)/2 − p)·j_in. At an add or a concat the output's field is the
largest of its inputs', whose jumps must agree (else the field is reported unknown, never guessed).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

from torch import Tensor

__all__ = ["Field", "FieldColumns", "columns", "window", "whole", "merge", "shifted", "fmt"]


class Field(NamedTuple):
    """What one unit of a tensor sees of the network input, per spatial axis.

    ``size`` is the receptive field r, ``jump`` the distance in input pixels between neighbouring
    units, ``start`` the centre of the first unit's window (the first input pixel's centre is 0).
    ``error`` says why the field is unknown (the tuples are then None). ``whole_input`` marks a
    tensor that has lost its spatial layout (after global pooling or flatten) and sees all of it.
    """

    size: tuple[float, ...] | None
    jump: tuple[float, ...] | None
    start: tuple[float, ...] | None
    error: str | None = None
    whole_input: bool = False

    @classmethod
    def of_input(cls, n_spatial: int) -> Field:
        """The network input: every pixel sees itself."""
        n = n_spatial
        return cls((1,) * n, (1,) * n, (0.0,) * n, None, n == 0)

    @classmethod
    def unknown(cls, why: str) -> Field:
        return cls(None, None, None, why, False)


class FieldColumns(NamedTuple):
    """A field as the table shows it: whole pixels, one number for square fields."""

    receptive_field: int | None
    jump: int | None
    start_offset: tuple[float, ...] | None
    receptive_field_hw: tuple[int, ...] | None
    problem: str | None
    whole_input: bool


@functools.lru_cache(maxsize=4096)
def columns(field: Field | None) -> FieldColumns:
    """The table's receptive-field columns of a tensor's field (``None``: not traced); most rows
    share their input's field (activations, norms), hence the cache."""
    if field is None:
        return FieldColumns(
            None, None, None, None, "receptive field unknown: the output does not depend on the input", False
        )
    if field.error:
        return FieldColumns(None, None, None, None, field.error, False)
    if not field.size:
        return FieldColumns(None, None, None, None, None, field.whole_input)
    size = tuple(int(round(v)) for v in field.size)
    whole_jump = all(float(v).is_integer() for v in field.jump)
    jump = int(max(field.jump)) if whole_jump else None
    problem = None if whole_jump else "uneven adaptive-pooling windows: the jump is not an integer"
    return FieldColumns(max(size), jump, tuple(field.start), size, problem, field.whole_input)


def window(f: Field, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple) -> Field:
    """A sliding window (conv or pool) over the last ``len(f.size)`` axes."""
    if f.error or f.whole_input:
        return f
    n = len(f.size)
    k, st, p, d = kernel[-n:], stride[-n:], padding[-n:], dilation[-n:]
    r, j, s = f.size, f.jump, f.start
    keff = [d[i] * (k[i] - 1) + 1 for i in range(n)]
    return Field(
        tuple(r[i] + (keff[i] - 1) * j[i] for i in range(n)),
        tuple(j[i] * st[i] for i in range(n)),
        tuple(s[i] + ((keff[i] - 1) / 2 - p[i]) * j[i] for i in range(n)),
    )


def whole(f: Field, spatial: tuple[int, ...]) -> Field:
    """A unit that sees the whole map: as if a kernel the size of the map, stride = size."""
    if f.error or f.whole_input:
        return f if f.whole_input else f._replace(whole_input=True)
    n = len(f.size)
    sp = spatial[-n:] if len(spatial) >= n else (1,) * n
    r, j, s = f.size, f.jump, f.start
    return Field(
        tuple(r[i] + (sp[i] - 1) * j[i] for i in range(n)),
        tuple(j[i] * sp[i] for i in range(n)),
        tuple(s[i] + (sp[i] - 1) / 2 * j[i] for i in range(n)),
        None,
        True,
    )


def uneven_window(f: Field, ins: tuple[int, ...], outs: tuple[int, ...]) -> Field:
    """Adaptive pooling whose windows differ in size: the largest window, a fractional jump."""
    if f.whole_input:
        return f
    n = len(f.size)
    r, j, s = f.size, f.jump, f.start
    ks = [-(-i_ // o_) + (1 if i_ % o_ else 0) for i_, o_ in zip(ins, outs, strict=True)]
    return Field(
        tuple(r[i] + (ks[i] - 1) * j[i] for i in range(n)),
        tuple(j[i] * ins[i] / outs[i] for i in range(n)),
        tuple(s[i] + (ks[i] - 1) / 2 * j[i] for i in range(n)),
    )


def shifted(f: Field, axis: int, offset: float, step: int = 1) -> Field:
    """Every ``step``-th unit from ``offset`` on along ``axis`` (a slice or one output of a split)."""
    j, s = list(f.jump), list(f.start)
    s[axis] = s[axis] + offset * j[axis]
    j[axis] = j[axis] * step
    return Field(f.size, tuple(j), tuple(s))


def spatial_axis(f: Field, x: Tensor, dim: int) -> int | None:
    """The field axis of tensor dim ``dim`` (the last ``len(f.size)`` dims), or None for another dim."""
    if f.error or f.whole_input:
        return None
    a = (dim % x.dim()) - (x.dim() - len(f.size))
    return a if a >= 0 else None


def merge(func: Any, ins: list[tuple[Tensor, Field]], o: Tensor) -> Field:
    """Elementwise ops, adds and concats: the largest field over the inputs, whose jumps must agree.

    An input broadcast over the map (a squeeze-excitation gate, shape (B, C, 1, 1)) scales every
    unit by a number computed from the whole map; it does not widen the window of the map it
    scales, so the output keeps the field of its full-size inputs.
    """
    for _, f in ins:
        if f.error:
            return f
    if len(ins) == 1:
        return _one_input(func, *ins[0], o)
    full, other = [], []
    for x, f in ins:
        n = len(f.size)
        if f.whole_input or n == 0:
            other.append(f)
        elif o.dim() >= n + 2 and tuple(x.shape[-n:]) == tuple(o.shape[-n:]):
            full.append(f)
        elif x.dim() >= n + 2 and math.prod(x.shape[-n:]) == 1:
            other.append(f)
        else:
            return Field.unknown(f"receptive field not tracked through {func} (inputs of different sizes)")
    if not full:
        return max(other, key=lambda f: max(f.size))
    j0 = full[0].jump
    for f in full[1:]:
        if f.jump != j0:
            return Field.unknown(f"jumps disagree at {func}: {fmt(j0)} vs {fmt(f.jump)}")
    n = len(j0)
    size = tuple(max(f.size[a] for f in full) for a in range(n))
    return Field(size, j0, max(full, key=lambda f: f.size).start)


def _one_input(func: Any, x: Tensor, f: Field, o: Tensor) -> Field:
    if f.whole_input:
        return f
    n = len(f.size)
    if n == 0 or (o.dim() >= n + 2 and tuple(o.shape[-n:]) == tuple(x.shape[-n:])):
        return f
    if o.dim() < x.dim() and o.dim() <= 2:  # flattened
        return whole(f, tuple(x.shape[2:]))
    if o.dim() >= n + 2 and math.prod(o.shape[-n:]) == 1:
        return whole(f, tuple(x.shape[-n:]))
    return Field.unknown(f"receptive field not tracked through {func} (it changes the spatial size)")


def fmt(t: tuple) -> str:
    """``(2, 2)`` -> ``"2"``, ``(2, 1)`` -> ``"2x1"``."""
    vals = [int(v) if float(v).is_integer() else round(v, 2) for v in t]
    return str(vals[0]) if len(set(vals)) == 1 else "x".join(map(str, vals))
