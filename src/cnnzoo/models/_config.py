"""The registry configs that the ImageNet and the CIFAR families share, written once.

Most ImageNet classifiers of the zoo take the same defaults (:func:`imagenet_cfg`): 1000 classes at
``input_size`` (224 unless the paper crops otherwise), ImageNet's mean and std, the smallest input
whose last map is still 2×2 (33 for a total stride of 32, where batch norm still trains), and
Fashion-MNIST's 28×28 resized to 64×64 (2×2 maps in the last stage, cheap on a CPU). The CIFAR
networks (:func:`cifar_cfg`) take 10 classes at 32×32, CIFAR-10's mean and std, and 28×28 data
zero-padded to 32 (LeNet's convention). A family passes what its paper changes.
"""

from __future__ import annotations

from typing import Any

from cnnzoo.data.constants import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD
from cnnzoo.registry import ModelConfig

__all__ = ["imagenet_cfg", "cifar_cfg"]


def imagenet_cfg(
    *,
    paper: str,
    year: int,
    family: str,
    notes: str,
    extra: dict[str, Any] | None = None,
    input_size: int = 224,
    min_input_size: int = 33,
    small_input_size: int = 64,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> ModelConfig:
    """The :class:`~cnnzoo.registry.ModelConfig` of an ImageNet classifier (see the module docstring).

    Args:
        paper, year, family, notes: as :class:`~cnnzoo.registry.ModelConfig`.
        extra: the reported accuracy, MACs and the like (``{}`` when ``None``).
        input_size: the side of the paper's crop.
        min_input_size: the smallest side that still gives a valid output.
        small_input_size: the side 28×28 data is resized to.
        mean, std: the input normalisation (Inception's 0.5/0.5 for the TF-trained families).
    """
    return ModelConfig(
        input_size=(3, input_size, input_size),
        min_input_size=min_input_size,
        num_classes=1000,
        mean=mean,
        std=std,
        paper=paper,
        year=year,
        family=family,
        small_input_size=small_input_size,
        small_input_mode="resize",
        notes=notes,
        extra=extra if extra is not None else {},
    )


def cifar_cfg(
    *,
    paper: str,
    year: int,
    family: str,
    notes: str,
    min_input_size: int,
    extra: dict[str, Any] | None = None,
) -> ModelConfig:
    """The :class:`~cnnzoo.registry.ModelConfig` of a CIFAR-10 network (see the module docstring).

    Args:
        paper, year, family, notes: as :class:`~cnnzoo.registry.ModelConfig`.
        min_input_size: the smallest side that still gives a valid output.
        extra: the reported error and the like (``{}`` when ``None``).
    """
    return ModelConfig(
        input_size=(3, 32, 32),
        min_input_size=min_input_size,
        num_classes=10,
        paper=paper,
        year=year,
        family=family,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        small_input_size=32,
        small_input_mode="pad",
        notes=notes,
        extra=extra if extra is not None else {},
    )
