"""The simulated detector's error model (its one home): the driver box and the keypoint errors,
checked against the model's own numbers (box by hand, noise sd, swap rate, hidden joints)."""

from types import SimpleNamespace as NS  # a backend section's attributes

import numpy as np

from cabinlift.keypoints.detector_errors import driver_box, keypoint_errors, object_scale
from cabinlift.skeleton import COCO17, COCO17_OKS_SIGMAS

BOX = NS(miss_rate=0.0, box_margin=0.1, head_margin=0.15, box_jitter=0.0, score_range=[0.9, 0.9])


def _points(n: int) -> np.ndarray:
    """n copies of 13 pixel points spanning x 100-300, y 50-350."""
    xy = np.stack([np.linspace(100, 300, 13), np.linspace(50, 350, 13)], axis=1)
    return np.repeat(xy[None], n, axis=0)


def test_the_box_by_hand():
    box = driver_box(_points(1), BOX, np.random.default_rng(0))
    # size 200 x 300; margins 20 and 30, 45 more above for the head
    np.testing.assert_allclose(box, [[80.0, -25.0, 320.0, 380.0]])
    clipped = driver_box(_points(1), BOX, np.random.default_rng(0), (640, 360))
    np.testing.assert_allclose(clipped, [[80.0, 0.0, 320.0, 359.0]])
    np.testing.assert_allclose(object_scale(box), [[np.sqrt(240.0 * 405.0)]])


def test_keypoint_noise_has_the_model_s_sd_and_hidden_joints_more():
    n = 20000
    truth = _points(n)
    box = np.repeat([[-400.0, -400.0, 800.0, 800.0]], n, axis=0)  # no point near an edge
    hidden = np.zeros((n, 13), bool)
    hidden[:, 0] = True
    cfg = NS(noise_scale=0.5, hidden_noise_factor=3.0, swap_rate=0.0)
    noisy = keypoint_errors(truth, box, hidden, cfg, np.random.default_rng(1))
    s = 1200.0  # sqrt of the box area
    sd = (noisy - truth).std(axis=0) / (np.asarray(COCO17_OKS_SIGMAS[:13])[:, None] * s)
    np.testing.assert_allclose(sd[1:], 0.5, rtol=0.03)
    np.testing.assert_allclose(sd[0], 1.5, rtol=0.03)


def test_arm_swaps_at_the_swap_rate_and_points_stay_in_the_box():
    n = 20000
    truth = _points(n)
    box = np.repeat([[150.0, 0.0, 250.0, 400.0]], n, axis=0)
    cfg = NS(noise_scale=0.0, hidden_noise_factor=1.0, swap_rate=0.25)
    noisy = keypoint_errors(truth, box, np.zeros((n, 13), bool), cfg, np.random.default_rng(2))
    le, re = COCO17.index("l_elbow"), COCO17.index("r_elbow")
    lw, rw = COCO17.index("l_wrist"), COCO17.index("r_wrist")
    elbows = noisy[:, le, 1] == truth[0, re, 1]
    wrists = noisy[:, lw, 1] == truth[0, rw, 1]
    assert abs(elbows.mean() - 0.25) < 0.015 and abs(wrists.mean() - 0.25) < 0.015
    assert abs((elbows & wrists).mean() - 0.25**2) < 0.01  # each arm joint on its own
    assert noisy[..., 0].min() == 150.0 and noisy[..., 0].max() == 250.0  # clipped to the box
