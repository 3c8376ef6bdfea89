"""GraphMLP (single frame) of Li et al. (Pattern Recognition), after ``Vegetebird/GraphMLP``.

Architecture (official 1-frame defaults ``--layers 3 --channel 512 --d_hid 1024
--token_dim 256``): per-joint ``Linear(2 -> 512)``, three ``Block``s, ``LayerNorm(512)`` and
``Linear(512 -> 3)``. A Block has

* a spatial part: ``LayerNorm`` over the *joint* axis, a token MLP over joints
  (``J -> 256 -> J``, GELU, dropout 0.1) plus a GCN branch, ``x = x + DropPath(mlp + gcn)``;
* a channel part: ``LayerNorm(512)``, a channel MLP ``512 -> 1024 -> 512`` plus a GCN branch,
  ``x = x + DropPath(mlp + gcn)``.

The GCN branch is a 1x1 conv ``C -> 4C`` followed by ``sum_k sum_v x[k, c, v] A[k, v, w]`` over
the four ST-GCN 'spatial' partitions (root, centripetal, centrifugal, symmetric) built in
:mod:`cabinlift.lifters.graph` for COCO-13 (tree-based distances to a virtual neck, flip pairs as
symmetric edges). LayerNorms use eps 1e-6; DropPath rates are ``linspace(0, 0.2, layers)``.

``graph_layout="authors_shifted"`` replaces those partitions by the ones the paper authors' code
trains with (:func:`cabinlift.lifters.graph.authors_shifted_partitions`): its ``coco_upperbody``
layout with every edge shifted down by one joint, the nose-to-joint distances unshifted;
non-zeros 13 / 11 / 11 / 12 instead of 13 / 12 / 12 / 12. That is a defect of that code, not a
design: the option exists only to reproduce the numbers it produced and is never the default.
It changes no parameter.

The official model stores the partitions as a frozen ``nn.Parameter`` (4 * 13 * 13 = 676 values
counted in its 9,482,780 parameters); here they are a buffer, so 9,482,104 trainable parameters.
The optional ``post_refine`` stage needs camera intrinsics and is not offered.

Speed departs from the official code: activations are joint-major ``(J, B, C)``, so the token MLP
and the partition aggregation are single left-multiplications ``(., J) @ (J, B*C)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from cabinlift.errors import CabinliftError
from cabinlift.hyperparams import HyperParameters, Rate, Size
from cabinlift.lifters.base import Lifter
from cabinlift.lifters.graph import (
    COCO13_DIST_CENTER,
    Edges,
    authors_shifted_partitions,
    default_edges,
    spatial_partitions,
)
from cabinlift.lifters.layers import DropPath
from cabinlift.skeleton import COCO13_FLIP_PAIRS, NUM_JOINTS


@dataclass(frozen=True, kw_only=True)
class GraphMLPConfig(HyperParameters):
    """GraphMLP's hyper-parameters (``lifters.graphmlp``)."""

    layers: Size
    channel: Size
    d_hid: Size
    token_dim: Size
    dropout: Rate
    drop_path: Rate
    graph_layout: Literal["coco13", "authors_shifted"]


class _Gcn(nn.Module):
    """1x1 conv ``C -> K*C`` then aggregation over the K partitions, on ``(J, B, C)``."""

    def __init__(self, dim: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.conv = nn.Linear(dim, k * dim)  # = Conv2d(C, K*C, 1): same shapes and init

    def forward(self, x: torch.Tensor, a_cat: torch.Tensor) -> torch.Tensor:
        """a_cat: (J, K*J) with ``[w, k*J + v] = A[k, v, w]``."""
        j, b, c = x.shape
        w = self.conv.weight.view(self.k, c, c).transpose(1, 2)  # (K, C_in, C_out)
        h = torch.baddbmm(self.conv.bias.view(self.k, 1, c), x.reshape(1, j * b, c).expand(
            self.k, j * b, c), w)  # (K, J*B, C), channel index k*C + c as in the official view
        return (a_cat @ h.view(self.k * j, b * c)).view(j, b, c)


class _Block(nn.Module):
    def __init__(
        self, num_joints: int, dim: int, tokens_dim: int, channels_dim: int, k: int,
        dropout: float, drop_path: float,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(num_joints, eps=1e-6)  # over the joint axis
        self.gcn_1 = _Gcn(dim, k)
        self.token_fc1 = nn.Linear(num_joints, tokens_dim)
        self.token_fc2 = nn.Linear(tokens_dim, num_joints)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.gcn_2 = _Gcn(dim, k)
        self.channel_fc1 = nn.Linear(dim, channels_dim)
        self.channel_fc2 = nn.Linear(channels_dim, dim)
        self.drop = nn.Dropout(dropout)
        self.drop_path = DropPath(drop_path, batch_dim=1) if drop_path > 0 else nn.Identity()

    def _joint_norm(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(x, dim=0, correction=0, keepdim=True)
        xn = (x - mean) * torch.rsqrt(var + self.norm1.eps)
        return xn * self.norm1.weight.view(-1, 1, 1) + self.norm1.bias.view(-1, 1, 1)

    def _token_mlp(self, x: torch.Tensor) -> torch.Tensor:
        j, b, c = x.shape
        h = torch.addmm(self.token_fc1.bias.view(-1, 1), self.token_fc1.weight, x.view(j, b * c))
        h = self.drop(F.gelu(h))
        h = torch.addmm(self.token_fc2.bias.view(-1, 1), self.token_fc2.weight, h)
        return self.drop(h).view(j, b, c)

    def forward(self, x: torch.Tensor, a_cat: torch.Tensor) -> torch.Tensor:
        n = self._joint_norm(x)
        x = x + self.drop_path(self._token_mlp(n) + self.gcn_1(n, a_cat))
        n = self.norm2(x)
        mlp = self.drop(self.channel_fc2(self.drop(F.gelu(self.channel_fc1(n)))))
        return x + self.drop_path(mlp + self.gcn_2(n, a_cat))


class GraphMLP(Lifter):
    """Single-frame GraphMLP lifter; hyper-parameters are the official 1-frame defaults."""

    Config = GraphMLPConfig
    output_layers = ("head",)

    def __init__(
        self,
        num_joints: int = NUM_JOINTS,
        layers: int = 3,
        channel: int = 512,
        d_hid: int = 1024,
        token_dim: int = 256,
        dropout: float = 0.1,
        drop_path: float = 0.2,
        edges: Edges | None = None,
        sym_pairs: Edges | None = None,
        dist_center: Sequence[int] | None = None,
        graph_layout: Literal["coco13", "authors_shifted"] = "coco13",
    ) -> None:
        super().__init__()
        self.num_joints = num_joints
        if graph_layout == "authors_shifted":
            if num_joints != NUM_JOINTS or (edges, sym_pairs, dist_center) != (None, None, None):
                raise CabinliftError(
                    "GraphMLP graph_layout='authors_shifted' is a fixed COCO-13 layout: it takes "
                    "no num_joints other than 13 and no edges, sym_pairs or dist_center"
                )
            parts = authors_shifted_partitions()
        elif graph_layout != "coco13":
            raise CabinliftError(f"unknown GraphMLP graph_layout {graph_layout!r}: "
                                 f"expected 'coco13' or 'authors_shifted'")
        else:
            edges = default_edges(num_joints, edges)
            if num_joints != NUM_JOINTS and (sym_pairs is None or dist_center is None):
                raise CabinliftError(
                    f"GraphMLP with num_joints={num_joints} needs sym_pairs and dist_center"
                )
            parts = spatial_partitions(
                num_joints, edges,
                COCO13_FLIP_PAIRS if sym_pairs is None else sym_pairs,
                COCO13_DIST_CENTER if dist_center is None else dist_center,
            )  # (K, J, J)
        k = parts.shape[0]
        self.register_buffer("A", parts, persistent=False)
        self.register_buffer(
            "a_cat", parts.permute(2, 0, 1).reshape(num_joints, k * num_joints).contiguous(),
            persistent=False,
        )
        self.embedding = nn.Linear(2, channel)
        rates = torch.linspace(0, drop_path, layers).tolist() if layers > 0 else []
        self.blocks = nn.ModuleList(
            _Block(num_joints, channel, token_dim, d_hid, k, dropout, r) for r in rates
        )
        self.norm = nn.LayerNorm(channel, eps=1e-6)
        self.head = nn.Linear(channel, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embedding(x.transpose(0, 1).contiguous())  # (J, B, C)
        for blk in self.blocks:
            h = blk(h, self.a_cat)
        return self.head(self.norm(h)).transpose(0, 1)
