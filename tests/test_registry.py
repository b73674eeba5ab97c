"""The registry: wildcards, duplicate names, suggestions, configs."""

from __future__ import annotations

import pytest
import torch

import cnnzoo
from cnnzoo.errors import CnnzooError
from cnnzoo.registry import (
    ModelConfig,
    UnknownModelError,
    create_model,
    is_model,
    list_models,
    register_model,
)


def test_wildcards_match_fnmatch():
    assert list_models("lenet5*") == ["lenet5", "lenet5_relu"]
    assert list_models("lenet5") == ["lenet5"]
    assert list_models("*_relu") == ["lenet5_relu"] + [n for n in list_models("*_relu") if n != "lenet5_relu"]
    assert list_models("no-such-*") == []
    assert set(list_models(["lenet5", "lenet5_relu"])) == {"lenet5", "lenet5_relu"}
    everything = list_models()
    assert everything == list_models("*") and len(everything) >= 2
    assert list_models("LENET5") == ["lenet5"]  # names are lower-case; patterns are too


def test_list_is_naturally_sorted():
    names = list_models()
    # resnet18 sorts before resnet101 when both exist: numbers compare as numbers
    from cnnzoo.registry import _natural_key

    assert names == sorted(names, key=_natural_key)


def test_duplicate_name_is_an_error():
    cfg = ModelConfig(input_size=(1, 8, 8), min_input_size=8, num_classes=2, paper="x", year=2000, family="t")
    assert is_model("lenet5")  # loads the zoo first (on a fresh xdist worker nothing is registered yet)
    with pytest.raises(ValueError, match="already registered"):

        @register_model(cfg)
        def lenet5(**kw):  # pragma: no cover - never built
            raise AssertionError


def test_bad_name_is_rejected():
    cfg = ModelConfig(input_size=(1, 8, 8), min_input_size=8, num_classes=2, paper="x", year=2000, family="t")
    with pytest.raises(ValueError, match="lower-case"):

        @register_model(cfg)
        def Bad_Name(**kw):  # noqa: N802 - the name under test  # pragma: no cover
            raise AssertionError

    assert not is_model("Bad_Name") and not is_model("bad_name")


def test_every_model_has_a_greppable_builder_listed_in_all():
    """One registration style: ``@register_model(...) def NAME(**kwargs)`` in the family module,
    exported in its ``__all__``, calling the family constructor (no ``globals()`` tricks)."""
    import importlib
    import inspect

    from cnnzoo.registry import _builders

    for name in list_models():
        fn = _builders[name]
        module = importlib.import_module(fn.__module__)
        assert fn.__name__ == name and getattr(module, name) is fn, name
        assert name in module.__all__, f"{name} missing from {module.__name__}.__all__"
        src = inspect.getsource(module)
        assert f"\ndef {name}(**kwargs" in src, f"no `def {name}(**kwargs` in {module.__name__}"
        assert "globals()" not in src, module.__name__
        body = [ln for ln in inspect.getsource(fn).splitlines() if ln.strip().startswith("return ")]
        assert len(body) == 1 and "_create_" in body[0], f"{name}: one `return _create_...(...)` line"


@pytest.mark.parametrize(
    "typo, expected",
    [("lenet", "lenet5"), ("lenet5relu", "lenet5_relu"), ("LeNet5", "lenet5"), ("lenet6", "lenet5")],
)
def test_unknown_name_suggests_closest(typo, expected):
    with pytest.raises(UnknownModelError) as e:
        create_model(typo)
    msg = str(e.value)
    assert expected in msg and "Did you mean" in msg and "cnnzoo list" in msg
    assert isinstance(e.value, CnnzooError) and isinstance(e.value, KeyError)


def test_create_model_fills_defaults_and_attaches_config():
    m = create_model("lenet5_relu")
    assert m.num_classes == 10 and m.in_chans == 1
    assert m.default_cfg.name == "lenet5_relu" and m.default_cfg.year == 1998
    assert m.min_input_size == 32
    m2 = create_model("lenet5_relu", num_classes=3, in_chans=2)
    assert m2.default_cfg.num_classes == 3 and m2.default_cfg.input_size == (2, 32, 32)
    assert m2(torch.zeros(1, 2, 32, 32)).shape == (1, 3)
    with pytest.raises(ValueError):
        create_model("lenet5_relu", num_classes=0)


def test_top_level_api():
    assert cnnzoo.create_model is create_model
    assert "lenet5" in cnnzoo.list_models()
    cfg = cnnzoo.get_model_config("lenet5")
    d = cfg.to_dict()
    assert d["input_size"] == [1, 32, 32] and "LeCun" in d["paper"] and d["min_input_size"] == 32
