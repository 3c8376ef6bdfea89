"""Finished training runs kept outside DVC's outputs, so that an interrupted stage resumes.

DVC deletes a stage's outputs before it runs the stage again, and a fine-tuning stage trains
every run of one (model, init): a crash after hours would otherwise cost all of them. Each run,
as soon as it is finished, is also written to ``<store>/<key>.pt`` (atomically), where the key
hashes everything its result depends on: the model and its hyper-parameters, the training
recipe, the run's seed and training rows, the bytes of the data files and of the starting
checkpoint, how a pre-trained run is fine-tuned where that is not the paper's way, the
training code (every module a run executes, :mod:`cabinlift.sources`), the numerics regime
(mode, library versions, probe digest, device; :mod:`cabinlift.numerics`), the threads it
trains on, and the runs it is stacked with (:func:`stage_key`, :func:`pretrain_key`,
:func:`finetune_keys` compose them). A re-run reuses an entry only when the key matches;
anything else is trained again. An entry that cannot be read is trained again and overwritten.

A stack of runs still training keeps a snapshot of its state beside the entries
(``<digest of its keys>.snapshot.pt``, :mod:`cabinlift.training.snapshot`), so that a run killed
half-way resumes from its last snapshot; it is removed once the stack's runs are stored.
Snapshots are not entries (:meth:`RunStore.entries` lists finished runs only), but they take
space like entries: :meth:`RunStore.size` and the clean-up count them, so a snapshot nothing
resumes any more (its params changed) is removed in its turn.

The folder is git- and DVC-ignored (``store.dir`` in params.yaml; null disables it), can be
deleted at any time, and is kept under ``store.max_gb`` by removing the least recently used
files (entries and snapshots) after every training stage and by ``cabinlift store clean``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cabinlift import atomic, numerics, sources

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from cabinlift.config import Store

#: bump when the entry format or the meaning of a key changes
FORMAT = 2
SNAPSHOT_SUFFIX = ".snapshot.pt"


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def code_version(model: str, root: Path = sources.PACKAGE_ROOT) -> str:
    """Digest of every module a training run of ``model`` executes (its import closure,
    :func:`cabinlift.sources.training_modules`; read from ``root``, the running code's package
    by default). The library versions are part of the numerics regime, keyed beside it."""
    return sources.digest_of(sources.training_modules(model, root), root)["digest"]


def digest(value: Any) -> str:
    """Key of a JSON-able description (arrays by the hash of their bytes)."""
    def enc(o: Any) -> Any:
        if isinstance(o, np.ndarray):
            return {"dtype": str(o.dtype), "shape": list(o.shape),
                    "sha256": hashlib.sha256(np.ascontiguousarray(o).tobytes()).hexdigest()}
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, np.integer | np.floating):
            return o.item()
        raise TypeError(f"cannot key a {type(o).__name__}")

    text = json.dumps(value, sort_keys=True, default=enc)
    return hashlib.sha256(text.encode()).hexdigest()


def stage_key(model: str, hparams: dict[str, Any], recipe: DataclassInstance, device: str,
              threads: int, data: list[Path]) -> dict[str, Any]:
    """What every run of a stage shares in its key: the lifter, its hyper-parameters, the
    recipe (a :class:`~cabinlift.training.recipe.Recipe`, by its fields), the device and
    intra-op threads it trains on, the training code, the numerics regime
    (:func:`cabinlift.numerics.regime`) and the bytes of the ``data`` files."""
    return {
        "model": model, "hparams": hparams, "recipe": dataclasses.asdict(recipe),
        "device": device, "threads": threads, "code": code_version(model),
        "numerics": numerics.regime(torch.device(device)),
        "data": {p.name: file_digest(p) for p in data},
    }


def pretrain_key(stage: dict[str, Any], seed: int) -> str:
    """The key of the pre-training with ``seed`` of a stage whose runs share ``stage``."""
    return digest({"stage": "pretrain", "seed": seed, **stage})


def finetune_keys(stage: dict[str, Any], init: str,
                  runs: Sequence[tuple[int, np.ndarray | None, str | None]],
                  strategy: dict[str, Any] | None = None) -> list[str]:
    """The keys of a stack of fine-tuning runs from ``init`` (``scratch`` or ``pretrained``),
    each ``(seed, training rows, digest of its starting checkpoint or None)``: every run's key
    also holds the runs it is stacked with (their rounding depends on the stack), and
    ``strategy``, how the runs are fine-tuned where that is not the paper's way
    (:meth:`cabinlift.training.finetuning.Strategy.describe`; None: the paper's, keyed as
    before the strategies existed)."""
    shared = digest({"stage": "finetune", "init_kind": init, **stage,
                     **({} if strategy is None else {"finetune": strategy})})
    ids = [digest([shared, seed, rows, start]) for seed, rows, start in runs]
    return [digest({"run": i, "stack": ids}) for i in ids]


@dataclass
class StoredRun:
    """What a finished run leaves: its best weights, the numbers of its training, and its
    test-set outputs (``extra``: e.g. predictions), exactly as they were computed."""

    best_state: dict[str, torch.Tensor]
    best_val_mpjpe: float
    best_epoch: int
    epochs_run: int
    wall_time_s: float
    history: list[dict[str, float | None]]
    extra: dict[str, Any]
    steps: int = 0  # optimiser steps taken
    stopped_early: bool = False  # ended by early stopping (else by max_epochs)
    reused: bool = False  # read from the store (not written to it)


class RunStore:
    """The entries of one store folder; a ``None`` root disables the store (and snapshots).

    A stack in training writes a snapshot after ``snapshot_every_epochs`` epochs or
    ``snapshot_minutes`` minutes since its last one, whichever comes first (None: no such
    bound; both None: no snapshots)."""

    def __init__(self, root: str | Path | None, max_bytes: float | None = None,
                 snapshot_every_epochs: int | None = None,
                 snapshot_minutes: float | None = None) -> None:
        self.root = Path(root) if root else None
        self.max_bytes = max_bytes
        self.snapshot_every_epochs = snapshot_every_epochs
        self.snapshot_minutes = snapshot_minutes

    @classmethod
    def from_config(cls, section: Store | None) -> RunStore:
        """params.yaml's ``store`` section (none, or no ``dir``: disabled; snapshots as
        ``snapshot_every_epochs`` / ``snapshot_minutes`` say)."""
        if section is None:
            return cls(None)
        return cls(section.dir, None if section.max_gb is None else section.max_gb * 1e9,
                   section.snapshot_every_epochs, section.snapshot_minutes)

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / f"{key}.pt"

    def get(self, key: str) -> StoredRun | None:
        """The entry of ``key``, or None (none, disabled, or unreadable: it is trained again)."""
        if self.root is None:
            return None
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            if entry.get("format") != FORMAT or entry.get("key") != key:
                return None
            run = StoredRun(**entry["run"], reused=True)
        except Exception:  # noqa: BLE001 - a damaged entry is retrained, never trusted
            return None
        path.touch()  # recently used: kept longest by clean()
        return run

    def put(self, key: str, run: StoredRun, describe: dict[str, Any]) -> None:
        """Write one finished run (atomically: a killed write leaves no entry)."""
        if self.root is None:
            return
        entry = {
            "format": FORMAT, "key": key, "describe": describe,
            "run": {
                "best_state": {k: v.detach().cpu().clone() for k, v in run.best_state.items()},
                "best_val_mpjpe": run.best_val_mpjpe, "best_epoch": run.best_epoch,
                "epochs_run": run.epochs_run, "wall_time_s": run.wall_time_s,
                "history": run.history, "steps": run.steps,
                "stopped_early": run.stopped_early,
                "extra": {k: v.detach().cpu().clone() if torch.is_tensor(v) else v
                          for k, v in run.extra.items()},
            },
        }
        atomic.save_torch(self.path(key), entry)

    def snapshot_path(self, keys: list[str | None]) -> Path | None:
        """Where the stack of runs ``keys`` keeps its snapshot while it trains (None: store
        disabled)."""
        if self.root is None or not keys or any(k is None for k in keys):
            return None
        return self.root / f"{digest(list(keys))}{SNAPSHOT_SUFFIX}"

    def remove_snapshot(self, keys: list[str | None]) -> None:
        """Drop the stack's snapshot once its runs are stored (they are what a re-run uses)."""
        path = self.snapshot_path(keys)
        if path is not None:
            path.unlink(missing_ok=True)

    def _files(self, snapshots: bool) -> list[Path]:
        if self.root is None or not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("*.pt")
                      if p.name.endswith(SNAPSHOT_SUFFIX) == snapshots)

    def entries(self) -> list[Path]:
        """The entry files of finished runs (not snapshots, not the temporary files of writes
        in progress or killed)."""
        return self._files(snapshots=False)

    def snapshots(self) -> list[Path]:
        """The snapshot files of stacks in training, or killed while training."""
        return self._files(snapshots=True)

    def size(self) -> int:
        """Bytes of the entries and snapshots."""
        return sum(p.stat().st_size for p in self.entries() + self.snapshots())

    def clean(self, max_bytes: float | None = None) -> tuple[int, int]:
        """Remove the least recently used entries and snapshots until the store holds at most
        ``max_bytes`` (default: the store's bound; 0 empties it). A snapshot in use is rewritten
        every few minutes, so it is among the last to go. Returns (files removed, bytes kept)."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        if self.root is not None and self.root.is_dir():  # writes killed over an hour ago
            for tmp in self.root.glob(".*.tmp"):
                if time.time() - tmp.stat().st_mtime > 3600:
                    tmp.unlink(missing_ok=True)
        entries = [(p.stat(), p) for p in self.entries() + self.snapshots()]
        total = sum(st.st_size for st, _ in entries)
        removed = 0
        if limit is not None:
            for st, p in sorted(entries, key=lambda e: e[0].st_mtime_ns):
                if total <= limit:
                    break
                p.unlink(missing_ok=True)
                total -= st.st_size
                removed += 1
        return removed, total
