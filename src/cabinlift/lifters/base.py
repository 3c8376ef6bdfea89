"""The contract every lifter fulfils, so the training loop treats all five alike."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from cabinlift.hyperparams import HyperParameters
from cabinlift.lifters.losses import masked_mse
from cabinlift.skeleton import NUM_JOINTS


class Lifter(nn.Module):
    """Maps normalised 2D poses (B, J, 2) to neck-centred 3D poses (B, J, 3).

    ``Config`` is the typed, frozen config of the hyper-parameters params.yaml sets
    (:class:`cabinlift.hyperparams.HyperParameters`): each of its fields is a keyword argument
    of the constructor, which gives the official value as its default.

    ``training_loss`` is the model's training objective over valid joints; the default is the
    paper's masked MSE on the final prediction, reduced as ``reduction`` says
    (:func:`cabinlift.lifters.losses.loss_denominator`). Models with auxiliary outputs
    (JointFormer's intermediate poses and error predictions) override it.
    """

    Config: ClassVar[type[HyperParameters]]
    #: The submodule(s) that map the network's features to the prediction (dotted names; a
    #: negative index counts from the end of a ``ModuleList``): all that fine-tuning with
    #: ``finetune.strategy: frozen`` trains (:mod:`cabinlift.training.finetuning`).
    output_layers: ClassVar[tuple[str, ...]]

    @classmethod
    def from_config(cls, config: HyperParameters, num_joints: int = NUM_JOINTS) -> Lifter:
        """The lifter of ``config`` (an instance of :attr:`Config`)."""
        if not isinstance(config, cls.Config):
            raise TypeError(f"{cls.__name__} is built from a {cls.Config.__name__}, "
                            f"not a {type(config).__name__}")
        return cls(num_joints=num_joints,
                   **{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})

    def output_modules(self) -> dict[str, nn.Module]:
        """:attr:`output_layers` resolved: each submodule by its name in the state dict."""
        out = {}
        for dotted in self.output_layers:
            module: nn.Module = self
            names = []
            for part in dotted.split("."):
                if part.lstrip("-").isdigit():  # an index into a ModuleList / Sequential
                    part = str(range(len(module))[int(part)])
                    module = module[int(part)]
                else:
                    module = getattr(module, part)
                names.append(part)
            out[".".join(names)] = module
        return out

    def training_loss(
        self, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
        reduction: str = "coordinate_mean",
    ) -> torch.Tensor:
        return masked_mse(self(x), target, mask, reduction)
