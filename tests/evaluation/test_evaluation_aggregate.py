"""Per-run and per-setting statistics against hand-computed answers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cabinlift.config import Pck
from cabinlift.errors import CabinliftError
from cabinlift.evaluation.aggregate import (
    UNKNOWN_ACTIVITY,
    ActivityIndex,
    evaluate_run,
    frame_mpjpe,
    mean_std_ci,
)
from cabinlift.evaluation.loading import TestSet
from cabinlift.evaluation.qualitative import select_frame

J = 13
PCK = Pck(threshold_mm=150.0, auc_max_mm=150.0, auc_steps=31)


def _test_set(y3d: np.ndarray, mask: np.ndarray, activity: list[str] | None = None) -> TestSet:
    n = y3d.shape[0]
    return TestSet(
        path=Path("real_test.npz"),
        x2d=np.zeros((n, J, 2)),
        y3d=np.where(mask[..., None], np.nan_to_num(y3d), 0.0),
        mask=mask,
        subject=np.full(n, 11, dtype=np.int64),
        frame_id=np.arange(n, dtype=np.int64),
        file_id=np.array(["f"] * n),
        activity=np.array(activity if activity is not None else [""] * n),
    )


def _record(mpjpe: float) -> dict:
    return {"repetition": 0, "test_mpjpe": mpjpe}


def _known_errors() -> tuple[TestSet, np.ndarray, np.ndarray]:
    """4 frames; joint j of frame f is off by (f+1)*(j+1) mm along x; some joints masked with
    huge errors there."""
    rng = np.random.default_rng(3)
    y = rng.normal(0, 300, size=(4, J, 3))
    mask = np.ones((4, J), dtype=bool)
    mask[3, 0] = False
    mask[0, 5] = mask[1, 5] = False
    err = np.outer(np.arange(1, 5), np.arange(1, J + 1)).astype(float)  # (4, J)
    pred = y.copy()
    pred[..., 0] += err
    pred[~mask] += 1e7  # masked joints: absurd predictions
    y[~mask] = np.nan  # and no ground truth
    test = _test_set(y, mask, ["eat", "eat", "drink", ""])
    return test, pred.astype(np.float32), err


def test_mpjpe_pools_valid_joints_and_ignores_masked_ones() -> None:
    test, pred, err = _known_errors()
    expected = err[test.mask].mean()
    res = evaluate_run(pred, test, ActivityIndex(test), _record(expected), "dir", PCK)
    assert res.mpjpe == pytest.approx(expected, abs=1e-3)


def test_per_joint_is_averaged_only_over_frames_where_the_joint_is_valid() -> None:
    test, pred, err = _known_errors()
    res = evaluate_run(pred, test, ActivityIndex(test), _record(err[test.mask].mean()), "dir", PCK)
    assert res.per_joint[0] == pytest.approx(np.mean([1, 2, 3]) * 1, abs=1e-3)  # frame 3 masked
    assert res.per_joint[5] == pytest.approx(np.mean([3, 4]) * 6, abs=1e-3)  # frames 0, 1 masked
    assert res.per_joint[12] == pytest.approx(np.mean([1, 2, 3, 4]) * 13, abs=1e-3)


def test_per_activity_pools_the_valid_joints_of_its_frames() -> None:
    test, pred, err = _known_errors()
    res = evaluate_run(pred, test, ActivityIndex(test), _record(err[test.mask].mean()), "dir", PCK)
    m = test.mask
    assert list(res.per_activity) == sorted(["eat", "drink", UNKNOWN_ACTIVITY])
    assert res.per_activity["eat"] == pytest.approx(err[:2][m[:2]].mean(), abs=1e-3)
    assert res.per_activity["drink"] == pytest.approx(err[2][m[2]].mean(), abs=1e-3)
    assert res.per_activity[UNKNOWN_ACTIVITY] == pytest.approx(err[3][m[3]].mean(), abs=1e-3)


def test_activity_without_valid_joints_is_left_out() -> None:
    y = np.zeros((2, J, 3))
    mask = np.ones((2, J), dtype=bool)
    mask[1] = False
    test = _test_set(y, mask, ["eat", "sleep"])
    res = evaluate_run(y.astype(np.float32), test, ActivityIndex(test), _record(0.0), "dir", PCK)
    assert list(res.per_activity) == ["eat"]


def test_recorded_mpjpe_disagreeing_with_predictions_is_an_error() -> None:
    test, pred, err = _known_errors()
    with pytest.raises(CabinliftError, match="some/dir.*runs.json records test_mpjpe"):
        evaluate_run(pred, test, ActivityIndex(test), _record(err[test.mask].mean() + 0.05),
                     "some/dir", PCK)


def test_non_finite_prediction_at_a_valid_joint_is_an_error() -> None:
    test, pred, _ = _known_errors()
    pred[1, 1, 0] = np.nan
    with pytest.raises(CabinliftError, match="non-finite"):
        evaluate_run(pred, test, ActivityIndex(test), _record(0.0), "dir", PCK)


def test_pmpjpe_of_a_similarity_transformed_ground_truth_is_zero() -> None:
    rng = np.random.default_rng(7)
    y = rng.normal(0, 300, size=(5, J, 3))
    mask = np.ones((5, J), dtype=bool)
    mask[2, 4] = False
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1  # a proper rotation
    pred = 1.7 * y @ q.T + np.array([120.0, -40.0, 900.0])
    pred[2, 4] = 5e6  # the masked joint must not disturb the alignment
    test = _test_set(y, mask)
    mpjpe = float(np.linalg.norm(pred - test.y3d, axis=-1)[mask].mean())
    res = evaluate_run(pred, test, ActivityIndex(test), _record(mpjpe), "dir", PCK)
    assert res.mpjpe > 100
    assert res.p_mpjpe == pytest.approx(0.0, abs=1e-6)


def test_mean_std_ci_for_known_values() -> None:
    mean, std, ci = mean_std_ci([10.0, 12.0, 14.0])
    assert mean == 12.0
    assert std == pytest.approx(2.0)
    assert ci == pytest.approx(4.302653 * 2.0 / math.sqrt(3), rel=1e-6)  # t(0.975, 2 dof)
    _, std, ci = mean_std_ci([5.0, 7.0])
    assert std == pytest.approx(math.sqrt(2))
    assert ci == pytest.approx(12.706205 * math.sqrt(2) / math.sqrt(2), rel=1e-6)  # t(.975, 1)
    assert mean_std_ci([48.6]) == (48.6, None, None)


def test_frame_mpjpe_and_typical_frame_choice() -> None:
    test, pred, err = _known_errors()
    fe = frame_mpjpe(pred, test.y3d, test.mask)
    assert fe[2] == pytest.approx(err[2].mean(), abs=1e-3)
    # only frame 2 has all 13 joints valid
    assert select_frame(test, fe) == 2
    mask = np.ones((5, J), dtype=bool)
    mask[0, 0] = False
    t5 = _test_set(np.zeros((5, J, 3)), mask)
    # candidates 1..4 with errors 10, 40, 22, 30 -> median 26 -> 22 and 30 tie: first wins
    assert select_frame(t5, np.array([25.0, 10.0, 40.0, 22.0, 30.0])) == 3


def test_pck_and_auc_on_a_known_error_set():
    from cabinlift.metrics import pck, pck_auc

    err = np.array([[0.0, 50.0, 100.0, 150.0], [200.0, 75.0, 999.0, 10.0]])
    mask = np.array([[True, True, True, True], [True, True, False, True]])
    # valid errors: 0, 50, 100, 150, 200, 75, 10 (999 is masked)
    assert pck(err, mask, 150.0) == pytest.approx(6 / 7)
    assert pck(err, mask, 50.0) == pytest.approx(3 / 7)
    assert pck(err, mask, 0.0) == pytest.approx(1 / 7)
    # thresholds 0, 75, 150: PCK 1/7, 4/7, 6/7
    assert pck_auc(err, mask, 150.0, 3) == pytest.approx((1 + 4 + 6) / 21)
    # 31 thresholds every 5 mm: count of thresholds t >= e for each valid error, over 31 x 7
    expected = sum(sum(t >= e for t in np.arange(0, 151, 5)) for e in (0, 50, 100, 150, 200, 75, 10))
    assert pck_auc(err, mask, 150.0, 31) == pytest.approx(expected / (31 * 7))
    with pytest.raises(ValueError):
        pck_auc(err, mask, 150.0, 1)


def test_holm_adjustment_by_hand() -> None:
    from cabinlift.evaluation.paired import holm, significance_mark

    # sorted 0.01, 0.02, 0.03, 0.04 -> 4*0.01, 3*0.02, 2*0.03 (raised to stay monotone), 1*0.04
    got = holm([0.03, None, 0.01, 0.04, 0.02])
    assert got[1] is None
    assert [got[i] for i in (2, 4, 0, 3)] == pytest.approx([0.04, 0.06, 0.06, 0.06])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert [significance_mark(p, 0.05) for p in (0.0009, 0.009, 0.049, 0.05, None)] == [
        "***", "**", "*", "", ""
    ]


def test_joint_annotated_in_one_frame_only_averages_over_that_frame() -> None:
    test, pred, err = _known_errors()
    mask = test.mask.copy()
    mask[[0, 1, 3], 7] = False  # l_elbow annotated in frame 2 only (error 3 * 8 = 24 mm)
    t1 = _test_set(np.where(mask[..., None], test.y3d, np.nan), mask)
    res = evaluate_run(pred, t1, ActivityIndex(t1), _record(err[mask].mean()), "dir", PCK)
    assert res.per_joint[7] == pytest.approx(24.0, abs=1e-3)
    # never valid anywhere: NaN, not 0 (an unannotated joint has no error, not a zero error)
    mask[:, 7] = False
    t2 = _test_set(np.where(mask[..., None], test.y3d, np.nan), mask)
    res = evaluate_run(pred, t2, ActivityIndex(t2), _record(err[mask].mean()), "dir", PCK)
    assert np.isnan(res.per_joint[7])


def test_pmpjpe_of_a_reflected_copy_is_positive() -> None:
    rng = np.random.default_rng(11)
    y = rng.normal(0, 300, size=(3, J, 3))
    mask = np.ones((3, J), dtype=bool)
    pred = y * np.array([-1.0, 1.0, 1.0])  # mirror image: no rotation can undo it
    test = _test_set(y, mask)
    mpjpe = float(np.linalg.norm(pred - y, axis=-1).mean())
    res = evaluate_run(pred, test, ActivityIndex(test), _record(mpjpe), "dir", PCK)
    assert res.p_mpjpe > 10.0  # reflections are excluded from the alignment
    assert res.p_mpjpe < res.mpjpe


def test_run_pck_auc_and_activity_macro_by_hand() -> None:
    test, pred, err = _known_errors()
    res = evaluate_run(pred, test, ActivityIndex(test), _record(err[test.mask].mean()), "dir",
                       Pck(threshold_mm=25.0, auc_max_mm=45.0, auc_steps=5))
    # integer errors (f+1)(j+1) <= 4 x 13: none lies on 25 or on 0, 11.25, 22.5, 33.75, 45
    valid = err[test.mask]
    assert res.pck == pytest.approx(100 * np.mean(valid <= 25.0))
    assert res.auc == pytest.approx(
        100 * np.mean([np.mean(valid <= t) for t in (0, 11.25, 22.5, 33.75, 45)])
    )
    # macro over the labelled activities: (eat + drink) / 2, the unlabelled frame left out
    m = test.mask
    eat, drink = err[:2][m[:2]].mean(), err[2][m[2]].mean()
    assert res.activity_macro == pytest.approx((eat + drink) / 2, abs=1e-3)
