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


@pytest.fixture
def fashion_short_run(fashion_train, fashion_test) -> Callable[..., float]:
    """``run(name, steps, lr, batch=32)``: test top-1 on 1,000 Fashion-MNIST test images after
    ``steps`` SGD steps (Nesterov momentum 0.9, linear decay to 0) at the config's small input."""
    from cnnzoo.data import adapt_images

    def run(name: str, steps: int, lr: float, batch: int = 32) -> float:
        torch.manual_seed(0)
        model = cnnzoo.create_model(name, in_chans=1, num_classes=10).train()
        cfg = model.default_cfg
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-5)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / steps)
        train, test = fashion_train.subset(steps * batch, seed=0), fashion_test.subset(1000, seed=0)

        def prep(images: torch.Tensor) -> torch.Tensor:
            size, mode = cfg.small_input_size, cfg.small_input_mode
            return adapt_images(images, size=size, mode=mode, mean=train.mean, std=train.std, in_chans=1)

        for step in range(steps):
            sl = slice(step * batch, (step + 1) * batch)
            loss = nn.functional.cross_entropy(model(prep(train.images[sl])), train.labels[sl])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(prep(test.images[i : i + 250])).argmax(1) for i in range(0, 1000, 250)])
        return (pred == test.labels).float().mean().item()

    return run
