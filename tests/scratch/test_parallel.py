"""Micro-batches and data-parallel threads give the full-batch gradient; BLAS threads can be set."""

from __future__ import annotations

import numpy as np
import pytest

from cnnzoo.errors import ConfigError
from cnnzoo.scratch import create_net, layers, ops
from cnnzoo.scratch.blas import get_blas_threads, set_blas_threads
from cnnzoo.scratch.parallel import DataParallel


@pytest.mark.parametrize("name", ["lenet5", "lenet5_relu"])
@pytest.mark.parametrize("workers,micro_batch", [(1, 8), (2, None), (3, 5)])
def test_micro_batches_and_threads_give_the_full_batch_gradient(name, workers, micro_batch, tools):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((21, 1, 32, 32)), rng.integers(0, 10, 21)
    net = create_net(name, seed=1, dtype=np.float64)
    z_full = net(x)
    loss_full, cache = ops.softmax_cross_entropy(z_full, y)
    net.backward(ops.softmax_cross_entropy_backward(cache))
    full = {k: g.copy() for k, g in net.named_grads()}
    runner = DataParallel(net, workers, micro_batch)
    try:
        loss, z = runner.step(x, y)
    finally:
        runner.close()
    assert abs(loss - loss_full) <= 1e-12 * loss_full
    assert tools.rel_err(z, z_full) <= 1e-12
    for k, g in net.named_grads():
        assert tools.rel_err(g, full[k]) <= 1e-12, k


def test_batchnorm_networks_are_refused_with_a_clear_message():
    net = layers.Sequential([("conv", layers.Conv2d(1, 2, 3)), ("bn", layers.BatchNorm2d(2))])
    with pytest.raises(ConfigError, match="batch norm"):
        DataParallel(net, 2)
    DataParallel(net, 1, micro_batch=None)  # one full batch is fine


def test_blas_threads_can_be_set_and_restored():
    before = get_blas_threads()
    if before is None:
        pytest.skip("this NumPy's BLAS is not OpenBLAS")
    try:
        set_blas_threads(1)
        assert get_blas_threads() == 1
    finally:
        set_blas_threads(before)
    assert get_blas_threads() == before
