"""The model zoo: one file per family. Importing this package registers every model."""

from cnnzoo.models import lenet  # noqa: F401
from cnnzoo.models.base import InputShapeError, ZooModel

__all__ = ["ZooModel", "InputShapeError"]
