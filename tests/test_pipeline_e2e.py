"""End to end: the real `dvc repro` of this repository's dvc.yaml on tiny params, in a
temporary git repository, then checks on the Table-1 files it produced."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest
import stageparams
import yaml
from dvcrepo import DVC, base_params, make_repo
from dvcrepo import run as _run

pytestmark = pytest.mark.slow


def tiny_params() -> dict:
    params = base_params()
    demo = params["demo"]
    demo["real"]["seconds_per_run"] = 40
    demo["synthetic"]["poses_per_human"] = 12
    params["train"]["max_epochs"] = 2
    params["train"]["val_every"] = 1
    params["lifters"]["simplebl"].update(linear_size=64, num_stage=1, dropout=0.5)
    params["models"] = ["simplebl"]
    params["evaluate"]["qualitative"]["model"] = "simplebl"
    return params


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = make_repo(tmp_path_factory.mktemp("pipeline"), tiny_params())
    _run(DVC + ["repro"], repo)
    return repo


def test_table1_structure_and_values(repo: Path):
    params = tiny_params()
    table = json.loads((repo / "metrics" / "table1.json").read_text())
    assert set(table) == {"simplebl", "mean_pose"}
    assert list(table["simplebl"]["scratch"]) == params["settings"]
    # the pre-trained weights before fine-tuning ("No real data") first
    assert list(table["simplebl"]["pretrained"]) == ["none", *params["settings"]]
    assert list(table["mean_pose"]) == params["settings"]
    for cells in (*table["simplebl"].values(), table["mean_pose"]):
        for value in cells.values():
            assert math.isfinite(value) and 5.0 < value < 5000.0  # mm, plausible
    none = json.loads((repo / "models" / "finetuned" / "pretrained" / "simplebl" / "none"
                       / "runs.json").read_text())
    # one run per pre-training (three seeds), each from its own checkpoint
    assert [r["pretrain_seed"] for r in none] == [0, 1, 2]
    assert len({r["test_mpjpe"] for r in none}) == 3
    assert abs(table["simplebl"]["pretrained"]["none"]
               - sum(r["test_mpjpe"] for r in none) / 3) < 0.006
    md = (repo / "metrics" / "table1.md").read_text()
    assert "PT SimpleBL" in md and "5% of a subject" in md
    assert "| Model | No real data | 5% of a subject |" in md
    assert "| Mean training pose | — |" in md and "## Convergence" in md
    runs = list(csv.DictReader((repo / "metrics" / "runs.csv").open()))
    assert len(runs) == 2 * 59 + 3  # + the weights of the 3 pre-trainings before fine-tuning
    assert [r["setting"] for r in runs if r["init"] == "pretrained"][0] == "none"
    trained = [r for r in runs if r["setting"] != "none"]
    assert all(int(r["steps"]) > 0 for r in trained)  # every run took optimiser steps
    assert {r["stopped_early"] for r in runs} <= {"true", "false"}
    times = (repo / "logs" / "wall_times.csv").read_text().strip().splitlines()
    assert len(times) == 1 + len(trained) and times[0].endswith("wall_time_s")
    assert all(float(t.rsplit(",", 1)[1]) > 0 for t in times[1:])
    summary = json.loads((repo / "metrics" / "summary.json").read_text())
    assert summary["cells"]["simplebl"]["pretrained"]["none"]["n_runs"] == 3
    assert summary["cells"]["simplebl"]["scratch"]["subj8"]["n_runs"] == 3  # three seeds
    assert summary["cells"]["simplebl"]["scratch"]["subj8"]["mpjpe"]["std"] > 0
    assert set(summary["mean_pose"]) == set(params["settings"])
    curve = (repo / "plots" / "mpjpe_vs_data.csv").read_text().splitlines()[0].split(",")
    assert curve[-4:] == ["simplebl_pretrained_none", "mean_pose", "mean_pose_lo", "mean_pose_hi"]


def test_plots_and_normalize_report(repo: Path):
    for name in ("mpjpe_vs_data", "pretraining_gain", "frames_worth", "weight_movement",
                 "per_joint", "qualitative"):
        assert (repo / "plots" / f"{name}.png").stat().st_size > 1000, name
    for name in ("mpjpe_vs_data.csv", "pretraining_gain.csv", "frames_worth.csv",
                 "weight_movement.csv"):
        assert (repo / "plots" / name).read_text().startswith("setting,train_frames"), name
    assert (repo / "plots" / "per_joint.csv").read_text().startswith("joint_index,joint")
    summary = json.loads((repo / "metrics" / "summary.json").read_text())
    assert set(summary["paired_tests"]["simplebl"]) == set(tiny_params()["settings"])
    # every fine-tuned PT run measured against the pre-training it started from (run r: r % 3)
    moved = summary["weight_movement"]["models"]["simplebl"]["cells"]
    assert set(moved) == set(tiny_params()["settings"])
    for cell in moved.values():
        assert [r["pretrain_seed"] for r in cell["runs"]] == [
            r["repetition"] % 3 for r in cell["runs"]]
        assert all(0.0 < r["whole"] < 1.0 for r in cell["runs"])  # moved, and not beyond recognition
    report = json.loads((repo / "metrics" / "normalize.json").read_text())
    assert report["real"]["kept"]["train"] > 0


def test_lift_round_trip_reproduces_the_evaluated_mpjpe(repo: Path, tmp_path: Path):
    """2D keypoints of the test recordings -> ``cabinlift lift`` with one fine-tuned checkpoint
    -> 3D; joined with the test set's ground truth, the MPJPE is what evaluate reported."""
    import csv

    import numpy as np

    rows = list(csv.DictReader((repo / "metrics" / "runs.csv").open()))
    row = next(r for r in rows if (r["init"], r["setting"]) == ("pretrained", "subj1"))
    ckpt = (repo / "models" / "finetuned" / "pretrained" / "simplebl" / "subj1"
            / f"run{int(row['repetition']):02d}.pt")
    out = tmp_path / "lifted.npz"
    _run(["cabinlift", "lift", "--checkpoint", str(ckpt), "--input",
          "data/interim/keypoints2d", "--out", str(out)], repo)
    with np.load(out) as z, np.load(repo / "data" / "processed" / "real_test.npz") as t:
        where = {(f, int(i)): k for k, (f, i) in enumerate(zip(z["file_id"], z["frame_id"],
                                                                 strict=True))}
        rows_lifted = [where[f, int(i)] for f, i in zip(t["file_id"], t["frame_id"],
                                                        strict=True)]
        pred = z["pose3d"][rows_lifted].astype(np.float64)
        err = np.linalg.norm(pred - t["y3d"], axis=-1)[t["mask"]]
    assert abs(err.mean() - float(row["test_mpjpe"])) < 1e-3, (err.mean(), row["test_mpjpe"])


def test_second_repro_is_a_no_op(repo: Path):
    """Nothing is out of date; only the params check is listed: it runs on every repro."""
    out = json.loads(_run(DVC + ["status", "--json"], repo).stdout)
    assert out == {"check": ["always changed"]}, out


@pytest.fixture(scope="module")
def recorded(repo: Path) -> dict:
    """Every stage's command run once more under tests/stagerecorder.py (tests/stageparams.py)."""
    return stageparams.record_stages(repo)


def test_every_stage_ran_under_the_recorder(recorded):
    stageparams.check_every_stage_ran(recorded)


def test_a_stage_reads_only_the_params_it_declares(recorded):
    stageparams.check_reads_only_declared_params(recorded)


def test_a_stage_reads_every_param_it_declares(recorded):
    stageparams.check_every_declared_param_is_read(recorded)


def test_a_stage_loads_no_module_outside_its_code_closure(recorded):
    stageparams.check_no_module_outside_the_closure(recorded)


def test_forced_stage_reuses_stored_runs_and_keeps_its_outputs(repo: Path):
    """DVC wipes a stage's outputs before running it; the run store outside them lets a forced
    fine-tuning stage reuse all its runs, and the outputs DVC records are unchanged."""
    lock = (repo / "dvc.lock").read_text()
    proc = _run(DVC + ["repro", "--force", "--single-item", "finetune_pretrained@simplebl"], repo)
    log = proc.stderr + proc.stdout
    assert log.count(": reused ") == 59 and ": trained in " not in log, log[-2000:]
    assert (repo / "dvc.lock").read_text() == lock


def test_bad_param_fails_with_one_line_and_keeps_outputs(repo: Path):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    before = (repo / "data" / "processed" / "real_train.npz").read_bytes()
    params["subsets"]["settings"]["pct5"]["fraction"] = 0
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        proc = _run([sys.executable, "-m", "dvc", "repro"], repo, check=False)
        assert proc.returncode != 0
        assert "subsets.settings.pct5.fraction" in proc.stderr + proc.stdout
        assert (repo / "data" / "processed" / "real_train.npz").read_bytes() == before
    finally:
        params["subsets"]["settings"]["pct5"]["fraction"] = 0.05
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _commit(repo: Path) -> None:
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "results", "--allow-empty"], repo)


def test_verify_re_runs_everything_and_finds_it_identical(repo: Path, tmp_path: Path):
    """Determinism, through `cabinlift verify`: the whole pipeline re-run from nothing in a
    scratch copy (no DVC run cache, an empty run store) gives every output byte for byte."""
    _commit(repo)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = _run(["cabinlift", "verify", "--scratch", str(scratch), "--json"], repo)
    assert "DVC outputs: identical (" in proc.stderr, proc.stderr
    assert "Table 1: identical (" in proc.stderr and "differs in" not in proc.stderr
    result = json.loads(proc.stdout)
    assert result["identical"] and result["numerics"]["mode"] == "portable"
    # really re-ran: every run trained anew in the copy's own store
    assert len(list((scratch / ".cache" / "runs").glob("*.pt"))) == 2 * 59 + 3


def test_verify_of_one_stage_names_a_changed_cell(repo: Path):
    """A committed Table-1 cell that the code does not give: `cabinlift verify evaluate` re-runs
    evaluate alone on the committed inputs and names the cell, with its spread."""
    table = repo / "metrics" / "table1.json"
    original = table.read_text()
    cells = json.loads(original)
    cells["simplebl"]["scratch"]["subj4"] += 1.0
    table.write_text(json.dumps(cells, indent=2) + "\n")
    _commit(repo)
    try:
        proc = _run(["cabinlift", "verify", "evaluate"], repo, check=False)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "DVC outputs: 1 of 16 not identical" in proc.stdout, proc.stdout
        assert "  different metrics/table1.json" in proc.stdout
        line = next(ln for ln in proc.stdout.splitlines() if " subj4 " in ln)
        assert line.split()[:2] == ["simplebl", "scratch"] and line.split()[5] == "-1.00", line
    finally:
        table.write_text(original)
        _commit(repo)
