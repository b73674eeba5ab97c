"""get_act / create_act: every name is the function its paper uses; unknown names fail clearly."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnzoo.errors import CnnzooError
from cnnzoo.layers.activations import ACTIVATIONS, UnknownActivationError, create_act, get_act

X = torch.linspace(-8, 8, 161)

REFERENCE = {
    "relu": lambda x: x.clamp_min(0),
    "relu6": lambda x: x.clamp(0, 6),
    "hard_swish": lambda x: x * (x + 3).clamp(0, 6) / 6,  # MobileNet v3, Eq. (2)
    "hard_sigmoid": lambda x: (x + 3).clamp(0, 6) / 6,
    "swish": lambda x: x * torch.sigmoid(x),
    "silu": lambda x: x * torch.sigmoid(x),
    "sigmoid": torch.sigmoid,
    "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / 2**0.5)),
    "tanh": torch.tanh,
    "identity": lambda x: x,
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_each_name_computes_its_function(name):
    act = create_act(name)
    assert torch.allclose(act(X.clone()), REFERENCE[name](X), atol=1e-6)
    assert get_act(name) is ACTIVATIONS[name]
    assert get_act(name.upper()) is ACTIVATIONS[name]  # names are case-insensitive


def test_every_known_name_is_tested():
    assert set(ACTIVATIONS) == set(REFERENCE)


def test_torch_spellings_classes_and_none_pass_through():
    assert get_act("hardswish") is nn.Hardswish and get_act("hardsigmoid") is nn.Hardsigmoid
    assert get_act(nn.ReLU6) is nn.ReLU6 and get_act(None) is None and create_act(None) is None

    def leaky() -> nn.Module:
        return nn.LeakyReLU(0.1)

    assert isinstance(create_act(leaky), nn.LeakyReLU)


def test_inplace_only_where_the_module_supports_it():
    assert create_act("relu", inplace=True).inplace and not create_act("relu").inplace
    assert create_act("hard_swish", inplace=True).inplace
    assert isinstance(create_act("sigmoid", inplace=True), nn.Sigmoid)  # no inplace argument: ignored
    x = X.clone()
    create_act("relu6", inplace=True)(x)
    assert torch.equal(x, F.relu6(X))


def test_unknown_name_is_one_clear_error_listing_the_valid_ones():
    with pytest.raises(UnknownActivationError) as e:
        get_act("mish")
    msg = str(e.value)
    assert isinstance(e.value, CnnzooError) and isinstance(e.value, ValueError)
    assert "'mish'" in msg and all(n in msg for n in ACTIVATIONS) and "\n" not in msg
    with pytest.raises(UnknownActivationError):
        create_act("swish2")
