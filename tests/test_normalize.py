import numpy as np
import pytest

from cabinlift.arrays import load_arrays, save_arrays
from cabinlift.camera import Calibration
from cabinlift.errors import CabinliftError
from cabinlift.formats.drive_act import write_calibration, write_openpose3d
from cabinlift.keypoints.interim import Keypoints2D, write_keypoints
from cabinlift.normalize import build_real, centre_3d, normalize_2d
from cabinlift.skeleton import COCO17_TO_BODY25, DRIVE_ACT_JOINTS, L_SHOULDER, R_SHOULDER


def _pose2d():
    xy = np.zeros((1, 13, 2))
    xy[0, :, 0] = np.linspace(100, 300, 13)  # horizontal extent 200
    xy[0, :, 1] = np.linspace(50, 450, 13)  # vertical extent 400
    xy[0, L_SHOULDER] = [260.0, 200.0]
    xy[0, R_SHOULDER] = [140.0, 220.0]  # neck = (200, 210)
    return xy


def test_normalize_2d_centres_on_neck_and_scales_by_extents():
    xy = _pose2d()
    out, ok = normalize_2d(xy)
    assert ok.all()
    expected = (xy[0] - np.array([200.0, 210.0])) / np.array([200.0, 400.0])
    np.testing.assert_allclose(out[0], expected)
    np.testing.assert_allclose(0.5 * (out[0, L_SHOULDER] + out[0, R_SHOULDER]), [0, 0], atol=1e-12)
    np.testing.assert_allclose(out[0].max(0) - out[0].min(0), [1.0, 1.0])


def test_normalize_2d_is_invariant_to_image_scale_and_shift():
    xy = _pose2d()
    a, _ = normalize_2d(xy)
    b, _ = normalize_2d(xy * np.array([3.0, 0.5]) + 17.0)
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_degenerate_2d_flagged():
    _, ok = normalize_2d(np.ones((2, 13, 2)))
    assert not ok.any()


def test_centre_3d_in_millimetres():
    xyz = np.zeros((1, 13, 3))
    xyz[0, L_SHOULDER] = [0.2, 0.0, 1.0]
    xyz[0, R_SHOULDER] = [-0.2, 0.0, 1.2]
    xyz[0, 0] = [0.0, -0.3, 1.1]
    out = centre_3d(xyz)
    np.testing.assert_allclose(out[0, 0], [0.0, -300.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(out[0, L_SHOULDER], [200.0, 0.0, -100.0], atol=1e-9)


def test_processed_arrays_round_trip_and_shape_check(tmp_path):
    arrays = {"x2d": np.zeros((3, 13, 2), np.float32), "y3d": np.zeros((3, 13, 3), np.float32),
              "mask": np.ones((3, 13), bool), "subject": np.arange(3)}
    save_arrays(tmp_path / "a.npz", arrays)
    back = load_arrays(tmp_path / "a.npz")
    assert back["x2d"].shape == (3, 13, 2) and back["subject"].tolist() == [0, 1, 2]
    arrays["y3d"] = np.zeros((3, 12, 3), np.float32)
    save_arrays(tmp_path / "b.npz", arrays)
    with pytest.raises(CabinliftError, match=r"b\.npz.*'y3d'"):
        load_arrays(tmp_path / "b.npz")
    with pytest.raises(CabinliftError, match="not found"):
        load_arrays(tmp_path / "c.npz")


def _one_recording(tmp_path, valid_3d: np.ndarray, detected: np.ndarray, xy: np.ndarray):
    """A Drive&Act root with run vp1/run1 (3D of the 13 joints annotated where ``valid_3d``)
    and its interim 2D keypoints; frames 0, 5, 10, ...; returns (params, keypoint folder)."""
    n = len(detected)
    frame_id = np.arange(n, dtype=np.int64) * 5
    root = tmp_path / "drive_and_act"
    coco = np.zeros((13, 3))
    coco[:, 0] = np.linspace(-0.3, 0.3, 13)
    coco[:, 1] = np.linspace(-0.3, 0.5, 13)
    coco[:, 2] = 1.1
    coco[L_SHOULDER] = [0.2, 0.0, 1.0]
    coco[R_SHOULDER] = [-0.2, 0.0, 1.2]  # neck (0, 0, 1.1)
    xyz = np.zeros((n, len(DRIVE_ACT_JOINTS), 3))
    p = np.zeros((n, len(DRIVE_ACT_JOINTS)))
    for j, name in enumerate(COCO17_TO_BODY25[:13]):
        k = DRIVE_ACT_JOINTS.index(name)
        xyz[:, k] = np.where(valid_3d[:, j, None], coco[j], 0.0)
        p[:, k] = np.where(valid_3d[:, j], 0.9, 0.0)
    write_openpose3d(root / "openpose_3d/vp1/run1.ids_1.openpose.3d.csv", frame_id,
                     frame_id / 30.0, xyz, p)
    write_calibration(root / "inner_mirror/vp1/run1.ids_1.calibration.json",
                      Calibration(fx=900.0, fy=900.0, cx=640.0, cy=512.0, width=1280,
                                  height=1024))
    kp_dir = tmp_path / "keypoints2d"
    pts = np.where(detected[:, None, None], xy, np.nan)
    write_keypoints(kp_dir / "vp1/run1.ids_1.keypoints2d.csv", Keypoints2D(
        frame_id=frame_id, detected=detected, xy=pts,
        scores=np.where(detected[:, None], 0.9, np.nan) * np.ones((n, 17))))
    params = {"data": {"real": {"root": str(root)}},
              "normalize": {"min_valid_joints": 5,
                            "real_splits": {"train": [1], "val": [], "test": []}}}
    return params, kp_dir


def test_build_real_keeps_only_frames_with_a_neck_enough_joints_and_a_detection(tmp_path):
    # seven frames: 0 complete; 1 without the left and 2 without the right shoulder (the
    # neck needs both; 12 valid joints each); 3 missed by the detector; 4 with both shoulders
    # but only 4 valid joints (< min_valid_joints 5); 5 complete in 3D with every 2D keypoint
    # on one pixel (no extent); 6 with exactly 5 valid joints, both shoulders among them
    valid = np.ones((7, 13), bool)
    valid[1, L_SHOULDER] = False
    valid[2, R_SHOULDER] = False
    valid[4] = False
    valid[4, [0, L_SHOULDER, R_SHOULDER, 12]] = True
    valid[6] = False
    valid[6, [0, L_SHOULDER, R_SHOULDER, 11, 12]] = True
    detected = np.array([True, True, True, False, True, True, True])
    xy = np.zeros((7, 17, 2))
    xy[..., 0] = np.linspace(500.0, 900.0, 17)
    xy[..., 1] = np.linspace(200.0, 800.0, 17)
    xy[5] = 640.0
    params, kp_dir = _one_recording(tmp_path, valid, detected, xy)
    out, counts = build_real(params, kp_dir)
    assert {k: counts[k] for k in ("sampled", "no_detection", "no_neck", "few_valid_joints",
                                   "degenerate_2d", "unused_subject")} == {
        "sampled": 7, "no_detection": 1, "no_neck": 2, "few_valid_joints": 1,
        "degenerate_2d": 1, "unused_subject": 0}
    assert counts["kept"] == {"train": 2, "val": 0, "test": 0}
    train = out["train"]
    assert train["frame_id"].tolist() == [0, 30] and train["subject"].tolist() == [1, 1]
    assert train["file_id"].tolist() == ["vp1/run1.ids_1"] * 2
    assert train["mask"].tolist() == valid[[0, 6]].tolist()
    # neck-centred millimetres: the shoulders at (+-200, 0, -+100)
    np.testing.assert_allclose(train["y3d"][0, L_SHOULDER], [200.0, 0.0, -100.0], atol=1e-3)
    np.testing.assert_allclose(train["y3d"][0, R_SHOULDER], [-200.0, 0.0, 100.0], atol=1e-3)
    assert len(out["val"]["x2d"]) == 0 and len(out["test"]["x2d"]) == 0
