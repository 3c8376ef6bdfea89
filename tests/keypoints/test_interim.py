import numpy as np
import pytest

from cabinlift.errors import CabinliftError
from cabinlift.keypoints.interim import (
    Detections,
    Keypoints2D,
    empty_detections,
    interim_path,
    placed,
    read_detections,
    read_keypoints,
    write_detections,
    write_keypoints,
)


def test_paths_follow_the_recording_layout(tmp_path):
    p = interim_path(tmp_path, "vp3/run1_2018-05-29-14-02-47.ids_1", "keypoints2d")
    assert p == tmp_path / "vp3" / "run1_2018-05-29-14-02-47.ids_1.keypoints2d.csv"


def test_round_trip_keeps_missed_frames(tmp_path):
    det = Detections(
        frame_id=np.array([0, 30, 60]), detected=np.array([True, False, True]),
        boxes=np.array([[1, 2, 300, 400], [np.nan] * 4, [5, 6, 310, 420]], float),
        scores=np.array([0.9, 0.0, 0.95]),
        rejected=np.array(["", "outside_driver_region", ""], dtype=object),
    )
    write_detections(tmp_path / "d.csv", det)
    back = read_detections(tmp_path / "d.csv")
    assert back.detected.tolist() == [True, False, True]
    assert back.rejected.tolist() == ["", "outside_driver_region", ""]
    assert back.rejected_counts() == {"no_person_box": 0, "below_min_score": 0,
                                      "outside_driver_region": 1}
    assert np.isnan(back.boxes[1]).all()
    np.testing.assert_allclose(back.boxes[[0, 2]], det.boxes[[0, 2]])

    xy = np.random.default_rng(0).uniform(0, 1000, size=(3, 17, 2))
    xy[1] = np.nan
    kp = Keypoints2D(frame_id=det.frame_id, detected=det.detected, xy=xy,
                     scores=np.full((3, 17), 0.5))
    write_keypoints(tmp_path / "k.csv", kp)
    back = read_keypoints(tmp_path / "k.csv")
    np.testing.assert_allclose(back.xy[[0, 2]], xy[[0, 2]], atol=5e-4)
    header = (tmp_path / "k.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["frame_id", "detected", "nose_x", "nose_y", "nose_score"]


def test_a_keypoint_not_found_has_no_coordinates_and_nothing_else_may_be_empty(tmp_path):
    """x and y both empty is a keypoint not found (what ``placed`` says); one of them, or a
    score, empty in a detected frame is a damaged file, named by row and keypoint."""
    xy = np.full((1, 17, 2), 100.0)
    xy[0, 9] = np.nan  # l_wrist not found
    kp = Keypoints2D(frame_id=np.array([0]), detected=np.array([True]), xy=xy,
                     scores=np.zeros((1, 17)))
    write_keypoints(tmp_path / "k.csv", kp)
    back = read_keypoints(tmp_path / "k.csv")
    assert placed(back.xy).tolist() == [[j != 9 for j in range(17)]]
    lines = (tmp_path / "k.csv").read_text().splitlines()
    values = lines[1].split(",")
    for column, name in ((2 + 3 * 10, "r_wrist_x"), (4 + 3 * 5, "l_shoulder_score")):
        broken = values.copy()
        broken[column] = ""
        (tmp_path / "bad.csv").write_text("\n".join([lines[0], ",".join(broken)]) + "\n")
        assert lines[0].split(",")[column] == name
        with pytest.raises(CabinliftError) as exc:
            read_keypoints(tmp_path / "bad.csv")
        assert str(exc.value) == (
            f"{tmp_path / 'bad.csv'}: row 2: keypoint {name.rsplit('_', 1)[0]!r} of a detected "
            "frame has an empty value; expected a score, and x and y both (a keypoint found) or "
            "neither (not found)")


def test_malformed_interim_files_are_named(tmp_path):
    bad = tmp_path / "k.csv"
    bad.write_text("frame_id,detected\n0,1\n")
    with pytest.raises(CabinliftError, match=r"k\.csv.*missing column 'nose_x'"):
        read_keypoints(bad)
    det = tmp_path / "d.csv"
    header = "frame_id,detected,x1,y1,x2,y2,score,rejected\n"
    det.write_text(header + "0,1,1,2,3,4,0.9,\n30,1,abc,2,3,4,0.9,\n")
    with pytest.raises(CabinliftError, match=r"d\.csv: row 3, column 'x1'"):
        read_detections(det)
    det.write_text(header + "0,1,1,2,3,4,0.9,\n30,0,,,,,,too_dark\n")
    with pytest.raises(CabinliftError, match=r"d\.csv: row 3, column 'rejected': expected one "
                                             r"of no_person_box, below_min_score, "
                                             r"outside_driver_region, got 'too_dark'"):
        read_detections(det)
    det.write_text(header + "0,1,1,2,3,4,0.9,no_person_box\n")
    with pytest.raises(CabinliftError, match=r"row 2, column 'rejected': expected empty"):
        read_detections(det)
    with pytest.raises(CabinliftError, match="not found"):
        read_detections(tmp_path / "none.csv")


def test_a_recording_with_no_sampled_frame_round_trips(tmp_path):
    """A recording none of whose frames is sampled (fewer frames than the stride, none at a
    multiple of it) is written as a header and no row; reading it back (the next stage, or a
    resumed one) gives no frame, not an IndexError."""
    none = np.zeros(0, np.int64)
    write_detections(tmp_path / "d.csv", empty_detections(none))
    write_keypoints(tmp_path / "k.csv", Keypoints2D(frame_id=none, detected=np.zeros(0, bool),
                                                    xy=np.zeros((0, 17, 2)),
                                                    scores=np.zeros((0, 17))))
    assert (tmp_path / "k.csv").read_text().count("\n") == 1
    det = read_detections(tmp_path / "d.csv")
    assert (det.frame_id.dtype, det.boxes.shape, det.rejected.shape) == (np.int64, (0, 4), (0,))
    kp = read_keypoints(tmp_path / "k.csv")
    assert (kp.frame_id.dtype, kp.detected.shape, kp.xy.shape, kp.scores.shape) == (
        np.int64, (0,), (0, 17, 2), (0, 17))


@pytest.mark.parametrize(("line", "expected"), [
    (1, "the header 'frame_id,detected,x1,...'"),
    (3, "comma-separated values of an interim detections CSV (frame_id,detected,x1,...)"),
])
def test_bytes_that_are_not_utf8_are_named_by_line(tmp_path, line, expected):
    rows = [b"frame_id,detected,x1,y1,x2,y2,score,rejected", b"0,1,1,2,3,4,0.9,",
            b"30,0,,,,,,no_person_box", b""]
    rows[line - 1] = rows[line - 1][:4] + b"\xe9" + rows[line - 1][4:]
    (tmp_path / "d.csv").write_bytes(b"\n".join(rows))
    with pytest.raises(CabinliftError) as info:
        read_detections(tmp_path / "d.csv")
    assert str(info.value) == (f"{tmp_path / 'd.csv'}: line {line}: not UTF-8 text (byte 0xe9 "
                               f"at column 5); expected {expected}")
