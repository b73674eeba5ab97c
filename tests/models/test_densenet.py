"""DenseNet (Huang et al. CVPR 2017): counts, MACs, the memory-efficient form, torchvision's keys."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnzoo import create_model, get_model_config, list_models
from cnnzoo.analysis import analyze
from cnnzoo.errors import ConfigError
from cnnzoo.models.densenet import DenseLayer, DenseNet, Transition

TV = ["densenet121", "densenet161", "densenet169", "densenet201"]
CIFAR = ["densenet40_k12", "densenet_bc100_k12", "densenet_bc250_k24", "densenet_bc190_k40"]
_BLOCKS = {  # Table 1 (161: the authors' release)
    "densenet121": (6, 12, 24, 16),
    "densenet161": (6, 12, 36, 24),
    "densenet169": (6, 12, 32, 32),
    "densenet201": (6, 12, 48, 32),
    "densenet264": (6, 12, 64, 48),
}


def by_hand(blocks, k, init, *, bc=True, cifar=False, classes=1000, in_chans=3):
    """The count from the paper's layout: stem, dense layers (BN + convs), transitions, BN, fc."""
    total = 9 * in_chans * init if cifar else 49 * in_chans * init + 2 * init  # CIFAR: a bare 3x3 conv
    c = init
    for i, n in enumerate(blocks):
        for _ in range(n):
            if bc:  # BN(c) + 1x1 c->4k + BN(4k) + 3x3 4k->k
                total += 2 * c + c * 4 * k + 2 * 4 * k + 9 * 4 * k * k
            else:  # BN(c) + 3x3 c->k
                total += 2 * c + 9 * c * k
            c += k
        if i < len(blocks) - 1:
            out = c // 2 if bc else c
            total += 2 * c + c * out  # BN + 1x1
            c = out
    return total + 2 * c + c * classes + classes


def test_registry_and_configs():
    assert set(TV + CIFAR + ["densenet264"]) <= set(list_models())
    for name in TV + ["densenet264"]:
        cfg = get_model_config(name)
        assert (cfg.input_size, cfg.num_classes, cfg.min_input_size, cfg.year) == (
            (3, 224, 224),
            1000,
            61,
            2017,
        )
        assert "Densely Connected" in cfg.paper and cfg.extra["reported"]["dataset"] == "imagenet"
    for name in CIFAR:
        cfg = get_model_config(name)
        assert (cfg.input_size, cfg.num_classes, cfg.min_input_size) == ((3, 32, 32), 10, 8)
        assert cfg.small_input_mode == "pad" and cfg.extra["reported"]["dataset"] == "cifar10+"


@pytest.mark.parametrize("name", TV)
def test_counts_equal_torchvision_and_the_layout(name, meta_count):
    tv = meta_count(lambda: getattr(torchvision.models, name)())
    k, init = (48, 96) if name == "densenet161" else (32, 64)
    assert meta_count(name) == tv == by_hand(_BLOCKS[name], k, init)


def test_densenet264_by_hand(meta_count):
    assert meta_count("densenet264") == by_hand(_BLOCKS["densenet264"], 32, 64) == 33_337_704  # 33.3 M


@pytest.mark.parametrize(
    ("name", "blocks", "k", "bc", "paper_m"),
    [
        ("densenet40_k12", (12, 12, 12), 12, False, 1.0),
        ("densenet_bc100_k12", (16, 16, 16), 12, True, 0.8),
        ("densenet_bc250_k24", (41, 41, 41), 24, True, 15.3),
        ("densenet_bc190_k40", (31, 31, 31), 40, True, 25.6),
    ],
)
def test_cifar_counts_round_to_table2(name, blocks, k, bc, paper_m, meta_count):
    # L = 3 · layers · (2 for BC, 1 otherwise) + 4 (stem conv, two transitions, fc)
    depth = int(name.split("_k")[0].removeprefix("densenet").removeprefix("_bc"))
    assert depth == 3 * blocks[0] * (2 if bc else 1) + 4
    exact = by_hand(blocks, k, 2 * k if bc else 16, bc=bc, cifar=True, classes=10)
    assert meta_count(name) == exact
    assert round(exact / 1e6, 1) == paper_m


def _conv_linear_macs(report) -> float:
    return sum(r.flops for r in report.layers if r.type in ("conv", "linear")) / 2


@pytest.mark.parametrize("name", TV)
def test_macs_at_224_equal_torchvision(name):
    ops = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]  # GMACs
    macs = _conv_linear_macs(analyze(name))
    assert round(macs / 1e9, 3) == ops
    assert get_model_config(name).extra["macs"]["value"] == pytest.approx(ops * 1e9)


def test_analyzer_rows_of_a_dense_block():
    """Concatenations cost nothing and widen by k; a layer's field grows by its 3x3 conv (8 px at 1/4)."""
    rows = {r.name: r for r in analyze("densenet121").layers}
    cats = [rows[f"denseblock1.denselayer{i}.concat"] for i in range(1, 7)]
    assert [r.output_shape[0] for r in cats] == [64 + 32 * i for i in range(6)]
    assert all(r.flops == 0 and r.type == "concat" for r in cats)
    # the pool ends the stem at field 11, jump 4; each layer's 3x3 adds 2 · 4 = 8
    assert [r.receptive_field for r in cats] == [11 + 8 * i for i in range(6)]
    conv2 = rows["denseblock1.denselayer3.conv2"]  # 3x3, 128 -> 32 on 56x56
    assert conv2.flops == 2 * 56 * 56 * 32 * 128 * 9
    folded = {r.name: r for r in analyze("densenet121", depth=1).layers}
    assert folded["denseblock1"].type == "stage" and folded["denseblock1"].detail == "layers 6, growth 32"
    assert folded["denseblock1"].receptive_field == 11 + 8 * 6
    assert folded["transition1"].type == "block" and folded["transition1"].detail == "compression 0.5"
    layer = {r.name: r for r in analyze("densenet121", depth=2).layers}["denseblock2.denselayer1"]
    assert layer.type == "block" and layer.detail == "growth 32, bottleneck 128"
    basic = {r.name: r for r in analyze("densenet40_k12", depth=2).layers}["denseblock1.denselayer1"]
    assert basic.detail == "growth 12"


def test_layout_of_the_basic_and_bc_nets():
    with torch.device("meta"):
        basic, bc, im = (
            create_model("densenet40_k12"),
            create_model("densenet_bc100_k12"),
            create_model("densenet121"),
        )
    first = basic.denseblock1.denselayer1
    assert first.conv1.kernel_size == (3, 3) and first.conv2 is None  # H_l = BN-ReLU-3x3
    assert basic.transition1.conv.out_channels == basic.transition1.conv.in_channels == 16 + 12 * 12
    assert bc.denseblock1.denselayer1.conv1.out_channels == 48  # the 1x1 bottleneck to 4k
    assert bc.transition1.conv.out_channels == (24 + 16 * 12) // 2  # compression 0.5
    assert not hasattr(bc, "norm0") and bc.conv0.kernel_size == (3, 3)  # CIFAR: a bare 3x3 stem
    assert (
        im.conv0.kernel_size == (7, 7) and im.conv0.out_channels == 64 and isinstance(im.pool0, nn.MaxPool2d)
    )
    assert [f.module for f in im.feature_info] == ["denseblock1", "denseblock2", "denseblock3", "relu5"]
    assert [f.reduction for f in im.feature_info] == [4, 8, 16, 32]
    assert im.num_features == 1024 and basic.num_features == 16 + 36 * 12


def test_memory_efficient_gives_the_same_outputs_gradients_and_statistics():
    """Pleiss et al. 2017: the checkpointed layers recompute in backward, with the same results."""
    torch.manual_seed(0)
    kw = dict(growth_rate=8, num_classes=10)
    plain = create_model("densenet_bc100_k12", **kw).train()
    lean = create_model("densenet_bc100_k12", memory_efficient=True, **kw).train()
    lean.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 16, 16)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    y = torch.tensor([0, 1, 2, 3])
    outs = []
    for model, xi in ((plain, xs[0]), (lean, xs[1])):
        out = model(xi)
        nn.functional.cross_entropy(out, y).backward()
        outs.append(out.detach())
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(xs[1].grad, xs[0].grad, rtol=1e-4, atol=1e-6)
    grads = dict(plain.named_parameters())
    for n, p in lean.named_parameters():
        torch.testing.assert_close(p.grad, grads[n].grad, rtol=1e-4, atol=1e-6, msg=n)
    # the recomputation must not update BN's running averages a second time
    bufs = dict(plain.named_buffers())
    for n, b in lean.named_buffers():
        torch.testing.assert_close(b, bufs[n], rtol=1e-5, atol=1e-6, msg=n)
    assert lean.denseblock1.denselayer1.norm1.num_batches_tracked.item() == 1


def _saved_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for backward (a tensor saved twice counts once)."""
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum()
    return sum(seen.values())


def test_memory_efficient_saves_fewer_tensors_for_backward():
    torch.manual_seed(0)
    plain = create_model("densenet_bc100_k12", growth_rate=8).train()
    lean = create_model("densenet_bc100_k12", growth_rate=8, memory_efficient=True).train()
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    # the plain form saves every layer's concatenation and its BN output: quadratic in depth
    assert _saved_bytes(lean, x) < 0.5 * _saved_bytes(plain, x)
    with torch.no_grad():  # without autograd nothing is checkpointed: the plain path runs
        assert torch.equal(lean.eval()(x), lean(x))


def test_dense_layer_computes_the_paper_function():
    torch.manual_seed(0)
    layer = DenseLayer(16, 12, bn_size=4).eval()
    for m in layer.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    a, b = torch.randn(2, 10, 5, 5), torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        h = torch.cat([a, b], 1)
        h = layer.conv1(torch.relu(layer.norm1(h)))
        h = layer.conv2(torch.relu(layer.norm2(h)))
        assert torch.allclose(layer([a, b]), h, atol=1e-6)
    t = Transition(40, 20)
    assert t(torch.randn(1, 40, 7, 7)).shape == (1, 20, 3, 3)  # the 2x2 pool floors odd sides


@pytest.mark.parametrize("bad", [0, -12, 2.5, True, "32"])
def test_bad_growth_rate_is_one_clear_line(bad):
    with pytest.raises(ConfigError, match=r"growth_rate k .* must be an int of at least 1") as e:
        create_model("densenet121", growth_rate=bad)
    assert "\n" not in str(e.value) and isinstance(e.value, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(compression=0.0), "compression"),
        (dict(compression=1.5), "compression"),
        (dict(bn_size=0), "bn_size"),
        (dict(dropout=1.0), "dropout"),
        (dict(num_init_features=0), "num_init_features"),
    ],
)
def test_bad_options_are_one_clear_line(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        create_model("densenet_bc100_k12", **kwargs)
    with pytest.raises(ConfigError, match="block_config"):
        DenseNet(())


def test_dropout_follows_every_conv_but_the_first():
    m = create_model("densenet_bc100_k12", dropout=0.2)
    layer = m.denseblock1.denselayer1
    assert layer.drop1.p == layer.drop2.p == 0.2 and m.transition1.dropout.p == 0.2
    assert not any(isinstance(x, nn.Dropout) for x in create_model("densenet_bc100_k12").modules())


@pytest.mark.parametrize("name", TV)
def test_loads_torchvision_files(name, library_roundtrip):
    library_roundtrip(getattr(torchvision.models, name)(), name, 64)


def test_loads_old_style_torchvision_keys(library_roundtrip):
    """Files saved before torchvision 0.3 spell ``norm.1``, ``conv.2``: accepted, as torchvision does."""
    import re

    old = lambda k: re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k)
    assert (
        old("features.denseblock1.denselayer1.norm1.weight")
        == "features.denseblock1.denselayer1.norm.1.weight"
    )
    library_roundtrip(torchvision.models.densenet121(), "densenet121", 64, rename=old)


def test_memory_efficient_model_loads_the_same_file(tmp_path):
    ref = torchvision.models.densenet121().eval()
    path = tmp_path / "d.pth"
    torch.save(ref.state_dict(), path)
    ours = create_model("densenet121", weights=path, memory_efficient=True).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)
