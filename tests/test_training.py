"""The training recipe (lr decay, validation schedule, early stopping, best weights) of
:func:`cabinlift.training.train_runs`, run by one run and by several together."""

import dataclasses

import numpy as np
import pytest
import torch

from cabinlift.errors import CabinliftError
from cabinlift.training import PoseTensors, Recipe, RunSpec, train_runs

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
    return PoseTensors.from_arrays(_data(n, seed), recipe, torch.device("cpu"))


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
