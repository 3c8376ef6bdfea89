"""``cabinlift check`` against this machine and the data: each mistake that a stage would find
only after DVC had emptied its outputs is one line naming its key, found before any stage runs
(the same mistakes under `dvc repro`: tests/test_dvc_workflow.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import yaml
from cliutil import typed, with_changes

from cabinlift import cli, config, preflight
from cabinlift.demo.generate import generate, recordings

ROOT = Path(__file__).resolve().parents[1]
PARAMS = config.read_yaml(ROOT / "params.yaml")
DEMO = Path("data/raw/demo")  # the demo stage's output in dvc.yaml
TINY = {"demo.real.subjects": 4, "demo.real.single_run_subjects": [], "demo.synthetic.humans": 4,
        "normalize.real_splits": {"train": [1], "val": [2], "test": [3, 4]},
        "normalize.synthetic_splits": {"train": ["human_01"], "val": ["human_02"],
                                       "test": ["human_03", "human_04"]},
        "settings": ["pct5"], "subsets.settings.pct5.repetitions": 1, "train.device": "cpu"}


@pytest.fixture(autouse=True)
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _tiny(**changes) -> dict:
    """:data:`TINY` and ``changes`` (copies: a dotted change must not edit a TINY value)."""
    return copy.deepcopy({**TINY, **changes})


def _problems(**changes) -> list[str]:
    return preflight.problems(typed(PARAMS, **_tiny(**changes)), DEMO)


def _test_recording(params: config.Params) -> str:
    """The first recording of test subject 3 in the demo data set of ``params``."""
    return next(f for f, (s, _) in recordings(params.demo).items() if s == 3)


def test_the_pipeline_file_names_the_demo_output():
    assert preflight.demo_output(ROOT / "dvc.yaml") == DEMO
    assert preflight.demo_output(Path("dvc.yaml")) is None  # outside a checkout
    Path("dvc.yaml").write_text(yaml.safe_dump(
        {"stages": {"demo": {"cmd": "x", "outs": [{"somewhere/demo": {"persist": True}}]}}}))
    assert preflight.demo_output(Path("dvc.yaml")) == Path("somewhere/demo")


def test_the_demo_data_is_known_before_the_demo_stage_has_run():
    assert not DEMO.exists()
    assert _problems() == []


def test_a_split_member_the_demo_does_not_write_is_named_with_the_closest_one():
    assert _problems(**{"normalize.synthetic_splits.val": ["human_2"],
                        "normalize.real_splits.test": [3, 44]}) == [
        "key 'normalize.real_splits.test' names subject 44, which is not in the data (closest: 4; "
        "data/raw/demo/drive_and_act has 4 subjects: 1-4)",
        "key 'normalize.synthetic_splits.val' names human 'human_2', which is not in the data "
        "(closest: 'human_02'; data/raw/demo/synthetic_cabin has 4 humans: human_01, human_02, "
        "human_03, human_04)"]


def test_a_pretraining_view_the_demo_does_not_write():
    assert _problems(**{"demo.synthetic.views": ["OMS_01", "Dashboard"]}) == [
        "key 'data.synthetic.views' names view 'Front', which the demo data set does not have "
        "(its views are 'demo.synthetic.views': OMS_01, Dashboard)"]


def test_a_root_inside_the_demo_output_but_not_its_data_set():
    assert _problems(**{"data.real.root": "data/raw/demo/real"}) == [
        "key 'data.real.root' is 'data/raw/demo/real', inside the folder the demo stage writes "
        "(data/raw/demo), whose data set of this kind is data/raw/demo/drive_and_act"]


def test_roots_that_do_not_exist():
    assert _problems(**{"data.real.root": "data/raw/drive_and_act",
                        "data.synthetic.root": "data/raw/synthetic_cabin"}) == [
        "key 'data.real.root' names data/raw/drive_and_act, which is not a folder (expected a "
        "Drive&Act root containing openpose_3d/vpN/<run>.ids_1.openpose.3d.csv)",
        "key 'data.synthetic.root' names data/raw/synthetic_cabin, which is not a folder "
        "(expected a SyntheticCabin root containing gt_jsons/*.json)"]
    Path("data/raw/synthetic_cabin").mkdir(parents=True)
    assert _problems(**{"data.synthetic.root": "data/raw/synthetic_cabin"}) == [
        "key 'data.synthetic.root' names data/raw/synthetic_cabin, which has no gt_jsons/ folder "
        "(expected a SyntheticCabin root containing gt_jsons/*.json)"]


def test_the_example_frame_is_a_sampled_frame_of_a_test_recording():
    params = typed(PARAMS, **_tiny())
    file_id = _test_recording(params)
    q = "evaluate.qualitative"
    assert _problems(**{f"{q}.file_id": file_id, f"{q}.frame_id": 570}) == []
    assert _problems(**{f"{q}.file_id": file_id, f"{q}.frame_id": 31}) == [
        f"key '{q}.frame_id' is 31, which is not a frame the pipeline samples from {file_id!r} "
        "(every 30th, 'data.real.frame_stride', of its 600: 0, 30, ..., 570)"]
    assert _problems(**{f"{q}.file_id": file_id, f"{q}.frame_id": 600}) != []
    assert _problems(**{f"{q}.file_id": file_id, f"{q}.frame_id": 31,
                        "data.real.frame_stride": 1}) == []
    train_file = next(f for f, (s, _) in recordings(params.demo).items() if s == 1)
    assert _problems(**{f"{q}.file_id": train_file, f"{q}.frame_id": 0}) == [
        f"key '{q}.file_id' is {train_file!r}, a recording of subject 1, which is not in the test "
        "split 'normalize.real_splits.test' (3-4)"]
    typo = file_id.replace(".ids_1", "")
    assert _problems(**{f"{q}.file_id": typo, f"{q}.frame_id": 0}) == [
        f"key '{q}.file_id' is {typo!r}, which is not a recording of data/raw/demo/drive_and_act "
        f"(did you mean {file_id!r}?)"]


def test_data_on_disk_is_read_from_its_files():
    """A root outside the demo output: subjects and frames are the files' (frames of a 20 s
    recording cut to 10 s)."""
    changes = {"demo.real.subjects": 4, "demo.real.single_run_subjects": [],
               "demo.real.seconds_per_run": 20.0, "demo.synthetic.humans": 1,
               "demo.synthetic.poses_per_human": 1}
    generate(Path("mine"), typed(PARAMS, **_tiny(**changes)).demo, workers=1)
    recs = recordings(typed(PARAMS, **_tiny(**changes)).demo)
    file_id = next(f for f, (s, _) in recs.items() if s == 3)
    csv = Path("mine/drive_and_act/openpose_3d") / f"{file_id}.openpose.3d.csv"
    csv.write_text("".join(csv.read_text().splitlines(keepends=True)[:301]))  # 300 frames
    on_disk = {"data.real.root": "mine/drive_and_act", "data.synthetic.root": "mine/synthetic_cabin",
               "normalize.real_splits.test": [3, 4, 5],
               "evaluate.qualitative.file_id": file_id, "evaluate.qualitative.frame_id": 300}
    assert _problems(**changes, **on_disk) == [
        "key 'normalize.real_splits.test' names subject 5, which is not in the data (closest: 4; "
        "mine/drive_and_act has 4 subjects: 1-4)",
        f"key 'evaluate.qualitative.frame_id' is 300, which is not a frame the pipeline samples "
        f"from {file_id!r} (every 30th, 'data.real.frame_stride', of its 300: 0, 30, ..., 270)"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_device_this_machine_lacks():
    assert _problems(**{"train.device": "cuda"}) == [
        "key 'train.device' asks for CUDA ('cuda'), which is not available on this machine"]
    # on Ray the devices are the cluster's (config's rules tie them to what a task reserves)
    ray = {"kind": "ray", "address": None, "cpus_per_task": 1, "gpus_per_task": 1,
           "max_retries": 0}
    assert _problems(**{"train.device": "cuda", "executor": ray}) == []


def test_check_stops_naming_the_params_file_and_keeps_the_manifests(capsys):
    """The message names the file --params gives; a failed check writes nothing."""
    Path("mine.yaml").write_text(yaml.safe_dump(with_changes(
        PARAMS, **_tiny(**{"normalize.synthetic_splits.val": ["human_9"]})), sort_keys=False))
    Path("dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    Path("inputs").mkdir()
    Path("inputs/detect.json").write_text("{}\n")
    assert cli.main(["--params", "mine.yaml", "check", "--out", "inputs"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cabinlift check: error: mine.yaml: 1 problem: key "
                          "'normalize.synthetic_splits.val' names human 'human_9', which is not "
                          "in the data (closest: 'human_04';"), err
    assert sorted(p.name for p in Path("inputs").iterdir()) == ["detect.json"]
    assert json.loads(Path("inputs/detect.json").read_text()) == {}
