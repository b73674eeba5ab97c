"""Helpers for the model tests: parameter counts on meta, and library checkpoints round-tripped
through ``create_model(NAME, weights=FILE)``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from cnnzoo import create_model


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
    order, relative to their scale). ``rename`` edits the saved keys first. Returns the logits."""

    def run(
        ref: nn.Module, name: str, size: int, rename: Callable[[str], str] | None = None
    ) -> tuple[Tensor, Tensor]:
        torch.manual_seed(0)
        randomize_(ref).eval()
        state = ref.state_dict()
        if rename is not None:
            state = {rename(k): v for k, v in state.items()}
        path = tmp_path / f"{name}.pth"
        torch.save(state, path)
        ours = create_model(name, weights=path).eval()
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
