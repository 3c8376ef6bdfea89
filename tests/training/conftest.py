"""Shared setup of the training tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Train on one intra-op thread, restoring the setting afterwards: these are small models,
    and on a shared 2-core machine a second OpenMP thread waiting for a busy core makes a step
    several times slower (the test_engine and test_recipe files: 4 min with two threads, 1 min
    with one, measured under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
