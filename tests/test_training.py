import dataclasses

import numpy as np
import torch

from cabinlift.lifters import build_lifter
from cabinlift.training import PoseTensors, Recipe, train

RECIPE = Recipe(lr=1e-3, lr_decay=0.96, batch_size=64, grad_clip=1.0, max_epochs=10,
                val_every=5, patience=3, target_unit_mm=1000.0, eval_batch_size=512)


def _data(n, seed):
    rng = np.random.default_rng(seed)
    x2d = rng.normal(size=(n, 13, 2)).astype(np.float32)
    w = rng.normal(size=(26, 39))
    y = (x2d.reshape(n, 26) @ w).reshape(n, 13, 3) * 50.0
    mask = rng.random((n, 13)) > 0.1
    return {"x2d": x2d, "y3d": y.astype(np.float32), "mask": mask}


def _tensors(n, seed, recipe=RECIPE):
    return PoseTensors.from_arrays(_data(n, seed), recipe, torch.device("cpu"))


def _small():
    torch.manual_seed(0)
    return build_lifter("simplebl", linear_size=32, num_stage=1, dropout=0.1)


def test_lr_decays_per_epoch_and_validation_every_five():
    r = dataclasses.replace(RECIPE, max_epochs=12)
    res = train(_small(), _tensors(130, 0, r), _tensors(40, 1, r), r, seed=3)
    assert [h["epoch"] for h in res.history] == [5, 10, 12]  # and after the last epoch
    for h in res.history:
        assert np.isclose(h["lr"], 1e-3 * 0.96 ** (h["epoch"] - 1))
    assert res.epochs_run == 12


def test_early_stopping_after_three_validations_without_improvement():
    # a learning rate too small to change the validation error: the first validation stays
    # best, three more without improvement stop the run at epoch 20 of 100
    r = dataclasses.replace(RECIPE, lr=1e-30, max_epochs=100)
    model = _small()
    for m in model.modules():  # freeze batch-norm statistics too
        if isinstance(m, torch.nn.BatchNorm1d):
            m.momentum = 0.0
    res = train(model, _tensors(100, 0, r), _tensors(30, 1, r), r, seed=0)
    assert res.best_epoch == 5
    assert res.epochs_run == 20
    assert [h["epoch"] for h in res.history] == [5, 10, 15, 20]


def test_keeps_best_weights():
    r = dataclasses.replace(RECIPE, max_epochs=30, patience=100)
    model = _small()
    res = train(model, _tensors(200, 0, r), _tensors(50, 1, r), r, seed=0)
    best = min(h["val_mpjpe"] for h in res.history)
    assert res.best_val_mpjpe == best
    for k, v in model.state_dict().items():  # the model ends with the best weights loaded
        assert torch.equal(v, res.best_state[k])


def test_training_reduces_error_and_is_deterministic():
    def run():
        model = _small()
        res = train(model, _tensors(300, 0), _tensors(60, 1), RECIPE, seed=7)
        return res, model

    a, ma = run()
    b, mb = run()
    assert a.history == b.history
    for k, v in ma.state_dict().items():
        assert torch.equal(v, mb.state_dict()[k])
    assert a.history[-1]["train_loss"] < a.history[0]["train_loss"] * 1.5
    c = train(_small(), _tensors(300, 0), _tensors(60, 1), RECIPE, seed=8)
    assert c.history != a.history


def test_single_sample_last_batch_is_dropped():
    # 65 samples = one batch of 64 + one of 1: batch norm would fail on the single sample
    train(_small(), _tensors(65, 0), _tensors(10, 1), dataclasses.replace(RECIPE, max_epochs=1),
          seed=0)
