"""The per-run optimiser and clipping must do for each run what torch does for one model."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Linear(3, 2))


def test_stacked_adam_equals_torch_adam_per_run_and_skips_inactive_runs() -> None:
    from cabinlift.training.optim import StackedAdam

    nets = [_net() for _ in range(3)]
    for k, n in enumerate(nets):
        with torch.no_grad():
            for p in n.parameters():
                p.add_(0.1 * k)  # three different runs
    stacked = [torch.stack([p.detach().clone() for p in ps]).requires_grad_(True)
               for ps in zip(*(n.parameters() for n in nets), strict=True)]
    opt = StackedAdam(stacked, lr=1e-2)
    refs = [torch.optim.Adam(n.parameters(), lr=1e-2) for n in nets]
    g = torch.Generator().manual_seed(2)
    for step in range(10):
        active = [True, step % 2 == 0, step >= 4]  # run 1 every other step, run 2 late
        x = torch.randn(8, 4, generator=g)
        opt.zero_grad()
        loss = 0.0
        for r, net in enumerate(nets):
            if not active[r]:
                continue
            refs[r].zero_grad()
            net(x).square().mean().backward()
            refs[r].step()
            # the same loss on the stacked weights of run r
            h = x
            for li, layer in enumerate((0, 2, 3)):
                w, b = stacked[2 * li][r], stacked[2 * li + 1][r]
                h = h @ w.T + b
                if layer == 0:
                    h = torch.relu(h)
            loss = loss + h.square().mean()
        loss.backward()
        opt.step(torch.tensor(active))
    for r, net in enumerate(nets):
        for p, s in zip(net.parameters(), stacked, strict=True):
            torch.testing.assert_close(s[r], p, rtol=1e-5, atol=1e-6)


def test_per_run_clipping_equals_clip_grad_norm_of_each_run() -> None:
    from cabinlift.training.optim import clip_grad_norm_per_run

    g = torch.Generator().manual_seed(3)
    stacked = [torch.zeros(3, 5, 4, requires_grad=True), torch.zeros(3, 7, requires_grad=True)]
    grads = [torch.randn(s.shape, generator=g) * torch.tensor([0.01, 1.0, 10.0]).view(
        (3,) + (1,) * (s.dim() - 1)) for s in stacked]
    for s, gr in zip(stacked, grads, strict=True):
        s.grad = gr.clone()
    norms = clip_grad_norm_per_run(stacked, 1.0)
    for r in range(3):
        ps = [torch.zeros(s.shape[1:], requires_grad=True) for s in stacked]
        for p, gr in zip(ps, grads, strict=True):
            p.grad = gr[r].clone()
        ref = torch.nn.utils.clip_grad_norm_(ps, 1.0)
        assert norms[r] == pytest.approx(float(ref), rel=1e-5)
        for p, s in zip(ps, stacked, strict=True):
            torch.testing.assert_close(s.grad[r], p.grad)
