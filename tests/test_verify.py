"""`cabinlift verify`'s comparisons, on made-up locks and tables with known answers (the
re-run itself is exercised end to end in tests/test_pipeline_e2e.py)."""

from __future__ import annotations

from cabinlift.verify import CellDiff, compare_cells, compare_outputs, lock_outputs, report

LOCK = {"stages": {
    "normalize": {"outs": [{"path": "data/processed", "md5": "aaa.dir"},
                           {"path": "metrics/normalize.json", "md5": "bbb"}]},
    "evaluate": {"outs": [{"path": "metrics/table1.json", "md5": "ccc"}]},
}}


def test_outputs_are_compared_by_their_recorded_hashes():
    assert lock_outputs(LOCK) == {"data/processed": "aaa.dir", "metrics/normalize.json": "bbb",
                                  "metrics/table1.json": "ccc"}
    assert lock_outputs(LOCK, {"evaluate"}) == {"metrics/table1.json": "ccc"}
    now = {"data/processed": "aaa.dir", "metrics/table1.json": "ddd", "plots/x.png": "eee"}
    assert compare_outputs(lock_outputs(LOCK), now) == {
        "metrics/normalize.json": "missing", "metrics/table1.json": "different",
        "plots/x.png": "new"}
    assert compare_outputs(now, dict(now)) == {}
    # the report records provenance (commit, tree, versions): never compared byte for byte
    assert compare_outputs({"metrics/report.html": "a"}, {"metrics/report.html": "b"}) == {}


def test_cells_come_with_the_committed_spread():
    committed = {"semgcn": {"scratch": {"pct5": 100.0, "subj8": 50.0},
                            "pretrained": {"none": 80.0, "pct5": 90.0}},
                 "mean_pose": {"pct5": 120.0}}
    summary = {"cells": {"semgcn": {"scratch": {"pct5": {"n_runs": 8, "mpjpe": {"std": 4.0}},
                                                "subj8": {"n_runs": 3, "mpjpe": {"std": 1.5}}},
                                    "pretrained": {"none": {"n_runs": 3,
                                                            "mpjpe": {"std": 6.0}}}}}}
    now = {"semgcn": {"scratch": {"pct5": 103.0, "subj8": 50.0},
                      "pretrained": {"none": 80.0, "pct5": 90.5}},
           "mean_pose": {"pct5": 120.0}}
    cells = {(c.model, c.init, c.setting): c for c in compare_cells(committed, summary, now)}
    assert len(cells) == 5
    assert cells["semgcn", "scratch", "pct5"].diff == 3.0
    assert cells["semgcn", "scratch", "pct5"].std == 4.0
    assert cells["semgcn", "scratch", "subj8"].diff == 0.0
    assert cells["semgcn", "pretrained", "none"].n_runs == 3
    pct5 = cells["semgcn", "pretrained", "pct5"]
    assert (pct5.diff, pct5.std, pct5.n_runs) == (0.5, None, None)  # no spread recorded
    assert cells["mean_pose", "", "pct5"].diff == 0.0


def test_report_says_identical_or_lists_each_difference():
    regime = {"mode": "portable", "torch": "2.14.1", "probe": "abc"}
    fingerprint = {"cpu": "AMD EPYC", "cpu_isa": "AVX2", "cpu_capability": "AVX2",
                   "mode": "portable"}
    same = [CellDiff("semgcn", "scratch", "pct5", 100.0, 100.0, 4.0, 8)]
    text = report({}, 12, same, regime, regime, fingerprint)
    assert "DVC outputs: identical (12 outputs, byte for byte)" in text
    assert "Table 1: identical (1 cells)" in text and "differs in" not in text
    cells = [CellDiff("semgcn", "scratch", "pct5", 100.0, 103.0, 4.0, 8),
             CellDiff("semgcn", "scratch", "subj8", 50.0, 56.0, 1.5, 3), *same]
    text = report({"metrics/table1.json": "different"}, 12, cells, regime,
                  {**regime, "probe": "xyz"}, fingerprint)
    assert "DVC outputs: 1 of 12 not identical" in text
    assert "  different metrics/table1.json" in text
    assert "Table 1: 2 of 3 cells differ" in text
    assert "semgcn       scratch    pct5        100.00    103.00     3.00    4.00    8" in text
    assert "1 of 2 differences are within one std of their cell" in text
    assert "differs in: probe" in text
    text = report({}, 12, same, regime, regime, fingerprint, ["metrics/report.html"])
    assert "DVC outputs: identical (12 outputs, byte for byte)\n  not compared (provenance: " \
        "commit, tree state, versions, wall times): metrics/report.html\n" in text


def test_scratch_folder_is_made_when_missing_and_refused_when_not_empty(tmp_path):
    """`--scratch` names a new folder (made, parents too) or an empty one; a file or a folder
    with something in it is a clear error before anything is copied or run."""
    import pytest

    from cabinlift.errors import CabinliftError
    from cabinlift.verify import run_verify

    project = tmp_path / "project"  # committed results, but not a git repository
    project.mkdir()
    (project / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "kept.txt").write_text("mine")
    with pytest.raises(CabinliftError, match="busy: the scratch folder must be empty"):
        run_verify(project, [], busy)
    assert (busy / "kept.txt").read_text() == "mine"
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(CabinliftError, match="a-file: the scratch folder is a file"):
        run_verify(project, [], a_file)
    new = tmp_path / "new" / "scratch"
    with pytest.raises(CabinliftError) as err:  # made, then copying is what fails
        run_verify(project, [], new)
    assert "scratch folder" not in str(err.value)
    assert new.is_dir()
