"""Several independent copies of one lifter, trained together as one vectorised model.

The runs of a setting share the architecture and the recipe and differ only in weights, data
and noise, so their parameters are stacked along a leading "run" dimension and one
``torch.func.vmap`` of the model's functional form computes all of them per step: one sequence
of larger kernels instead of one sequence of small kernels per run. That pays where a step is
bound by launching kernels (a GPU at these sizes); on a few CPU cores, where it is bound by
arithmetic, it gains little (README, *Training engine*). Runs stay independent: each has its
own slice of every parameter and batch-norm statistic, its own noise
(:func:`cabinlift.lifters.layers.noise_from`), and the per-run optimiser in
:mod:`cabinlift.optim` updates only the runs that took a step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from cabinlift.lifters import Lifter, build_lifter
from cabinlift.lifters.layers import noise_from


class _Call(nn.Module):
    """Routes ``functional_call`` to the model's forward (prediction) or its training loss
    (reduced as ``reduction`` says, see :data:`cabinlift.metrics.LOSS_REDUCTIONS`)."""

    def __init__(self, model: Lifter, reduction: str) -> None:
        super().__init__()
        self.model = model
        self.reduction = reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            return self.model(x)
        return self.model.training_loss(x, y, mask, self.reduction)


class StackedLifters:
    """``R`` lifters of one architecture with stacked weights (``params[name]`` is (R, ...)).

    ``states`` are the runs' initial state dicts (random init or pre-trained weights). Buffers
    that belong to the state dict (batch-norm statistics) are stacked and updated per run;
    the others (graph matrices) are constants shared by all runs. ``loss_reduction`` is how
    the training loss reduces a batch (:data:`cabinlift.metrics.LOSS_REDUCTIONS`).
    """

    #: Noise lanes per (model, hyper-parameters, batch size), shared by all stacks.
    _LANES: dict[tuple[str, str, int], int] = {}

    def __init__(self, name: str, hparams: dict[str, Any],
                 states: Sequence[dict[str, torch.Tensor]], device: torch.device,
                 structure: Lifter | None = None,
                 loss_reduction: str = "coordinate_mean") -> None:
        if not states:
            raise ValueError("StackedLifters needs at least one run")
        self.name = name
        self._hparams_key = json.dumps(hparams, sort_keys=True, default=str)
        self.n_runs = len(states)
        # Only the module structure and constant buffers of this model are used.
        self.model = (structure if structure is not None else build_lifter(name, **hparams))
        self.model = self.model.to(device)
        self._call = _Call(self.model, loss_reduction)
        self._keys = list(states[0])  # state-dict order, for unstacking
        param_names = {n for n, _ in self.model.named_parameters()}
        self.params = {
            n: torch.stack([s[n] for s in states]).to(device).requires_grad_(True)
            for n in self._keys if n in param_names
        }
        self.state = {
            n: torch.stack([s[n] for s in states]).to(device)
            for n in self._keys if n not in param_names
        }
        self.consts = {
            f"model.{n}": b for n, b in self.model.named_buffers() if n not in self.state
        }
        self._loss = vmap(self._loss_one, in_dims=(0, 0, 0, 0, 0, 0), randomness="error")
        self._pred = vmap(self._pred_one, in_dims=(0, 0, None), randomness="error")

    # -- functional forms of one run (vmapped over the run dimension) --
    def _tensors(self, p: dict[str, torch.Tensor], s: dict[str, torch.Tensor]
                 ) -> dict[str, torch.Tensor]:
        out = {f"model.{n}": v for n, v in p.items()}
        out.update({f"model.{n}": v for n, v in s.items()})
        out.update(self.consts)
        return out

    def _loss_one(self, p, s, noise, x, y, mask) -> torch.Tensor:
        with noise_from(noise):
            return functional_call(self._call, self._tensors(p, s), (x, y, mask))

    def _pred_one(self, p, s, x) -> torch.Tensor:
        return functional_call(self._call, self._tensors(p, s), (x,))

    # -- training and prediction --
    def noise_lanes(self, batch: int) -> int:
        """Random 16-bit lanes one training forward pass at ``batch`` samples takes (counted
        once per batch size with a dry run of the unstacked model)."""
        key = (self.name, self._hparams_key, batch)
        if key not in self._LANES:
            j = self.model.num_joints
            dev = next(self.model.parameters()).device
            with torch.no_grad(), noise_from(None) as scope:
                self.model.train()
                self._call(torch.zeros(batch, j, 2, device=dev),
                           torch.zeros(batch, j, 3, device=dev),
                           torch.ones(batch, j, dtype=torch.bool, device=dev))
            self._LANES[key] = scope[1]
        return self._LANES[key]

    def losses(self, members: torch.Tensor | None, noise: torch.Tensor, x: torch.Tensor,
               y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Training losses ``(R,)`` of every run on ``x (R, b, J, 2)``, ``y (R, b, J, 3)``,
        ``mask (R, b, J)``, with dropout masks from ``noise`` (int16 (R, noise_lanes(b))).
        ``members`` (bool (R,), None = all) marks the runs whose batch this is: only their
        batch-norm statistics are updated; the others ran on stand-in data, and the caller
        must give their losses no weight (their gradients are then zero)."""
        self.model.train()
        if members is None or not self.state:
            return self._loss(self.params, self.state, noise, x, y, mask)
        # Fresh copies take this call's in-place statistic updates: the tensors an earlier
        # call of the same step saved for its backward pass must not change.
        fresh = {n: v.clone() for n, v in self.state.items()}
        out = self._loss(self.params, fresh, noise, x, y, mask)
        with torch.no_grad():
            for n, v in fresh.items():
                keep = members.view((-1,) + (1,) * (v.dim() - 1))
                self.state[n] = torch.where(keep, v, self.state[n])
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Eval-mode predictions of every run for shared inputs ``x (N, J, 2)``: (R, N, J, 3)
        in training units. ``batch_size`` bounds the samples in flight over all runs."""
        self.model.eval()
        chunk = max(1, batch_size // self.n_runs)
        p = {n: v.detach() for n, v in self.params.items()}
        outs = [self._pred(p, self.state, x[i: i + chunk]) for i in range(0, len(x), chunk)]
        return torch.cat(outs, dim=1)

    # -- state handling --
    def snapshot(self) -> dict[str, torch.Tensor]:
        """A detached copy of every stacked tensor (parameters and statistics)."""
        return {n: v.detach().clone() for n, v in {**self.params, **self.state}.items()}

    @torch.no_grad()
    def keep(self, snapshot: dict[str, torch.Tensor], run: int) -> None:
        """Copy run ``run``'s current weights into ``snapshot`` (its best so far)."""
        for n, v in {**self.params, **self.state}.items():
            snapshot[n][run].copy_(v[run])

    @torch.no_grad()
    def load(self, snapshot: dict[str, torch.Tensor]) -> None:
        """Set every run's weights from ``snapshot``."""
        for n, v in {**self.params, **self.state}.items():
            v.copy_(snapshot[n])

    def state_dict_of(self, snapshot: dict[str, torch.Tensor], run: int
                      ) -> dict[str, torch.Tensor]:
        """Run ``run``'s state dict (the single model's keys and order) from ``snapshot``."""
        return {n: snapshot[n][run].clone() for n in self._keys}
