"""Small layers shared by the lifters: dropout, stochastic depth (DropPath) and attention.

**Noise from a buffer.** Inside :func:`noise_from` (what the training engine uses), every
dropout / DropPath mask is read from a buffer of random 16-bit lanes that the engine draws, for
each run and step, from that run's own generator; the calls of a forward pass take consecutive
slices. A run's masks then depend only on its own generator, not on which other runs are trained
beside it: the same run gets the same masks trained alone or stacked with others under
``torch.func.vmap`` (where the buffer is batched), on any device.
:meth:`cabinlift.stacked.StackedLifters.noise_lanes` tells how
many lanes one forward pass takes.

**Outside such a scope** (plain use of a model):

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
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

_LANES = 65536  # 16-bit lanes
_LOCAL = threading.local()  # .scope: [int16 buffer or None (counting), lanes taken so far]


def _scope() -> list | None:
    return getattr(_LOCAL, "scope", None)


@contextmanager
def noise_from(buffer: torch.Tensor | None) -> Iterator[list]:
    """Take every dropout / DropPath mask inside the block from ``buffer`` (int16 random lanes,
    1-D; batched under vmap). With ``None`` nothing is dropped and the lanes a forward pass
    would take are only counted: the scope's ``[1]`` holds the count on exit."""
    prev = _scope()
    _LOCAL.scope = scope = [buffer, 0]
    try:
        yield scope
    finally:
        _LOCAL.scope = prev


def _take(shape: tuple[int, ...]) -> torch.Tensor | None:
    """The next ``prod(shape)`` lanes of the scope's buffer (None when only counting)."""
    scope = _scope()
    assert scope is not None
    n = math.prod(shape)
    start = scope[1]
    scope[1] = start + n
    if scope[0] is None:
        return None
    if scope[1] > scope[0].shape[-1]:
        raise RuntimeError(
            f"noise buffer of {scope[0].shape[-1]} lanes is too short for this forward pass"
        )
    return scope[0][start: start + n].view(shape)


def _buffered_keep(x: torch.Tensor, shape: tuple[int, ...], p: float) -> torch.Tensor:
    """Inverted-dropout of ``x`` with a mask of ``shape`` (broadcast) read from the buffer."""
    lanes = _take(shape)
    if lanes is None:
        return x
    k = round(p * _LANES)
    if k >= _LANES:
        return x * 0.0
    return x * _keep_from_lanes(lanes, k, x.dtype)


def _keep_from_lanes(lanes: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """The inverted-dropout multiplier of uniform int16 ``lanes`` for ``k`` dropped lanes in
    65536: 0 for the lowest ``k`` lane values, ``1 / (1 - k / 65536)`` for the others."""
    return (lanes >= k - _LANES // 2).to(dtype).mul_(_LANES / (_LANES - k))


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with drop probability ``p`` (see the module docstring)."""
    if not training or p == 0.0:
        return x
    if _scope() is not None:
        return _buffered_keep(x, tuple(x.shape), p)
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
    return x * _keep_from_lanes(lanes, k, x.dtype)


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
        if _scope() is not None:
            return _buffered_keep(x, tuple(shape), self.p)
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
    batched = torch._C._functorch.is_batchedtensor(q)  # under vmap (stacked runs)
    if (not training or dropout_p == 0.0) and not batched:
        return F.scaled_dot_product_attention(q, k, v)  # fused; vmap has no rule for it
    if q.device.type != "cpu" and _scope() is None and not batched:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    s = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    e = (s - s.amax(dim=-1, keepdim=True).detach()).exp()
    p = e / e.sum(dim=-1, keepdim=True)
    return dropout(p, dropout_p, training) @ v
