"""Helpers for the NumPy-engine tests (the `tools` fixture): numerical gradients, relative errors."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖ / max(‖a‖, ‖b‖): one number per array, robust to entries near zero."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    den = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if den == 0 else float(np.linalg.norm(a - b) / den)


def numerical_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to ``x`` (perturbed in place)."""
    g = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], margin: float = 0.1) -> np.ndarray:
    """Random float64 values with |v| ≥ margin (keeps finite differences off ReLU's kink)."""
    u = rng.standard_normal(shape)
    return np.sign(u) * (margin + np.abs(u))


def distinct(rng: np.random.Generator, shape: tuple[int, ...], gap: float = 0.05) -> np.ndarray:
    """Values that differ pairwise by at least ``gap`` (no ties for max-pool), shuffled."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap - n * gap / 2).reshape(shape).astype(np.float64)


class _Tools:
    rel_err = staticmethod(rel_err)
    numerical_grad = staticmethod(numerical_grad)
    away_from_zero = staticmethod(away_from_zero)
    distinct = staticmethod(distinct)


@pytest.fixture
def tools() -> type[_Tools]:
    """The helpers above (tests run with --import-mode=importlib, so conftest is not importable)."""
    return _Tools
