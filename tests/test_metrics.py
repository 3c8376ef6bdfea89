import warnings

import numpy as np
import pytest
import torch

from cabinlift.metrics import (
    loss_denominator,
    masked_mean,
    masked_mse,
    mpjpe,
    pck_auc,
    procrustes_align,
)


def test_masked_mse_known_value_and_mask():
    pred = torch.zeros(1, 2, 3)
    target = torch.tensor([[[1.0, 2.0, 2.0], [100.0, 100.0, 100.0]]])
    mask = torch.tensor([[True, False]])
    # only joint 0: squared errors 1 + 4 + 4 over 3 coordinates
    assert torch.isclose(masked_mse(pred, target, mask), torch.tensor(3.0))
    target2 = target.clone()
    target2[0, 1] = -5.0
    assert masked_mse(pred, target2, mask) == masked_mse(pred, target, mask)


def test_masked_mse_nothing_valid_is_zero():
    pred = torch.ones(2, 3, 3)
    assert masked_mse(pred, pred * 7, torch.zeros(2, 3, dtype=torch.bool)) == 0


def test_mpjpe_known_value():
    pred = torch.zeros(2, 2, 3)
    target = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]], [[0.0, 0.0, 2.0], [9.0, 9, 9]]])
    mask = torch.tensor([[True, True], [True, False]])
    # errors 5, 1, 2 (the 4th is masked) -> mean 8/3
    assert torch.isclose(mpjpe(pred, target, mask), torch.tensor(8.0 / 3.0))


def test_procrustes_recovers_similarity_transform():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(4, 13, 3))
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    pred = 1.7 * gt @ rot.T + np.array([10.0, -3.0, 2.0])
    mask = np.ones((4, 13), bool)
    mask[0, :5] = False
    pred[0, :5] += 1000.0  # masked joints must not influence the alignment
    aligned = procrustes_align(pred, gt, mask)
    err = np.linalg.norm(aligned - gt, axis=-1)
    assert err[mask].max() < 1e-8


def test_masked_mean():
    assert masked_mean(np.array([1.0, 2.0, 100.0]), np.array([1, 1, 0])) == 1.5


def test_masked_mean_sums_in_double_precision():
    # in float32, 1e8 + 1 rounds back to 1e8 and the mean would be 0
    values = np.array([1e8, 1.0, -1e8], dtype=np.float32)
    assert masked_mean(values, np.ones(3, bool)) == 1.0 / 3.0


def test_masked_mean_without_valid_entries_is_nan_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = masked_mean(np.ones((2, 3)), np.array([[True, False, False]] * 2), axis=0)
    assert out[0] == 1.0 and np.isnan(out[1:]).all()


def test_mpjpe_of_a_single_valid_joint_is_its_error():
    pred = torch.zeros(1, 2, 3)
    target = torch.tensor([[[0.0, 3.0, 4.0], [9.0, 9.0, 9.0]]])
    assert mpjpe(pred, target, torch.tensor([[True, False]])) == 5.0


def test_loss_denominator_counts_every_stacked_copy():
    # 2 valid joints of 4 in each of 2 poses, 3 stacked predictions: 4 x 3 coordinates x 3
    # copies = 36 under coordinate_mean; all 8 joints x 3 copies = 24 under xyz_sum_joint_mean
    mask = torch.tensor([[True, True, False, False], [True, False, True, False]])
    assert loss_denominator(mask, "coordinate_mean", copies=3) == 36
    assert loss_denominator(mask, "xyz_sum_joint_mean", copies=3) == 24
    assert loss_denominator(mask, "coordinate_mean") == 12
    # a floating mask keeps its precision
    assert loss_denominator(mask.double(), "xyz_sum_joint_mean").dtype == torch.float64


def test_authors_reduction_sums_xyz_and_averages_over_all_joints():
    pred = torch.zeros(1, 2, 3)
    target = torch.tensor([[[1.0, 2.0, 2.0], [100.0, 100.0, 100.0]]])
    mask = torch.tensor([[True, False]])
    # joint 0's squared Euclidean error 1 + 4 + 4 = 9; the masked joint adds 0 but counts: 9 / 2
    got = masked_mse(pred, target, mask, "xyz_sum_joint_mean")
    assert torch.isclose(got, torch.tensor(4.5))


def test_unknown_loss_reduction_is_named():
    import pytest

    with pytest.raises(ValueError, match="unknown loss reduction 'sum'"):
        masked_mse(torch.zeros(1, 1, 3), torch.zeros(1, 1, 3), torch.ones(1, 1), "sum")


def test_procrustes_leaves_poses_with_fewer_than_three_valid_joints_unchanged():
    # the target is the prediction scaled by 2, rotated 90 degrees about z and shifted: from 3
    # valid (non-collinear) joints the similarity is recovered exactly; with 2 (or 0) valid
    # joints it is not determined and the prediction comes back as it was
    pred = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]] * 3)
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    target = 2.0 * pred @ rot.T + np.array([5.0, 6.0, 7.0])
    mask = np.array([[True, True, True, False], [True, True, False, False], [False] * 4])
    aligned = procrustes_align(pred, target, mask)
    np.testing.assert_allclose(aligned[0], target[0], atol=1e-9)  # the masked joint too
    np.testing.assert_array_equal(aligned[1], pred[1])
    np.testing.assert_array_equal(aligned[2], pred[2])
    # the same at 1 cm scale (a pose in metres: its spread is far below 1)
    small = procrustes_align(0.01 * pred, 0.01 * target, mask)
    np.testing.assert_allclose(small[0], 0.01 * target[0], atol=1e-9)


def test_pck_auc_bounds_of_its_arguments():
    # errors 0, 100, 200 mm: two thresholds (0 and 150 mm) give 3DPCK 1/3 and 2/3 -> AUC 1/2;
    # a range below 1 mm is still a range (0 and 0.5 mm: 1/3 both); no range or one threshold
    # is refused, naming what is needed
    err, mask = np.array([[0.0, 100.0, 200.0]]), np.ones((1, 3), bool)
    assert pck_auc(err, mask, 150.0, 2) == pytest.approx(0.5)
    assert pck_auc(err, mask, 0.5, 2) == pytest.approx(1 / 3)
    for max_mm, steps in ((0.0, 5), (-1.0, 5), (150.0, 1)):
        with pytest.raises(ValueError, match="^pck_auc needs at least two thresholds and a "
                                             "positive range$"):
            pck_auc(err, mask, max_mm, steps)
