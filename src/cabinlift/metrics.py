"""Masked losses and pose errors.

A joint that Drive&Act leaves unannotated carries ``mask == False``; it must not contribute to
the loss or to any error, so every function here takes the mask explicitly.
"""

from __future__ import annotations

import numpy as np
import torch


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the coordinates of valid joints.

    pred, target: (B, J, 3); mask: (B, J) bool or 0/1. Returns a scalar; 0 when nothing is valid.
    """
    m = mask.to(pred.dtype).unsqueeze(-1)
    sq = (pred - target).square() * m
    return sq.sum() / (m.sum() * pred.shape[-1]).clamp_min(1.0)


def joint_errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Euclidean error per joint, (..., J, 3) -> (..., J)."""
    return torch.linalg.vector_norm(pred - target, dim=-1)


def mpjpe(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error over valid joints (same unit as the inputs)."""
    m = mask.to(pred.dtype)
    return (joint_errors(pred, target) * m).sum() / m.sum().clamp_min(1.0)


def procrustes_align(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Align each predicted pose onto its target with the best similarity transform
    (rotation, uniform scale, translation) estimated from the valid joints only.

    pred, target: (N, J, 3); mask: (N, J) bool. Returns the aligned predictions (N, J, 3).
    Poses with fewer than 3 valid joints are returned unchanged.
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    w = np.asarray(mask, dtype=np.float64)[..., None]  # (N, J, 1)
    n = w.sum(axis=1, keepdims=True)  # (N, 1, 1)
    ok = n[:, 0, 0] >= 3
    n = np.maximum(n, 1.0)
    mu_p = (pred * w).sum(axis=1, keepdims=True) / n
    mu_t = (target * w).sum(axis=1, keepdims=True) / n
    p0 = (pred - mu_p) * w
    t0 = (target - mu_t) * w
    cov = np.einsum("nji,njk->nik", p0, t0)  # (N, 3, 3): sum_j p_j t_j^T
    u, s, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    s[:, -1] *= d
    u[:, :, -1] *= d[:, None]
    rot = np.einsum("nij,njk->nik", u, vt)  # maps row-vector p onto t: p @ rot
    var_p = (p0**2).sum(axis=(1, 2))
    scale = s.sum(axis=1) / np.maximum(var_p, 1e-12)
    aligned = scale[:, None, None] * np.einsum("nji,nik->njk", pred - mu_p, rot) + mu_t
    return np.where(ok[:, None, None], aligned, pred)


def masked_mean(values: np.ndarray, mask: np.ndarray, axis=None) -> np.ndarray:
    """Mean of ``values`` over entries where ``mask`` is true (NaN where none is)."""
    m = np.asarray(mask, dtype=np.float64)
    total = (np.asarray(values, dtype=np.float64) * m).sum(axis=axis)
    count = m.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count
