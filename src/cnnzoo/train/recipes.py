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
            "member of the CIFAR ResNet family, 16-32-64 channels) at the native 28x28, 9 epochs with "
            "progressive resizing (3 at 20x20, 2 at 24x24, 4 at 28x28), Nesterov SGD with a one-cycle lr "
            "(peak 0.2 at batch 128), label smoothing 0.1, no weight decay on BN and biases, random "
            "flips, one test pass at the end with flip TTA (docs/recipes.md)."
        ),
        "source": "cnnzoo; He et al. 2016 §4.2 family; Page 2018; Jordan 2024 (airbench); fast.ai DAWNBench",
        "model": "resnet8",
        "data": "fashion-mnist",
        "input_size": 28,
        "progressive_sizes": (20, 20, 20, 24, 24),
        "epochs": 9,
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
        "channels_last": True,
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
            "step_size",
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
