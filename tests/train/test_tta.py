"""Test-time evaluation modes: flip averaging, center crop, ten crops, aux-head outputs."""

from __future__ import annotations

from typing import NamedTuple

import pytest
import torch
from torch import nn

from cnnzoo.errors import ConfigError
from cnnzoo.train.tta import predict


class _Pool(nn.Module):
    """Flip-invariant: a linear map of per-channel means (the mean ignores pixel order)."""

    def __init__(self, c: int = 3, k: int = 5) -> None:
        super().__init__()
        self.fc = nn.Linear(c, k)

    def forward(self, x):
        return self.fc(x.mean((2, 3)))


class _Recorder(nn.Module):
    """Logs the inputs it sees and returns logits that depend on pixel positions."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.clone())
        w = torch.arange(x.shape[-1], dtype=x.dtype)
        return torch.stack([(x * w).sum((1, 2, 3)), x.sum((1, 2, 3))], 1)


class _Aux(NamedTuple):
    logits: torch.Tensor
    aux1: torch.Tensor


def test_none_is_the_model_output():
    torch.manual_seed(0)
    m, x = _Pool(), torch.randn(4, 3, 8, 8)
    assert torch.equal(predict(m, x), m(x))


def test_flip_tta_of_a_flip_invariant_model_equals_plain_predict():
    torch.manual_seed(0)
    m, x = _Pool(), torch.randn(6, 3, 9, 9)
    plain = predict(m, x)
    flip = predict(m, x, mode="flip")
    # flip returns log(mean softmax): the same distribution as the plain logits
    assert torch.allclose(flip, plain.log_softmax(1), atol=1e-6)
    assert torch.equal(flip.argmax(1), plain.argmax(1))


def test_flip_averages_the_softmax_of_x_and_its_mirror():
    m, x = _Recorder(), torch.randn(3, 1, 4, 6)
    out = predict(m, x, mode="flip")
    assert len(m.seen) == 2 and torch.equal(m.seen[1], x.flip(3))
    p = (m(x).softmax(1) + m(x.flip(3)).softmax(1)) / 2
    assert torch.allclose(out.exp(), p, atol=1e-6)
    assert torch.allclose(out.exp().sum(1), torch.ones(3))


def test_center_crop():
    m, x = _Recorder(), torch.arange(2 * 1 * 6 * 6, dtype=torch.float).view(2, 1, 6, 6)
    predict(m, x, mode="center", crop=4)
    assert torch.equal(m.seen[0], x[:, :, 1:5, 1:5])
    with pytest.raises(ConfigError, match="crop"):
        predict(m, x, mode="center")
    with pytest.raises(ConfigError, match="does not fit"):
        predict(m, x, mode="center", crop=7)


def test_tencrop_views_and_shape():
    m = _Recorder()
    x = torch.randn(5, 3, 10, 10)
    out = predict(m, x, mode="tencrop", crop=6)
    assert out.shape == (5, 2)
    assert len(m.seen) == 10 and all(v.shape == (5, 3, 6, 6) for v in m.seen)
    views = {tuple(v.flatten().tolist()) for v in m.seen}
    assert len(views) == 10  # four corners, center, and their mirrors, all different
    assert torch.equal(m.seen[0], x[..., :6, :6]) and torch.equal(m.seen[4], x[..., 2:8, 2:8])
    assert torch.equal(m.seen[5], x.flip(3)[..., :6, :6])
    expected = torch.stack([m(v).softmax(1) for v in m.seen[:10]]).mean(0)
    assert torch.allclose(out.exp(), expected, atol=1e-6)
    with pytest.raises(ConfigError, match="crop"):
        predict(m, x, mode="tencrop")


def test_outputs_with_logits_field_are_reduced():
    class AuxModel(nn.Module):
        def forward(self, x):
            z = x.mean((2, 3))
            return _Aux(logits=z, aux1=z * 0)

    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(predict(AuxModel(), x), x.mean((2, 3)))
    assert predict(AuxModel(), x, mode="tencrop", crop=4).shape == (2, 3)


def test_unknown_mode():
    with pytest.raises(ConfigError, match="none, center, flip, shift, tencrop"):
        predict(_Pool(), torch.randn(1, 3, 4, 4), mode="multiscale")


def test_shift_averages_six_views_flips_and_one_pixel_shifts():
    m = _Recorder()
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float).view(2, 1, 5, 5)
    out = predict(m, x, mode="shift")
    assert len(m.seen) == 6
    down_right, up_left = m.seen[2], m.seen[4]
    assert torch.equal(down_right[..., 1:, 1:], x[..., :-1, :-1])  # content moved by +1, +1
    assert torch.equal(down_right[..., 0, 1:], x[..., 0, :-1])  # the new top row repeats the edge
    assert torch.equal(up_left[..., :-1, :-1], x[..., 1:, 1:])
    for i in (1, 3, 5):
        assert torch.equal(m.seen[i], m.seen[i - 1].flip(3))
    p = torch.stack([m(v).softmax(1) for v in m.seen[:6]]).mean(0)
    assert torch.allclose(out.exp(), p, atol=1e-6)


def test_shift_of_a_shift_and_flip_invariant_model_equals_plain_predict():
    class _Max(nn.Module):  # global max pooling: invariant to flips and to shifts of a framed image
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x):
            return self.fc(x.amax((2, 3)))

    torch.manual_seed(0)
    x = torch.full((5, 3, 7, 7), -10.0)  # a constant 2-pixel frame: a shift drops and repeats frame only
    x[..., 2:-2, 2:-2] = torch.randn(5, 3, 3, 3)
    m = _Max()
    assert torch.allclose(predict(m, x, mode="shift"), m(x).log_softmax(1), atol=1e-6)
