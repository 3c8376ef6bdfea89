"""GraFormer: graph-augmented transformer of Zhao, Wang and Tian (CVPR 2022), after
``Graformer/GraFormer``.

Architecture (official defaults ``--dim_model 96 --n_layer 5 --n_head 4 --dropout 0.25``):
``ChebConv(2 -> 96, K=2)``, then five times {``GraAttenLayer``, ``_ResChebGC``}, then
``ChebConv(96 -> 3, K=2)``. 653,744 parameters at COCO-13.

Copied exactly: Chebyshev order K=2 on ``L = I - D^{-1/2} Â D^{-1/2}`` of the row-normalised
``A + I``; pre-LN sublayers ``x + Dropout(sublayer(LN(x)))`` with the custom LayerNorm
(``a * (x - mean) / (unbiased_std + eps) + b``); multi-head attention with q/k/v/o linears with
bias and attention dropout 0.1, no positional encoding and no mask; the LAM-GConv FFN
``LAM(96 -> 192, ReLU) -> LAM(192 -> 96)`` sharing one learnable ``A_hat`` (init identity),
normalised per forward as ``d_i A_ij d_j`` with ``d = (colsum(A_hat) + 1e-5)^{-1/2}``; the residual
Chebyshev blocks with ReLU and dropout 0.1. ``dropout`` (0.25) reaches only the two sublayer
residual dropouts, as in the official code.

``graph`` names the edge set (:data:`cabinlift.lifters.graph.GRAPHS`): ``coco15``, the official
choice for these joints, or ``coco17`` with the nose-shoulder edges of the paper authors' code
(the edges change no parameter count).

``deepcopy_init=True`` initialises as the official ``GraFormer`` class (and the paper authors'
code, which uses it unchanged) does: its ``MultiHeadedAttention`` builds one ``Linear`` and
deep-copies it into q/k/v/o, and the model builds one attention module and one ``GraphNet`` and
deep-copies each into every layer. So at initialisation all ``4 * n_layers`` attention Linears
are equal, every layer's FFN has the same ``fc1`` and the same ``fc2``, and ``A_hat`` is the
identity as before; the copies then train apart. The Chebyshev convolutions and LayerNorms are
not copied. The draws follow the official order: input ChebConv, the prototype attention
Linear, the prototype FFN (fc1, fc2), each layer's residual Chebyshev block, output ChebConv.
The default (``False``) draws every Linear independently, layer by layer. The paper authors'
GraFormer is the official class defaults ``dim_model=128, n_layers=4, n_head=4, dropout=0.1``
with ``graph="coco17"`` and ``deepcopy_init=True``: 926,887 parameters.

Speed departs from the official code: the Chebyshev stack is a buffer built once, activations are
joint-major ``(J, B, C)`` so every graph product is one GEMM, the LAM-GConv Laplacian is computed
once per layer (not per sample and per conv), the custom LayerNorm avoids ``std_mean`` (whose CPU
backward is very slow).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from cabinlift.hyperparams import HyperParameterError, HyperParameters, Rate, Size, quoted
from cabinlift.lifters.base import Lifter
from cabinlift.lifters.graph import (
    Edges,
    cheb_basis,
    cheb_laplacian,
    graph_edges,
    normalized_adjacency,
)
from cabinlift.lifters.layers import attend
from cabinlift.skeleton import NUM_JOINTS


@dataclass(frozen=True, kw_only=True)
class GraFormerConfig(HyperParameters):
    """GraFormer's hyper-parameters (``lifters.graformer``); its heads split the width."""

    dim_model: Size
    n_layers: Size
    n_head: Size
    dropout: Rate
    attn_dropout: Rate
    gcn_dropout: Rate
    cheb_order: Size
    graph: Literal["coco15", "coco17"]
    deepcopy_init: bool

    @classmethod
    def rules(cls, values: Mapping[str, Any], key: Callable[[str], str] = quoted
              ) -> Iterator[str]:
        dim, heads = values["dim_model"], values["n_head"]
        if dim % heads:
            yield f"{key('dim_model')} ({dim}) must be divisible by {key('n_head')} ({heads})"


def _graph_apply(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(a @ x_b)`` for every sample of a joint-major ``x (J, B, C)`` in one GEMM."""
    j, b, c = x.shape
    return (a @ x.reshape(j, b * c)).view(a.shape[0], b, c)


class ChebConv(nn.Module):
    """``sum_k T_k X W_k + b`` on joint-major features; the basis is passed in (a buffer)."""

    def __init__(self, c_in: int, c_out: int, order: int = 2) -> None:
        super().__init__()
        self.c_out = c_out
        # Same shape and init as the official [K+1, 1, c_in, c_out] weight.
        self.weight = nn.Parameter(torch.empty(order + 1, 1, c_in, c_out))
        nn.init.xavier_normal_(self.weight)
        self.bias = nn.Parameter(torch.zeros(1, 1, c_out))

    def forward(self, x: torch.Tensor, basis_rest: torch.Tensor) -> torch.Tensor:
        """x: (J, B, c_in); basis_rest: ``T_1 .. T_K`` stacked as ``(K*J, J)`` (T_0 = I)."""
        j, b, c = x.shape
        k = basis_rest.shape[0] // j
        # [T_0 X | T_1 X | ... | T_K X] along channels, then one GEMM with W as ((K+1)*c_in, D).
        z = (basis_rest @ x.reshape(j, b * c)).view(k, j, b, c).permute(1, 2, 0, 3)
        feats = torch.cat([x.unsqueeze(2), z], dim=2).view(j * b, (k + 1) * c)
        out = torch.addmm(self.bias.view(-1), feats, self.weight.view((k + 1) * c, self.c_out))
        return out.view(j, b, self.c_out)


class GraFormerLayerNorm(nn.Module):
    """GraFormer's LayerNorm: unbiased std, eps added to the std (not inside the sqrt)."""

    def __init__(self, features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.a_2 = nn.Parameter(torch.ones(features))
        self.b_2 = nn.Parameter(torch.zeros(features))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Same value as torch.std (unbiased); std_mean's backward is very slow on the CPU.
        d = x - x.mean(dim=-1, keepdim=True)
        std = torch.linalg.vector_norm(d, dim=-1, keepdim=True) / math.sqrt(x.shape[-1] - 1)
        return self.a_2 * d / (std + self.eps) + self.b_2


class _MultiHeadAttention(nn.Module):
    def __init__(self, n_head: int, dim: int, attn_dropout: float, copies: bool = False) -> None:
        """``copies``: q/k/v/o start as deep copies of one Linear (the official init)."""
        super().__init__()
        if problems := list(GraFormerConfig.rules({"dim_model": dim, "n_head": n_head})):
            raise HyperParameterError(f"bad GraFormer: {'; '.join(problems)}")
        self.n_head = n_head
        if copies:
            proto = nn.Linear(dim, dim)
            self.linears = nn.ModuleList([copy.deepcopy(proto) for _ in range(4)])
        else:
            self.linears = nn.ModuleList([nn.Linear(dim, dim) for _ in range(4)])
        self.attn_drop = nn.Dropout(attn_dropout)  # on the attention probabilities

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        j, b, c = x.shape
        h, d = self.n_head, c // self.n_head
        x2 = x.reshape(j * b, c)
        q, k, v = (lin(x2).view(j, b, h, d).permute(1, 2, 0, 3) for lin in self.linears[:3])
        o = attend(q, k, v, self.attn_drop)  # (B, H, J, d)
        o = o.permute(2, 0, 1, 3).reshape(j * b, c)
        return self.linears[3](o).view(j, b, c)


class _GraphNet(nn.Module):
    """LAM-GConv FFN: ``fc2(L fc1-relu(L X))`` with a learnable ``A_hat`` (init identity)."""

    def __init__(self, dim: int, num_joints: int) -> None:
        super().__init__()
        self.A_hat = nn.Parameter(torch.eye(num_joints))
        self.fc1 = nn.Linear(dim, 2 * dim)
        self.fc2 = nn.Linear(2 * dim, dim)

    def laplacian(self) -> torch.Tensor:
        d = (self.A_hat.sum(dim=0) + 1e-5).pow(-0.5)
        return d[:, None] * self.A_hat * d[None, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lap = self.laplacian()
        h = F.relu(self.fc1(_graph_apply(lap, x)))
        return self.fc2(_graph_apply(lap, h))


class _GraAttenLayer(nn.Module):
    def __init__(
        self, dim: int, n_head: int, num_joints: int, dropout: float, attn_dropout: float,
        attn: _MultiHeadAttention | None = None, ffn: _GraphNet | None = None,
    ) -> None:
        """``attn`` / ``ffn``: given sublayers (deep copies of prototypes), else new ones."""
        super().__init__()
        self.norm1 = GraFormerLayerNorm(dim)
        self.attn = attn if attn is not None else _MultiHeadAttention(n_head, dim, attn_dropout)
        self.norm2 = GraFormerLayerNorm(dim)
        self.ffn = ffn if ffn is not None else _GraphNet(dim, num_joints)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.norm1(x)))
        return x + self.dropout(self.ffn(self.norm2(x)))


class _ResChebGC(nn.Module):
    """``x + GC(GC(x))``, each GC = ChebConv -> ReLU -> Dropout (official p = 0.1)."""

    def __init__(self, dim: int, order: int, dropout: float) -> None:
        super().__init__()
        self.gconv1 = ChebConv(dim, dim, order)
        self.gconv2 = ChebConv(dim, dim, order)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, basis_rest: torch.Tensor) -> torch.Tensor:
        # Official: relu(dropout(relu(h))) == dropout(relu(h)).
        h = self.dropout(F.relu(self.gconv1(x, basis_rest)))
        h = self.dropout(F.relu(self.gconv2(h, basis_rest)))
        return x + h


class GraFormer(Lifter):
    """GraFormer lifter; hyper-parameters are the official defaults."""

    Config = GraFormerConfig
    output_layers = ("gconv_output",)

    def __init__(
        self,
        num_joints: int = NUM_JOINTS,
        dim_model: int = 96,
        n_layers: int = 5,
        n_head: int = 4,
        dropout: float = 0.25,
        attn_dropout: float = 0.1,
        gcn_dropout: float = 0.1,
        cheb_order: int = 2,
        edges: Edges | None = None,
        graph: Literal["coco15", "coco17"] = "coco15",
        deepcopy_init: bool = False,
    ) -> None:
        super().__init__()
        self.num_joints = num_joints
        adj = normalized_adjacency(num_joints, graph_edges(num_joints, graph, edges))
        basis = cheb_basis(cheb_laplacian(adj), cheb_order)  # (K+1, J, J)
        self.register_buffer("cheb", basis, persistent=False)
        self.register_buffer("cheb_rest", basis[1:].reshape(-1, num_joints).clone(), persistent=False)
        self.gconv_input = ChebConv(2, dim_model, cheb_order)
        if deepcopy_init:  # the official construction order and copies (module docstring)
            attn = _MultiHeadAttention(n_head, dim_model, attn_dropout, copies=True)
            ffn = _GraphNet(dim_model, num_joints)
            gconv_layers = [_ResChebGC(dim_model, cheb_order, gcn_dropout) for _ in range(n_layers)]
            self.atten_layers = nn.ModuleList(
                _GraAttenLayer(dim_model, n_head, num_joints, dropout, attn_dropout,
                               attn=copy.deepcopy(attn), ffn=copy.deepcopy(ffn))
                for _ in range(n_layers)
            )
            self.gconv_layers = nn.ModuleList(gconv_layers)
        else:
            self.atten_layers = nn.ModuleList(
                _GraAttenLayer(dim_model, n_head, num_joints, dropout, attn_dropout)
                for _ in range(n_layers)
            )
            self.gconv_layers = nn.ModuleList(
                _ResChebGC(dim_model, cheb_order, gcn_dropout) for _ in range(n_layers)
            )
        self.gconv_output = ChebConv(dim_model, 3, cheb_order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.gconv_input(x.transpose(0, 1).contiguous(), self.cheb_rest)
        for atten, gconv in zip(self.atten_layers, self.gconv_layers, strict=True):
            h = gconv(atten(h), self.cheb_rest)
        return self.gconv_output(h, self.cheb_rest).transpose(0, 1)

