"""Lazy package exports: names resolve to their defining submodule on first access.

Used where importing a package must stay cheap or torch-free (``cnnzoo list`` imports the CLI
modules of every area; the NumPy engine reads data without torch).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``exports`` (name -> submodule of ``package``)."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
