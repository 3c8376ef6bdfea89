"""Masked losses and pose errors.

A joint that Drive&Act leaves unannotated carries ``mask == False``; it must not contribute to
the loss or to any error, so every function here takes the mask explicitly.
"""

from __future__ import annotations

import numpy as np
import torch

#: How a training loss reduces the masked squared errors of a batch (``train.loss_reduction``):
#:
#: * ``coordinate_mean``: the mean over the x, y, z coordinates of the valid joints only
#:   (an unannotated joint is in neither the sum nor the count);
#: * ``xyz_sum_joint_mean``: the squared Euclidean error of each joint (the sum over x, y, z),
#:   averaged over all B x J joints of the batch; unannotated joints add zero to the sum but
#:   count in the denominator (what the paper's authors' code computes).
LOSS_REDUCTIONS: tuple[str, ...] = ("coordinate_mean", "xyz_sum_joint_mean")


def loss_denominator(mask: torch.Tensor, reduction: str, copies: int = 1) -> torch.Tensor:
    """What a masked sum of squared errors over ``copies`` stacked predictions of poses with
    joint mask ``mask`` (B, J) is divided by under ``reduction`` (see :data:`LOSS_REDUCTIONS`)."""
    if reduction == "coordinate_mean":
        return (mask.sum() * 3 * copies).clamp_min(1.0)
    if reduction == "xyz_sum_joint_mean":  # a bool mask's own dtype would hold only True
        dtype = mask.dtype if mask.is_floating_point() else torch.get_default_dtype()
        return torch.full((), float(mask.numel() * copies), dtype=dtype, device=mask.device)
    raise ValueError(f"unknown loss reduction {reduction!r}; expected one of {LOSS_REDUCTIONS}")


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
               reduction: str = "coordinate_mean") -> torch.Tensor:
    """Squared error of the valid joints, reduced by ``reduction`` (see :data:`LOSS_REDUCTIONS`;
    the default is the mean over the coordinates of valid joints).

    pred, target: (B, J, 3); mask: (B, J) bool or 0/1. Returns a scalar; 0 when nothing is valid.
    """
    m = mask.to(pred.dtype)
    sq = (pred - target).square() * m.unsqueeze(-1)
    return sq.sum() / loss_denominator(m, reduction)


def to_units(mm: torch.Tensor | np.ndarray, unit_mm: float) -> torch.Tensor | np.ndarray:
    """Millimetres in training units of ``unit_mm`` millimetres (``train.target_unit_mm``)."""
    return mm / unit_mm


def to_mm(units: torch.Tensor | np.ndarray, unit_mm: float) -> torch.Tensor | np.ndarray:
    """Training units of ``unit_mm`` millimetres back in millimetres."""
    return units * unit_mm


def joint_errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Euclidean error per joint, (..., J, 3) -> (..., J)."""
    return torch.linalg.vector_norm(pred - target, dim=-1)


def mpjpe(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error over valid joints (same unit as the inputs).

    pred (..., N, J, 3), target (N, J, 3), mask (N, J): dimensions of ``pred`` before the
    mask's are kept (e.g. one value per stacked run)."""
    m = mask.to(pred.dtype)
    err = joint_errors(pred, target) * m
    lead = err.dim() - m.dim()
    total = err.sum() if lead == 0 else err.sum(dim=tuple(range(lead, err.dim())))
    return total / m.sum().clamp_min(1.0)


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
