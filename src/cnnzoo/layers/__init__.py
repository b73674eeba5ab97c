"""The shared block library: every block that two or more families use, one file per kind.

=====================  ==========================================================================
module                 blocks
=====================  ==========================================================================
``conv``               :class:`ConvNormAct`, :func:`create_conv2d` (symmetric or TensorFlow "SAME"
                       padding, :class:`Conv2dSame`), :func:`conv1x1`, :func:`conv3x3`,
                       :func:`make_divisible`
``activations``        :func:`get_act` / :func:`create_act` by name (relu, relu6, hard_swish, ...)
``squeeze_excite``     :class:`SqueezeExcite`
``drop``               :class:`DropPath` (stochastic depth per batch or per sample)
``residual``           :class:`BasicBlock`, :class:`Bottleneck`, :class:`PreActBasicBlock`,
                       :class:`PreActBottleneck`, shortcut options A/B/C, ResNet-C/D parts
``mbconv``             :class:`SeparableConv2d`, :class:`DepthwiseSeparableConv`,
                       :class:`InvertedResidual` (MBConv)
``shuffle``            :func:`channel_shuffle`, :class:`ChannelShuffle`
``inception``          GoogLeNet's :class:`Inception` and :class:`NaiveInception`; the factorised
                       modules of BN-Inception, Inception v3/v4 and Inception-ResNet as data
                       (:class:`BlockSpec` of :class:`ConvSpec` / :class:`PoolSpec` /
                       :class:`SplitSpec` steps) built by :class:`InceptionBlock`
``lrn``                :class:`LocalResponseNorm` in the AlexNet paper's convention
``init``               the papers' named weight inits (:func:`init_weights_` and the ``*_init``)
=====================  ==========================================================================

Every module class here declares its ``cost_type`` (its row type in the cost analyzer) and the
blocks describe themselves with ``cost_details()``; see ``docs/adding-a-model.md``.
"""

from __future__ import annotations

from cnnzoo.layers.activations import ACTIVATIONS, ActLayer, UnknownActivationError, create_act, get_act
from cnnzoo.layers.conv import (
    Conv2dSame,
    ConvNormAct,
    NormLayer,
    Padding,
    conv1x1,
    conv3x3,
    create_conv2d,
    get_padding,
    is_static_same,
    make_divisible,
    pad_same,
    same_padding,
)
from cnnzoo.layers.drop import DropPath, as_drop_path, drop_path
from cnnzoo.layers.inception import (
    BasicConv2d,
    BlockSpec,
    ConvSpec,
    Inception,
    InceptionBlock,
    InceptionWidths,
    NaiveInception,
    PoolSpec,
    SplitSpec,
)
from cnnzoo.layers.init import (
    empty_linear,
    he_normal_init,
    init_weights_,
    lecun_uniform_init,
    norm_init,
    normal_init,
    trunc_normal_init,
    xavier_uniform_init,
    zero_init_residual_,
)
from cnnzoo.layers.lrn import LocalResponseNorm, local_response_norm
from cnnzoo.layers.mbconv import DepthwiseSeparableConv, InvertedResidual, SeparableConv2d
from cnnzoo.layers.residual import (
    AvgPoolProjection,
    BasicBlock,
    Bottleneck,
    DeepStem,
    PreActBasicBlock,
    PreActBottleneck,
    Projection,
    ShortcutOption,
    ZeroPadShortcut,
    bottleneck_width,
    make_shortcut,
)
from cnnzoo.layers.shuffle import ChannelShuffle, channel_shuffle
from cnnzoo.layers.squeeze_excite import SqueezeExcite

__all__ = [
    "ACTIVATIONS",
    "ActLayer",
    "AvgPoolProjection",
    "BasicBlock",
    "BasicConv2d",
    "BlockSpec",
    "Bottleneck",
    "ChannelShuffle",
    "Conv2dSame",
    "ConvNormAct",
    "ConvSpec",
    "DeepStem",
    "DepthwiseSeparableConv",
    "DropPath",
    "Inception",
    "InceptionBlock",
    "InceptionWidths",
    "InvertedResidual",
    "LocalResponseNorm",
    "NaiveInception",
    "NormLayer",
    "Padding",
    "PoolSpec",
    "PreActBasicBlock",
    "PreActBottleneck",
    "Projection",
    "SeparableConv2d",
    "ShortcutOption",
    "SplitSpec",
    "SqueezeExcite",
    "UnknownActivationError",
    "ZeroPadShortcut",
    "as_drop_path",
    "bottleneck_width",
    "channel_shuffle",
    "conv1x1",
    "conv3x3",
    "create_act",
    "create_conv2d",
    "drop_path",
    "empty_linear",
    "get_act",
    "get_padding",
    "he_normal_init",
    "init_weights_",
    "is_static_same",
    "lecun_uniform_init",
    "local_response_norm",
    "make_divisible",
    "make_shortcut",
    "norm_init",
    "normal_init",
    "pad_same",
    "same_padding",
    "trunc_normal_init",
    "xavier_uniform_init",
    "zero_init_residual_",
]
