"""ZFNet: Fig. 3's map sizes, the count by hand, init, filter renormalisation and input sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo.models.base import InputShapeError
from cnnzoo.registry import create_model, get_model_config


def meta_model(**kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_model("zfnet", **kwargs)


def test_map_sizes_of_fig3():
    model = meta_model()
    layers = ["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5"]
    sides: dict[str, int] = {}
    for layer in layers:
        getattr(model, layer).register_forward_hook(
            lambda mod, inp, out, layer=layer: sides.__setitem__(layer, out.shape[-1])
        )
    out = model(torch.empty(2, 3, 224, 224, device="meta"))
    # 224 -> 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 6
    assert [sides[k] for k in layers] == [110, 55, 26, 13, 13, 13, 13, 6]
    assert tuple(out.shape) == (2, 1000)


def test_the_two_changes_from_alexnet_and_the_padding_choices():
    m = meta_model()
    assert (m.conv1.out_channels, m.conv1.kernel_size, m.conv1.stride) == (96, (7, 7), (2, 2))
    assert (m.conv2.out_channels, m.conv2.kernel_size, m.conv2.stride) == (256, (5, 5), (2, 2))
    assert (m.conv1.padding, m.conv2.padding) == ((1, 1), (0, 0))
    assert m.pool1.ceil_mode and m.pool2.ceil_mode  # floor mode would give 54 and 12
    assert [getattr(m, f"conv{i}").out_channels for i in (3, 4, 5)] == [384, 384, 256]
    assert [getattr(m, f"conv{i}").groups for i in range(1, 6)] == [1] * 5  # dense, one GPU


def test_param_count_by_hand():
    convs = [
        7 * 7 * 3 * 96 + 96,  # conv1       14,208
        5 * 5 * 96 * 256 + 256,  # conv2   614,656
        3 * 3 * 256 * 384 + 384,  # conv3  885,120
        3 * 3 * 384 * 384 + 384,  # conv4 1,327,488
        3 * 3 * 384 * 256 + 256,  # conv5  884,992
    ]
    fcs = [9216 * 4096 + 4096, 4096 * 4096 + 4096, 4096 * 1000 + 1000]
    assert sum(convs) + sum(fcs) == 62_357_608
    assert sum(p.numel() for p in meta_model().parameters()) == 62_357_608


@pytest.fixture(scope="module")
def zf_small():
    """A real ZFNet with narrow fc layers (the conv tower is the paper's)."""
    torch.manual_seed(0)
    return create_model("zfnet", num_classes=10, hidden=64)


def test_init(zf_small):
    for i in range(1, 6):
        conv = getattr(zf_small, f"conv{i}")
        assert torch.all(conv.bias == 0)
        assert abs(conv.weight.std().item() - 0.01) < 0.01 * 0.1
    assert torch.all(zf_small.fc6.bias == 0) and torch.all(zf_small.fc8.bias == 0)


def test_renormalize_filters_caps_rms_at_the_radius():
    m = create_model("zfnet", num_classes=10, hidden=64)
    with torch.no_grad():
        m.conv1.weight[:3].mul_(50)  # 3 filters with RMS ~0.5
    before = m.conv1.weight.detach().clone()
    assert m.renormalize_filters_(0.1) == 3
    rms = m.conv1.weight.pow(2).mean(dim=(1, 2, 3)).sqrt()
    torch.testing.assert_close(rms[:3], torch.full((3,), 0.1))
    torch.testing.assert_close(m.conv1.weight[3:], before[3:])  # the others are untouched
    # same direction, only shorter
    cos = torch.nn.functional.cosine_similarity(m.conv1.weight[:3].flatten(1), before[:3].flatten(1))
    torch.testing.assert_close(cos, torch.ones(3))
    assert m.renormalize_filters_(0.1) == 0


def test_min_input_size_is_tight_and_enforced():
    cfg = get_model_config("zfnet")
    s = cfg.min_input_size
    assert s == 47
    model = meta_model()
    assert tuple(model(torch.empty(1, 3, s, s, device="meta")).shape) == (1, 1000)
    with pytest.raises(InputShapeError, match=r"zfnet needs inputs of at least 47x47"):
        model(torch.empty(1, 3, s - 1, s - 1, device="meta"))
    # forward_features checks too: switch the check off to probe the network itself
    model.check_input = lambda x: None
    with pytest.raises(RuntimeError):
        model.forward_features(torch.empty(1, 3, s - 1, s - 1, device="meta"))


def test_fashion_mnist_size_trains_with_one_channel():
    cfg = get_model_config("zfnet")
    assert cfg.small_input_mode == "resize" and cfg.small_input_size >= cfg.min_input_size
    torch.manual_seed(0)
    model = create_model("zfnet", num_classes=10, in_chans=1, hidden=64)
    s = cfg.small_input_size
    out = model(torch.randn(2, 1, s, s))
    assert tuple(out.shape) == (2, 10)
    torch.nn.functional.cross_entropy(out, torch.tensor([3, 4])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    # at the minimum too, for a real (not meta) forward
    m = cfg.min_input_size
    assert tuple(model(torch.randn(2, 1, m, m)).shape) == (2, 10)


def test_config():
    cfg = get_model_config("zfnet")
    assert cfg.input_size == (3, 224, 224) and cfg.year == 2014 and "Zeiler" in cfg.paper
