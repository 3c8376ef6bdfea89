"""The tensors training reads, on the device it runs on (:mod:`cabinlift.devices`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cabinlift.devices import resolve_device as resolve_device  # cabinlift.lift imports it here
from cabinlift.lifters import Lifter
from cabinlift.metrics import to_units


@dataclass
class PoseTensors:
    """Inputs, targets (in training units) and masks of one data split, on the device."""

    x: torch.Tensor  # (N, J, 2)
    y: torch.Tensor  # (N, J, 3)
    mask: torch.Tensor  # (N, J) bool

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], unit_mm: float, device: torch.device
                    ) -> PoseTensors:
        """A whole split, its 3D targets (mm) in training units of ``unit_mm`` millimetres
        (runs select their rows by index, see :class:`cabinlift.training.recipe.RunSpec`)."""
        return cls(
            x=torch.as_tensor(arrays["x2d"], dtype=torch.float32, device=device),
            y=torch.as_tensor(to_units(arrays["y3d"], unit_mm), dtype=torch.float32,
                              device=device),
            mask=torch.as_tensor(arrays["mask"], dtype=torch.bool, device=device),
        )

    def __len__(self) -> int:
        return self.x.shape[0]


@torch.no_grad()
def predict(model: Lifter, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Eval-mode predictions in training units, (N, J, 3)."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out
