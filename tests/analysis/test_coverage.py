"""Input coverage (``cnnzoo.analysis.input_coverage``): exact, structural, and the module untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnzoo.analysis import analyze, input_coverage
from cnnzoo.errors import ConfigError


def test_strided_1x1_reads_one_position_in_four():
    cov = input_coverage(nn.Conv2d(4, 8, 1, stride=2, bias=False), (4, 6, 6))
    assert cov.fraction == 0.25 and cov.positions == 9
    expected = torch.zeros(6, 6, dtype=torch.bool)
    expected[::2, ::2] = True
    assert torch.equal(cov.mask, expected)


def test_strided_3x3_and_pooled_projection_read_everything():
    assert input_coverage(nn.Conv2d(4, 8, 3, stride=2, padding=1), (4, 8, 8)).fraction == 1.0
    d = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(4, 8, 1), nn.BatchNorm2d(8))
    assert input_coverage(d, (4, 8, 8)).fraction == 1.0
    # a 1×1/2 conv on an odd map reads ceil(7/2)² of 49 positions
    assert input_coverage(nn.Conv2d(2, 2, 1, stride=2), (2, 7, 7)).positions == 16


def test_one_output_traces_its_receptive_field():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3))
    cov = input_coverage(net, (1, 16, 16), select=lambda y: y[..., 0, 0])
    field = analyze(net, input_size=(1, 16, 16), backward=False).layers[-1].receptive_field
    rows, cols = cov.mask.nonzero(as_tuple=True)
    assert field == 8 and (rows.max() + 1, cols.max() + 1) == (field, field) and cov.positions == field**2


def test_cancelling_weights_and_dead_relus_still_count_as_paths():
    conv = nn.Conv2d(1, 1, (1, 2), bias=True)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, -1.0]]]]))  # on a constant input the gradient cancels
        conv.bias.fill_(-100.0)  # and the ReLU after it is dead: still a connection
    net = nn.Sequential(conv, nn.ReLU())
    assert input_coverage(net, (1, 3, 4)).fraction == 1.0


def test_module_is_not_modified_and_meta_modules_work():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.BatchNorm2d(4), nn.MaxPool2d(2))
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    input_coverage(net, (3, 9, 9))
    assert net.training and isinstance(net[2], nn.MaxPool2d)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with torch.device("meta"):
        meta = nn.Sequential(nn.Conv2d(3, 4, 1, stride=2), nn.BatchNorm2d(4))
    assert input_coverage(meta, (3, 8, 8)).fraction == 0.25
    assert next(meta.parameters()).is_meta


def test_bad_input_size():
    with pytest.raises(ConfigError, match=r"\(C, H, W\)"):
        input_coverage(nn.Conv2d(1, 1, 1), (1, 8))
