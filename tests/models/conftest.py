"""Fixtures of the model tests: a library network's file, loaded into a zoo model, gives its logits."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.analysis import analyze
from cnnzoo.weights import WeightsWarning


def randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN affine parameters and running statistics (a mixed-up BN cannot then pass), eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.empty(m.running_var.shape).uniform_(0.5, 2.0, generator=g))
    return model.eval()


@pytest.fixture
def library_file_matches(tmp_path: Path) -> Callable[..., nn.Module]:
    """``check(ref, name, size, **kwargs)``: save the library network ``ref`` (randomised norms) as a
    ``.pth`` state dict, load it with ``create_model(name, weights=FILE, **kwargs)`` with no notice,
    and assert equal eval logits on two random ``size``×``size`` images. Returns the loaded model."""

    def check(ref: nn.Module, name: str, size: int, **kwargs) -> nn.Module:
        randomize_norms(ref)
        path = tmp_path / f"{name}.pth"
        torch.save(ref.state_dict(), path)
        with warnings.catch_warnings():
            warnings.simplefilter("error", WeightsWarning)  # a full fit loads without a notice
            model = cnnzoo.create_model(name, weights=path, **kwargs).eval()
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected, got = ref(x), model(x)
        assert expected.std() > 0  # not a degenerate network that any weights would match
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        return model

    return check


def _conv_linear_macs(model: str | nn.Module, size: int | None = None) -> float:
    input_size = None if size is None else (3, size, size)
    report = analyze(model, input_size=input_size)
    return sum(r.flops for r in report.layers if r.type in ("conv", "linear")) / 2


@pytest.fixture
def macs() -> Callable[..., float]:
    """``macs(model_or_name, size=None)``: conv and linear multiply-adds at batch 1 (the papers'
    "FLOPs"), at ``size``×``size`` or the config's input size."""
    return _conv_linear_macs
