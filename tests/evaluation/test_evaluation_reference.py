"""The mean-training-pose reference row and the marks on the cells above it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from evalgrid import MODELS, SETTINGS, SUBSET_ROWS, J, md_table, mean_pose_by_hand

from cabinlift.errors import CabinliftError
from cabinlift.evaluation.loading import TestSet
from cabinlift.evaluation.reference import constant_pose_mpjpe, mean_pose, mean_pose_references
from cabinlift.evaluation.settings import Setting


def _tiny() -> tuple[np.ndarray, np.ndarray, TestSet]:
    """Three training frames and two test frames, worked out by hand.

    Training: joint 0 at x = 0, 30, 60 (mean (30, 0, 0)); joint 1 at (100, 0, 0), unannotated
    (absurd value), (200, 0, 0) (mean (150, 0, 0)); joint 2 never annotated (at the neck,
    (0, 0, 0)); every other joint at the origin.
    Test (only joints 0-2 annotated, joint 1 not in frame 1): frame 0 joint 0 (30, 40, 0) ->
    40 mm, joint 1 (150, 0, 0) -> 0, joint 2 (3, 4, 0) -> 5; frame 1 joint 0 (0, 0, 0) -> 30,
    joint 2 (0, 0, 12) -> 12. MPJPE (40 + 0 + 5 + 30 + 12) / 5 = 17.4 mm.
    """
    y = np.zeros((3, J, 3))
    y[:, 0, 0] = [0.0, 30.0, 60.0]
    y[:, 1, 0] = [100.0, 1e6, 200.0]
    y[:, 2] = 5e5
    mask = np.ones((3, J), dtype=bool)
    mask[1, 1] = False
    mask[:, 2] = False
    ty = np.zeros((2, J, 3))
    ty[0, 0] = [30.0, 40.0, 0.0]
    ty[0, 1] = [150.0, 0.0, 0.0]
    ty[0, 2] = [3.0, 4.0, 0.0]
    ty[1, 2] = [0.0, 0.0, 12.0]
    ty[1, 1] = [9e9, 0.0, 0.0]  # not annotated: must not count
    tmask = np.zeros((2, J), dtype=bool)
    tmask[0, :3] = True
    tmask[1, [0, 2]] = True
    test = TestSet(Path("real_test.npz"), np.zeros((2, J, 2)), np.where(tmask[..., None], ty, 0.0),
                   tmask, np.array([11, 11]), np.array([0, 1]), np.array(["f", "f"]),
                   np.array(["", ""]))
    return y, mask, test


def test_mean_pose_and_its_mpjpe_by_hand() -> None:
    y, mask, test = _tiny()
    pose, seen = mean_pose(y, mask)
    assert pose[0].tolist() == [30.0, 0.0, 0.0]
    assert pose[1].tolist() == [150.0, 0.0, 0.0]  # the unannotated 1e6 is left out
    assert pose[2].tolist() == [0.0, 0.0, 0.0] and not seen[2]  # never annotated: the neck
    assert seen.sum() == J - 1
    assert constant_pose_mpjpe(pose, test) == pytest.approx(17.4)


def test_mean_pose_reference_from_the_files(tmp_path: Path) -> None:
    """The same worked example through real_train.npz and a subset file; the run's indices
    pick the rows (rows 3 and 4 of the pool belong to no run)."""
    y, mask, test = _tiny()
    pool_y = np.concatenate([y, np.full((2, J, 3), 777.0)]).astype(np.float32)
    pool_mask = np.concatenate([mask, np.ones((2, J), dtype=bool)])
    np.savez(tmp_path / "real_train.npz", x2d=np.zeros((5, J, 2), np.float32), y3d=pool_y,
             mask=pool_mask)
    subsets = tmp_path / "subsets"
    subsets.mkdir()
    (subsets / "a.json").write_text(json.dumps({"setting": "a", "runs": [
        {"repetition": 1, "subset": 1, "seed": 0, "subjects": [2], "indices": [3, 4]},  # order
        {"repetition": 0, "subset": 0, "seed": 0, "subjects": [1], "indices": [0, 1, 2]},
    ]}))
    refs = mean_pose_references(tmp_path / "real_train.npz", subsets,
                                [Setting("a", 1, 0.5, 2)], test)
    ref = refs["a"]
    assert [r.repetition for r in ref.runs] == [0, 1]
    assert ref.runs[0].mpjpe == pytest.approx(17.4)
    assert ref.runs[0].unseen_joints == ["r_eye"] and ref.runs[0].train_frames == 3
    # run 1 predicts (777, 777, 777) at every joint
    far = np.linalg.norm(np.array([777.0] * 3) - test.y3d, axis=-1)[test.mask].mean()
    assert ref.runs[1].mpjpe == pytest.approx(far)
    assert ref.mean == pytest.approx((17.4 + far) / 2)


def _expected_reference(test_npz: Path) -> dict[str, float]:
    """Mean over each setting's runs of the MPJPE of the hand-derived mean poses."""
    with np.load(test_npz) as z:
        y, mask = z["y3d"].astype(np.float64), z["mask"]
    out = {}
    for s, runs in SUBSET_ROWS.items():
        errs = [np.linalg.norm(mean_pose_by_hand(s, r) - y, axis=-1)[mask].mean()
                for r in range(len(runs))]
        out[s] = float(np.mean(errs))
    return out


def test_table1_json_holds_the_mean_pose_row(tmp_path: Path, run_eval, grid) -> None:
    root, test_npz = grid
    out = run_eval(root, test_npz, tmp_path)
    got = json.loads(out["table1.json"].read_text())
    expected = _expected_reference(test_npz)
    assert list(got) == [*MODELS, "mean_pose"]
    assert got["mean_pose"] == {s: round(v, 2) for s, v in expected.items()}
    summary = json.loads(out["summary.json"].read_text())["mean_pose"]
    assert summary["pct50"]["mpjpe"]["n"] == 3
    assert summary["pct50"]["mpjpe"]["mean"] == pytest.approx(expected["pct50"], abs=1e-3)
    runs = summary["pct50"]["runs"]
    assert [r["unseen_joints"] for r in runs] == [[], [], ["r_hip"]]
    assert [r["train_frames"] for r in runs] == [2, 2, 2]
    assert summary["subj8"]["mpjpe"]["std"] is None  # a single run


def test_cells_above_the_reference_are_marked(evaluated: dict[str, Path]) -> None:
    """The grid's references are 32.7-33.6 mm: from-scratch 50 % cells (40.1 and 200.0) are
    above theirs, every other cell (at most 25.5) below."""
    md = evaluated["table1.md"].read_text()
    rows = md_table(md, "## Average test-set MPJPE")
    assert rows[0] == ["SemGCN", "—", "40.1†", "25.0", "15.0"]
    assert rows[2] == ["SimpleBL", "—", "200.0†", "25.5", "14.0"]
    assert not any("†" in c for r in (rows[1], rows[3]) for c in r)
    expected = _expected_reference(evaluated["table1.json"].parent.parent / "data"
                                   / "real_test.npz")
    assert rows[4] == ["Mean training pose", "—", *(f"{expected[s]:.1f}" for s in SETTINGS)]
    assert "†: the cell is above that reference, so its runs learned less than a constant" in md
    marked = json.loads(evaluated["summary.json"].read_text())["above_mean_pose"]
    assert marked == [{"model": "semgcn", "init": "scratch", "setting": "pct50"},
                      {"model": "simplebl", "init": "scratch", "setting": "pct50"}]


def test_mean_pose_curve_in_the_plot_data(evaluated: dict[str, Path]) -> None:
    rows = list(csv.DictReader(io.StringIO(evaluated["mpjpe_vs_data.csv"].read_text())))
    expected = _expected_reference(evaluated["table1.json"].parent.parent / "data"
                                   / "real_test.npz")
    assert [float(r["mean_pose"]) for r in rows] == pytest.approx(
        [expected[s] for s in SETTINGS], abs=1e-3)
    assert rows[2]["mean_pose_lo"] == ""  # a single run has no CI


def test_missing_subset_file_is_an_error_naming_it(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    (test_npz.with_name("subsets") / "subj2.json").unlink()
    with pytest.raises(CabinliftError, match=r"subsets/subj2\.json: subset file not found"):
        run_eval(root, test_npz, tmp_path)


def test_subset_indices_outside_the_pool_are_an_error(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    path = test_npz.with_name("subsets") / "pct50.json"
    doc = json.loads(path.read_text())
    doc["runs"][1]["indices"] = [4, 32]  # the pool has 32 rows
    path.write_text(json.dumps(doc))
    with pytest.raises(CabinliftError, match=r"pct50\.json: runs\[1\] .*outside the 32 rows"):
        run_eval(root, test_npz, tmp_path)


def test_subset_file_of_another_setting_is_an_error(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    subsets = test_npz.with_name("subsets")
    (subsets / "subj2.json").write_text((subsets / "subj8.json").read_text())
    with pytest.raises(CabinliftError, match=r"subj2\.json: holds setting 'subj8'"):
        run_eval(root, test_npz, tmp_path)


def _scratch_cells(runs: dict[str, list[tuple[int, int, float]]]) -> dict:
    """Scratch cells of one model ``m`` from ``(repetition, steps, mpjpe)`` per setting."""
    from cabinlift.evaluation.aggregate import CellSummary, RunResult, Stat

    cells = {}
    for name, rows in runs.items():
        results = [RunResult({"repetition": rep, "steps": steps}, mm, 0.0, 0.0, 0.0, 0.0,
                             np.zeros(J), {}) for rep, steps, mm in rows]
        cells["m", "scratch", name] = CellSummary(
            "m", "scratch", name, results, {"mpjpe": Stat.of([r.mpjpe for r in results])},
            np.zeros(J), np.zeros(J), {}, 0.0)
    return cells


def _references(values: dict[str, list[float]]) -> dict:
    from cabinlift.evaluation.aggregate import Stat
    from cabinlift.evaluation.reference import MeanPoseReference, MeanPoseRun

    return {name: MeanPoseReference(name, [MeanPoseRun(rep, [1], 10, mm, [])
                                           for rep, mm in enumerate(mms)], Stat.of(mms))
            for name, mms in values.items()}


def test_scratch_bound_is_the_fewest_steps_of_a_run_below_its_own_constant() -> None:
    from cabinlift.evaluation.results import scratch_bound
    from cabinlift.evaluation.table import scratch_sentence

    settings = [Setting("a", 1, 0.1, 2), Setting("b", 2, 1.0, 2)]
    # setting a: 10 and 12 steps, both above their own reference (repetition 1's reference
    # 150 is above the setting mean 125 that the table row shows: the comparison is per run);
    # setting b: 40 steps below its reference, 30 steps above
    cells = _scratch_cells({"a": [(0, 10, 120.0), (1, 12, 140.0)],
                            "b": [(0, 40, 60.0), (1, 30, 90.0)]})
    refs = _references({"a": [100.0, 150.0], "b": [80.0, 85.0]})
    bound = scratch_bound(cells, ["m"], settings, refs)
    # repetition 1 of a (140 < 150) beats its own constant with 12 steps: the fewest
    assert (bound.fewest_steps, bound.runs_fewer, bound.runs, bound.most_steps) == (12, 1, 4, 40)
    assert scratch_sentence(bound).startswith("No run from scratch with fewer than 12 gradient steps")
    assert "(1 of 4 scratch runs had fewer)" in scratch_sentence(bound)
    refs = _references({"a": [100.0, 130.0], "b": [50.0, 85.0]})
    bound = scratch_bound(cells, ["m"], settings, refs)
    assert (bound.fewest_steps, bound.runs_fewer) == (None, 4)
    assert "(up to 40 gradient steps)" in scratch_sentence(bound)
