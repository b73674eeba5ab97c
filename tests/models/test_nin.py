"""Network in Network: counts by hand, mlpconv structure, no fc layer, global average pooling,
map sizes, and input sizes (CIFAR and Fashion-MNIST)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo.models.base import InputShapeError
from cnnzoo.models.nin import MlpConv
from cnnzoo.registry import create_model, get_model_config


def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


def test_nin_cifar_param_count_by_hand():
    """The paper's CIFAR-10 net ("0.97 M" as usually quoted), widths as released."""
    mlpconv1 = conv(5, 3, 192) + conv(1, 192, 160) + conv(1, 160, 96)  # 14,592 + 30,880 + 15,456
    mlpconv2 = conv(5, 96, 192) + conv(1, 192, 192) + conv(1, 192, 192)  # 460,992 + 2 * 37,056
    mlpconv3 = conv(3, 192, 192) + conv(1, 192, 192) + conv(1, 192, 10)  # 331,968 + 37,056 + 1,930
    assert (mlpconv1, mlpconv2, mlpconv3) == (60_928, 535_104, 370_954)
    assert mlpconv1 + mlpconv2 + mlpconv3 == 966_986
    assert n_params(meta_model("nin")) == 966_986
    # the class count only changes the last 1×1 conv
    assert n_params(meta_model("nin", num_classes=100)) == 966_986 - conv(1, 192, 10) + conv(1, 192, 100)


def test_nin_imagenet_param_count_by_hand():
    mlpconv1 = conv(11, 3, 96) + 2 * conv(1, 96, 96)  # 34,944 + 2 * 9,312
    mlpconv2 = conv(5, 96, 256) + 2 * conv(1, 256, 256)  # 614,656 + 2 * 65,792
    mlpconv3 = conv(3, 256, 384) + 2 * conv(1, 384, 384)  # 885,120 + 2 * 147,840
    mlpconv4 = conv(3, 384, 1024) + conv(1, 1024, 1024) + conv(1, 1024, 1000)  # 3,539,968 + ...
    assert mlpconv1 + mlpconv2 + mlpconv3 + mlpconv4 == 7_595_176
    assert n_params(meta_model("nin_imagenet")) == 7_595_176


@pytest.mark.parametrize("name, blocks", [("nin", 3), ("nin_imagenet", 4)])
def test_mlpconv_structure_and_no_fc(name, blocks):
    m = meta_model(name, num_classes=7)
    assert not any(isinstance(x, nn.Linear) for x in m.modules())  # global average pooling only
    mlp = [x for x in m.modules() if isinstance(x, MlpConv)]
    assert len(mlp) == blocks
    for b in mlp:
        assert b.cccp1.kernel_size == b.cccp2.kernel_size == (1, 1)
    assert mlp[-1].cccp2.out_channels == 7  # one confidence map per class
    assert [f"mlpconv{i}" for i in range(1, blocks + 1)] == [n for n, x in m.named_children()
                                                              if isinstance(x, MlpConv)]  # fmt: skip


def test_nin_cifar_layout():
    m = meta_model("nin")
    assert [m.mlpconv1.conv.kernel_size, m.mlpconv2.conv.kernel_size, m.mlpconv3.conv.kernel_size] == [
        (5, 5), (5, 5), (3, 3)]  # fmt: skip
    assert isinstance(m.pool1, nn.MaxPool2d) and isinstance(m.pool2, nn.AvgPool2d)
    assert m.drop1.p == m.drop2.p == 0.5 and not hasattr(m, "drop3")


@pytest.mark.parametrize(
    "name, side, expected",
    [
        ("nin", 32, {"mlpconv1": 32, "pool1": 16, "mlpconv2": 16, "pool2": 8, "mlpconv3": 8}),
        ("nin_imagenet", 224, {"mlpconv1": 54, "pool1": 27, "mlpconv2": 27, "pool2": 13,
                               "mlpconv3": 13, "pool3": 6, "mlpconv4": 6}),
    ],
)  # fmt: skip
def test_map_sizes(name, side, expected):
    m = meta_model(name)
    sides: dict[str, int] = {}
    for layer in expected:
        getattr(m, layer).register_forward_hook(
            lambda mod, inp, out, layer=layer: sides.__setitem__(layer, out.shape[-1])
        )
    out = m(torch.empty(2, 3, side, side, device="meta"))
    assert sides == expected
    assert tuple(out.shape) == (2, m.num_classes)


def test_logits_are_the_class_map_averages():
    torch.manual_seed(0)
    m = create_model("nin").eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        maps = m.forward_features(x)
        logits = m(x)
    assert tuple(maps.shape) == (4, 10, 8, 8)
    torch.testing.assert_close(logits, maps.mean(dim=(2, 3)))
    torch.testing.assert_close(m.forward_head(maps, pre_logits=True), logits)
    assert (logits < 0).any()  # no ReLU on the class maps by default


def test_class_relu_restores_eq2():
    torch.manual_seed(0)
    m = create_model("nin", class_relu=True).eval()
    assert isinstance(m.mlpconv3.relu2, nn.ReLU) and isinstance(m.mlpconv2.relu2, nn.ReLU)
    assert isinstance(create_model("nin").mlpconv3.relu2, nn.Identity)
    with torch.no_grad():
        assert (m(torch.randn(4, 3, 32, 32)) >= 0).all()


@pytest.mark.parametrize("name", ["nin", "nin_imagenet"])
def test_min_input_size_is_tight_and_enforced(name):
    s = get_model_config(name).min_input_size
    model = meta_model(name)
    assert tuple(model(torch.empty(2, 3, s, s, device="meta")).shape) == (2, model.num_classes)
    with pytest.raises(InputShapeError, match=rf"{name} needs inputs of at least {s}x{s}"):
        model(torch.empty(2, 3, s - 1, s - 1, device="meta"))
    # forward_features checks too: switch the check off to probe the network itself
    model.check_input = lambda x: None
    with pytest.raises(RuntimeError):
        model.forward_features(torch.empty(2, 3, s - 1, s - 1, device="meta"))


@pytest.mark.parametrize("name", ["nin", "nin_imagenet"])
def test_fashion_mnist_size_trains_with_one_channel(name):
    cfg = get_model_config(name)
    s = cfg.small_input_size
    assert s >= cfg.min_input_size
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=1)
    for side in (s, cfg.min_input_size):  # real forward + backward, batch 2
        model.zero_grad()
        out = model(torch.randn(2, 1, side, side))
        assert tuple(out.shape) == (2, 10)
        torch.nn.functional.cross_entropy(out, torch.tensor([1, 8])).backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        assert model.mlpconv1.conv.weight.grad is not None


def test_configs():
    cfg = get_model_config("nin")
    assert cfg.input_size == (3, 32, 32) and cfg.num_classes == 10 and cfg.year == 2014
    assert (cfg.small_input_size, cfg.small_input_mode) == (32, "pad")
    assert "Lin" in cfg.paper and len(cfg.mean) == 3
    assert get_model_config("nin_imagenet").input_size == (3, 224, 224)


def test_fx_traceable():
    traced = torch.fx.symbolic_trace(meta_model("nin").eval())
    calls = [n.target for n in traced.graph.nodes if n.op == "call_module"]
    assert calls[0] == "mlpconv1.conv" and calls[-1] == "gap"
