"""Shared fixtures. The suite runs under pytest-xdist with 2 workers on a 2-core machine."""

from __future__ import annotations

import pytest
import torch

# One intra-op thread per process: two xdist workers on two cores, and no oversubscription when
# other work shares the machine (OpenMP spin-waiting makes oversubscribed runs 10x slower).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def fashion_train():
    """The real Fashion-MNIST training split (make test ensures the data is installed)."""
    from cnnzoo.data import load_dataset

    return load_dataset("fashion-mnist", "train")


@pytest.fixture(scope="session")
def fashion_test():
    from cnnzoo.data import load_dataset

    return load_dataset("fashion-mnist", "test")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep the dataset cache of the test run out of the user's home (shared across tests)."""
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path_factory.getbasetemp() / "cnnzoo-cache"))
