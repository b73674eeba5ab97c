"""BN-Inception (Ioffe & Szegedy 2015, Fig. 5): widths, stride-2 modules, separable stem, count, cost."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.layers.inception import InceptionBlock
from cnnzoo.models.base import InputShapeError
from cnnzoo.registry import create_model, get_model_config

# Fig. 5, copied independently of the model file: (#1x1, #3x3 reduce, #3x3, double #3x3 reduce,
# double #3x3, pool, pool proj or None for "pass through", stride)
FIG5 = {
    "inception3a": (64, 64, 64, 64, 96, "avg", 32, 1),
    "inception3b": (64, 64, 96, 64, 96, "avg", 64, 1),
    "inception3c": (0, 128, 160, 64, 96, "max", None, 2),
    "inception4a": (224, 64, 96, 96, 128, "avg", 128, 1),
    "inception4b": (192, 96, 128, 96, 128, "avg", 128, 1),
    "inception4c": (160, 128, 160, 128, 160, "avg", 128, 1),
    "inception4d": (96, 128, 192, 160, 192, "avg", 128, 1),
    "inception4e": (0, 128, 192, 192, 256, "max", None, 2),
    "inception5a": (352, 192, 320, 160, 224, "avg", 128, 1),
    "inception5b": (352, 192, 320, 192, 224, "max", 128, 1),
}


def cbn(cin: int, cout: int, k: int = 1) -> int:
    """A bias-free conv and its BN's γ and β."""
    return k * k * cin * cout + 2 * cout


def fig5_count(num_classes: int = 1000, separable: bool = True) -> int:
    stem = (7 * 7 * 3 * 8 + 24 * 64 + 2 * 64) if separable else cbn(3, 64, 7)
    total, cin = stem + cbn(64, 64) + cbn(64, 192, 3), 192
    for n1, r3, n3, dr, d3, _, pp, _ in FIG5.values():
        total += (cbn(cin, n1) if n1 else 0) + cbn(cin, r3) + cbn(r3, n3, 3)
        total += cbn(cin, dr) + cbn(dr, d3, 3) + cbn(d3, d3, 3) + (cbn(cin, pp) if pp else 0)
        cin = n1 + n3 + d3 + (pp if pp else cin)
    return total + cin * num_classes + num_classes


def _meta(**kw) -> nn.Module:
    with torch.device("meta"):
        return create_model("bn_inception", **kw)


def test_param_count_from_fig5():
    assert sum(p.numel() for p in _meta().parameters()) == fig5_count() == 11_278_528
    assert sum(p.numel() for p in _meta(separable_stem=False).parameters()) == fig5_count(separable=False)
    assert sum(p.numel() for p in _meta(num_classes=10).parameters()) == fig5_count(10)


def test_widths_sum_the_columns_where_the_table_does_not():
    m = _meta()
    outs = {name: getattr(m, name).out_channels for name in FIG5}
    # the table prints 576, 576, 1024 for 4c, 4d, 4e; the branch columns give 608, 608, 1056
    assert (outs["inception4c"], outs["inception4d"], outs["inception4e"]) == (608, 608, 1056)
    assert [outs[n] for n in ("inception3a", "inception3b", "inception3c")] == [256, 320, 576]
    assert outs["inception5a"] == outs["inception5b"] == 1024
    assert m.inception5a.in_channels == 1056


def test_map_sizes_at_224_and_the_stride_2_modules():
    m = _meta().eval()
    sides = {}
    hooks = [
        getattr(m, n).register_forward_hook(lambda mod, a, o, n=n: sides.__setitem__(n, o.shape[-1]))
        for n in FIG5
    ]
    m(torch.empty(1, 3, 224, 224, device="meta"))
    for h in hooks:
        h.remove()
    assert [sides[n] for n in FIG5] == [28, 28, 14, 14, 14, 14, 14, 7, 7, 7]
    for name, row in FIG5.items():
        block = getattr(m, name)
        assert isinstance(block, InceptionBlock)
        pools = [p for p in block.modules() if isinstance(p, (nn.MaxPool2d, nn.AvgPool2d))]
        assert len(pools) == 1 and isinstance(pools[0], nn.MaxPool2d if row[5] == "max" else nn.AvgPool2d)
        assert pools[0].stride == row[7]
    # no 5x5 conv anywhere, no LRN, BN after every conv
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert all(max(c.kernel_size) <= 3 for c in convs if c is not m.conv1.conv_dw)
    assert sum(isinstance(b, nn.BatchNorm2d) for b in m.modules()) == len(convs) - 1  # dw+pw share one BN


def test_separable_stem_has_depth_multiplier_8():
    m = _meta()
    assert (
        m.conv1.conv_dw.groups == 3
        and m.conv1.conv_dw.out_channels == 24
        and m.conv1.conv_dw.stride == (2, 2)
    )
    assert m.conv1.conv_pw.kernel_size == (1, 1) and m.conv1.conv_pw.out_channels == 64
    assert _meta(separable_stem=False).conv1.conv.kernel_size == (7, 7)
    assert _meta(in_chans=1).conv1.conv_dw.out_channels == 8


def test_no_dropout_by_default_and_the_head():
    m = _meta()
    assert m.dropout.p == 0.0 and _meta(dropout=0.4).dropout.p == 0.4
    assert m.fc.in_features == 1024 and m.head_name == "fc"


def test_macs_close_to_the_published_two_billion_and_30_percent_above_googlenet():
    def macs(name: str) -> float:
        r = cnnzoo.analyze(name)
        return sum(row.flops for row in r.layers if row.type in ("conv", "linear")) / 2

    ours = macs("bn_inception")
    assert ours == pytest.approx(get_model_config("bn_inception").extra["macs"]["value"], rel=0.05)
    # the appendix: the two 3x3s raise the cost "by about 30%" over GoogLeNet's
    assert 1.2 < ours / macs("googlenet") < 1.4


def test_minimum_input_is_39():
    m = create_model("bn_inception").train()
    assert m.min_input_size == get_model_config("bn_inception").min_input_size == 39
    with pytest.raises(InputShapeError, match="at least 39x39"):
        m(torch.randn(2, 3, 38, 38))
    out = m(torch.randn(2, 3, 39, 39))
    out.sum().backward()
    assert m.forward_features(torch.randn(2, 3, 39, 39)).shape[-1] == 2  # the last map is 2x2


def test_odd_inputs_keep_the_stride_2_branches_aligned():
    m = _meta().eval()
    for side in (97, 101, 115):
        assert m(torch.empty(1, 3, side, side, device="meta")).shape == (1, 1000)
