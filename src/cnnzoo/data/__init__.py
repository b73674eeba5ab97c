"""Datasets (in-memory uint8 arrays/tensors) and batched input adaptation.

Names are imported lazily so that ``cnnzoo.data.load_arrays`` and ``read_idx`` work without torch
(the NumPy engine in ``cnnzoo.scratch`` must not import it).
"""

from __future__ import annotations

from cnnzoo._lazy import lazy_getattr

_EXPORTS = {
    "FASHION_MNIST_CLASSES": "datasets",
    "DatasetFormatError": "datasets",
    "DatasetNotFoundError": "datasets",
    "DatasetSpec": "datasets",
    "ImageDataset": "datasets",
    "dataset_spec": "datasets",
    "list_datasets": "datasets",
    "load_arrays": "datasets",
    "load_dataset": "datasets",
    "register_dataset": "datasets",
    "IdxError": "idx",
    "read_idx": "idx",
    "write_idx": "idx",
    "adapt_images": "transforms",
    "resolve_input": "transforms",
    "DataFeed": "feed",
    "Feed": "feed",
    "ImageFolderFeed": "imagefolder",
    "read_cifar_batch": "cifar",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
