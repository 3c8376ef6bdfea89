"""Drive&Act readers/writers against hand-written fixtures and malformed variants of them.

Fixture ``run1b_...openpose.3d.csv`` (real column order) holds frames 10, 11, 12; the joint at
file-column-group index j has x = 0.10 + 0.01 j, y = -0.20 + 0.01 j, z = 0.9 + 0.1 * row,
p = 0.75; ankles, feet and ``background`` are 0,0,0,0 in every row, and lEar is 0,0,0,0 in the
second row (frame 11): unannotated.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cabinlift.camera import Calibration
from cabinlift.errors import CabinliftError
from cabinlift.formats.drive_act import (
    ACTIVITY_COLUMNS,
    activity_at,
    discover_recordings,
    pose3d_columns,
    read_activities,
    read_calibration,
    read_openpose3d,
    write_activities,
    write_calibration,
    write_openpose3d,
)
from cabinlift.skeleton import DRIVE_ACT_JOINTS

FIX = Path(__file__).parent / "fixtures"
CSV = FIX / "run1b_2018-05-29-14-02-47.ids_1.openpose.3d.csv"
CALIB = FIX / "run1b_2018-05-29-14-02-47.ids_1.calibration.json"
ACTS = FIX / "midlevel.chunks_90.csv"


def _variant(tmp_path: Path, text: str, name: str = "bad.openpose.3d.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------------------ openpose_3d


def test_read_fixture_known_values() -> None:
    t = read_openpose3d(CSV)
    assert len(t) == 3
    assert t.frame_id.tolist() == [10, 11, 12] and t.frame_id.dtype == np.int64
    np.testing.assert_allclose(t.timestamp, [1527602567.333333, 1527602567.366667, 1527602567.4])
    assert t.xyz.shape == (3, 26, 3) and t.p.shape == (3, 26)
    j = DRIVE_ACT_JOINTS.index("rShoulder")  # 19th column group
    np.testing.assert_allclose(t.xyz[:, j], [[0.1 + 0.01 * j, -0.2 + 0.01 * j, z]
                                             for z in (0.9, 1.0, 1.1)])
    xyz, valid = t.joints(["nose", "lEar", "rEar", "lAnkle", "background"])
    assert valid.tolist() == [[True, True, True, False, False], [True, False, True, False, False],
                              [True, True, True, False, False]]
    np.testing.assert_allclose(xyz[0, 0], [0.10, -0.20, 0.9])
    np.testing.assert_allclose(t.p[:, 0], 0.75)


def test_columns_are_parsed_by_name_not_position(tmp_path: Path) -> None:
    df = pd.read_csv(CSV)
    cols = list(df.columns)
    shuffled = [cols[0], cols[1], *reversed(cols[2:])]
    p = tmp_path / "shuffled.csv"
    df[shuffled].to_csv(p, index=False)
    a, b = read_openpose3d(CSV), read_openpose3d(p)
    np.testing.assert_array_equal(a.xyz, b.xyz)
    np.testing.assert_array_equal(a.p, b.p)


def test_write_read_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 50
    xyz = rng.uniform(-1, 2, (n, 26, 3))
    p = rng.uniform(0.01, 1, (n, 26))
    xyz[:, DRIVE_ACT_JOINTS.index("background")] = 0
    p[:, DRIVE_ACT_JOINTS.index("background")] = 0
    xyz[5, 3] = 0
    p[5, 3] = 0
    ts = 1527602567.0 + np.arange(n) / 30
    out = tmp_path / "vp1" / "r.ids_1.openpose.3d.csv"
    write_openpose3d(out, np.arange(n) * 2, ts, xyz, p)
    assert out.read_text().splitlines()[0] == ",".join(pose3d_columns())
    t = read_openpose3d(out)
    assert t.frame_id.tolist() == (np.arange(n) * 2).tolist()
    np.testing.assert_allclose(t.timestamp, ts, atol=1e-6)
    np.testing.assert_allclose(t.xyz, xyz, atol=5e-5)
    np.testing.assert_allclose(t.p, p, atol=5e-5)
    _, valid = t.joints(DRIVE_ACT_JOINTS)
    assert not valid[5, 3] and not valid[:, DRIVE_ACT_JOINTS.index("background")].any()
    assert valid.sum() == n * 25 - 1


def test_writer_rejects_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_openpose3d(tmp_path / "x.csv", np.arange(2), np.zeros(2), np.zeros((2, 25, 3)),
                         np.zeros((2, 26)))


def _assert_error(path: Path, *fragments: str) -> None:
    with pytest.raises(CabinliftError) as exc:
        read_openpose3d(path)
    msg = str(exc.value)
    assert str(path) in msg and "\n" not in msg
    for f in fragments:
        assert f in msg, msg


def test_truncated_file(tmp_path: Path) -> None:
    text = CSV.read_text()
    p = _variant(tmp_path, text[: len(text) - 200])
    _assert_error(p, "truncated", "line 4")


def test_missing_column(tmp_path: Path) -> None:
    df = pd.read_csv(CSV).drop(columns=["rWrist_z"])
    p = tmp_path / "missing.csv"
    df.to_csv(p, index=False)
    _assert_error(p, "missing column", "rWrist_z")


def test_unknown_joint_name(tmp_path: Path) -> None:
    text = CSV.read_text().replace("lEar_x,", "leftEar_x,", 1)
    _assert_error(_variant(tmp_path, text), "unknown joint", "leftEar")


def test_duplicate_column(tmp_path: Path) -> None:
    lines = CSV.read_text().splitlines()
    lines[0] = lines[0].replace("lEar_x,", "nose_x,", 1)
    _assert_error(_variant(tmp_path, "\n".join(lines) + "\n"), "duplicate column", "nose_x")


def test_non_numeric_value(tmp_path: Path) -> None:
    lines = CSV.read_text().splitlines()
    fields = lines[2].split(",")
    col = pose3d_columns().index("rElbow_y")
    fields[col] = "abc"
    lines[2] = ",".join(fields)
    _assert_error(_variant(tmp_path, "\n".join(lines) + "\n"), "line 3", "rElbow_y", "'abc'")


def test_empty_value_in_middle_row(tmp_path: Path) -> None:
    lines = CSV.read_text().splitlines()
    fields = lines[1].split(",")
    fields[5] = ""
    lines[1] = ",".join(fields)
    _assert_error(_variant(tmp_path, "\n".join(lines) + "\n"), "line 2", pose3d_columns()[5])


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    _assert_error(_variant(tmp_path, "", "empty.csv"), "empty file")
    header = CSV.read_text().splitlines()[0]
    _assert_error(_variant(tmp_path, header + "\n", "header.csv"), "no data rows")


def test_non_increasing_frame_id(tmp_path: Path) -> None:
    text = CSV.read_text().replace("\n12,", "\n11,")
    _assert_error(_variant(tmp_path, text), "line 4", "frame_id")


def test_missing_file(tmp_path: Path) -> None:
    _assert_error(tmp_path / "nope.csv", "not found")


def test_joints_rejects_unknown_name() -> None:
    with pytest.raises(CabinliftError, match="unknown joint 'l_ear'"):
        read_openpose3d(CSV).joints(["l_ear"])


# ------------------------------------------------------------------------------ calibration


def test_read_calibration_fixture() -> None:
    c = read_calibration(CALIB)
    assert (c.fx, c.fy, c.cx, c.cy, c.width, c.height) == (567.0, 568.5, 640.0, 512.0, 1280, 1024)
    assert (c.k1, c.k2, c.k3, c.p1, c.p2) == (-0.2661, 0.0549, 0.0, 0.001, -0.002)
    assert c.rotation == (0.7071068, 0.0, 0.0, 0.7071068)
    assert c.translation == (0.1, -0.2, 0.3)
    assert isinstance(c.width, int)


def test_calibration_round_trip(tmp_path: Path) -> None:
    c = Calibration(fx=500.0, fy=501.0, cx=320.5, cy=240.25, width=640, height=480, k1=-0.1,
                    k2=0.01, k3=0.001, p1=1e-4, p2=-2e-4, rotation=(0.9, 0.1, 0.2, 0.3),
                    translation=(1.0, 2.0, 3.0))
    p = tmp_path / "c.json"
    write_calibration(p, c)
    assert read_calibration(p) == c
    doc = json.loads(p.read_text())
    assert set(doc["intrinsics"]) == {"focallength", "principal_point", "distortion", "img_size"}
    assert set(doc["extrinsics"]["rotation"]) == {"w", "x", "y", "z"}


def test_calibration_missing_key(tmp_path: Path) -> None:
    doc = json.loads(CALIB.read_text())
    del doc["intrinsics"]["distortion"]["k3"]
    p = tmp_path / "c.json"
    p.write_text(json.dumps(doc))
    expected = f"{p}: missing key 'intrinsics.distortion.k3'"
    with pytest.raises(CabinliftError, match=re.escape(expected)):
        read_calibration(p)


def test_calibration_bad_value_and_bad_json(tmp_path: Path) -> None:
    doc = json.loads(CALIB.read_text())
    doc["intrinsics"]["img_size"]["width"] = "wide"
    p = tmp_path / "c.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(CabinliftError, match=r"intrinsics\.img_size\.width.*'wide'"):
        read_calibration(p)
    bad = tmp_path / "bad.json"
    bad.write_text(CALIB.read_text().replace('"fy": 568.5', '"fy" 568.5'))
    with pytest.raises(CabinliftError, match=re.escape(f"{bad}: invalid JSON at line 3")):
        read_calibration(bad)


# ------------------------------------------------------------------------------ activities


def test_read_activities_fixture() -> None:
    df = read_activities(ACTS)
    assert list(df.columns) == list(ACTIVITY_COLUMNS)
    assert len(df) == 4
    assert df["activity"].tolist()[2] == "looking_or_moving_around (e.g. searching)"
    assert df["frame_end"].tolist() == [90, 132, 240, 120]
    assert df["participant_id"].dtype == np.int64


def test_activity_at() -> None:
    df = read_activities(ACTS)
    fid = "vp1/run1b_2018-05-29-14-02-47.ids_1"
    labels = activity_at(df, fid, np.array([0, 89, 90, 131, 132, 149, 150, 239, 240]))
    assert labels.tolist() == [
        "fastening_seat_belt", "fastening_seat_belt", "fastening_seat_belt",
        "fastening_seat_belt", "", "", "looking_or_moving_around (e.g. searching)",
        "looking_or_moving_around (e.g. searching)", "",
    ]
    assert activity_at(df, "vp9/none.ids_1", np.arange(3)).tolist() == ["", "", ""]


def test_activities_round_trip(tmp_path: Path) -> None:
    df = read_activities(ACTS)
    p = tmp_path / "a.csv"
    write_activities(p, df)
    assert p.read_text() == ACTS.read_text()
    write_activities(p, [tuple(r) for r in df.itertuples(index=False)])
    pd.testing.assert_frame_equal(read_activities(p), df)


def test_activities_wrong_header_and_bad_value(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text(ACTS.read_text().replace("chunk_id", "chunk", 1))
    with pytest.raises(CabinliftError, match="expected exactly 'participant_id,file_id,"):
        read_activities(p)
    p.write_text(ACTS.read_text().replace(",90,132,", ",90,x,", 1))
    with pytest.raises(CabinliftError, match=re.escape(f"{p}: line 3, column 'frame_end'")):
        read_activities(p)


# ------------------------------------------------------------------------------ layout


def _touch_run(root: Path, vp: str, run: str, calib: bool = True) -> None:
    (root / "openpose_3d" / vp).mkdir(parents=True, exist_ok=True)
    (root / "openpose_3d" / vp / f"{run}.ids_1.openpose.3d.csv").write_text(CSV.read_text())
    if calib:
        (root / "inner_mirror" / vp).mkdir(parents=True, exist_ok=True)
        (root / "inner_mirror" / vp / f"{run}.ids_1.calibration.json").write_text(
            CALIB.read_text())


def test_discover_recordings(tmp_path: Path) -> None:
    _touch_run(tmp_path, "vp10", "run1_2018-05-03-14-08-31")
    _touch_run(tmp_path, "vp2", "run2_2018-05-24-17-22-26")
    _touch_run(tmp_path, "vp2", "run1b_2018-05-24-16-50-00")
    recs = discover_recordings(tmp_path)
    assert [(r.subject, r.run) for r in recs] == [
        (2, "run1b_2018-05-24-16-50-00"), (2, "run2_2018-05-24-17-22-26"),
        (10, "run1_2018-05-03-14-08-31")]
    r = recs[0]
    assert r.file_id == "vp2/run1b_2018-05-24-16-50-00.ids_1"
    assert r.pose3d_path == (
        tmp_path / "openpose_3d/vp2/run1b_2018-05-24-16-50-00.ids_1.openpose.3d.csv")
    assert r.calibration_path == (
        tmp_path / "inner_mirror/vp2/run1b_2018-05-24-16-50-00.ids_1.calibration.json")
    assert r.timestamps_path.name == "run1b_2018-05-24-16-50-00.ids_1.timestamps"


def test_discover_recordings_errors(tmp_path: Path) -> None:
    with pytest.raises(CabinliftError, match="openpose_3d: folder not found"):
        discover_recordings(tmp_path)
    (tmp_path / "openpose_3d").mkdir()
    with pytest.raises(CabinliftError, match="no vpN/<run>.ids_1.openpose.3d.csv files"):
        discover_recordings(tmp_path)
    _touch_run(tmp_path, "vp1", "run1_2018-05-03-14-08-31", calib=False)
    with pytest.raises(CabinliftError, match="run1_2018-05-03-14-08-31.ids_1.calibration.json: "
                                             "calibration file not found"):
        discover_recordings(tmp_path)


def test_read_timestamps(tmp_path: Path) -> None:
    from cabinlift.formats.drive_act import read_timestamps

    p = tmp_path / "run1.ids_1.timestamps"
    p.write_text("1525256237.000000\n1525256237.033333\n\n1525256237.066667\n")
    np.testing.assert_allclose(read_timestamps(p), [1525256237.0, 1525256237.033333,
                                                    1525256237.066667])
    p.write_text("1.0\nabc\n")
    with pytest.raises(CabinliftError, match=r"timestamps: line 2: expected a number"):
        read_timestamps(p)
    p.write_text("1.0\n2.0\n2.0\n")
    with pytest.raises(CabinliftError, match=r"timestamps: line 3: timestamps must increase"):
        read_timestamps(p)
    with pytest.raises(CabinliftError, match="file not found"):
        read_timestamps(tmp_path / "none.timestamps")


# ------------------------------------------------------------------------------ not UTF-8

NOT_UTF8 = "not UTF-8 text (byte 0xff at column 3)"


def test_bytes_that_are_not_utf8_name_the_line(tmp_path: Path) -> None:
    """What ``printf '\\x00\\x00\\xff\\xfe' >> file.csv`` leaves: a fifth line of garbage."""
    p = tmp_path / "bytes.openpose.3d.csv"
    p.write_bytes(CSV.read_bytes() + b"\x00\x00\xff\xfe")
    with pytest.raises(CabinliftError) as exc:
        read_openpose3d(p)
    assert str(exc.value) == (f"{p}: line 5: {NOT_UTF8}; expected comma-separated numbers of "
                              "a Drive&Act openpose_3d CSV")
    lines = CSV.read_bytes().split(b"\n")
    p.write_bytes(b"\n".join([lines[0][:2] + b"\xff" + lines[0][2:], *lines[1:]]))
    with pytest.raises(CabinliftError, match=re.escape(f"{p}: line 1: {NOT_UTF8}; expected the "
                                                       "header 'frame_id,timestamp,...'")):
        read_openpose3d(p)


def test_activities_and_timestamps_that_are_not_utf8(tmp_path: Path) -> None:
    from cabinlift.formats.drive_act import read_timestamps

    acts = tmp_path / "a.csv"
    acts.write_bytes(ACTS.read_bytes() + b"1,\xff\xfe\n")
    n = len(ACTS.read_text().splitlines()) + 1
    with pytest.raises(CabinliftError, match=re.escape(
            f"{acts}: line {n}: not UTF-8 text (byte 0xff at column 3); expected the rows of a "
            "Drive&Act activities CSV")):
        read_activities(acts)
    stamps = tmp_path / "run1.ids_1.timestamps"
    stamps.write_bytes(b"1.0\n\xfe\n")
    with pytest.raises(CabinliftError, match=re.escape(
            f"{stamps}: line 2: not UTF-8 text (byte 0xfe at column 1); expected one number "
            "(seconds) per line")):
        read_timestamps(stamps)
