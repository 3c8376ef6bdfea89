"""The training engine: several runs of one lifter trained together as one vectorised model.

The runs of a setting share the architecture and the recipe and differ only in weights, data
and noise, so their parameters are stacked along a leading "run" dimension and one
``torch.func.vmap`` of the model's functional form computes all of them per step: one sequence
of larger kernels instead of one sequence of small kernels per run. That pays where a step is
bound by launching kernels (a GPU at these sizes); on a few CPU cores, where it is bound by
arithmetic, it gains little (benchmarks/training_engine.py). Runs stay independent: each has its
own slice of every parameter and batch-norm statistic, its own noise, and the per-run optimiser
in :mod:`cabinlift.training.optim` updates only the runs that took a step.

**Per-run noise.** The lifters are plain PyTorch modules (``nn.Dropout``, a timm-style
``DropPath``). When the engine stacks a lifter it puts :class:`NoiseDropout` /
:class:`NoiseDropPath` in their place: inside :func:`noise_from`, every dropout / DropPath mask is
read from a buffer of random 16-bit lanes that the engine draws, for each run and step, from that
run's own generator, the calls of a forward pass taking consecutive slices. A run's masks then
depend only on its own generator, not on which other runs are trained beside it: the same run gets
the same masks trained alone or stacked with others (where the buffer is batched by vmap), on any
device. A lane drops with probability ``p`` rounded to a multiple of 1/65536 (0.1 -> 0.1000061;
0.25 and 0.5 exact), and the survivors are scaled by the exact ``1 / (1 - p_effective)``, keeping
the expectation exact; drawing four 16-bit lanes per random 64-bit integer also costs a quarter of
``bernoulli_``'s one number per element (GraphMLP's token-MLP dropout touches 8.4 M elements per
block at batch 64).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from cabinlift.lifters import Lifter, build_lifter
from cabinlift.lifters.layers import DropPath
from cabinlift.training.optim import StackedAdam, clip_grad_norm_per_run

#: Building a lifter draws its initial weights from torch's global generator: one thread at a
#: time (the engine's worker threads build stacks concurrently).
BUILD_LOCK = threading.Lock()
_LANES = 65536  # 16-bit lanes
_LOCAL = threading.local()  # .scope: [int16 buffer or None (counting), lanes taken so far]


def _scope() -> list | None:
    return getattr(_LOCAL, "scope", None)


@contextmanager
def noise_from(buffer: torch.Tensor | None) -> Iterator[list]:
    """Take every dropout / DropPath mask inside the block from ``buffer`` (int16 random lanes,
    1-D; batched under vmap). With ``None`` nothing is dropped and the lanes a forward pass
    would take are only counted: the scope's ``[1]`` holds the count on exit."""
    prev = _scope()
    _LOCAL.scope = scope = [buffer, 0]
    try:
        yield scope
    finally:
        _LOCAL.scope = prev


def _take(shape: tuple[int, ...]) -> torch.Tensor | None:
    """The next ``prod(shape)`` lanes of the scope's buffer (None when only counting)."""
    scope = _scope()
    if scope is None:
        raise RuntimeError("a noise layer ran in training mode outside noise_from()")
    n = math.prod(shape)
    start = scope[1]
    scope[1] = start + n
    if scope[0] is None:
        return None
    if scope[1] > scope[0].shape[-1]:
        raise RuntimeError(
            f"noise buffer of {scope[0].shape[-1]} lanes is too short for this forward pass"
        )
    return scope[0][start: start + n].view(shape)


def keep_from_lanes(lanes: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """The inverted-dropout multiplier of uniform int16 ``lanes`` for ``k`` dropped lanes in
    65536: 0 for the lowest ``k`` lane values, ``1 / (1 - k / 65536)`` for the others."""
    return (lanes >= k - _LANES // 2).to(dtype).mul_(_LANES / (_LANES - k))


def _buffered_keep(x: torch.Tensor, shape: tuple[int, ...], p: float) -> torch.Tensor:
    """Inverted dropout of ``x`` with a mask of ``shape`` (broadcast) read from the buffer."""
    lanes = _take(shape)
    if lanes is None:
        return x
    k = round(p * _LANES)
    if k >= _LANES:
        return x * 0.0
    return x * keep_from_lanes(lanes, k, x.dtype)


class NoiseDropout(nn.Module):
    """``nn.Dropout`` whose mask comes from the run's noise buffer (see the module docstring)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return _buffered_keep(x, tuple(x.shape), self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class NoiseDropPath(nn.Module):
    """:class:`cabinlift.lifters.layers.DropPath` with its mask from the run's noise buffer."""

    def __init__(self, p: float, batch_dim: int) -> None:
        super().__init__()
        self.p = float(p)
        self.batch_dim = batch_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        shape = [1] * x.dim()
        shape[self.batch_dim] = x.shape[self.batch_dim]
        return _buffered_keep(x, tuple(shape), self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, batch_dim={self.batch_dim}"


def with_run_noise(model: nn.Module) -> nn.Module:
    """Put :class:`NoiseDropout` / :class:`NoiseDropPath` in place of every ``nn.Dropout`` /
    ``DropPath`` of ``model`` (in place; no parameter or state-dict key changes)."""
    for name, child in model.named_children():
        if isinstance(child, nn.Dropout):
            setattr(model, name, NoiseDropout(child.p))
        elif isinstance(child, DropPath):
            setattr(model, name, NoiseDropPath(child.p, child.batch_dim))
        else:
            with_run_noise(child)
    return model


def noise_seed(seed: int) -> int:
    """The seed of a run's dropout-noise generator (distinct from its batch-order seed)."""
    return (seed * 0x9E3779B1 + 0x7F4A7C15) % (2**63)


def draw_noise(gens: list[torch.Generator], runs: list[int], n_runs: int, lanes: int,
               device: torch.device) -> torch.Tensor:
    """int16 noise ``(n_runs, lanes)``: rows of ``runs`` drawn from their own generators (each
    run draws exactly once per step it takes), the other rows zero (stand-ins)."""
    words = (lanes + 3) // 4
    bits = torch.zeros(n_runs, max(words, 1), dtype=torch.int64, device=device)
    for r in runs:
        bits[r].random_(-(2**63), None, generator=gens[r])  # four uniform int16 lanes each
    return bits.view(torch.int16)[:, :lanes]


class _Call(nn.Module):
    """Routes ``functional_call`` to the model's forward (prediction) or its training loss
    (reduced as ``reduction`` says, see :func:`cabinlift.metrics.loss_denominator`)."""

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
    the training loss reduces a batch (:func:`cabinlift.metrics.loss_denominator`).

    With ``output_only`` (``finetune.strategy: frozen``, :mod:`cabinlift.training.finetuning`)
    only the parameters of the lifter's output layers are :attr:`trainable`; the others get no
    gradient, and every module outside the output layers computes as at inference while
    training (dropout off, batch norm with its stored statistics, which stay unchanged).
    """

    #: Noise lanes per (model, hyper-parameters, batch size), shared by all stacks.
    _LANES: dict[tuple[str, str, int], int] = {}

    def __init__(self, name: str, hparams: dict[str, Any],
                 states: Sequence[dict[str, torch.Tensor]], device: torch.device,
                 structure: Lifter | None = None,
                 loss_reduction: str = "coordinate_mean", output_only: bool = False) -> None:
        if not states:
            raise ValueError("StackedLifters needs at least one run")
        self.name = name
        self._hparams_key = json.dumps(hparams, sort_keys=True, default=str) + (
            " output_only" if output_only else "")
        self.n_runs = len(states)
        # Only the module structure and constant buffers of this model are used, with the
        # runs' own noise in place of its dropout.
        self.model = (structure if structure is not None else build_lifter(name, **hparams))
        self.model = with_run_noise(self.model.to(device))
        self._call = _Call(self.model, loss_reduction)
        self._keys = list(states[0])  # state-dict order, for unstacking
        param_names = {n for n, _ in self.model.named_parameters()}
        outputs = list(self.model.output_modules()) if output_only else [""]
        trained = [n for n in self._keys if n in param_names and _within(n, outputs)]
        self.params = {
            n: torch.stack([s[n] for s in states]).to(device).requires_grad_(n in trained)
            for n in self._keys if n in param_names
        }
        #: the parameters training updates (state-dict order)
        self.trainable = [self.params[n] for n in trained]
        #: the modules that compute as at inference while training (outside the output layers)
        self._fixed = [] if not output_only else [
            m for n, m in self.model.named_modules() if not _within(n, outputs)]
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
    def _training_mode(self) -> None:
        """Training mode, except for the fixed modules (see the class docstring)."""
        self.model.train()
        for module in self._fixed:
            module.training = False

    def noise_lanes(self, batch: int) -> int:
        """Random 16-bit lanes one training forward pass at ``batch`` samples takes (counted
        once per batch size with a dry run of the unstacked model)."""
        key = (self.name, self._hparams_key, batch)
        if key not in self._LANES:
            j = self.model.num_joints
            dev = next(self.model.parameters()).device
            with torch.no_grad(), noise_from(None) as scope:
                self._training_mode()
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
        self._training_mode()
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


def _within(name: str, modules: list[str]) -> bool:
    """Whether the parameter or module ``name`` is (in) one of ``modules`` ('' is the model)."""
    return any(m == "" or name == m or name.startswith(m + ".") for m in modules)


def build_stack(model_name: str, hparams: dict[str, Any], seeds: Sequence[int],
                init_states: Sequence[dict[str, torch.Tensor] | None], device: torch.device,
                loss_reduction: str, output_only: bool = False) -> StackedLifters:
    """The runs' initial weights, stacked: run ``r`` is built after ``torch.manual_seed(seeds[r])``
    (its random initialisation), then loaded with ``init_states[r]`` when given. With
    ``output_only`` only the output layers train (:class:`StackedLifters`)."""
    states, net = [], None
    with BUILD_LOCK:
        for seed, init in zip(seeds, init_states, strict=True):
            torch.manual_seed(seed)
            net = build_lifter(model_name, **hparams)
            if init is not None:
                net.load_state_dict(init)
            states.append(net.state_dict())  # stacked (copied) below
    return StackedLifters(model_name, hparams, states, device, structure=net,
                          loss_reduction=loss_reduction, output_only=output_only)


def train_step(stack: StackedLifters, opt: StackedAdam, batches: dict[int, torch.Tensor],
               x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
               noise_gens: list[torch.Generator], grad_clip: float,
               loss_sum: torch.Tensor) -> None:
    """One optimiser step of every run ``r`` in ``batches`` on its rows ``batches[r]`` of
    ``x``/``y``/``mask``: forward and loss, backward, each run's gradient (of the stack's
    trainable parameters) clipped to ``grad_clip``, Adam. Runs not in ``batches`` are left
    untouched. Each run's loss times its batch size is added to ``loss_sum`` (R,).

    Runs whose batches have different sizes are computed in one vectorised call per size:
    every run computes, the runs without a batch of that size on a stand-in (a member's rows)
    with no weight in the loss, so they get no gradient and no batch-norm update."""
    n_runs, device = stack.n_runs, x.device
    groups: dict[int, list[int]] = {}
    for r, rows in batches.items():
        groups.setdefault(len(rows), []).append(r)
    opt.zero_grad()
    total = None
    active: list[int] = []
    for size, rs in groups.items():
        stand_in = batches[rs[0]]
        idx = torch.stack([batches[r] if r in rs else stand_in for r in range(n_runs)])
        member = torch.zeros(n_runs, dtype=torch.bool, device=device)
        member[torch.tensor(rs, device=device)] = True
        noise = draw_noise(noise_gens, rs, n_runs, stack.noise_lanes(size), device)
        losses = stack.losses(None if len(rs) == n_runs else member, noise,
                              x[idx], y[idx], mask[idx])
        weighted = torch.where(member, losses, torch.zeros_like(losses))
        total = weighted.sum() if total is None else total + weighted.sum()
        loss_sum += weighted.detach() * size
        active += rs
    total.backward()
    clip_grad_norm_per_run(stack.trainable, grad_clip)
    opt.step(active)
