"""The BLAS thread count NumPy uses, set at run time (a tiny, torch-free ``threadpoolctl``).

NumPy's GEMMs run on OpenBLAS threads; the rest of NumPy is single-threaded. On a busy machine
OpenBLAS threads that spin-wait for a core can make small GEMMs many times slower, so the CLI
and the benchmark set the count explicitly. Works with the OpenBLAS that NumPy wheels bundle
(``scipy_openblas``) and a system OpenBLAS; elsewhere the functions report ``None`` and do nothing.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np  # noqa: F401  (loads the BLAS library whose threads we set)

__all__ = ["get_blas_threads", "set_blas_threads"]

_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads_64_",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_GETTERS = (
    "scipy_openblas_get_num_threads64_",
    "scipy_openblas_get_num_threads_64_",
    "openblas_get_num_threads64_",
    "openblas_get_num_threads",
)


@functools.cache
def _openblas() -> ctypes.CDLL | None:
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:  # not Linux
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if any(hasattr(lib, s) for s in _SETTERS):
            return lib
    return None


def _fn(names: tuple[str, ...]):
    lib = _openblas()
    for name in names:
        if lib is not None and hasattr(lib, name):
            return getattr(lib, name)
    return None


def get_blas_threads() -> int | None:
    """OpenBLAS's current thread count, or None when it cannot be queried."""
    f = _fn(_GETTERS)
    return int(f()) if f is not None else None


def set_blas_threads(n: int) -> int | None:
    """Use ``n`` BLAS threads; returns the previous count (None when unsupported)."""
    prev = get_blas_threads()
    f = _fn(_SETTERS)
    if f is not None:
        f(ctypes.c_int(int(n)))
    return prev
