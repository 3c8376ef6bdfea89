"""SimpleBL: the residual MLP baseline of Martinez et al. (ICCV 2017).

Stem Linear(2J, 1024) -> BN -> ReLU -> Dropout, ``num_stage`` residual blocks of two such
Linear/BN/ReLU/Dropout units, head Linear(1024, 3J); Kaiming-normal Linear weights. With 13
neck-centred joints no joint is identically zero, so input and output keep all 13 joints.
"""

from __future__ import annotations

import torch
from torch import nn

from cabinlift.lifters.base import Lifter
from cabinlift.lifters.layers import Dropout


class _Unit(nn.Sequential):
    def __init__(self, n_in: int, n_out: int, dropout: float) -> None:
        super().__init__(nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU(), Dropout(dropout))


class _ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(_Unit(width, width, dropout), _Unit(width, width, dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SimpleBaseline(Lifter):
    def __init__(
        self, num_joints: int = 13, linear_size: int = 1024, num_stage: int = 2,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.stem = _Unit(2 * num_joints, linear_size, dropout)
        self.blocks = nn.Sequential(*[_ResidualBlock(linear_size, dropout) for _ in range(num_stage)])
        self.head = nn.Linear(linear_size, 3 * num_joints)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        h = self.blocks(self.stem(x.reshape(b, -1)))
        return self.head(h).reshape(b, self.num_joints, 3)
