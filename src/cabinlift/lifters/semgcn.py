"""SemGCN: semantic graph convolutions of Zhao et al. (CVPR 2019), after ``garyzhao/SemGCN``.

Architecture (official defaults ``-z 128 -l 4``, no non-local): ``_GraphConv(2 -> 128)``, four
residual blocks of two ``_GraphConv(128 -> 128)``, and a plain ``SemGraphConv(128 -> 3)``; a
``_GraphConv`` is SemGraphConv -> BatchNorm over channels -> ReLU. 267,313 parameters at COCO-13.

``SemGraphConv`` is copied exactly: separate self/neighbour weights ``W[0]``/``W[1]``
(xavier-uniform, gain 1.414), one learnable logit per entry of the ``A + I`` mask (init 1), and a
row softmax over the graph's neighbours only, ``out = (adj*I) X W0 + (adj*(1-I)) X W1 + b``.

Speed (not accuracy) departs from the official code: activations are kept joint-major
``(J, B, C)`` so that the graph product is one ``(J, J) @ (J, B*C)`` GEMM instead of B tiny ones;
the ``-9e15`` fill, the mask and the identity are buffers, so only the softmax over the logits runs
per forward; self and neighbour terms are concatenated so that each layer does one weight GEMM.

``non_local=True`` adds the five concatenation-form non-local blocks of the paper. COCO-13 has
an odd joint count. With ``non_local_groups="flip_pairs"`` the joints are grouped into the six
left/right pairs plus the nose last, so the max-pool over pairs drops the nose from keys and
values, as the official code would. ``non_local_groups="authors"`` takes the grouping of the paper
authors' code, ``[[1,3],[0],[2,4],[5,6],[7,9],[8,10],[11,12]]``, read as SemGCN reads any
grouping: the joints in the order ``[1,3,0,2,4,5,6,7,9,8,10,11,12]``, max-pooled in windows of 2
(the first group's size), so keys and values pool (1,3), (0,2), (4,5), (6,7), (9,8), (10,11)
and drop the right hip (12).

``graph`` names the edge set (:data:`cabinlift.lifters.graph.GRAPHS`): ``coco15``, the official
choice for these joints, or ``coco17``, which adds nose-shoulder edges as the paper authors' code
does (4 more mask entries, 40 more parameters). The authors' SemGCN is ``graph="coco17"``,
``non_local=True``, ``non_local_groups="authors"``: 434,713 parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from cabinlift.errors import CabinliftError
from cabinlift.hyperparams import HyperParameters, Rate, Size
from cabinlift.lifters.base import Lifter
from cabinlift.lifters.graph import NONLOCAL_GROUPS, Edges, graph_edges, nonlocal_order, semgcn_mask
from cabinlift.skeleton import NUM_JOINTS


@dataclass(frozen=True, kw_only=True)
class SemGCNConfig(HyperParameters):
    """SemGCN's hyper-parameters (``lifters.semgcn``)."""

    hid_dim: Size
    num_layers: Size
    dropout: Rate
    non_local: bool
    graph: Literal["coco15", "coco17"]
    non_local_groups: Literal["flip_pairs", "authors"]


class SemGraphConv(nn.Module):
    """Semantic graph convolution on joint-major features ``(J, B, Cin) -> (J, B, Cout)``."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.W = nn.Parameter(torch.empty(2, in_features, out_features))
        nn.init.xavier_uniform_(self.W, gain=1.414)
        n_edges = int(mask.sum())
        self.e = nn.Parameter(torch.ones(1, n_edges))
        self.bias = nn.Parameter(torch.empty(out_features))
        stdv = 1.0 / math.sqrt(out_features)
        nn.init.uniform_(self.bias, -stdv, stdv)
        n = mask.shape[0]
        self.register_buffer("mask", mask.clone(), persistent=False)
        self.register_buffer(
            "fill", torch.full((n, n), -9e15).masked_fill(mask, 0.0), persistent=False
        )
        self.register_buffer("off_diag", 1.0 - torch.eye(n), persistent=False)
        # One-hot (n_edges, J*J) placing the logits: a GEMM, which vmap batches (unlike
        # masked_scatter); exact, since every output sums one logit and zeros.
        place = torch.zeros(n_edges, n * n)
        place[torch.arange(n_edges), mask.reshape(-1).nonzero().squeeze(1)] = 1.0
        self.register_buffer("place", place, persistent=False)

    def edge_weights(self) -> torch.Tensor:
        """The (J, J) softmax-normalised edge weights: each row sums to 1 over its neighbours."""
        logits = self.fill + (self.e @ self.place).view_as(self.fill)
        return F.softmax(logits, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        j, b, c = x.shape
        adj = self.edge_weights()
        self_term = x * adj.diagonal().view(j, 1, 1)
        nbr_term = (adj * self.off_diag) @ x.reshape(j, b * c)
        z = torch.cat([self_term, nbr_term.view(j, b, c)], dim=-1).view(j * b, 2 * c)
        out = torch.addmm(self.bias, z, self.W.view(2 * c, self.out_features))
        return out.view(j, b, self.out_features)

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}"


class _GraphConv(nn.Module):
    """SemGraphConv -> BatchNorm1d over channels -> ReLU (-> Dropout)."""

    def __init__(self, mask: torch.Tensor, c_in: int, c_out: int, dropout: float) -> None:
        super().__init__()
        self.gconv = SemGraphConv(c_in, c_out, mask)
        self.bn = nn.BatchNorm1d(c_out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.gconv(x)
        j, b, c = h.shape
        # BN over (B, C, J) in the official code = BN over the (J*B, C) rows here.
        h = F.relu(self.bn(h.view(j * b, c)))
        # Official: relu(dropout(relu(h))) == dropout(relu(h)).
        return self.dropout(h).view(j, b, c)


class _ResGraphConv(nn.Module):
    def __init__(self, mask: torch.Tensor, dim: int, dropout: float) -> None:
        super().__init__()
        self.gconv1 = _GraphConv(mask, dim, dim, dropout)
        self.gconv2 = _GraphConv(mask, dim, dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gconv2(self.gconv1(x))


class _GraphNonLocal(nn.Module):
    """Concatenation-form non-local block over joints (SemGCN's ``GraphNonLocal``).

    Joints are reordered into groups of ``group_size``; keys/values are max-pooled over each
    group (a trailing incomplete group is dropped, like ``MaxPool1d``); the output conv's BN
    starts at zero so the block starts as the identity.
    """

    def __init__(self, dim: int, grouped_order: list[int], group_size: int) -> None:
        super().__init__()
        inter = dim // 2
        self.group_size = group_size
        self.theta = nn.Linear(dim, inter)
        self.phi = nn.Linear(dim, inter)
        self.g = nn.Linear(dim, inter)
        self.concat_project = nn.Linear(2 * inter, 1, bias=False)
        self.W = nn.Linear(inter, dim)
        self.bn = nn.BatchNorm1d(dim)
        for lin in (self.theta, self.phi, self.g, self.W):
            nn.init.kaiming_normal_(lin.weight)
            nn.init.zeros_(lin.bias)
        nn.init.kaiming_normal_(self.concat_project.weight)
        nn.init.zeros_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        order = torch.tensor(grouped_order)
        self.register_buffer("grouped", order, persistent=False)
        self.register_buffer("restored", torch.argsort(order), persistent=False)

    def _pool(self, h: torch.Tensor) -> torch.Tensor:
        j, b, c = h.shape
        n = j // self.group_size
        return h[: n * self.group_size].view(n, self.group_size, b, c).amax(dim=1)

    def _keys_values(self, xg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._pool(self.phi(xg)), self._pool(self.g(xg))

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled keys and values ``(J // group_size, B, dim // 2)`` of joint-major ``x``
        in joint order: which joints they see is the grouping's effect."""
        return self._keys_values(x.index_select(0, self.grouped))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xg = x.index_select(0, self.grouped)
        j, b, c = xg.shape
        theta = self.theta(xg)
        phi, g = self._keys_values(xg)
        w_theta, w_phi = self.concat_project.weight.view(2, -1)
        f = F.relu((theta @ w_theta)[:, None, :] + (phi @ w_phi)[None, :, :])  # (J, Jp, B)
        f = f / phi.shape[0]
        y = torch.einsum("ipb,pbc->ibc", f, g)
        z = self.bn(self.W(y).view(j * b, c)).view(j, b, c) + xg
        return z.index_select(0, self.restored)


class SemGCN(Lifter):
    """SemGCN lifter; hyper-parameters are the official defaults (``-z 128 -l 4``)."""

    Config = SemGCNConfig
    output_layers = ("gconv_output",)

    def __init__(
        self,
        num_joints: int = NUM_JOINTS,
        hid_dim: int = 128,
        num_layers: int = 4,
        dropout: float = 0.0,
        non_local: bool = False,
        edges: Edges | None = None,
        graph: Literal["coco15", "coco17"] = "coco15",
        non_local_groups: Literal["flip_pairs", "authors"] = "flip_pairs",
    ) -> None:
        super().__init__()
        self.num_joints = num_joints
        mask = semgcn_mask(num_joints, graph_edges(num_joints, graph, edges))
        if non_local_groups not in NONLOCAL_GROUPS:
            raise CabinliftError(f"unknown SemGCN non_local_groups {non_local_groups!r}: "
                                 f"expected one of {', '.join(NONLOCAL_GROUPS)}")
        groups = None
        if non_local:
            if num_joints != NUM_JOINTS:
                raise CabinliftError("SemGCN's non-local blocks need the COCO-13 joint groups")
            groups, size = nonlocal_order(num_joints, NONLOCAL_GROUPS[non_local_groups])
        layers: list[nn.Module] = [_GraphConv(mask, 2, hid_dim, dropout)]
        if groups is not None:
            layers.append(_GraphNonLocal(hid_dim, groups, size))
        for _ in range(num_layers):
            layers.append(_ResGraphConv(mask, hid_dim, dropout))
            if groups is not None:
                layers.append(_GraphNonLocal(hid_dim, groups, size))
        self.gconv_layers = nn.Sequential(*layers)
        self.gconv_output = SemGraphConv(hid_dim, 3, mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(0, 1).contiguous()  # (J, B, 2): joint-major
        h = self.gconv_output(self.gconv_layers(h))
        return h.transpose(0, 1)
