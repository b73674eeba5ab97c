"""LeNet-5's fixed tables, torch-free: shared by the torch zoo and the NumPy engine.

* ``C3_TABLE``: Table I of LeCun et al. 1998 — which S2 maps feed each C3 map.
* ``DIGITS_7x12`` and :func:`rbf_prototypes_numpy`: the fixed ±1 prototypes of the RBF output.
"""

from __future__ import annotations

import numpy as np

__all__ = ["C3_TABLE", "DIGITS_7x12", "rbf_prototypes_numpy"]

# Table I of the paper: which S2 maps (rows) feed each C3 map (columns). Maps 0-5 take
# three contiguous S2 maps, 6-11 four contiguous, 12-14 four non-contiguous, 15 all six.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    *((j % 6, (j + 1) % 6, (j + 2) % 6) for j in range(6)),
    *(tuple((j + k) % 6 for k in range(4)) for j in range(6)),
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

# The digits 0-9 drawn on a 7-wide, 12-high grid ('#' = +1, '.' = -1), standing in for the
# paper's unpublished prototype bitmaps (Fig. 3 shows the style: stylised, centred characters).
DIGITS_7x12 = (
    (
        ".#####.",
        "##...##",
        "##...##",
        "##..###",
        "##.#.##",
        "##.#.##",
        "###..##",
        "##...##",
        "##...##",
        "##...##",
        ".#####.",
        ".......",
    ),
    (
        "...##..",
        "..###..",
        ".####..",
        "...##..",
        "...##..",
        "...##..",
        "...##..",
        "...##..",
        "...##..",
        "...##..",
        ".######",
        ".......",
    ),
    (
        ".#####.",
        "##...##",
        ".....##",
        ".....##",
        "....##.",
        "...##..",
        "..##...",
        ".##....",
        "##.....",
        "##.....",
        "#######",
        ".......",
    ),
    (
        ".#####.",
        "##...##",
        ".....##",
        ".....##",
        "..####.",
        ".....##",
        ".....##",
        ".....##",
        ".....##",
        "##...##",
        ".#####.",
        ".......",
    ),
    (
        "....##.",
        "...###.",
        "..####.",
        ".##.##.",
        "##..##.",
        "##..##.",
        "#######",
        "....##.",
        "....##.",
        "....##.",
        "....##.",
        ".......",
    ),
    (
        "#######",
        "##.....",
        "##.....",
        "##.....",
        "######.",
        ".....##",
        ".....##",
        ".....##",
        ".....##",
        "##...##",
        ".#####.",
        ".......",
    ),
    (
        "..####.",
        ".##....",
        "##.....",
        "##.....",
        "######.",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        ".#####.",
        ".......",
    ),
    (
        "#######",
        ".....##",
        ".....##",
        "....##.",
        "...##..",
        "...##..",
        "..##...",
        "..##...",
        "..##...",
        "..##...",
        "..##...",
        ".......",
    ),
    (
        ".#####.",
        "##...##",
        "##...##",
        "##...##",
        ".#####.",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        ".#####.",
        ".......",
    ),
    (
        ".#####.",
        "##...##",
        "##...##",
        "##...##",
        "##...##",
        ".######",
        ".....##",
        ".....##",
        ".....##",
        "....##.",
        ".####..",
        ".......",
    ),
)


def rbf_prototypes_numpy(num_classes: int, dim: int = 84) -> np.ndarray:
    """The fixed ±1 RBF prototypes as float32 (num_classes, dim).

    For 10 classes and 84 inputs: the 7×12 digit bitmaps, row by row (+1 ink, −1 background).
    Otherwise a fixed pseudo-random ±1 code (NumPy PCG64, seed 0), the same on every machine.
    """
    if num_classes == 10 and dim == 84:
        return np.array([[1.0 if c == "#" else -1.0 for c in "".join(g)] for g in DIGITS_7x12], np.float32)
    rng = np.random.default_rng(0)
    return (rng.integers(0, 2, size=(num_classes, dim)) * 2 - 1).astype(np.float32)
