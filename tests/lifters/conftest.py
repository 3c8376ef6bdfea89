"""Shared fixtures for the lifter tests: a small batch of plausible, normalised driver poses."""

from __future__ import annotations

import pytest
import torch
from driverposes import make_poses


@pytest.fixture(autouse=True)
def one_thread():
    """Run the lifter tests on one intra-op thread, restoring the setting afterwards.

    These tests run tiny ops; on a shared 2-core machine two OpenMP threads that have to wait
    for a busy core make a training step 10-40x slower (measured), one thread never does.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def pose_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """64 normalised 2D poses and their neck-centred 3D targets in metres."""
    return make_poses(64, seed=0)

