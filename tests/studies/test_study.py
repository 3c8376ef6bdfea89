"""Studies: the file form and its checks, and `cabinlift study run|report` through DVC's real
experiment queue on a throw-away repository whose one stage writes a summary.json with known
values (the pipeline's own stages are covered elsewhere; here only the study machinery)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from dvcrepo import DVC, base_params, init_repo, run

from cabinlift import cli
from cabinlift.errors import CabinliftError
from cabinlift.studies import definition
from cabinlift.studies.definition import Study, load_study

ROOT = Path(__file__).resolve().parents[2]


def _write(root: Path, name: str, text: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.yaml").write_text(textwrap.dedent(text))


def test_set_args_are_the_base_then_the_variant_in_dvc_override_grammar():
    study = Study("views", "d", {"models": ["simplebl"], "train.lr": 0.001},
                  {"one": {"data.synthetic.views": ["OMS_01", "Front"], "train.lr": 0.01,
                           "evaluate.per_joint_setting": None, "train.drop_last": True}})
    assert study.experiment("one") == "views-one"
    assert study.set_args("one") == [
        "-S", "models=[simplebl]", "-S", "train.lr=0.01",
        "-S", "data.synthetic.views=[OMS_01,Front]", "-S", "evaluate.per_joint_setting=null",
        "-S", "train.drop_last=true"]


@pytest.mark.parametrize(("text", "message"), [
    ("description: d\nbase: {}\n", "expected exactly the keys description, base, variants"),
    ("description: d\nbase: {}\nvariants: {a: {}}\n", "at least two variant names"),
    ("description: d\nbase: {}\nvariants: {a: {}, B-2: {}}\n", "variant name 'B-2'"),
    ("description: d\nbase: [1]\nvariants: {a: {}, b: {}}\n", "key 'base' must map"),
    ("description: d\nbase: {}\nvariants: {a: {x: {y: 1}}, b: {}}\n", "entry 'x' of 'variants.a'"),
])
def test_malformed_study_files_are_one_line_errors(tmp_path, text, message):
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(CabinliftError) as err:
        load_study("s", tmp_path)
    assert message in str(err.value) and str(err.value).startswith(f"{tmp_path / 's.yaml'}:")


def test_every_variant_is_checked_against_params_before_anything_runs(tmp_path):
    _write(tmp_path, "s", """\
        description: d
        base: {models: [simplebl]}
        variants:
          ok: {}
          typo: {train.lrr: 0.1}
          bad: {train.lr: -1.0}
        """)
    with pytest.raises(CabinliftError) as err:
        definition.check(load_study("s", tmp_path), base_params(), "params.yaml")
    text = str(err.value)
    assert "variant 'ok'" not in text
    assert "variant 'typo': key 'train.lrr' is not in params.yaml" in text
    assert "variant 'bad'" in text and "key 'train.lr' must be" in text


def test_the_shipped_studies_are_valid_for_the_shipped_params():
    names = definition.available(ROOT / "studies")
    assert len(names) >= 1
    for name in names:
        definition.check(load_study(name, ROOT / "studies"), base_params(), "params.yaml")


_STAGE = """\
import json, yaml
p = yaml.safe_load(open("params.yaml"))
g = 1000 * p["train"]["lr"]  # a known gain per variant
settings = {"pct5": {"subjects": 1, "fraction": 0.05, "runs": 8, "train_frames": 2.0},
            "subj8": {"subjects": 8, "fraction": 1.0, "runs": 3, "train_frames": 300.0}}
scratch = {"pct5": 200.0, "subj8": 80.0}
summary = {
    "settings": settings,
    "tables": {"mpjpe": {"simplebl": {
        "scratch": scratch,
        "pretrained": {"none": 150.0, **{s: v - g for s, v in scratch.items()}}}}},
    "paired_tests": {"simplebl": {s: {"mean_diff": -g, "ci95": 0.5, "p_holm": 0.01 * g}
                                  for s in settings}},
    "pretrain": {"simplebl": {"train_frames": int(480 / p["train"]["lr"] * 0.002)}},
    "weight_movement": {"models": {"simplebl": {"cells": {
        "pct5": {"whole": {"median": g / 1000}}}}}},
    "frames_worth": {"simplebl": {"cells": {
        s: {"scratch_frames": {"frames": 10 * g, "bound": "interpolated"}} for s in settings}}},
}
json.dump(summary, open("metrics/summary.json", "w"))
json.dump({"simplebl": {"scratch": scratch}}, open("metrics/table1.json", "w"))
"""


@pytest.fixture
def study_repo(tmp_path, monkeypatch):
    """A git + DVC repository holding the shipped params.yaml and one stage that writes a
    summary from ``train.lr``, and a study of two variants."""
    repo = tmp_path / "repo"
    (repo / "metrics").mkdir(parents=True)
    (repo / "params.yaml").write_text(yaml.safe_dump(base_params(), sort_keys=False))
    (repo / "stage.py").write_text(_STAGE)
    (repo / "dvc.yaml").write_text(textwrap.dedent("""\
        stages:
          evaluate:
            cmd: python stage.py
            deps: [stage.py]
            params: [train.lr, evaluate.alpha]
            metrics:
              - metrics/table1.json:
                  cache: false
            outs:
              - metrics/summary.json:
                  cache: false
        """))
    _write(repo / "studies", "lr", """\
        description: How the learning rate changes the gain.
        base: {models: [simplebl]}
        variants:
          small: {train.lr: 0.002}
          large: {train.lr: 0.02}
        """)
    init_repo(repo, "main")
    run(DVC + ["repro", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "init"], repo)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "t")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "t@t")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "t")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "t@t")
    return repo


@pytest.mark.slow
def test_run_queues_the_variants_and_report_compares_them(study_repo, capsys):
    repo = study_repo
    assert cli.main(["study", "run", "lr"]) == 0
    out = capsys.readouterr().out
    assert "lr-small: queued (train.lr=0.002)" not in out  # the base's assignment comes first
    assert "lr-small: queued (models=[simplebl] train.lr=0.002)" in out
    exps = run(DVC + ["exp", "show", "--json"], repo).stdout
    params = {e["name"]: e["data"]["params"]["params.yaml"]["data"]
              for rev in json.loads(exps) for g in rev.get("experiments") or []
              for e in g["revs"]}
    assert params["lr-small"]["train"]["lr"] == 0.002 and params["lr-large"]["train"]["lr"] == 0.02
    assert params["lr-small"]["models"] == ["simplebl"]

    assert cli.main(["study", "run", "lr"]) == 0  # nothing left to run on this commit
    out = capsys.readouterr().out
    assert "lr-small: already run on this commit" in out and "queued" not in out

    assert cli.main(["study", "report", "lr"]) == 0
    md = (repo / "studies" / "results" / "lr.md").read_text()
    lines = md.splitlines()
    assert "| small | `train.lr=0.002` | 480 | `lr-small` (" in md  # synthetic poses read
    assert "| large | `train.lr=0.02` | 48 | `lr-large` (" in md
    assert "| variant | no real data | 5% (2 fr.) | 8 subj. (300 fr.) |" in lines
    gains = [ln for ln in lines if ln.startswith("| small |") or ln.startswith("| large |")]
    # pre-trained MPJPE = scratch - g, gain g = 1000 lr (* where p_holm = 0.01 g < alpha 0.05)
    assert "| small | 150.0 | 198.0 | 78.0 |" in gains
    assert "| large | 150.0 | 180.0 | 60.0 |" in gains
    assert "| small | +2.0 ± 0.5 * | +2.0 ± 0.5 * |" in gains
    assert "| large | +20.0 ± 0.5 | +20.0 ± 0.5 |" in gains  # p_holm 0.01 g: 0.2 > alpha
    assert "| small | – | 20 | 20 |" in gains and "| large | – | 200 | 200 |" in gains
    moved = lines.index("How far fine-tuning moves the pre-trained weights (whole model, median "
                        "relative change over runs, %):")
    assert lines[moved + 4: moved + 6] == ["| small | 0.20 | – |", "| large | 2.00 | – |"]
    png = (repo / "studies" / "results" / "lr.png").read_bytes()
    assert png.startswith(b"\x89PNG") and "![lr](lr.png)" in md


def test_report_names_the_variants_not_run(study_repo):
    with pytest.raises(CabinliftError) as err:
        from cabinlift.studies.report import write_report
        write_report(load_study("lr"))
    assert str(err.value) == ("study lr: no experiment for lr-small, lr-large "
                              "(run `cabinlift study run lr`)")


@pytest.mark.slow
def test_a_variant_left_in_the_queue_is_followed_not_queued_twice(study_repo, capsys):
    """A `study run` stopped while following leaves its variants in DVC's queue: the next one
    runs them once (one task each) instead of queueing them again."""
    repo = study_repo
    run(DVC + ["exp", "run", "--queue", "-n", "lr-small", "-S", "models=[simplebl]",
               "-S", "train.lr=0.002"], repo)  # queued, no worker started
    assert cli.main(["study", "run", "lr"]) == 0
    out = capsys.readouterr().out
    assert "lr-small: already in DVC's queue; followed, not queued again" in out
    assert "lr-large: queued" in out and "lr-small: queued" not in out
    status = run(DVC + ["queue", "status"], repo).stdout.splitlines()
    tasks = sorted((line.split()[1], line.split()[-1]) for line in status
                   if line.split()[1:2] in (["lr-small"], ["lr-large"]))
    assert tasks == [("lr-large", "Success"), ("lr-small", "Success")]  # one task each
