"""Named training recipes: the papers' settings and two fast Fashion-MNIST recipes, as data.

A recipe is a plain dict of :class:`~cnnzoo.train.config.TrainConfig` fields plus a
``description`` and a ``source`` (where in the paper the numbers come from). ``cnnzoo train
--recipe NAME`` starts from one; a ``--config FILE`` (YAML, TOML or JSON) and then the command-line
options override it, field by field (:func:`resolve`). Every value a recipe sets is listed in it,
so that ``cnnzoo recipes`` and the docs (``docs/recipes.md``) show the whole configuration.

The ImageNet-scale recipes (``alexnet``, ``vgg``, ``googlenet``, ``resnet-imagenet``) default to
``data: imagefolder`` (give ``--data-dir`` with ``train/`` and ``val/`` class folders). Their
images are stored at ``input_size`` 256 and training takes random ``eval_crop`` = 224 crops
(AlexNet §4.1), after scale jittering where the paper uses it; evaluation takes the central crop
or ten crops. Run them on Fashion-MNIST with ``--data fashion-mnist`` (and, for a CPU, the
model's small input size: ``--input-size 67 --eval-crop 63`` for AlexNet, say).

Departures from the papers are listed in each ``description`` and in ``docs/recipes.md``.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
from pathlib import Path
from typing import Any

from cnnzoo.data.constants import MNIST_MEAN, MNIST_STD
from cnnzoo.errors import ConfigError

__all__ = ["RECIPES", "CONFIG_FIELDS", "list_recipes", "get_recipe", "load_config_file", "resolve"]

# The TrainConfig fields a recipe, a config file or an override may set. TrainConfig's own fields
# are added at run time (see :func:`config_fields`), so a field added there is accepted here too.
CONFIG_FIELDS: tuple[str, ...] = (
    "model",
    "data",
    "data_dir",
    "epochs",
    "iterations",
    "batch_size",
    "eval_batch_size",
    "optimizer",
    "lr",
    "momentum",
    "nesterov",
    "weight_decay",
    "betas",
    "alpha",
    "eps",
    "no_decay_bn_bias",
    "label_smoothing",
    "grad_clip_norm",
    "schedule",
    "milestones",
    "milestone_unit",
    "gamma",
    "step_size",
    "plateau_patience",
    "min_lr_factor",
    "warmup_epochs",
    "warmup_start_factor",
    "onecycle_pct_start",
    "crop_padding",
    "hflip",
    "pca_lighting",
    "scale_jitter",
    "random_erasing",
    "eval_mode",
    "eval_crop",
    "input_size",
    "train_samples",
    "val_samples",
    "early_stop",
    "ema",
    "ema_warmup",
    "seed",
    "device",
    "threads",
    "amp",
    "channels_last",
    "compile",
    "checkpoint_every_steps",
    "out",
    "model_kwargs",
)
META_FIELDS = ("description", "source")

_SGD_NO_EXTRAS: dict[str, Any] = {"betas": (0.9, 0.999), "no_decay_bn_bias": False, "label_smoothing": 0.0}
# Recipes that train on the whole training set: nothing is held out, so no decision reads a
# validation split (no plateau schedule, no best checkpoint, no early stopping).
_ALL_DATA: dict[str, Any] = {"val_samples": 0}
# AlexNet and VGG divide the lr "when the validation error rate stopped improving": 10,000 training
# images (10 per class on ImageNet, 0.8% of it) are held out for that (docs/recipes.md says why).
_HELD_OUT: dict[str, Any] = {"val_samples": 10_000}
_NO_AUGMENT: dict[str, Any] = {
    "crop_padding": 0,
    "hflip": False,
    "pca_lighting": 0.0,
    "scale_jitter": None,
    "random_erasing": 0.0,
}

_ALEXNET: dict[str, Any] = {
    "description": (
        "AlexNet: SGD momentum 0.9, lr 0.01 ÷10 when the validation loss stops improving (10,000 "
        "training images held out; the paper watched its validation error, 3 reductions in ~90 "
        "epochs), weight decay 5e-4, batch 128, "
        "random 224 crops of 256 images, flips, PCA lighting σ 0.1, 10-crop test. "
        "Dropout 0.5 is part of the model."
    ),
    "source": "Krizhevsky, Sutskever, Hinton 2012, §4.1 (augmentation), §5 (details of learning)",
    "model": "alexnet",
    "data": "imagefolder",
    "input_size": 256,
    "epochs": 90,
    "iterations": None,
    "batch_size": 128,
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 5e-4,
    **_SGD_NO_EXTRAS,
    "schedule": "plateau",
    **_HELD_OUT,
    "gamma": 0.1,
    "plateau_patience": 5,
    "min_lr_factor": 1e-3,
    "warmup_epochs": 0.0,
    **_NO_AUGMENT,
    "hflip": True,
    "pca_lighting": 0.1,
    "eval_mode": "tencrop",
    "eval_crop": 224,
}

# The CIFAR-10 recipes of issue 12: SGD, a multistep schedule in epochs, pad-4 crops and flips
# (He et al. 2016 §4.2's augmentation, which all of them use), no test-time augmentation.
_CIFAR_SGD: dict[str, Any] = {
    **_ALL_DATA,
    "data": "cifar10",
    "input_size": 32,
    "iterations": None,
    "optimizer": "sgd",
    "momentum": 0.9,
    **_SGD_NO_EXTRAS,
    "schedule": "multistep",
    "milestone_unit": "epoch",
    "gamma": 0.1,
    "warmup_epochs": 0.0,
    **_NO_AUGMENT,
    "crop_padding": 4,
    "hflip": True,
    "eval_mode": "none",
    "eval_crop": None,
    "model_kwargs": {},
}
# ImageNet data for the recipes after ResNet: 256 images, random 224 crops and flips, central crop test.
_IMAGENET: dict[str, Any] = {
    **_ALL_DATA,
    "data": "imagefolder",
    "input_size": 256,
    "iterations": None,
    **_NO_AUGMENT,
    "hflip": True,
    "eval_mode": "center",
    "eval_crop": 224,
    "model_kwargs": {},
}
# TensorFlow's RMSprop as Inception v3 (§8) and TF-slim's train_image_classifier use it:
# decay 0.9, epsilon 1.0 inside the root, momentum 0.9, a staircase exponential decay.
_TF_RMSPROP_EPS1: dict[str, Any] = {
    "optimizer": "rmsprop_tf",
    "alpha": 0.9,
    "eps": 1.0,
    "momentum": 0.9,
    "nesterov": False,
    "betas": (0.9, 0.999),
    "no_decay_bn_bias": False,
    "label_smoothing": 0.0,
    "grad_clip_norm": 0.0,
    "schedule": "step",
    "warmup_epochs": 0.0,
    "ema": 0.0,
}
# The TPU recipe of MnasNet and EfficientNet (and MobileNet v3's, which the row adjusts): TF RMSprop
# (decay 0.9, momentum 0.9, eps 1e-3), lr 0.256 per 4,096 images, here at batch 256, 5 warm-up
# epochs from 0, x0.97 every 2.4 epochs, wd 1e-5 off BN, EMA 0.9999, 350 epochs.
_TF_RMSPROP_TPU: dict[str, Any] = {
    **_TF_RMSPROP_EPS1,
    "eps": 1e-3,
    "epochs": 350,
    "batch_size": 256,
    "lr": 0.256 * 256 / 4096,
    "weight_decay": 1e-5,
    "no_decay_bn_bias": True,
    "label_smoothing": 0.1,
    "gamma": 0.97,
    "step_size": 2.4,
    "warmup_epochs": 5.0,
    "warmup_start_factor": 0.0,
    "ema": 0.9999,
    "ema_warmup": True,
    "scale_jitter": (256, 320),
}

RECIPES: dict[str, dict[str, Any]] = {
    "lenet1998": {
        **_ALL_DATA,
        "description": (
            "LeNet-5 as in 1998: scaled tanh, C3 table, RBF output trained by cross-entropy over "
            "negative RBF distances, ~20 passes of plain SGD with a falling learning rate. "
            "Departs: SGD (momentum 0.9) instead of stochastic diagonal Levenberg-Marquardt, "
            "and ×0.5 steps instead of the paper's 0.0005→0.00001 sequence. The RBF distances "
            "blow up above lr ≈ 0.002 at batch 32."
        ),
        "source": "LeCun et al. 1998, §III.A (20 passes, 28x28 padded to 32x32) and Appendix C (lr sequence)",
        "model": "lenet5",
        "data": "fashion-mnist",
        "input_size": 32,
        "epochs": 20,
        "iterations": None,
        "batch_size": 32,
        "optimizer": "sgd",
        "lr": 0.002,
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 0.0,
        **_SGD_NO_EXTRAS,
        "schedule": "multistep",
        "milestones": [2, 5, 8, 12],
        "milestone_unit": "epoch",
        "gamma": 0.5,
        "warmup_epochs": 0.0,
        **_NO_AUGMENT,
        "eval_mode": "none",
        "eval_crop": None,
    },
    "alexnet": _ALEXNET,
    # "like AlexNet, plus scale jittering": the paper's recipe is AlexNet's with these changes
    "vgg": {
        **_ALEXNET,
        "description": (
            "VGG-16: as AlexNet (momentum 0.9, lr 0.01 ÷10 on plateau, weight decay 5e-4, dropout "
            "in the model, flips, PCA lighting) plus scale jittering: each batch is rescaled to a "
            "short side S ~ U[256, 512] and cropped to 224 (the paper draws S per image). Batch "
            "256, 74 epochs. Central-crop test (the paper's dense multi-scale test is not done)."
        ),
        "source": "Simonyan & Zisserman 2015, §3.1 (training, scale jittering), §4.2 (multi-scale)",
        "model": "vgg16",
        "epochs": 74,
        "batch_size": 256,
        "scale_jitter": (256, 512),
        "eval_mode": "center",
    },
    "googlenet": {
        **_ALL_DATA,
        "description": (
            "GoogLeNet: SGD momentum 0.9, lr decreased 4% every 8 epochs (step, γ 0.96); the two "
            "auxiliary classifiers are weighted 0.3 by the model's loss. Initial lr 0.01, weight "
            "decay 2e-4, batch 32 and 60 epochs from BVLC's Caffe solver (the paper gives none). "
            "Departs: scale jittering 256-320 + flips stand in for the paper's random 8-100% area "
            "crops and photometric distortions; 10-crop test instead of 144 crops."
        ),
        "source": "Szegedy et al. 2015, §5 (aux losses ×0.3), §6 (training); BVLC googlenet solver",
        "model": "googlenet",
        "data": "imagefolder",
        "input_size": 256,
        "epochs": 60,
        "iterations": None,
        "batch_size": 32,
        "optimizer": "sgd",
        "lr": 0.01,
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 2e-4,
        **_SGD_NO_EXTRAS,
        "schedule": "step",
        "gamma": 0.96,
        "step_size": 8,
        "warmup_epochs": 0.0,
        **_NO_AUGMENT,
        "hflip": True,
        "scale_jitter": (256, 320),
        "eval_mode": "tencrop",
        "eval_crop": 224,
    },
    "resnet-imagenet": {
        **_ALL_DATA,
        "description": (
            "ResNet-50 on ImageNet: SGD momentum 0.9, lr 0.1 ÷10 at epochs 30 and 60, weight decay "
            "1e-4, batch 256, 90 epochs; scale augmentation S ~ U[256, 480] (per batch), 224 "
            "crops, flips, PCA lighting; 10-crop test. The paper stops at 60e4 iterations and "
            "divides when the error plateaus; 30/60 is the standard reading (torchvision)."
        ),
        "source": "He et al. 2016, §3.4 (implementation); torchvision references/classification",
        "model": "resnet50",
        "data": "imagefolder",
        "input_size": 256,
        "epochs": 90,
        "iterations": None,
        "batch_size": 256,
        "optimizer": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 1e-4,
        **_SGD_NO_EXTRAS,
        "schedule": "multistep",
        "milestones": [30, 60],
        "milestone_unit": "epoch",
        "gamma": 0.1,
        "warmup_epochs": 0.0,
        **_NO_AUGMENT,
        "hflip": True,
        "pca_lighting": 0.1,
        "scale_jitter": (256, 480),
        "eval_mode": "tencrop",
        "eval_crop": 224,
    },
    "resnet-cifar": {
        **_ALL_DATA,
        "description": (
            "ResNet-20 on CIFAR-10: SGD momentum 0.9, lr 0.1 ÷10 at 32k and 48k iterations, stop at "
            "64k, weight decay 1e-4, batch 128, 4-pixel zero padding + random 32x32 crop + flip. "
            "Departs: trains on all 50k images (the paper held out 5k for validation)."
        ),
        "source": "He et al. 2016, §4.2 (CIFAR-10 and analysis)",
        "model": "resnet20",
        "data": "cifar10",
        "input_size": 32,
        "epochs": 164,
        "iterations": 64000,
        "batch_size": 128,
        "optimizer": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 1e-4,
        **_SGD_NO_EXTRAS,
        "schedule": "multistep",
        "milestones": [32000, 48000],
        "milestone_unit": "iter",
        "gamma": 0.1,
        "warmup_epochs": 0.0,
        **_NO_AUGMENT,
        "crop_padding": 4,
        "hflip": True,
        "eval_mode": "none",
        "eval_crop": None,
    },
    # ---- issue 12: the ResNet descendants and DenseNet (CIFAR-10, and ImageNet where asked) ----
    "preact-resnet-cifar": {
        **_CIFAR_SGD,
        "description": (
            "Pre-activation ResNet-164 on CIFAR-10: as resnet-cifar (SGD momentum 0.9, lr 0.1 ÷10 at "
            "32k and 48k iterations, stop at 64k, weight decay 1e-4, batch 128, pad-4 crops + flips), "
            "with the paper's warm-up for its deep nets over the first 400 iterations. Departs: the "
            "warm-up is a linear ramp from lr 0.01 to 0.1 (the paper holds 0.01 for 400 iterations, "
            "then jumps); trains on all 50k images."
        ),
        "source": "He, Zhang, Ren, Sun 2016b (Identity Mappings in Deep Residual Networks), §4 and Appendix",
        "model": "preact_resnet164",
        "epochs": 164,
        "iterations": 64000,
        "batch_size": 128,
        "lr": 0.1,
        "nesterov": False,
        "weight_decay": 1e-4,
        "milestones": [32000, 48000],
        "milestone_unit": "iter",
        "warmup_epochs": 400 / 391,  # 400 iterations at 391 steps per epoch
        "warmup_start_factor": 0.1,
    },
    "wrn-cifar": {
        **_CIFAR_SGD,
        "description": (
            "WRN-28-10 with dropout 0.3 on CIFAR-10: SGD with Nesterov momentum 0.9, lr 0.1 ×0.2 at "
            "epochs 60, 120 and 160 of 200, weight decay 5e-4, batch 128, pad-4 crops + flips. "
            "Dropout 0.3 between the block's convs is the paper's dropout rows (drop it with "
            "--model-kwargs '{}' for Table 5's). Departs: zero padding for the crops (the paper "
            "pads with reflections)."
        ),
        "source": "Zagoruyko & Komodakis 2016, §4 (experimental setup: SGD, schedule) and Table 6 (dropout)",
        "model": "wrn28_10",
        "epochs": 200,
        "batch_size": 128,
        "lr": 0.1,
        "nesterov": True,
        "weight_decay": 5e-4,
        "milestones": [60, 120, 160],
        "gamma": 0.2,
        "model_kwargs": {"dropout": 0.3},
    },
    "stochastic-depth-cifar": {
        **_CIFAR_SGD,
        "description": (
            "ResNet-110 with stochastic depth on CIFAR-10: blocks survive with p_l falling linearly "
            "to p_L = 0.5 (part of the resnet110_sd model), SGD with Nesterov momentum 0.9, lr 0.1 "
            "÷10 at epochs 250 and 375 of 500, weight decay 1e-4, batch 128, pad-4 crops + flips. "
            "Departs: trains on all 50k images (the paper held out 5k to pick the epoch it reports)."
        ),
        "source": "Huang, Sun, Liu, Sedra, Weinberger 2016 (Deep Networks with Stochastic Depth), §4",
        "model": "resnet110_sd",
        "epochs": 500,
        "batch_size": 128,
        "lr": 0.1,
        "nesterov": True,
        "weight_decay": 1e-4,
        "milestones": [250, 375],
    },
    "densenet-cifar": {
        **_CIFAR_SGD,
        "description": (
            "DenseNet-BC (L = 100, k = 12) on CIFAR-10 with augmentation (C10+): SGD with Nesterov "
            "momentum 0.9, lr 0.1 ÷10 at 50% and 75% of 300 epochs (150, 225), weight decay 1e-4, "
            "batch 64, pad-4 crops + flips, no dropout (the paper adds dropout 0.2 only without "
            "augmentation). Use --model-kwargs for the memory-efficient form on a small machine."
        ),
        "source": "Huang, Liu, van der Maaten, Weinberger 2017 (Densely Connected Convolutional Networks), §4.2",
        "model": "densenet_bc100_k12",
        "epochs": 300,
        "batch_size": 64,
        "lr": 0.1,
        "nesterov": True,
        "weight_decay": 1e-4,
        "milestones": [150, 225],
    },
    "densenet-imagenet": {
        **_IMAGENET,
        **_SGD_NO_EXTRAS,
        "description": (
            "DenseNet-121 on ImageNet: SGD with Nesterov momentum 0.9, lr 0.1 ÷10 at epochs 30 and 60 "
            "of 90, weight decay 1e-4, batch 256, fb.resnet.torch's augmentation (here resnet-"
            "imagenet's scale jitter 256-480 + flips + PCA lighting), single central 224 crop test."
        ),
        "source": "Huang et al. 2017, §4.2 (training) and §4.4 (ImageNet)",
        "model": "densenet121",
        "epochs": 90,
        "batch_size": 256,
        "optimizer": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 1e-4,
        "schedule": "multistep",
        "milestones": [30, 60],
        "milestone_unit": "epoch",
        "gamma": 0.1,
        "warmup_epochs": 0.0,
        "pca_lighting": 0.1,
        "scale_jitter": (256, 480),
    },
    "resnext-cifar": {
        **_CIFAR_SGD,
        "description": (
            "ResNeXt-29 (16×64d) on CIFAR-10: SGD momentum 0.9, lr 0.1 ÷10 at epochs 150 and 225 of "
            "300, weight decay 5e-4, batch 128, pad-4 crops + flips. resnext29_8x64d is the "
            "paper's smaller row."
        ),
        "source": "Xie, Girshick, Dollár, Tu, He 2017 (Aggregated Residual Transformations), §5.3 (CIFAR)",
        "model": "resnext29_16x64d",
        "epochs": 300,
        "batch_size": 128,
        "lr": 0.1,
        "nesterov": False,
        "weight_decay": 5e-4,
        "milestones": [150, 225],
    },
    "resnext-imagenet": {
        **_IMAGENET,
        **_SGD_NO_EXTRAS,
        "description": (
            "ResNeXt-50 (32×4d) on ImageNet, trained as ResNet: SGD momentum 0.9, lr 0.1 ÷10 three "
            "times (fb.resnet.torch's every 30 epochs: 30, 60, 90 of 120), weight decay 1e-4, batch "
            "256, 224 crops + flips + PCA lighting; central 224 crop test. Departs: the paper gives no "
            "epoch count (120 lets the lr fall three times) and uses fb.resnet.torch's scale and "
            "aspect-ratio crops, here resnet-imagenet's scale jitter 256-480."
        ),
        "source": "Xie et al. 2017, §4 (implementation details); fb.resnet.torch (schedule)",
        "model": "resnext50_32x4d",
        "epochs": 120,
        "batch_size": 256,
        "optimizer": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 1e-4,
        "schedule": "multistep",
        "milestones": [30, 60, 90],
        "milestone_unit": "epoch",
        "gamma": 0.1,
        "warmup_epochs": 0.0,
        "pca_lighting": 0.1,
        "scale_jitter": (256, 480),
    },
    # ---- issue 14: the Inception line, NASNet and CapsNet ----
    "inception-v3": {
        **_IMAGENET,
        **_TF_RMSPROP_EPS1,
        "description": (
            "Inception v3: RMSprop (TensorFlow's: decay 0.9, ε = 1.0 inside the root, momentum 0.9), "
            "lr 0.045 ×0.94 every 2 epochs, label smoothing 0.1, gradient clipping at global norm 2.0, "
            "batch 32, 100 epochs; the auxiliary classifier's loss ×0.4 is the model's. 299 crops of "
            "342 images, central crop test. Departs: one process stands in for the paper's 50 "
            "replicas (batch 32 each, asynchronous); momentum 0.9 and weight decay 4e-5 are TF-slim's "
            "(the paper gives neither); scale jitter 342-427 + flips stand in for Inception's "
            "random-area crops and colour distortions."
        ),
        "source": "Szegedy et al. 2016 (Rethinking the Inception Architecture), §7 (label smoothing), §8 "
        "(training); TF-slim inception_v3_arg_scope (weight decay)",
        "model": "inception_v3",
        "input_size": 342,
        "eval_crop": 299,
        "epochs": 100,
        "batch_size": 32,
        "lr": 0.045,
        "weight_decay": 4e-5,
        "label_smoothing": 0.1,
        "grad_clip_norm": 2.0,
        "gamma": 0.94,
        "step_size": 2,
        "scale_jitter": (342, 427),
    },
    "mobilenet-v1": {
        **_IMAGENET,
        **_TF_RMSPROP_EPS1,
        "description": (
            "MobileNet v1: the paper says only 'RMSprop with asynchronous gradient descent similar "
            "to Inception V3', less augmentation, no label smoothing or side heads, and little or no "
            "weight decay on the depthwise filters. So this is inception-v3's recipe without label "
            "smoothing and clipping: RMSprop (TF's, decay 0.9, ε 1.0, momentum 0.9), lr 0.045 ×0.94 "
            "every 2 epochs, batch 32, 100 epochs, weight decay 4e-5 (TF-slim's mobilenet_v1 scope), "
            "flips and a mild scale jitter 256-288. Departs: the weight decay also reaches the "
            "depthwise filters (only BN and biases are exempt)."
        ),
        "source": "Howard et al. 2017 (MobileNets), §4; Szegedy et al. 2016 §8 (the optimizer it cites)",
        "model": "mobilenet_v1",
        "epochs": 100,
        "batch_size": 32,
        "lr": 0.045,
        "weight_decay": 4e-5,
        "no_decay_bn_bias": True,
        "grad_clip_norm": 0.0,
        "gamma": 0.94,
        "step_size": 2,
        "scale_jitter": (256, 288),
    },
    "capsnet": {
        **_ALL_DATA,
        **_NO_AUGMENT,
        "description": (
            "CapsNet on MNIST: Adam (TensorFlow's defaults: lr 1e-3, betas 0.9/0.999, ε 1e-8) with "
            "the released code's exponential decay ×0.96 every 2,000 steps (continuous) at batch "
            "128; margin loss plus 0.0005 × the reconstruction's squared error (the model's loss), "
            "no weight decay; images shifted by up to 2 pixels (zero padding), nothing else. "
            "Departs: epochs are not given (50 here). The reconstruction target undoes MNIST's "
            "normalisation (model_kwargs); for Fashion-MNIST use --data fashion-mnist "
            "--model-kwargs '{}'. (XifengGuo's Keras re-implementation decays ×0.9 per epoch instead.)"
        ),
        "source": "Sabour, Frosst, Hinton 2017, §4 (training) and §4.1 (reconstruction); "
        "Sarasra/models research/capsules experiment.py (lr, decay_rate, decay_steps, batch 128)",
        "model": "capsnet",
        "data": "mnist",
        "input_size": 28,
        "epochs": 50,
        "iterations": None,
        "batch_size": 128,
        "optimizer": "adam",
        "lr": 1e-3,
        "momentum": 0.9,  # unused: Adam's are the betas
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "no_decay_bn_bias": False,
        "label_smoothing": 0.0,
        "schedule": "exponential",
        "gamma": 0.96,
        "step_size": 2000 / 469,  # 2,000 steps at 469 steps per epoch (60,000 / 128)
        "warmup_epochs": 0.0,
        "crop_padding": 2,
        "eval_mode": "none",
        "eval_crop": None,
        "model_kwargs": {"input_mean": list(MNIST_MEAN), "input_std": list(MNIST_STD)},
    },
    "nasnet-mobile": {
        **_IMAGENET,
        **_TF_RMSPROP_EPS1,
        "description": (
            "NASNet-A Mobile (4 @ 1056): the release's notes give batch 32 per replica on 50 "
            "synchronous replicas with lr 0.04 × 50, ×0.97 every 2.4 epochs, label smoothing 0.1, "
            "gradient clipping at global norm 10 and the auxiliary head's loss ×0.4; weight decay "
            "4e-5 (its arg scope); 250,000 steps (312 epochs at batch 1,600). Here per replica: "
            "batch 32, lr 0.04 (the same lr per image). Vague: neither the paper nor the notes name "
            "the optimizer; this uses TF-slim's default, RMSprop (decay 0.9, ε 1.0, momentum 0.9). "
            "Departs: no auxiliary head (the model leaves it out); scale jitter + flips stand in "
            "for Inception preprocessing."
        ),
        "source": "Zoph, Vasudevan, Shlens, Le 2018, §4 and Appendix; tensorflow/models slim "
        "nets/nasnet/nasnet.py (mobile_imagenet_config and its training notes)",
        "model": "nasnet_a_mobile",
        "epochs": 312,
        "batch_size": 32,
        "lr": 0.04,
        "weight_decay": 4e-5,
        "label_smoothing": 0.1,
        "grad_clip_norm": 10.0,
        "gamma": 0.97,
        "step_size": 2.4,
        "scale_jitter": (256, 320),
    },
    "nasnet-large": {
        **_IMAGENET,
        **_TF_RMSPROP_EPS1,
        "description": (
            "NASNet-A Large (6 @ 4032) at 331: the release's notes give batch 16 per replica on 100 "
            "synchronous replicas with lr 0.015 × 100, ×0.97 every 2.4 epochs, label smoothing 0.1, "
            "clipping at global norm 10, auxiliary loss ×0.4; weight decay 5e-5, drop path 0.3 "
            "(keep 0.7), dropout 0.5; 250,000 steps (312 epochs). Here per replica: batch 16, lr "
            "0.015. Vague: the optimizer is not named (TF-slim's default RMSprop here). Departs: "
            "drop path at its final rate from the start (the release ramps it up over the steps); "
            "no auxiliary head; scale jitter 378-473 + flips for Inception preprocessing."
        ),
        "source": "Zoph et al. 2018, §4.1 (ScheduledDropPath) and Appendix; tensorflow/models slim "
        "nets/nasnet/nasnet.py (large_imagenet_config and its training notes)",
        "model": "nasnet_a_large",
        "input_size": 378,
        "eval_crop": 331,
        "epochs": 312,
        "batch_size": 16,
        "lr": 0.015,
        "weight_decay": 5e-5,
        "label_smoothing": 0.1,
        "grad_clip_norm": 10.0,
        "gamma": 0.97,
        "step_size": 2.4,
        "scale_jitter": (378, 473),
        "model_kwargs": {"drop_path_rate": 0.3},
    },
    # ---- issue 13: the efficient line (TensorFlow's RMSprop, lr per image as the papers') ----
    "mobilenet-v2": {
        **_IMAGENET,
        **_TF_RMSPROP_EPS1,
        "description": (
            "MobileNet v2: RMSprop with decay and momentum 0.9, lr 0.045 ×0.98 every epoch, weight "
            "decay 4e-5, batch 96 (the paper's, on 16 asynchronous workers). Vague: ε and the "
            "number of epochs are not given (TF-slim's ε 1.0; 300 epochs, where the lr has fallen to "
            "0.2%). Departs: scale jitter 256-320 + flips for Inception preprocessing."
        ),
        "source": "Sandler, Howard, Zhu, Zhmoginov, Chen 2018, §6.1 (training setup)",
        "model": "mobilenet_v2",
        "epochs": 300,
        "batch_size": 96,
        "lr": 0.045,
        "weight_decay": 4e-5,
        "no_decay_bn_bias": True,
        "grad_clip_norm": 0.0,
        "gamma": 0.98,
        "step_size": 1,
        "scale_jitter": (256, 320),
    },
    "mnasnet": {
        **_IMAGENET,
        **_TF_RMSPROP_TPU,
        "description": (
            "MnasNet-A1: RMSprop (TF's: decay 0.9, momentum 0.9, ε 1e-3), lr 0.256 at batch 4,096 "
            "warmed up from 0 over 5 epochs, then ×0.97 every 2.4 epochs; weight decay 1e-5 (not "
            "on BN), dropout 0.2 (the model's), 350 epochs; the released code adds label smoothing "
            "0.1 and a weight EMA 0.9999. Here batch 256 with lr 0.256 × 256/4096 = 0.016 (the "
            "papers' per-image lr). Departs: the lr decay already runs during the warm-up (the "
            "code starts it after); timm's EMA warm-up stands in for TF's num_updates ramp; scale "
            "jitter + flips for Inception preprocessing."
        ),
        "source": "Tan et al. 2019 (MnasNet), §4 (architecture search details: training); "
        "tensorflow/tpu models/official/mnasnet (mnasnet_main.py: steps, ε, EMA, label smoothing)",
        "model": "mnasnet_a1",
    },
    "mobilenet-v3": {
        **_IMAGENET,
        **_TF_RMSPROP_TPU,
        "description": (
            "MobileNet v3-Large: 'standard' TF RMSprop (decay 0.9, ε 1e-10) with momentum 0.9, lr "
            "0.1 at batch 4,096 ×0.99 every 3 epochs ('decay rate of 0.01 every 3 epochs'), weight "
            "decay 1e-5, dropout 0.2 ('0.8' read as the keep probability; the model's), weight EMA "
            "0.9999. Here batch 256, lr 0.1 × 256/4096 = 0.00625. Vague: epochs, warm-up and label "
            "smoothing are not given (350 epochs, 5 warm-up epochs and no smoothing here, as the "
            "MnasNet code it descends from, less its smoothing)."
        ),
        "source": "Howard et al. 2019 (Searching for MobileNetV3), §6.1 (training setup)",
        "model": "mobilenet_v3_large",
        "lr": 0.1 * 256 / 4096,
        "eps": 1e-10,
        "label_smoothing": 0.0,
        "gamma": 0.99,
        "step_size": 3,
    },
    "efficientnet": {
        **_IMAGENET,
        **_TF_RMSPROP_TPU,
        "description": (
            "EfficientNet-B0: RMSprop (TF's: decay 0.9, momentum 0.9, ε 1e-3), lr 0.256 at batch "
            "4,096 warmed up from 0 over 5 epochs, then ×0.97 every 2.4 epochs, weight decay 1e-5 "
            "(not on BN), weight EMA 0.9999, drop connect 0.2 (the model's, rising over the "
            "blocks), dropout 0.2, label smoothing 0.1, 350 epochs (the released code's). Here batch "
            "256 with lr 0.256 × 256/4096 = 0.016. Departs: no AutoAugment; the lr decay runs during "
            "the warm-up; timm's EMA warm-up for TF's num_updates ramp; scale jitter + flips for "
            "Inception preprocessing; central crop 224 of 256 (the code's crop_padding 32)."
        ),
        "source": "Tan & Le 2019, §5.2 (ImageNet training); tensorflow/tpu models/official/efficientnet "
        "(main.py: warm-up, ε, EMA, label smoothing, 350 epochs)",
        "model": "efficientnet_b0",
        "model_kwargs": {"drop_path_rate": 0.2},
    },
    # ---- our own: Fashion-MNIST on a 2-core CPU (numbers in docs/recipes.md) ----
    "fashion-fast": {
        **_ALL_DATA,
        "description": (
            "Fashion-MNIST on 2 CPU cores, target ≥ 91% test top-1 in ≤ 60 s: LeNet-5 (ReLU), 9 epochs "
            "of Nesterov SGD with a one-cycle lr (peak 0.15 at batch 256, 15% warm-up), label smoothing 0.1, "
            "channels_last, data held in memory. No augmentation and no flip TTA: LeNet-5 underfits "
            "in 9 epochs, and flips cost it accuracy (docs/recipes.md has the measurements)."
        ),
        "source": "cnnzoo; ideas from Page 2018 'How to Train Your ResNet' and Jordan 2024 (airbench)",
        "model": "lenet5_relu",
        "data": "fashion-mnist",
        "input_size": 32,
        "epochs": 9,
        "iterations": None,
        "batch_size": 256,
        "optimizer": "sgd",
        "lr": 0.15,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 5e-4,
        "betas": (0.9, 0.999),
        "no_decay_bn_bias": False,
        "label_smoothing": 0.1,
        "schedule": "onecycle",
        "onecycle_pct_start": 0.15,
        "warmup_epochs": 0.0,
        **_NO_AUGMENT,
        "eval_mode": "none",
        "eval_crop": None,
        "channels_last": True,
    },
    "fashion-best": {
        **_ALL_DATA,
        "description": (
            "Fashion-MNIST on 2 CPU cores, target >= 93% test top-1 in <= 300 s: resnet8 (the n = 1 "
            "member of the CIFAR ResNet family) with its last stage widened to 96 channels (16-32-96), "
            "13 epochs with progressive resizing (2 at 20x20, 1 at 24x24, 10 at 28x28), bf16 autocast "
            "where the CPU computes bf16 natively (--amp native: fp32 elsewhere, and slower), Nesterov "
            "SGD with a one-cycle lr (peak 0.2 at batch 128), label smoothing 0.1, no weight decay on BN "
            "and biases, random flips, one test pass at the end with flip TTA (docs/recipes.md)."
        ),
        "source": "cnnzoo; He et al. 2016 §4.2 family; Page 2018; Jordan 2024 (airbench); fast.ai DAWNBench",
        "model": "resnet8",
        "model_kwargs": {"widths": (16, 32, 96)},
        "data": "fashion-mnist",
        "input_size": 28,
        "progressive_sizes": (20, 20, 24),
        "epochs": 13,
        "iterations": None,
        "batch_size": 128,
        "optimizer": "sgd",
        "lr": 0.2,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 5e-4,
        "betas": (0.9, 0.999),
        "no_decay_bn_bias": True,
        "label_smoothing": 0.1,
        "schedule": "onecycle",
        "onecycle_pct_start": 0.25,
        "warmup_epochs": 0.0,
        **_NO_AUGMENT,
        "hflip": True,
        "eval_mode": "flip",
        "eval_crop": None,
        "eval_every": 0,
        # bf16's convs are faster in the contiguous layout here (benchmarks/fashion_search.py: BF)
        "amp": "native",
        "channels_last": False,
    },
}

# Fields whose values must be of a given type when they come from a file or an override.
_TYPES: dict[str, tuple[type, ...]] = {
    **{
        k: (int,)
        for k in (
            "epochs",
            "iterations",
            "batch_size",
            "eval_batch_size",
            "plateau_patience",
            "crop_padding",
            "eval_crop",
            "input_size",
            "train_samples",
            "seed",
            "threads",
            "checkpoint_every_steps",
            "val_samples",
            "early_stop",
        )
    },
    **{
        k: (int, float)
        for k in (
            "lr",
            "momentum",
            "weight_decay",
            "label_smoothing",
            "grad_clip_norm",
            "step_size",
            "gamma",
            "min_lr_factor",
            "warmup_epochs",
            "warmup_start_factor",
            "onecycle_pct_start",
            "pca_lighting",
            "random_erasing",
            "alpha",
            "eps",
            "ema",
        )
    },
    **{
        k: (bool,)
        for k in ("nesterov", "no_decay_bn_bias", "hflip", "channels_last", "compile", "ema_warmup")
    },
    **{
        k: (str,)
        for k in (
            "model",
            "data",
            "data_dir",
            "optimizer",
            "schedule",
            "milestone_unit",
            "eval_mode",
            "amp",
            "device",
            "out",
        )
    },
    **{k: (list, tuple) for k in ("betas", "milestones", "scale_jitter")},
    "model_kwargs": (dict,),
}


def config_fields() -> set[str]:
    """Every key a config may set: :data:`CONFIG_FIELDS` plus TrainConfig's own fields."""
    from cnnzoo.train.config import TrainConfig

    return set(CONFIG_FIELDS) | {f.name for f in dataclasses.fields(TrainConfig)}


def list_recipes() -> list[str]:
    """The recipe names, in the order of :data:`RECIPES` (papers by year, then ours)."""
    return list(RECIPES)


def get_recipe(name: str) -> dict[str, Any]:
    """A copy of recipe ``name`` (its description and source included).

    Raises:
        ConfigError: unknown name; the message gives the closest names and the full list.
    """
    if name not in RECIPES:
        key = name.lower().replace("_", "-")
        if key in RECIPES:
            return copy.deepcopy(RECIPES[key])
        close = difflib.get_close_matches(key, list(RECIPES), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown recipe {name!r}.{hint} Known: {', '.join(RECIPES)} (see `cnnzoo recipes`)"
        )
    return copy.deepcopy(RECIPES[name])


def _normalise_keys(d: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if not isinstance(k, str):
            raise ConfigError(f"{where}: keys must be field names, got {k!r}")
        out[k.strip().replace("-", "_")] = v
    return out


def _check(d: dict[str, Any], where: str, *, allow: tuple[str, ...] = ()) -> dict[str, Any]:
    """Reject unknown keys (naming the closest fields) and values of the wrong type."""
    known = config_fields() | set(allow)
    unknown = sorted(set(d) - known)
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, sorted(known), n=1, cutoff=0.6)
            hints.append(f"{k} (did you mean {close[0]}?)" if close else k)
        raise ConfigError(
            f"{where}: unknown config field(s): {', '.join(hints)}. "
            f"Valid fields: {', '.join(sorted(known - set(allow)))}"
        )
    for k, v in d.items():
        types = _TYPES.get(k)
        if v is None or types is None:
            continue
        ok = isinstance(v, types) and not (isinstance(v, bool) and bool not in types)
        if not ok:
            names = " or ".join(t.__name__ for t in types)
            raise ConfigError(f"{where}: {k} must be {names}, got {v!r} ({type(v).__name__})")
    return d


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a config file: YAML (``.yaml``/``.yml``, needs pyyaml), TOML (``.toml``) or JSON (``.json``).

    The top level is a mapping of TrainConfig fields (``-`` and ``_`` are interchangeable in names);
    it may also name a ``recipe:`` to start from.

    Raises:
        ConfigError: a missing file, an unknown extension, a parse error, unknown keys or wrong types.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    ext = path.suffix.lower()
    try:
        if ext in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as e:
                raise ConfigError(
                    f"{path} is YAML but pyyaml is not installed: `pip install pyyaml`, "
                    "or write the config as TOML or JSON"
                ) from e
            data = yaml.safe_load(path.read_text()) or {}
        elif ext == ".toml":
            import tomllib

            with open(path, "rb") as f:
                data = tomllib.load(f)
        elif ext == ".json":
            data = json.loads(path.read_text())
        else:
            raise ConfigError(f"{path}: unknown config extension {ext!r}; use .yaml, .yml, .toml or .json")
    except ConfigError:
        raise
    except Exception as e:  # yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError
        mark = getattr(e, "problem_mark", None)  # YAML: where, without its multi-line caret drawing
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        why = getattr(e, "problem", None) or " ".join(str(e).split())
        raise ConfigError(
            f"{path} could not be parsed as {ext[1:].upper()}{where}: {why}; fix the file"
        ) from e
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of config fields at the top level, got {type(data).__name__}"
        )
    data = _normalise_keys(data, str(path))
    return _check(data, str(path), allow=("recipe",))


def _layer(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``; a layer that sets ``epochs`` without ``iterations`` clears an inherited
    ``iterations`` (so that ``--epochs 5`` on an iteration-based recipe means 5 epochs)."""
    out = {**base, **top}
    if "epochs" in top and "iterations" not in top and base.get("iterations") is not None:
        out["iterations"] = None
    return out


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    for k in ("betas", "scale_jitter"):
        if isinstance(d.get(k), list):
            d[k] = tuple(d[k])
    if isinstance(d.get("milestones"), tuple):
        d["milestones"] = list(d["milestones"])
    return d


def resolve(recipe: str | None, config_file: str | Path | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The config fields of a run: recipe, then config file, then overrides (later wins, field by field).

    Args:
        recipe: a recipe name (``--recipe``), or None. It wins over a ``recipe:`` named in the file.
        config_file: a YAML/TOML/JSON file (``--config``), or None.
        overrides: fields given on the command line; ``None`` values mean "not given" and are skipped.

    Returns:
        A dict of TrainConfig fields only (``description``/``source`` dropped): the fields the
        recipe and file set, and the overrides; fields none of them sets are left to TrainConfig's
        defaults.

    Raises:
        ConfigError: unknown recipe, unreadable file, unknown keys or wrong types.
    """
    file_cfg = load_config_file(config_file) if config_file is not None else {}
    name = recipe if recipe is not None else file_cfg.get("recipe")
    base: dict[str, Any] = {}
    if name is not None:
        if not isinstance(name, str):
            raise ConfigError(f"{config_file}: recipe must be a name, got {name!r}")
        base = {k: v for k, v in get_recipe(name).items() if k not in META_FIELDS}
    file_cfg = {k: v for k, v in file_cfg.items() if k != "recipe"}
    given = _check(
        _normalise_keys({k: v for k, v in overrides.items() if v is not None}, "overrides"), "overrides"
    )
    return _tuples(_layer(_layer(base, file_cfg), given))
