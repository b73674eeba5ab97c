"""CapsNet (Sabour, Frosst, Hinton 2017): layer sizes, squash, dynamic routing against Procedure 1,
the margin and reconstruction losses, masking, counts, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnzoo
from cnnzoo.data.constants import FASHION_MNIST_MEAN, FASHION_MNIST_STD
from cnnzoo.errors import ConfigError
from cnnzoo.models.base import InputShapeError
from cnnzoo.models.capsnet import CapsNetOutputs, ClassCapsuleLinear, ClassCapsules, margin_loss, squash
from cnnzoo.registry import create_model, get_model_config


def paper_count(decoder: bool = True, classes: int = 10) -> int:
    conv1 = 9 * 9 * 1 * 256 + 256
    primary = 9 * 9 * 256 * 256 + 256
    digit = 6 * 6 * 32 * classes * 8 * 16  # W_ij, no bias
    dec = (16 * classes * 512 + 512) + (512 * 1024 + 1024) + (1024 * 784 + 784)
    return conv1 + primary + digit + (dec if decoder else 0)


def test_parameter_counts_are_the_papers():
    m = create_model("capsnet")
    total = sum(p.numel() for p in m.parameters())
    without = sum(p.numel() for n, p in m.named_parameters() if not n.startswith("decoder."))
    assert total == paper_count() == 8_215_568 and round(total / 1e6, 1) == 8.2
    assert without == paper_count(decoder=False) == 6_804_224 and round(without / 1e6, 1) == 6.8


def test_layer_sizes():
    m = create_model("capsnet").eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        h = m.conv1(x)
        caps = m.primary_caps(h)
        u = m.primary_caps.capsules(caps)
    assert h.shape == (2, 256, 20, 20) and caps.shape == (2, 256, 6, 6) and u.shape == (2, 1152, 8)
    assert m.primary_caps.conv.kernel_size == (9, 9) and m.primary_caps.conv.stride == (2, 2)
    assert m.digit_caps.weight.shape == (10, 1152, 16, 8) and m.digit_caps.iterations == 3
    assert (u.norm(dim=-1) < 1).all()  # squashed
    # a capsule is 8 consecutive channels at one position
    assert torch.allclose(u[0, 0], squash(m.primary_caps.conv(h)[0, :8, 0, 0]), atol=1e-6)
    assert m(x).shape == (2, 10) and ((m(x) >= 0) & (m(x) < 1)).all()


def test_squash():
    s = torch.randn(5, 16) * torch.tensor([0.01, 0.1, 1.0, 10.0, 100.0]).view(5, 1)
    v = squash(s)
    n = s.norm(dim=-1)
    assert torch.allclose(v.norm(dim=-1), n**2 / (1 + n**2), atol=1e-6)
    assert torch.allclose(F.normalize(v, dim=-1), F.normalize(s, dim=-1), atol=1e-6)
    zero = torch.zeros(1, 8, requires_grad=True)
    squash(zero).sum().backward()
    assert torch.isfinite(zero.grad).all()


def _procedure1(u: torch.Tensor, w: torch.Tensor, r: int) -> torch.Tensor:
    """Procedure 1, written as the paper prints it, one loop per index (for a tiny layer)."""
    n, i_caps, _ = u.shape
    j_caps = w.shape[0]
    out = []
    for b_idx in range(n):
        u_hat = [[w[j, i] @ u[b_idx, i] for i in range(i_caps)] for j in range(j_caps)]
        b = torch.zeros(i_caps, j_caps)
        for it in range(r):
            c = torch.softmax(b, dim=1)  # c_i = softmax(b_i), over the classes j
            v = [squash(sum(c[i, j] * u_hat[j][i] for i in range(i_caps))) for j in range(j_caps)]
            if it + 1 < r:
                b = b + torch.tensor(
                    [[float(u_hat[j][i] @ v[j]) for j in range(j_caps)] for i in range(i_caps)]
                )
        out.append(torch.stack(v))
    return torch.stack(out)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_routing_is_procedure_1(r):
    torch.manual_seed(0)
    layer = ClassCapsules(in_caps=6, in_dim=4, num_classes=3, out_dim=5, iterations=r)
    with torch.no_grad():
        layer.weight.normal_(0, 0.5)
        u = squash(torch.randn(2, 6, 4))
        assert torch.allclose(layer(u), _procedure1(u, layer.weight, r), atol=1e-5)


def test_routing_iterations_below_one_are_refused():
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(ConfigError, match=r"routing_iterations must be an int of at least 1 \(the paper"):
            create_model("capsnet", routing_iterations=bad)
    assert create_model("capsnet", routing_iterations=1).digit_caps.iterations == 1


def test_margin_loss_by_hand():
    lengths = torch.tensor([[0.95, 0.2, 0.05], [0.5, 0.8, 0.3]])
    target = torch.tensor([0, 2])
    # sample 0: present 0 (0.95 > 0.9); absent 0.5 * (0.2 - 0.1)^2; sample 1: present (0.9 - 0.3)^2,
    # absent 0.5 * ((0.5 - 0.1)^2 + (0.8 - 0.1)^2)
    want = (0.5 * 0.01 + (0.36 + 0.5 * (0.16 + 0.49))) / 2
    assert margin_loss(lengths, target).item() == pytest.approx(want)


def test_decoder_first_layer_is_the_papers_fc_on_masked_capsules():
    layer = ClassCapsuleLinear(10, 16, 512)
    v, mask = torch.randn(3, 10, 16), F.one_hot(torch.tensor([2, 7, 7]), 10).float()
    fc = nn.Linear(160, 512, bias=False)
    with torch.no_grad():
        fc.weight.copy_(layer.weight.flatten(0, 1).t())
        assert torch.allclose(layer(v, mask), fc((v * mask.unsqueeze(-1)).flatten(1)), atol=1e-5)


def test_masking_by_the_target_in_training_and_by_the_prediction_in_eval():
    torch.manual_seed(0)
    m = create_model("capsnet")
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    v = m._capsules(x).detach()
    with torch.no_grad():
        out = m.train()(x, target=y)
        assert isinstance(out, CapsNetOutputs) and out.reconstructions.shape == (4, 784)
        assert torch.allclose(out.reconstructions, m.decoder(v, F.one_hot(y, 10).float()), atol=1e-6)
        pred = m.eval()(x).argmax(1)
        ev = m(x, target=y)
        assert torch.allclose(ev.reconstructions, m.decoder(v, F.one_hot(pred, 10).float()), atol=1e-6)
        assert m.reconstruct(x).shape == (4, 1, 28, 28)
        assert torch.allclose(m.reconstruct(x).flatten(1), ev.reconstructions)
    assert isinstance(m.train()(x), torch.Tensor)  # no target: the logits only


def test_loss_adds_0_0005_times_the_summed_squared_error_to_the_pixels():
    torch.manual_seed(0)
    m = create_model("capsnet").train()
    pixels = torch.rand(2, 1, 28, 28)
    mean, std = FASHION_MNIST_MEAN[0], FASHION_MNIST_STD[0]
    x, y = (pixels - mean) / std, torch.tensor([3, 5])
    out = m(x, target=y)
    sse = (out.reconstructions - pixels.flatten(1)).square().sum(1).mean()
    assert m.loss(out, y, inputs=x).item() == pytest.approx(
        (margin_loss(out.logits, y) + 0.0005 * sse).item(), rel=1e-5
    )
    assert m.loss(out.logits, y).item() == pytest.approx(margin_loss(out.logits, y).item())
    with pytest.raises(ConfigError, match="no label smoothing"):
        m.loss(out, y, inputs=x, label_smoothing=0.1)


def test_input_sizes():
    m = create_model("capsnet").eval()
    assert get_model_config("capsnet").min_input_size == 27
    assert m(torch.randn(1, 1, 27, 27)).shape == m(torch.randn(1, 1, 28, 28)).shape == (1, 10)
    with pytest.raises(InputShapeError, match="at least 27x27"):
        m(torch.randn(1, 1, 26, 26))
    with pytest.raises(InputShapeError, match="CapsNet takes 28x28 inputs.*image_size=30"):
        m(torch.randn(1, 1, 30, 30))
    big = create_model("capsnet", image_size=36)
    assert big.digit_caps.in_caps == 10 * 10 * 32 and big(torch.randn(1, 1, 36, 36)).shape == (1, 10)


def test_reset_classifier_replaces_the_class_capsules_and_the_decoders_class_blocks():
    m = create_model("capsnet")
    keep = m.decoder.fc2.weight
    m.reset_classifier(4)
    assert m.digit_caps.weight.shape == (4, 1152, 16, 8) and m.decoder.fc1.weight.shape == (4, 16, 512)
    assert m.decoder.fc2.weight is keep
    x, y = torch.randn(2, 1, 28, 28), torch.tensor([1, 3])
    out = m.train()(x, target=y)
    assert out.logits.shape == (2, 4) and torch.isfinite(m.loss(out, y, inputs=x))


def test_routing_row_in_the_cost_table():
    r = cnnzoo.analyze("capsnet")
    row = next(row for row in r.layers if row.name == "digit_caps")
    assert row.type == "routing" and row.params == 1152 * 10 * 16 * 8
    predictions = 2 * 1152 * 10 * 16 * 8  # û = W u
    per_pass = 2 * 1152 * 10 * 16  # a weighted sum or an agreement
    assert predictions + 5 * per_pass <= row.flops <= 1.05 * (predictions + 5 * per_pass)
    assert next(row for row in r.layers if row.name == "decoder").type == "unused"
    assert r.totals["params"] == 8_215_568
