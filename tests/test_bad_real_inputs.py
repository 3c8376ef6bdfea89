"""Bad real-data input stops a stage with one line naming the file and what was expected
(exit status 1), and already cached work survives: the Drive&Act and SyntheticCabin cases,
(bad videos and checkpoints: tests/keypoints/test_mmlab.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cliutil import one_line_error, write_params
from dvcrepo import base_params
from realformat import build

from cabinlift import cli
from cabinlift.formats import synthetic_cabin as sc
from cabinlift.formats.drive_act import discover_recordings


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    build(root, videos=False)
    return root


@pytest.fixture
def data(tmp_path, pristine) -> tuple[Path, Path]:
    shutil.copytree(pristine, tmp_path / "data")
    return tmp_path / "data" / "drive_and_act", tmp_path / "data" / "synthetic_cabin"


def _params(tmp_path: Path, real: Path, synthetic: Path, **changes) -> Path:
    p = base_params()
    p["data"]["real"].update(root=str(real), frame_stride=5)
    p["data"]["synthetic"].update(root=str(synthetic), workers=1,
                                  cache_dir=str(tmp_path / "cache"))
    p["normalize"]["real_splits"] = {"train": [1, 2], "val": [3], "test": [4]}
    p["settings"] = ["pct5", "pct10", "pct25", "pct50", "subj1"]  # two training subjects
    for name in p["settings"]:
        p["subsets"]["settings"][name]["repetitions"] = 2  # one per training subject
    p["normalize"]["synthetic_splits"] = {
        "train": ["human_01", "human_02"], "val": ["human_03"], "test": ["human_04"]}
    return write_params(tmp_path / "params.yaml", p, **changes)


_error = one_line_error


def test_missing_openpose_3d_folder(tmp_path, capsys, data):
    real, synthetic = data
    shutil.rmtree(real / "openpose_3d")
    err = _error(capsys, ["--params", str(_params(tmp_path, real, synthetic)), "detect",
                          "--out", str(tmp_path / "det")])
    assert f"{real / 'openpose_3d'}: folder not found; expected a Drive&Act root containing " \
           "openpose_3d/vpN/<run>.ids_1.openpose.3d.csv" in err


def test_csv_without_a_joint_column(tmp_path, capsys, data):
    real, synthetic = data
    csv = discover_recordings(real)[2].pose3d_path
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("lWrist_x")
    csv.write_text("\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != drop)
                             for line in lines) + "\n")
    err = _error(capsys, ["--params", str(_params(tmp_path, real, synthetic)), "detect",
                          "--out", str(tmp_path / "det")])
    assert f"{csv}: missing column 'lWrist_x' in the header" in err


def test_pose_csv_with_bytes_that_are_not_utf8(tmp_path, capsys, data):
    """``printf '\\x00\\x00\\xff\\xfe' >> <csv>``, then the detect stage."""
    real, synthetic = data
    csv = discover_recordings(real)[1].pose3d_path
    lines = len(csv.read_text().splitlines())
    with open(csv, "ab") as f:
        f.write(b"\x00\x00\xff\xfe")
    err = _error(capsys, ["--params", str(_params(tmp_path, real, synthetic)), "detect",
                          "--out", str(tmp_path / "det")])
    assert err == (f"cabinlift detect: error: {csv}: line {lines + 1}: not UTF-8 text (byte 0xff "
                   "at column 3); expected comma-separated numbers of a Drive&Act openpose_3d CSV")


def test_calibration_without_focallength(tmp_path, capsys, data):
    real, synthetic = data
    calib = discover_recordings(real)[1].calibration_path
    doc = json.loads(calib.read_text())
    del doc["intrinsics"]["focallength"]
    calib.write_text(json.dumps(doc))
    err = _error(capsys, ["--params", str(_params(tmp_path, real, synthetic)), "detect",
                          "--out", str(tmp_path / "det")])
    assert f"{calib}: missing key 'intrinsics.focallength.fx' (expected a number)" in err


def test_synthetic_json_with_16_keypoints_keeps_the_parse_cache(tmp_path, capsys, data,
                                                                  monkeypatch):
    real, synthetic = data
    params = _params(tmp_path, real, synthetic)
    argv = ["--params", str(params)]
    assert cli.main(argv + ["detect", "--out", str(tmp_path / "det")]) == 0
    assert cli.main(argv + ["keypoints2d", "--detections", str(tmp_path / "det"),
                            "--out", str(tmp_path / "kp")]) == 0
    monkeypatch.setattr(sc, "_CHUNK", 10)  # several cache chunks
    normalize = argv + ["normalize", "--keypoints", str(tmp_path / "kp"),
                        "--out", str(tmp_path / "processed"), "--report", str(tmp_path / "r.json")]
    assert cli.main(normalize) == 0
    cached = sorted((tmp_path / "cache").glob("*.npz"))
    assert len(cached) >= 3
    victim = sorted((synthetic / "gt_jsons").rglob("*Front*.json"))[-1]
    doc = json.loads(victim.read_text())
    for key in ("keypoints2D", "keypoints3D"):
        doc["humans"][0][key] = doc["humans"][0][key][:16]
    victim.write_text(json.dumps(doc))
    capsys.readouterr()
    err = _error(capsys, normalize)
    assert f"{victim}: key 'humans[0].keypoints2D': expected at least 17 keypoints, got 16" in err
    # the chunks parsed before are all still there (the damaged file's chunk is re-parsed)
    assert set(cached) <= set((tmp_path / "cache").glob("*.npz"))
