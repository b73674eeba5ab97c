"""Weights from files: library checkpoints load through key maps and reproduce the library's logits.

Each test builds the *library's* network with random weights (BN running statistics included),
saves its state_dict the way users have it, loads it with ``create_model(NAME, weights=FILE)`` and
compares eval-mode logits on a small input.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

import cnnzoo
from cnnzoo import weights as W
from cnnzoo.registry import UnknownModelError, is_model
from cnnzoo.train.checkpoint import save_weights


def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN affine parameters and running statistics, so that a mixed-up BN cannot pass."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.empty(m.running_var.shape).uniform_(0.5, 2.0, generator=g))
                m.num_batches_tracked.fill_(7)
    return model.eval()


def _tv(name: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    if name == "googlenet":
        kwargs.setdefault("init_weights", True)  # torchvision warns when it is left unset
    return _randomize(torchvision.models.get_model(name, weights=None, **kwargs))


def _save(state: dict, path: Path) -> Path:
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


def _logits(model: nn.Module, size: int, in_chans: int = 3) -> torch.Tensor:
    x = torch.randn(2, in_chans, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model.eval()(x)


def _assert_same_logits(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.std() > 0  # not a degenerate network that any weights would match
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory) -> Path:
    return _save(_tv("resnet18").state_dict(), tmp_path_factory.mktemp("w") / "resnet18.pth")


# --- library files reproduce the library's logits ---------------------------------------------------

LIBRARY_CASES = [
    # (torchvision name, its kwargs, cnnzoo name, cnnzoo kwargs, input side)
    ("resnet18", {}, "resnet18", {}, 64),
    ("resnet50", {}, "resnet50", {}, 64),
    ("vgg11_bn", {}, "vgg11_bn", {}, 32),
    ("alexnet", {}, "alexnet_tv", {}, 63),
    ("googlenet", {"aux_logits": True}, "googlenet_tv", {}, 64),
    (
        "googlenet",
        {"aux_logits": False, "transform_input": True},
        "googlenet_tv",
        {"aux_logits": False, "transform_input": True},
        64,
    ),
]


@pytest.mark.parametrize(
    "tv_name, tv_kwargs, name, kwargs, size", LIBRARY_CASES, ids=[f"{c[0]}-{c[2]}" for c in LIBRARY_CASES]
)
def test_torchvision_file_loads_with_the_same_logits(tmp_path, tv_name, tv_kwargs, name, kwargs, size):
    ref = _tv(tv_name, **tv_kwargs)
    expected = _logits(ref, size)
    for suffix in (".pth", ".safetensors"):
        path = _save(ref.state_dict(), tmp_path / f"{tv_name}{suffix}")
        with warnings.catch_warnings():
            warnings.simplefilter("error", W.WeightsWarning)  # a full fit loads without a notice
            model = cnnzoo.create_model(name, weights=path, **kwargs)
        _assert_same_logits(_logits(model, size), expected)
        del model
        path.unlink()


def test_safetensors_is_recognised_by_content_not_suffix(tmp_path):
    ref = _tv("resnet18")
    path = tmp_path / "resnet18.pth"  # a safetensors file under a .pth name
    save_file(ref.state_dict(), str(path))
    _assert_same_logits(_logits(cnnzoo.create_model("resnet18", weights=path), 64), _logits(ref, 64))


def test_googlenet_aux_heads_are_optional(tmp_path):
    with_aux = _save(_tv("googlenet", aux_logits=True).state_dict(), tmp_path / "aux.pth")
    without = _save(_tv("googlenet", aux_logits=False).state_dict(), tmp_path / "noaux.pth")

    # The file's aux heads have no place in a model built without them: dropped, quietly.
    model = cnnzoo.create_model("googlenet_tv", aux_logits=False)
    report = W.load_weights(model, with_aux, warn=False)
    assert report.notices == ()
    assert report.unexpected and all(k.startswith(("aux1.", "aux2.")) for k in report.unexpected)
    assert report.missing == ()

    # A file without them leaves the model's aux heads freshly initialised, and says so once.
    with pytest.warns(W.WeightsWarning) as record:
        model = cnnzoo.create_model("googlenet_tv", weights=without)
    (text,) = [str(w.message) for w in record]
    assert "aux1, aux2" in text and "aux_logits=False" in text and "\n" not in text
    assert model.aux1 is not None

    # Another class count: the main head and both aux heads are the classifier.
    with pytest.warns(W.WeightsWarning, match=r"1000 classes .* has 10: .*aux1\.fc2, aux2\.fc2, fc\b"):
        cnnzoo.create_model("googlenet_tv", num_classes=10, weights=with_aux)


# --- cnnzoo run files ------------------------------------------------------------------------------


def _fake_run(tmp_path: Path, model: nn.Module, name: str) -> Path:
    """The two files of a run directory that loading reads: weights and config.json."""
    run = tmp_path / "run"
    save_weights(model, run / "weights.safetensors")
    (run / "config.json").write_text(json.dumps({"model": name, "model_config": model.default_cfg.to_dict()}))
    return run / "weights.safetensors"


def test_cnnzoo_run_file_round_trip(tmp_path):
    torch.manual_seed(0)
    trained = _randomize(cnnzoo.create_model("lenet5_relu", num_classes=7, in_chans=1))
    path = _fake_run(tmp_path, trained, "lenet5_relu")
    loaded = cnnzoo.create_model("lenet5_relu", weights=path)  # class and channel counts from the file
    assert (loaded.num_classes, loaded.in_chans) == (7, 1)
    for key, value in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    _assert_same_logits(_logits(loaded, 32, in_chans=1), _logits(trained, 32, in_chans=1))


def test_run_directory_names_the_cnnzoo_layout(tmp_path):
    torch.manual_seed(0)
    trained = cnnzoo.create_model("resnet18", num_classes=10, in_chans=1)
    bare = _save(trained.state_dict(), tmp_path / "bare.safetensors")
    in_run = _fake_run(tmp_path, trained, "resnet18")
    assert W.identify(bare)[0].name == "torchvision resnet18"  # the same keys; the library comes first
    first = W.identify(in_run)[0]
    assert (first.name, first.model, first.fits, first.diff.file_classes) == (
        "cnnzoo resnet18",
        "resnet18",
        True,
        10,
    )
    report = W.load_weights(cnnzoo.create_model("resnet18", num_classes=10, in_chans=1), in_run)
    assert report.layout == "cnnzoo resnet18" and report.loaded == len(trained.state_dict())


# --- class counts and channels ---------------------------------------------------------------------


def test_other_class_count_loads_all_but_the_head(resnet18_file):
    file = torch.load(resnet18_file, weights_only=True)
    with pytest.warns(W.WeightsWarning) as record:
        model = cnnzoo.create_model("resnet18", num_classes=10, weights=resnet18_file)
    (text,) = [str(w.message) for w in record]
    assert "1000 classes" in text and "resnet18 has 10" in text and "but fc," in text and "\n" not in text
    state = model.state_dict()
    assert state["fc.weight"].shape == (10, 512)
    for key, value in file.items():
        if not key.startswith("fc."):
            assert torch.equal(state[key], value), key

    report = W.load_weights(cnnzoo.create_model("resnet18", num_classes=10), resnet18_file, warn=False)
    assert report.head_reset == ("fc.weight", "fc.bias") == report.missing
    assert report.loaded == len(file) - 2 and report.notices == (text,)


def test_unset_class_count_comes_from_the_file(tmp_path, resnet18_file):
    assert cnnzoo.create_model("resnet18", weights=resnet18_file).num_classes == 1000
    torch.manual_seed(0)
    five = _save(cnnzoo.create_model("resnet18", num_classes=5).state_dict(), tmp_path / "five.pth")
    assert cnnzoo.create_model("resnet18", weights=five).num_classes == 5


def test_channel_count_from_the_file_or_a_hint(tmp_path):
    torch.manual_seed(0)
    gray = _save(cnnzoo.create_model("resnet18", in_chans=1).state_dict(), tmp_path / "gray.pth")
    assert cnnzoo.create_model("resnet18", weights=gray).in_chans == 1
    with pytest.raises(
        W.WeightsMismatchError, match=r"conv1\.weight: file \(64, 1, 7, 7\) vs model \(64, 3, 7, 7\)"
    ) as e:
        cnnzoo.create_model("resnet18", in_chans=3, weights=gray)
    assert "in_chans=1" in str(e.value) and "\n" not in str(e.value)


# --- files that do not fit -------------------------------------------------------------------------


def test_wrong_models_file_names_the_closest_layout(resnet18_file):
    with pytest.raises(W.WeightsMismatchError) as e:
        cnnzoo.create_model("resnet50", weights=resnet18_file)
    text = str(e.value)
    assert "\n" not in text
    assert "does not fit resnet50" in text and "missing (layer1.0.conv3.weight" in text
    assert "with another shape (layer1.0.conv1.weight: file (64, 64, 3, 3) vs model (64, 64, 1, 1)" in text
    assert "Closest layout: torchvision resnet18, which fits resnet18" in text


def test_changed_tensor_names_the_key_and_both_shapes(tmp_path):
    state = _tv("resnet18").state_dict()
    state["layer1.0.conv1.weight"] = torch.randn(64, 64, 1, 1)
    path = _save(state, tmp_path / "changed.safetensors")
    with pytest.raises(W.WeightsMismatchError) as e:
        cnnzoo.create_model("resnet18", weights=path)
    assert "1 with another shape (layer1.0.conv1.weight: file (64, 64, 1, 1) vs model (64, 64, 3, 3))" in str(
        e.value
    )
    assert "Closest layout: torchvision resnet18 (" in str(e.value)


def test_renamed_key_is_shown_with_its_nearest_name():
    state = _tv("resnet18").state_dict()
    state["layer4.1.bn2.wieght"] = state.pop("layer4.1.bn2.weight")
    with pytest.raises(W.WeightsMismatchError) as e:
        W.load_weights(cnnzoo.create_model("resnet18"), state)
    text = str(e.value)
    assert text.startswith("the state dict does not fit resnet18")
    assert "1 missing (layer4.1.bn2.weight (nearest: layer4.1.bn2.wieght))" in text
    assert "1 unexpected (layer4.1.bn2.wieght (nearest: layer4.1.bn2.weight))" in text


def test_strict_false_loads_what_fits(resnet18_file):
    model = cnnzoo.create_model("resnet34")
    report = W.load_weights(model, resnet18_file, strict=False, warn=False)
    file = torch.load(resnet18_file, weights_only=True)
    assert 0 < report.loaded < len(model.state_dict()) and report.missing
    assert torch.equal(model.state_dict()["layer4.1.conv2.weight"], file["layer4.1.conv2.weight"])
    (text,) = report.notices
    assert "only in part (strict=False)" in text and "missing (layer1.2.conv1.weight" in text


# --- wrappers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3, "arch": "resnet18"},
        lambda sd: {"model": {f"_orig_mod.{k}": v for k, v in sd.items()}, "optimizer": {}, "args": None},
        lambda sd: {"model_state_dict": sd},
        lambda sd: {"model": {"state_dict": {f"module.{k}": v for k, v in sd.items()}}},
    ],
    ids=["state_dict+module", "model+compile", "model_state_dict", "nested"],
)
def test_wrapped_checkpoints_load(tmp_path, wrap):
    ref = _tv("resnet18")
    path = _save(wrap(ref.state_dict()), tmp_path / "ckpt.pth")
    _assert_same_logits(_logits(cnnzoo.create_model("resnet18", weights=path), 64), _logits(ref, 64))


# --- unreadable files ------------------------------------------------------------------------------


class _Config:  # a class in a checkpoint makes torch.load(weights_only=True) refuse it
    lr = 0.1


def test_pickle_that_needs_code_is_refused(tmp_path):
    path = tmp_path / "trainer.pth"
    torch.save({"state_dict": _tv("resnet18").state_dict(), "config": _Config()}, path)
    with pytest.raises(W.WeightsError) as e:
        cnnzoo.create_model("resnet18", weights=path)
    text = str(e.value)
    assert "\n" not in text and "refused" in text and "_Config" in text
    assert "weights_only=True" in text and "weights_only=False" in text


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


BAD_FILES = {
    # name: (write the file, exception type, words of the message)
    "truncated safetensors": (
        lambda p: _truncate(_save({"w": torch.randn(64, 64)}, p / "w.safetensors")),
        W.WeightsError,
        "not a readable safetensors file",
    ),
    "truncated pth": (
        lambda p: _truncate(_save({"w": torch.randn(64, 64)}, p / "w.pth")),
        W.WeightsError,
        "not a readable PyTorch checkpoint",
    ),
    "corrupt pth": (
        lambda p: _write(p / "w.pth", bytes(range(256)) * 8),
        W.WeightsError,
        "not a readable PyTorch checkpoint",
    ),
    "text file": (
        lambda p: _write(p / "w.pth", b"not a checkpoint\n"),
        W.WeightsError,
        "not a readable PyTorch checkpoint",
    ),
    "empty": (lambda p: _write(p / "w.pth", b""), W.WeightsError, "is empty (0 bytes)"),
    "missing": (lambda p: p / "nope.pth", W.WeightsNotFoundError, "weights file not found"),
    "directory": (lambda p: p, W.WeightsNotFoundError, "is a directory"),
    "run directory": (
        lambda p: _write(p / "weights.safetensors", b"x").parent,
        W.WeightsNotFoundError,
        "it holds weights.safetensors: pass",
    ),
    "not a state dict": (
        lambda p: _save([1, 2, 3], p / "list.pth"),
        W.WeightsError,
        "holds a list, not a state dict",
    ),
    "dict of numbers": (
        lambda p: _save({"epoch": 3, "lr": 0.1}, p / "meta.pth"),
        W.WeightsError,
        "holds no state dict",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_unreadable_file_gets_one_clear_line(tmp_path, case):
    write, error, words = BAD_FILES[case]
    path = write(tmp_path)
    with pytest.raises(error) as e:
        cnnzoo.create_model("resnet18", weights=path)
    assert words in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, cnnzoo.errors.CnnzooError) and isinstance(e.value, ValueError)


def test_unknown_model_fails_before_the_file_is_read(tmp_path):
    with pytest.raises(UnknownModelError):
        cnnzoo.create_model("resnet51", weights=tmp_path / "nope.pth")


# --- the machinery: a layout with renames and tensor edits -----------------------------------------


def _split_fused_conv(state: dict) -> dict:
    """The fake layout fuses each basic block's two 3x3 convs into one tensor (when they agree)."""
    out = dict(state)
    for key in [k for k in state if k.endswith(".conv12.weight")]:
        a, b = out.pop(key).chunk(2)
        out[key.replace("conv12", "conv1")], out[key.replace("conv12", "conv2")] = a, b
    return out


FAKE = W.KeyMap(
    "timm",
    "fake_resnet18",
    ("resnet18",),
    rename=(
        (r"^stem\.conv\.", "conv1."),
        (r"^stem\.bn\.", "bn1."),
        (r"^stages\.(\d)\.", lambda m: f"layer{int(m[1]) + 1}."),
        (r"^head\.", "fc."),
    ),
    transforms=(_split_fused_conv, W.map_tensors(r"fc\.weight", lambda w: w.flatten(1))),
    drop=("head_meta.*",),
    check=lambda model: "fake weights: outputs will differ" if getattr(model, "marked", False) else None,
)


def _fake_layout_file(ref: nn.Module, path: Path) -> Path:
    """resnet18's weights in FAKE's layout: what the map must undo."""
    state = {}
    for key, value in ref.state_dict().items():
        key = key.replace("conv1.", "stem.conv.", 1) if key.startswith("conv1.") else key
        key = key.replace("bn1.", "stem.bn.", 1) if key.startswith("bn1.") else key
        if key.startswith("layer"):
            key = f"stages.{int(key[5]) - 1}" + key[6:]
        state[key.replace("fc.", "head.", 1) if key.startswith("fc.") else key] = value
    state["head.weight"] = state["head.weight"][:, :, None, None]  # a 1x1 conv head
    for key in [k for k in state if k.endswith(".conv1.weight") and k.startswith("stages.0")]:
        state[key.replace("conv1", "conv12")] = torch.cat(
            [state.pop(key), state.pop(key.replace("conv1", "conv2"))]
        )
    state["head_meta.version"] = torch.tensor(2)
    return _save(state, path)


def test_key_map_with_renames_and_tensor_edits(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "KEY_MAPS", [*W.KEY_MAPS, FAKE])
    ref = _tv("resnet18")
    path = _fake_layout_file(ref, tmp_path / "fake.safetensors")
    model = cnnzoo.create_model("resnet18", weights=path)
    _assert_same_logits(_logits(model, 64), _logits(ref, 64))
    report = W.load_weights(model, path)
    assert report.layout == "timm fake_resnet18" and report.loaded == len(ref.state_dict())

    first = W.identify(path)[0]
    assert (first.name, first.model, first.fits) == ("timm fake_resnet18", "resnet18", True)
    converted = W.convert_state_dict(path, "resnet18")
    assert list(converted) == list(ref.state_dict())
    assert all(torch.equal(converted[k], v) for k, v in ref.state_dict().items())

    model.marked = True
    with pytest.warns(W.WeightsWarning, match="fake weights: outputs will differ"):
        assert W.load_weights(model, path).notices == ("fake weights: outputs will differ",)
    with pytest.raises(
        W.WeightsMismatchError, match="Closest layout: timm fake_resnet18, which fits resnet18"
    ):
        cnnzoo.create_model("resnet34", weights=path)


def test_register_key_map_checks_its_rows(monkeypatch):
    monkeypatch.setattr(W, "KEY_MAPS", list(W.KEY_MAPS))
    with pytest.raises(ValueError, match="already registered"):
        W.register_key_map(W.KeyMap("torchvision", "resnet18", ("resnet18",)))
    with pytest.raises(ValueError, match="library must be one of"):
        W.register_key_map(W.KeyMap("keras", "resnet18", ("resnet18",)))
    W.register_key_map(FAKE)
    assert W.KEY_MAPS[-1] is FAKE


# --- the table -------------------------------------------------------------------------------------


def _library_state(km: W.KeyMap) -> dict:
    """The library network's state_dict, built on the meta device (shapes only)."""
    with torch.device("meta"):
        if km.library == "torchvision":
            kwargs = {"init_weights": True} if km.layout in ("googlenet", "inception_v3") else {}
            net = torchvision.models.get_model(km.layout, weights=None, **kwargs)
        else:
            import timm

            net = timm.create_model(km.layout, pretrained=False)
    return net.state_dict()


@pytest.mark.parametrize("km", W.KEY_MAPS, ids=[km.name for km in W.KEY_MAPS])
def test_every_key_map_fits_its_library_network(km):
    state = _library_state(km)
    for name in km.models:
        assert is_model(name), f"{km.name} names an unregistered model {name!r}"
        with torch.device("meta"):
            model = cnnzoo.create_model(name)
        converted = W.convert_state_dict(state, model)
        parts = W._optional_parts(name)  # e.g. timm's inception_v3 has no AuxLogits: they keep their init
        own = {k: v for k, v in model.state_dict().items() if k in converted or not W._is_optional(k, parts)}
        assert list(converted) == list(own) or set(converted) == set(own)
        assert all(tuple(converted[k].shape) == tuple(own[k].shape) for k in own)


def test_identify_ranks_models_with_their_layouts():
    with torch.device("meta"):
        state = torchvision.models.resnet50().state_dict()
    matches = W.identify(state, top=None)
    assert (matches[0].name, matches[0].model, matches[0].score) == ("torchvision resnet50", "resnet50", 1.0)
    fitting = [m.model for m in matches if m.fits]
    assert fitting[0] == "resnet50" and "resnet50_v1" in fitting and "resnet18" not in fitting
    assert len({m.model for m in matches}) == len(matches) == len(cnnzoo.list_models())
    assert matches[1].diff.summary() == "every key fits"


def test_create_model_takes_a_state_dict_in_memory():
    ref = _tv("resnet18")
    wrapped = {"model": {f"module.{k}": v for k, v in ref.state_dict().items()}}
    _assert_same_logits(_logits(cnnzoo.create_model("resnet18", weights=wrapped), 64), _logits(ref, 64))
