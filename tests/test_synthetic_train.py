"""The synthetic training split under ``pretrain.data`` (cabinlift.synthetic_train): nested
fractions, mirrored and re-scaled poses, virtual cameras and detector noise, each against an
answer worked out by hand from a made-up pose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cliutil import replaced, typed, with_changes

from cabinlift import config, synthetic_train
from cabinlift.normalize import normalize_2d
from cabinlift.skeleton import COCO13, COCO13_TREE, L_SHOULDER, R_SHOULDER
from cabinlift.synthetic_train import (
    build_train,
    first_share,
    fit_pinhole,
    mirror,
    move_camera,
    scale_bones,
    select_rows,
    stream,
)

ROOT = Path(__file__).resolve().parents[1]
PARAMS = typed(config.read_yaml(ROOT / "params.yaml"))

#: A seated upper body in the camera frame (metres), off the optical axis and not symmetric.
POSE = {
    "nose": (0.20, -0.30, 1.00), "l_eye": (0.23, -0.33, 1.00), "r_eye": (0.17, -0.33, 1.01),
    "l_ear": (0.27, -0.31, 1.05), "r_ear": (0.13, -0.31, 1.06), "l_shoulder": (0.38, 0.00, 1.10),
    "r_shoulder": (0.02, 0.01, 1.12), "l_elbow": (0.45, 0.25, 1.00), "r_elbow": (-0.02, 0.27, 1.05),
    "l_wrist": (0.35, 0.40, 0.90), "r_wrist": (0.08, 0.42, 0.95), "l_hip": (0.32, 0.50, 1.20),
    "r_hip": (0.08, 0.50, 1.22),
}
FX, FY, CX, CY = 600.0, 620.0, 640.0, 480.0


def _poses(n: int, seed: int = 0) -> np.ndarray:
    base = np.array([POSE[name] for name in COCO13])
    return base + np.random.default_rng(seed).normal(0, 0.02, (n, 13, 3))


def _pixels(xyz: np.ndarray) -> np.ndarray:
    return np.stack([FX * xyz[..., 0] / xyz[..., 2] + CX, FY * xyz[..., 1] / xyz[..., 2] + CY], -1)


def _counterpart(name: str) -> str:
    return {"l_": "r_", "r_": "l_"}.get(name[:2], "") + name[2:] if name[:2] in ("l_", "r_") else name


def _params(**changes) -> config.Params:
    return replaced(PARAMS, **{f"pretrain.data.{k}": v for k, v in changes.items()})


def _build(params: config.Params, n: int = 6, visibility=None, human=None):
    xyz = _poses(n)
    vis = np.full((n, 13), 2) if visibility is None else visibility
    names = np.array(["human_01"] * n) if human is None else human
    return xyz, build_train(params, _pixels(xyz), xyz, vis, names)


# -------------------------------------------------------------------- the pinhole claim


def test_intrinsics_cancel_in_the_normalised_2d_and_the_camera_is_recovered():
    xyz = _poses(4)
    px = _pixels(xyz)
    a, ok_a = normalize_2d(px)
    b, ok_b = normalize_2d(xyz[..., :2] / xyz[..., 2:])
    assert ok_a.all() and ok_b.all()
    np.testing.assert_allclose(a, b, atol=1e-12)
    scale, offset = fit_pinhole(px, xyz)
    np.testing.assert_allclose(scale, [[FX, FY]] * 4, rtol=1e-12)
    np.testing.assert_allclose(offset, [[CX, CY]] * 4, rtol=1e-12)


# -------------------------------------------------------------------- amount: nested fractions


def test_fractions_are_nested_and_one_keeps_every_row_in_order():
    human = np.array([f"human_{i % 10:02d}" for i in range(60)])  # 10 humans, interleaved rows
    full = select_rows(human, 1.0, 1.0, seed=5)
    np.testing.assert_array_equal(full, np.arange(60))
    for poses in (1.0, 0.5):
        smaller = select_rows(human, 0.3, poses, seed=5)
        larger = select_rows(human, 0.6, poses, seed=5)
        assert set(smaller) < set(larger) and list(smaller) == sorted(smaller)
        assert len(set(human[smaller])) == 3 and len(set(human[larger])) == 6
    few, more = select_rows(human, 0.6, 0.5, seed=5), select_rows(human, 0.6, 0.84, seed=5)
    assert set(few) < set(more)
    assert len(few) == 6 * 3 and len(more) == 6 * 6  # ceil(0.5 * 6), ceil(0.84 * 6) per human
    assert set(select_rows(human, 0.3, 1.0, seed=6)) != set(select_rows(human, 0.3, 1.0, seed=5))


def test_fraction_is_taken_as_written_and_keeps_at_least_one():
    rng = np.random.default_rng(0)
    assert len(first_share(100, 0.55, rng)) == 55  # 0.55 * 100 is 55.00000000000001 in floats
    assert len(first_share(10, 0.01, rng)) == 1
    assert len(first_share(7, 1.0, rng)) == 7


# -------------------------------------------------------------------- flip


def test_mirror_is_the_reflection_with_left_and_right_swapped():
    xyz = np.array([[POSE[name] for name in COCO13]])
    hidden = np.zeros((1, 13), bool)
    hidden[0, COCO13.index("l_wrist")] = True
    out, out_hidden = mirror(xyz, hidden)
    for j, name in enumerate(COCO13):
        x, y, z = POSE[_counterpart(name)]
        np.testing.assert_array_equal(out[0, j], [-x, y, z])
    assert np.flatnonzero(out_hidden[0]).tolist() == [COCO13.index("r_wrist")]


def test_a_flipped_copy_is_the_mirror_in_3d_and_in_2d():
    xyz, (rows, px, pts, report) = _build(_params(**{"augment.copies": 1, "augment.flip": 1.0}))
    n = len(xyz)
    assert rows.tolist() == [*range(n), *range(n)] and report["copies"] == n
    swap = [COCO13.index(_counterpart(name)) for name in COCO13]
    np.testing.assert_allclose(pts[n:], xyz[:, swap] * [-1.0, 1.0, 1.0], atol=1e-12)
    original, _ = normalize_2d(px[:n])
    flipped, ok = normalize_2d(px[n:])
    assert ok.all()
    np.testing.assert_allclose(flipped, original[:, swap] * [-1.0, 1.0], atol=1e-9)


# -------------------------------------------------------------------- bone lengths


def _bone(xyz: np.ndarray, parent: int, child: int) -> np.ndarray:
    neck = 0.5 * (xyz[:, L_SHOULDER] + xyz[:, R_SHOULDER])
    return xyz[:, child] - (neck if parent < 0 else xyz[:, parent])


def test_scaled_bones_keep_their_direction_and_take_their_factor():
    xyz = np.array([[POSE[name] for name in COCO13]])
    factors = np.array([[1.0 + 0.1 * (b + 1) for b in range(len(COCO13_TREE))]])
    factors[0, :2] = 1.3  # both shoulders alike, so the neck stays their midpoint
    out = scale_bones(xyz, factors)
    for b, (parent, child) in enumerate(COCO13_TREE):
        np.testing.assert_allclose(_bone(out, parent, child), factors[0, b] * _bone(xyz, parent, child),
                                   atol=1e-12)
    # the left wrist moved with its elbow and shoulder: neck + sum of its chain's scaled bones
    neck = 0.5 * (xyz[0, L_SHOULDER] + xyz[0, R_SHOULDER])
    chain = 1.3 * (xyz[0, 5] - neck) + factors[0, 2] * (xyz[0, 7] - xyz[0, 5]) \
        + factors[0, 4] * (xyz[0, 9] - xyz[0, 7])
    np.testing.assert_allclose(out[0, 9], neck + chain, atol=1e-12)


def test_left_and_right_bones_share_their_drawn_factor():
    xyz, (rows, px, pts, _) = _build(_params(**{"augment.copies": 1, "augment.bone_scale": 0.2}))
    n = len(xyz)
    ratio = {(p, c): np.linalg.norm(_bone(pts[n:], p, c), axis=-1)
             / np.linalg.norm(_bone(xyz, p, c), axis=-1) for p, c in COCO13_TREE}
    for left, right in (((5, 7), (6, 8)), ((7, 9), (8, 10)), ((5, 11), (6, 12)), ((0, 1), (0, 2)),
                        ((1, 3), (2, 4)), ((-1, 5), (-1, 6))):
        np.testing.assert_allclose(ratio[left], ratio[right], rtol=1e-9)
        assert np.all(np.abs(ratio[left] - 1) > 1e-6)
    np.testing.assert_allclose(0.5 * (pts[n:, 5] + pts[n:, 6]), 0.5 * (xyz[:, 5] + xyz[:, 6]),
                               atol=1e-12)  # the neck stays


# -------------------------------------------------------------------- virtual camera


def test_a_still_camera_and_plain_copies_change_nothing():
    xyz = _poses(3)
    np.testing.assert_array_equal(move_camera(xyz, np.zeros((3, 3)), np.zeros((3, 3))), xyz)
    xyz, (rows, px, pts, _) = _build(_params(**{"augment.copies": 1}))
    n = len(xyz)
    np.testing.assert_allclose(pts[n:], xyz, rtol=0, atol=1e-15)  # bones scaled by exactly 1
    np.testing.assert_allclose(px[n:], _pixels(xyz), atol=1e-9)


def test_known_rotations_and_shift():
    xyz = _poses(1)
    c, s = np.cos(np.deg2rad(30.0)), np.sin(np.deg2rad(30.0))
    roll = move_camera(xyz, np.array([[0.0, 0.0, 30.0]]), np.zeros((1, 3)))
    x, y, z = xyz[0].T
    np.testing.assert_allclose(roll[0], np.stack([c * x - s * y, s * x + c * y, z], 1), atol=1e-12)
    pitch = move_camera(xyz, np.array([[90.0, 0.0, 0.0]]), np.array([[0.1, 0.0, 2.0]]))
    np.testing.assert_allclose(pitch[0], np.stack([x + 0.1, -z, y + 2.0], 1), atol=1e-12)
    yaw = move_camera(xyz, np.array([[0.0, 90.0, 0.0]]), np.zeros((1, 3)))
    np.testing.assert_allclose(yaw[0], np.stack([z, y, -x], 1), atol=1e-12)
    both = move_camera(xyz, np.array([[90.0, 90.0, 0.0]]), np.zeros((1, 3)))
    np.testing.assert_allclose(both[0], np.stack([y, -z, -x], 1), atol=1e-12)  # x first, then y


def test_a_moved_camera_s_copy_is_normalised_from_its_own_projection():
    params = _params(**{"augment.copies": 2, "augment.camera_jitter_deg": 10.0,
                        "augment.camera_jitter_m": 0.05, "augment.bone_scale": 0.1,
                        "augment.flip": 0.5})
    xyz, (rows, px, pts, report) = _build(params, n=20)
    assert len(rows) == 60 and report["copies_behind_camera"] == 0
    copies = slice(20, None)
    assert not np.allclose(pts[copies], np.concatenate([xyz, xyz]))
    np.testing.assert_allclose(normalize_2d(px[copies])[0],
                               normalize_2d(pts[copies, :, :2] / pts[copies, :, 2:])[0], atol=1e-9)


def test_a_copy_behind_the_camera_is_dropped():
    params = _params(**{"augment.copies": 1, "augment.camera_jitter_m": 3.0})
    xyz, (rows, px, pts, report) = _build(params, n=40)
    behind = report["copies_behind_camera"]
    assert 0 < behind < 40 and len(rows) == 80 - behind and np.all(pts[..., 2] > 0)


# -------------------------------------------------------------------- detector noise


def _detector(**kp) -> config.Params:
    params = _params(input_2d="detector")
    return replaced(params, **{f"keypoints2d.simulated.{k}": v for k, v in kp.items()})


def test_detector_noise_spares_only_visible_joints_with_no_hidden_factor():
    """hidden_noise_factor 0: joints of visibility below 2 stay exact, the others move."""
    n = 8
    vis = np.full((n, 13), 2)
    vis[:, COCO13.index("l_elbow")] = 1  # self-occluded
    vis[:, COCO13.index("nose")] = 0  # outside the image
    xyz, (rows, px, pts, report) = _build(_detector(hidden_noise_factor=0.0, swap_rate=0.0), n,
                                          visibility=vis)
    exact = np.isclose(px, _pixels(xyz), rtol=0, atol=1e-9).all(axis=-1)
    assert np.flatnonzero(exact.all(axis=0)).tolist() == [COCO13.index("nose"),
                                                          COCO13.index("l_elbow")]
    assert not exact[:, [j for j in range(13) if vis[0, j] == 2]].any()
    assert report["input_2d"] == "detector"


def test_detector_noise_of_the_originals_does_not_depend_on_the_copies():
    _, (_, alone, _, _) = _build(_detector())
    xyz, (rows, px, pts, _) = _build(replaced(_detector(), **{"pretrain.data.augment.copies": 2}))
    n = len(xyz)
    np.testing.assert_array_equal(px[:n], alone)
    assert not np.allclose(px[n:2 * n], _pixels(xyz), atol=1e-6)  # the copies are noisy too
    assert not np.allclose(px[n:2 * n], alone, atol=1e-6)  # with noise of their own


# -------------------------------------------------------------------- when it applies


def test_only_a_knob_changes_the_split():
    assert not synthetic_train.changes_split(PARAMS.pretrain.data)
    assert not synthetic_train.changes_split(_params(seed=3).pretrain.data)
    for change in ({"humans": 0.5}, {"poses": 0.9}, {"input_2d": "detector"},
                   {"augment.copies": 1}):
        assert synthetic_train.changes_split(_params(**change).pretrain.data), change


def test_streams_are_independent_per_name():
    a = stream(0, "poses", "human_01").random(3)
    assert not np.allclose(a, stream(0, "poses", "human_02").random(3))
    np.testing.assert_array_equal(a, stream(0, "poses", "human_01").random(3))


@pytest.mark.parametrize(("changes", "expected"), [
    ({"pretrain.data.humans": 0}, "key 'pretrain.data.humans' must be a number in (0, 1], got 0"),
    ({"pretrain.data.poses": 1.5}, "key 'pretrain.data.poses' must be a number in (0, 1], got 1.5"),
    ({"pretrain.data.input_2d": "noisy"},
     "key 'pretrain.data.input_2d' must be one of 'ground_truth', 'detector', got 'noisy'"),
    ({"pretrain.data.augment.copies": -1},
     "key 'pretrain.data.augment.copies' must be an integer >= 0, got -1"),
    ({"pretrain.data.augment.flip": True},
     "key 'pretrain.data.augment.flip' must be a number in [0, 1] (the probability that a copy is "
     "mirrored), got True"),
    ({"pretrain.data.augment.camera_jitter_deg": -1.0},
     "key 'pretrain.data.augment.camera_jitter_deg' must be a number >= 0, got -1.0"),
    ({"pretrain.data.augment.bone_scale": 0.1},
     "key 'pretrain.data.augment.copies' is 0, so bone_scale would change nothing; set copies >= 1"
     " (augmented copies per training pose)"),
    ({"pretrain.data.input_2d": "detector", "keypoints2d.backend": "mmpose",
      "keypoints2d.simulated": None},
     "missing key 'keypoints2d.simulated' (the detector-error model that 'pretrain.data.input_2d' "
     "detector applies to the synthetic 2D)"),
])
def test_bad_values_are_one_line_each(changes, expected):
    raw = with_changes(config.read_yaml(ROOT / "params.yaml"), **changes)
    if "keypoints2d.simulated" in changes:
        del raw["keypoints2d"]["simulated"]
    assert config.problems(raw) == [expected]
