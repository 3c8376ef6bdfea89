"""Property-based tests (hypothesis) of the normalisation and the metrics: invariants that must
hold for every pose, not only for the hand-made examples of the other tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cabinlift.config import Pck
from cabinlift.evaluation.aggregate import ActivityIndex, evaluate_run
from cabinlift.evaluation.loading import TestSet
from cabinlift.metrics import pck, pck_auc, procrustes_align
from cabinlift.normalize import centre_3d, normalize_2d
from cabinlift.skeleton import L_SHOULDER, R_SHOULDER

J = 13
seeds = st.integers(min_value=0, max_value=2**32 - 1)
FAST = settings(max_examples=60, deadline=None)


def _poses2d(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1280, size=(n, J, 2))


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


@FAST
@given(seed=seeds, n=st.integers(1, 6))
def test_normalised_2d_is_neck_centred_with_unit_extents(seed: int, n: int) -> None:
    out, ok = normalize_2d(_poses2d(seed, n))
    assert ok.all()
    neck = 0.5 * (out[:, L_SHOULDER] + out[:, R_SHOULDER])
    np.testing.assert_allclose(neck, 0.0, atol=1e-9)
    np.testing.assert_allclose(out.max(axis=1) - out.min(axis=1), 1.0, rtol=1e-9)


@FAST
@given(seed=seeds, sx=st.floats(0.1, 10), sy=st.floats(0.1, 10),
       tx=st.floats(-500, 500), ty=st.floats(-500, 500))
def test_normalised_2d_ignores_translation_and_per_axis_scale(
    seed: int, sx: float, sy: float, tx: float, ty: float
) -> None:
    xy = _poses2d(seed, 3)
    moved = xy * np.array([sx, sy]) + np.array([tx, ty])
    np.testing.assert_allclose(normalize_2d(moved)[0], normalize_2d(xy)[0], atol=1e-9)


@FAST
@given(seed=seeds, shift=st.tuples(*[st.floats(-5, 5)] * 3))
def test_centred_3d_is_in_mm_at_the_neck_and_ignores_translation(seed, shift) -> None:
    rng = np.random.default_rng(seed)
    xyz = rng.normal(0, 0.4, size=(4, J, 3))
    out = centre_3d(xyz)
    np.testing.assert_allclose(0.5 * (out[:, L_SHOULDER] + out[:, R_SHOULDER]), 0.0, atol=1e-9)
    np.testing.assert_allclose(centre_3d(xyz + np.array(shift)), out, atol=1e-6)
    # millimetres: distances are 1000x those in metres
    np.testing.assert_allclose(np.linalg.norm(out[:, 0] - out[:, 5], axis=-1),
                               1000 * np.linalg.norm(xyz[:, 0] - xyz[:, 5], axis=-1))


@FAST
@given(seed=seeds, scale=st.floats(0.2, 5), t=st.tuples(*[st.floats(-2000, 2000)] * 3))
def test_procrustes_undoes_any_similarity_transform(seed, scale, t) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 300, size=(3, J, 3))
    mask = rng.random((3, J)) > 0.3
    mask[:, :4] = True  # at least 4 valid joints per frame
    pred = scale * y @ _rotation(rng).T + np.array(t)
    pred[~mask] = rng.normal(0, 1e5, size=(int((~mask).sum()), 3))  # junk where unannotated
    aligned = procrustes_align(pred, y, mask)
    np.testing.assert_allclose(aligned[mask], y[mask], atol=1e-6 * 300 * max(scale, 1 / scale))


def _test_set(y: np.ndarray, mask: np.ndarray, activity: np.ndarray) -> TestSet:
    n = len(y)
    return TestSet(Path("t.npz"), np.zeros((n, J, 2)), np.where(mask[..., None], y, 0.0), mask,
                   np.zeros(n, np.int64), np.arange(n), np.array(["f"] * n), activity)


@FAST
@given(seed=seeds)
def test_metrics_never_see_unannotated_joints(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 5
    y = rng.normal(0, 300, size=(n, J, 3))
    mask = rng.random((n, J)) > 0.4
    mask[:, :4] = True
    test = _test_set(y, mask, rng.choice(["a", "b", ""], size=n))
    pred = y + rng.normal(0, 50, size=y.shape)
    other = pred.copy()
    other[~mask] = rng.normal(0, 1e6, size=(int((~mask).sum()), 3))  # change only masked joints
    err = np.linalg.norm(pred - y, axis=-1)[mask].mean()
    a = evaluate_run(pred, test, ActivityIndex(test), {"repetition": 0, "test_mpjpe": err}, "d",
                     Pck(threshold_mm=150.0, auc_max_mm=150.0, auc_steps=31))
    b = evaluate_run(other, test, ActivityIndex(test), {"repetition": 0, "test_mpjpe": err}, "d",
                     Pck(threshold_mm=150.0, auc_max_mm=150.0, auc_steps=31))
    assert (a.mpjpe, a.p_mpjpe, a.pck, a.auc) == (b.mpjpe, b.p_mpjpe, b.pck, b.auc)
    np.testing.assert_array_equal(a.per_joint, b.per_joint)
    assert a.per_activity == b.per_activity
    assert a.p_mpjpe <= a.mpjpe + 1e-9  # the alignment can only reduce the error


@FAST
@given(seed=seeds, t1=st.floats(0, 300), t2=st.floats(0, 300))
def test_pck_is_a_monotone_fraction_and_auc_lies_between_its_ends(seed, t1, t2) -> None:
    rng = np.random.default_rng(seed)
    err = rng.exponential(80, size=(6, J))
    mask = rng.random((6, J)) > 0.2
    mask[0, 0] = True
    lo, hi = sorted((t1, t2))
    assert 0.0 <= pck(err, mask, lo) <= pck(err, mask, hi) <= 1.0
    auc = pck_auc(err, mask, 150.0, 31)
    assert pck(err, mask, 0.0) <= auc <= pck(err, mask, 150.0)
