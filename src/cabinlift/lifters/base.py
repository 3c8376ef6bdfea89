"""The contract every lifter fulfils, so the training loop treats all five alike."""

from __future__ import annotations

import torch
from torch import nn

from cabinlift.metrics import masked_mse


class Lifter(nn.Module):
    """Maps normalised 2D poses (B, J, 2) to neck-centred 3D poses (B, J, 3).

    ``training_loss`` is the model's training objective over valid joints; the default is the
    paper's masked MSE on the final prediction, reduced as ``reduction`` says
    (:func:`cabinlift.metrics.loss_denominator`). Models with auxiliary outputs (JointFormer's
    intermediate poses and error predictions) override it.
    """

    def training_loss(
        self, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
        reduction: str = "coordinate_mean",
    ) -> torch.Tensor:
        return masked_mse(self(x), target, mask, reduction)
