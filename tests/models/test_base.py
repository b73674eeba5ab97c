"""The base interface itself: stage outputs, stop_early, indices, classifier resets, stage groups,
input checks on every entry point, and the validation of num_classes and in_chans."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from cnnzoo import create_model
from cnnzoo.errors import CnnzooError, ConfigError
from cnnzoo.models.base import (
    FeatureInfo,
    InputShapeError,
    ModelInterfaceError,
    StageIndexError,
    ZooModel,
)
from cnnzoo.models.resnet import ResNet


class Tiny(ZooModel):
    """A two-stage net: stem conv, stage blocks, a hidden fc (the neck) and a conv head option."""

    def __init__(self, *, num_classes: int = 3, in_chans: int = 2, conv_head: bool = False) -> None:
        super().__init__()
        self.num_classes, self.in_chans = num_classes, in_chans
        self.min_input_size = 4
        self.stem = nn.Conv2d(in_chans, 4, 3, padding=1)
        self.block1 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU())
        self.hidden = nn.Conv2d(8, 8, 1) if conv_head else nn.Linear(8, 8)
        self.fc = nn.Conv2d(8, num_classes, 1) if conv_head else nn.Linear(8, num_classes)
        self.conv_head = conv_head
        self.feature_info = [FeatureInfo("block1", 4, 1), FeatureInfo("block2", 8, 2)]
        self.head_name = "fc"

    def forward_features(self, x: Tensor) -> Tensor:
        return self.block2(self.block1(self.stem(x)))

    def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
        if self.conv_head:
            x = self.hidden(x)
            return x.mean((2, 3)) if pre_logits else self.fc(x).mean((2, 3))
        x = self.hidden(x.mean((2, 3)))
        return x if pre_logits else self.fc(x)


@pytest.fixture
def resnet20():
    torch.manual_seed(0)
    return create_model("resnet20").eval()


def _stages_by_hand(m: ResNet, x: Tensor) -> list[Tensor]:
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    out = []
    for name in m.stage_names:
        x = getattr(m, name)(x)
        out.append(x)
    return out


def test_forward_intermediates_returns_the_stage_outputs(resnet20):
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        final, stages = resnet20.forward_intermediates(x)
        expected = _stages_by_hand(resnet20, x)
        torch.testing.assert_close(final, resnet20.forward_features(x))
    assert len(stages) == 3
    for got, want in zip(stages, expected, strict=True):
        torch.testing.assert_close(got, want)
    assert [tuple(s.shape) for s in stages] == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]


def test_indices_select_stages_as_timm_does(resnet20):
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        every = resnet20.forward_intermediates(x, intermediates_only=True)

        def shapes(indices):
            got = resnet20.forward_intermediates(x, indices, intermediates_only=True)
            return [tuple(t.shape) for t in got]

        assert shapes(1) == [tuple(every[2].shape)]  # an int: the last n
        assert shapes(2) == [tuple(t.shape) for t in every[1:]]
        assert shapes([-1]) == shapes([2]) == [tuple(every[2].shape)]
        assert shapes((2, 0, -3)) == [tuple(every[0].shape), tuple(every[2].shape)]  # network order, once
        assert shapes(range(3)) == [tuple(t.shape) for t in every]


@pytest.mark.parametrize("bad", [0, 4, -1, [3], [-4], [], [1.5], [True], True, "1", 1.0])
def test_bad_indices_name_the_valid_range(resnet20, bad):
    with pytest.raises(
        StageIndexError, match=r"resnet20 has 3 stages: .*0\.\.2 \(or -3\.\.-1\).* 1\.\.3"
    ) as e:
        resnet20.forward_intermediates(torch.randn(1, 3, 32, 32), bad)
    assert isinstance(e.value, CnnzooError) and isinstance(e.value, IndexError)
    assert "\n" not in str(e.value)


def test_stop_early_stops_the_forward(resnet20):
    fired: list[str] = []
    for name in ("layer1", "layer2", "layer3"):
        getattr(resnet20, name).register_forward_hook(lambda *a, n=name: fired.append(n))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        final, stages = resnet20.forward_intermediates(x, [0], stop_early=True)
    assert fired == ["layer1"]  # layer2 and layer3 never ran
    assert len(stages) == 1 and final is stages[0] and final.shape == (2, 16, 32, 32)
    fired.clear()
    with torch.no_grad():
        final, stages = resnet20.forward_intermediates(x, [0])
    assert fired == ["layer1", "layer2", "layer3"] and final.shape == (2, 64, 8, 8)
    fired.clear()
    with torch.no_grad():
        only = resnet20.forward_intermediates(x, [1], stop_early=True, intermediates_only=True)
    assert fired == ["layer1", "layer2"] and isinstance(only, list) and only[0].shape == (2, 32, 16, 16)
    # no hooks are left behind (only the test's own), and the model runs as before
    assert all(len(getattr(resnet20, n)._forward_hooks) == 1 for n in ("layer1", "layer2", "layer3"))
    with torch.no_grad():
        assert resnet20(x).shape == (2, 10)


def test_stop_early_hides_no_state_between_calls(resnet20):
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        resnet20.forward_intermediates(x, [0], stop_early=True)
        a = resnet20.forward_intermediates(x, intermediates_only=True)
        b = resnet20.forward_intermediates(x, intermediates_only=True)
    assert len(a) == len(b) == 3 and all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


def test_every_entry_point_checks_its_input_once(resnet20):
    calls = []
    check = resnet20.check_input
    resnet20.check_input = lambda x: (calls.append(1), check(x))[1]
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        resnet20(x)
        assert len(calls) == 1  # forward checks through forward_features, once
        resnet20.forward_intermediates(x)
        assert len(calls) == 2
    for entry in (resnet20, resnet20.forward_features, resnet20.forward_intermediates):
        with pytest.raises(InputShapeError, match=r"expects 3 input channel\(s\), got 1 .* in_chans=1"):
            entry(torch.randn(1, 1, 32, 32))
        with pytest.raises(InputShapeError, match="x.unsqueeze"):
            entry(torch.randn(3, 32, 32))
        with pytest.raises(InputShapeError, match="at least 5x5 pixels, got 4x4"):
            entry(torch.randn(1, 3, 4, 4))


def test_a_subclass_forward_features_is_checked_without_declaring_anything():
    m = Tiny()
    assert m.forward_features.__wrapped__.__name__ == "forward_features"
    with pytest.raises(InputShapeError, match="expects 2 input channel"):
        m.forward_features(torch.randn(1, 3, 8, 8))
    with pytest.raises(InputShapeError, match="at least 4x4"):
        m(torch.randn(1, 2, 3, 3))
    assert m(torch.randn(2, 2, 8, 8)).shape == (2, 3)


def test_the_check_is_invisible_to_fx_and_tracing(resnet20):
    x = torch.randn(2, 3, 32, 32)
    traced = torch.fx.symbolic_trace(resnet20)
    assert not any("check" in str(n.target) for n in traced.graph.nodes)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), resnet20(x))
        exported = torch.export.export(resnet20, (x,))
        torch.testing.assert_close(exported.module()(x), resnet20(x))


def test_a_model_without_declarations_says_what_to_declare():
    class Bare(ZooModel):
        def __init__(self) -> None:
            super().__init__()
            self.num_classes, self.in_chans = 2, 1
            self.fc = nn.Linear(1, 2)

        def forward_features(self, x: Tensor) -> Tensor:
            return x.mean((2, 3))

        def forward_head(self, x: Tensor, *, pre_logits: bool = False) -> Tensor:
            return self.fc(x)

    m = Bare()
    for call in (m.forward_intermediates, lambda x: m.stage_groups()):
        with pytest.raises(ModelInterfaceError, match="declares no stages .*set self.feature_info"):
            call(torch.randn(1, 1, 4, 4))
    for call in (m.get_classifier, lambda: m.reset_classifier(3)):
        with pytest.raises(ModelInterfaceError, match="declares no classifier .*set self.head_name"):
            call()


def test_reset_classifier_keeps_every_other_weight(resnet20):
    state = {k: v.clone() for k, v in resnet20.state_dict().items()}
    resnet20.reset_classifier(4)
    assert isinstance(resnet20.fc, nn.Linear) and resnet20.fc.out_features == 4
    assert resnet20.fc.in_features == 64 and resnet20.default_cfg.num_classes == 4
    for k, v in resnet20.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(v, state[k]), k
    with torch.no_grad():
        assert resnet20(torch.randn(2, 3, 32, 32)).shape == (2, 4)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "10", True, None])
def test_reset_classifier_refuses_a_bad_class_count(resnet20, bad):
    with pytest.raises(ConfigError, match="num_classes must be an int of at least 1") as e:
        resnet20.reset_classifier(bad)
    assert isinstance(e.value, ValueError) and resnet20.num_classes == 10 and resnet20.fc.out_features == 10


def test_reset_classifier_keeps_device_dtype_and_conv_heads():
    m = Tiny(conv_head=True).double()
    m.reset_classifier(5)
    assert isinstance(m.fc, nn.Conv2d) and (m.fc.in_channels, m.fc.out_channels) == (8, 5)
    assert m.fc.weight.dtype == torch.float64
    assert m(torch.randn(2, 2, 8, 8, dtype=torch.float64)).shape == (2, 5)


def test_googlenet_resets_its_aux_heads_too():
    with torch.device("meta"):
        m = create_model("googlenet")
    keep = {
        n: p
        for n, p in m.named_parameters()
        if not n.endswith(("fc.weight", "fc.bias", "fc2.weight", "fc2.bias"))
    }
    m.reset_classifier(6)
    assert m.classifier_names() == ["fc", "aux1.fc2", "aux2.fc2"]
    assert all(dict(m.named_parameters())[n] is p for n, p in keep.items())
    out = m.train()(torch.empty(2, 3, 224, 224, device="meta"))
    assert [tuple(o.shape) for o in out] == [(2, 6)] * 3
    assert create_model("googlenet", aux_logits=False).classifier_names() == ["fc"]


def test_lenet5_rbf_output_resets_as_create_model_builds_it():
    m = create_model("lenet5")
    digits = m.output.prototypes.clone()
    m.reset_classifier(7)
    seven = create_model("lenet5", num_classes=7).output.prototypes
    assert torch.equal(m.output.prototypes, seven) and m.output.out_features == 7
    assert m(torch.randn(2, 1, 32, 32)).shape == (2, 7)
    m.reset_classifier(10)  # back to the paper's digit bitmaps
    assert torch.equal(m.output.prototypes, digits)
    assert "head" not in dict(m.stage_groups())  # fixed prototypes: nothing to train
    relu = create_model("lenet5_relu")
    relu.reset_classifier(3)
    assert isinstance(relu.output, nn.Linear) and relu.output.out_features == 3


def test_nin_class_maps_follow_a_reset():
    m = create_model("nin").eval()
    m.reset_classifier(7)
    assert m.get_classifier() is m.mlpconv3.cccp2 and m.feature_info[-1].channels == 7
    with torch.no_grad():
        maps = m.forward_intermediates(torch.randn(1, 3, 32, 32), [-1], intermediates_only=True)[0]
    assert maps.shape == (1, 7, 8, 8)


def test_vgg_dense_form_declares_the_same_stages_and_a_conv_head():
    with torch.device("meta"):
        vgg = create_model("vgg11")
        dense = vgg.to_dense()
    assert dense.feature_info == vgg.feature_info and dense.feature_info is not vgg.feature_info
    assert dense.head_name == "classifier.6" and isinstance(dense.get_classifier(), nn.Conv2d)
    dense.reset_classifier(5)
    assert dense(torch.empty(1, 3, 256, 256, device="meta")).shape == (1, 5)
    assert dict(dense.stage_groups())["neck"] == [
        f"classifier.{i}.{p}" for i in (0, 3) for p in ("weight", "bias")
    ]


def test_stage_groups_of_the_families():
    with torch.device("meta"):
        r = create_model("resnet18")
        v = create_model("vgg11")
        g = create_model("googlenet")
        t = Tiny()
    groups = dict(r.stage_groups())
    assert list(groups) == ["stem", "stage0", "stage1", "stage2", "stage3", "head"]
    assert groups["stem"] == ["conv1.weight", "bn1.weight", "bn1.bias"]
    assert all(p.startswith(f"layer{i + 1}.") for i in range(4) for p in groups[f"stage{i}"])
    assert groups["head"] == ["fc.weight", "fc.bias"]
    groups = dict(v.stage_groups())  # taps on ReLUs: the convs before them are the stage, no stem
    assert list(groups) == ["stage0", "stage1", "stage2", "stage3", "stage4", "neck", "head"]
    assert groups["stage0"] == ["features.0.weight", "features.0.bias"]
    assert groups["neck"] == [
        "classifier.0.weight",
        "classifier.0.bias",
        "classifier.3.weight",
        "classifier.3.bias",
    ]
    groups = dict(g.stage_groups())
    assert groups["head"] == [
        "aux1.fc2.weight",
        "aux1.fc2.bias",
        "aux2.fc2.weight",
        "aux2.fc2.bias",
        "fc.weight",
        "fc.bias",
    ]
    assert all(p.startswith(("aux1.", "aux2.")) for p in groups["neck"]) and len(groups["neck"]) == 8
    assert groups["stage0"][0] == "conv1.conv.weight" and all(
        p.startswith("inception5") for p in groups["stage3"]
    )
    assert dict(t.stage_groups()) == {
        "stem": ["stem.weight", "stem.bias"],
        "stage0": ["block1.0.weight", "block1.0.bias"],
        "stage1": ["block2.0.weight", "block2.0.bias"],
        "neck": ["hidden.weight", "hidden.bias"],
        "head": ["fc.weight", "fc.bias"],
    }


@pytest.mark.parametrize("bad", [2.5, "10", True, 0, -1, None, 3.0])
def test_constructors_and_create_model_take_only_whole_counts(bad):
    for arg in ("num_classes", "in_chans"):
        with pytest.raises(ConfigError, match=rf"^ResNet: {arg} must be an int of at least 1, got ") as e:
            ResNet("basic", (1, 1), widths=(4, 8), **{arg: bad})
        assert "\n" not in str(e.value) and "pass an int, e.g." in str(e.value)
        if bad is not None:  # None means "the default" to create_model
            with pytest.raises(ConfigError, match=rf"^resnet20: {arg} must be an int of at least 1"):
                create_model("resnet20", **{arg: bad})
            with pytest.raises(ConfigError, match=arg):  # checked before the file is read
                create_model("resnet20", weights="/nonexistent/file.pth", **{arg: bad})
    m = Tiny()
    with pytest.raises(
        ConfigError, match=r"num_classes must be an int .* got '3' \(str\); pass an int, e\.g\. num_classes=3"
    ):
        m.num_classes = "3"
    assert m.num_classes == 3


def test_whole_counts_of_any_integer_type_are_taken():
    import numpy as np

    m = create_model("resnet20", num_classes=np.int64(4), in_chans=torch.tensor(2).item())
    assert (m.num_classes, m.in_chans) == (4, 2) and type(m.num_classes) is int
