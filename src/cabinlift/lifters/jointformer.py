"""JointFormer (stage 1) of Lutz et al. (ICPR 2022), after ``seblutz/JointFormer``.

Tokens are joints. Architecture (README settings ``--hid_dim 64 --intermediate
--pred_dropout 0.2``, 4 layers, ``d_inner`` 512, 8 heads, ``d_k = d_v = 64``, encoder dropout 0):
per-joint embedding ``Conv1d(2 -> 64, k=1)`` -> Dropout -> LayerNorm, then four times

* a post-LN encoder layer (MHA with bias-free ``w_q/w_k/w_v: 64 -> 512`` and ``fc: 512 -> 64``,
  attention-probability dropout 0.1 as hard-coded in the official ``ScaledDotProductAttention``,
  residual + LN; FFN ``64 -> 512 -> 64`` with ReLU, residual + LN);
* intermediate supervision: pose head ``Linear(J*64 -> J*3)(Dropout(LN(flatten)))``, error head
  of the same form, and re-embedding ``enc += Linear(J*3 -> J*64)(pose)``;
* the outer residual ``enc += layer_input`` and a ReLU.

All weights with more than one dimension are xavier-uniform, as in the official code.
1,196,408 parameters at COCO-13; the last layer's re-embedding is counted but feeds nothing (its
output only reaches the unused final encoder state), so it never receives a gradient and is not
computed here. ``forward`` returns the last layer's pose; ``training_loss`` is the official
objective, the mean over layers of ``(MSE(pose_i, gt) + MSE(err_i, |pose_i.detach() - gt|)) / 2``,
over valid joints only.

The optional second stage (``ErrorRefinement``, trained on top of a frozen stage 1) is NOT offered:
the pipeline trains every lifter with one uniform single-stage recipe.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cabinlift.hyperparams import HyperParameters, Rate, Size
from cabinlift.lifters.base import Lifter
from cabinlift.lifters.layers import attend
from cabinlift.lifters.losses import loss_denominator
from cabinlift.skeleton import NUM_JOINTS


@dataclass(frozen=True, kw_only=True)
class JointFormerConfig(HyperParameters):
    """JointFormer's hyper-parameters (``lifters.jointformer``)."""

    d_model: Size
    n_layers: Size
    n_head: Size
    d_k: Size
    d_v: Size
    d_inner: Size
    encoder_dropout: Rate
    pred_dropout: Rate
    attn_dropout: Rate


class _EncoderLayer(nn.Module):
    """Post-LN transformer encoder layer (attention-is-all-you-need-pytorch style)."""

    def __init__(
        self, d_model: int, d_inner: int, n_head: int, d_k: int, d_v: int, dropout: float,
        attn_dropout: float,
    ) -> None:
        super().__init__()
        self.n_head, self.d_k, self.d_v = n_head, d_k, d_v
        self.w_qs = nn.Linear(d_model, n_head * d_k, bias=False)
        self.w_ks = nn.Linear(d_model, n_head * d_k, bias=False)
        self.w_vs = nn.Linear(d_model, n_head * d_v, bias=False)
        self.fc = nn.Linear(n_head * d_v, d_model, bias=False)
        self.attn_norm = nn.LayerNorm(d_model, eps=1e-6)
        self.w_1 = nn.Linear(d_model, d_inner)
        self.w_2 = nn.Linear(d_inner, d_model)
        self.ffn_norm = nn.LayerNorm(d_model, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.attn_drop = nn.Dropout(attn_dropout)  # on the attention probabilities

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, j, _ = x.shape
        q = self.w_qs(x).view(b, j, self.n_head, self.d_k).transpose(1, 2)
        k = self.w_ks(x).view(b, j, self.n_head, self.d_k).transpose(1, 2)
        v = self.w_vs(x).view(b, j, self.n_head, self.d_v).transpose(1, 2)
        o = attend(q, k, v, self.attn_drop)  # scale 1/sqrt(d_k)
        o = o.transpose(1, 2).reshape(b, j, self.n_head * self.d_v)
        x = self.attn_norm(self.dropout(self.fc(o)) + x)
        return self.ffn_norm(self.dropout(self.w_2(F.relu(self.w_1(x)))) + x)


def _head(width: int, n_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(width), nn.Dropout(dropout), nn.Linear(width, n_out))


class JointFormer(Lifter):
    """JointFormer stage 1 with intermediate pose/error supervision (official README defaults)."""

    Config = JointFormerConfig
    #: The last layer's pose head (its LayerNorm, dropout and Linear), whose pose ``forward``
    #: returns. The intermediate pose heads and re-embeddings compute the features it reads,
    #: and the error heads only serve the training objective: none of them is an output layer.
    output_layers = ("intermediate_pred.-1",)

    def __init__(
        self,
        num_joints: int = NUM_JOINTS,
        d_model: int = 64,
        n_layers: int = 4,
        n_head: int = 8,
        d_k: int = 64,
        d_v: int = 64,
        d_inner: int = 512,
        encoder_dropout: float = 0.0,
        pred_dropout: float = 0.2,
        attn_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.num_joints = num_joints
        flat, out = num_joints * d_model, num_joints * 3
        self.embedding = nn.Linear(2, d_model)  # = Conv1d(2, d_model, 1): same shapes and init
        self.dropout = nn.Dropout(encoder_dropout)
        self.layer_norm = nn.LayerNorm(d_model, eps=1e-6)
        self.layer_stack = nn.ModuleList(
            _EncoderLayer(d_model, d_inner, n_head, d_k, d_v, encoder_dropout, attn_dropout)
            for _ in range(n_layers)
        )
        self.intermediate_pred = nn.ModuleList(
            _head(flat, out, pred_dropout) for _ in range(n_layers)
        )
        self.intermediate_error = nn.ModuleList(
            _head(flat, out, pred_dropout) for _ in range(n_layers)
        )
        self.intermediate_enc = nn.ModuleList(nn.Linear(out, flat) for _ in range(n_layers))
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Poses and predicted errors of every layer, each ``(n_layers, B, J, 3)``."""
        b, j, _ = x.shape
        enc = self.layer_norm(self.dropout(self.embedding(x)))
        poses, errors = [], []
        last = len(self.layer_stack) - 1
        for i, (layer, pred_head, err_head, reenc) in enumerate(zip(
            self.layer_stack, self.intermediate_pred, self.intermediate_error,
            self.intermediate_enc, strict=True,
        )):
            residual = enc
            enc = layer(enc)
            flat = enc.reshape(b, -1)
            pose = pred_head(flat)
            errors.append(err_head(flat))
            poses.append(pose)
            if i < last:  # the last re-embedding feeds nothing (it is dead in the official code)
                enc = F.relu(enc + reenc(pose).view(b, j, -1) + residual)
        return torch.stack(poses).view(-1, b, j, 3), torch.stack(errors).view(-1, b, j, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # At inference only the last pose is needed; skip the error heads.
        b, j, _ = x.shape
        enc = self.layer_norm(self.dropout(self.embedding(x)))
        pose = x.new_zeros(b, j * 3)
        last = len(self.layer_stack) - 1
        for i, (layer, pred_head, reenc) in enumerate(
            zip(self.layer_stack, self.intermediate_pred, self.intermediate_enc, strict=True)
        ):
            residual = enc
            enc = layer(enc)
            pose = pred_head(enc.reshape(b, -1))
            if i < last:
                enc = F.relu(enc + reenc(pose).view(b, j, -1) + residual)
        return pose.view(b, j, 3)

    def training_loss(
        self, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
        reduction: str = "coordinate_mean",
    ) -> torch.Tensor:
        """Official JointFormer loss over valid joints: mean over layers of
        ``(MSE(pose_i, gt) + MSE(err_i, |pose_i.detach() - gt|)) / 2``, each MSE reduced as
        ``reduction`` says (:func:`cabinlift.lifters.losses.loss_denominator`)."""
        poses, errors = self.forward_all(x)
        m = mask.to(poses.dtype)  # (B, J)
        denom = loss_denominator(m, reduction, copies=poses.shape[0])
        m = m.unsqueeze(-1)
        diff = poses - target
        pose_term = (diff.square() * m).sum()
        err_term = ((errors - diff.detach().abs()).square() * m).sum()
        return (pose_term + err_term) / (2 * denom)
