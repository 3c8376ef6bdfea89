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


def _quadratic_steps(opt, weight: torch.Tensor, targets: torch.Tensor, steps: int) -> None:
    """``steps`` Adam steps of every run towards its own target (loss: squared distance)."""
    for _ in range(steps):
        opt.zero_grad()
        (weight - targets).square().sum().backward()
        opt.step(list(range(weight.shape[0])))


def test_a_stack_of_a_single_parameter_tensor_equals_torch_adam() -> None:
    """A network with one weight tensor (a bias-free linear layer) is a stack of one
    parameter: the run count comes from that tensor alone."""
    from cabinlift.training.optim import StackedAdam

    g = torch.Generator().manual_seed(4)
    start, targets = torch.randn(2, 3, 5, generator=g), torch.randn(2, 3, 5, generator=g)
    weight = start.clone().requires_grad_(True)
    opt = StackedAdam([weight], lr=0.1)
    assert opt.n_runs == 2
    _quadratic_steps(opt, weight, targets, 5)
    for r in range(2):
        ref = start[r].clone().requires_grad_(True)
        ref_opt = torch.optim.Adam([ref], lr=0.1)
        for _ in range(5):
            ref_opt.zero_grad()
            (ref - targets[r]).square().sum().backward()
            ref_opt.step()
        torch.testing.assert_close(weight[r], ref, rtol=1e-5, atol=1e-6)


def test_no_parameters_is_refused() -> None:
    from cabinlift.training.optim import StackedAdam

    with pytest.raises(ValueError, match="^StackedAdam got no parameters$"):
        StackedAdam([], lr=0.1)


def test_a_saved_state_continues_as_if_never_interrupted() -> None:
    """Five steps, the lr decayed, the state written to bytes and read into a new optimiser
    (built with another lr) over a copy of the weights, five more: the weights equal ten
    uninterrupted steps bit for bit (moments, step counts and lr travel in the state)."""
    import io

    from cabinlift.training.optim import StackedAdam

    g = torch.Generator().manual_seed(5)
    start, targets = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    whole = start.clone().requires_grad_(True)
    opt = StackedAdam([whole], lr=0.05)
    _quadratic_steps(opt, whole, targets, 5)
    opt.lr = 0.03
    _quadratic_steps(opt, whole, targets, 5)

    first = start.clone().requires_grad_(True)
    opt = StackedAdam([first], lr=0.05)
    _quadratic_steps(opt, first, targets, 5)
    opt.lr = 0.03
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    second = first.detach().clone().requires_grad_(True)
    resumed = StackedAdam([second], lr=1.0)
    resumed.load_state_dict(torch.load(io.BytesIO(buffer.getvalue())))
    _quadratic_steps(resumed, second, targets, 5)
    assert torch.equal(second, whole)
