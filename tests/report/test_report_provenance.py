"""The report's provenance (src/cabinlift/report/provenance.py), on made-up git repositories,
profiles, locks and timing logs with known answers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from cabinlift.errors import CabinliftError
from cabinlift.report import provenance

ROOT = Path(__file__).resolve().parents[2]


def _git(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "GIT_CEILING_DIRECTORIES": str(cwd.parent)}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(["init", "-q"], repo)
    return repo


def test_a_clean_tree_a_dirty_one_no_commit_and_no_repository(repo: Path, tmp_path: Path):
    (repo / "a.txt").write_text("a\n")
    state = provenance.git_state(repo)
    assert (state.commit, state.dirty, state.changes) == (None, True, ("?? a.txt",))
    assert state.note == "a git repository without a commit yet"
    _git(["add", "a.txt"], repo)
    _git(["commit", "-qm", "a"], repo)
    head = _git(["log", "-1", "--format=%H"], repo).strip()
    assert provenance.git_state(repo) == provenance.GitState(head, False, ())
    (repo / "a.txt").write_text("changed\n")
    (repo / "new.txt").write_text("new\n")
    assert provenance.git_state(repo) == provenance.GitState(
        head, True, (" M a.txt", "?? new.txt"))
    outside = tmp_path / "plain"
    outside.mkdir()
    assert provenance.git_state(outside) == provenance.GitState(
        None, None, (), "not a git repository")


def _profile(root: Path, name: str, values: dict) -> None:
    root.mkdir(exist_ok=True)
    (root / f"{name}.yaml").write_text(yaml.safe_dump(
        {"description": f"the {name} profile", "params": values}))


def test_the_closest_profile_has_the_fewest_differences(tmp_path: Path):
    params = {"train": {"max_epochs": 4, "lr": 0.001}, "models": ["a"]}
    _profile(tmp_path, "paper", {"train.max_epochs": 100, "train.lr": 0.01})
    _profile(tmp_path, "demo", {"train.max_epochs": 4, "train.lr": 0.01})
    got = provenance.closest_profile(params, tmp_path)
    assert (got.name, got.description) == ("demo", "the demo profile")
    assert got.changes == (("train.lr", 0.001, 0.01),)
    assert got.counts == {"demo": 1, "paper": 2}
    _profile(tmp_path, "alpha", {"train.max_epochs": 5, "train.lr": 0.001})  # a tie: by name
    assert provenance.closest_profile(params, tmp_path).name == "alpha"
    assert provenance.closest_profile(params, tmp_path / "none") is None


def test_a_profile_key_the_params_lack_is_a_difference_not_an_error(tmp_path: Path):
    params = {"train": {"max_epochs": 4}, "subsets": {"settings": {"pct50": {"seeds": 1}}}}
    _profile(tmp_path, "paper", {"train.max_epochs": 4, "subsets.settings.subj8.seeds": 1})
    got = provenance.closest_profile(params, tmp_path)
    assert got.changes == (("subsets.settings.subj8.seeds", "(not in params.yaml)", 1),)


def test_a_param_changed_from_the_shipped_demo_profile_is_listed():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert provenance.closest_profile(params, ROOT / "profiles").changes == ()
    params["train"]["max_epochs"] = 7  # profiles/demo.yaml: train.max_epochs: 4
    got = provenance.closest_profile(params, ROOT / "profiles")
    assert got.name == "demo" and got.changes == (("train.max_epochs", 7, 4),)


def test_data_hashes_are_the_normalize_inputs_and_the_input_manifests():
    lock = {"stages": {
        "check": {"outs": [{"path": "data/inputs/code/normalize.json", "md5": "c1"},
                           {"path": "data/inputs/demo.json", "md5": "d1"},
                           {"path": "data/inputs/numerics.json", "md5": "n1"}]},
        "normalize": {"deps": [{"path": "data/inputs/code/normalize.json", "md5": "c1"},
                               {"path": "/data/drive_and_act", "md5": "r1.dir"},
                               {"path": "data/interim/keypoints2d", "md5": "k1.dir"},
                               {"path": "data/inputs/numerics.json", "md5": "n1"}]},
        "evaluate": {"deps": [{"path": "models/finetuned", "md5": "x.dir"}]}}}
    assert provenance.data_hashes(lock) == [
        ("/data/drive_and_act", "r1.dir"), ("data/inputs/demo.json", "d1"),
        ("data/inputs/numerics.json", "n1"), ("data/interim/keypoints2d", "k1.dir")]
    assert provenance.data_hashes({}) == []


def test_versions_of_installed_and_missing_packages():
    import numpy

    versions = provenance.package_versions(("numpy", "no-such-package-cabinlift"))
    assert versions["numpy"] == numpy.__version__
    assert versions["no-such-package-cabinlift"] is None
    assert versions["python"].count(".") == 2


def test_wall_times_per_stage_and_model(tmp_path: Path):
    assert provenance.wall_times(tmp_path) is None  # not recorded
    (tmp_path / "wall_times.csv").write_text(
        "model,init,setting,repetition,wall_time_s\n"
        "semgcn,scratch,pct5,0,1.5\nsemgcn,scratch,pct5,1,2.0\n"
        "semgcn,pretrained,pct5,0,4.25\n")
    (tmp_path / "pretrain").mkdir()
    (tmp_path / "pretrain" / "semgcn.json").write_text(json.dumps([
        {"seed": 0, "wall_time_s": 10.0, "reused": False},
        {"seed": 1, "wall_time_s": 0.5, "reused": True}]))
    W = provenance.WallTime
    assert provenance.wall_times(tmp_path) == [
        W("pretrain", "semgcn", 2, 10.5, 1), W("finetune_scratch", "semgcn", 2, 3.5),
        W("finetune_pretrained", "semgcn", 1, 4.25)]
    (tmp_path / "wall_times.csv").write_text("model,seconds\nsemgcn,1\n")
    with pytest.raises(CabinliftError, match=r"wall_times\.csv: expected the columns model,"):
        provenance.wall_times(tmp_path)


def test_compute_setup_names_the_params_and_the_recorded_regime():
    params = {"train": {"device": "cuda"}, "threads": 4, "numerics": {"mode": "native"},
              "executor": {"kind": "local"}}
    assert provenance.compute_setup(params, {"mode": "native", "device": "NVIDIA H100"}) == [
        ("train.device", "cuda"), ("threads", "4"), ("numerics.mode", "native"),
        ("executor.kind", "local"), ("numerics.json: device", "NVIDIA H100"),
        ("numerics.json: mode", "native")]
