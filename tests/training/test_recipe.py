"""The training recipe (lr decay, validation schedule, early stopping, best weights) of
:func:`cabinlift.training.train_runs`, run by one run and by several together."""

import dataclasses

import numpy as np
import pytest
import torch

from cabinlift.errors import CabinliftError
from cabinlift.training.data import PoseTensors
from cabinlift.training.recipe import Recipe, RunSpec, train_runs

RECIPE = Recipe(lr=1e-3, lr_decay=0.96, batch_size=64, grad_clip=1.0, max_epochs=10,
                val_every=5, patience=3, target_unit_mm=1000.0, eval_batch_size=512)
SMALL = {"linear_size": 32, "num_stage": 1, "dropout": 0.1}
NO_BN = {"d_model": 16, "n_layers": 1, "n_head": 2, "d_k": 8, "d_v": 8, "d_inner": 16}


def _data(n, seed):
    rng = np.random.default_rng(seed)
    x2d = rng.normal(size=(n, 13, 2)).astype(np.float32)
    w = rng.normal(size=(26, 39))
    y = (x2d.reshape(n, 26) @ w).reshape(n, 13, 3) * 50.0
    mask = rng.random((n, 13)) > 0.1
    return {"x2d": x2d, "y3d": y.astype(np.float32), "mask": mask}


def _tensors(n, seed, recipe=RECIPE):
    return PoseTensors.from_arrays(_data(n, seed), recipe.target_unit_mm, torch.device("cpu"))


def _train(pool, val, recipe, seed, model="simplebl", hparams=SMALL, indices=None):
    (res,), stack = train_runs(model, hparams, [RunSpec(seed, indices)], pool, val, recipe)
    return res, stack


def test_lr_decays_per_epoch_and_validation_every_five():
    r = dataclasses.replace(RECIPE, max_epochs=12)
    res, _ = _train(_tensors(130, 0, r), _tensors(40, 1, r), r, seed=3)
    assert [h["epoch"] for h in res.history] == [5, 10, 12]  # and after the last epoch
    for h in res.history:
        assert np.isclose(h["lr"], 1e-3 * 0.96 ** (h["epoch"] - 1))
    assert res.epochs_run == 12


def test_early_stopping_after_three_validations_without_improvement():
    # a learning rate too small to change the validation error of a model without batch-norm
    # statistics: the first validation stays best, three more stop the run at epoch 20 of 100
    r = dataclasses.replace(RECIPE, lr=1e-30, max_epochs=100)
    res, _ = _train(_tensors(100, 0, r), _tensors(30, 1, r), r, seed=0, model="jointformer",
                    hparams=NO_BN)
    assert res.best_epoch == 5
    assert res.epochs_run == 20
    assert [h["epoch"] for h in res.history] == [5, 10, 15, 20]


def test_keeps_best_weights():
    r = dataclasses.replace(RECIPE, max_epochs=30, patience=100)
    res, stack = _train(_tensors(200, 0, r), _tensors(50, 1, r), r, seed=0)
    best = min(h["val_mpjpe"] for h in res.history)
    assert res.best_val_mpjpe == best
    held = stack.state_dict_of(stack.snapshot(), 0)  # the stack ends with the best weights
    for k, v in held.items():
        assert torch.equal(v, res.best_state[k])


def test_training_reduces_error_and_is_deterministic():
    a, sa = _train(_tensors(300, 0), _tensors(60, 1), RECIPE, seed=7)
    b, sb = _train(_tensors(300, 0), _tensors(60, 1), RECIPE, seed=7)
    assert a.history == b.history
    for k, v in a.best_state.items():
        assert torch.equal(v, b.best_state[k])
    assert a.history[-1]["train_loss"] < a.history[0]["train_loss"] * 1.5
    c, _ = _train(_tensors(300, 0), _tensors(60, 1), RECIPE, seed=8)
    assert c.history != a.history


def test_single_sample_last_batch_is_dropped():
    # 65 samples = one batch of 64 + one of 1: batch norm would fail on the single sample
    res, _ = _train(_tensors(65, 0), _tensors(10, 1), dataclasses.replace(RECIPE, max_epochs=1),
                    seed=0)
    assert res.epochs_run == 1


def test_too_few_samples_is_an_error():
    with pytest.raises(CabinliftError, match="at least 2 training samples"):
        _train(_tensors(20, 0), _tensors(10, 1), RECIPE, seed=0, indices=np.array([3]))


def test_steps_and_stop_reason_are_recorded():
    # 130 rows at batch 64: batches of 64, 64 and 2 -> 3 steps an epoch, 12 epochs, no early stop
    r = dataclasses.replace(RECIPE, max_epochs=12)
    res, _ = _train(_tensors(130, 0, r), _tensors(40, 1, r), r, seed=3)
    assert res.steps == 36 and res.stopped_early is False


def test_early_stop_is_recorded():
    r = dataclasses.replace(RECIPE, lr=1e-30, max_epochs=100)
    res, _ = _train(_tensors(100, 0, r), _tensors(30, 1, r), r, seed=0, model="jointformer",
                    hparams=NO_BN)
    assert res.stopped_early is True and res.steps == 20 * 2


def test_drop_last_drops_every_partial_batch():
    r = dataclasses.replace(RECIPE, max_epochs=2, drop_last=True)
    # 130 rows: only the two full batches of 64 step; the partial batch of 2 is dropped
    res, _ = _train(_tensors(130, 0, r), _tensors(20, 1, r), r, seed=0)
    assert res.steps == 2 * 2
    # 40 rows, fewer than a batch: no step at all (as DataLoader(drop_last=True)); the weights
    # stay the initial ones and no training loss exists
    res, stack = _train(_tensors(40, 0, r), _tensors(20, 1, r), r, seed=5, model="jointformer",
                        hparams=NO_BN)
    torch.manual_seed(5)
    from cabinlift.lifters import build_lifter

    initial = build_lifter("jointformer", **NO_BN).state_dict()
    assert res.steps == 0 and all(h["train_loss"] is None for h in res.history)
    for k, v in initial.items():
        assert torch.equal(res.best_state[k], v), k
    # without drop_last the same 40 rows are one batch a step
    res, _ = _train(_tensors(40, 0, RECIPE), _tensors(20, 1, RECIPE),
                    dataclasses.replace(RECIPE, max_epochs=2), seed=5)
    assert res.steps == 2


def test_validate_start_makes_the_starting_weights_a_candidate():
    # weights that training cannot change (lr 1e-30, no batch norm): the epoch-0 validation of
    # the starting weights stays best, so three later validations without improvement stop the
    # run at epoch 15 and the best checkpoint is the start
    r = dataclasses.replace(RECIPE, lr=1e-30, max_epochs=100, validate_start=True)
    res, _ = _train(_tensors(100, 0, r), _tensors(30, 1, r), r, seed=0, model="jointformer",
                    hparams=NO_BN)
    assert [h["epoch"] for h in res.history] == [0, 5, 10, 15]
    assert res.history[0]["train_loss"] is None
    assert res.best_epoch == 0 and res.epochs_run == 15 and res.stopped_early
    assert res.best_val_mpjpe == res.history[0]["val_mpjpe"]


def test_validate_start_keeps_start_when_training_makes_it_worse():
    # a learning rate far too large wrecks the weights: with validate_start the best checkpoint
    # is the starting one; without it, it is a trained (worse) one
    r = dataclasses.replace(RECIPE, lr=5.0, grad_clip=1e6, max_epochs=2, val_every=1,
                            patience=10)
    pool, val = _tensors(128, 0, r), _tensors(40, 1, r)
    on, _ = _train(pool, val, dataclasses.replace(r, validate_start=True), seed=1,
                   model="jointformer", hparams=NO_BN)
    off, _ = _train(pool, val, r, seed=1, model="jointformer", hparams=NO_BN)
    start = on.history[0]["val_mpjpe"]
    assert min(h["val_mpjpe"] for h in off.history) > start
    assert on.best_epoch == 0 and on.best_val_mpjpe == start
    assert off.best_epoch > 0 and off.best_val_mpjpe > start
