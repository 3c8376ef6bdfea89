"""Adam and gradient clipping for runs stacked along a leading dimension (see
:mod:`cabinlift.training.engine`), without ``torch.optim``.

Every ``torch.optim`` optimizer imports the ``torch._dynamo`` compiler stack on its first call
(~2 s on a 2-core machine), a cost each training stage (its own process) would pay again. The
update here is the kernel ``torch.optim.Adam(fused=True)`` runs, applied to each run's slice.
"""

from __future__ import annotations

from typing import Any

import torch


class StackedAdam:
    """Adam (no weight decay) for parameters stacked along a leading run dimension ``R``,
    with per-run step counts: :meth:`step` updates only the runs marked active, leaving the
    weights and moments of the others untouched, so each run follows exactly the updates it
    would get trained alone.

    Each run's slice of each parameter is handed to PyTorch's fused Adam kernel (the one
    ``torch.optim.Adam(fused=True)`` runs) as its own tensor with its own step count: one pass
    over the weights per step whatever the number of runs.
    """

    def __init__(self, params: list[torch.Tensor], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        if not params:
            raise ValueError("StackedAdam got no parameters")
        self.params = params
        self.n_runs = params[0].shape[0]
        self.lr = float(lr)
        self.betas = betas
        self.eps = eps
        device = params[0].device
        self._m = [torch.zeros_like(p) for p in params]
        self._v = [torch.zeros_like(p) for p in params]
        self._steps = torch.zeros(self.n_runs, len(params), dtype=torch.float32, device=device)
        self._lists: dict[tuple[int, ...], tuple[list[torch.Tensor], ...]] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _views(self, runs: tuple[int, ...]) -> tuple[list[torch.Tensor], ...]:
        """Per-(run, parameter) views of weights, moments and step counts (cached per set)."""
        if runs not in self._lists:
            self._lists[runs] = (
                [p[r] for r in runs for p in self.params],
                [m[r] for r in runs for m in self._m],
                [v[r] for r in runs for v in self._v],
                [self._steps[r, i] for r in runs for i in range(len(self.params))],
            )
        return self._lists[runs]

    def state_dict(self) -> dict[str, Any]:
        """The optimiser's whole state: the current ``lr``, both moments of every parameter
        and each run's step counts (the live tensors, not copies)."""
        return {"lr": self.lr, "exp_avg": list(self._m), "exp_avg_sq": list(self._v),
                "steps": self._steps}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (:meth:`state_dict`'s layout and shapes), copied into the
        existing tensors: the per-run views :meth:`step` caches stay valid."""
        self.lr = float(state["lr"])
        for mine, theirs in zip(self._m + self._v, state["exp_avg"] + state["exp_avg_sq"],
                                strict=True):
            mine.copy_(theirs)
        self._steps.copy_(state["steps"])

    @torch.no_grad()
    def step(self, active: torch.Tensor | list[int]) -> None:
        """One Adam step for the runs where ``active`` (bool (R,)) is true, or for the run
        indices ``active`` lists (a host-side list avoids a device sync)."""
        if isinstance(active, torch.Tensor):
            runs = tuple(i for i, a in enumerate(active.tolist()) if a)
        else:
            runs = tuple(sorted(set(active)))
        if not runs:
            return
        params, exp_avg, exp_avg_sq, steps = self._views(runs)
        grads = []
        for r in runs:
            for p in self.params:
                grads.append(p.grad[r] if p.grad is not None else torch.zeros_like(p[r]))
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            params, grads, exp_avg, exp_avg_sq, [], steps,
            amsgrad=False, lr=self.lr, beta1=self.betas[0], beta2=self.betas[1],
            weight_decay=0.0, eps=self.eps, maximize=False, grad_scale=None, found_inf=None,
        )


@torch.no_grad()
def clip_grad_norm_per_run(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale each run's gradient (leading dimension) so that its global 2-norm over all
    parameters is at most ``max_norm``, as ``torch.nn.utils.clip_grad_norm_`` does for one
    model. Returns the per-run norms before clipping."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(0)
    n_runs = grads[0].shape[0]
    per_param = torch.stack([torch.linalg.vector_norm(g.reshape(n_runs, -1), dim=1)
                             for g in grads])  # (P, R)
    norms = torch.linalg.vector_norm(per_param, dim=0)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_(grads, [coef.view((n_runs,) + (1,) * (g.dim() - 1)) for g in grads])
    return norms
