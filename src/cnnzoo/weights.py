r"""Weights from files: torchvision, timm and cnnzoo checkpoints, loaded through explicit key maps.

``create_model(NAME, weights=FILE)`` and :func:`load_weights` take four steps, each a function of its
own so that ``cnnzoo weights inspect`` and ``convert`` can call them one by one:

1. :func:`read_state_dict` reads FILE safely: safetensors, or ``torch.load(weights_only=True)`` for
   ``.pth``/``.pt``/``.bin`` (the format is sniffed, not trusted from the suffix). It unwraps
   ``{"state_dict": ...}``, ``{"model": ...}`` and the like, and strips a DDP ``module.`` (or a
   ``torch.compile`` ``_orig_mod.``) prefix.
2. A :class:`KeyMap` turns one library layout's keys into a cnnzoo model's keys: regex renames, then
   tensor edits where the layouts store a weight differently (a reshape, a transposition, a split or
   a concatenation of a fused tensor). Every map lives in :data:`KEY_MAPS`, at the end of this
   module; :data:`CNNZOO` is the identity, a cnnzoo file's (a run's ``weights.safetensors``).
3. :func:`identify` ranks every layout (each map, and each registered model's own keys) by how well
   a file fits it; :func:`convert_state_dict` returns a file in a given model's keys.
4. :func:`load_weights` copies a file into a built model and returns a :class:`LoadReport`.

Adding a key map
----------------
A zoo issue whose model does not copy a library's keys adds one :class:`KeyMap` to the
``register_key_map(...)`` call at the end of this module. Say cnnzoo's ``seresnet50`` named its SE
layers ``se.reduce`` / ``se.expand`` and kept them as ``nn.Linear``, where timm has 1×1 convs
``se.fc1`` / ``se.fc2``::

    KeyMap(
        "timm", "seresnet50", ("seresnet50",),
        rename=((r"\.se\.fc1\.", ".se.reduce."), (r"\.se\.fc2\.", ".se.expand.")),
        transforms=(map_tensors(r".*\.se\.(reduce|expand)\.weight", lambda w: w.flatten(1)),),
    ),

``rename`` rules are ``re.sub`` calls applied in order to every file key; ``transforms`` then run,
in order, on the renamed state dict (write a split or a concatenation as a small function of the
dict; keep to tensor ops, since :func:`identify` also runs them on meta tensors). ``drop`` lists the
file keys with no cnnzoo counterpart, ``note`` says what a user must know about the layout's files
(:func:`identify` shows it), and ``check`` returns a one-line notice when a built model will not
reproduce the library's outputs (e.g. a ReLU model given ReLU6 weights). A model part that a file may
lack, such as GoogLeNet's auxiliary heads, is a row of :data:`OPTIONAL_PARTS`. The test
``test_every_key_map_fits_its_library_network`` builds each map's library network on the meta device
and checks that the map turns its keys into every listed model's keys: adding a map tests it.

Errors and notices
------------------
Every failure is one line, a :class:`WeightsError` (a :class:`~cnnzoo.errors.CnnzooError` and a
``ValueError``): :class:`WeightsNotFoundError` (also a ``FileNotFoundError``) for a missing path or a
directory; plain :class:`WeightsError` for an empty, truncated or corrupt file, a pickle that needs code
to load (refused, with how to convert it), or a file holding no state dict;
:class:`WeightsMismatchError` for a state dict that fits none of the model's layouts, naming the
closest layout, the missing and unexpected keys (a few, with their nearest names, and the counts) and
every shape mismatch's key and both shapes.

A load that succeeds but leaves some of the model's weights freshly initialised says so in one line,
as a :class:`WeightsWarning` (``warnings.warn``) and in :attr:`LoadReport.notices`. That happens when
the file's classifier has another class count than the model (everything but the head is loaded;
the head is told apart by shape alone: the mismatching keys whose leading dimension is the model's
class count, the file's being one other count), when the file lacks an optional part, when a map's
``check`` objects, or with ``strict=False``. Parts of the file the model has no place for (GoogLeNet's
aux heads into ``aux_logits=False``) are dropped without a warning and listed in
:attr:`LoadReport.unexpected`. Command-line code calls :func:`load_weights` with ``warn=False`` and
prints ``report.notices``.
"""

from __future__ import annotations

import difflib
import json
import pickle
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from functools import cache
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError

__all__ = [
    "WeightsError",
    "WeightsNotFoundError",
    "WeightsMismatchError",
    "WeightsAmbiguousError",
    "WeightsWarning",
    "Verdict",
    "identify_layout",
    "KeyMap",
    "KEY_MAPS",
    "CNNZOO",
    "OptionalPart",
    "OPTIONAL_PARTS",
    "register_key_map",
    "map_tensors",
    "KeyDiff",
    "Match",
    "LoadReport",
    "read_state_dict",
    "identify",
    "convert_state_dict",
    "load_weights",
    "build_with_weights",
    "Preprocessing",
    "PREPROCESSING_KEY",
    "file_format",
    "read_preprocessing",
    "default_preprocessing",
    "save_cnnzoo_weights",
    "apply_preprocessing",
]

StateDict = dict[str, Tensor]
Shape = tuple[int, ...]
Mismatch = tuple[str, Shape, Shape]  # (key, file shape, model shape)
Source = str | PathLike | Mapping[str, Any]


class WeightsError(CnnzooError, ValueError):
    """A weights file that cannot be read: empty, truncated, corrupt, unsafe, or not a state dict."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """A weights path that does not exist, or that is a directory."""


class WeightsMismatchError(WeightsError):
    """A state dict that fits none of a model's layouts; the message names the closest one."""


class WeightsWarning(UserWarning):
    """A one-line notice: the load left some of the model's weights freshly initialised."""


# ---------------------------------------------------------------------------------------------------
# Key maps: data plus small functions, in one table


@dataclass(frozen=True)
class KeyMap:
    """How one library layout's state_dict becomes a cnnzoo model's (see the module docstring).

    Attributes:
        library: ``"torchvision"`` or ``"timm"`` (``"cnnzoo"`` for :data:`CNNZOO` only).
        layout: the library's model name (``"resnet50"``, ``"legacy_seresnet50"``).
        models: the cnnzoo models the layout's files load into, the closest first.
        rename: ``(pattern, replacement)`` pairs, ``re.sub`` on every file key, in order (a
            replacement may be a function of the match, e.g. to renumber stages).
        transforms: functions of the renamed state dict, applied in order (tensor edits).
        drop: fnmatch patterns of file keys that have no cnnzoo counterpart.
        note: what a user must know about this layout's files (shown by :func:`identify`).
        check: ``check(model)`` returns a one-line notice when the built model will not reproduce
            the library's outputs with these weights, else ``None``.
    """

    library: str
    layout: str
    models: tuple[str, ...]
    rename: tuple[tuple[str, str | Callable[[re.Match[str]], str]], ...] = ()
    transforms: tuple[Callable[[StateDict], StateDict], ...] = ()
    drop: tuple[str, ...] = ()
    note: str = ""
    check: Callable[[nn.Module], str | None] | None = None

    @property
    def name(self) -> str:
        return f"{self.library} {self.layout}"

    def apply(self, state: Mapping[str, Tensor]) -> StateDict:
        """The state dict in the cnnzoo model's keys."""
        out: StateDict = {}
        for key, tensor in state.items():
            if any(fnmatchcase(key, p) for p in self.drop):
                continue
            new = key
            for pattern, repl in self.rename:
                new = re.sub(pattern, repl, new)
            if new in out:
                raise ValueError(f"key map {self.name} sends two file keys to {new!r}")
            out[new] = tensor
        for transform in self.transforms:
            out = transform(out)
        return out


def map_tensors(pattern: str, fn: Callable[[Tensor], Tensor]) -> Callable[[StateDict], StateDict]:
    """A :attr:`KeyMap.transforms` entry: ``fn`` on every tensor whose key fully matches ``pattern``."""
    rx = re.compile(pattern)

    def transform(state: StateDict) -> StateDict:
        return {k: fn(v) if rx.fullmatch(k) else v for k, v in state.items()}

    return transform


#: The identity layout: a cnnzoo state dict (a run's ``weights.safetensors``) fits its own model.
CNNZOO = KeyMap("cnnzoo", "*", ("*",), note="cnnzoo's own keys, as a run's weights.safetensors holds them")

#: Every library layout cnnzoo loads, in one table; :func:`register_key_map` adds to it.
KEY_MAPS: list[KeyMap] = []

LIBRARIES = ("torchvision", "timm")


def register_key_map(*maps: KeyMap) -> None:
    """Add layouts to :data:`KEY_MAPS`; a (library, layout) pair is registered once."""
    for km in maps:
        if km.library not in LIBRARIES:
            raise ValueError(f"key map {km.name}: library must be one of {LIBRARIES}")
        if not km.models:
            raise ValueError(f"key map {km.name} names no cnnzoo model")
        if any((m.library, m.layout) == (km.library, km.layout) for m in KEY_MAPS):
            raise ValueError(f"key map {km.name} is already registered")
        KEY_MAPS.append(km)


class OptionalPart(NamedTuple):
    """Keys of a cnnzoo model that a file may lack (they keep their init) or carry (dropped).

    ``hint`` ends the notice when the file lacks them; ``None`` keeps the load quiet.
    """

    models: str  # fnmatch pattern of registry names
    keys: tuple[str, ...]  # fnmatch patterns of state_dict keys
    hint: str | None


OPTIONAL_PARTS: list[OptionalPart] = [
    # BN's step counter: absent from files saved before PyTorch 0.4.1; eval never reads it.
    OptionalPart("*", ("*num_batches_tracked",), None),
    # Training-only heads, so eval logits are the same with or without them; torchvision saves them
    # with aux_logits=True (its released file has them, untrained) and leaves them out otherwise.
    OptionalPart("googlenet*", ("aux1.*", "aux2.*"), "build it with aux_logits=False to leave them out"),
]


def _optional_parts(name: str) -> list[OptionalPart]:
    return [p for p in OPTIONAL_PARTS if fnmatchcase(name, p.models)]


def _is_optional(key: str, parts: list[OptionalPart]) -> bool:
    return any(fnmatchcase(key, pat) for p in parts for pat in p.keys)


# ---------------------------------------------------------------------------------------------------
# Reading files safely

# Where training scripts nest the state dict: timm and Lightning ("state_dict"), torchvision's
# references ("model"), common tutorials ("model_state_dict", "net").
_WRAPPERS = ("state_dict", "model_state_dict", "model", "net", "module")
# Prefixes that wrappers add to every key: DistributedDataParallel, torch.compile.
_PREFIXES = ("module.", "_orig_mod.")
_RUN_WEIGHTS = ("weights.safetensors", "ema.safetensors", "best.safetensors")


def read_state_dict(path: str | PathLike) -> StateDict:
    """Read a weights file into a state dict (CPU tensors), running no code from the file.

    Raises:
        WeightsNotFoundError: the path is missing or a directory.
        WeightsError: the file is empty, truncated, corrupt, a pickle that needs code, or holds no
            state dict.
    """
    path = Path(path)
    if path.is_dir():
        inside = next((f for f in _RUN_WEIGHTS if (path / f).is_file()), None)
        hint = (
            f"; it holds {inside}: pass {path / inside}" if inside else "; pass a .safetensors or .pth file"
        )
        raise WeightsNotFoundError(f"{path} is a directory, not a weights file{hint}")
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file not found: {path}")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path} is empty (0 bytes): the download or copy did not finish; fetch it again")
    obj = _read_safetensors(path) if _is_safetensors(path) else _read_torch(path)
    return _unwrap(obj, str(path))


def _is_safetensors(path: Path) -> bool:
    """By suffix, or by the header: 8 bytes of little-endian header length, then a JSON object."""
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size


def _read_safetensors(path: Path) -> StateDict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise WeightsError(
            f"{path} is not a readable safetensors file ({_first_line(e)}): it is truncated or corrupt; "
            "copy or download it again"
        ) from e


def _read_torch(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        needs = re.search(r"GLOBAL ([\w.]+)", str(e))
        if needs:
            raise WeightsError(
                f"{path} is refused: it is a pickle that needs code to load ({needs.group(1)}), and cnnzoo "
                "reads files with torch.load(weights_only=True), which runs none. If you trust its source, "
                "load it once with torch.load(FILE, weights_only=False) and save the state dict inside (a "
                "dict of tensors) with torch.save or safetensors.torch.save_file"
            ) from e
        raise _unreadable(path, "unreadable pickle data") from e
    except Exception as e:  # a damaged file fails anywhere in zip or pickle parsing, with any type
        raise _unreadable(path, f"{type(e).__name__}: {_first_line(e)}") from e


def _unreadable(path: Path, why: str) -> WeightsError:
    return WeightsError(
        f"{path} is not a readable PyTorch checkpoint ({why}): it is truncated or corrupt, or not a "
        "checkpoint; copy or download it again"
    )


def _first_line(e: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
    return (text.splitlines() or [type(e).__name__])[0][:160]


def _unwrap(obj: Any, label: str) -> StateDict:
    """The state dict inside a checkpoint, with wrapper prefixes stripped."""
    for _ in range(3):  # e.g. {"model": {"state_dict": ...}}
        if _is_state_dict(obj):
            return _strip_prefixes(dict(obj))
        inner = [obj[k] for k in _WRAPPERS if isinstance(obj, Mapping) and isinstance(obj.get(k), Mapping)]
        if not inner:
            break
        obj = inner[0]
    if isinstance(obj, Mapping) and obj:
        odd = next(k for k, v in obj.items() if not (isinstance(k, str) and isinstance(v, Tensor)))
        raise WeightsError(
            f"{label} holds no state dict: a dict with keys {list(obj)[:5]} whose {odd!r} is a "
            f"{type(obj[odd]).__name__}, and no {'/'.join(_WRAPPERS)} entry of tensors; save model.state_dict()"
        )
    what = "an empty dict" if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
    raise WeightsError(f"{label} holds {what}, not a state dict (a dict of tensors); save model.state_dict()")


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    )


def _strip_prefixes(state: StateDict) -> StateDict:
    stripped = True
    while stripped:
        stripped = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                stripped = True
    return state


def _run_model(path: str | PathLike) -> str | None:
    """The model of the cnnzoo run whose directory holds ``path`` (its config.json), if any."""
    try:
        cfg = json.loads((Path(path).parent / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return cfg.get("model") if isinstance(cfg, dict) and "model_config" in cfg else None


#: safetensors metadata keys that may name the library a file comes from, and the names they may
#: give (``save_file(..., metadata={"library": "timm"})``); cnnzoo's convert writes ``cnnzoo_model``
_LIBRARY_KEYS = ("library", "library_name", "source_library")
_LIBRARY_NAMES = {"timm": "timm", "pytorch-image-models": "timm", "torchvision": "torchvision"}


class _Src(NamedTuple):
    state: StateDict
    label: str  # for messages
    run_model: str | None  # the model of the cnnzoo run whose directory holds the file
    claim: tuple[str, str] | None  # (library, "KEY=VALUE") from the safetensors metadata


def _metadata_claim(path: str | PathLike) -> tuple[str, str] | None:
    """The library that a safetensors file's metadata names, with the entry that names it."""
    path = Path(path)
    if not _is_safetensors(path):
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError):
        return None
    for key in _LIBRARY_KEYS:
        lib = _LIBRARY_NAMES.get(str(meta.get(key, "")).strip().lower())
        if lib is not None:
            return lib, f"{key}={meta[key]}"
    if meta.get("cnnzoo_model"):
        return "cnnzoo", f"cnnzoo_model={meta['cnnzoo_model']}"
    return None


def _source(weights: Source) -> _Src:
    """The state dict of a path or an in-memory checkpoint, its label, run model and library claim."""
    if isinstance(weights, Mapping):
        return _Src(_unwrap(weights, "the state dict"), "the state dict", None, None)
    state = read_state_dict(weights)
    return _Src(state, str(weights), _run_model(weights), _metadata_claim(weights))


# ---------------------------------------------------------------------------------------------------
# Comparing a state dict with a model's keys


class KeyDiff(NamedTuple):
    """How a (converted) state dict compares with a model's state_dict, key by key.

    The classifier and the stem conv are told apart by shape alone (no help from the model files):
    the head is the mismatching keys whose model shape leads with the model's class count and whose
    file shape differs only there, by one other count; the stem, the 4-d weights that differ only in
    their input channels, the model's ``in_chans`` against one other count.

    Attributes:
        matched: keys in both, with equal shapes.
        missing: model keys the file lacks (optional parts excepted).
        unexpected: file keys the model lacks (optional parts excepted).
        mismatched: ``(key, file shape, model shape)`` of keys in both with other shapes, the head
            and the stem excepted.
        head: classifier keys with another class count; ``file_classes`` is the file's count.
        stem: stem conv keys with another input channel count; ``file_in_chans`` is the file's.
        absent: optional model keys the file lacks (they keep the model's init).
        ignored: optional file keys the model lacks (dropped).
    """

    matched: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[Mismatch, ...]
    head: tuple[str, ...] = ()
    file_classes: int | None = None
    stem: tuple[Mismatch, ...] = ()
    file_in_chans: int | None = None
    absent: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()

    @property
    def fits(self) -> bool:
        """The file is this network: every key has its place and shape, once the model is built
        with :attr:`build_args` (the file's class and channel counts)."""
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def loads(self) -> bool:
        """The file loads into the compared build as it is (a head of another count is reset; a
        stem for other input cannot be)."""
        return self.fits and not self.stem

    @property
    def build_args(self) -> dict[str, int]:
        """``num_classes`` and ``in_chans`` where the file's differ from the compared model's."""
        args = {"num_classes": self.file_classes, "in_chans": self.file_in_chans}
        return {k: v for k, v in args.items() if v is not None}

    @property
    def score(self) -> float:
        """Agreement in [0, 1]: the keys that match (a head or stem of another count too, a key of
        another shape by half) over all keys of either side."""
        good = len(self.matched) + len(self.head) + len(self.stem) + 0.5 * len(self.mismatched)
        bad = 0.5 * len(self.mismatched) + len(self.missing) + len(self.unexpected)
        return good / (good + bad) if good + bad else 0.0

    def summary(self, limit: int = 3) -> str:
        """One line: the counts, and a few keys of each kind with their nearest names or shapes."""
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing ({_few(self.missing, self.unexpected, limit)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected ({_few(self.unexpected, self.missing, limit)})")
        if self.mismatched:
            parts.append(
                f"{len(self.mismatched)} with another shape ({_shapes_text(self.mismatched, limit)})"
            )
        if self.stem:
            parts.append(f"a {self.file_in_chans}-channel stem ({_shapes_text(self.stem, limit)})")
        if self.head:
            parts.append(f"a {self.file_classes}-class head")
        return ", ".join(parts) or "every key fits"


def _shapes_text(items: tuple[Mismatch, ...], limit: int) -> str:
    shown = "; ".join(f"{k}: file {f} vs model {m}" for k, f, m in items[:limit])
    return shown + ("; ..." if len(items) > limit else "")


def _few(keys: tuple[str, ...], others: tuple[str, ...], limit: int) -> str:
    shown = []
    for key in keys[:limit]:
        near = difflib.get_close_matches(key, others, n=1, cutoff=0.6)
        shown.append(f"{key} (nearest: {near[0]})" if near else key)
    return ", ".join(shown) + (", ..." if len(keys) > limit else "")


class _Target(NamedTuple):
    """A model's keys and shapes, and the class and channel counts the head and stem identify."""

    name: str
    shapes: dict[str, Shape]
    num_classes: int | None
    in_chans: int | None


def _target_of(model: nn.Module) -> _Target:
    cfg = getattr(model, "default_cfg", None)
    return _Target(
        getattr(cfg, "name", "") or "",
        {k: tuple(v.shape) for k, v in model.state_dict().items()},
        getattr(model, "num_classes", None) or getattr(cfg, "num_classes", None),
        getattr(model, "in_chans", None),
    )


@cache
def _registered_target(name: str) -> _Target:
    """A registered model's default keys, built once per process on the meta device (no memory)."""
    from cnnzoo.registry import create_model

    with torch.device("meta"):
        return _target_of(create_model(name))


def _shapes(state: Mapping[str, Tensor]) -> dict[str, Shape]:
    return {k: tuple(v.shape) for k, v in state.items()}


def _diff(file: Mapping[str, Shape], target: _Target) -> KeyDiff:
    model = target.shapes
    parts = _optional_parts(target.name)
    opt = lambda k: _is_optional(k, parts)
    common = [k for k in model if k in file]
    other = [(k, file[k], model[k]) for k in common if file[k] != model[k]]
    head, other = _split_by_count(other, 0, target.num_classes)
    stem, other = _split_by_count(other, 1, target.in_chans, ndim=4)
    return KeyDiff(
        matched=tuple(k for k in common if file[k] == model[k]),
        missing=tuple(k for k in model if k not in file and not opt(k)),
        unexpected=tuple(k for k in file if k not in model and not opt(k)),
        mismatched=tuple(other),
        head=tuple(k for k, _, _ in head),
        file_classes=head[0][1][0] if head else None,
        stem=tuple(stem),
        file_in_chans=stem[0][1][1] if stem else None,
        absent=tuple(k for k in model if k not in file and opt(k)),
        ignored=tuple(k for k in file if k not in model and opt(k)),
    )


def _split_by_count(
    other: list[Mismatch], dim: int, count: int | None, ndim: int | None = None
) -> tuple[list[Mismatch], list[Mismatch]]:
    """Split off the mismatches that differ only in dimension ``dim``, the model's size there being
    ``count`` and the file's one other size: the head (dim 0, the class count) or the stem (dim 1,
    the input channels). Several other sizes there are no other count, but another network."""

    def differs_there(f: Shape, m: Shape) -> bool:
        same_rank = len(f) == len(m) > dim and (ndim is None or len(m) == ndim)
        return (
            same_rank
            and m[dim] == count
            and f[dim] != count
            and f[:dim] + f[dim + 1 :] == m[:dim] + m[dim + 1 :]
        )

    picked = [x for x in other if count and differs_there(x[1], x[2])]
    if len({f[dim] for _, f, _ in picked}) != 1:
        return [], other
    return picked, [x for x in other if x not in picked]


# ---------------------------------------------------------------------------------------------------
# Choosing a layout: identify, convert


class _Fit(NamedTuple):
    key_map: KeyMap
    state: StateDict  # in the model's keys
    diff: KeyDiff


def _apply(km: KeyMap, state: Mapping[str, Tensor]) -> StateDict | None:
    """The converted state dict, or ``None`` where a map's tensor edits do not apply to this file."""
    try:
        return km.apply(state)
    except (KeyError, ValueError, IndexError, RuntimeError):
        return None


def _all_fits(state: Mapping[str, Tensor], target: _Target, run_model: str | None = None) -> list[_Fit]:
    """Every layout of the model that applies to ``state``, best first; a library's before cnnzoo's
    own on a tie, unless the file sits in a run directory of this model."""
    maps = [km for km in KEY_MAPS if target.name in km.models]
    maps = [CNNZOO, *maps] if run_model == target.name else [*maps, CNNZOO]
    fits = []
    for km in maps:
        converted = _apply(km, state)
        if converted is not None:
            fits.append(_Fit(km, converted, _diff(_shapes(converted), target)))
    return sorted(fits, key=lambda f: (not f.diff.fits, -f.diff.score))  # stable: table order on ties


def _best_fit(state: Mapping[str, Tensor], target: _Target, run_model: str | None = None) -> _Fit:
    """The model's layout that fits ``state`` best (the first of :func:`_all_fits`)."""
    return _all_fits(state, target, run_model)[0]


# ---------------------------------------------------------------------------------------------------
# Which library saved a file: torchvision and timm share some layouts key for key


class WeightsAmbiguousError(WeightsMismatchError):
    """A file that fits two libraries' layouts of a model, which load it differently, with nothing
    in the file to tell them apart; the message names both and how to choose."""


class Verdict(NamedTuple):
    """Which layout a file was identified as for one cnnzoo model, and why (:func:`identify_layout`).

    Attributes:
        model: the cnnzoo model.
        layout: the layout used to load it (``"torchvision resnet18"``); ``""`` when none fits.
        library: ``"torchvision"``, ``"timm"`` or ``"cnnzoo"``; None when the file cannot tell
            (``twins``) or fits nothing.
        twins: every fitting layout, ``layout`` first, when more than one fits.
        same_mapping: the fitting layouts turn the file into the same state dict (so it loads the
            same whichever library saved it).
        reason: one line: what decided, or why nothing can.
        evidence: what was looked at, one short line each (the classifier's name, the
            num_batches_tracked buffers, the safetensors metadata).
    """

    model: str
    layout: str
    library: str | None
    twins: tuple[str, ...]
    same_mapping: bool
    reason: str
    evidence: tuple[str, ...] = ()

    @property
    def ambiguous(self) -> bool:
        """Several libraries' layouts fit, they load the file differently, and nothing decided."""
        return self.library is None and not self.same_mapping and len(self.twins) > 1


def _same_tensors(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> bool:
    """Two conversions of one file hold the same tensors under the same keys (on the meta device,
    where values are unknown, the same shapes and dtypes)."""
    if list(a) != list(b) and set(a) != set(b):
        return False
    for k, x in a.items():
        y = b[k]
        if x is y:
            continue  # renames only: the very same tensor
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if not (x.is_meta or y.is_meta) and not torch.equal(x, y):
            return False
    return True


def _classifier_key(state: Mapping[str, Tensor]) -> str | None:
    """The file's classifier weight, as the last 2-d weight (a linear layer) or, in a net whose head
    is a conv (SqueezeNet), the last weight: timm names it ``fc``, ``classifier``, ``head.fc`` or
    ``last_linear``, torchvision ``fc``, ``classifier.N`` or ``heads.head``."""
    weights = [k for k, v in state.items() if k.endswith("weight") and v.ndim >= 2]
    linear = [k for k in weights if state[k].ndim == 2]
    return (linear or weights or [None])[-1]


def _evidence(state: Mapping[str, Tensor], claim: tuple[str, str] | None) -> tuple[str, ...]:
    out = []
    head = _classifier_key(state)
    if head is not None:
        out.append(f"classifier {head.removesuffix('.weight')} {tuple(state[head].shape)}")
    counters = sum(k.endswith("num_batches_tracked") for k in state)
    norms = sum(k.endswith("running_mean") for k in state)
    if norms:
        # PyTorch >= 0.4.1 saves a BatchNorm's step counter whichever library built the network,
        # and files saved before (torchvision's first releases) lack it: it dates a file, not a library
        have = "all" if counters == norms else ("none" if counters == 0 else f"{counters}")
        out.append(f"num_batches_tracked: {have} of {norms} BatchNorms (dates a file, names no library)")
    out.append(f"safetensors metadata {claim[1]}" if claim else "no metadata naming a library")
    return tuple(out)


def _decide(src: _Src, target: _Target, layout: str | None = None) -> tuple[_Fit, Verdict]:
    """The layout to load ``src`` through for ``target``, and the verdict saying why.

    In order: an explicit ``layout`` (a layout's name, ``"timm resnet18"``, or a library's); the
    file's run directory (cnnzoo's own keys); the safetensors metadata naming a library; the only
    library whose layouts fit (its keys and shapes tell it apart); else the fitting layouts are
    twins: if they map the file the same way it does not matter which library saved it (said so),
    and if not, the verdict is :attr:`Verdict.ambiguous` and loading refuses to guess.

    Raises:
        WeightsMismatchError: ``layout`` names no layout of the model that fits the file.
    """
    fits = _all_fits(src.state, target, src.run_model)
    fitting = [f for f in fits if f.diff.fits]
    evidence = _evidence(src.state, src.claim)
    name = target.name or "the model"
    if not fitting:
        return fits[0], Verdict(name, "", None, (), False, f"fits none of {name}'s layouts", evidence)
    names = tuple(f.key_map.name if f.key_map is not CNNZOO else f"cnnzoo {name}" for f in fitting)

    def verdict(f: _Fit, library: str | None, why: str) -> tuple[_Fit, Verdict]:
        same = all(_same_tensors(f.state, g.state) for g in fitting)
        first = names[fitting.index(f)]
        twins = (first, *(n for n in names if n != first)) if len(fitting) > 1 else ()
        return f, Verdict(name, first, library, twins, same, why, evidence)

    if layout is not None:
        layout = re.sub(r"^(torchvision|timm|cnnzoo)[-: ]", r"\1 ", layout.strip())  # timm-resnet50
        chosen = [f for f, n in zip(fitting, names, strict=True) if layout in (n, f.key_map.library)]
        if not chosen:
            raise WeightsMismatchError(
                f"{src.label}: layout {layout!r} does not fit {name}; the layouts that fit are {', '.join(names)}"
            )
        return verdict(chosen[0], chosen[0].key_map.library, f"chosen by layout={layout!r}")
    if src.run_model == target.name and fitting[0].key_map is CNNZOO:
        return verdict(fitting[0], "cnnzoo", f"it sits in a cnnzoo run directory of {name} (config.json)")
    libraries = list(dict.fromkeys(f.key_map.library for f in fitting))
    if src.claim is not None and src.claim[0] in libraries:
        f = next(f for f in fitting if f.key_map.library == src.claim[0])
        return verdict(f, src.claim[0], f"the safetensors metadata says {src.claim[1]}")
    outside = [lib for lib in libraries if lib != "cnnzoo"]
    conflict = (
        f" (the metadata's {src.claim[1]} fits none of its layouts: the keys decide)" if src.claim else ""
    )
    if not outside:  # a file in cnnzoo's own layout, outside a run directory (a saved state_dict)
        return verdict(fitting[0], "cnnzoo", f"only cnnzoo's own layout of {name} fits its keys and shapes")
    if len(outside) == 1:
        f = next(f for f in fitting if f.key_map.library == outside[0])
        others = [n for n in names if not n.startswith(outside[0] + " ")]
        also = f", and {', '.join(others)}, the same keys" if others else ""
        why = f"of {name}'s layouts, only {f.key_map.name}'s keys and shapes fit{also}{conflict}"
        return verdict(f, outside[0], why)
    f, v = verdict(fitting[0], None, "")
    if v.same_mapping:
        why = (
            f"{_and(v.twins)} have the same keys and shapes, so the file cannot tell which "
            f"library saved it; they map it into {name} the same way, so it loads the same either way"
        )
    else:
        why = (
            f"{_and(v.twins)} all fit and map it into {name} differently, and nothing in the "
            "file tells which library saved it"
        )
    return f, v._replace(reason=why + conflict)


def _and(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _refuse_ambiguous(src: _Src, v: Verdict) -> None:
    if v.ambiguous:
        raise WeightsAmbiguousError(
            f"{src.label}: {v.reason}; name the layout (load_weights(..., layout={v.twins[0]!r}) or "
            f"`cnnzoo weights convert FILE --model {v.model} --layout {v.twins[0].replace(' ', '-')}`), or "
            "save it with safetensors metadata library=timm or library=torchvision"
        )


def identify_layout(
    weights: Source, model: str | nn.Module | None = None, *, layout: str | None = None
) -> Verdict:
    """Which library and layout a file is for ``model`` (default: the model it fits best), and why.

    torchvision's and timm's ResNets, ResNeXts, wide ResNets, DenseNets and Inception v3 have the
    same state_dict keys and shapes: for their files the verdict says the libraries cannot be told
    apart (and that they load the same, :attr:`Verdict.same_mapping`), unless the safetensors
    metadata names the library. Where the layouts differ, the keys and shapes decide.
    """
    src = _source(weights)
    if model is None:
        best = _rank(src.state, src.run_model)[0]
        model = best.model
    target = _registered_target(model) if isinstance(model, str) else _target_of(model)
    return _decide(src, target, layout)[1]


class Match(NamedTuple):
    """One layout a file may be, compared with one cnnzoo model (see :func:`identify`)."""

    library: str
    layout: str
    model: str
    diff: KeyDiff
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.library} {self.layout}"

    @property
    def fits(self) -> bool:
        return self.diff.fits

    @property
    def score(self) -> float:
        return self.diff.score


def identify(weights: Source, *, top: int | None = 5) -> list[Match]:
    """Rank the cnnzoo models a file may load into, each with the layout that explains it best.

    The layouts are every key map and every registered model's own keys. Fitting matches come
    first, then by :attr:`KeyDiff.score`; on a tie a library's layout comes before cnnzoo's own keys
    (wave 1 copies them), except for the model of the run whose directory holds the file. The first
    call builds every registered model on the meta device once (a few seconds); later calls reuse
    their keys.

    Args:
        weights: a path, or a state dict (or checkpoint dict) already in memory.
        top: how many matches to return (``None``: all).
    """
    src = _source(weights)
    return _rank(src.state, src.run_model)[:top]


def _rank(state: Mapping[str, Tensor], run_model: str | None) -> list[Match]:
    from cnnzoo.registry import list_models

    meta = {k: torch.empty(v.shape, dtype=v.dtype, device="meta") for k, v in state.items()}
    matches: list[tuple[int, Match]] = []
    for km in [*KEY_MAPS, CNNZOO]:
        converted = _apply(km, meta)
        if converted is None:
            continue
        shapes = _shapes(converted)
        for model in list_models() if km is CNNZOO else km.models:
            layout = model if km is CNNZOO else km.layout
            tier = 0 if (km is CNNZOO and model == run_model) else (2 if km is CNNZOO else 1)
            match = Match(km.library, layout, model, _diff(shapes, _registered_target(model)), km.note)
            matches.append((tier, match))
    matches.sort(key=lambda tm: (not tm[1].fits, -tm[1].score, tm[0]))  # stable: table order on ties
    best: dict[str, Match] = {}  # one match per cnnzoo model: the layout that explains the file best
    for _, match in matches:
        best.setdefault(match.model, match)
    return list(best.values())


def convert_state_dict(weights: Source, model: str | nn.Module, *, layout: str | None = None) -> StateDict:
    """A file's state dict in a cnnzoo model's keys, through the layout it is identified as
    (:func:`identify_layout`; ``layout`` names one, e.g. ``"timm resnet50"``, or a library).

    The file's head is kept as it is (with its own class count); optional parts the model lacks are
    dropped. ``model`` is a registry name (its default build) or a built model.

    Raises:
        WeightsMismatchError: the file fits none of the model's layouts (or not ``layout``).
        WeightsAmbiguousError: two libraries' layouts fit and map it differently, and nothing decides.
    """
    src = _source(weights)
    target = _registered_target(model) if isinstance(model, str) else _target_of(model)
    fit, verdict = _decide(src, target, layout)
    if not fit.diff.fits:
        raise _mismatch_error(src.label, target, fit, src.state, src.run_model)
    _refuse_ambiguous(src, verdict)
    return {k: fit.state[k] for k in target.shapes if k in fit.state}  # in the model's key order


def _mismatch_error(
    label: str, target: _Target, fit: _Fit, state: Mapping[str, Tensor], run_model: str | None
) -> WeightsMismatchError:
    name = target.name or "the model"
    best = _rank(state, run_model)[0]
    if best.fits and best.model != target.name:
        advice = (
            f"Closest layout: {best.name}, which fits {best.model}: "
            f"create_model({best.model!r}, weights=...) loads it."
        )
    else:
        advice = f"Closest layout: {best.name} ({best.score:.0%} of keys agree)."
        channels = fit.diff.file_in_chans
        if channels is not None:
            advice += f" The file takes {channels}-channel input: build {name} with in_chans={channels}."
    return WeightsMismatchError(
        f"{label} does not fit {name}: against {fit.key_map.name}'s keys, {fit.diff.summary()}. {advice}"
    )


# ---------------------------------------------------------------------------------------------------
# Loading


class LoadReport(NamedTuple):
    """What :func:`load_weights` did.

    Attributes:
        source: the file (or "the state dict").
        layout: the key map used, e.g. ``"torchvision resnet50"``, or ``"cnnzoo NAME"`` for the
            model's own keys.
        loaded: how many tensors were copied into the model.
        missing: model keys the file did not fill; they keep the model's values, its fresh init
            after ``create_model`` (the head of another class count, optional parts the file lacks,
            and with ``strict=False`` every misfit).
        unexpected: file keys the model has no place for, dropped.
        head_reset: the classifier keys left freshly initialised (another class count).
        notices: the one-line notices (also warned as :class:`WeightsWarning` unless ``warn=False``).
        library: the library identified as the file's source (:attr:`Verdict.library`): None when
            torchvision's and timm's layouts cannot be told apart (they then load it the same).
        identified: why that layout, in one line (:attr:`Verdict.reason`).
    """

    source: str
    layout: str
    loaded: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    head_reset: tuple[str, ...]
    notices: tuple[str, ...]
    library: str | None = None
    identified: str = ""


def load_weights(
    model: nn.Module, weights: Source, *, strict: bool = True, warn: bool = True, layout: str | None = None
) -> LoadReport:
    """Load a torchvision, timm or cnnzoo checkpoint into a built model, through its key maps.

    Args:
        model: a model from :func:`cnnzoo.create_model` (its registry name picks the key maps).
        weights: a path (``.safetensors``, ``.pth``, ``.pt``, ``.bin``) or a state dict in memory.
        strict: refuse a file that does not fit (the default); ``False`` loads the keys that fit,
            keeps the model's init elsewhere, and says so in a notice.
        warn: emit each notice as a :class:`WeightsWarning`.
        layout: the layout to load through (``"timm resnet50"``, or a library's name), where the
            file alone does not decide (:func:`identify_layout`).

    Raises:
        WeightsError: the file cannot be read; :class:`WeightsMismatchError`: it does not fit;
        :class:`WeightsAmbiguousError`: two libraries' layouts fit it differently and nothing decides.
    """
    return _load_state(model, _source(weights), strict=strict, warn=warn, stacklevel=3, layout=layout)


def _load_state(
    model: nn.Module, src: _Src, *, strict: bool, warn: bool, stacklevel: int, layout: str | None = None
) -> LoadReport:
    target = _target_of(model)
    fit, verdict = _decide(src, target, layout)
    label = src.label
    if strict and not fit.diff.loads:
        raise _mismatch_error(label, target, fit, src.state, src.run_model)
    if fit.diff.fits:
        _refuse_ambiguous(src, verdict)
    own = target.shapes
    take = {k: v for k, v in fit.state.items() if own.get(k) == tuple(v.shape)}
    model.load_state_dict(take, strict=False)
    report = LoadReport(
        source=label,
        layout=f"cnnzoo {target.name}" if fit.key_map is CNNZOO else fit.key_map.name,
        loaded=len(take),
        missing=tuple(k for k in own if k not in take),
        unexpected=tuple(k for k in fit.state if k not in own),
        head_reset=fit.diff.head,
        notices=tuple(_notices(model, target, fit, label, strict)),
        library=verdict.library,
        identified=verdict.reason,
    )
    if warn:
        for text in report.notices:
            warnings.warn(text, WeightsWarning, stacklevel=stacklevel)
    return report


def _notices(model: nn.Module, target: _Target, fit: _Fit, label: str, strict: bool) -> list[str]:
    d, name, keys = fit.diff, target.name or type(model).__name__, list(target.shapes)
    out = []
    if d.head:
        out.append(
            f"{label}: its classifier has {d.file_classes} classes and {name} has {target.num_classes}: "
            f"loaded everything but {', '.join(_modules(d.head, keys))}, left freshly initialised"
        )
    for part in _optional_parts(target.name):
        absent = [k for k in d.absent if any(fnmatchcase(k, p) for p in part.keys)]
        if absent and part.hint is not None:
            out.append(
                f"{label} has no {', '.join(_modules(absent, keys))}: they stay freshly initialised in {name} "
                f"({part.hint})"
            )
    if not strict and not d.loads:
        out.append(f"{label} fits {name} only in part (strict=False): {d.summary()}; the rest keeps its init")
    if fit.key_map.check is not None and (text := fit.key_map.check(model)):
        out.append(text)
    return out


def _modules(keys: list[str] | tuple[str, ...], all_keys: list[str]) -> list[str]:
    """The fewest module names covering ``keys``: ``fc`` for fc.weight and fc.bias, ``aux1`` for
    every key under aux1 (but ``classifier.6`` when only that layer of the classifier is named)."""
    chosen = set(keys)
    out: list[str] = []
    for key in (k for k in all_keys if k in chosen):
        parts = key.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if all(k in chosen for k in all_keys if k == prefix or k.startswith(prefix + ".")):
                break
        if prefix not in out:
            out.append(prefix)
    return out


def build_with_weights(
    name: str,
    weights: Source,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """``create_model(name, weights=FILE, ...)``: read the file, build the model, load the file.

    The file is read before the model is built, so a bad file fails fast. ``num_classes`` and
    ``in_chans`` left unset are taken from the file (its head and stem; as torchvision sets them
    from its weights), so a Fashion-MNIST run's weights rebuild a 10-class, 1-channel model.
    """
    from cnnzoo.registry import create_model

    src = _source(weights)
    if num_classes is None or in_chans is None:
        with torch.device("meta"):
            probe = create_model(name, num_classes=num_classes, in_chans=in_chans, **kwargs)
        args = _best_fit(src.state, _target_of(probe), src.run_model).diff.build_args
        num_classes = args.get("num_classes") if num_classes is None else num_classes
        in_chans = args.get("in_chans") if in_chans is None else in_chans
    model = create_model(name, num_classes=num_classes, in_chans=in_chans, **kwargs)
    _load_state(model, src, strict=True, warn=True, stacklevel=4)
    if not isinstance(weights, Mapping):
        pre = read_preprocessing(weights)
        if pre is not None:
            apply_preprocessing(model, pre)
    return model


# ---------------------------------------------------------------------------------------------------
# Preprocessing beside the weights: what `cnnzoo weights convert` writes and create_model reads back

#: the safetensors metadata key of :class:`Preprocessing` (a JSON object)
PREPROCESSING_KEY = "cnnzoo_preprocessing"


class Preprocessing(NamedTuple):
    """How images must be prepared for a file's weights, as ``cnnzoo weights convert`` records it.

    Attributes:
        mean, std: per-channel normalisation, after scaling pixels to [0, 1].
        input_size: ``(C, H, W)`` the weights were trained (or evaluated) at.
        interpolation: the resize filter (``bilinear``, ``bicubic``); ``pad`` for a run that
            zero-padded its 28×28 images (LeNet's 32×32 convention).
        class_names: the classifier's classes, index = output (empty when unknown).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int, int]
    interpolation: str = "bilinear"
    class_names: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in self._asdict().items()})

    @classmethod
    def from_json(cls, text: str, label: str = "the file") -> Preprocessing:
        try:
            d = json.loads(text)
            return cls(
                mean=tuple(float(v) for v in d["mean"]),
                std=tuple(float(v) for v in d["std"]),
                input_size=tuple(int(v) for v in d["input_size"]),  # type: ignore[arg-type]
                interpolation=str(d.get("interpolation", "bilinear")),
                class_names=tuple(str(c) for c in d.get("class_names", ())),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise WeightsError(
                f"{label}'s {PREPROCESSING_KEY} metadata is damaged ({_first_line(e)}); convert the file again"
            ) from e


def file_format(path: str | PathLike) -> str:
    """``"safetensors"`` or ``"pytorch"`` (a ``torch.save`` file), sniffed from the bytes."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file not found: {path}")
    return "safetensors" if _is_safetensors(path) else "pytorch"


def read_preprocessing(path: str | PathLike) -> Preprocessing | None:
    """The :class:`Preprocessing` in a safetensors file's metadata, or None (no metadata, a .pth)."""
    path = Path(path)
    if not path.is_file() or not _is_safetensors(path):
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError):
        return None  # read_state_dict has already said what is wrong with the file
    text = meta.get(PREPROCESSING_KEY)
    return None if text is None else Preprocessing.from_json(text, str(path))


def _run_preprocessing(path: Path, model: nn.Module) -> Preprocessing | None:
    """A run's data: its dataset's mean, std and classes (its ``--classes``), its input size and mode."""
    try:
        cfg = json.loads((path.parent / "config.json").read_text())
        from cnnzoo.data.datasets import dataset_spec

        spec = dataset_spec(cfg["data"])
    except (OSError, ValueError, KeyError, CnnzooError):
        return None
    names = spec.classes
    if cfg.get("class_names"):  # what the run trained on, after --classes (an imagefolder's folders too)
        names = tuple(str(c) for c in cfg["class_names"])
    elif cfg.get("classes"):  # runs from before class_names was recorded
        from cnnzoo.data.subsets import resolve_classes

        names = tuple(names[i] for i in resolve_classes(cfg["classes"], names, spec.name))
    side = int(cfg.get("input_size") or model.default_cfg.input_size[-1])
    c = int(getattr(model, "in_chans", len(spec.mean)))
    mean, std = spec.mean, spec.std
    if len(mean) != c:  # the feed repeats a gray channel or averages colour (cnnzoo.data.transforms)
        mean, std = (sum(mean) / len(mean),) * c, (sum(std) / len(std),) * c
    interp = "pad" if cfg.get("input_mode") == "pad" else "bilinear"
    return Preprocessing(tuple(mean), tuple(std), (c, side, side), interp, tuple(names))


def default_preprocessing(
    model: nn.Module, source: str | PathLike | None = None, library: str = ""
) -> Preprocessing:
    """What a converted file records when the user gives nothing else: a cnnzoo run's own data
    (from its config.json beside ``source``); else the model config's mean, std and input size,
    bilinear, and ImageNet's class names for a torchvision or timm head of 1000 classes."""
    if source is not None:
        run = _run_preprocessing(Path(source), model)
        if run is not None:
            return run
    cfg = model.default_cfg
    c = int(getattr(model, "in_chans", cfg.input_size[0]))
    mean, std = cfg.mean, cfg.std
    if len(mean) != c:
        mean, std = (sum(mean) / len(mean),) * c, (sum(std) / len(std),) * c
    names: tuple[str, ...] = ()
    if library in LIBRARIES and getattr(model, "num_classes", None) == 1000:
        from torchvision.models._meta import _IMAGENET_CATEGORIES

        names = tuple(_IMAGENET_CATEGORIES)
    return Preprocessing(tuple(mean), tuple(std), (c, *cfg.input_size[1:]), "bilinear", names)


def save_cnnzoo_weights(
    state: Mapping[str, Tensor],
    path: str | PathLike,
    *,
    model: str,
    preprocessing: Preprocessing,
    source: str = "",
    source_layout: str = "",
) -> Path:
    """Write a state dict in cnnzoo keys as safetensors, atomically, with the preprocessing in its
    metadata (:data:`PREPROCESSING_KEY`), the model's name, the source file's name and the layout it
    was read as (``cnnzoo_source_layout``)."""
    from safetensors.torch import save_file

    from cnnzoo.io import atomic_write

    meta = {"format": "pt", "cnnzoo_model": model, PREPROCESSING_KEY: preprocessing.to_json()}
    if source:
        meta["cnnzoo_source"] = source
    if source_layout:
        meta["cnnzoo_source_layout"] = source_layout
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    return atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=meta))


def apply_preprocessing(model: nn.Module, pre: Preprocessing) -> None:
    """Set a built model's ``default_cfg`` mean, std and input size from ``pre``; its interpolation
    and class names go to ``default_cfg.extra`` (``interpolation``, ``class_names``)."""

    cfg = getattr(model, "default_cfg", None)
    if cfg is None:
        return
    extra = {**cfg.extra, "interpolation": pre.interpolation, "class_names": list(pre.class_names)}
    model.default_cfg = replace(cfg, mean=pre.mean, std=pre.std, input_size=pre.input_size, extra=extra)


# ---------------------------------------------------------------------------------------------------
# The layouts. Wave 1 copies torchvision's keys, so its maps are identities; later families add
# their renames and tensor edits here (see the module docstring).

_TORCHVISION_SAME_NAMES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
)

register_key_map(
    *(KeyMap("torchvision", n, (n,)) for n in _TORCHVISION_SAME_NAMES),
    KeyMap("torchvision", "alexnet", ("alexnet_tv",)),
    KeyMap(
        "torchvision",
        "googlenet",
        ("googlenet_tv",),
        note=(
            "torchvision's released GoogLeNet weights (IMAGENET1K_V1, ported from TensorFlow) expect "
            "transform_input=True, and their aux1/aux2 heads are untrained"
        ),
    ),
)

# The residual families and DenseNet (issue 12): pre-activation, ResNeXt, Wide ResNet, SE, DenseNet.
# torchvision's ResNeXt and wide ResNets are its ResNet with other widths, and timm's SE-ResNet(X)s
# its ResNet with an SE module named ``se`` (fc1/fc2): cnnzoo keeps those keys, so the maps are
# identities. timm's legacy SENet and torchvision's DenseNet have keys of their own.
_TORCHVISION_RESIDUAL_SAME_NAMES = (
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
)
# torchvision's files before 0.3 spell a dense layer's parts ``norm.1``, ``conv.2``; its own loader
# (``_load_state_dict`` in torchvision/models/densenet.py) rewrites them, and so does this rule.
_DENSENET_OLD_KEYS = (r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.", r"\1\2.")

register_key_map(
    *(KeyMap("torchvision", n, (n,)) for n in _TORCHVISION_RESIDUAL_SAME_NAMES),
    *(
        KeyMap(
            "torchvision",
            n,
            (n,),
            rename=((r"^features\.", ""), _DENSENET_OLD_KEYS),
            note="torchvision's DenseNet keys without the features. prefix (old-style norm.1 keys accepted)",
        )
        for n in ("densenet121", "densenet161", "densenet169", "densenet201")
    ),
    KeyMap("timm", "seresnet50", ("seresnet50",)),
    KeyMap("timm", "seresnext50_32x4d", ("seresnext50_32x4d",)),
    KeyMap(
        "timm",
        "legacy_seresnet50",
        ("seresnet50_v1",),
        rename=((r"^layer0\.(conv1|bn1)\.", r"\1."), (r"\.se_module\.", ".se."), (r"^last_linear\.", "fc.")),
        note="the SENet authors' Caffe release (stride in the first 1x1, ceil-mode stem pool), as timm ports it",
    ),
)

# ---------------------------------------------------------------------------------------------------
# The MBConv lineage (issue 13): MobileNet v1/v2/v3, MnasNet, EfficientNet. The cnnzoo layout is
# timm's (conv_stem, blocks.S.B with conv_pw/conv_dw/se/conv_pwl, conv_head, classifier), with
# ConvNormAct stem and head (conv_stem.conv/.bn) and SE layers fc1/fc2. torchvision numbers its
# layers (features.K, block.0.0, conv.1 ...): the renames below move each block to blocks.S.B and
# mark the rest of the key with "#", and _mbconv_parts names the parts by the block's structure.

# the parts of an MBConv block with an expansion conv, and of one without (a linear DS block)
_IR_PARTS = (("conv_pw", "bn1"), ("conv_dw", "bn2"), ("conv_pwl", "bn3"))
_DS_PARTS = (("conv_dw", "bn1"), ("conv_pw", "bn2"))


def _natural(path: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in path.split(".")]


def _mbconv_parts(state: StateDict) -> StateDict:
    """torchvision's numbered MBConv parts (``blocks.S.B#1.0.weight``) as cnnzoo's names.

    In each block, the BatchNorms are the modules with running statistics, the SE the ``fc1``/
    ``fc2`` modules, and the rest the convs, in layer order; three convs are an MBConv (expand,
    depthwise, project), two a block without expansion (depthwise, project).
    """
    out: StateDict = {}
    blocks: dict[str, dict[str, dict[str, Tensor]]] = {}
    for key, tensor in state.items():
        if "#" not in key:
            out[key] = tensor
            continue
        block, inner = key.split("#")
        module, _, param = inner.rpartition(".")
        blocks.setdefault(block, {}).setdefault(module, {})[param] = tensor
    for block, modules in blocks.items():
        se = [m for m in modules if m.endswith(("fc1", "fc2"))]
        bns = sorted((m for m in modules if "running_mean" in modules[m]), key=_natural)
        convs = sorted((m for m in modules if m not in se and m not in bns), key=_natural)
        parts = {3: _IR_PARTS, 2: _DS_PARTS}.get(len(convs))
        if parts is None or len(bns) != len(convs):
            raise ValueError(f"{block}: {len(convs)} convs and {len(bns)} norms is no MBConv block")
        names = {m: "se." + m.rpartition(".")[2] for m in se}
        for conv, bn, (conv_name, bn_name) in zip(convs, bns, parts, strict=True):
            names[conv], names[bn] = conv_name, bn_name
        for module, params in modules.items():
            for param, tensor in params.items():
                out[f"{block}.{names[module]}.{param}"] = tensor
    return out


def _flat_blocks(repeats: tuple[int, ...]) -> Callable[[re.Match[str]], str]:
    """torchvision's flat ``features.K`` (K = 1 … N) as cnnzoo's ``blocks.S.B`` for these stage repeats."""
    where = [(s, b) for s, n in enumerate(repeats) for b in range(n)]

    def repl(m: re.Match[str]) -> str:
        k = int(m.group(1))
        if not 1 <= k <= len(where):
            raise IndexError(f"features.{k} is no block of this network")
        s, b = where[k - 1]
        return f"blocks.{s}.{b}#"

    return repl


def _tv_stem_head(head: int) -> tuple[tuple[str, str], ...]:
    """torchvision's ``features.0`` stem and ``features.{head}`` 1×1 conv as ConvNormAct keys."""
    return (
        (r"^features\.0\.0\.", "conv_stem.conv."),
        (r"^features\.0\.1\.", "conv_stem.bn."),
        (rf"^features\.{head}\.0\.", "conv_head.conv."),
        (rf"^features\.{head}\.1\.", "conv_head.bn."),
    )


def _tv_mobilenet(
    head: int, repeats: tuple[int, ...], part: str, classifier: tuple[tuple[str, str], ...]
) -> dict:
    """The renames and transform of torchvision's MobileNet v2 / v3 (flat ``features.K.{part}``)."""
    rename = (*_tv_stem_head(head), (rf"^features\.(\d+)\.{part}\.", _flat_blocks(repeats)), *classifier)
    return {"rename": rename, "transforms": (_mbconv_parts,)}


_TV_EFFICIENTNET = {
    "rename": (
        *_tv_stem_head(8),
        (r"^features\.([1-7])\.(\d+)\.block\.", lambda m: f"blocks.{int(m[1]) - 1}.{m[2]}#"),
        (r"^classifier\.1\.", "classifier."),
    ),
    "transforms": (_mbconv_parts,),
}

# torchvision's MNASNet: layers.0-7 the stem and the SepConv, layers.8-13 the six MBConv stacks,
# layers.14/15 the 1×1 conv of 1280; every stack's block is layers.0 … layers.7 (conv, BN, ReLU, ...)
_TV_MNASNET = {
    "rename": (
        (r"^layers\.0\.", "conv_stem.conv."),
        (r"^layers\.1\.", "conv_stem.bn."),
        (r"^layers\.3\.", "blocks.0.0.conv_dw."),
        (r"^layers\.4\.", "blocks.0.0.bn1."),
        (r"^layers\.6\.", "blocks.0.0.conv_pw."),
        (r"^layers\.7\.", "blocks.0.0.bn2."),
        (r"^layers\.(8|9|1[0-3])\.(\d+)\.layers\.", lambda m: f"blocks.{int(m[1]) - 7}.{m[2]}#"),
        (r"^layers\.14\.", "conv_head.conv."),
        (r"^layers\.15\.", "conv_head.bn."),
        (r"^classifier\.1\.", "classifier."),
    ),
    "transforms": (_mbconv_parts,),
}

# timm's EfficientNet / MobileNet layout is cnnzoo's but for the bare stem and head convs and the SE names
_TIMM_MBCONV = (
    (r"^conv_stem\.", "conv_stem.conv."),
    (r"^bn1\.", "conv_stem.bn."),
    (r"^conv_head\.", "conv_head.conv."),
    (r"^bn2\.", "conv_head.bn."),
    (r"\.se\.conv_reduce\.", ".se.fc1."),
    (r"\.se\.conv_expand\.", ".se.fc2."),
)


def _needs_relu6(model: nn.Module) -> str | None:
    """A ReLU MobileNet v1 given timm's ReLU6 weights: they load, but the outputs differ."""
    if any(isinstance(m, nn.ReLU6) for m in model.modules()):
        return None
    return (
        "timm's mobilenetv1_100 weights were trained with ReLU6 and this model uses the paper's ReLU, so "
        "its outputs will differ from timm's; build it with act='relu6' to reproduce them"
    )


_V3_CLASSIFIER = ((r"^classifier\.0\.", "head_fc."), (r"^classifier\.3\.", "classifier."))

register_key_map(
    KeyMap("torchvision", "mobilenet_v2", ("mobilenet_v2",),
           **_tv_mobilenet(18, (1, 2, 3, 4, 3, 3, 1), "conv", ((r"^classifier\.1\.", "classifier."),))),
    KeyMap("torchvision", "mobilenet_v3_large", ("mobilenet_v3_large",),
           **_tv_mobilenet(16, (1, 2, 3, 4, 2, 3), "block", _V3_CLASSIFIER)),
    KeyMap("torchvision", "mobilenet_v3_small", ("mobilenet_v3_small",),
           **_tv_mobilenet(12, (1, 2, 3, 2, 3), "block", _V3_CLASSIFIER)),
    KeyMap("torchvision", "mnasnet0_5", ("mnasnet_b1_050",), **_TV_MNASNET),
    KeyMap("torchvision", "mnasnet0_75", ("mnasnet_b1_075",), **_TV_MNASNET),
    KeyMap("torchvision", "mnasnet1_0", ("mnasnet_b1",), **_TV_MNASNET),
    KeyMap("torchvision", "mnasnet1_3", ("mnasnet_b1_130",), **_TV_MNASNET),
    *(KeyMap("torchvision", f"efficientnet_b{i}", (f"efficientnet_b{i}",), **_TV_EFFICIENTNET) for i in range(8)),
    KeyMap(
        "timm", "mobilenetv1_100", ("mobilenet_v1",), rename=_TIMM_MBCONV, check=_needs_relu6,
        note="TensorFlow's MobileNet v1 layout with ReLU6: load it into mobilenet_v1 built with act='relu6'",
    ),
    KeyMap("timm", "semnasnet_100", ("mnasnet_a1",), rename=_TIMM_MBCONV),
    *(KeyMap("timm", f"tf_efficientnet_b{i}", (f"tf_efficientnet_b{i}",), rename=_TIMM_MBCONV,
             note="the official TensorFlow checkpoints (SAME padding, BN eps 1e-3)") for i in range(8)),
)  # fmt: skip
# --- SqueezeNet, ShuffleNet v2 (issue 13); Xception, NASNet-A (issue 14) ----------------------------
# torchvision's SqueezeNets number their layers (features.N, classifier.1) where ours are named
# after Table 1 (conv1, fire2 ... fire9, conv10); the index of each fire module follows its pools.
_SQUEEZENET_FIRES = {
    "squeezenet1_0": {3: 2, 4: 3, 5: 4, 7: 5, 8: 6, 9: 7, 10: 8, 12: 9},
    "squeezenet1_1": {3: 2, 4: 3, 6: 4, 7: 5, 9: 6, 10: 7, 11: 8, 12: 9},
}


def _squeezenet_map(layout: str) -> KeyMap:
    fires = _SQUEEZENET_FIRES[layout]
    return KeyMap(
        "torchvision",
        layout,
        (layout,),
        rename=(
            (r"^features\.0\.", "conv1.conv."),
            (r"^features\.(\d+)\.", lambda m: f"fire{fires[int(m.group(1))]}."),
            (r"\.(squeeze|expand1x1|expand3x3)\.", r".\1.conv."),
            (r"^classifier\.1\.", "conv10."),
        ),
    )


# torchvision's ShuffleNet v2 units hold nn.Sequential branches (conv, BN, ReLU by index); ours name
# the conv + BN pairs of each branch (dw, pw; pw1, dw, pw2), and conv1/conv5 are ConvNormActs.
_SHUFFLENET_V2_RENAMES = (
    (r"^(conv1|conv5)\.0\.", r"\1.conv."),
    (r"^(conv1|conv5)\.1\.", r"\1.bn."),
    (r"\.branch1\.0\.", ".branch1.dw.conv."),
    (r"\.branch1\.1\.", ".branch1.dw.bn."),
    (r"\.branch1\.2\.", ".branch1.pw.conv."),
    (r"\.branch1\.3\.", ".branch1.pw.bn."),
    (r"\.branch2\.0\.", ".branch2.pw1.conv."),
    (r"\.branch2\.1\.", ".branch2.pw1.bn."),
    (r"\.branch2\.3\.", ".branch2.dw.conv."),
    (r"\.branch2\.4\.", ".branch2.dw.bn."),
    (r"\.branch2\.5\.", ".branch2.pw2.conv."),
    (r"\.branch2\.6\.", ".branch2.pw2.bn."),
)

register_key_map(
    _squeezenet_map("squeezenet1_0"),
    _squeezenet_map("squeezenet1_1"),
    *(
        KeyMap("torchvision", f"shufflenet_v2_{w}", (f"shufflenet_v2_{w}",), rename=_SHUFFLENET_V2_RENAMES)
        for w in ("x0_5", "x1_0", "x1_5", "x2_0")
    ),
    KeyMap(
        "timm",
        "legacy_xception",
        ("xception",),
        rename=((r"(rep\.\d+|conv3|conv4)\.conv1\.", r"\1.conv_dw."), (r"\.pointwise\.", ".conv_pw.")),
        note="the Keras Xception weights ported by Cadene; normalise inputs with mean = std = 0.5, at 299x299",
    ),
    KeyMap(
        "timm",
        "nasnetalarge",
        ("nasnet_a_large",),
        rename=(
            (r"\.depthwise_conv2d\.", ".conv_dw."),
            (r"\.pointwise_conv2d\.", ".conv_pw."),
            (r"^(cell_stem_1|cell_\d+)\.(path_1|path_2|final_path_bn)\.", r"\1.reduce_prev.\2."),
            (r"^last_linear\.", "fc."),
        ),
        note="the TF-slim NASNet-A large checkpoint ported by Cadene; mean = std = 0.5, at 331x331",
    ),
)

# ---------------------------------------------------------------------------------------------------
# Inception v3, Inception v4 and Inception-ResNet v2 (issue 14). cnnzoo builds their modules from
# branch tables (cnnzoo.layers.inception.InceptionBlock: ``branchK.I`` for the I-th layer of branch K,
# ``.a``/``.b`` for the two ends of a split branch, ``proj`` for a residual projection), so the
# libraries' per-module names are renamed here.


def _tv_v3_branch(m: re.Match[str]) -> str:
    """torchvision's Inception3 branch names → cnnzoo's ``branchK.I`` (``.a``/``.b`` for splits).

    ``m``: (module, branch name, layer number, split letter); the branch index depends on the
    module kind, which the module's name gives (A: ``Mixed_5*``, B: ``6a``, C: ``6b``-``6e``,
    D: ``7a``, E: ``7b``-``7c``).
    """
    module, branch, num, fork = m[1], m[2], m[3], m[4]
    grid, letter = module[6], module[7]
    kind = {"5": "A", "6": "B" if letter == "a" else "C", "7": "D" if letter == "a" else "E"}[grid]
    index = {
        ("A", "branch1x1"): 0, ("A", "branch5x5"): 1, ("A", "branch3x3dbl"): 2, ("A", "branch_pool"): 3,
        ("B", "branch3x3"): 0, ("B", "branch3x3dbl"): 1,
        ("C", "branch1x1"): 0, ("C", "branch7x7"): 1, ("C", "branch7x7dbl"): 2, ("C", "branch_pool"): 3,
        ("D", "branch3x3"): 0, ("D", "branch7x7x3"): 1,
        ("E", "branch1x1"): 0, ("E", "branch3x3"): 1, ("E", "branch3x3dbl"): 2, ("E", "branch_pool"): 3,
    }[(kind, branch)]  # fmt: skip
    layer = 1 if branch == "branch_pool" else (int(num) - 1 if num else 0)  # the pool is layer 0
    return f"{module}.branch{index}.{layer}." + (f"{fork}." if fork else "")


_TIMM_V4_GROUPS = (("inception_a", 6, 4), ("reduction_a", 10, 1), ("inception_b", 11, 7),
                   ("reduction_b", 18, 1), ("inception_c", 19, 3))  # fmt: skip


def _timm_v4_feature(m: re.Match[str]) -> str:
    """timm's ``features.N.`` (one flat Sequential) → the paper's names."""
    i = int(m[1])
    stem = ("conv1", "conv2", "conv3", "mixed_3a", "mixed_4a", "mixed_5a")
    if i < len(stem):
        return f"{stem[i]}."
    name, start, n = next(g for g in _TIMM_V4_GROUPS if i < g[1] + g[2])
    return f"{name}." if n == 1 else f"{name}.{i - start}."


def _timm_flat_branch(m: re.Match[str]) -> str:
    """timm's Inception-C ``branch1_1a`` → ``branch1.1.a`` (and ``branch2_0`` → ``branch2.0``)."""
    return f".branch{m[1]}.{m[2]}." + (f"{m[3]}." if m[3] else "")


# a branch that is one conv: timm and the TF-slim ports name it ``branchK.conv``, cnnzoo ``branchK.0.conv``
_SINGLE_CONV_BRANCH = (r"\.branch(\d)\.(conv|bn)\.", r".branch\1.0.\2.")
_TF_PORT_NOTE = (
    "weights ported from TensorFlow expect inputs scaled to [-1, 1]: build with transform_input=True"
)

register_key_map(
    KeyMap(
        "torchvision",
        "inception_v3",
        ("inception_v3_tv",),
        rename=(
            (
                r"^(Mixed_\w+)\.(branch1x1|branch5x5|branch3x3dbl|branch3x3|branch7x7dbl|branch7x7x3|branch7x7|branch_pool)"
                r"(?:_(\d))?([ab])?\.",
                _tv_v3_branch,
            ),
        ),  # fmt: skip
        note=f"torchvision's released Inception v3 (IMAGENET1K_V1): {_TF_PORT_NOTE}; its AuxLogits are trained",
    ),
    KeyMap(
        "timm",
        "inception_v4",
        ("inception_v4",),
        rename=(
            (r"^features\.(\d+)\.", _timm_v4_feature),
            (r"^mixed_3a\.conv\.", "mixed_3a.branch1.0."),  # timm's Mixed3a: (maxpool, conv)
            (r"^mixed_5a\.conv\.", "mixed_5a.branch0.0."),  # timm's Mixed5a: (conv, maxpool)
            (r"\.branch(\d)_(\d)([ab]?)\.", _timm_flat_branch),
            _SINGLE_CONV_BRANCH,
            (r"^last_linear\.", "fc."),
        ),
        note=f"timm's inception_v4.tf_in1k (the TF-slim release): {_TF_PORT_NOTE} (timm's mean = std = 0.5)",
    ),
    KeyMap(
        "timm",
        "inception_resnet_v2",
        ("inception_resnet_v2_tf",),
        rename=(
            *(
                (rf"^conv2d_{tf}\.", f"conv{i}.")
                for i, tf in enumerate(("1a", "2a", "2b", "3b", "4a", "7b"), 1)
            ),
            (r"^repeat\.(\d+)\.", r"inception_resnet_a.\1."),
            (r"^mixed_6a\.", "reduction_a."),
            (r"^repeat_1\.(\d+)\.", r"inception_resnet_b.\1."),
            (r"^mixed_7a\.", "reduction_b."),
            (r"^repeat_2\.(\d+)\.", r"inception_resnet_c.\1."),
            (r"^block8\.", "inception_resnet_c.9."),  # the release's last block (no ReLU)
            (r"\.conv2d\.(weight|bias)$", r".proj.\1"),
            _SINGLE_CONV_BRANCH,
            (r"^classif\.", "fc."),
        ),
        note=f"timm's inception_resnet_v2.tf_in1k (the TF-slim release): {_TF_PORT_NOTE} (timm's mean = std = 0.5)",
    ),
)
OPTIONAL_PARTS.append(
    # torchvision saves AuxLogits with aux_logits=True (its released file has them) and not otherwise
    OptionalPart(
        "inception_v3*", ("AuxLogits.*", "aux.*"), "build it with aux_logits=False to leave them out"
    )
)

# ---------------------------------------------------------------------------------------------------
# timm's twins of torchvision's layouts. timm's ResNets, ResNeXts and wide ResNets (torchvision's
# v1.5 design), its DenseNets (BatchNormAct2d fuses each norm and ReLU under torchvision's names) and
# its Inception v3 (torchvision's, without the aux head) have torchvision's state_dict keys and
# shapes, key for key, and compute the same function of them: identical keys mean an identical
# mapping here, so a file loads correctly whichever library saved it. They are registered as timm
# layouts too, so that identify_layout says that such a file could be either (and which evidence
# there is), instead of calling every one torchvision's. tests/test_weights_layouts.py checks the keys
# of every pair on the meta device and, with random weights, that both libraries' files give the
# libraries' outputs.
_TIMM_TWINS = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
    "densenet121", "densenet161", "densenet169", "densenet201", "inception_v3",
)  # fmt: skip
_TIMM_TWIN_NOTES = {
    "inception_v3": "timm's inception_v3 is torchvision's network without the aux head; its checkpoints "
    "differ in the input normalisation they expect (see timm's pretrained_cfg)",
}
register_key_map(
    *(
        replace(km, library="timm", note=_TIMM_TWIN_NOTES.get(km.layout, "torchvision's keys, in timm"))
        for km in list(KEY_MAPS)
        if km.library == "torchvision" and km.layout in _TIMM_TWINS
    )
)
