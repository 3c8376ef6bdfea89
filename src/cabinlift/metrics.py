"""Every pose error and training loss of the project, each defined once (the training loss,
:func:`masked_mse` and :func:`loss_denominator`, in :mod:`cabinlift.lifters.losses`, on the
lifters' own floor, and imported here).

Errors, named by protocol as in VideoPose3D / MMPose: **MPJPE** (Protocol #1, :func:`mpjpe`)
pools the Euclidean errors of all valid joints of all frames; **P-MPJPE** (Protocol #2,
:func:`p_mpjpe`) first aligns each predicted pose onto its ground truth with the best similarity
transform; **3DPCK** (:func:`pck`) and its **AUC** (:func:`pck_auc`); per-joint and per-frame
means (:func:`masked_mean`). Training (torch tensors on its device) and evaluation (float64
arrays from the saved predictions, converted by :func:`errors_mm`) call the same functions.

A joint that Drive&Act leaves unannotated carries ``mask == False``; it must not contribute to
the loss or to any error, so every function here takes the mask explicitly. Units: the loss sees
targets in training units of ``train.target_unit_mm`` millimetres (:func:`to_units`,
:func:`to_mm`); every reported error is in millimetres.
"""

from __future__ import annotations

import numpy as np
import torch

from cabinlift.lifters.losses import loss_denominator as loss_denominator
from cabinlift.lifters.losses import masked_mse as masked_mse


def to_units(mm: torch.Tensor | np.ndarray, unit_mm: float) -> torch.Tensor | np.ndarray:
    """Millimetres in training units of ``unit_mm`` millimetres (``train.target_unit_mm``)."""
    return mm / unit_mm


def to_mm(units: torch.Tensor | np.ndarray, unit_mm: float) -> torch.Tensor | np.ndarray:
    """Training units of ``unit_mm`` millimetres back in millimetres."""
    return units * unit_mm


def joint_errors(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Euclidean error per joint, (..., J, 3) -> (..., J), zero at masked joints."""
    return torch.linalg.vector_norm(pred - target, dim=-1) * mask.to(pred.dtype)


def mpjpe(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MPJPE (Protocol #1): the mean Euclidean error over the valid joints of all frames (same
    unit as the inputs).

    pred (..., N, J, 3), target (N, J, 3), mask (N, J): dimensions of ``pred`` before the
    mask's are kept (e.g. one value per stacked run)."""
    m = mask.to(pred.dtype)
    err = joint_errors(pred, target, m)
    lead = err.dim() - m.dim()
    total = err.sum() if lead == 0 else err.sum(dim=tuple(range(lead, err.dim())))
    return total / m.sum().clamp_min(1.0)


def p_mpjpe(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """P-MPJPE (Protocol #2): MPJPE after aligning each predicted pose onto its ground truth
    (:func:`procrustes_align`); float64 arrays (N, J, 3), mask (N, J)."""
    aligned = procrustes_align(pred, target, mask)
    return float(mpjpe(torch.from_numpy(aligned), torch.from_numpy(np.asarray(target, np.float64)),
                       torch.from_numpy(np.asarray(mask, dtype=bool))))


def errors_mm(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """:func:`joint_errors` of saved predictions (N, J, 3) in float64 (N, J), zero at masked
    joints (whatever a model wrote there, NaN included, never reaches an error)."""
    m = np.asarray(mask, dtype=bool)
    pred = np.where(m[..., None], np.asarray(pred, dtype=np.float64), 0.0)
    err = joint_errors(torch.from_numpy(pred), torch.from_numpy(np.asarray(target, np.float64)),
                       torch.from_numpy(m))
    return err.numpy()


def pck(err: np.ndarray, mask: np.ndarray, threshold_mm: float) -> float:
    """3DPCK: the fraction of valid joints whose error is at most ``threshold_mm``."""
    return float(masked_mean(np.asarray(err) <= threshold_mm, mask))


def pck_auc(err: np.ndarray, mask: np.ndarray, max_mm: float, steps: int) -> float:
    """Area under the 3DPCK curve: the mean 3DPCK over ``steps`` thresholds evenly spaced from
    0 to ``max_mm`` (both included; 31 thresholds up to 150 mm is the usual choice)."""
    if steps < 2 or max_mm <= 0:
        raise ValueError("pck_auc needs at least two thresholds and a positive range")
    return float(np.mean([pck(err, mask, t) for t in np.linspace(0.0, max_mm, steps)]))


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
