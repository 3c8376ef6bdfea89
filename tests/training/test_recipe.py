"""The training recipe (lr decay, validation schedule, early stopping, best weights) of
:func:`cabinlift.training.train_runs`, run by one run and by several together."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from cliutil import typed
from driverposes import make_poses

from cabinlift import config
from cabinlift.errors import CabinliftError
from cabinlift.lifters import build_lifter
from cabinlift.training.data import PoseTensors
from cabinlift.training.recipe import Recipe, RunSpec, train_runs

RECIPE = Recipe(lr=1e-3, lr_decay=0.96, batch_size=64, grad_clip=1.0, max_epochs=10,
                val_every=5, patience=3, target_unit_mm=1000.0, eval_batch_size=512)
SMALL = {"linear_size": 32, "num_stage": 1, "dropout": 0.1}
NO_BN = {"d_model": 16, "n_layers": 1, "n_head": 2, "d_k": 8, "d_v": 8, "d_inner": 16}
REPO_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
CPU = torch.device("cpu")


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
    # training loss and validation error both fall by more than 10 % between the validations
    # at epochs 5 and 10 (measured: by 36 % and 19 %)
    assert a.history[-1]["train_loss"] < 0.9 * a.history[0]["train_loss"]
    assert a.history[-1]["val_mpjpe"] < 0.9 * a.history[0]["val_mpjpe"]
    c, _ = _train(_tensors(300, 0), _tensors(60, 1), RECIPE, seed=8)
    assert c.history != a.history


def test_single_sample_last_batch_is_dropped():
    # 65 samples = one batch of 64 + one of 1: batch norm would fail on the single sample
    res, _ = _train(_tensors(65, 0), _tensors(10, 1), dataclasses.replace(RECIPE, max_epochs=1),
                    seed=0)
    assert res.epochs_run == 1


def test_too_few_samples_is_an_error():
    with pytest.raises(CabinliftError, match="^train: at least 2 training samples are needed, "
                                             "got 1$"):
        _train(_tensors(20, 0), _tensors(10, 1), RECIPE, seed=0, indices=np.array([3]))


def test_two_samples_are_enough():
    """The smallest training set a run accepts: one batch of two, one step per epoch."""
    r = dataclasses.replace(RECIPE, max_epochs=3)
    res, _ = _train(_tensors(20, 0), _tensors(10, 1), r, seed=0, indices=np.array([3, 7]))
    assert (res.epochs_run, res.steps) == (3, 3)


def test_a_stacks_time_is_shared_by_its_runs():
    """Runs trained together report an equal share of the stack's time: together they account
    for no more than the call took (runs.csv's time per run adds up to the stage's)."""
    import time

    r = dataclasses.replace(RECIPE, max_epochs=2)
    start = time.perf_counter()
    results, _ = train_runs("simplebl", SMALL, [RunSpec(s, None) for s in (1, 2, 3)],
                            _tensors(40, 0, r), _tensors(10, 1, r), r)
    elapsed = time.perf_counter() - start
    walls = [res.wall_time_s for res in results]
    assert walls[0] > 0 and walls == [walls[0]] * 3
    assert sum(walls) <= elapsed


def test_no_runs_is_an_error():
    with pytest.raises(CabinliftError, match="^finetune simplebl: no runs to train$"):
        train_runs("simplebl", SMALL, [], _tensors(20, 0), _tensors(10, 1), RECIPE,
                   desc="finetune simplebl")


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
    # 128 rows: two full batches, both step
    res, _ = _train(_tensors(128, 0, r), _tensors(20, 1, r), r, seed=0)
    assert res.steps == 2 * 2
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
    assert res.history[0]["train_loss"] is None and res.history[0]["lr"] == r.lr
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


# -- training learns: error bounds worked out without the training code --------------------


def _poses(n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` driver poses as the normalize stage writes them (3D in mm, all joints valid)."""
    x, y_m = make_poses(n, seed)
    return {"x2d": x.numpy(), "y3d": y_m.numpy() * 1000.0, "mask": np.ones((n, 13), bool)}


def _mpjpe_mm(pred_mm: np.ndarray, arrays: dict[str, np.ndarray]) -> float:
    """Mean Euclidean error over the valid joints (numpy, independent of cabinlift.metrics)."""
    return float(np.linalg.norm(pred_mm - arrays["y3d"], axis=-1)[arrays["mask"]].mean())


def _mean_pose_mm(train: dict[str, np.ndarray], arrays: dict[str, np.ndarray]) -> float:
    """The error of predicting the training set's mean pose (per joint, valid joints only)
    for every frame of ``arrays``."""
    w = train["mask"][..., None]
    mean = (train["y3d"] * w).sum(axis=0) / w.sum(axis=0)
    return _mpjpe_mm(np.broadcast_to(mean, arrays["y3d"].shape), arrays)


def _initial_mpjpe_mm(model: str, hparams: dict, seed: int, arrays: dict[str, np.ndarray],
                      unit_mm: float) -> float:
    """The eval-mode error of a run's initial weights (built as the engine builds run ``seed``)."""
    torch.manual_seed(seed)
    net = build_lifter(model, **hparams).eval()
    with torch.no_grad():
        pred = net(torch.as_tensor(arrays["x2d"])).numpy() * unit_mm
    return _mpjpe_mm(pred, arrays)


def test_a_stack_memorises_a_fixed_small_problem():
    # two runs trained together on the same 64 driver poses (validated on them): each ends
    # below 20 % of the error of its own initial weights and below half the error of the
    # constant mean pose (measured: 9 % and 36 %); with no weight update it stays at 100 %
    arrays = _poses(64, 0)
    arrays["mask"][::7, 3] = False
    hparams = {"linear_size": 64, "num_stage": 1, "dropout": 0.0}
    r = dataclasses.replace(RECIPE, lr=1e-2, batch_size=16, max_epochs=30, val_every=10,
                            patience=100, target_unit_mm=50.0)
    data = PoseTensors.from_arrays(arrays, r.target_unit_mm, CPU)
    seeds = (7, 8)
    res, _ = train_runs("simplebl", hparams, [RunSpec(s) for s in seeds], data, data, r,
                        progress=False)
    mean_pose = _mean_pose_mm(arrays, arrays)
    for seed, run in zip(seeds, res, strict=True):
        initial = _initial_mpjpe_mm("simplebl", hparams, seed, arrays, r.target_unit_mm)
        assert run.best_val_mpjpe < 0.2 * initial, (seed, run.best_val_mpjpe, initial)
        assert run.best_val_mpjpe < 0.5 * mean_pose, (seed, run.best_val_mpjpe, mean_pose)
        assert run.steps == 30 * 4


def test_the_committed_demo_learns_at_its_largest_setting():
    """The demo is sized to run in minutes; at its largest setting (every training subject) it
    still learns: every pre-trained lifter and, from scratch, GraphMLP (the one that gets past
    the mean pose in the demo's few epochs) predict the test poses better than the constant
    mean training pose (the committed Table 1, which tests/test_committed_lock.py holds to the
    code)."""
    import json

    table = json.loads((REPO_PARAMS.parent / "metrics" / "table1.json").read_text())
    params = typed(config.read_yaml(REPO_PARAMS))
    largest = max(params.settings, key=lambda s: params.subsets.settings[s].subjects)
    reference = table["mean_pose"][largest]
    assert table["graphmlp"]["scratch"][largest] < reference
    for model in params.models:
        assert table[model]["pretrained"][largest] < reference, model


def test_the_configured_loss_reduction_is_the_one_trained_on():
    # weights that cannot change (lr 1e-30), every joint valid, the same seed (same batches,
    # same dropout): the squared errors summed over x, y, z and averaged over joints are
    # 3 times their mean over coordinates, so the recorded training losses differ by 3x
    r = dataclasses.replace(RECIPE, lr=1e-30, max_epochs=1, val_every=1)
    arrays = _data(128, 0)
    arrays["mask"][:] = True
    pool = PoseTensors.from_arrays(arrays, r.target_unit_mm, CPU)
    val = _tensors(20, 1, r)
    losses = {}
    for reduction in ("coordinate_mean", "xyz_sum_joint_mean"):
        res, _ = _train(pool, val, dataclasses.replace(r, loss_reduction=reduction), seed=2)
        losses[reduction] = res.history[0]["train_loss"]
    assert losses["xyz_sum_joint_mean"] == pytest.approx(3 * losses["coordinate_mean"], rel=1e-5)


def test_a_validation_error_that_is_not_finite_names_the_run():
    val = _tensors(20, 1)
    val.y[3, val.mask[3].nonzero()[0, 0]] = float("nan")
    with pytest.raises(CabinliftError, match=r"^train: run 0 \(seed 4\): validation MPJPE is "
                                             r"not finite at epoch 5$"):
        _train(_tensors(130, 0), val, RECIPE, seed=4)


# -- the recipe from params.yaml ------------------------------------------------------------


def test_recipe_from_config_reads_every_key():
    train = typed(config.read_yaml(REPO_PARAMS), **{
        "train.drop_last": True, "train.validate_start": True, "train.batch_size": 3,
        "train.loss_reduction": "xyz_sum_joint_mean"}).train
    r = Recipe.from_config(train)
    # the demo values of params.yaml, and the changed ones
    assert (r.lr, r.lr_decay, r.grad_clip, r.target_unit_mm) == (0.001, 0.96, 1.0, 50.0)
    assert (r.max_epochs, r.val_every, r.patience, r.eval_batch_size) == (4, 5, 3, 4096)
    assert (r.batch_size, r.loss_reduction, r.drop_last, r.validate_start) == (
        3, "xyz_sum_joint_mean", True, True)


@pytest.mark.parametrize("key, value, message", [
    ("lr", "fast", "must be a number > 0, got 'fast'"),
    ("lr_decay", None, "must be a number > 0, got None"),
    ("grad_clip", "1", "must be a number > 0, got '1'"),
    ("target_unit_mm", [50], "must be a number > 0, got [50]"),
    ("batch_size", 64.0, "must be an integer >= 2 (batch norm needs two samples in a training "
                         "batch), got 64.0"),
    ("max_epochs", "5", "must be an integer >= 1, got '5'"),
    ("val_every", 5.0, "must be an integer >= 1, got 5.0"),
    ("patience", True, "must be an integer >= 1, got True"),
    ("eval_batch_size", 4096.0, "must be an integer >= 1, got 4096.0"),
    ("loss_reduction", 1, "must be one of 'coordinate_mean', 'xyz_sum_joint_mean', got 1"),
    ("drop_last", "no", "must be true or false, got 'no'"),
    ("validate_start", 0, "must be true or false, got 0"),
    ("batch_size", 1, "must be an integer >= 2 (batch norm needs two samples in a training batch), got 1"),
    ("patience", -1, "must be an integer >= 1, got -1"),
    ("lr", 0, "must be a number > 0, got 0"),
    ("target_unit_mm", -50.0, "must be a number > 0, got -50.0"),
    ("loss_reduction", "sum", "must be one of 'coordinate_mean', 'xyz_sum_joint_mean', got 'sum'"),
])
def test_a_bad_recipe_value_is_named(key, value, message):
    with pytest.raises(CabinliftError) as info:
        typed(config.read_yaml(REPO_PARAMS), **{f"train.{key}": value})
    assert str(info.value) == f"params.yaml: 1 problem: key 'train.{key}' {message}"
