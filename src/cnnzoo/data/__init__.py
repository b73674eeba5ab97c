"""Datasets (in-memory uint8 tensors) and batched input adaptation."""

from cnnzoo.data.datasets import (
    FASHION_MNIST_CLASSES,
    DatasetFormatError,
    DatasetNotFoundError,
    DatasetSpec,
    ImageDataset,
    dataset_spec,
    list_datasets,
    load_dataset,
    register_dataset,
)
from cnnzoo.data.idx import IdxError, read_idx, write_idx
from cnnzoo.data.transforms import adapt_images, resolve_input

__all__ = [
    "FASHION_MNIST_CLASSES",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "IdxError",
    "ImageDataset",
    "adapt_images",
    "dataset_spec",
    "list_datasets",
    "load_dataset",
    "read_idx",
    "register_dataset",
    "resolve_input",
    "write_idx",
]
