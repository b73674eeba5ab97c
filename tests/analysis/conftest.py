"""Hand-written models the analyzer tests share (any ``nn.Module``, not only the zoo)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """ResNet basic block with the residual written as ``+`` in forward (no module for it)."""

    def __init__(self, c: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.down = nn.Conv2d(c, c, 1, stride, bias=False) if stride > 1 else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.down is None else self.down(x)
        return F.relu(out + sc)


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1)
        self.block1 = BasicBlock(8)
        self.block2 = BasicBlock(8, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        x = torch.add(x, 1.0)  # a functional torch.add with a scalar: an elementwise row
        return self.fc(torch.flatten(self.pool(x), 1))


@pytest.fixture
def tiny_resnet() -> TinyResNet:
    torch.manual_seed(0)
    return TinyResNet()


def _row(report, name: str):
    found = [r for r in report.layers if r.name == name]
    assert found, f"no row {name!r}; rows: {[r.name for r in report.layers]}"
    return found[0]


@pytest.fixture
def row():
    """``row(report, name)``: the row called ``name`` (a clear failure if there is none)."""
    return _row
