"""Helpers for the model tests: parameter counts on meta, and library checkpoints round-tripped
through ``create_model(NAME, weights=FILE)``."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from cnnzoo import create_model
from cnnzoo.analysis import analyze
from cnnzoo.data.datasets import ImageDataset
from cnnzoo.weights import WeightsWarning


def _meta_count(build: Callable[[], nn.Module] | str, *, weights_only: bool = False, **kwargs) -> int:
    """Parameters of a model built on the meta device (a registry name or a builder).

    ``weights_only`` counts conv and fc weights and the fc bias, leaving out BN's γ and β: the way
    several papers (He et al. 2016b, Xie et al. 2017) count.
    """
    with torch.device("meta"):
        m = create_model(build, **kwargs) if isinstance(build, str) else build()
    if not weights_only:
        return sum(p.numel() for p in m.parameters())
    norms = {id(p) for mod in m.modules() if isinstance(mod, nn.BatchNorm2d) for p in mod.parameters()}
    return sum(p.numel() for p in m.parameters() if id(p) not in norms)


@pytest.fixture(scope="session")
def meta_count() -> Callable[..., int]:
    """``meta_count(name_or_builder, weights_only=False, **kwargs)``: see :func:`_meta_count`."""
    return _meta_count


@pytest.fixture(scope="session")
def meta_model() -> Callable[..., nn.Module]:
    """``meta_model(name, **kwargs)``: the registry model ``name`` built on the meta device."""

    def build(name: str, **kwargs) -> nn.Module:
        with torch.device("meta"):
            return create_model(name, **kwargs)

    return build


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters (the library's init leaves them 0/1), in place."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
    return model


@pytest.fixture
def library_roundtrip(tmp_path):
    """``run(ref, name, size)``: save the library model ``ref`` (random weights and BN statistics) to a
    ``.pth`` file, load it with ``create_model(name, weights=FILE)``, and assert that both models'
    eval logits on one random batch of ``size``×``size`` images agree (up to float32 summation
    order, relative to their scale). ``rename`` edits the saved keys first; ``kwargs`` go to
    ``create_model``; a full fit must load without a WeightsWarning. Returns both logits."""

    def run(
        ref: nn.Module, name: str, size: int, rename: Callable[[str], str] | None = None, **kwargs
    ) -> tuple[Tensor, Tensor]:
        torch.manual_seed(0)
        randomize_(ref).eval()
        state = ref.state_dict()
        if rename is not None:
            state = {rename(k): v for k, v in state.items()}
        path = tmp_path / f"{name}.pth"
        torch.save(state, path)
        with warnings.catch_warnings():
            warnings.simplefilter("error", WeightsWarning)  # a full fit loads without a notice
            ours = create_model(name, weights=path, **kwargs).eval()
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            a, b = ours(x), ref(x)
        assert a.shape == b.shape == (2, ref_classes(ref))
        scale = max(b.abs().max().item(), 1.0)
        assert (a - b).abs().max().item() <= 1e-4 * scale, f"{name}: logits differ by {(a - b).abs().max()}"
        assert a.std() > 1e-3 * scale  # the logits depend on the input: the comparison means something
        return a, b

    return run


def ref_classes(model: nn.Module) -> int:
    return getattr(model, "num_classes", 1000)


def _conv_linear_macs(model: str | nn.Module, size: int | None = None) -> float:
    input_size = None if size is None else (3, size, size)
    report = analyze(model, input_size=input_size)
    return sum(r.flops for r in report.layers if r.type in ("conv", "linear")) / 2


@pytest.fixture
def macs() -> Callable[..., float]:
    """``macs(model_or_name, size=None)``: conv and linear multiply-adds at batch 1 (the papers'
    "FLOPs"), at ``size``×``size`` or the config's input size."""
    return _conv_linear_macs


def _fashion_fit(
    train_split: ImageDataset,
    test_split: ImageDataset,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    *,
    steps: int,
    size: int,
    mode: str,
    batch: int = 32,
    n_test: int = 1000,
    decay: bool = True,
    memory_format: torch.memory_format = torch.contiguous_format,
    bn_batches: int = 0,
) -> float:
    """Test top-1 of ``model`` on ``n_test`` Fashion-MNIST test images after ``steps`` steps of
    ``opt`` on batches of ``batch`` (the first ``steps · batch`` images of a fixed subset), inputs
    adapted to ``size`` by ``mode``. ``decay``: the learning rate falls linearly to 0;
    ``bn_batches``: re-estimate BN statistics over that many training batches for the final weights
    (a few dozen steps outrun a small BN momentum). The caller seeds and builds the model."""
    from torch.optim.swa_utils import update_bn

    from cnnzoo.data import adapt_images

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / steps) if decay else None
    train, test = train_split.subset(steps * batch, seed=0), test_split.subset(n_test, seed=0)

    def prep(images: Tensor) -> Tensor:
        return adapt_images(images, size=size, mode=mode, mean=train.mean, std=train.std, in_chans=1,
                            memory_format=memory_format)  # fmt: skip

    model.train()
    for step in range(steps):
        sl = slice(step * batch, (step + 1) * batch)
        loss = nn.functional.cross_entropy(model(prep(train.images[sl])), train.labels[sl])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    if bn_batches:
        update_bn((prep(train.images[i : i + batch]) for i in range(0, bn_batches * batch, batch)), model)
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(prep(test.images[i : i + 250])).argmax(1) for i in range(0, len(test), 250)])
    return (pred == test.labels).float().mean().item()


@pytest.fixture
def fashion_fit(fashion_train, fashion_test) -> Callable[..., float]:
    """``fit(model, opt, steps=, size=, mode=, ...)``: :func:`_fashion_fit` on the real splits."""
    return functools.partial(_fashion_fit, fashion_train, fashion_test)


@pytest.fixture
def fashion_short_run(fashion_fit) -> Callable[..., float]:
    """``run(name, steps, lr, batch=32)``: test top-1 on 1,000 Fashion-MNIST test images after
    ``steps`` SGD steps (Nesterov momentum 0.9, linear decay to 0) at the config's small input."""

    def run(name: str, steps: int, lr: float, batch: int = 32) -> float:
        torch.manual_seed(0)
        model = create_model(name, in_chans=1, num_classes=10)
        cfg = model.default_cfg
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-5)
        return fashion_fit(
            model, opt, steps=steps, size=cfg.small_input_size, mode=cfg.small_input_mode, batch=batch
        )

    return run
