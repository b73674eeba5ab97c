"""GoogLeNet (Szegedy et al. CVPR 2015): Table 1 widths, aux heads and loss, torchvision layout."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torchvision
from torch import Tensor, nn

from cnnzoo.data import adapt_images
from cnnzoo.layers.inception import Inception, NaiveInception
from cnnzoo.layers.lrn import LocalResponseNorm
from cnnzoo.models.base import InputShapeError
from cnnzoo.models.googlenet import AUX_WEIGHT, GoogLeNetOutputs
from cnnzoo.registry import create_model, get_model_config

# Table 1 of the paper, copied independently of the model file:
# (input width, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj, output width)
TABLE1 = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32, 256),
    "inception3b": (256, 128, 128, 192, 32, 96, 64, 480),
    "inception4a": (480, 192, 96, 208, 16, 48, 64, 512),
    "inception4b": (512, 160, 112, 224, 24, 64, 64, 512),
    "inception4c": (512, 128, 128, 256, 24, 64, 64, 512),
    "inception4d": (512, 112, 144, 288, 32, 64, 64, 528),
    "inception4e": (528, 256, 160, 320, 32, 128, 128, 832),
    "inception5a": (832, 256, 160, 320, 32, 128, 128, 832),
    "inception5b": (832, 384, 192, 384, 48, 128, 128, 1024),
}


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return k * k * cin * cout + (cout if bias else 0)


def meta_params(name: str, **kwargs) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name, **kwargs).parameters())


def paper_count(num_classes: int = 1000, aux: bool = True) -> int:
    """GoogLeNet from Table 1: every conv with a bias, no BN, LRN and pools parameter-free."""
    stem = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3)  # conv1; conv2 (reduce 64, 3x3 192)
    modules = sum(
        conv(cin, n1, 1)
        + conv(cin, r3, 1)
        + conv(r3, n3, 3)
        + conv(cin, r5, 1)
        + conv(r5, n5, 5)
        + conv(cin, pp, 1)
        for cin, n1, r3, n3, r5, n5, pp, _ in TABLE1.values()
    )
    head = 1024 * num_classes + num_classes
    # aux head: 1x1 conv to 128 on 512 (4a) / 528 (4d) maps, fc 4*4*128 -> 1024, fc 1024 -> classes
    aux_heads = sum(
        conv(c, 128, 1) + 2048 * 1024 + 1024 + 1024 * num_classes + num_classes for c in (512, 528)
    )
    return stem + modules + head + (aux_heads if aux else 0)


def test_table1_widths_are_the_models():
    with torch.device("meta"):
        m = create_model("googlenet")
    for name, (cin, n1, r3, n3, r5, n5, pp, cout) in TABLE1.items():
        block = getattr(m, name)
        assert isinstance(block, Inception)
        assert (block.in_channels, *block.widths, block.out_channels) == (cin, n1, r3, n3, r5, n5, pp, cout)
        assert n1 + n3 + n5 + pp == cout
        assert block.branch3[1].conv.kernel_size == (5, 5) and block.branch3[1].bn is None
        assert block.branch1.conv.bias is not None


def test_paper_param_count_from_table1():
    assert meta_params("googlenet", aux_logits=False) == paper_count(aux=False) == 6_998_552
    assert meta_params("googlenet") == paper_count(aux=True)
    assert meta_params("googlenet", num_classes=10) == paper_count(10, aux=True)


def test_naive_count_and_widths():
    """Naive modules keep #1x1/#3x3/#5x5 and pass the pool branch through: widths only grow."""
    total, cin = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3), 192
    widths = []
    for _, n1, _, n3, _, n5, _, _ in TABLE1.values():
        total += conv(cin, n1, 1) + conv(cin, n3, 3) + conv(cin, n5, 5)
        cin = cin + n1 + n3 + n5
        widths.append(cin)
    total += cin * 1000 + 1000
    assert widths[-1] == 4944
    assert meta_params("googlenet_naive", aux_logits=False) == total == 97_526_008
    with torch.device("meta"):
        m = create_model("googlenet_naive", aux_logits=False)
    assert all(isinstance(getattr(m, n), NaiveInception) for n in TABLE1)
    assert [getattr(m, n).out_channels for n in TABLE1] == widths
    assert total > 13 * paper_count(aux=False)  # the case for the 1x1 reductions


def test_tv_param_counts_match_spec_and_torchvision():
    assert meta_params("googlenet_tv", aux_logits=False) == 6_624_904
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for aux in (False, True):
            tv = torchvision.models.googlenet(weights=None, aux_logits=aux, init_weights=False)
            assert meta_params("googlenet_tv", aux_logits=aux) == sum(p.numel() for p in tv.parameters())


def _tv_pair(aux: bool, transform_input: bool = False):
    """torchvision's GoogLeNet (random init) and ours with its state_dict loaded strictly.

    Ours is built on the meta device and materialised by the load, which skips its own init.
    """
    torch.manual_seed(0)
    tv = torchvision.models.googlenet(
        weights=None, aux_logits=aux, init_weights=False, transform_input=transform_input
    )
    with torch.no_grad():  # make eval-mode BN non-trivial
        for m in tv.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    with torch.device("meta"):
        ours = create_model("googlenet_tv", aux_logits=aux, transform_input=transform_input)
    ours.to_empty(device="cpu").load_state_dict(tv.state_dict(), strict=True)
    return ours, tv


@pytest.mark.parametrize("aux", [True, False])
def test_tv_loads_torchvision_and_matches_in_eval(aux):
    ours, tv = _tv_pair(aux)
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert (ours.eval()(x) - tv.eval()(x)).abs().max().item() <= 1e-5


def test_tv_matches_torchvision_in_train_mode_and_with_transform_input():
    ours, tv = _tv_pair(True, transform_input=True)
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert (ours.eval()(x) - tv.eval()(x)).abs().max().item() <= 1e-5
        ours.train(), tv.train()
        torch.manual_seed(1)
        a = ours(x)
        torch.manual_seed(1)  # same dropout draws: aux1, aux2 then the main head, in both
        b = tv(x)
    assert isinstance(a, GoogLeNetOutputs) and a._fields == b._fields
    for fa, fb in zip(a, b, strict=True):  # train-mode BN on a batch of 2 amplifies rounding: 1e-4
        assert (fa - fb).abs().max().item() <= 1e-4


def test_map_sizes_follow_table1_at_224():
    with torch.device("meta"):  # shapes only: no memory, no compute
        m = create_model("googlenet").train()
        x = torch.empty(2, 3, 224, 224)
    sizes = {}

    def record(name):
        return lambda mod, inp, out: sizes.__setitem__(name, tuple(out.shape[1:]))

    names = ["conv1", "maxpool1", "conv3", "maxpool2", *TABLE1, "maxpool3", "maxpool4"]
    hooks = [getattr(m, n).register_forward_hook(record(n)) for n in names]
    hooks.append(m.aux1.pool[0].register_forward_hook(record("aux")))
    out = m(x)
    for h in hooks:
        h.remove()
    assert sizes["conv1"] == (64, 112, 112) and sizes["maxpool1"] == (64, 56, 56)
    assert sizes["conv3"] == (192, 56, 56) and sizes["maxpool2"] == (192, 28, 28)
    for name, row in TABLE1.items():
        side = {"3": 28, "4": 14, "5": 7}[name[9]]
        assert sizes[name] == (row[-1], side, side), name
    assert sizes["maxpool4"] == (832, 7, 7)
    assert sizes["aux"] == (512, 4, 4)  # the 5x5/3 pool alone gives the paper's 4x4 at 224
    assert out.logits.shape == out.aux_logits1.shape == out.aux_logits2.shape == (2, 1000)


def test_paper_layout_stem_and_head():
    m = create_model("googlenet")
    assert isinstance(m.norm1, LocalResponseNorm) and isinstance(m.norm2, LocalResponseNorm)
    assert (m.norm1.size, m.norm1.alpha, m.norm1.beta, m.norm1.k) == (5, 2e-5, 0.75, 1.0)
    assert not any(isinstance(x, nn.BatchNorm2d) for x in m.modules())
    assert m.dropout.p == 0.4 and m.aux1.dropout.p == 0.7
    assert m.maxpool4.kernel_size == 3 and m.aux1.fc1.in_features == 2048 and m.aux1.fc1.out_features == 1024
    assert m.conv1.conv.bias is not None and torch.all(m.conv1.conv.bias == 0.2)


def test_train_mode_returns_aux_and_eval_returns_logits():
    m = create_model("googlenet", num_classes=10, in_chans=1)
    x = torch.randn(2, 1, 96, 96)
    out = m.train()(x)
    assert isinstance(out, GoogLeNetOutputs)
    assert out._fields == ("logits", "aux_logits2", "aux_logits1")
    assert all(o.shape == (2, 10) for o in out)
    with torch.no_grad():
        ev = m.eval()(x)
    assert isinstance(ev, Tensor) and ev.shape == (2, 10)
    no_aux = create_model("googlenet", num_classes=10, in_chans=1, aux_logits=False).train()
    assert no_aux.aux1 is None and no_aux.aux2 is None
    t = no_aux(x)
    assert isinstance(t, Tensor) and t.shape == (2, 10)


def test_loss_is_main_plus_0_3_aux_by_hand():
    m = create_model("googlenet", num_classes=3, aux_logits=True)
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    aux2 = torch.tensor([[0.0, 1.0, 0.0], [1.0, 2.0, 3.0]])
    aux1 = torch.tensor([[1.0, 1.0, 1.0], [-2.0, 0.0, 2.0]])
    target = torch.tensor([0, 2])

    def ce(z: list[list[float]], t: list[int]) -> float:  # mean of -log softmax, written out
        return sum(
            math.log(sum(math.exp(v) for v in row)) - row[c] for row, c in zip(z, t, strict=True)
        ) / len(t)

    t = target.tolist()
    expected = ce(logits.tolist(), t) + 0.3 * (ce(aux1.tolist(), t) + ce(aux2.tolist(), t))
    got = m.loss(GoogLeNetOutputs(logits, aux2, aux1), target)
    assert AUX_WEIGHT == 0.3
    assert abs(got.item() - expected) < 1e-6
    assert abs(m.loss(logits, target).item() - ce(logits.tolist(), t)) < 1e-6  # eval output: plain CE
    smoothed = m.loss(GoogLeNetOutputs(logits, aux2, aux1), target, label_smoothing=0.1)
    ref = nn.functional.cross_entropy
    assert torch.allclose(
        smoothed,
        ref(logits, target, label_smoothing=0.1)
        + 0.3 * (ref(aux1, target, label_smoothing=0.1) + ref(aux2, target, label_smoothing=0.1)),
    )


def test_loss_trains_the_aux_heads():
    m = create_model("googlenet", num_classes=4, in_chans=1).train()
    out = m(torch.randn(2, 1, 80, 80))
    m.loss(out, torch.tensor([1, 3])).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_min_input_size_with_and_without_aux():
    cfg = get_model_config("googlenet")
    m = create_model("googlenet", num_classes=5).train()
    assert cfg.min_input_size == m.min_input_size == 79
    assert isinstance(m(torch.randn(2, 3, 79, 79)), GoogLeNetOutputs)
    with pytest.raises(InputShapeError, match=r"at least 79x79.*aux_logits=False \(minimum 31x31\)"):
        m(torch.randn(2, 3, 78, 78))
    with pytest.raises(RuntimeError):  # the aux pool itself fails at 78: 79 is the true minimum
        m._trunk(torch.randn(2, 3, 78, 78), taps=True)
    with pytest.raises(InputShapeError, match="needs inputs of at least 79x79"):
        m(torch.randn(2, 3, 20, 20))

    small = create_model("googlenet", num_classes=5, aux_logits=False).eval()
    assert small.min_input_size == 31
    with torch.no_grad():
        assert small(torch.randn(2, 3, 31, 31)).shape == (2, 5)
    with pytest.raises(InputShapeError, match="at least 31x31"):
        small(torch.randn(2, 3, 30, 30))
    # forward_features checks too: switch the check off to probe the network itself
    small.check_input = lambda x: None
    with torch.no_grad(), pytest.raises(RuntimeError):
        small.forward_features(torch.randn(2, 3, 30, 30))


def test_tv_min_input_size_is_set_by_batch_norm():
    """torchvision's meta says min_size 15 (eval); training needs 2x2 maps in stage 5 for its BNs."""
    m = create_model("googlenet_tv", num_classes=10).train()
    assert get_model_config("googlenet_tv").min_input_size == m.min_input_size == 47
    out = m(torch.randn(1, 3, 47, 47))
    assert out.logits.shape == (1, 10)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        m._trunk(torch.randn(1, 3, 46, 46), taps=True)
    with pytest.raises(InputShapeError, match="47x47"):
        m(torch.randn(1, 3, 46, 46))
    # forward_features checks too: switch the check off to probe the network itself
    m.check_input = lambda x: None
    with torch.no_grad():  # eval mode runs down to torchvision's 15
        assert m.eval().forward_head(m.forward_features(torch.randn(1, 3, 15, 15))).shape == (1, 10)
        with pytest.raises(RuntimeError):
            m.forward_features(torch.randn(1, 3, 14, 14))


@pytest.mark.parametrize("name", ["googlenet", "googlenet_naive", "googlenet_tv"])
def test_trains_at_the_fashion_mnist_size(name):
    cfg = get_model_config(name)
    assert cfg.small_input_size >= cfg.min_input_size
    assert cfg.year == 2015 and "Going Deeper" in cfg.paper
    m = create_model(name, in_chans=1, num_classes=10).train()
    images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    x = adapt_images(images, size=cfg.small_input_size, mode="resize", mean=cfg.mean, std=cfg.std, in_chans=1)
    out = m(x)
    loss = m.loss(out, torch.tensor([0, 9]))
    loss.backward()
    assert torch.isfinite(loss) and out.logits.shape == (2, 10)


def test_transform_input_needs_three_channels():
    with pytest.raises(ValueError, match="transform_input needs 3 input channels"):
        create_model("googlenet_tv", in_chans=1, transform_input=True)
