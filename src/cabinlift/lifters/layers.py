"""Small layers shared by the lifters: a faster CPU dropout and stochastic depth (DropPath).

``torch.nn.Dropout`` draws one Mersenne-Twister number per element through ``bernoulli_``
(about 9 ns per element on the project's CPUs); GraphMLP's token-MLP dropout alone touches 8.4 M
elements per block at batch 64, which made dropout a quarter of GraphMLP's training step. Here the
mask comes from full-range 64-bit random integers split into four 16-bit lanes, so the drop
probability is ``p`` rounded to a multiple of 1/65536 (0.1 -> 0.1000061; 0.25 and 0.5 exact) and
the survivors are scaled by the exact ``1 / (1 - p_effective)``, keeping the expectation exact. It
uses torch's default generator, so ``torch.manual_seed`` still makes runs reproducible. On other
devices it falls back to ``torch.nn.functional.dropout``.

:func:`attention` is multi-head attention whose probabilities go through that dropout: with
13 tokens, ``scaled_dot_product_attention`` with ``dropout_p > 0`` takes the unfused path with a
slow row softmax and ``bernoulli_``; without dropout (eval) the fused kernel is the fastest.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_LANES = 65536  # 16-bit lanes


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with drop probability ``p`` (see the module docstring)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, True)
    k = round(p * _LANES)
    if k == 0:
        return x
    if k >= _LANES:
        return x * 0.0
    n = x.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device)
    bits.random_(-(2**63), None)  # full 64-bit range: four independent uniform int16 lanes
    lanes = bits.view(torch.int16)[:n].view(x.shape)
    noise = (lanes >= k - _LANES // 2).to(x.dtype).mul_(_LANES / (_LANES - k))
    return x * noise


class Dropout(nn.Module):
    """``nn.Dropout`` replacement using :func:`dropout`."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DropPath(nn.Module):
    """Stochastic depth (timm's ``DropPath`` with ``scale_by_keep``): drops a whole residual
    branch per sample. ``batch_dim`` says which axis of the input holds the samples."""

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
        m = x.new_empty(shape).bernoulli_(keep)
        if keep > 0.0:
            m.div_(keep)
        return x * m

    def extra_repr(self) -> str:
        return f"p={self.p}, batch_dim={self.batch_dim}"


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float, training: bool
) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d)) v`` over the last two dims, with dropout on the
    probabilities in training (what the official ``ScaledDotProductAttention`` modules do)."""
    if not training or dropout_p == 0.0:
        return F.scaled_dot_product_attention(q, k, v)
    if q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    s = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    e = (s - s.amax(dim=-1, keepdim=True).detach()).exp()
    p = e / e.sum(dim=-1, keepdim=True)
    return dropout(p, dropout_p, True) @ v
