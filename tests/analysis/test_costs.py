"""``analyze`` (``cnnzoo.analysis.costs``): its options, its errors, and the spec's worked row."""

from __future__ import annotations

import json

import pytest
import torch
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


# -- several inputs ----------------------------------------------------------------------------------


class TwoInputs(nn.Module):
    """An image and a vector of side information, joined before the classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.side = nn.Linear(5, 4)
        self.fc = nn.Linear(8, 2)

    def forward(self, image, extra):
        x = torch.flatten(self.pool(self.conv(image)), 1)
        return self.fc(torch.cat([x, self.side(extra)], 1))


def test_several_inputs_as_a_tuple_or_by_name(row):
    pos = analyze(TwoInputs(), input_size=((3, 8, 8), (5,)), batch_size=3)
    named = analyze(TwoInputs(), input_size={"extra": (5,), "image": (3, 8, 8)}, batch_size=3)
    assert [r.name for r in pos.layers[:2]] == ["input.0", "input.1"]
    assert [r.name for r in named.layers[:2]] == ["input.extra", "input.image"]
    for r in (pos, named):
        assert row(r, "conv").flops == 3 * (4 * 64) * 27 * 2 and row(r, "side").flops == 3 * 2 * 5 * 4
        assert row(r, "conv").receptive_field == 3
        assert r.training is not None and row(r, "side").saved_bytes == 3 * 5 * 4
    assert pos.totals == named.totals
    assert json.loads(named.to_json())["input_size"] == {"extra": [5], "image": [3, 8, 8]}
    assert "inputs 3×8×8, 5" in pos.title


@pytest.mark.parametrize(
    "sizes,problem",
    [
        ((3, 8, 8), "no size for extra"),
        (((3, 8, 8), (5,), (2,)), "3 sizes for 2 positional"),
        ({"image": (3, 8, 8), "side_info": (5,)}, "no argument named side_info"),
    ],
)
def test_sizes_that_do_not_match_the_forward_get_one_clear_error(sizes, problem):
    with pytest.raises(ConfigError) as e:
        analyze(TwoInputs(), input_size=sizes)
    msg = str(e.value)
    assert problem in msg and "TwoInputs.forward(image, extra)" in msg and "\n" not in msg


# -- the user's model is never changed ---------------------------------------------------------------


class Mixed(nn.Module):
    """Batch norm with running statistics, dropout, a frozen layer and a submodule left in eval."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.frozen = nn.Conv2d(4, 4, 1)
        self.frozen.requires_grad_(False)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        x = self.frozen(torch.relu(self.bn(self.stem(x))))
        return self.head(torch.flatten(self.drop(x), 1))


@pytest.mark.parametrize("backward", [True, False])
def test_the_users_model_is_not_mutated(backward):
    torch.manual_seed(0)
    m = Mixed().train()
    m.bn.eval()  # a submodule in another mode than its parent
    m.bn.running_mean.fill_(0.5)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    modes = {n: mod.training for n, mod in m.named_modules()}
    grads = {n: p.requires_grad for n, p in m.named_parameters()}
    devices = {t.device for t in m.state_dict().values()}
    ids = {n: id(p) for n, p in m.named_parameters()}
    r = analyze(m, input_size=(3, 8, 8), batch_size=4, backward=backward)
    assert (r.training is not None) == backward
    after = m.state_dict()
    assert state.keys() == after.keys() and all(torch.equal(state[k], after[k]) for k in state)
    assert {n: mod.training for n, mod in m.named_modules()} == modes
    assert {n: p.requires_grad for n, p in m.named_parameters()} == grads
    assert {n: id(p) for n, p in m.named_parameters()} == ids
    assert {t.device for t in m.state_dict().values()} == devices == {torch.device("cpu")}
    assert all(p.grad is None for p in m.parameters())
    # frozen parameters have no gradient and no optimizer state in the step
    trainable = sum(p.numel() for p in m.parameters() if p.requires_grad) * 4
    assert r.training is None or r.training.memory.optimizer_state == trainable


# -- ops without a cost rule ----------------------------------------------------------------------------


@torch.library.custom_op("cnnzoo_test::blur", mutates_args=())
def _blur(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@_blur.register_fake
def _(x):
    return torch.empty_like(x)


class Spectral(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x):
        y = torch.fft.rfft2(self.conv(x)).abs()
        return _blur(y).sum((2, 3))


def test_unsupported_ops_are_named_in_the_notes_not_counted_as_a_silent_zero():
    r = analyze(Spectral(), input_size=(1, 8, 8), batch_size=2)
    unsupported = [n for n in r.notes if n.startswith("unsupported op")]
    assert any("_fft_r2c" in n and "counted as 0 FLOPs" in n for n in unsupported), r.notes
    assert any("cnnzoo_test::blur" in n or "blur" in n for n in unsupported), r.notes
    assert {x.type for x in r.layers} >= {"conv"}
    # a model of known ops has none
    assert not [n for n in analyze(nn.Conv2d(1, 2, 3), input_size=(1, 8, 8)).notes if "unsupported" in n]


def test_backward_false_keeps_the_forward_only_trace():
    r = analyze("lenet5_relu", batch_size=4, backward=False)
    assert r.training is None and all(x.saved_bytes is None and x.backward_flops is None for x in r.layers)
    t = r.totals
    assert t["peak_training_bytes"] is None and t["backward_flops"] is None
    full = analyze("lenet5_relu", batch_size=4)
    lecture = ("params", "flops", "activation_memory_bytes", "parameter_memory_bytes", "macs")
    assert {k: t[k] for k in lecture} == {k: full.totals[k] for k in lecture}
    assert [x.to_dict()["flops"] for x in r.layers] == [x.to_dict()["flops"] for x in full.layers]
