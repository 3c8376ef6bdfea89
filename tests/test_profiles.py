"""Profiles: the same keys in every profile, the demo's values are params.yaml's, the authors'
profile builds the authors' networks, a profile reaches params.yaml through DVC's writer, and
`cabinlift profile` prints values as YAML and takes its options after the profile name."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cabinlift import cli, config, profiles
from cabinlift.errors import CabinliftError
from cabinlift.lifters import build_lifter

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "profiles"
PARAMS = config.read_yaml(ROOT / "params.yaml")


def _count(model: str, hparams: dict) -> int:
    return sum(p.numel() for p in build_lifter(model, **hparams).parameters())


def test_every_profile_sets_the_same_keys_and_is_valid():
    names = profiles.available(PROFILES)
    assert names == ["authors", "demo", "paper"]
    keys = [list(profiles.load_profile(n, PROFILES).values) for n in names]
    assert all(k == keys[0] for k in keys)
    for name in names:
        config.build(profiles.with_profile(PARAMS, profiles.load_profile(name, PROFILES)))


def test_demo_profile_is_params_as_shipped():
    demo = profiles.load_profile("demo", PROFILES)
    assert profiles.changes(PARAMS, demo) == []


def test_authors_profile_builds_the_authors_networks():
    params = profiles.with_profile(PARAMS, profiles.load_profile("authors", PROFILES))
    lifters = params["lifters"]
    # parameter counts of the authors' code instantiated at 13 joints
    assert _count("semgcn", lifters["semgcn"]) == 434_713
    assert _count("graformer", lifters["graformer"]) == 926_887
    assert _count("simplebl", lifters["simplebl"]) == 4_276_263
    assert _count("graphmlp", lifters["graphmlp"]) == 9_482_104  # + 676 frozen partition entries
    train = params["train"]
    assert (train["target_unit_mm"], train["loss_reduction"], train["patience"],
            train["drop_last"]) == (1000.0, "xyz_sum_joint_mean", 5, True)


def test_paper_profile_is_the_official_code_at_paper_scale():
    params = profiles.with_profile(PARAMS, profiles.load_profile("paper", PROFILES))
    assert params["train"]["max_epochs"] == 200 and params["train"]["patience"] == 3
    assert _count("graphmlp", params["lifters"]["graphmlp"]) == 9_482_104
    assert _count("semgcn", params["lifters"]["semgcn"]) == 267_313
    assert _count("graformer", params["lifters"]["graformer"]) == 653_744


def test_set_param_args_are_read_back_with_their_types(tmp_path):
    # DVC's own -S writer turns the arguments into the profile's values, types included
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    authors = profiles.load_profile("authors", PROFILES)
    before = yaml.safe_load(path.read_text())
    made = profiles.apply_profile(path, authors)
    written = yaml.safe_load(path.read_text())

    def get(params: dict, key: str):
        for part in key.split("."):
            params = params[part]
        return params

    # every key whose value differs is written (the frame stride is the demo's already)
    assert [k for k, _, _ in made] == [k for k, v in authors.values.items()
                                       if get(before, k) != v]
    assert len(made) == len(authors.values) - 1
    for key, value in authors.values.items():
        got = written
        for part in key.split("."):
            got = got[part]
        assert got == value and type(got) is type(value), key


def test_apply_then_demo_restores_params_byte_for_byte(tmp_path):
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    profiles.apply_profile(path, profiles.load_profile("authors", PROFILES))
    assert path.read_text() != (ROOT / "params.yaml").read_text()
    profiles.apply_profile(path, profiles.load_profile("demo", PROFILES))
    assert path.read_text() == (ROOT / "params.yaml").read_text()


def test_bad_profiles_are_named(tmp_path):
    with pytest.raises(CabinliftError, match="no profile 'papr' \\(available: authors, demo, paper\\)"):
        profiles.load_profile("papr", PROFILES)
    (tmp_path / "x.yaml").write_text("description: x\nparams:\n  train.lrr: 1\n")
    with pytest.raises(CabinliftError, match="profile key 'train.lrr' is not in params.yaml"):
        profiles.with_profile(PARAMS, profiles.load_profile("x", tmp_path))
    (tmp_path / "y.yaml").write_text("params:\n  train.lr: 1\n")
    with pytest.raises(CabinliftError, match="y.yaml: expected exactly the keys"):
        profiles.load_profile("y", tmp_path)


_TEST_PROFILE = """\
description: a test profile
params:
  lifters.semgcn.graph: coco17
  lifters.semgcn.non_local: true
  store.snapshot_every_epochs: 5
  train.target_unit_mm: 1000.0
"""


@pytest.fixture()
def test_profile(tmp_path) -> Path:
    """A folder holding the profile ``x``: a string, a bool, a null and a float changed."""
    root = tmp_path / "profiles"
    root.mkdir()
    (root / "x.yaml").write_text(_TEST_PROFILE)
    return root


def test_show_prints_values_as_yaml_writes_them(test_profile, capsys):
    """`profile show` once printed Python's spelling (`False -> True`, `'coco15'`, `None`)."""
    argv = ["--params", str(ROOT / "params.yaml"), "profile", "--profiles", str(test_profile)]
    assert cli.main([*argv, "show", "x"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:5] == ["  lifters.semgcn.graph: coco15 -> coco17",
                          "  lifters.semgcn.non_local: false -> true",
                          "  store.snapshot_every_epochs: null -> 5",
                          "  train.target_unit_mm: 50.0 -> 1000.0"]
    for line in lines[1:5]:  # each side reads back as the value it shows
        key, _, change = line.strip().partition(": ")
        old, new = (yaml.safe_load(text) for text in change.split(" -> "))
        assert (old, new) == (profiles._get(PARAMS, key), yaml.safe_load(_TEST_PROFILE)["params"][key])
    assert [profiles.yaml_text(v) for v in (["OMS_01", "Dashboard"], "yes", "1.0", None, "a\nb")] == [
        "[OMS_01, Dashboard]", "'yes'", "'1.0'", "null", '"a\\nb"']


def test_options_after_the_profile_name(tmp_path, test_profile, capsys, monkeypatch):
    """`--params` and `--profiles` after NAME were taken as arguments for dvc exp run (and
    ignored by `show`); they are cabinlift's, and only `run` passes the rest on to DVC."""
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text().replace("non_local: false", "non_local: true"))
    assert cli.main(["profile", "show", "x", "--profiles", str(test_profile), "--params", str(params)]) == 0
    shown = [line for line in capsys.readouterr().out.splitlines() if " -> " in line]
    assert shown == ["  lifters.semgcn.graph: coco15 -> coco17",
                     "  store.snapshot_every_epochs: null -> 5",
                     "  train.target_unit_mm: 50.0 -> 1000.0"]
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    own = ["--profiles", str(test_profile), "--params", str(params)]
    assert cli.main(["profile", "run", "x", *own, "--", "-S", "train.max_epochs=5"]) == 0
    assert cli.main(["profile", "run", "x", "-S", "train.max_epochs=5", *own]) == 0
    expected = [sys.executable, "-m", "dvc", "exp", "run", "-n", "x",
                "-S", "lifters.semgcn.graph=coco17", "-S", "store.snapshot_every_epochs=5",
                "-S", "train.target_unit_mm=1000.0", "-S", "train.max_epochs=5"]
    assert calls == [expected, expected]
    with pytest.raises(SystemExit):  # only run takes further arguments
        cli.main(["profile", "show", "x", *own, "-S", "train.max_epochs=5"])
