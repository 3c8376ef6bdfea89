"""Snapshots of a stack in training: a stack interrupted after k epochs and started again
continues from its last snapshot and ends exactly as an uninterrupted stack (best weights,
histories, steps, epochs, early stopping); damaged or foreign snapshots are ignored."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch

from cabinlift.training.data import PoseTensors
from cabinlift.training.recipe import Recipe, RunSpec, train_runs
from cabinlift.training.store import RunStore

#: patience 1 with a large learning rate: runs stop early at different epochs
RECIPE = Recipe(lr=0.1, lr_decay=0.96, batch_size=32, grad_clip=1.0, max_epochs=16,
                val_every=1, patience=1, target_unit_mm=1000.0, eval_batch_size=512)
SIMPLEBL = {"linear_size": 32, "num_stage": 1, "dropout": 0.5}  # dropout and batch norm
GRAPHMLP = {"layers": 2, "channel": 32, "d_hid": 64, "token_dim": 16, "dropout": 0.1,
            "drop_path": 0.2}  # dropout and DropPath
KEYS = ["a" * 64, "b" * 64, "c" * 64]  # the runs' store keys (any strings name a stack)


class Interrupted(Exception):
    """Stands for the process being killed at an epoch boundary."""


def _tensors(n: int, seed: int) -> PoseTensors:
    rng = np.random.default_rng(seed)
    x2d = rng.normal(size=(n, 13, 2)).astype(np.float32)
    y = (x2d.reshape(n, 26) @ rng.normal(size=(26, 39))).reshape(n, 13, 3) * 50.0
    arrays = {"x2d": x2d, "y3d": y.astype(np.float32), "mask": rng.random((n, 13)) > 0.1}
    return PoseTensors.from_arrays(arrays, RECIPE.target_unit_mm, torch.device("cpu"))


POOL, VAL = _tensors(300, 0), _tensors(60, 1)
SPECS = [RunSpec(11, np.arange(0, 150)), RunSpec(12, np.arange(100, 300)),
         RunSpec(13, np.arange(0, 90))]


def _train(model, hparams, recipe, store=None, stop_at=None, log=None):
    def hook(epoch):
        if epoch == stop_at:
            raise Interrupted

    res, _ = train_runs(model, hparams, SPECS, POOL, VAL, recipe, progress=False, store=store,
                        keys=KEYS, log=log, epoch_hook=hook)
    return res


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert (x.epochs_run, x.best_epoch, x.steps, x.stopped_early, x.best_val_mpjpe) == (
            y.epochs_run, y.best_epoch, y.steps, y.stopped_early, y.best_val_mpjpe)
        assert x.history == y.history
        # and pickled alike (checkpoints hold the history): the same objects shared the same way
        assert pickle.dumps(x.history) == pickle.dumps(y.history)
        assert x.best_state.keys() == y.best_state.keys()
        for k, v in x.best_state.items():
            assert torch.equal(v, y.best_state[k]), k


@pytest.mark.parametrize("model, hparams, changes, stop_at, every, minutes, resumed", [
    # a snapshot every epoch; at epoch 5 run 0 has stopped (epoch 4), run 2 is one
    # validation without improvement from stopping (epoch 6), run 1 goes on
    ("simplebl", SIMPLEBL, {"lr": 0.2, "patience": 2}, 5, 1, None, 5),
    ("graphmlp", GRAPHMLP, {}, 7, 3, None, 6),  # epoch 7 is trained again after 6
    # by time (always due); the starting weights are validated first (epoch 0)
    ("simplebl", SIMPLEBL, {"validate_start": True}, 5, None, 1e-9, 5),
])
def test_interrupted_stack_resumes_and_ends_as_an_uninterrupted_one(
        tmp_path, model, hparams, changes, stop_at, every, minutes, resumed):
    recipe = dataclasses.replace(RECIPE, **changes)
    reference = _train(model, hparams, recipe)
    epochs = [r.epochs_run for r in reference]
    assert min(epochs) <= stop_at < max(epochs) and any(r.stopped_early for r in reference), (
        f"the interruption should fall between early stops; epochs run: {epochs}")

    store = RunStore(tmp_path, snapshot_every_epochs=every, snapshot_minutes=minutes)
    path = store.snapshot_path(KEYS)
    with pytest.raises(Interrupted):
        _train(model, hparams, recipe, store, stop_at=stop_at)
    assert path.is_file() and store.entries() == [] and store.snapshots() == [path]

    log: list[str] = []
    _same(_train(model, hparams, recipe, store, log=log.append), reference)
    assert log == [f"train: resumed from a snapshot at epoch {resumed} of 16"]
    assert path.is_file()  # kept until the caller has stored the runs
    store.remove_snapshot(KEYS)
    assert store.snapshots() == []


def test_damaged_or_foreign_snapshot_is_ignored(tmp_path):
    reference = _train("simplebl", SIMPLEBL, RECIPE)
    store = RunStore(tmp_path, snapshot_every_epochs=2)
    path = store.snapshot_path(KEYS)
    with pytest.raises(Interrupted):
        _train("simplebl", SIMPLEBL, RECIPE, store, stop_at=4)
    whole = path.read_bytes()

    path.write_bytes(whole[: len(whole) // 2])  # cut short (e.g. by a disk error)
    log: list[str] = []
    _same(_train("simplebl", SIMPLEBL, RECIPE, store, log=log.append), reference)
    assert len(log) == 1 and log[0].startswith(f"train: ignoring the snapshot {path} (")
    assert log[0].endswith("); training from the start")

    other = store.snapshot_path(KEYS[::-1])  # another stack's snapshot under this stack's name
    other.unlink(missing_ok=True)
    path.write_bytes(whole)
    path.rename(other)
    log.clear()
    res, _ = train_runs("simplebl", SIMPLEBL, SPECS[::-1], POOL, VAL, RECIPE, progress=False,
                        store=store, keys=KEYS[::-1], log=log.append)
    assert log == [f"train: ignoring the snapshot {other} (it was written for other runs); "
                   "training from the start"]


def test_snapshot_of_another_shape_is_ignored_and_changes_nothing(tmp_path):
    """A snapshot is checked whole before anything is loaded: one whose tensors do not fit
    (here: written by a narrower model under the same keys) leaves training untouched."""
    wide = {**SIMPLEBL, "linear_size": 48}
    reference = _train("simplebl", wide, RECIPE)
    store = RunStore(tmp_path, snapshot_every_epochs=1)
    with pytest.raises(Interrupted):
        _train("simplebl", SIMPLEBL, RECIPE, store, stop_at=3)
    log: list[str] = []
    _same(_train("simplebl", wide, RECIPE, store, log=log.append), reference)
    assert len(log) == 1 and "expected a torch.float32 tensor of shape" in log[0], log


def test_no_snapshots_without_a_store_or_a_bound(tmp_path):
    for store in (RunStore(None, snapshot_every_epochs=1), RunStore(tmp_path / "s")):
        with pytest.raises(Interrupted):
            _train("simplebl", SIMPLEBL, RECIPE, store, stop_at=3)
    assert not (tmp_path / "s").exists()
