"""The training configuration: one flat dataclass, saved as ``config.json`` in every run directory.

Every field can be set by a recipe (``cnnzoo.train.recipes``), a ``--config FILE`` (YAML or TOML)
and a CLI flag generated from the field (``weight_decay`` -> ``--weight-decay``), in that order of
precedence. :meth:`TrainConfig.validate` checks every value and names the fix.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cnnzoo.errors import ConfigError

__all__ = ["TrainConfig", "AMP_MODES", "EVAL_MODES", "FIELD_HELP"]

AMP_MODES = ("off", "auto", "native", "bf16", "fp16")
EVAL_MODES = ("none", "center", "flip", "shift", "tencrop")
OPTIMIZER_NAMES = ("sgd", "adam", "adamw", "rmsprop", "rmsprop_tf")
SCHEDULE_NAMES = ("constant", "step", "exponential", "multistep", "plateau", "cosine", "onecycle")

# One line of help per field: the CLI flags are generated from the dataclass and these lines.
FIELD_HELP: dict[str, str] = {
    "model": "registry name (cnnzoo list)",
    "data": "dataset: fashion-mnist, mnist, kmnist, cifar10, cifar100, imagefolder",
    "data_dir": "directory with the dataset files (else $CNNZOO_DATA, else the Debian path)",
    "epochs": "passes over the training set",
    "iterations": "total optimizer steps; overrides --epochs (the run stops after this many steps)",
    "batch_size": "GLOBAL batch size (split evenly across torchrun processes)",
    "eval_batch_size": "batch size at evaluation",
    "optimizer": "sgd, adam, adamw, rmsprop (PyTorch's) or rmsprop_tf (TensorFlow's: eps inside the root, "
    "square average from 1, lr inside the momentum)",
    "lr": "peak learning rate, for the global batch",
    "momentum": "SGD and RMSprop momentum",
    "nesterov": "SGD Nesterov momentum",
    "weight_decay": "L2 weight decay (decoupled for adamw)",
    "betas": "Adam/AdamW betas, e.g. 0.9,0.999",
    "alpha": "RMSprop's squared-gradient decay (default: 0.99 rmsprop, 0.9 rmsprop_tf)",
    "eps": "Adam/AdamW/RMSprop epsilon (default: 1e-8; 1e-10 for rmsprop_tf, TensorFlow's)",
    "no_decay_bn_bias": "exclude norm-layer weights and biases from weight decay",
    "label_smoothing": "label smoothing of the cross-entropy (0 = off)",
    "grad_clip_norm": "clip the global L2 norm of the gradients to this before each step (0 = off)",
    "schedule": "constant, step, exponential, multistep, plateau, cosine or onecycle",
    "milestones": "multistep milestones, e.g. 30,60 (unit: --milestone-unit)",
    "milestone_unit": "epoch or iter",
    "gamma": "lr factor of step, exponential (per --step-size), multistep and plateau",
    "step_size": "period of the step (staircase) and exponential (continuous) schedules, in epochs; "
    "fractions allowed, e.g. 2.4",
    "plateau_patience": "epochs without validation-loss improvement before plateau divides the lr",
    "min_lr_factor": "cosine's final lr and plateau's floor, as a fraction of --lr",
    "warmup_epochs": "linear warmup length in epochs (fractions allowed)",
    "warmup_start_factor": "lr multiplier at the first warmup step",
    "onecycle_pct_start": "fraction of the one-cycle run spent increasing the lr",
    "crop_padding": "random crop after zero-padding by this many pixels (0 = off)",
    "hflip": "random horizontal flip",
    "pca_lighting": "AlexNet PCA lighting noise std (0 = off)",
    "scale_jitter": "VGG scale jittering: MIN,MAX rescale side before the crop",
    "random_erasing": "random erasing probability (0 = off)",
    "eval_mode": "none, center, flip (flip TTA), shift (flip and 1-pixel shifts: 6 views) or tencrop",
    "eval_crop": "crop side for center/tencrop evaluation",
    "input_size": "side fed to the model (default: per model)",
    "progressive_sizes": "progressive resizing: train epoch i at side SIZES[i] (bilinear, antialiased) for "
    "the first len(SIZES) epochs, then at --input-size; e.g. 20,20,24",
    "eval_every": "evaluate on the test set every N epochs and after the last one (0 = after the last "
    "one only)",
    "train_samples": "train on a random subset of N images (of those left after --val-samples)",
    "classes": "keep only these classes (ids or names; an imagefolder's folder names), relabelled 0..k-1 "
    "in the order given, e.g. 5,6,7,8,9 or cat,dog",
    "train_per_class": "train on N images of each class, drawn by --seed (of those left after --val-samples)",
    "val_samples": "hold out N training images (drawn by --seed) as a validation split; the plateau "
    "schedule, best.safetensors and --early-stop read it (0 = none)",
    "early_stop": "stop after N epochs without a better validation top-1 (0 = off; needs --val-samples)",
    "ema": "keep an exponential moving average of the weights with this decay, e.g. 0.999 (0 = off); "
    "evaluated and saved as ema.safetensors",
    "ema_warmup": "ramp the EMA decay up as timm's ModelEmaV3 warm-up (1 - t^(-2/3)), capped at --ema",
    "test_samples": "evaluate on a fixed random subset of N test images (quick runs only: the reported "
    "accuracy is then the subset's)",
    "seed": "random seed (init, shuffling, augmentation)",
    "device": "auto, cpu, cuda, cuda:1 or mps",
    "threads": "CPU threads (default: torch's)",
    "amp": "mixed precision: off, auto (fp16 on CUDA, off on CPU), native (auto, but bf16 on a CPU "
    "with AVX512-BF16 or AMX), bf16 or fp16",
    "channels_last": "channels_last memory format for model and inputs",
    "compile": "torch.compile the model",
    "checkpoint_every_steps": "also checkpoint every N optimizer steps (0 = at epoch ends only)",
    "out": "run directory (default runs/MODEL-TIMESTAMP)",
    "model_kwargs": "extra builder keywords as JSON, e.g. '{\"dropout\": 0.3}'",
    "workers": "decoding worker processes (imagefolder only)",
}


@dataclass
class TrainConfig:
    """Everything a run needs. Defaults are the LeNet-5 demo recipe (see README): lenet5_relu,
    12 epochs, batch 128, SGD lr 0.05 Nesterov momentum 0.9, wd 5e-4, cosine with 0.5 warmup epoch."""

    model: str = "lenet5_relu"
    data: str = "fashion-mnist"
    data_dir: str | None = None
    epochs: int = 12
    iterations: int | None = None
    batch_size: int = 128
    eval_batch_size: int = 1000
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    alpha: float | None = None
    eps: float | None = None
    no_decay_bn_bias: bool = False
    label_smoothing: float = 0.0
    grad_clip_norm: float = 0.0
    schedule: str = "cosine"
    milestones: tuple[float, ...] = ()
    milestone_unit: str = "epoch"
    gamma: float = 0.1
    step_size: float = 30
    plateau_patience: int = 5
    min_lr_factor: float = 0.0
    warmup_epochs: float = 0.5
    warmup_start_factor: float = 0.1
    onecycle_pct_start: float = 0.25
    crop_padding: int = 0
    hflip: bool = False
    pca_lighting: float = 0.0
    scale_jitter: tuple[int, int] | None = None
    random_erasing: float = 0.0
    eval_mode: str = "none"
    eval_crop: int | None = None
    input_size: int | None = None
    progressive_sizes: tuple[int, ...] = ()
    eval_every: int = 1
    train_samples: int | None = None
    classes: tuple[int | str, ...] = ()
    train_per_class: int | None = None
    val_samples: int = 0
    test_samples: int | None = None
    early_stop: int = 0
    ema: float = 0.0
    ema_warmup: bool = False
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    amp: str = "auto"
    channels_last: bool = False
    compile: bool = False
    checkpoint_every_steps: int = 0
    out: str | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    workers: int = 2

    def __post_init__(self) -> None:
        # JSON/YAML/TOML give lists; keep tuples so configs compare equal whatever their source.
        if isinstance(self.betas, list):
            self.betas = tuple(self.betas)
        if isinstance(self.milestones, list | int | float):
            self.milestones = (
                tuple(self.milestones) if isinstance(self.milestones, list) else (self.milestones,)
            )
        if isinstance(self.progressive_sizes, list | int):
            self.progressive_sizes = (
                tuple(self.progressive_sizes)
                if isinstance(self.progressive_sizes, list)
                else (self.progressive_sizes,)
            )
        if isinstance(self.classes, list | int):
            self.classes = tuple(self.classes) if isinstance(self.classes, list) else (self.classes,)
        if isinstance(self.scale_jitter, list):
            self.scale_jitter = tuple(self.scale_jitter)

    def validate(self) -> TrainConfig:
        """Check every field; raise :class:`ConfigError` naming the field and the fix."""

        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        self._check_types()
        need(
            isinstance(self.model, str) and bool(self.model),
            "model must be a registry name (see cnnzoo list)",
        )
        need(
            isinstance(self.data, str) and bool(self.data), "data must be a dataset name, e.g. fashion-mnist"
        )
        need(isinstance(self.epochs, int) and self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        need(
            self.iterations is None or (isinstance(self.iterations, int) and self.iterations >= 1),
            f"iterations must be >= 1 (or unset to train --epochs), got {self.iterations}",
        )
        need(
            isinstance(self.batch_size, int) and self.batch_size >= 1,
            f"batch size must be >= 1, got {self.batch_size}",
        )
        need(
            isinstance(self.eval_batch_size, int) and self.eval_batch_size >= 1,
            f"eval batch size must be >= 1, got {self.eval_batch_size}",
        )
        need(
            self.optimizer in OPTIMIZER_NAMES,
            f"optimizer must be one of {', '.join(OPTIMIZER_NAMES)}, got {self.optimizer!r}",
        )
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        need(self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}")
        need(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            f"betas must be two numbers in [0, 1), e.g. 0.9,0.999; got {self.betas}",
        )
        need(self.alpha is None or 0 <= self.alpha < 1, f"alpha must be in [0, 1), got {self.alpha}")
        need(self.eps is None or self.eps > 0, f"eps must be > 0, got {self.eps}")
        need(0 <= self.label_smoothing < 1, f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        need(
            self.schedule in SCHEDULE_NAMES,
            f"schedule must be one of {', '.join(SCHEDULE_NAMES)}, got {self.schedule!r}",
        )
        need(
            self.schedule != "multistep" or len(self.milestones) > 0,
            "the multistep schedule needs milestones, e.g. --milestones 30,60",
        )
        need(all(m > 0 for m in self.milestones), f"milestones must be > 0, got {self.milestones}")
        need(
            self.milestone_unit in ("epoch", "iter"),
            f"milestone unit must be epoch or iter, got {self.milestone_unit!r}",
        )
        need(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}")
        need(self.step_size > 0, f"step size must be > 0 epochs (e.g. 2.4), got {self.step_size}")
        need(
            self.grad_clip_norm >= 0,
            f"grad clip norm must be >= 0 (0 = off), e.g. 2.0; got {self.grad_clip_norm}",
        )
        need(self.plateau_patience >= 0, f"plateau patience must be >= 0, got {self.plateau_patience}")
        need(0 <= self.min_lr_factor <= 1, f"min lr factor must be in [0, 1], got {self.min_lr_factor}")
        need(self.warmup_epochs >= 0, f"warmup epochs must be >= 0, got {self.warmup_epochs}")
        need(
            0 <= self.warmup_start_factor <= 1,
            f"warmup start factor must be in [0, 1], got {self.warmup_start_factor}",
        )
        need(
            0 < self.onecycle_pct_start < 1,
            f"onecycle pct start must be in (0, 1), got {self.onecycle_pct_start}",
        )
        need(self.crop_padding >= 0, f"crop padding must be >= 0 pixels, got {self.crop_padding}")
        need(self.pca_lighting >= 0, f"pca lighting std must be >= 0, got {self.pca_lighting}")
        need(
            self.scale_jitter is None
            or (len(self.scale_jitter) == 2 and 0 < self.scale_jitter[0] <= self.scale_jitter[1]),
            f"scale jitter must be MIN,MAX with 0 < MIN <= MAX (e.g. 256,512), got {self.scale_jitter}",
        )
        need(
            0 <= self.random_erasing <= 1,
            f"random erasing probability must be in [0, 1], got {self.random_erasing}",
        )
        need(
            self.eval_mode in EVAL_MODES,
            f"eval mode must be one of {', '.join(EVAL_MODES)}, got {self.eval_mode!r}",
        )
        need(self.eval_crop is None or self.eval_crop >= 1, f"eval crop must be >= 1, got {self.eval_crop}")
        need(
            self.input_size is None or self.input_size >= 1, f"input size must be >= 1, got {self.input_size}"
        )
        need(
            all(isinstance(s, int) and s >= 1 for s in self.progressive_sizes),
            f"progressive sizes must be image sides >= 1, e.g. 20,20,24; got {self.progressive_sizes}",
        )
        need(
            isinstance(self.eval_every, int) and self.eval_every >= 0,
            f"eval every must be >= 0 epochs (0 = after the last epoch only), got {self.eval_every}",
        )
        need(
            self.train_samples is None or self.train_samples >= 1,
            f"train samples must be >= 1, got {self.train_samples}",
        )
        self._check_classes()
        need(
            self.train_per_class is None or self.train_per_class >= 1,
            f"train per class must be >= 1 image, got {self.train_per_class}",
        )
        need(
            self.train_per_class is None or self.train_samples is None,
            "--train-per-class and --train-samples both choose the training subset; give one of them",
        )
        need(
            self.val_samples >= 0,
            f"val samples must be >= 0 (0 = no validation split), got {self.val_samples}",
        )
        need(
            self.schedule != "plateau" or self.val_samples > 0,
            "the plateau schedule watches the validation loss, and the test set is never used for "
            "decisions: hold out a validation split with --val-samples N (e.g. 5000)",
        )
        need(
            self.early_stop >= 0, f"early stop patience must be >= 0 epochs (0 = off), got {self.early_stop}"
        )
        need(
            self.early_stop == 0 or self.val_samples > 0,
            "--early-stop watches the validation top-1, and the test set is never used for decisions: "
            "hold out a validation split with --val-samples N (e.g. 5000)",
        )
        need(0 <= self.ema < 1, f"ema decay must be in [0, 1) (0 = off), e.g. 0.999; got {self.ema}")
        need(
            self.test_samples is None or self.test_samples >= 1,
            f"test samples must be >= 1, got {self.test_samples}",
        )
        need(isinstance(self.seed, int) and self.seed >= 0, f"seed must be an integer >= 0, got {self.seed}")
        need(
            isinstance(self.device, str) and self.device.split(":")[0] in ("auto", "cpu", "cuda", "mps"),
            f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}",
        )
        need(self.threads is None or self.threads >= 1, f"threads must be >= 1, got {self.threads}")
        need(self.amp in AMP_MODES, f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        need(
            self.checkpoint_every_steps >= 0,
            f"checkpoint every steps must be >= 0 (0 = every epoch only), got {self.checkpoint_every_steps}",
        )
        need(
            isinstance(self.model_kwargs, dict), f"model kwargs must be a mapping, got {self.model_kwargs!r}"
        )
        need(self.workers >= 0, f"workers must be >= 0, got {self.workers}")
        return self

    def _check_classes(self) -> None:
        """``classes``: distinct class ids >= 0 or names (the dataset's classes are checked when it is
        opened, :func:`cnnzoo.data.subsets.resolve_classes`)."""
        ids = self.classes

        def ok(c: Any) -> bool:
            if isinstance(c, str):
                return bool(c.strip())
            return isinstance(c, int) and not isinstance(c, bool) and c >= 0

        if not all(ok(c) for c in ids):
            raise ConfigError(
                f"--classes must be class ids >= 0 or class names, e.g. 5,6,7,8,9 or cat,dog; "
                f"got {','.join(map(str, ids))}"
            )
        repeated = sorted({c for c in ids if ids.count(c) > 1}, key=str)
        if repeated:
            raise ConfigError(
                f"--classes names class {', '.join(map(str, repeated))} more than once ({','.join(map(str, ids))}); "
                "give each class id once"
            )

    def _check_types(self) -> None:
        simple = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            ann = str(f.type).replace(" ", "")
            optional = ann.endswith("|None")
            base = ann.removesuffix("|None")
            if v is None and optional:
                continue
            kinds = simple.get(base)
            if kinds is None:
                continue
            ok = isinstance(v, kinds) and not (base in ("int", "float") and isinstance(v, bool))
            if not ok:
                what = {"float": "a number", "int": "an integer", "bool": "true or false", "str": "a string"}[
                    base
                ]
                raise ConfigError(f"{f.name} must be {what}{' or unset' if optional else ''}, got {v!r}")

    @property
    def has_val(self) -> bool:
        """Whether the run holds out a validation split."""
        return self.val_samples > 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("betas", "milestones", "scale_jitter", "progressive_sizes", "classes"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = set(cls.field_names())
        unknown = sorted(set(d) - names)
        if unknown:
            import difflib

            hints = []
            for u in unknown:
                close = difflib.get_close_matches(u, sorted(names), n=1)
                hints.append(f"{u} (did you mean {close[0]}?)" if close else u)
            raise ConfigError(
                f"unknown config field(s): {', '.join(hints)}; the fields are those of `cnnzoo train --help`"
            )
        return cls(**d)
