"""Adam on PyTorch's fused kernel, without the start-up cost of ``torch.optim``.

Every ``torch.optim`` optimizer imports the ``torch._dynamo`` compiler stack on its first call
(~2 s on a 2-core machine). Each training stage of the pipeline is its own process and the demo
grid has 85 of them, so that import alone would cost minutes of a few-minute grid. This class
runs the same kernel that ``torch.optim.Adam(fused=True)`` runs (``torch._fused_adam_``), with
the same per-parameter state, so its updates are bit-identical (tested against torch.optim).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class FusedAdam:
    """Adam (no weight decay, no AMSGrad) with a settable learning rate ``lr``.

    Like ``torch.optim.Adam``, a parameter without a gradient in a step is skipped, and its
    step count and moments stay untouched.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("FusedAdam got no trainable parameters")
        self.lr = float(lr)
        self.betas = betas
        self.eps = eps
        self._exp_avg: list[torch.Tensor | None] = [None] * len(self.params)
        self._exp_avg_sq: list[torch.Tensor | None] = [None] * len(self.params)
        self._step: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if self._step[i] is None:
                self._exp_avg[i] = torch.zeros_like(p, memory_format=torch.preserve_format)
                self._exp_avg_sq[i] = torch.zeros_like(p, memory_format=torch.preserve_format)
                self._step[i] = torch.zeros((), dtype=torch.float32, device=p.device)
            groups.setdefault((p.device, p.dtype), []).append(i)
        for idx in groups.values():
            steps = [self._step[i] for i in idx]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                [self.params[i] for i in idx],
                [self.params[i].grad for i in idx],
                [self._exp_avg[i] for i in idx],
                [self._exp_avg_sq[i] for i in idx],
                [],
                steps,
                amsgrad=False,
                lr=self.lr,
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=0.0,
                eps=self.eps,
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )
