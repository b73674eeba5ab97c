"""The model zoo: one file per family.

Family modules are discovered by :func:`import_all` (every module here except ``base`` and
``_private`` ones, in sorted order), which the registry calls on first use, so adding a family is
adding a file. Importing this package itself is cheap and torch-free, so torch-free helpers such
as ``cnnzoo.models._lenet_tables`` can be shared with the NumPy engine.
"""

from __future__ import annotations

import importlib
import pkgutil

from cnnzoo._lazy import lazy_getattr

__all__ = [
    "ZooModel",
    "FeatureInfo",
    "InputShapeError",
    "StageIndexError",
    "ModelInterfaceError",
    "import_all",
]


def import_all() -> None:
    """Import every family module, registering its models."""
    for m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if m != "base" and not m.startswith("_"):
            importlib.import_module(f"{__name__}.{m}")


__getattr__ = lazy_getattr(
    __name__,
    {
        n: "base"
        for n in ("ZooModel", "FeatureInfo", "InputShapeError", "StageIndexError", "ModelInterfaceError")
    },
)
