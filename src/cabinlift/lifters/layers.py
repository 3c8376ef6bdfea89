"""Two small layers the lifters share that ``torch.nn`` does not have: stochastic depth
(``DropPath``, as timm's) and dot-product attention with dropout on its probabilities (as the
official GraFormer and JointFormer modules compute it). Both are plain PyTorch."""

from __future__ import annotations

import math

import torch
from torch import nn


class DropPath(nn.Module):
    """Stochastic depth (timm's ``DropPath`` with ``scale_by_keep``): drops a whole residual
    branch per sample with probability ``p``. ``batch_dim`` says which axis holds the samples."""

    def __init__(self, p: float = 0.0, batch_dim: int = 0) -> None:
        super().__init__()
        self.p = float(p)
        self.batch_dim = batch_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = [1] * x.dim()
        shape[self.batch_dim] = x.shape[self.batch_dim]
        mask = x.new_empty(shape).bernoulli_(keep)
        if keep > 0.0:
            mask.div_(keep)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, batch_dim={self.batch_dim}"


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: nn.Module) -> torch.Tensor:
    """``dropout(softmax(q k^T / sqrt(d))) v`` over the last two dims. The softmax is written
    out (max-shifted exponentials over their sum) rather than fused, so that the training engine,
    which vectorises the model over runs, and plain use compute the same numbers."""
    s = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    e = (s - s.amax(dim=-1, keepdim=True).detach()).exp()
    return dropout(e / e.sum(dim=-1, keepdim=True)) @ v
