"""``cabinlift data init``: params.yaml for the real data sets, with DVC's writer; and the demo
stage, which then writes only a note (the whole path under `dvc repro`:
tests/test_pipeline_realdata_e2e.py)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import yaml
from cliutil import typed
from realformat import build

from cabinlift import cli, config
from cabinlift.datainit import synthetic_splits
from cabinlift.demo.generate import UNUSED, generate, run_demo
from cabinlift.errors import CabinliftError

ROOT = Path(__file__).resolve().parents[1]
PARAMS = config.read_yaml(ROOT / "params.yaml")
NAMES = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay"]


def test_sixteen_humans_split_eight_four_four_in_numeric_name_order():
    names = [f"driver{i}" for i in range(1, 17)]
    random.Random(0).shuffle(names)
    assert synthetic_splits(names) == {
        "train": [f"driver{i}" for i in range(1, 9)],
        "val": ["driver9", "driver10", "driver11", "driver12"],
        "test": ["driver13", "driver14", "driver15", "driver16"],
    }


def test_other_counts_keep_the_shares_and_a_member_in_every_split():
    assert synthetic_splits(NAMES) == {"train": ["Ada", "Ben", "Cleo"], "val": ["Dev", "Eli"],
                                       "test": ["Fay"]}
    assert synthetic_splits(["c", "a", "b"]) == {"train": ["a"], "val": ["b"], "test": ["c"]}
    with pytest.raises(CabinliftError, match="2 virtual humans found; the train, val and test "
                                             "splits need at least 3"):
        synthetic_splits(["a", "b"])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    return build(tmp_path_factory.mktemp("data"), videos=False, humans=6, poses_per_human=1,
                 human_names=NAMES)


def _init(tmp_path: Path, *args: str) -> Path:
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    assert cli.main(["data", "init", *args, "--params", str(params)]) == 0
    return params


def test_init_writes_the_roots_the_splits_found_and_the_backends(data, tmp_path, monkeypatch):
    real, syn = data
    monkeypatch.chdir(tmp_path)  # relative roots are written absolute
    rel_real = Path("r")
    rel_real.symlink_to(real)
    params = _init(tmp_path, "--drive-act", "r", "--synthetic", str(syn))
    written = yaml.safe_load(params.read_text())
    assert written["data"]["real"]["root"] == str(real.resolve())
    assert written["data"]["synthetic"]["root"] == str(syn)
    assert written["normalize"]["synthetic_splits"] == {
        "train": ["Ada", "Ben", "Cleo"], "val": ["Dev", "Eli"], "test": ["Fay"]}
    assert written["detect"]["backend"] == written["keypoints2d"]["backend"] == "mmpose"
    # DVC's writer keeps the file's comments
    assert "# Sample every n-th frame of the 30 fps recordings" in params.read_text()


def test_init_with_keypoints_and_a_profile(data, tmp_path):
    real, syn = data
    keypoints = tmp_path / "keypoints.json"
    keypoints.write_text('{"images": [], "annotations": []}')
    params = _init(tmp_path, "--drive-act", str(real), "--synthetic", str(syn),
                   "--keypoints", str(keypoints), "--profile", "paper")
    written = yaml.safe_load(params.read_text())
    for stage in ("detect", "keypoints2d"):
        assert written[stage]["backend"] == "precomputed"
        assert written[stage]["precomputed"]["results"] == str(keypoints)
    assert written["train"]["max_epochs"] == 200  # the paper profile's
    assert written["lifters"]["graphmlp"]["channel"] == 512


def test_init_refuses_a_full_copy_in_one_line_and_writes_nothing(data, tmp_path, capsys):
    real, syn = data
    full = tmp_path / "drive_and_act"
    shutil.copytree(real, full)
    (full / "kinect_color").mkdir()
    (full / "kinect_color" / "video.mp4").write_bytes(b"\0" * 10)
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    status = cli.main(["data", "init", "--drive-act", str(full), "--synthetic", str(syn),
                       "--params", str(params)])
    err = capsys.readouterr().err
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"cabinlift data: error: {full}: holds a folder the pipeline never "
                          f"reads (kinect_color/; 0.0 GB)")
    assert params.read_text() == (ROOT / "params.yaml").read_text()


def test_the_demo_stage_writes_only_a_note_when_the_roots_are_elsewhere(data, tmp_path):
    real, syn = data
    out = tmp_path / "demo"
    tiny = {"demo.real.subjects": 3, "demo.real.single_run_subjects": [],
            "demo.real.runs_per_subject": 1, "demo.synthetic.humans": 1,
            "demo.synthetic.poses_per_human": 1,
            "normalize.real_splits": {"train": [1], "val": [2], "test": [3]},
            "normalize.synthetic_splits": {"train": ["x"], "val": ["y"], "test": ["z"]},
            "settings": ["pct5"], "subsets.settings.pct5.repetitions": 1}
    generate(out, typed(PARAMS, **tiny).demo, workers=1)  # an earlier demo run's output
    elsewhere = typed(PARAMS, **tiny, **{"data.real.root": str(real),
                                         "data.synthetic.root": str(syn)})
    assert run_demo(elsewhere, out)["written"] is False
    assert [p.name for p in out.iterdir()] == [UNUSED]
    assert str(real) in (out / UNUSED).read_text()
    # one root inside the demo folder: the demo is written
    inside = typed(PARAMS, **tiny, **{"data.real.root": str(out / "drive_and_act"),
                                      "data.synthetic.root": str(syn)})
    run_demo(inside, out)
    assert sorted(p.name for p in out.iterdir()) == ["drive_and_act", "synthetic_cabin"]
