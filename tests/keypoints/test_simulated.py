from types import SimpleNamespace as NS  # a backend section's attributes

import numpy as np

from cabinlift.camera import INNER_MIRROR
from cabinlift.keypoints import simulated
from cabinlift.skeleton import COCO17

CFG_DET = {"miss_rate": 0.0, "box_margin": 0.1, "head_margin": 0.15, "box_jitter": 0.0,
           "score_range": [0.9, 0.9]}
CFG_KP = {"noise_scale": 0.0, "hidden_noise_factor": 3.0, "hidden_score_factor": 0.3,
          "swap_rate": 0.0, "score_range": [1.0, 1.0]}


def _poses(n=50, seed=0):
    """A driver ~0.9 m in front of the camera, slightly moving."""
    rng = np.random.default_rng(seed)
    base = np.zeros((17, 3))
    base[:, 2] = 0.9
    layout = {"nose": (0, -0.25), "l_eye": (0.03, -0.28), "r_eye": (-0.03, -0.28),
              "l_ear": (0.07, -0.26), "r_ear": (-0.07, -0.26), "l_shoulder": (0.18, 0.0),
              "r_shoulder": (-0.18, 0.0), "l_elbow": (0.22, 0.25), "r_elbow": (-0.22, 0.25),
              "l_wrist": (0.15, 0.4), "r_wrist": (-0.15, 0.4), "l_hip": (0.12, 0.5),
              "r_hip": (-0.12, 0.5), "l_knee": (0.14, 0.6), "r_knee": (-0.14, 0.6),
              "l_ankle": (0.14, 0.7), "r_ankle": (-0.14, 0.7)}
    for name, (x, y) in layout.items():
        base[COCO17.index(name), :2] = (x, y)
    return base + rng.normal(0, 0.01, size=(n, 17, 3))


def test_noise_free_keypoints_are_the_distorted_projection():
    xyz = _poses()
    valid = np.ones((len(xyz), 17), bool)
    rng = np.random.default_rng(0)
    det = simulated.simulate_detections(xyz, valid, INNER_MIRROR, NS(**CFG_DET), rng, np.arange(50) * 30)
    assert det.detected.all()
    kp = simulated.simulate_keypoints(xyz, valid, det, INNER_MIRROR, NS(**CFG_KP), rng)
    truth = INNER_MIRROR.project(xyz)
    inside = (truth[..., 0] >= det.boxes[:, None, 0]) & (truth[..., 0] <= det.boxes[:, None, 2])
    inside &= (truth[..., 1] >= det.boxes[:, None, 1]) & (truth[..., 1] <= det.boxes[:, None, 3])
    np.testing.assert_allclose(kp.xy[inside], truth[inside], atol=1e-9)
    # distortion matters: the undistorted projection is far off for the wrists
    flat = INNER_MIRROR.project(xyz, distort=False)
    assert np.abs(flat[:, 9] - truth[:, 9]).max() > 5.0


def test_noise_scales_with_oks_sigma_and_occlusion():
    xyz = np.repeat(_poses(1), 4000, axis=0)
    valid = np.ones((4000, 17), bool)
    valid[:, COCO17.index("l_wrist")] = False
    rng = np.random.default_rng(1)
    det = simulated.simulate_detections(xyz, valid, INNER_MIRROR, NS(**CFG_DET), rng, np.arange(4000))
    kp = simulated.simulate_keypoints(xyz, valid, det, INNER_MIRROR,
                                      NS(**{**CFG_KP, "noise_scale": 0.5}), rng)
    err = np.linalg.norm(kp.xy - INNER_MIRROR.project(xyz), axis=-1)
    eye, shoulder = COCO17.index("l_eye"), COCO17.index("r_shoulder")
    lw, rw = COCO17.index("l_wrist"), COCO17.index("r_wrist")
    assert err[:, shoulder].mean() > 2.5 * err[:, eye].mean()  # sigma .079 vs .025
    assert err[:, lw].mean() > 2.0 * err[:, rw].mean()  # occluded: 3x noise (some clipping)
    assert kp.scores[:, lw].mean() < 0.5 * kp.scores[:, rw].mean()


def test_misses_swaps_and_empty_frames():
    xyz = _poses(2000)
    valid = np.ones((2000, 17), bool)
    valid[:100] = False  # nobody annotated: nothing to detect
    rng = np.random.default_rng(2)
    det = simulated.simulate_detections(xyz, valid, INNER_MIRROR, NS(**{**CFG_DET, "miss_rate": 0.1}),
                                        rng, np.arange(2000))
    assert not det.detected[:100].any()
    assert 0.05 < 1 - det.detected[100:].mean() < 0.15
    assert np.isnan(det.boxes[~det.detected]).all()
    kp = simulated.simulate_keypoints(xyz, valid, det, INNER_MIRROR,
                                      NS(**{**CFG_KP, "swap_rate": 0.5}), rng)
    truth = INNER_MIRROR.project(xyz)
    lw, rw = COCO17.index("l_wrist"), COCO17.index("r_wrist")
    swapped = np.abs(kp.xy[:, lw, 0] - truth[:, rw, 0]) < 1e-6
    assert 0.35 < swapped[det.detected].mean() < 0.65


def test_complete_joints_interpolates_and_mirrors():
    xyz = _poses(5)
    valid = np.ones((5, 17), bool)
    le = COCO17.index("l_elbow")
    valid[2, le] = False
    xyz_hidden = xyz.copy()
    xyz_hidden[2, le] = 0.0
    ear_l, ear_r = COCO17.index("l_ear"), COCO17.index("r_ear")
    valid[:, ear_l] = False  # never annotated: mirrored from the right ear
    out = simulated.complete_joints(xyz_hidden, valid)
    np.testing.assert_allclose(out[2, le], 0.5 * (xyz[1, le] + xyz[3, le]))
    ls, rs = COCO17.index("l_shoulder"), COCO17.index("r_shoulder")
    neck = 0.5 * (out[:, ls] + out[:, rs])
    d_l = np.linalg.norm(out[:, ear_l] - neck, axis=-1)
    d_r = np.linalg.norm(out[:, ear_r] - neck, axis=-1)
    np.testing.assert_allclose(d_l, d_r, rtol=1e-9)
    assert (out[:, ear_l, 0] > out[:, ear_r, 0]).all()  # on the other side of the body


def test_the_backend_draws_as_before_its_error_model_moved_to_its_own_module():
    """Sums of the boxes, keypoints and scores of noisy, swapped, partly hidden and missed
    frames, as the backend computed them before :mod:`cabinlift.keypoints.detector_errors`
    held its error model: any change in the order of the draws changes every one."""
    xyz = _poses(60, seed=3)
    valid = np.random.default_rng(1).random((60, 17)) > 0.2
    det_cfg = NS(**{**CFG_DET, "miss_rate": 0.1, "box_jitter": 0.02, "score_range": [0.85, 0.99]})
    kp_cfg = NS(**{**CFG_KP, "noise_scale": 0.5, "swap_rate": 0.3, "score_range": [0.85, 1.0]})
    rng = np.random.default_rng(7)
    det = simulated.simulate_detections(xyz, valid, INNER_MIRROR, det_cfg, rng, np.arange(60))
    kp = simulated.simulate_keypoints(xyz, valid, det, INNER_MIRROR, kp_cfg, rng)
    assert det.detected.sum() == 53
    got = [np.nansum(det.boxes), np.nansum(det.scores), np.nansum(kp.xy), np.nansum(kp.scores),
           np.nansum(kp.xy[:, 7] - kp.xy[:, 8])]
    np.testing.assert_allclose(got, [124359.97614829821, 49.27670978517862, 1136035.7332936022,
                                     627.7050878471766, 6157.655877251519], rtol=1e-12)
