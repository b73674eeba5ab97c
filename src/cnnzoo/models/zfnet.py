"""ZFNet: AlexNet's single tower with a smaller, denser first layer.

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014, Fig. 3 and §3.

Two changes to AlexNet (:class:`cnnzoo.models.alexnet.AlexNet`, which builds it): conv1 is
96@7×7 stride 2 (not 11×11/4) and conv2 is 256@5×5 stride 2 (not stride 1). The paper's map sizes
come out exactly, 224 → 110 → 55 → 26 → 13 → 13 → 13 → 6, with these choices (Fig. 3 gives only
kernels, strides and sizes):

* **conv1 padding 1**: (224 + 2 − 7) / 2 + 1 = 110 (floored); with no padding it would be 109.
* **conv2 padding 0**: (55 − 5) / 2 + 1 = 26.
* **max-pools in ceil mode** (3×3, stride 2, Caffe's rounding): 110 → 55 and 26 → 13; floor mode
  would give 54 and 12. pool5 gives 6 from 13 either way.

Other choices:

* **Contrast normalisation** after pool1 and pool2 (Fig. 3, "contrast norm."): the paper follows
  AlexNet, so it is AlexNet's LRN (n = 5, k = 2, α = 1e-4, β = 0.75), and like AlexNet it comes
  after the ReLU and before the pool.
* **Init** (§3): "all weights are initialized to 10^-2 and biases are set to 0", read as
  N(0, 0.01²) weights (a constant would not break symmetry) and zero biases.
* **Filter renormalisation** (§3): conv filters whose RMS exceeds 0.1 are rescaled to 0.1; call
  ``model.renormalize_filters_()`` after each optimiser step to follow the paper.
* **Adaptive 6×6 average pool before fc6** (departure, as in ``alexnet``): the identity at 224; it
  lets the net run down to ``min_input_size`` = 47 (pool5 1×1).
* The wider variant of the paper's Table 2 (layers 3, 4, 5 with 512, 1024, 512 maps) is not built.

Fashion-MNIST: as for the AlexNet family, 28×28 images are resized to 67×67 by default.
62,357,608 parameters at 1000 classes.
"""

from __future__ import annotations

from cnnzoo.models.alexnet import AlexNet, ConvRow
from cnnzoo.registry import ModelConfig, register_model

__all__ = ["ZFNET_CONVS", "zfnet"]

PAPER = (
    "M. D. Zeiler, R. Fergus. Visualizing and Understanding Convolutional Networks. "
    "ECCV 2014 (arXiv:1311.2901)."
)

# Fig. 3. Columns: out, kernel, stride, pad, gpu_groups (single GPU), initial bias (0, §3).
ZFNET_CONVS: tuple[ConvRow, ...] = (
    ConvRow(96, 7, 2, 1, 1, 0.0),  # conv1: 224 -> 110
    ConvRow(256, 5, 2, 0, 1, 0.0),  # conv2: 55 -> 26
    ConvRow(384, 3, 1, 1, 1, 0.0),  # conv3: 13
    ConvRow(384, 3, 1, 1, 1, 0.0),  # conv4: 13
    ConvRow(256, 3, 1, 1, 1, 0.0),  # conv5: 13
)


def _cfg() -> ModelConfig:
    return ModelConfig(
        input_size=(3, 224, 224),
        min_input_size=47,  # conv1 22 -> pool1 11 -> conv2 4 -> pool2 2 -> conv5 2 -> pool5 1 (ceil mode)
        num_classes=1000,
        paper=PAPER,
        year=2014,
        family="zfnet",
        small_input_size=67,
        small_input_mode="resize",
        notes="pads/ceil-mode chosen to give Fig. 3's 110/55/26/13/6; adaptive 6x6 pool before fc6",
    )


def _create_zfnet(**kwargs) -> AlexNet:
    """The family constructor: AlexNet's tower with Fig. 3's conv rows, ceil-mode pools, zero biases."""
    return AlexNet(**{"convs": ZFNET_CONVS, "ceil_mode": True, "fc_bias": 0.0, **kwargs})


@register_model(_cfg())
def zfnet(**kwargs) -> AlexNet:
    """ZFNet (Fig. 3): 7×7/2 conv1, 5×5/2 conv2, ceil-mode pools, N(0, 0.01²) weights, zero biases."""
    return _create_zfnet(**kwargs)
