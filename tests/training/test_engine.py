"""Runs trained together (vectorised) are the runs trained one by one: for every lifter,
three runs with different subsets (so different epoch lengths and last-batch sizes), seeds and
early stopping, trained as one stack and each alone, end identically."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from driverposes import make_poses

from cabinlift.training.data import PoseTensors
from cabinlift.training.recipe import Recipe, RunSpec, train_runs, validation_mpjpe

RECIPE = Recipe(lr=2e-3, lr_decay=0.96, batch_size=16, grad_clip=1.0, max_epochs=6,
                val_every=1, patience=2, target_unit_mm=50.0)
TINY = {
    "simplebl": {"linear_size": 64, "num_stage": 1, "dropout": 0.5},
    "semgcn": {"hid_dim": 32, "num_layers": 2, "dropout": 0.2},
    "graformer": {"dim_model": 32, "n_layers": 2, "n_head": 4},
    "graphmlp": {"layers": 2, "channel": 32, "d_hid": 64, "token_dim": 16},
    "jointformer": {"d_model": 32, "n_layers": 2, "n_head": 2, "d_k": 16, "d_v": 16,
                    "d_inner": 64},
}


def _split(rng: np.random.Generator, n: int) -> PoseTensors:
    x = rng.normal(size=(n, 13, 2)).astype(np.float32)
    y = (x.reshape(n, 26) @ rng.normal(size=(26, 39))).reshape(n, 13, 3).astype(np.float32)
    arrays = {"x2d": x, "y3d": y * 100, "mask": rng.random((n, 13)) > 0.1}
    return PoseTensors.from_arrays(arrays, RECIPE.target_unit_mm, torch.device("cpu"))


@pytest.fixture(scope="module")
def data() -> tuple[PoseTensors, PoseTensors, PoseTensors, list[RunSpec]]:
    rng = np.random.default_rng(0)
    pool, val, test = _split(rng, 300), _split(rng, 50), _split(rng, 40)
    # 47 = 2x16 + 15, 33 = 2x16 + 1 (the single sample is dropped), 80 = 5x16
    specs = [RunSpec(11 + r, np.sort(rng.choice(300, size=n, replace=False)))
             for r, n in enumerate((47, 33, 80))]
    return pool, val, test, specs


@pytest.mark.parametrize("model", sorted(TINY))
def test_vectorised_runs_equal_runs_trained_alone(model: str, data) -> None:
    pool, val, test, specs = data
    together, stack = train_runs(model, TINY[model], specs, pool, val, RECIPE)
    test_together = validation_mpjpe(stack, test, RECIPE)
    for r, spec in enumerate(specs):
        (alone,), single = train_runs(model, TINY[model], [spec], pool, val, RECIPE)
        assert together[r].epochs_run == alone.epochs_run
        assert together[r].best_epoch == alone.best_epoch
        assert abs(test_together[r] - validation_mpjpe(single, test, RECIPE)[0]) < 0.1
        assert [h["epoch"] for h in together[r].history] == [h["epoch"] for h in alone.history]


@pytest.fixture(scope="module")
def one_run_learns_backwards() -> tuple[PoseTensors, PoseTensors, list[RunSpec]]:
    """Driver poses; runs 0 and 2 train on 47 and 80 of 200 poses, run 1 on 33 poses whose 3D
    targets are mirrored through the neck (``-y``), so every step takes it further from the
    validation poses."""

    def split(n: int, seed: int, mirrored: bool = False) -> PoseTensors:
        x, y_m = make_poses(n, seed)
        y_mm = y_m.numpy() * (-1000.0 if mirrored else 1000.0)
        arrays = {"x2d": x.numpy(), "y3d": y_mm, "mask": np.ones((n, 13), bool)}
        return PoseTensors.from_arrays(arrays, RECIPE.target_unit_mm, torch.device("cpu"))

    clean, mirrored, val = split(200, 0), split(33, 1, mirrored=True), split(50, 2)
    pool = PoseTensors(*(torch.cat([getattr(clean, k), getattr(mirrored, k)])
                         for k in ("x", "y", "mask")))
    rng = np.random.default_rng(0)
    specs = [RunSpec(11, np.sort(rng.choice(200, size=47, replace=False))),
             RunSpec(12, np.arange(200, 233)),
             RunSpec(13, np.sort(rng.choice(200, size=80, replace=False)))]
    return pool, val, specs


def test_each_run_follows_its_own_early_stopping(one_run_learns_backwards) -> None:
    # run 1's validation error rises from its first epoch on: patience 2 stops it after epoch
    # 3 (best: epoch 1; 2 steps an epoch: 33 = 2x16 + a single sample that is dropped); the
    # other two improve every epoch (measured: 256 -> 173 mm and 243 -> 139 mm) and train on
    # to max_epochs in the same stack
    pool, val, specs = one_run_learns_backwards
    res, _ = train_runs("graphmlp", TINY["graphmlp"], specs, pool, val, RECIPE)
    stopped = res[1]
    assert stopped.stopped_early and stopped.epochs_run == 3 < RECIPE.max_epochs
    assert stopped.best_epoch == 1 and stopped.steps == 3 * 2
    assert [h["epoch"] for h in stopped.history] == [1, 2, 3]
    for r, steps_per_epoch in ((res[0], 3), (res[2], 5)):
        assert not r.stopped_early and r.epochs_run == RECIPE.max_epochs
        assert r.best_epoch == RECIPE.max_epochs
        assert r.steps == RECIPE.max_epochs * steps_per_epoch
    assert len({r.best_val_mpjpe for r in res}) == 3
    for r in res:
        vals = [h["val_mpjpe"] for h in r.history]
        assert r.epochs_run == r.history[-1]["epoch"]
        assert r.best_val_mpjpe == min(vals) and r.best_epoch == vals.index(min(vals)) + 1
        if r.stopped_early:  # the last `patience` validations did not improve on the best
            assert min(vals[-RECIPE.patience:]) >= min(vals[:-RECIPE.patience])


GRAFORMER_NO_NOISE = {"dim_model": 16, "n_layers": 1, "n_head": 2, "dropout": 0.0,
                      "attn_dropout": 0.0, "gcn_dropout": 0.0}


def test_a_given_initial_state_is_loaded_instead_of_the_seeds_weights() -> None:
    """Fine-tuning starts from the pre-trained weights: run 0 is given another network's state
    and holds exactly it; run 1 (no state) holds the weights its seed draws."""
    from cabinlift.lifters import build_lifter
    from cabinlift.training.engine import build_stack

    hp = TINY["simplebl"]
    torch.manual_seed(99)
    pretrained = build_lifter("simplebl", **hp).state_dict()
    torch.manual_seed(5)
    seeded = build_lifter("simplebl", **hp).state_dict()
    stack = build_stack("simplebl", hp, [5, 5], [pretrained, None], torch.device("cpu"),
                        "coordinate_mean")
    held = [stack.state_dict_of(stack.snapshot(), r) for r in (0, 1)]
    assert list(held[0]) == list(pretrained)
    assert all(torch.equal(held[0][k], pretrained[k]) for k in pretrained)
    assert all(torch.equal(held[1][k], seeded[k]) for k in seeded)
    assert any(not torch.equal(pretrained[k], seeded[k]) for k in seeded)  # two networks


def test_the_reported_training_loss_is_the_loss_of_the_epochs_samples() -> None:
    """One epoch, one batch of every training sample, no dropout, no batch norm: the history's
    training loss is the mean squared coordinate error of the starting weights over the valid
    joints of those samples (worked out here with numpy from the network's predictions)."""
    from cabinlift.lifters import build_lifter

    rng = np.random.default_rng(3)
    pool, val = _split(rng, 40), _split(rng, 10)
    recipe = Recipe(lr=1e-30, lr_decay=1.0, batch_size=64, grad_clip=1.0, max_epochs=1,
                    val_every=1, patience=2, target_unit_mm=RECIPE.target_unit_mm)
    (res,), _ = train_runs("graformer", GRAFORMER_NO_NOISE, [RunSpec(7, None)], pool, val,
                           recipe)
    torch.manual_seed(7)
    net = build_lifter("graformer", **GRAFORMER_NO_NOISE).eval()
    with torch.no_grad():
        pred = net(pool.x).numpy().astype(np.float64)
    y, m = pool.y.numpy().astype(np.float64), pool.mask.numpy()
    expected = ((pred - y) ** 2)[m].sum() / (3 * m.sum())
    assert res.history[0]["train_loss"] == pytest.approx(expected, rel=1e-5)
