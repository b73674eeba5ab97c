"""Pre-activation ResNet: the full pre-activation unit, on ImageNet and CIFAR.

He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks", ECCV 2016 (here "He et al.
2016b"), Fig. 4(e): BN → ReLU → conv → BN → ReLU → conv (→ BN → ReLU → conv for the bottleneck),
plus the identity, nothing after the addition, and one BN-ReLU after the last unit. The units are
:class:`~cnnzoo.layers.residual.PreActBasicBlock` and
:class:`~cnnzoo.layers.residual.PreActBottleneck`; every network is a
:class:`~cnnzoo.models.resnet.ResNet` built with ``block="preact_*"``, so cardinality, attention,
dropout and stochastic depth (``drop_path_rate=``) are its arguments here too.

==========================  ===========  ============================  ==========================
name                        unit         stages                        source of the layout
==========================  ===========  ============================  ==========================
``preact_resnet18``/``34``  basic        2-2-2-2 / 3-4-6-3             fb.resnet.torch preresnet
``preact_resnet50``…152     bottleneck   3-4-6-3 / 3-4-23-3 / 3-8-36-3 (the paper's ImageNet code)
``preact_resnet200``        bottleneck   3-24-36-3                     Table 5
``preact_resnet110``        basic        18-18-18 (16-32-64)           Table 3 (§4.2 of [1])
``preact_resnet164``        bottleneck   18-18-18 (64-128-256 out)     Table 4, resnet-1k-layers
``preact_resnet1001``       bottleneck   111-111-111                   Table 4, resnet-1k-layers
==========================  ===========  ============================  ==========================

Choices the paper leaves to its code:

* **ImageNet** (fb.resnet.torch ``models/preresnet.lua``, which the authors used for Table 5):
  the stem is ResNet's 7×7/2 conv → BN → ReLU → 3×3/2 max-pool; the first unit of ``layer1``
  takes that activated output as it is (no BN-ReLU of its own: ``preact=False``), every other
  unit pre-activates; the first unit of each later stage shares its BN-ReLU between the branch
  and the projection shortcut. Projections are bare 1×1 convs (the next BN follows the
  addition); the stride sits in the 3×3 conv, as fb.resnet.torch (the origin of "ResNet v1.5").
  timm's ``resnetv2_*`` moves the stem's BN-ReLU after the max-pool into the first unit: the same
  parameter count (a test pins it), a different computation.
* **CIFAR** (KaimingHe/resnet-1k-layers ``resnet-pre-act.lua``): a bare 3×3 conv of 16 filters
  (no BN-ReLU: the first unit's follows), three stages of n units (9n + 2 layers for the
  bottleneck nets, outputs 64, 128, 256 on 32², 16², 8² maps), the stride in the first 1×1
  conv, projection shortcuts (bare 1×1 convs on the shared pre-activation) where the shape
  changes. ``preact_resnet110`` is the paper's basic-unit ResNet-110 (6n + 2, n = 18, 16-32-64)
  with the same shortcuts: the paper does not say which option it used; the authors' code knows
  only projections.
* **Init**: He normal (fan-out) for every conv, BN γ = 1 and β = 0, as :class:`ResNet`.
* **Minimum input**: 33 (ImageNet) and 5 (CIFAR): the last map must be 2×2 for its BN to train
  (see :mod:`cnnzoo.models.resnet`).

[1] He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from cnnzoo.models._residual import residual_cfg
from cnnzoo.models.resnet import ResNet
from cnnzoo.registry import ModelConfig, register_model

__all__ = [
    "PAPER",
    "PreActVariant",
    "VARIANTS",
    "preact_resnet18",
    "preact_resnet34",
    "preact_resnet50",
    "preact_resnet101",
    "preact_resnet152",
    "preact_resnet200",
    "preact_resnet110",
    "preact_resnet164",
    "preact_resnet1001",
]

PAPER = "K. He, X. Zhang, S. Ren, J. Sun. Identity Mappings in Deep Residual Networks. ECCV 2016."


class PreActVariant(NamedTuple):
    """One registered pre-activation ResNet: its unit, blocks per stage and the paper's accuracy."""

    block: str  # "preact_basic" or "preact_bottleneck"
    layers: tuple[int, ...]
    cifar: bool = False
    reported: dict[str, Any] | None = None


def _cifar10(error: float, table: str) -> dict[str, Any]:
    return {"dataset": "cifar10+", "error": error, "source": f"He et al. 2016b, {table}"}


def _imagenet_320(top1_error: float, top5_error: float) -> dict[str, Any]:
    return {
        "dataset": "imagenet",
        "top1": round(100 - top1_error, 2),
        "top5": round(100 - top5_error, 2),
        "crop": 320,
        "source": f"He et al. 2016b, Table 5 (single 320 crop, error {top1_error}/{top5_error})",
    }


_BASIC, _BOTTLENECK = "preact_basic", "preact_bottleneck"

VARIANTS: dict[str, PreActVariant] = {
    "preact_resnet18": PreActVariant(_BASIC, (2, 2, 2, 2)),
    "preact_resnet34": PreActVariant(_BASIC, (3, 4, 6, 3)),
    "preact_resnet50": PreActVariant(_BOTTLENECK, (3, 4, 6, 3)),
    "preact_resnet101": PreActVariant(_BOTTLENECK, (3, 4, 23, 3)),
    "preact_resnet152": PreActVariant(_BOTTLENECK, (3, 8, 36, 3), reported=_imagenet_320(21.1, 5.5)),
    "preact_resnet200": PreActVariant(_BOTTLENECK, (3, 24, 36, 3), reported=_imagenet_320(20.7, 5.3)),
    "preact_resnet110": PreActVariant(
        _BASIC, (18, 18, 18), True, _cifar10(6.37, "Table 3 (full pre-activation)")
    ),
    "preact_resnet164": PreActVariant(_BOTTLENECK, (18, 18, 18), True, _cifar10(5.46, "Table 4")),
    "preact_resnet1001": PreActVariant(_BOTTLENECK, (111, 111, 111), True, _cifar10(4.92, "Table 4")),
}


def _cfg(name: str) -> ModelConfig:
    """The registry config of one :data:`VARIANTS` row."""
    v = VARIANTS[name]
    depth = sum(v.layers) * (3 if v.block == _BOTTLENECK else 2) + 2
    where = "CIFAR-10, resnet-1k-layers layout" if v.cifar else "ImageNet, fb.resnet.torch preresnet layout"
    return residual_cfg(
        cifar=v.cifar,
        paper=PAPER,
        year=2016,
        family="preact_resnet_cifar" if v.cifar else "preact_resnet",
        notes=f"{depth} layers, full pre-activation units; {where}",
        extra={"reported": v.reported},
    )


def _create_preact_resnet(name: str, **kwargs: Any) -> ResNet:
    """The family constructor: the :data:`VARIANTS` row ``name``, with ``kwargs`` overriding it."""
    v = VARIANTS[name]
    arch: dict[str, Any] = dict(block=v.block, layers=v.layers)
    if v.cifar:
        arch.update(num_classes=10, stem="cifar", stem_width=16, stem_act=False)
        if v.block == _BOTTLENECK:  # outputs 64-128-256; resnet-1k-layers strides the first 1x1
            arch.update(widths=(16, 32, 64), stride_in_1x1=True)
        else:
            arch.update(widths=(16, 32, 64))
    return ResNet(**{**arch, **kwargs})


@register_model(_cfg("preact_resnet18"))
def preact_resnet18(**kwargs: Any) -> ResNet:
    """Pre-activation ResNet-18 (basic units 2-2-2-2). Options as :class:`ResNet`."""
    return _create_preact_resnet("preact_resnet18", **kwargs)


@register_model(_cfg("preact_resnet34"))
def preact_resnet34(**kwargs: Any) -> ResNet:
    """Pre-activation ResNet-34 (basic units 3-4-6-3)."""
    return _create_preact_resnet("preact_resnet34", **kwargs)


@register_model(_cfg("preact_resnet50"))
def preact_resnet50(**kwargs: Any) -> ResNet:
    """Pre-activation ResNet-50 (bottleneck units 3-4-6-3), stride in the 3×3."""
    return _create_preact_resnet("preact_resnet50", **kwargs)


@register_model(_cfg("preact_resnet101"))
def preact_resnet101(**kwargs: Any) -> ResNet:
    """Pre-activation ResNet-101 (bottleneck units 3-4-23-3)."""
    return _create_preact_resnet("preact_resnet101", **kwargs)


@register_model(_cfg("preact_resnet152"))
def preact_resnet152(**kwargs: Any) -> ResNet:
    """Pre-activation ResNet-152 (bottleneck units 3-8-36-3): 21.1% top-1 error (Table 5, 320 crop)."""
    return _create_preact_resnet("preact_resnet152", **kwargs)


@register_model(_cfg("preact_resnet200"))
def preact_resnet200(**kwargs: Any) -> ResNet:
    """Pre-activation ResNet-200 (bottleneck units 3-24-36-3): 20.7% top-1 error (Table 5, 320 crop)."""
    return _create_preact_resnet("preact_resnet200", **kwargs)


@register_model(_cfg("preact_resnet110"))
def preact_resnet110(**kwargs: Any) -> ResNet:
    """CIFAR pre-activation ResNet-110 (basic units, n = 18, 16-32-64): 6.37% error (Table 3)."""
    return _create_preact_resnet("preact_resnet110", **kwargs)


@register_model(_cfg("preact_resnet164"))
def preact_resnet164(**kwargs: Any) -> ResNet:
    """CIFAR pre-activation ResNet-164 (bottleneck units, n = 18): 1.7 M params, 5.46% error (Table 4)."""
    return _create_preact_resnet("preact_resnet164", **kwargs)


@register_model(_cfg("preact_resnet1001"))
def preact_resnet1001(**kwargs: Any) -> ResNet:
    """CIFAR pre-activation ResNet-1001 (bottleneck units, n = 111): 10.2 M params, 4.92% error (Table 4)."""
    return _create_preact_resnet("preact_resnet1001", **kwargs)
