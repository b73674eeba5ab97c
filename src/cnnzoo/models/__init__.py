"""The model zoo: one file per family. Importing this package registers every model.

Family modules are discovered automatically (every module here except ``base``), in sorted order,
so adding a family is adding a file.
"""

import importlib
import pkgutil

from cnnzoo.models.base import InputShapeError, ZooModel

for _m in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _m != "base" and not _m.startswith("_"):
        importlib.import_module(f"{__name__}.{_m}")

__all__ = ["ZooModel", "InputShapeError"]
