"""Per-channel mean and standard deviation of the datasets cnnzoo knows, torch-free.

One home for these numbers: the datasets (``cnnzoo.data``), the model configs (``cnnzoo.models``)
and the registry's defaults all import them from here (``models → data/constants.py`` is the one
arrow from the zoo into ``data``). Values are fractions of 255, per channel in RGB order.
"""

from __future__ import annotations

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGENET_INCEPTION_MEAN",
    "IMAGENET_INCEPTION_STD",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "MNIST_MEAN",
    "MNIST_STD",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "KMNIST_MEAN",
    "KMNIST_STD",
]

# The ImageNet training set's statistics, as torchvision and timm normalise with them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The TensorFlow-slim (Inception, Xception, NASNet) preprocessing: pixels scaled to [-1, 1].
IMAGENET_INCEPTION_MEAN = (0.5, 0.5, 0.5)
IMAGENET_INCEPTION_STD = (0.5, 0.5, 0.5)
# The 50,000 CIFAR training images (std over all pixels, not the mean of per-image stds).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
# The 60,000 training images of the grayscale IDX datasets.
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)
FASHION_MNIST_MEAN = (0.2860,)
FASHION_MNIST_STD = (0.3530,)
KMNIST_MEAN = (0.1918,)
KMNIST_STD = (0.3483,)
