"""``analyze`` (``cnnzoo.analysis.costs``): its options, its errors, and the spec's worked row."""

from __future__ import annotations

import pytest
from torch import nn

import cnnzoo
from cnnzoo.analysis import analyze, parse_input_size
from cnnzoo.errors import ConfigError
from cnnzoo.models.base import InputShapeError


def test_alexnet_worked_row_of_the_spec():
    """shared/spec/cost-tables.md: AlexNet conv1 at B = 128, fp32, SGD with momentum."""
    r = analyze("alexnet", input_size=(3, 227, 227), batch_size=128)
    conv1 = next(row for row in r.layers if row.type == "conv")
    assert conv1.kernels == 96
    assert conv1.kernel_size == (11, 11) and conv1.stride == (4, 4) and conv1.padding == (0, 0)
    assert tuple(conv1.output_shape) == (96, 55, 55)
    assert conv1.activations == 290_400
    assert conv1.params == 34_944
    assert conv1.flops == 128 * 290_400 * 363 * 2
    assert conv1.activation_memory_bytes == 2 * 128 * 290_400 * 4
    assert conv1.parameter_memory_bytes == 3 * 34_944 * 4
    assert round(conv1.flops / 1e6, 1) == 26_986.3
    assert round(conv1.activation_memory_bytes / 2**20, 1) == 283.6
    d = conv1.to_dict()
    assert d["flops"] == 26_986_291_200 and isinstance(d["flops"], int)


def test_input_sizes_parse_from_text_or_tuples():
    assert parse_input_size("3x224x224") == parse_input_size("3×224×224") == (3, 224, 224)
    assert parse_input_size([1, 28, 28]) == (1, 28, 28)
    with pytest.raises(ConfigError, match=r"\(3, 32, 32\)"):
        parse_input_size(32)


def test_input_below_the_minimum_names_the_minimum():
    with pytest.raises(InputShapeError, match=r"at least 67x67") as e:
        analyze("alexnet", input_size=(3, 32, 32))
    assert "meta" not in str(e.value) and "dispatch" not in str(e.value)


def test_unknown_model_gets_a_suggestion():
    with pytest.raises(cnnzoo.UnknownModelError, match="Did you mean: .*resnet50"):
        analyze("resnet5O")


def test_plain_module_needs_an_input_size():
    with pytest.raises(ConfigError, match="input_size"):
        analyze(nn.Conv2d(1, 1, 3))
    with pytest.raises(ConfigError, match="CxHxW"):
        analyze("lenet5", input_size="one by 32")
    with pytest.raises(ConfigError, match="optimizer"):
        analyze("lenet5", optimizer="adagrad")


def test_options_are_checked_with_one_line_that_names_the_fix():
    for kwargs, text in (
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"batch_size": True}, "batch_size must be a positive integer"),
        ({"depth": 0}, "depth must be a positive integer"),
        ({"dtype": "int8"}, "use one of float32"),
    ):
        with pytest.raises(ConfigError, match=text):
            analyze("lenet5", **kwargs)
    with pytest.raises(ConfigError, match="a model name or an nn.Module"):
        analyze(42)
