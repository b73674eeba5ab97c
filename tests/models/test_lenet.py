"""LeNet-5 against the paper (LeCun et al. 1998, §II.B)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnzoo import create_model
from cnnzoo.models.base import InputShapeError
from cnnzoo.models.lenet import C3_TABLE, PartialConv2d, ScaledTanh, Subsampling, lenet5_map_loss


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_per_layer_trainable_params_match_the_paper():
    m = create_model("lenet5")
    # §II.B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164; the RBF output has no trainable params
    paper = {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164, "output": 0}
    assert {k: _count(getattr(m, k)) for k in paper} == paper
    assert _count(m) == sum(paper.values()) == 60000


def test_c3_table_is_table_one():
    # 6 maps of 3 contiguous inputs, 6 of 4 contiguous, 3 of 4 non-contiguous, 1 of all six: 60 connections
    assert [len(r) for r in C3_TABLE] == [3] * 6 + [4] * 9 + [6]
    assert sum(len(r) for r in C3_TABLE) == 60
    assert C3_TABLE[0] == (0, 1, 2) and C3_TABLE[5] == (5, 0, 1)
    assert C3_TABLE[6] == (0, 1, 2, 3) and C3_TABLE[11] == (5, 0, 1, 2)
    assert C3_TABLE[12:15] == ((0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5))
    # Table I row 0 (S2 map 0) is connected to C3 maps 0,4,5,6,9,10,11,12,14,15
    assert [j for j, r in enumerate(C3_TABLE) if 0 in r] == [0, 4, 5, 6, 9, 10, 11, 12, 14, 15]


def test_partial_conv_sees_only_its_table():
    torch.manual_seed(0)
    c3 = PartialConv2d(C3_TABLE, 6, 5)
    x = torch.randn(2, 6, 14, 14, requires_grad=True)
    c3(x)[:, 0].sum().backward()  # C3 map 0 reads S2 maps 0, 1, 2 only
    touched = x.grad.abs().sum((0, 2, 3)) > 0
    assert touched.tolist() == [True, True, True, False, False, False]
    # equals a dense conv whose absent connections are zero
    dense = c3.dense_weight()
    mask = torch.zeros(16, 6, dtype=torch.bool)
    for j, row in enumerate(C3_TABLE):
        mask[j, list(row)] = True
    assert (dense[~mask] == 0).all() and (dense[mask] != 0).all()
    ref = F.conv2d(x, dense, c3.bias)
    torch.testing.assert_close(c3(x), ref)
    # round trip through the dense form
    c3b = PartialConv2d(C3_TABLE, 6, 5)
    c3b.load_dense_weight(dense)
    torch.testing.assert_close(c3b.weight, c3.weight)


def test_scaled_tanh_and_subsampling():
    a = torch.linspace(-3, 3, 7)
    torch.testing.assert_close(ScaledTanh()(a), 1.7159 * torch.tanh(2 * a / 3))
    assert abs(float(ScaledTanh()(torch.tensor(1.0))) - 1.0) < 1e-3  # f(1) ≈ 1 by design (Appendix A)
    s = Subsampling(2)
    with torch.no_grad():
        s.weight.copy_(torch.tensor([2.0, -1.0]))
        s.bias.copy_(torch.tensor([0.5, 0.0]))
    x = torch.arange(32, dtype=torch.float32).view(1, 2, 4, 4)
    with torch.no_grad():
        y = s(x)
    # channel 0, top-left window: 0+1+4+5 = 10 -> 2*10 + 0.5
    assert y.shape == (1, 2, 2, 2) and float(y[0, 0, 0, 0]) == 20.5
    assert float(y[0, 1, 1, 1]) == -(26 + 27 + 30 + 31)


def test_rbf_output_is_negative_squared_distance_to_fixed_prototypes():
    m = create_model("lenet5").eval()
    proto = m.output.prototypes
    assert proto.shape == (10, 84) and set(proto.unique().tolist()) == {-1.0, 1.0}
    assert not any(p is m.output.prototypes for p in m.parameters())  # fixed, not trained
    # distinct classes have distinct bitmaps, at least 5 of 84 pixels apart (Hamming distance)
    d = torch.cdist(proto, proto, p=1) / 2
    assert d[~torch.eye(10, dtype=torch.bool)].min() >= 5
    x = torch.randn(4, 84)
    torch.testing.assert_close(m.output(x), -torch.cdist(x, proto).pow(2), rtol=1e-4, atol=1e-3)
    # a feature vector equal to prototype 3 is classified as class 3 with distance 0
    out = m.output(proto[3:4])
    assert out.argmax().item() == 3 and abs(out[0, 3].item()) < 1e-4


def test_map_loss_is_eq9():
    neg = torch.tensor([[-1.0, -4.0, -9.0]])
    target = torch.tensor([0])
    j = 0.1
    expected = 1.0 + torch.log(torch.exp(torch.tensor(-j)) + torch.exp(-torch.tensor([1.0, 4.0, 9.0])).sum())
    torch.testing.assert_close(lenet5_map_loss(neg, target, j=j), expected)
    m = create_model("lenet5", criterion="map")
    out = m(torch.randn(3, 1, 32, 32))
    assert torch.isfinite(m.loss(out, torch.tensor([0, 1, 2])))
    with pytest.raises(ValueError, match="criterion"):
        create_model("lenet5", criterion="mse")


def test_relu_variant_is_the_course_lenet():
    m = create_model("lenet5_relu")
    assert isinstance(m.s2, torch.nn.MaxPool2d) and isinstance(m.act1, torch.nn.ReLU)
    assert isinstance(m.c3, torch.nn.Conv2d) and _count(m.c3) == 6 * 16 * 25 + 16
    assert isinstance(m.output, torch.nn.Linear) and _count(m) == 61706


@pytest.mark.parametrize("name", ["lenet5", "lenet5_relu"])
def test_lenet_wants_exactly_32x32(name):
    m = create_model(name)
    assert m.forward_features(torch.zeros(2, 1, 32, 32)).shape == (2, 120, 1, 1)
    for bad in ((28, 28), (36, 36)):
        with pytest.raises(InputShapeError, match="32x32"):
            m(torch.zeros(1, 1, *bad))
    with pytest.raises(InputShapeError, match="1 input channel"):
        m(torch.zeros(1, 3, 32, 32))
    with pytest.raises(InputShapeError, match="unsqueeze"):
        m(torch.zeros(1, 32, 32))


def test_paper_init_is_uniform_2_4_over_fan_in():
    torch.manual_seed(0)
    m = create_model("lenet5")
    assert m.c1.weight.abs().max() <= 2.4 / 25 and m.c1.weight.abs().max() > 0.8 * 2.4 / 25
    assert m.f6.weight.abs().max() <= 2.4 / 120
    assert (m.c5.bias == 0).all()
    # C3 map 15 (six inputs) has fan-in 150; map 0 (three inputs) has 75
    assert m.c3.weight[-6:].abs().max() <= 2.4 / 150
    assert m.c3.weight[:3].abs().max() <= 2.4 / 75
