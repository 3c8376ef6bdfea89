"""SimpleBL: the residual MLP baseline of Martinez et al. (ICCV 2017).

Stem Linear(2J, 1024) -> BN -> ReLU -> Dropout, ``num_stage`` residual blocks of two such
Linear/BN/ReLU/Dropout units, head Linear(1024, 3J); Kaiming-normal Linear weights. With 13
neck-centred joints no joint is identically zero, so input and output keep all 13 joints.

Two hyper-parameters select the variant the paper authors trained (the motokimura PyTorch port):
``activation="leaky_relu"`` puts LeakyReLU with negative slope 0.01 after every batch norm
instead of ReLU, and ``bias_init="zero"`` starts every Linear bias at 0 instead of PyTorch's
default uniform draw. The weights stay Kaiming-normal either way, and the random draws are the
same, so one seed gives the same weights in all four combinations. The parameter count is the
same (4,276,263 at 13 joints).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from cabinlift.errors import CabinliftError
from cabinlift.hyperparams import HyperParameters, Rate, Size
from cabinlift.lifters.base import Lifter

#: Negative slope of ``activation="leaky_relu"`` (PyTorch's default, as in the authors' code).
LEAKY_SLOPE = 0.01


@dataclass(frozen=True, kw_only=True)
class SimpleBLConfig(HyperParameters):
    """SimpleBL's hyper-parameters (``lifters.simplebl``)."""

    linear_size: Size
    num_stage: Size
    dropout: Rate
    activation: Literal["relu", "leaky_relu"]
    bias_init: Literal["default", "zero"]


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(LEAKY_SLOPE)
    raise CabinliftError(f"unknown SimpleBL activation {name!r}: expected 'relu' or 'leaky_relu'")


class _Unit(nn.Sequential):
    def __init__(self, n_in: int, n_out: int, dropout: float, activation: str) -> None:
        super().__init__(
            nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), _activation(activation), nn.Dropout(dropout)
        )


class _ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float, activation: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _Unit(width, width, dropout, activation), _Unit(width, width, dropout, activation)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SimpleBaseline(Lifter):
    """SimpleBL lifter; the defaults are the official model (ReLU, PyTorch's bias init)."""

    Config = SimpleBLConfig
    output_layers = ("head",)

    def __init__(
        self, num_joints: int = 13, linear_size: int = 1024, num_stage: int = 2,
        dropout: float = 0.5,
        activation: Literal["relu", "leaky_relu"] = "relu",
        bias_init: Literal["default", "zero"] = "default",
    ) -> None:
        super().__init__()
        if bias_init not in ("default", "zero"):
            raise CabinliftError(
                f"unknown SimpleBL bias_init {bias_init!r}: expected 'default' or 'zero'"
            )
        self.num_joints = num_joints
        self.stem = _Unit(2 * num_joints, linear_size, dropout, activation)
        self.blocks = nn.Sequential(
            *[_ResidualBlock(linear_size, dropout, activation) for _ in range(num_stage)]
        )
        self.head = nn.Linear(linear_size, 3 * num_joints)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                if bias_init == "zero":
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        h = self.blocks(self.stem(x.reshape(b, -1)))
        return self.head(h).reshape(b, self.num_joints, 3)
