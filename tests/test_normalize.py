from pathlib import Path

import numpy as np
import pytest
from cliutil import replaced, typed

from cabinlift import config
from cabinlift.arrays import load_arrays, save_arrays
from cabinlift.camera import Calibration
from cabinlift.errors import CabinliftError
from cabinlift.formats.drive_act import (
    write_activities,
    write_calibration,
    write_openpose3d,
)
from cabinlift.formats.synthetic_cabin import SyntheticHuman, write_annotation
from cabinlift.keypoints.interim import Keypoints2D, write_keypoints
from cabinlift.normalize import (
    build_real,
    build_synthetic,
    centre_3d,
    normalize_2d,
    run_normalize,
)
from cabinlift.skeleton import (
    COCO17,
    COCO17_TO_BODY25,
    DRIVE_ACT_JOINTS,
    L_SHOULDER,
    R_SHOULDER,
    SYNTHETIC_CABIN17,
)

ROOT = Path(__file__).resolve().parents[1]


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
    # a pose a thousandth of a pixel across is small, not degenerate
    c, ok = normalize_2d(xy * 1e-5)
    assert ok.all()
    np.testing.assert_allclose(a, c, atol=1e-9)


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


#: 3D of the 13 joints in metres, camera frame; shoulders at (+-0.2, 0, 1.0 / 1.2): neck (0, 0, 1.1)
_COCO13_M = np.stack([np.linspace(-0.3, 0.3, 13), np.linspace(-0.3, 0.5, 13), np.full(13, 1.1)], 1)
_COCO13_M[L_SHOULDER] = [0.2, 0.0, 1.0]
_COCO13_M[R_SHOULDER] = [-0.2, 0.0, 1.2]


def _pixels(n: int) -> np.ndarray:
    """``n`` detections of 17 distinct keypoints (a 400 x 600 px extent)."""
    xy = np.zeros((n, 17, 2))
    xy[..., 0] = np.linspace(500.0, 900.0, 17)
    xy[..., 1] = np.linspace(200.0, 800.0, 17)
    return xy


def _recording(tmp_path, file_id: str, valid_3d: np.ndarray, detected: np.ndarray,
               xy: np.ndarray, frame_id: np.ndarray | None = None) -> None:
    """Write run ``file_id`` (``vpN/<run>.ids_1``) under ``tmp_path/drive_and_act``: the 3D of
    the 13 joints annotated where ``valid_3d`` (frames 0, 5, 10, ...), and its interim 2D
    keypoints under ``tmp_path/keypoints2d`` (of frames ``frame_id``, default the same)."""
    n = len(valid_3d)
    ids = np.arange(n, dtype=np.int64) * 5
    root = tmp_path / "drive_and_act"
    xyz = np.zeros((n, len(DRIVE_ACT_JOINTS), 3))
    p = np.zeros((n, len(DRIVE_ACT_JOINTS)))
    for j, name in enumerate(COCO17_TO_BODY25[:13]):
        k = DRIVE_ACT_JOINTS.index(name)
        xyz[:, k] = np.where(valid_3d[:, j, None], _COCO13_M[j], 0.0)
        p[:, k] = np.where(valid_3d[:, j], 0.9, 0.0)
    folder, run = file_id.split("/")
    write_openpose3d(root / "openpose_3d" / folder / f"{run}.openpose.3d.csv", ids, ids / 30.0,
                     xyz, p)
    write_calibration(root / "inner_mirror" / folder / f"{run}.calibration.json",
                      Calibration(fx=900.0, fy=900.0, cx=640.0, cy=512.0, width=1280,
                                  height=1024))
    kp_ids = ids if frame_id is None else frame_id
    pts = np.where(detected[:, None, None], xy, np.nan)
    write_keypoints(tmp_path / "keypoints2d" / f"{file_id}.keypoints2d.csv", Keypoints2D(
        frame_id=kp_ids, detected=detected, xy=pts,
        scores=np.where(detected[:, None], 0.9, np.nan) * np.ones((len(kp_ids), 17))))


def _params(tmp_path, train=(1,), val=(), test=(), **changes) -> config.Params:
    """params.yaml with this module's data and splits (``changes``: more dotted keys)."""
    return replaced(typed(config.read_yaml(ROOT / "params.yaml")), **{
        "data.real.root": str(tmp_path / "drive_and_act"), "normalize.min_valid_joints": 5,
        "normalize.real_splits.train": list(train), "normalize.real_splits.val": list(val),
        "normalize.real_splits.test": list(test), **changes})


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
    xy = _pixels(7)
    xy[5] = 640.0
    _recording(tmp_path, "vp1/run1.ids_1", valid, detected, xy)
    out, counts = build_real(_params(tmp_path), tmp_path / "keypoints2d")
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
    assert (train["y3d"][1][~valid[6]] == 0.0).all()  # unannotated joints hold zeros
    assert train["activity"].tolist() == ["", ""]  # no activities file
    assert counts["activities_file"] is None
    # the share of kept frames in which each joint is annotated: the nose in both, an eye in
    # frame 0 only
    assert counts["joint_valid_rate"]["nose"] == 1.0
    assert counts["joint_valid_rate"]["l_eye"] == 0.5
    assert len(out["val"]["x2d"]) == 0 and len(out["test"]["x2d"]) == 0


def test_a_2d_keypoint_not_found_counts_in_no_extent_and_is_zero(tmp_path):
    """A detected frame whose interim CSV leaves a keypoint without coordinates (precomputed
    COCO keypoints that nobody labelled): the extents are those of the others and the joint's
    input is 0 (at the neck), never a point at (0, 0); without a 2D shoulder the frame has no
    neck and is dropped."""
    xy = _pixels(2)  # x = 500 + 25 j, y = 200 + 37.5 j over the 17 keypoints
    xy[0, 12] = np.nan  # r_hip not found: the extents end at joint 11
    xy[1, L_SHOULDER] = np.nan
    _recording(tmp_path, "vp1/run1.ids_1", np.ones((2, 13), bool), np.ones(2, bool), xy)
    out, counts = build_real(_params(tmp_path), tmp_path / "keypoints2d")
    assert counts["no_neck"] == 1 and counts["kept"]["train"] == 1
    k = np.arange(13)
    x = (500 + 25 * k - 637.5) / (25 * 11)  # neck: the shoulders' (5, 6) midpoint
    y = (200 + 37.5 * k - 406.25) / (37.5 * 11)
    expected = np.where((k != 12)[:, None], np.stack([x, y], 1), 0.0)
    np.testing.assert_allclose(out["train"]["x2d"][0], expected, atol=1e-6)


def test_build_real_adds_up_recordings_splits_and_activities(tmp_path):
    # vp1 (two runs) is in no split; vp2 trains: run1 has 2 kept frames and one of each
    # rejection, run2 nothing kept (the detector missed both frames); vp3 validates with runs
    # of 1 and 2 kept frames. Activity chunks [0, 5) and [5, 10) of vp2/run1 label its
    # frames 0 and 5.
    def full(n):
        return np.ones((n, 13), bool)

    _recording(tmp_path, "vp1/run1.ids_1", full(3), np.ones(3, bool), _pixels(3))
    _recording(tmp_path, "vp1/run2.ids_1", full(2), np.ones(2, bool), _pixels(2))
    valid = full(6)
    valid[2, L_SHOULDER] = False  # no neck
    valid[3, 6:] = False  # joints 0-5 only: no right shoulder, no neck
    valid[4] = False
    valid[4, [0, L_SHOULDER, R_SHOULDER]] = True  # 3 joints < 5
    xy = _pixels(6)
    xy[5] = 640.0  # no 2D extent
    _recording(tmp_path, "vp2/run1.ids_1", valid, np.ones(6, bool), xy)
    _recording(tmp_path, "vp2/run2.ids_1", full(2), np.zeros(2, bool), _pixels(2))
    _recording(tmp_path, "vp3/run1.ids_1", full(1), np.ones(1, bool), _pixels(1))
    _recording(tmp_path, "vp3/run2.ids_1", full(2), np.ones(2, bool), _pixels(2))
    acts = tmp_path / "drive_and_act/activities_3s/inner_mirror/midlevel.chunks_90.csv"
    write_activities(acts, [(2, "vp2/run1.ids_1", 1, 0, 5, "sitting_still", 0),
                            (2, "vp2/run1.ids_1", 1, 5, 10, "eating", 1)])
    out, counts = build_real(_params(tmp_path, train=(2,), val=(3,)), tmp_path / "keypoints2d")
    assert {k: counts[k] for k in ("sampled", "unused_subject", "no_detection", "no_neck",
                                   "few_valid_joints", "degenerate_2d")} == {
        "sampled": 3 + 2 + 6 + 2 + 1 + 2, "unused_subject": 5, "no_detection": 2,
        "no_neck": 2, "few_valid_joints": 1, "degenerate_2d": 1}
    assert counts["kept"] == {"train": 2, "val": 3, "test": 0}
    assert counts["activities_file"] == str(acts)
    assert out["train"]["activity"].tolist() == ["sitting_still", "eating"]
    assert out["val"]["activity"].tolist() == ["", "", ""]  # no chunk of those runs
    assert out["val"]["file_id"].tolist() == ["vp3/run1.ids_1"] + ["vp3/run2.ids_1"] * 2
    assert out["val"]["frame_id"].tolist() == [0, 0, 5]
    # every kept frame has all 13 joints
    assert set(counts["joint_valid_rate"].values()) == {1.0}


def test_build_real_of_a_single_kept_frame(tmp_path):
    _recording(tmp_path, "vp1/run1.ids_1", np.ones((1, 13), bool), np.ones(1, bool), _pixels(1))
    out, counts = build_real(_params(tmp_path), tmp_path / "keypoints2d")
    assert counts["kept"]["train"] == 1 and len(out["train"]["x2d"]) == 1
    assert set(counts["joint_valid_rate"].values()) == {1.0}


def test_build_real_joint_valid_rate_is_rounded_to_four_places(tmp_path):
    # three kept frames, the nose annotated in one: 1/3 -> 0.3333
    valid = np.ones((3, 13), bool)
    valid[1:, 0] = False
    _recording(tmp_path, "vp1/run1.ids_1", valid, np.ones(3, bool), _pixels(3))
    _, counts = build_real(_params(tmp_path), tmp_path / "keypoints2d")
    assert counts["kept"]["train"] == 3
    assert counts["joint_valid_rate"]["nose"] == 0.3333
    assert counts["joint_valid_rate"]["l_eye"] == 1.0


def test_build_real_refuses_keypoints_of_frames_the_3d_file_lacks(tmp_path):
    # 2D of frames 0, 5 and 99 against 3D of frames 0, 5, 10
    _recording(tmp_path, "vp1/run1.ids_1", np.ones((3, 13), bool), np.ones(3, bool),
               _pixels(3), frame_id=np.array([0, 5, 99]))
    with pytest.raises(CabinliftError, match=r"vp1/run1\.ids_1\.keypoints2d\.csv: frame ids not "
                                             r"present in .*run1\.ids_1\.openpose\.3d\.csv"):
        build_real(_params(tmp_path), tmp_path / "keypoints2d")


# -- the synthetic side and the whole stage ---------------------------------------------------

#: A pixel pose in COCO order: joint k at (100 + 10 k, 200 + 20 k), shoulders at (150, 300) and
#: (160, 320): neck (155, 310); extents over the 13 joints 120 (x) and 240 (y) pixels.
_SYN_2D = np.stack([100.0 + 10 * np.arange(17), 200.0 + 20 * np.arange(17)], 1)
_SYN_3D = np.stack([0.01 * np.arange(17), -0.02 * np.arange(17), 1.0 + 0.01 * np.arange(17)], 1)


def _annotation(root, img: str, human: str, view: str, xy: np.ndarray = _SYN_2D) -> None:
    """One SyntheticCabin ``gt_jsons`` file with one human, the COCO-ordered ``xy`` and
    ``_SYN_3D`` stored in SyntheticCabin's own keypoint order (face joints rotated)."""
    order = [COCO17.index(name) for name in SYNTHETIC_CABIN17]
    write_annotation(root / "gt_jsons" / f"{img}.json", f"{img}.png", {"name": view}, [
        SyntheticHuman(name=human, keypoints2d=xy[order], visibility=np.full(17, 2),
                       keypoints3d=_SYN_3D[order], bbox=(90.0, 190.0, 180.0, 360.0))])


def _synthetic(tmp_path) -> dict:
    """Seven annotations under ``tmp_path/synthetic_cabin``; returns the params' synthetic part
    as dotted keys."""
    root = tmp_path / "synthetic_cabin"
    _annotation(root, "a", "human_01", "Front")
    _annotation(root, "b", "human_01", "OMS_01")
    _annotation(root, "c", "human_02", "Front")
    _annotation(root, "d", "human_03", "Front")
    _annotation(root, "e", "human_04", "Front")  # in no split
    _annotation(root, "f", "human_01", "Dashboard")  # a view not used
    _annotation(root, "g", "human_02", "OMS_01", np.full((17, 2), 300.0))  # no 2D extent
    return {"data.synthetic.root": str(root), "data.synthetic.views": ["Front", "OMS_01"],
            "data.synthetic.workers": 1, "data.synthetic.cache_dir": None}


def _synthetic_splits(train=("human_01",), val=("human_02",), test=("human_03",)) -> dict:
    return {"normalize.synthetic_splits.train": list(train),
            "normalize.synthetic_splits.val": list(val),
            "normalize.synthetic_splits.test": list(test)}


def test_build_synthetic_normalises_like_the_real_data_and_splits_by_human(tmp_path):
    params = _params(tmp_path, **_synthetic(tmp_path), **_synthetic_splits())
    out, counts = build_synthetic(params)
    assert counts == {"images": 6, "views": ["Front", "OMS_01"], "degenerate_2d": 1,
                      "unused_human": 1, "kept": {"train": 2, "val": 1, "test": 1}}
    train = out["train"]
    assert train["file_id"].tolist() == ["a.png", "b.png"]
    assert train["subject"].tolist() == [0, 0]  # human_01: first of the sorted humans
    assert out["val"]["subject"].tolist() == [1] and out["test"]["subject"].tolist() == [2]
    assert train["frame_id"].tolist() == [0, 1] and train["mask"].all()
    assert train["activity"].tolist() == ["", ""]
    k = np.arange(13)
    np.testing.assert_allclose(train["x2d"][0, :, 0], (100 + 10 * k - 155) / 120, atol=1e-6)
    np.testing.assert_allclose(train["x2d"][0, :, 1], (200 + 20 * k - 310) / 240, atol=1e-6)
    # 3D: neck (0.055, -0.11, 1.055) m; joint k - neck in mm
    np.testing.assert_allclose(train["y3d"][1, :, 0], 10.0 * k - 55.0, atol=1e-3)
    np.testing.assert_allclose(train["y3d"][1, :, 2], 10.0 * k - 55.0, atol=1e-3)
    np.testing.assert_allclose(train["y3d"][1, :, 1], -20.0 * k + 110.0, atol=1e-3)
    assert train["x2d"].dtype == np.float32 and train["y3d"].dtype == np.float32


def test_pretrain_data_changes_only_the_synthetic_training_split_and_is_reported(tmp_path):
    """Every ``pretrain.data`` knob off: no report block (the report as before the knobs). Half
    the humans with one mirrored copy of each pose: one of the two training humans, its poses
    then their mirror images; validation and test as they were."""
    data = {**_synthetic(tmp_path), **_synthetic_splits(train=("human_01", "human_04"))}
    plain, counts = build_synthetic(_params(tmp_path, **data))
    assert "pretrain_data" not in counts and counts["kept"]["train"] == 3
    out, counts = build_synthetic(_params(tmp_path, **data, **{
        "pretrain.data.humans": 0.5, "pretrain.data.augment.copies": 1,
        "pretrain.data.augment.flip": 1.0}))
    train = out["train"]
    k = len(train["file_id"]) // 2
    assert counts["pretrain_data"] == {
        "humans": {"kept": 1, "of": 2}, "poses": {"kept": k, "of": 3}, "input_2d": "ground_truth",
        "copies": k, "copies_behind_camera": 0, "degenerate_2d": 0}
    assert counts["kept"]["train"] == 2 * k and k in (1, 2)  # human_04 has one pose, human_01 two
    assert train["file_id"][k:].tolist() == train["file_id"][:k].tolist()
    assert len(set(train["subject"].tolist())) == 1 and train["frame_id"].tolist() == [*range(2 * k)]
    swap = [COCO17.index(n.replace("l_", "x_").replace("r_", "l_").replace("x_", "r_"))
            for n in COCO17[:13]]
    np.testing.assert_allclose(train["y3d"][k:], train["y3d"][:k][:, swap] * [-1, 1, 1], atol=1e-3)
    for split in ("val", "test"):
        for key in plain[split]:
            np.testing.assert_array_equal(out[split][key], plain[split][key])


def test_run_normalize_writes_every_split_of_both_sources(tmp_path):
    for subject in (1, 2, 3):
        _recording(tmp_path, f"vp{subject}/run1.ids_1", np.ones((2, 13), bool),
                   np.ones(2, bool), _pixels(2))
    params = _params(tmp_path, train=(1,), val=(2,), test=(3,), **_synthetic(tmp_path),
                     **_synthetic_splits())
    out = tmp_path / "processed"
    counts = run_normalize(params, tmp_path / "keypoints2d", out)
    assert counts["real"]["kept"] == {"train": 2, "val": 2, "test": 2}
    assert counts["synthetic"]["kept"] == {"train": 2, "val": 1, "test": 1}
    for source, n in (("real", (2, 2, 2)), ("synthetic", (2, 1, 1))):
        for split, rows in zip(("train", "val", "test"), n, strict=True):
            arrays = load_arrays(out / f"{source}_{split}.npz")
            assert len(arrays["x2d"]) == rows and set(arrays) >= {"x2d", "y3d", "mask"}


def test_run_normalize_refuses_an_empty_split_before_writing(tmp_path):
    for subject in (1, 2):
        _recording(tmp_path, f"vp{subject}/run1.ids_1", np.ones((2, 13), bool),
                   np.ones(2, bool), _pixels(2))
    _recording(tmp_path, "vp3/run1.ids_1", np.ones((2, 13), bool), np.zeros(2, bool), _pixels(2))
    params = _params(tmp_path, train=(1,), val=(2,), test=(3,),  # subject 3: nothing detected
                     **_synthetic(tmp_path), **_synthetic_splits())
    out = tmp_path / "processed"
    with pytest.raises(CabinliftError, match=r"^no real frames left in split 'test': check "
                                             r"'normalize\.real_splits\.test' against the "
                                             r"subjects under .*drive_and_act$"):
        run_normalize(params, tmp_path / "keypoints2d", out)
    assert not out.exists()


def test_a_split_member_the_data_lacks_is_named_with_the_closest_one(tmp_path):
    """A typo'd subject or virtual human stops the stage before it writes anything, instead of
    making the split smaller than params.yaml says."""
    for subject in (1, 2, 3, 10):
        _recording(tmp_path, f"vp{subject}/run1.ids_1", np.ones((2, 13), bool),
                   np.ones(2, bool), _pixels(2))
    syn = _synthetic(tmp_path)
    params = _params(tmp_path, train=(1, 2), val=(3,), test=(10, 99), **syn, **_synthetic_splits())
    out = tmp_path / "processed"
    with pytest.raises(CabinliftError) as exc:
        run_normalize(params, tmp_path / "keypoints2d", out)
    assert str(exc.value) == (
        f"params.yaml: 1 problem: key 'normalize.real_splits.test' names subject 99, which is not "
        f"in the data (closest: 10; {tmp_path / 'drive_and_act'} has 4 subjects: 1-3, 10)")
    params = replaced(params, **{"normalize.real_splits.test": [10]},
                      **_synthetic_splits(val=("human_2", "human_09")))
    with pytest.raises(CabinliftError) as exc:
        run_normalize(params, tmp_path / "keypoints2d", out)
    where = (f"{syn['data.synthetic.root']} (views Front, OMS_01) has 4 humans: human_01, "
             "human_02, human_03, human_04")
    assert str(exc.value) == (
        "params.yaml: 2 problems:\n"
        f"  - key 'normalize.synthetic_splits.val' names human 'human_2', which is not in the data "
        f"(closest: 'human_02'; {where})\n"
        f"  - key 'normalize.synthetic_splits.val' names human 'human_09', which is not in the "
        f"data (closest: 'human_04'; {where})")
    assert not out.exists()


def test_a_split_without_frames_has_the_arrays_of_a_filled_one(tmp_path):
    """build_real / build_synthetic return every split, also one left without frames (which
    run_normalize then refuses by name): the same keys, dtypes and per-frame shapes as a split
    with frames, so a caller can count, concatenate or save it like any other."""
    from cabinlift.arrays import check_arrays
    from cabinlift.normalize import _empty, _finish

    filled = _empty()
    for key, value in {"x2d": np.zeros((2, 13, 2)), "y3d": np.zeros((2, 13, 3)),
                       "mask": np.ones((2, 13), bool), "subject": np.array([1, 1]),
                       "frame_id": np.array([0, 6]), "file_id": np.array(["a", "a"]),
                       "activity": np.array(["", "drink"])}.items():
        filled[key].append(value)
    full, empty = _finish(filled), _finish(_empty())
    assert set(empty) == set(full)
    for key in full:
        assert (len(empty[key]), empty[key].shape[1:], empty[key].dtype.kind) == (
            0, full[key].shape[1:], full[key].dtype.kind), key
        assert empty[key].dtype == full[key].dtype or key in ("file_id", "activity"), key
    check_arrays(tmp_path / "empty.npz", empty)
