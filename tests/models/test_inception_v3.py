"""Inception v3 (Szegedy et al. CVPR 2016): Table 1's layout, the documented fixes, and the released
network as torchvision carries it (its files load, the logits match)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision
from torch import nn

from cnnzoo.layers.inception import InceptionBlock
from cnnzoo.models._inception import InceptionOutputs
from cnnzoo.models.base import InputShapeError
from cnnzoo.registry import create_model, get_model_config
from cnnzoo.weights import WeightsWarning


def cbn(cin: int, cout: int, kh: int = 1, kw: int | None = None) -> int:
    """A bias-free conv and its BN's γ and β."""
    return kh * (kh if kw is None else kw) * cin * cout + 2 * cout


def paper_count(aux: bool = True, num_classes: int = 1000) -> int:
    """Table 1 with Figs. 5, 6, 7, 8, 10 and the docstring's widths, independently of the model file."""
    stem = (
        cbn(3, 32, 3) + cbn(32, 32, 3) + cbn(32, 64, 3) + cbn(64, 80, 3) + cbn(80, 192, 3) + cbn(192, 288, 3)
    )
    fig5 = 3 * (
        cbn(288, 64)
        + cbn(288, 48)
        + cbn(48, 64, 3)
        + cbn(288, 64)
        + cbn(64, 96, 3)
        + cbn(96, 96, 3)
        + cbn(288, 64)
    )
    red_a = cbn(288, 192) + cbn(192, 384, 3) + cbn(288, 64) + cbn(64, 96, 3) + cbn(96, 96, 3)
    fig6 = sum(
        cbn(768, 192) + cbn(768, c) + cbn(c, c, 1, 7) + cbn(c, 192, 7, 1)
        + cbn(768, c) + 3 * cbn(c, c, 1, 7) + cbn(c, 192, 7, 1) + cbn(768, 192)
        for c in (128, 160, 160, 160, 192)
    )  # fmt: skip
    red_b = cbn(768, 192) + cbn(192, 320, 3) + cbn(768, 192) + cbn(192, 192, 3) + cbn(192, 192, 3)
    fig7 = sum(
        cbn(c, 320) + cbn(c, 384) + 2 * cbn(384, 384, 1, 3) + cbn(c, 448) + cbn(448, 384, 3)
        + 2 * cbn(384, 384, 1, 3) + cbn(c, 192)
        for c in (1280, 2048)
    )  # fmt: skip
    head = 2048 * num_classes + num_classes
    fig8 = cbn(768, 128) + 3200 * 1024 + 2 * 1024 + 1024 * num_classes + num_classes  # BN-auxiliary fc
    return stem + fig5 + red_a + fig6 + red_b + fig7 + head + (fig8 if aux else 0)


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# -- the paper's layout -------------------------------------------------------------------------------


def test_paper_count_from_table1(meta_model):
    assert _count(meta_model("inception_v3")) == paper_count()
    assert _count(meta_model("inception_v3", aux_logits=False)) == paper_count(aux=False)
    assert _count(meta_model("inception_v3", num_classes=10)) == paper_count(num_classes=10)
    # the abstract's "less than 25 million": 25.5 M, see the docstring (the fifth 17x17 module)
    assert 25.0e6 < paper_count(aux=False) < 26.0e6


def test_table1_grid_sizes_and_widths(meta_model):
    m = meta_model("inception_v3").eval()
    seen = {}
    for name, mod in m.named_children():
        mod.register_forward_hook(lambda mod, a, o, n=name: seen.__setitem__(n, tuple(o.shape[1:])))
    m(torch.empty(1, 3, 299, 299, device="meta"))
    # Table 1's "input size" column, each row's input being the previous row's output
    assert [seen[n] for n in ("conv1", "conv2", "conv3", "pool1", "conv4", "conv5", "conv6")] == [
        (32, 149, 149), (32, 147, 147), (64, 147, 147), (64, 73, 73), (80, 71, 71), (192, 35, 35), (288, 35, 35)
    ]  # fmt: skip
    assert seen["inception_a3"] == (288, 35, 35)
    assert seen["reduction_a"] == (768, 17, 17) and seen["inception_b5"] == (768, 17, 17)
    assert seen["reduction_b"] == (1280, 8, 8) and seen["inception_c2"] == (2048, 8, 8)
    names = [n for n, _ in m.named_children()]
    assert sum(n.startswith("inception_a") for n in names) == 3
    assert sum(n.startswith("inception_b") for n in names) == 5  # Table 1, not the release's 4
    assert sum(n.startswith("inception_c") for n in names) == 2


def test_figure_modules(meta_model):
    m = meta_model("inception_v3")
    kernels = lambda block: [tuple(c.kernel_size) for c in block.modules() if isinstance(c, nn.Conv2d)]  # noqa: E731
    assert (5, 5) not in kernels(m.inception_a1)  # Fig. 5: no 5x5 left
    assert kernels(m.inception_a1).count((3, 3)) == 3
    # Fig. 6: both chains start with a 1x7
    b = m.inception_b1
    assert b.branch1[1].conv.kernel_size == (1, 7) and b.branch2[1].conv.kernel_size == (1, 7)
    assert [c.conv.kernel_size for c in b.branch2[1:]] == [(1, 7), (7, 1), (1, 7), (7, 1)]
    # Fig. 10: a 1x1 before each stride-2 conv branch; Fig. 7: split ends
    for red in (m.reduction_a, m.reduction_b):
        assert red.branch0[0].conv.kernel_size == (1, 1) and red.branch0[1].conv.stride == (2, 2)
        assert isinstance(red.branch2[0], nn.MaxPool2d)
    assert [n for n, _ in m.inception_c1.branch1[1].named_children()] == ["a", "b"]
    assert all(isinstance(getattr(m, f"inception_a{i}"), InceptionBlock) for i in (1, 2, 3))


def test_paper_aux_head_is_fig8_with_bn_in_the_fc(meta_model):
    m = meta_model("inception_v3")
    assert m.aux_head_names == ("aux",) and m.aux.fc1.out_features == 1024 and m.aux.fc1.bias is None
    assert isinstance(m.aux.bn1, nn.BatchNorm1d) and m.aux.conv.conv.out_channels == 128
    names = [n for n, _ in m.named_children()]
    assert names.index("aux") == names.index("inception_b5") + 1  # on the last 17x17 layer
    assert m.dropout.p == 0.2


def test_training_returns_aux_logits_and_the_loss_adds_0_4_of_them():
    torch.manual_seed(0)
    m = create_model("inception_v3", num_classes=5).train()
    x, y = torch.randn(2, 3, 107, 107), torch.tensor([1, 3])
    out = m(x)
    assert isinstance(out, InceptionOutputs) and out.logits.shape == out.aux_logits.shape == (2, 5)
    ce = nn.functional.cross_entropy
    assert torch.allclose(m.loss(out, y), ce(out.logits, y) + 0.4 * ce(out.aux_logits, y))
    assert m.eval()(x).shape == (2, 5)


def test_macs_and_the_papers_printed_cost(meta_model, macs):
    paper, release = macs("inception_v3", 299), macs("inception_v3_tv", 299)
    assert release == 5_713_216_096  # torchvision's published 5.713 G
    # Table 3 prints 4.8 G, below even the release; Table 1's stem (its 3x3 conv to 288 channels at
    # 35x35 alone is 0.61 G) and the fifth 17x17 module make 6.27 G (see the module docstring)
    assert release < paper < 1.12 * release
    assert paper > get_model_config("inception_v3").extra["macs"]["value"] == 4.8e9
    assert paper == macs(
        meta_model("inception_v3", aux_logits=False), 299
    )  # the aux head does not run in eval


@pytest.mark.parametrize("name", ["inception_v3", "inception_v3_tv"])
def test_minimum_inputs(name, meta_model):
    main = 107
    with_aux = get_model_config(name).min_input_size
    assert with_aux == (299 if name.endswith("_tv") else 107)
    m = meta_model(name, aux_logits=False)
    assert m.min_input_size == main
    with pytest.raises(InputShapeError, match="at least 107x107"):
        m(torch.empty(1, 3, 106, 106, device="meta"))
    if with_aux > main:
        with pytest.raises(InputShapeError, match="299x299 pixels with its auxiliary.*aux_logits=False"):
            meta_model(name)(torch.empty(1, 3, 298, 298, device="meta"))


# -- the released network, torchvision's ----------------------------------------------------------


def _tv_net(aux: bool = True, transform_input: bool = False) -> nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tv = torchvision.models.inception_v3(
            weights=None, aux_logits=aux, init_weights=True, transform_input=transform_input
        )
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # eval-mode BN that is not the identity
        for mod in tv.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(1 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.2 * torch.randn(mod.bias.shape, generator=g))
                mod.running_mean.copy_(0.2 * torch.randn(mod.running_mean.shape, generator=g))
                mod.running_var.uniform_(0.5, 2.0, generator=g)
    return tv.eval()


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    """Equal up to float rounding, relative to the logits' scale (torchvision's std-0.1 init makes
    them large)."""
    return a.shape == b.shape and b.abs().max() > 0 and ((a - b).abs().max() / b.abs().max()).item() < tol


def test_tv_count_and_macs_are_torchvisions(meta_model, macs):
    meta = torchvision.models.get_model_weights("inception_v3").DEFAULT.meta
    assert _count(meta_model("inception_v3_tv")) == meta["num_params"] == 27_161_264
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tv = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    assert _count(meta_model("inception_v3_tv", aux_logits=False)) == _count(tv)
    assert round(macs("inception_v3_tv", 299) / 1e9, 3) == meta["_ops"]
    assert get_model_config("inception_v3_tv").extra["macs"]["value"] == meta["_ops"] * 1e9


@pytest.mark.slow
def test_tv_loads_torchvisions_file_and_the_logits_match(tmp_path):
    tv = _tv_net(aux=True)
    path = tmp_path / "inception_v3.pth"
    torch.save(tv.state_dict(), path)
    ours = create_model("inception_v3_tv", weights=path).eval()
    x = torch.randn(1, 3, 299, 299, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = ours(x), tv(x)
    assert _close(a, b)
    # training mode: the aux logits come back as torchvision's InceptionOutputs do
    ours.train(), tv.train()
    torch.manual_seed(3)
    oa = ours(x.repeat(2, 1, 1, 1))
    torch.manual_seed(3)
    ob = tv(x.repeat(2, 1, 1, 1))
    assert oa._fields == ob._fields == ("logits", "aux_logits")
    assert _close(oa.aux_logits, ob.aux_logits, 1e-4)


def test_tv_loads_without_aux_and_with_transform_input(tmp_path):
    tv = _tv_net(aux=False, transform_input=True)
    path = tmp_path / "no_aux.pth"
    torch.save(tv.state_dict(), path)
    ours = create_model("inception_v3_tv", weights=path, aux_logits=False, transform_input=True).eval()
    x = torch.randn(2, 3, 107, 107, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert _close(ours(x), tv(x))
    # the same file into the model with AuxLogits: they stay freshly initialised, and it says so
    with pytest.warns(WeightsWarning, match="has no AuxLogits.*aux_logits=False"):
        create_model("inception_v3_tv", weights=path)


def test_min_input_side_is_the_smallest_side_that_fits():
    """The bisection finds the first side whose maps all fit, as a scan from 1 would, with and
    without the auxiliary head's constraint."""
    from cnnzoo.models import inception_v3
    from cnnzoo.models._inception import map_sides, min_input_side

    v = inception_v3.LAYOUTS["inception_v3"]
    rows = v.rows
    for spec in (None, v.aux):
        side = min_input_side(rows, aux=spec)

        def fits(s, spec=spec):
            m = map_sides(rows, s)
            return min(m[rows[-1].name]) >= 2 and (spec is None or min(m[spec.tap]) >= spec.min_side)

        assert fits(side) and not fits(side - 1)
        assert not any(fits(s) for s in range(1, side))
