"""The paper's uniform training recipe (Section 2), identical for pre-training and fine-tuning.

Adam at ``lr``, decayed by ``lr_decay`` after every epoch; batches of ``batch_size`` drawn from a
seeded permutation of tensors held in memory (no per-sample Dataset/DataLoader); gradient norm
clipped to ``grad_clip``; the model's masked training loss; validation MPJPE every ``val_every``
epochs (and after the last epoch); the best-validation weights are kept; training stops after
``patience`` validations without improvement or after ``max_epochs``.

Recipe details the paper leaves open, each a ``train`` parameter: how the loss reduces a batch
(``loss_reduction``, :func:`cabinlift.metrics.loss_denominator`) and in which unit it sees the
targets (``target_unit_mm``); whether an epoch drops its partial last batch (``drop_last``, as a
PyTorch ``DataLoader`` does; without it, only a last batch of a single sample is dropped, since
batch norm cannot normalise one sample, and it is drawn again next epoch); and whether the
starting weights are validated before the first epoch (``validate_start``), so that they are a
candidate for the best checkpoint and fine-tuning can never end worse on validation than it
started.

All runs of a stage are trained together by :func:`train_runs` (a single run is a group of
one): same results per run, far fewer and larger kernels (see :mod:`cabinlift.training.engine`).
A long stack snapshots its state at epoch boundaries and, started again, continues from its
last snapshot (:mod:`cabinlift.training.snapshot`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from cabinlift.errors import CabinliftError
from cabinlift.metrics import mpjpe, to_mm
from cabinlift.training.data import PoseTensors
from cabinlift.training.engine import StackedLifters, build_stack, noise_seed, train_step
from cabinlift.training.finetuning import SEQUENTIAL, Strategy, mixed_batches, mixing_seed
from cabinlift.training.optim import StackedAdam
from cabinlift.training.snapshot import Snapshots, StackProgress
from cabinlift.training.store import RunStore

if TYPE_CHECKING:
    from cabinlift.config import Train


@dataclass(frozen=True)
class Recipe:
    """The ``train`` section of params.yaml: the recipe every pre-training and fine-tuning run
    follows (see the module docstring)."""

    lr: float
    lr_decay: float
    batch_size: int
    grad_clip: float
    max_epochs: int
    val_every: int
    patience: int
    target_unit_mm: float  # the loss sees targets in units of this many millimetres
    eval_batch_size: int = 4096
    loss_reduction: str = "coordinate_mean"  # config.LOSS_REDUCTIONS
    drop_last: bool = False  # drop every partial last batch (else only a single-sample one)
    validate_start: bool = False  # validate the starting weights (epoch 0) as a best candidate

    @classmethod
    def from_config(cls, train: Train) -> Recipe:
        """The recipe of params.yaml's ``train`` section (validated there)."""
        return cls(**{f.name: getattr(train, f.name) for f in dataclasses.fields(cls)})


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]
    best_val_mpjpe: float  # mm
    best_epoch: int  # 0: the starting weights (only with ``validate_start``)
    epochs_run: int
    wall_time_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0  # optimiser steps taken
    stopped_early: bool = False  # ended by early stopping (else by max_epochs)


@dataclass
class RunSpec:
    """One training run: its seed (weights init, batch order, noise), its training rows
    (indices into the pool; None = all) and optional starting weights."""

    seed: int
    indices: np.ndarray | None = None
    init_state: dict[str, torch.Tensor] | None = None


def epoch_batches(rows: torch.Tensor, order: torch.Generator, recipe: Recipe) -> list[torch.Tensor]:
    """One epoch of a run: its ``rows`` in a fresh permutation drawn from its own generator,
    cut into batches of ``batch_size``; the partial last batch is dropped with ``drop_last``,
    else only a last batch of one sample (which batch norm cannot normalise)."""
    parts = list(torch.randperm(len(rows), generator=order).to(rows.device).split(recipe.batch_size))
    if recipe.drop_last and len(parts[-1]) < recipe.batch_size:
        parts.pop()  # as DataLoader(drop_last=True): fewer rows than a batch, no step
    elif len(parts) > 1 and len(parts[-1]) == 1:
        parts.pop()  # drawn again next epoch
    return [rows[p] for p in parts]


def validation_mpjpe(stack: StackedLifters, data: PoseTensors, recipe: Recipe) -> list[float]:
    """Per-run MPJPE in millimetres over the valid joints of ``data``."""
    pred = stack.predict(data.x, recipe.eval_batch_size)  # (R, N, J, 3)
    return to_mm(mpjpe(pred, data.y, data.mask), recipe.target_unit_mm).tolist()


def _record(epoch: int, lr: float, train_loss: float | None, val: float
            ) -> dict[str, float | None]:
    """One validation in a run's history."""
    return {"epoch": epoch, "lr": lr, "train_loss": train_loss, "val_mpjpe": val}


class _BestWeights:
    """Each run's validations, its best weights so far and its early stopping: a run stops
    after ``patience`` validations in a row without a new best."""

    def __init__(self, stack: StackedLifters, specs: list[RunSpec], patience: int, desc: str
                 ) -> None:
        n = len(specs)
        self.stack, self.specs, self.patience, self.desc = stack, specs, patience, desc
        self.weights = stack.snapshot()
        self.val = [float("inf")] * n
        self.epoch, self.bad, self.stopped = [0] * n, [0] * n, [False] * n
        self.history: list[list[dict[str, float | None]]] = [[] for _ in specs]

    def live(self) -> list[int]:
        return [r for r, s in enumerate(self.stopped) if not s]

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`validated` has accumulated (the live objects, not copies)."""
        return {"weights": self.weights, "val": self.val, "epoch": self.epoch, "bad": self.bad,
                "stopped": self.stopped, "history": self.history}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (:meth:`state_dict`'s layout and shapes)."""
        for name, tensor in self.weights.items():
            tensor.copy_(state["weights"][name])
        self.val, self.epoch = list(state["val"]), list(state["epoch"])
        self.bad, self.stopped = list(state["bad"]), list(state["stopped"])
        # rebuilt with this module's key strings: a pickled history (in a checkpoint) then
        # shares its keys between loaded and new records, as an uninterrupted run's does
        self.history = [[_record(h["epoch"], h["lr"], h["train_loss"], h["val_mpjpe"])
                         for h in run] for run in state["history"]]

    def validated(self, r: int, epoch: int, lr: float, train_loss: float | None, val: float
                  ) -> None:
        if not np.isfinite(val):
            raise CabinliftError(f"{self.desc}: run {r} (seed {self.specs[r].seed}): validation "
                                 f"MPJPE is not finite at epoch {epoch}")
        self.history[r].append(_record(epoch, lr, train_loss, val))
        if val < self.val[r]:
            self.val[r], self.epoch[r], self.bad[r] = val, epoch, 0
            self.stack.keep(self.weights, r)
        else:
            self.bad[r] += 1
            self.stopped[r] = self.bad[r] >= self.patience


def _pool_rows(spec: RunSpec, n_pool: int, device: torch.device) -> torch.Tensor:
    if spec.indices is None:
        return torch.arange(n_pool, device=device)
    return torch.as_tensor(np.asarray(spec.indices, dtype=np.int64), device=device)


def train_runs(model_name: str, hparams: dict[str, Any], specs: list[RunSpec],
               pool: PoseTensors, val_data: PoseTensors, recipe: Recipe,
               desc: str = "train", progress: bool = True, store: RunStore | None = None,
               keys: list[str | None] | None = None, log: Callable[[str], None] | None = None,
               epoch_hook: Callable[[int], None] | None = None,
               strategy: Strategy = SEQUENTIAL, synthetic: PoseTensors | None = None
               ) -> tuple[list[TrainResult], StackedLifters]:
    """Train the runs ``specs`` of one model with the recipe, together (one vectorised model,
    :mod:`cabinlift.training.engine`).

    Each run is what training it alone would give (up to floating-point reassociation): its
    weights start from ``torch.manual_seed(seed)`` (then ``init_state``), every epoch it draws
    its own permutation of its own rows from ``Generator(seed)``, its dropout noise from its own
    generator (one draw per step it takes), and it is clipped, updated, validated, early-stopped
    and checkpointed on its own. An epoch is one pass over each run's own rows; a run whose
    epoch has fewer batches waits (no update) while the others finish theirs, and stopped runs
    take no more steps.

    With a ``store`` and the runs' store ``keys``, the stack's state is snapshotted there as
    the store's snapshot settings say, and a stack whose snapshot exists continues from it
    (:mod:`cabinlift.training.snapshot`; ``log`` receives the stage's log lines); the caller
    removes the snapshot once it has stored the results. ``epoch_hook`` is called with every
    finished epoch, after its snapshot.

    ``strategy`` is how pre-trained runs are fine-tuned (:mod:`cabinlift.training.finetuning`;
    its learning rate is already in ``recipe``): ``frozen`` trains only the output layers,
    ``mixed`` adds rows of ``synthetic`` (the synthetic training poses) to every batch, drawn by
    a generator of each run's own.
    Returns one result per run (best-validation weights) and the stacked model holding them.
    """
    if not specs:
        raise CabinliftError(f"{desc}: no runs to train")
    device = pool.x.device
    rows = [_pool_rows(s, len(pool), device) for s in specs]
    for r in rows:
        if len(r) < 2:
            raise CabinliftError(f"{desc}: at least 2 training samples are needed, got {len(r)}")
    mixing: list[torch.Generator] = []
    if strategy.mixed:
        if synthetic is None:
            raise CabinliftError(f"{desc}: mixed fine-tuning needs the synthetic training poses")
        synthetic_rows = torch.arange(len(pool), len(pool) + len(synthetic), device=device)
        pool = PoseTensors(*(torch.cat([a, b]) for a, b in (
            (pool.x, synthetic.x), (pool.y, synthetic.y), (pool.mask, synthetic.mask))))
        mixing = [torch.Generator().manual_seed(mixing_seed(s.seed)) for s in specs]
        per_batch = strategy.synthetic_per_batch(recipe.batch_size)
    start = time.perf_counter()
    stack = build_stack(model_name, hparams, [s.seed for s in specs],
                        [s.init_state for s in specs], device, recipe.loss_reduction,
                        output_only=strategy.frozen)
    opt = StackedAdam(stack.trainable, lr=recipe.lr)
    order = [torch.Generator().manual_seed(s.seed) for s in specs]
    noise = [torch.Generator(device=device).manual_seed(noise_seed(s.seed)) for s in specs]
    best = _BestWeights(stack, specs, recipe.patience, desc)
    epochs_run, steps = [0] * len(specs), [0] * len(specs)
    training = StackProgress(stack, opt, order, noise, best, epochs_run, steps, started=start,
                             mixing=mixing)
    snapshots = Snapshots.of(store, keys, recipe.max_epochs, desc, log)
    resumed = snapshots.resume(training)  # the epoch a snapshot of this stack reached, or 0
    if recipe.validate_start and not resumed:  # the starting weights are the first candidate
        for r, val in enumerate(validation_mpjpe(stack, val_data, recipe)):
            best.validated(r, 0, opt.lr, None, val)
    bar = tqdm(range(resumed + 1, recipe.max_epochs + 1), desc=desc, unit="ep", leave=False,
               mininterval=2, disable=not progress, initial=resumed, total=recipe.max_epochs)
    for epoch in bar:
        live = best.live()
        if not live:
            break
        lr = opt.lr
        if mixing:
            batches = {r: mixed_batches(rows[r], order[r], mixing[r], synthetic_rows,
                                        recipe.batch_size, per_batch, recipe.drop_last)
                       for r in live}
        else:
            batches = {r: epoch_batches(rows[r], order[r], recipe) for r in live}
        loss_sum = torch.zeros(len(specs), device=device)
        for t in range(max(len(b) for b in batches.values())):
            step = {r: batches[r][t] for r in live if t < len(batches[r])}
            train_step(stack, opt, step, pool.x, pool.y, pool.mask, noise, recipe.grad_clip,
                       loss_sum)
        opt.lr *= recipe.lr_decay  # as ExponentialLR does it
        for r in live:
            epochs_run[r] = epoch
            steps[r] += len(batches[r])
        if epoch % recipe.val_every == 0 or epoch == recipe.max_epochs:
            vals, losses = validation_mpjpe(stack, val_data, recipe), loss_sum.tolist()
            for r in live:
                n_used = sum(len(b) for b in batches[r])
                best.validated(r, epoch, lr, losses[r] / n_used if n_used else None, vals[r])
            bar.set_postfix(val_mpjpe=f"{min(vals[r] for r in live):.1f}")
        snapshots.epoch_done(training, epoch)
        if epoch_hook is not None:
            epoch_hook(epoch)
    bar.close()
    stack.load(best.weights)
    wall = training.elapsed_s() / len(specs)
    results = [
        TrainResult(stack.state_dict_of(best.weights, r), best.val[r], best.epoch[r],
                    epochs_run[r], wall, best.history[r], steps[r], best.stopped[r])
        for r in range(len(specs))
    ]
    return results, stack
