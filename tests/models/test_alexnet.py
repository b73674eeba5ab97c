"""AlexNet: counts derived by hand, map sizes at 227, paper init and LRN, two-GPU connectivity,
torchvision equivalence of ``alexnet_tv``, minimum and Fashion-MNIST input sizes."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnzoo.layers.lrn import LocalResponseNorm
from cnnzoo.models.base import InputShapeError
from cnnzoo.registry import create_model, get_model_config

NAMES = ["alexnet", "alexnet_2gpu", "alexnet_tv"]


def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_params(k: int, cin: int, cout: int, groups: int = 1) -> int:
    return k * k * (cin // groups) * cout + cout


def fc_params(fin: int, fout: int) -> int:
    return fin * fout + fout


def test_alexnet_param_count_by_hand():
    convs = [
        conv_params(11, 3, 96),  # conv1      34,944
        conv_params(5, 96, 256),  # conv2     614,656
        conv_params(3, 256, 384),  # conv3    885,120
        conv_params(3, 384, 384),  # conv4  1,327,488
        conv_params(3, 384, 256),  # conv5    884,992
    ]
    fcs = [fc_params(256 * 6 * 6, 4096), fc_params(4096, 4096), fc_params(4096, 1000)]
    assert convs == [34_944, 614_656, 885_120, 1_327_488, 884_992]
    assert fcs == [37_752_832, 16_781_312, 4_097_000]
    assert sum(convs) + sum(fcs) == 62_378_344
    model = meta_model("alexnet")
    assert all(p.is_meta for p in model.parameters())  # the builder allocates nothing on meta
    assert n_params(model) == 62_378_344


def test_alexnet_2gpu_param_count_by_hand():
    # conv2, conv4, conv5 see half of their input maps (groups=2); conv3 and the fcs see all
    convs = [
        conv_params(11, 3, 96),  # conv1      34,944 (48 kernels on each GPU)
        conv_params(5, 96, 256, groups=2),  # conv2   307,456
        conv_params(3, 256, 384),  # conv3            885,120
        conv_params(3, 384, 384, groups=2),  # conv4  663,936
        conv_params(3, 384, 256, groups=2),  # conv5  442,624
    ]
    assert convs == [34_944, 307_456, 885_120, 663_936, 442_624]
    total = sum(convs) + 37_752_832 + 16_781_312 + 4_097_000
    assert total == 60_965_224
    assert n_params(meta_model("alexnet_2gpu")) == total


def test_alexnet_tv_param_count_matches_spec_and_torchvision():
    with torch.device("meta"):
        tv = torchvision.models.alexnet(weights=None)
    assert n_params(meta_model("alexnet_tv")) == 61_100_840 == n_params(tv)
    assert n_params(meta_model("alexnet_tv", num_classes=10)) == 61_100_840 - 4097 * 990


@pytest.mark.parametrize("name", ["alexnet", "alexnet_2gpu"])
def test_map_sizes_at_227(name):
    model = meta_model(name)
    layers = ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5"]
    sides: dict[str, tuple[int, int]] = {}
    for layer in layers:
        getattr(model, layer).register_forward_hook(
            lambda mod, inp, out, layer=layer: sides.__setitem__(layer, tuple(out.shape[2:]))
        )
    out = model(torch.empty(2, 3, 227, 227, device="meta"))
    assert [sides[k][0] for k in layers] == [55, 27, 27, 13, 13, 13, 13, 6]
    assert all(h == w for h, w in sides.values())
    assert tuple(out.shape) == (2, 1000)


def test_layers_follow_the_paper():
    m = meta_model("alexnet")
    assert (m.conv1.kernel_size, m.conv1.stride, m.conv1.padding) == ((11, 11), (4, 4), (0, 0))
    assert [getattr(m, f"conv{i}").out_channels for i in range(1, 6)] == [96, 256, 384, 384, 256]
    for lrn in (m.lrn1, m.lrn2):
        assert isinstance(lrn, LocalResponseNorm)
        assert (lrn.size, lrn.k, lrn.alpha, lrn.beta) == (5, 2.0, 1e-4, 0.75)
    for pool in (m.pool1, m.pool2, m.pool5):  # overlapping pooling, §3.4
        assert (pool.kernel_size, pool.stride) == (3, 2)
    assert m.drop6.p == m.drop7.p == 0.5
    assert [getattr(m, f"conv{i}").groups for i in range(1, 6)] == [1, 1, 1, 1, 1]
    m2 = meta_model("alexnet_2gpu")
    assert [getattr(m2, f"conv{i}").groups for i in range(1, 6)] == [1, 2, 1, 2, 2]


def test_2gpu_conv2_only_sees_its_own_gpu():
    """A conv2 kernel on GPU 1 (outputs 0-127) reads only GPU 1's conv1 maps (inputs 0-47)."""
    conv2 = meta_model("alexnet_2gpu").conv2.to_empty(device="cpu")
    nn.init.normal_(conv2.weight)
    nn.init.zeros_(conv2.bias)
    x = torch.randn(1, 96, 7, 7)
    y = x.clone()
    y[:, 48:] += torch.randn(1, 48, 7, 7)  # change only GPU 2's maps
    with torch.no_grad():
        a, b = conv2(x), conv2(y)
    torch.testing.assert_close(a[:, :128], b[:, :128])
    assert (a[:, 128:] - b[:, 128:]).abs().max() > 1e-3


@pytest.fixture(scope="module")
def alexnet_real():
    """A real AlexNet with narrow fc layers (hidden=64, still 590k fc6 weights for the statistics),
    so the test does not page in 250 MB; the conv tower and the init code are the paper's."""
    torch.manual_seed(0)
    return create_model("alexnet", hidden=64)


def test_paper_init(alexnet_real):
    m = alexnet_real
    for layer in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        w = getattr(m, layer).weight
        assert abs(w.std().item() - 0.01) < 0.01 * 0.05, layer
        assert abs(w.mean().item()) < 1e-3, layer
    biases = {layer: getattr(m, layer).bias for layer in ("conv1", "conv3", "fc8")}
    assert all(torch.all(b == 0) for b in biases.values())
    for layer in ("conv2", "conv4", "conv5", "fc6", "fc7"):  # §5: biases of 1
        assert torch.all(getattr(m, layer).bias == 1), layer


def test_torch_init_option_differs():
    m = create_model("alexnet", num_classes=10, init="torch", hidden=64)
    assert not torch.all(m.conv2.bias == 1)
    with pytest.raises(ValueError, match="init must be"):
        create_model("alexnet", init="xavier")


def test_head_and_features_compose(alexnet_real):
    m = alexnet_real.eval()
    x = torch.randn(2, 3, 67, 67)
    with torch.no_grad():
        f = m.forward_features(x)
        assert tuple(f.shape) == (2, 256, 1, 1)
        torch.testing.assert_close(m(x), m.forward_head(f))
        assert tuple(m.forward_head(f, pre_logits=True).shape) == (2, 64)


def test_alexnet_tv_loads_torchvision_and_gives_the_same_logits():
    torch.manual_seed(0)
    tv = torchvision.models.alexnet(weights=None).eval()
    ours = meta_model("alexnet_tv").eval()
    assert list(ours.state_dict()) == list(tv.state_dict())
    ours.load_state_dict(tv.state_dict(), strict=True, assign=True)  # meta -> tv's real tensors
    x = torch.randn(2, 3, 64, 64)  # near the minimum (63): the adaptive pool spreads 1x1 to 6x6
    with torch.no_grad():
        diff = (ours(x) - tv(x)).abs().max().item()
    assert diff <= 1e-5
    assert tv(x).abs().max() > 0  # the comparison is not between two zero vectors


@pytest.mark.parametrize("name", NAMES)
def test_min_input_size_is_tight_and_enforced(name):
    cfg = get_model_config(name)
    m = cfg.min_input_size
    model = meta_model(name)
    assert model.min_input_size == m
    assert tuple(model(torch.empty(1, 3, m, m, device="meta")).shape) == (1, 1000)
    with pytest.raises(InputShapeError, match=rf"{name} needs inputs of at least {m}x{m}"):
        model(torch.empty(1, 3, m - 1, m - 1, device="meta"))
    with pytest.raises(InputShapeError, match=rf"{name} needs inputs of at least {m}x{m}"):
        model.forward_features(torch.empty(1, 3, m - 1, m - 1, device="meta"))
    # forward_features checks too: switch the check off to probe the network itself
    model.check_input = lambda x: None
    with pytest.raises(RuntimeError):  # one pixel less and pool5 would have no output
        model.forward_features(torch.empty(1, 3, m - 1, m - 1, device="meta"))


@pytest.mark.parametrize("name", NAMES)
def test_fashion_mnist_size_runs_with_one_channel(name):
    cfg = get_model_config(name)
    assert cfg.small_input_mode == "resize" and cfg.small_input_size >= cfg.min_input_size
    s = cfg.small_input_size
    model = meta_model(name, num_classes=10, in_chans=1)
    assert tuple(model(torch.empty(2, 1, s, s, device="meta")).shape) == (2, 10)


@pytest.mark.parametrize("name", ["alexnet", "alexnet_2gpu"])
def test_fashion_mnist_size_trains(name):
    """A real forward and backward at the Fashion-MNIST size, one channel. The fc layers are
    narrowed (hidden=64) to keep it cheap: the conv geometry under test is unchanged."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=1, hidden=64)
    s = get_model_config(name).small_input_size
    out = model(torch.randn(2, 1, s, s))
    assert tuple(out.shape) == (2, 10) and torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.tensor([1, 2])).backward()
    assert model.conv1.weight.shape[1] == 1
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.conv1.weight.grad.abs().sum() > 0


def test_configs():
    cfg = get_model_config("alexnet")
    assert cfg.input_size == (3, 227, 227) and cfg.year == 2012 and "Krizhevsky" in cfg.paper
    assert get_model_config("alexnet_tv").input_size == (3, 224, 224)
    assert get_model_config("alexnet_2gpu").family == "alexnet"


@pytest.mark.parametrize("name", NAMES)
def test_fx_traceable(name):
    traced = torch.fx.symbolic_trace(meta_model(name).eval())
    calls = [n.target for n in traced.graph.nodes if n.op == "call_module"]
    assert calls[0] in ("conv1", "features.0") and calls[-1] in ("fc8", "classifier.6")


@pytest.mark.parametrize("name", ["alexnet", "zfnet"])
def test_he_init_keeps_the_signal_that_paper_init_loses(name):
    """Without BN, N(0, 0.01) shrinks every conv's output, so the logits start nearly constant across
    inputs (SGD then sits at ln 10 on Fashion-MNIST); init="he" keeps their spread, and trains."""
    torch.manual_seed(0)
    x = torch.randn(8, 1, 67, 67)
    spread = {}
    for init in ("paper", "he"):
        m = create_model(name, num_classes=10, in_chans=1, init=init).eval()
        with torch.no_grad():
            feats = m.forward_features(x)
            spread[init] = (float(feats.std(0).mean()), float(m.forward_head(feats).std(0).mean()))
    # measured at seed 0: conv5 spread 20x (alexnet) / 74x (zfnet) larger, logits 11x / 80x
    assert spread["he"][0] > 8 * spread["paper"][0] and spread["he"][1] > 8 * spread["paper"][1], spread
    m = create_model(name, init="he")
    with torch.no_grad():
        assert float(m.conv1.bias.abs().sum()) == 0.0 and abs(float(m.fc6.weight.std()) - 0.01) < 1e-3
    with pytest.raises(ValueError, match="'paper', 'he' or 'torch'"):
        create_model(name, init="xavier")
