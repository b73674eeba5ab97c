"""VGG: Table 1's counts (spec, by hand, torchvision), torchvision state_dict equivalence, the
configuration table, init options, dense evaluation and input sizes."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnzoo.layers.lrn import LocalResponseNorm
from cnnzoo.models.base import InputShapeError
from cnnzoo.models.vgg import CFGS, VGG, VGGDense
from cnnzoo.registry import create_model, get_model_config, list_models

TV_NAMES = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]
ALL_NAMES = [*TV_NAMES, "vgg11_lrn", "vgg16c", "vgg16c_bn"]


def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered_names():
    assert set(ALL_NAMES) <= set(list_models("vgg*"))


@pytest.mark.parametrize(
    "name, count",
    [
        ("vgg11", 132_863_336),
        ("vgg11_lrn", 132_863_336),  # LRN has no parameters
        ("vgg13", 133_047_848),
        ("vgg16", 138_357_544),
        ("vgg19", 143_667_240),
    ],
)
def test_param_counts_from_the_spec(name, count):
    model = meta_model(name)
    assert all(p.is_meta for p in model.parameters())  # the builder allocates nothing on meta
    assert n_params(model) == count


def test_vgg16c_param_count_by_hand():
    """The paper rounds C to "134 M". Exactly:"""

    def conv(k, cin, cout):
        return k * k * cin * cout + cout

    stage1 = conv(3, 3, 64) + conv(3, 64, 64)  # 1,792 + 36,928
    stage2 = conv(3, 64, 128) + conv(3, 128, 128)  # 73,856 + 147,584
    stage3 = conv(3, 128, 256) + conv(3, 256, 256) + conv(1, 256, 256)  # 295,168 + 590,080 + 65,792
    stage4 = conv(3, 256, 512) + conv(3, 512, 512) + conv(1, 512, 512)  # 1,180,160 + 2,359,808 + 262,656
    stage5 = conv(3, 512, 512) + conv(3, 512, 512) + conv(1, 512, 512)  # 2,359,808 * 2 + 262,656
    convs = stage1 + stage2 + stage3 + stage4 + stage5
    assert convs == 9_996_096
    fcs = (512 * 7 * 7 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
    assert fcs == 123_642_856
    assert convs + fcs == 133_638_952
    assert round((convs + fcs) / 1e6) == 134  # the paper's figure
    assert n_params(meta_model("vgg16c")) == 133_638_952
    # D replaces each 1x1 by a 3x3: 8 * 256^2 + 8 * 512^2 * 2 more weights
    assert 133_638_952 + 8 * 256**2 + 2 * 8 * 512**2 == 138_357_544
    # with batch norm: gamma and beta for every conv channel
    widths = 2 * 64 + 2 * 128 + 3 * 256 + 3 * 512 + 3 * 512
    assert n_params(meta_model("vgg16c_bn")) == 133_638_952 + 2 * widths


@pytest.mark.parametrize("name", TV_NAMES)
def test_param_counts_match_torchvision(name):
    with torch.device("meta"):
        tv = getattr(torchvision.models, name)(weights=None)
    assert n_params(meta_model(name)) == n_params(tv)
    assert n_params(meta_model(name, num_classes=10)) == n_params(tv) - 4097 * 990


@pytest.fixture(scope="module")
def classifier_state() -> dict[str, torch.Tensor]:
    """Random fc6/fc7/fc8 weights, shared by every configuration (they all end in 512×7×7)."""
    g = torch.Generator().manual_seed(0)
    sd = {}
    for i, (fin, fout) in zip((0, 3, 6), [(25088, 4096), (4096, 4096), (4096, 1000)], strict=True):
        sd[f"classifier.{i}.weight"] = torch.randn(fout, fin, generator=g).mul_((2 / fin) ** 0.5)
        sd[f"classifier.{i}.bias"] = torch.randn(fout, generator=g).mul_(0.1)
    return sd


def random_torchvision(name: str, classifier_state: dict[str, torch.Tensor]) -> nn.Module:
    """``torchvision.models.<name>(weights=None)`` with random weights and BN statistics."""
    with torch.device("meta"):
        tv = getattr(torchvision.models, name)(weights=None)
    g = torch.Generator().manual_seed(1)
    sd = {}
    for k, v in tv.state_dict().items():
        if k in classifier_state:
            sd[k] = classifier_state[k]
        elif k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(3)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(v.shape, generator=g) + 0.5
        elif v.dim() == 4:  # conv weight
            sd[k] = torch.randn(v.shape, generator=g).mul_((2 / v[0].numel()) ** 0.5)
        else:  # conv bias, BN weight/bias/running_mean
            sd[k] = torch.randn(v.shape, generator=g) * 0.1 + (1.0 if k.endswith("1.weight") else 0.0)
    tv.load_state_dict(sd, strict=True, assign=True)
    return tv.eval()


@pytest.mark.parametrize("name", TV_NAMES)
def test_loads_torchvision_state_dict_and_gives_the_same_logits(name, classifier_state):
    tv = random_torchvision(name, classifier_state)
    ours = meta_model(name)
    assert list(ours.state_dict()) == list(tv.state_dict())  # same keys, same order
    ours.load_state_dict(tv.state_dict(), strict=True, assign=True)
    ours.eval()
    side = 64 if name == "vgg11_bn" else 32  # 64: a 2×2 map that the adaptive pool really averages
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = ours(x), tv(x)
    assert (a - b).abs().max().item() <= 1e-5
    assert b.std() > 1e-3  # a real comparison, not of constant outputs


def test_config_table():
    def kernels(name):
        return [m.kernel_size[0] for m in meta_model(name).features if isinstance(m, nn.Conv2d)]

    assert kernels("vgg11") == [3] * 8
    assert kernels("vgg13") == [3] * 10
    assert kernels("vgg16c") == [3, 3, 3, 3, 3, 3, 1, 3, 3, 1, 3, 3, 1]  # 1×1 last in stages 3-5
    assert kernels("vgg16") == [3] * 13
    assert kernels("vgg19") == [3] * 16
    assert sum(isinstance(m, nn.MaxPool2d) for m in meta_model("vgg16").features) == 5
    lrn = meta_model("vgg11_lrn").features
    assert isinstance(lrn[2], LocalResponseNorm)  # conv3-64, ReLU, LRN, maxpool
    assert (lrn[2].size, lrn[2].k, lrn[2].alpha, lrn[2].beta) == (5, 2.0, 1e-4, 0.75)
    assert isinstance(lrn[3], nn.MaxPool2d)
    bn = meta_model("vgg11_bn").features
    assert [type(m) for m in bn[:4]] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]
    assert get_model_config("vgg16c").extra["config"] == "C"
    assert set(CFGS) == {"A", "A-LRN", "B", "C", "D", "E"}


@pytest.mark.parametrize("init, conv_std", [("kaiming", (2 / (128 * 9)) ** 0.5), ("paper", 0.1),
                                            ("glorot", (2 / (64 * 9 + 128 * 9)) ** 0.5)])  # fmt: skip
def test_init_options(init, conv_std):
    torch.manual_seed(0)
    m = VGG([64, "M", 128, "M"], num_classes=10, hidden=512, init=init, batch_norm=True)
    conv2 = m.features[4]
    assert conv2.weight.shape == (128, 64, 3, 3)
    assert abs(conv2.weight.std().item() - conv_std) < 0.03 * conv_std
    assert torch.all(conv2.bias == 0) and torch.all(m.classifier[0].bias == 0)
    assert torch.all(m.features[1].weight == 1) and torch.all(m.features[1].bias == 0)
    if init == "kaiming":  # torchvision's fc init
        assert abs(m.classifier[0].weight.std().item() - 0.01) < 0.001
    with pytest.raises(ValueError, match="init must be"):
        VGG(CFGS["A"], init="he")


@pytest.fixture(scope="module")
def vgg11_real(classifier_state):
    ours = meta_model("vgg11")
    ours.load_state_dict(random_torchvision("vgg11", classifier_state).state_dict(), assign=True)
    return ours.eval()


def test_dense_evaluation_equals_the_net_at_224(vgg11_real):
    dense = vgg11_real.to_dense().eval()
    assert isinstance(dense, VGGDense)
    assert dense.classifier[0].kernel_size == (7, 7) and dense.classifier[6].kernel_size == (1, 1)
    assert n_params(dense) == 132_863_336
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = vgg11_real(x), dense(x)
    assert a.std() > 1e-3
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_dense_form_shares_the_weights(vgg11_real):
    dense = vgg11_real.to_dense()
    assert dense.features is vgg11_real.features
    fc6, conv6 = vgg11_real.classifier[0], dense.classifier[0]
    assert conv6.weight.data_ptr() == fc6.weight.data_ptr()  # a view, not a 400 MB copy
    # fc6 reads the 512×7×7 map flattened row-major: weight[o, c*49 + 7*i + j] = kernel[o, c, i, j]
    assert conv6.weight[5, 3, 2, 4] == fc6.weight[5, 3 * 49 + 2 * 7 + 4]


def test_dense_evaluation_runs_on_larger_images_and_averages_the_score_map():
    """On a narrow VGG (same code path, cheap): 224 agrees with the net, 256×288 gives a 2×3 map."""
    torch.manual_seed(0)
    net = VGG([8, "M", 8, "M", 16, "M", 16, "M", 16, "M"], num_classes=5, hidden=32).eval()
    dense = net.to_dense().eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(dense(x), net(x), rtol=1e-5, atol=1e-6)
        big = torch.randn(2, 3, 256, 288)
        scores = dense.score_map(big)
        logits = dense(big)
    assert tuple(scores.shape) == (2, 5, 2, 3)  # (256/32 - 6, 288/32 - 6)
    torch.testing.assert_close(logits, scores.mean(dim=(2, 3)))
    assert not torch.allclose(scores[..., 0, 0], scores[..., 1, 2])  # positions really differ
    assert tuple(dense.forward_head(dense.forward_features(big), pre_logits=True).shape) == (2, 32)


def test_dense_form_needs_224():
    dense = meta_model("vgg16").to_dense()
    assert dense.min_input_size == 224
    assert tuple(dense(torch.empty(1, 3, 224, 224, device="meta")).shape) == (1, 1000)
    with pytest.raises(InputShapeError, match=r"vgg16 needs inputs of at least 224x224"):
        dense(torch.empty(1, 3, 223, 223, device="meta"))
    assert tuple(dense(torch.empty(1, 3, 384, 384, device="meta")).shape) == (1, 1000)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_min_input_size_is_tight_and_enforced(name):
    s = get_model_config(name).min_input_size
    assert s == 32
    model = meta_model(name)  # batch 2: batch norm cannot train on one 1×1 map
    assert tuple(model(torch.empty(2, 3, s, s, device="meta")).shape) == (2, 1000)
    with pytest.raises(InputShapeError, match=rf"{name} needs inputs of at least 32x32"):
        model(torch.empty(2, 3, s - 1, s - 1, device="meta"))
    # forward_features checks too: switch the check off to probe the network itself
    model.check_input = lambda x: None
    with pytest.raises(RuntimeError):
        model.forward_features(torch.empty(2, 3, s - 1, s - 1, device="meta"))


@pytest.mark.parametrize("name", ["vgg11_lrn", "vgg16c_bn"])
def test_fashion_mnist_size_trains_with_one_channel(name):
    """Real forward and backward at 32×32, one channel; fc layers narrowed (hidden=64) for speed."""
    cfg = get_model_config(name)
    assert (cfg.small_input_size, cfg.small_input_mode) == (32, "resize")
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=1, hidden=64)
    out = model(torch.randn(2, 1, 32, 32))
    assert tuple(out.shape) == (2, 10)
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 9])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    full = meta_model(name, num_classes=10, in_chans=1)
    assert tuple(full(torch.empty(2, 1, 32, 32, device="meta")).shape) == (2, 10)
    assert tuple(full.forward_head(full.forward_features(torch.empty(2, 1, 32, 32, device="meta")),
                                   pre_logits=True).shape) == (2, 4096)  # fmt: skip


def test_fx_traceable():
    """The analysis tools trace models with torch.fx: no call may go to a module not installed."""
    for model in (meta_model("vgg16c_bn"), meta_model("vgg11_lrn").to_dense()):
        traced = torch.fx.symbolic_trace(model.eval())
        targets = {n.target for n in traced.graph.nodes if n.op == "call_module"}
        assert {"classifier.0", "classifier.3", "classifier.6"} <= targets
