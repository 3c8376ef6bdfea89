"""The lifters' training loss: the masked squared error of the valid joints and how it reduces a
batch (``train.loss_reduction``). It lives with the lifters (torch and the ground floor only, so a
lifter copied out of the package takes it along); :mod:`cabinlift.metrics` imports it with every
other error of the project.
"""

from __future__ import annotations

import torch

from cabinlift.hyperparams import LOSS_REDUCTIONS


def loss_denominator(mask: torch.Tensor, reduction: str, copies: int = 1) -> torch.Tensor:
    """What a masked sum of squared errors over ``copies`` stacked predictions of poses with
    joint mask ``mask`` (B, J) is divided by under ``reduction``, one of
    :data:`cabinlift.hyperparams.LOSS_REDUCTIONS` (``train.loss_reduction``):

    * ``coordinate_mean``: the mean over the x, y, z coordinates of the valid joints only (an
      unannotated joint is in neither the sum nor the count);
    * ``xyz_sum_joint_mean``: the squared Euclidean error of each joint (the sum over x, y, z),
      averaged over all B x J joints; unannotated joints add zero to the sum but count in the
      denominator (what the paper's authors' code computes)."""
    if reduction == "coordinate_mean":
        return (mask.sum() * 3 * copies).clamp_min(1.0)
    if reduction == "xyz_sum_joint_mean":  # a bool mask's own dtype would hold only True
        dtype = mask.dtype if mask.is_floating_point() else torch.get_default_dtype()
        return torch.full((), float(mask.numel() * copies), dtype=dtype, device=mask.device)
    raise ValueError(f"unknown loss reduction {reduction!r}; expected one of {LOSS_REDUCTIONS}")


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
               reduction: str = "coordinate_mean") -> torch.Tensor:
    """Squared error of the valid joints, reduced by ``reduction`` (see :func:`loss_denominator`;
    the default is the mean over the coordinates of valid joints).

    pred, target: (B, J, 3); mask: (B, J) bool or 0/1. Returns a scalar; 0 when nothing is valid.
    """
    m = mask.to(pred.dtype)
    sq = (pred - target).square() * m.unsqueeze(-1)
    return sq.sum() / loss_denominator(m, reduction)
