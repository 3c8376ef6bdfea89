"""FusedAdam must update exactly as torch.optim.Adam(fused=True) does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cabinlift.optim import FusedAdam


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Linear(3, 2))


def test_matches_torch_fused_adam_bit_for_bit_with_lr_decay_and_skipped_params() -> None:
    a, b = _net(), _net()
    opt_a = FusedAdam(a.parameters(), lr=1e-2)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2, fused=True)
    sched_b = torch.optim.lr_scheduler.ExponentialLR(opt_b, gamma=0.96)
    g = torch.Generator().manual_seed(1)
    for step in range(12):
        x = torch.randn(16, 4, generator=g)
        for net, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            # Every third step the last layer gets no gradient: it must be skipped, not decayed.
            out = net[:3](x) if step % 3 == 2 else net(x)
            out.square().mean().backward()
            opt.step()
        if step % 4 == 3:  # an "epoch" boundary
            opt_a.lr *= 0.96
            sched_b.step()
    assert opt_a.lr == opt_b.param_groups[0]["lr"]
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_zero_grad_clears_gradients_and_frozen_params_are_ignored() -> None:
    net = _net()
    net[0].weight.requires_grad_(False)
    opt = FusedAdam(net.parameters(), lr=1e-3)
    assert all(p is not net[0].weight for p in opt.params)
    net(torch.randn(2, 4)).sum().backward()
    opt.step()
    opt.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_needs_trainable_parameters() -> None:
    with pytest.raises(ValueError, match="no trainable parameters"):
        FusedAdam([torch.zeros(2)], lr=1e-3)
