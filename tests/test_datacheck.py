"""``cabinlift data check``: what a Drive&Act and a SyntheticCabin root hold, and every kind of
broken root as one line naming the file (the roots: tests/realformat.py, the real layouts)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cliutil import with_changes
from realformat import build

from cabinlift import cli, config
from cabinlift.datacheck import check_data
from cabinlift.formats.drive_act import discover_recordings

ROOT = Path(__file__).resolve().parents[1]
PARAMS = config.read_yaml(ROOT / "params.yaml")
# the fixture's subjects 1-4 (vp3 has one run) and humans human_01..human_04
SPLITS = {"normalize.real_splits": {"train": [1, 2], "val": [3], "test": [4]},
          "normalize.synthetic_splits": {"train": ["human_01", "human_02"], "val": ["human_03"],
                                         "test": ["human_04"]},
          "data.real.frame_stride": 5, "settings": ["pct50"],
          "subsets.settings": {"pct50": {"subjects": 1, "fraction": 0.5, "repetitions": 2,
                                         "seeds": 1}}}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, Path]:
    return build(tmp_path_factory.mktemp("pristine"), videos=False)


@pytest.fixture
def roots(pristine, tmp_path) -> tuple[Path, Path]:
    """A fresh copy of both roots, to break."""
    real, syn = (Path(shutil.copytree(p, tmp_path / p.name)) for p in pristine)
    return real, syn


def _check(tmp_path: Path, real: Path, syn: Path, capsys, **changes) -> tuple[int, list[str]]:
    """Run ``cabinlift data check`` on the roots; its exit status and printed problem lines."""
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps(with_changes(PARAMS, **{**SPLITS, **changes})))
    status = cli.main(["data", "check", "--drive-act", str(real), "--synthetic", str(syn),
                       "--no-timing", "--params", str(params)])
    out = capsys.readouterr().out.splitlines()
    return status, [line[4:] for line in out if line.startswith("  - ")]


def test_a_sound_pair_of_roots_is_counted_as_the_pipeline_samples_it(roots, tmp_path, capsys):
    real, syn = roots
    params = config.build(with_changes(PARAMS, **SPLITS))
    found = check_data(params, real, syn, progress=False)
    assert found.problems == []
    # 7 runs of 12 frames; at stride 5 frames 0, 5, 10 are sampled: 21, less frame 5 of the
    # first run (all joints zero: no person) and of the second (missing from its CSV), frame 0
    # of the third (zero) and frame 10 of vp4's first run (an empty frame of the demo's)
    assert found.real.recordings == 7
    assert found.real.sampled() == 17
    assert sorted(found.real.subjects) == [1, 2, 3, 4]
    assert found.real.subjects[3].recordings == 1
    assert found.synthetic.files == 4 * 6 * 10  # humans x poses x views
    assert found.synthetic.humans == ["human_01", "human_02", "human_03", "human_04"]
    assert found.synthetic.poses[("human_02", "Front")] == 6
    status, problems = _check(tmp_path, real, syn, capsys)
    assert (status, problems) == (0, [])


def test_a_missing_folder(roots, tmp_path, capsys):
    _, syn = roots
    status, problems = _check(tmp_path, tmp_path / "nowhere", syn, capsys)
    assert status == 1
    assert problems == [f"{tmp_path / 'nowhere'}: not a folder (expected a Drive&Act root holding "
                        "openpose_3d/, inner_mirror/, activities_3s/)"]


def test_an_empty_folder(roots, tmp_path, capsys):
    _, syn = roots
    (tmp_path / "empty").mkdir()
    _, problems = _check(tmp_path, tmp_path / "empty", syn, capsys)
    assert problems == [f"{tmp_path / 'empty'}: empty folder (expected a Drive&Act root holding "
                        "openpose_3d/, inner_mirror/, activities_3s/)"]


def test_a_subject_without_annotations(roots, tmp_path, capsys):
    real, syn = roots
    shutil.rmtree(real / "openpose_3d" / "vp2")
    _, problems = _check(tmp_path, real, syn, capsys)
    assert problems == [
        f"{real / 'openpose_3d' / 'vp2'}: no <run>.ids_1.openpose.3d.csv, so subject 2 "
        "(inner_mirror/vp2) has no 3D annotations",
        f"key 'normalize.real_splits.train' names subject 2, which is not in the data (closest: "
        f"1; {real} has 3 subjects: 1, 3-4)"]


def test_a_view_that_is_not_there(roots, tmp_path, capsys):
    """A copy without one of SyntheticCabin's views (here its Rear_Mirror renders removed)."""
    real, syn = roots
    for path in (syn / "gt_jsons").glob("*_Rear_Mirror.json"):
        path.unlink()
    _, problems = _check(tmp_path, real, syn, capsys,
                         **{"data.synthetic.views": ["OMS_01", "Rear_Mirror"]})
    assert problems == [
        f"{syn / 'gt_jsons'}: view 'Rear_Mirror' (key 'data.synthetic.views') is not in the "
        "data; its views: A_Pillar_Codriver, A_Pillar_Driver, Dashboard, Front, Front_Left, "
        "Front_Right, Front_TopLeft, Front_TopRight, OMS_01"]


def test_a_synthetic_root_without_annotation_files(roots, tmp_path, capsys):
    real, syn = roots
    shutil.rmtree(syn / "gt_jsons")
    (syn / "gt_jsons").mkdir()
    _, problems = _check(tmp_path, real, syn, capsys)
    assert problems == [f"{syn / 'gt_jsons'}: no *.json annotation files found"]
    shutil.rmtree(syn / "gt_jsons")
    _, problems = _check(tmp_path, real, syn, capsys)
    assert problems == [f"{syn / 'gt_jsons'}: folder not found (expected SyntheticCabin's "
                        "gt_jsons/*.json)"]


def test_a_full_drive_and_act_copy(roots, tmp_path, capsys):
    real, syn = roots
    for camera in ("kinect_color", "a_column_driver"):
        (real / camera / "vp1").mkdir(parents=True)
        (real / camera / "vp1" / "run1.mp4").write_bytes(b"\0" * 1000)
    _, problems = _check(tmp_path, real, syn, capsys)
    assert problems == [
        f"{real}: holds 2 folders the pipeline never reads (a_column_driver/, kinect_color/; "
        f"0.0 GB), which DVC would hash as part of data.real.root: point it at a folder holding "
        f"only openpose_3d/, inner_mirror/, activities_3s/, e.g. mkdir NEW; cp -rs "
        f"{real / 'openpose_3d'} {real / 'inner_mirror'} {real / 'activities_3s'} NEW/ (links "
        f"to files: DVC reads them; a linked folder it does not)"]


def test_malformed_files_are_each_one_line_and_the_rest_still_counted(roots, tmp_path, capsys):
    real, syn = roots
    recs = discover_recordings(real)
    recs[3].pose3d_path.write_text("frame_id,timestamp\n0,0.0\n")
    recs[1].calibration_path.rename(tmp_path / "calibration.json")
    bad_json = sorted((syn / "gt_jsons").glob("*.json"))[5]
    bad_json.write_text('{"img_name": "x.png"')
    params = config.build(with_changes(PARAMS, **SPLITS))
    found = check_data(params, real, syn, progress=False)
    calib, csv, json_file = found.problems
    assert calib == (f"{recs[1].calibration_path}: calibration file not found (expected beside "
                     f"the inner_mirror video of run vp1/{recs[1].run})")
    assert csv.startswith(f"{recs[3].pose3d_path}: missing column ")
    assert json_file.startswith(f"{bad_json}: ")
    # every other file is still read
    assert found.real.recordings == 5
    assert found.synthetic.files == 240 and sum(found.synthetic.poses.values()) == 239
