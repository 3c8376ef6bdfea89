"""Snapshots of a stack of runs in training, so that a run killed half-way resumes mid-run.

At an epoch boundary, after ``store.snapshot_every_epochs`` epochs or ``store.snapshot_minutes``
minutes since the last snapshot (whichever comes first), the stack's whole state is written to
the run store (atomically): the stacked weights and batch-norm statistics, the optimiser (both
moments, each run's step counts, the current learning rate), the state of every generator
training draws from (each run's batch order and dropout noise, and with mixed fine-tuning its
synthetic rows; nothing else is drawn after the weights are initialised), each run's best
weights, best validation, best epoch, validations without improvement, stopped flag and history,
its epochs run and steps taken, and the epoch reached. Training started again with the same runs
(the same store keys, which hold everything a result depends on) loads it and continues with the
next epoch, and ends with the bytes an uninterrupted run ends with. A snapshot that cannot be
read, or was written for other runs, is ignored (logged): the stack trains from its first epoch.

The file is ``<digest of the stack's keys>.snapshot.pt`` beside the store's entries
(:meth:`cabinlift.training.store.RunStore.snapshot_path`); the caller removes it once the
stack's runs are stored.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from cabinlift import atomic
from cabinlift.errors import CabinliftError
from cabinlift.training.engine import StackedLifters
from cabinlift.training.optim import StackedAdam
from cabinlift.training.store import RunStore

#: bump when the snapshot layout changes
FORMAT = 1


class BestSoFar(Protocol):
    """What a snapshot keeps of the runs' validations: their state, and which runs still train
    (the recipe's early stopping, :mod:`cabinlift.training.recipe`)."""

    def live(self) -> list[int]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _stderr(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


@dataclass
class StackProgress:
    """Everything the training of a stack has reached at an epoch boundary: the objects the
    recipe loop works on (a snapshot is their state; resuming sets it in place)."""

    stack: StackedLifters
    opt: StackedAdam
    order: list[torch.Generator]  # each run's batch order
    noise: list[torch.Generator]  # each run's dropout noise
    best: BestSoFar
    epochs_run: list[int]
    steps: list[int]
    started: float = field(default_factory=time.perf_counter)  # this process's start
    earlier_s: float = 0.0  # training time of the processes before a resume
    mixing: list[torch.Generator] = field(default_factory=list)  # synthetic rows (mixed only)

    def elapsed_s(self) -> float:
        """Training time so far, over every process that trained this stack."""
        return self.earlier_s + time.perf_counter() - self.started

    def state(self) -> dict[str, Any]:
        """The state a snapshot keeps (live tensors; written before training goes on)."""
        stack = self.stack
        return {
            "weights": {n: v.detach() for n, v in {**stack.params, **stack.state}.items()},
            "optimizer": self.opt.state_dict(),
            "order": [g.get_state() for g in self.order],
            "noise": [g.get_state() for g in self.noise],
            "best": self.best.state_dict(),
            "epochs_run": list(self.epochs_run),
            "steps": list(self.steps),
            **({"mixing": [g.get_state() for g in self.mixing]} if self.mixing else {}),
        }

    def load(self, state: dict[str, Any]) -> None:
        """Set everything from ``state`` (laid out as :meth:`state`'s; checked beforehand)."""
        self.stack.load(state["weights"])
        self.opt.load_state_dict(state["optimizer"])
        for gens, states in ((self.order, state["order"]), (self.noise, state["noise"]),
                             (self.mixing, state.get("mixing", []))):
            for g, s in zip(gens, states, strict=True):
                g.set_state(s)
        self.best.load_state_dict(state["best"])
        self.epochs_run[:] = state["epochs_run"]
        self.steps[:] = state["steps"]


#: lists that grow during training: a snapshot's has one item per run, of any length
_GROWING = ("state.best.history",)


def _check_like(saved: Any, current: Any, where: str) -> None:
    """Raise ValueError unless ``saved`` has ``current``'s layout: the same dict keys, list
    lengths, tensor shapes and dtypes (for the lists of :data:`_GROWING`, one list per run)."""
    if isinstance(current, torch.Tensor):
        if not isinstance(saved, torch.Tensor) or saved.shape != current.shape \
                or saved.dtype != current.dtype:
            raise ValueError(f"{where}: expected a {current.dtype} tensor of shape "
                             f"{tuple(current.shape)}")
    elif isinstance(current, dict):
        if not isinstance(saved, dict) or set(saved) != set(current):
            raise ValueError(f"{where}: expected the keys {sorted(current)}")
        for k, v in current.items():
            _check_like(saved[k], v, f"{where}.{k}")
    elif isinstance(current, list):
        if not isinstance(saved, list) or len(saved) != len(current):
            raise ValueError(f"{where}: expected a list of {len(current)}")
        if where in _GROWING:
            if not all(isinstance(s, list) for s in saved):
                raise ValueError(f"{where}: expected one list per run")
            return
        for i, (s, c) in enumerate(zip(saved, current, strict=True)):
            _check_like(s, c, f"{where}[{i}]")
    elif isinstance(saved, dict | list | torch.Tensor):
        raise ValueError(f"{where}: expected a number, got a {type(saved).__name__}")


class Snapshots:
    """When and where one stack writes its snapshots; with no ``path`` (store disabled, or no
    bound set) it writes and resumes nothing."""

    def __init__(self, path: Path | None, keys: list[str | None], every_epochs: int | None,
                 minutes: float | None, max_epochs: int, desc: str,
                 log: Callable[[str], None] = _stderr) -> None:
        self.path, self.keys = path, list(keys)
        self.every_epochs, self.minutes = every_epochs, minutes
        self.max_epochs, self.desc, self.log = max_epochs, desc, log
        self._last_epoch, self._last_time = 0, time.monotonic()

    @classmethod
    def of(cls, store: RunStore | None, keys: list[str | None] | None, max_epochs: int,
           desc: str, log: Callable[[str], None] | None = None) -> Snapshots:
        """The snapshots of the stack of runs ``keys`` in ``store`` (its snapshot settings)."""
        every = minutes = path = None
        if store is not None and keys:
            every, minutes = store.snapshot_every_epochs, store.snapshot_minutes
            if every is not None or minutes is not None:
                path = store.snapshot_path(keys)
        return cls(path, keys or [], every, minutes, max_epochs, desc, log or _stderr)

    def resume(self, progress: StackProgress) -> int:
        """Load this stack's snapshot into ``progress``; returns the epoch it had reached (0:
        none, or one that cannot be trusted, and training starts from the first epoch)."""
        if self.path is None or not self.path.is_file():
            return 0
        try:
            snap = torch.load(self.path, map_location="cpu", weights_only=True)
            if not isinstance(snap, dict) or snap.get("format") != FORMAT:
                raise ValueError(f"not a snapshot of format {FORMAT}")
            if snap.get("keys") != self.keys:
                raise ValueError("it was written for other runs")
            epoch = snap.get("epoch")
            if not isinstance(epoch, int) or not 1 <= epoch < self.max_epochs:
                raise ValueError(f"epoch {epoch!r} is not in [1, {self.max_epochs})")
            _check_like(snap.get("state"), progress.state(), "state")
        except Exception as exc:  # noqa: BLE001 - a damaged snapshot is retrained, never trusted
            self.log(f"{self.desc}: ignoring the snapshot {self.path} ({exc}); training from "
                     f"the start")
            return 0
        progress.load(snap["state"])
        progress.earlier_s = float(snap.get("elapsed_s", 0.0))
        self._last_epoch, self._last_time = epoch, time.monotonic()
        self.log(f"{self.desc}: resumed from a snapshot at epoch {epoch} of {self.max_epochs}")
        return epoch

    def epoch_done(self, progress: StackProgress, epoch: int) -> None:
        """Write a snapshot after ``epoch`` when one is due (not after the last epoch: the
        stack is finished then). A snapshot that cannot be written (a full disk) is logged and
        training goes on."""
        if self.path is None or epoch >= self.max_epochs or not progress.best.live():
            return
        due_epochs = self.every_epochs is not None and \
            epoch - self._last_epoch >= self.every_epochs
        due_time = self.minutes is not None and \
            time.monotonic() - self._last_time >= self.minutes * 60
        if not (due_epochs or due_time):
            return
        snap = {"format": FORMAT, "keys": self.keys, "epoch": epoch,
                "elapsed_s": progress.elapsed_s(), "state": _to_cpu(progress.state())}
        try:
            atomic.save_torch(self.path, snap)
        except (CabinliftError, OSError) as exc:
            self.log(f"{self.desc}: no snapshot written at epoch {epoch} ({exc}); training "
                     f"goes on")
        self._last_epoch, self._last_time = epoch, time.monotonic()


def _to_cpu(tree: Any) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree.cpu()
    if isinstance(tree, dict):
        return {k: _to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_to_cpu(v) for v in tree]
    return tree
