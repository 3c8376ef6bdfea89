"""End-to-end: a small hand-made grid of fine-tuning results -> every evaluate-stage output."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from evalgrid import (
    MODELS,
    NO_REAL_DATA_MPJPE,
    OFFSETS,
    SETTINGS,
    TRAIN_FRAMES,
    make_test_set,
    md_table,
    write_setting,
)

from cabinlift.config import INITS
from cabinlift.errors import CabinliftError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_table1_json_holds_the_mean_per_cell(evaluated: dict[str, Path]) -> None:
    got = json.loads(evaluated["table1.json"].read_text())
    expected = {
        m: {i: {s: round(float(np.mean(v)), 2) for s, v in OFFSETS[m][i].items()} for i in INITS}
        for m in MODELS
    }
    for m in MODELS:  # the pre-trained weights before fine-tuning, first
        expected[m]["pretrained"] = {"none": NO_REAL_DATA_MPJPE[m], **expected[m]["pretrained"]}
    mean_pose = got.pop("mean_pose")  # the reference row: tests in test_evaluation_reference
    assert got == expected  # masked joints (NaN truth, 1e6 predictions) changed nothing
    assert list(got) == MODELS and list(got["semgcn"]) == ["scratch", "pretrained"]
    assert list(got["semgcn"]["scratch"]) == list(SETTINGS)
    assert list(got["semgcn"]["pretrained"]) == ["none", *SETTINGS]
    assert list(mean_pose) == list(SETTINGS)
    assert got["semgcn"]["scratch"]["pct50"] == 40.11  # (30 + 40 + 50.333) / 3 rounded


def test_markdown_marks_best_per_column_and_overall(evaluated: dict[str, Path]) -> None:
    md = evaluated["table1.md"].read_text()
    assert "Average test-set MPJPE [mm] by amount of fine-tuning data" in md
    assert "| Model | No real data | 50% of a subject | Two subjects | Eight subjects |" in md
    rows = md_table(md, "## Average test-set MPJPE")
    assert [r[:2] + [c.rstrip("†") for c in r[2:]] for r in rows[:4]] == [
        ["SemGCN", "—", "40.1", "25.0", "15.0"],
        ["PT SemGCN", "**23.0**", "22.0", "19.0", "**<u>12.0</u>**"],
        ["SimpleBL", "—", "200.0", "25.5", "14.0"],
        ["PT SimpleBL", "60.0", "**21.0**", "**18.0**", "**<u>12.0</u>**"],
    ]
    assert rows[4][:2] == ["Mean training pose", "—"]  # the reference row, after the models


def test_markdown_spread_table_and_frames(evaluated: dict[str, Path]) -> None:
    md = evaluated["table1.md"].read_text()
    rows = md_table(md, "## Spread and significance")
    sem = rows[0]
    assert sem[0] == "SemGCN"
    assert sem[1] == "—"  # from scratch: no weights before fine-tuning
    assert sem[3] == "25.0 ± 7.1"  # std sqrt(50)
    assert sem[4] == "15.0"  # a single run has no spread
    assert rows[1][1] == "23.0"  # PT SemGCN before fine-tuning: one evaluation, no spread
    # no PT cell of this tiny grid is significant after Holm over 6 tests: no marks
    assert not any("*" in c for r in rows for c in r[1:])
    assert "Training frames per setting (mean over runs): 50% of a subject: 101; " in md
    assert "Eight subjects: 1600." in md


def test_runs_csv_one_sorted_row_per_run(evaluated: dict[str, Path]) -> None:
    rows = list(csv.DictReader(io.StringIO(evaluated["runs.csv"].read_text())))
    n_runs = sum(len(v) for m in MODELS for i in INITS for v in OFFSETS[m][i].values())
    assert n_runs == 24 and len(rows) == n_runs + len(MODELS)  # + one "none" row per model
    keys = [(r["model"], r["init"], r["setting"], int(r["repetition"])) for r in rows]
    expected = [
        (m, i, s, rep)
        for m in MODELS for i in INITS
        for s in (["none", *SETTINGS] if i == "pretrained" else SETTINGS)
        for rep in (range(1) if s == "none" else range(len(OFFSETS[m][i][s])))
    ]
    assert keys == expected  # runs were stored in reverse order; output is sorted
    first = rows[0]
    assert list(first) == [
        "model", "init", "setting", "repetition", "subjects", "train_subjects", "train_frames",
        "epochs_run", "best_epoch", "best_val_mpjpe", "test_mpjpe", "test_pmpjpe", "test_pck",
        "test_auc", "test_activity_macro", "steps", "stopped_early", "best_at_last_check",
    ]
    assert float(first["test_mpjpe"]) == pytest.approx(30.0, abs=1e-3)
    assert float(first["test_pck"]) == 100.0  # every error is 30 mm <= 150 mm
    assert float(first["test_activity_macro"]) == pytest.approx(30.0, abs=1e-3)
    # every error 21 mm; of the 31 thresholds 0, 5, ..., 150 the 26 from 25 mm on count it
    pt = next(r for r in rows if (r["model"], r["init"], r["setting"]) == (
        "simplebl", "pretrained", "pct50"))
    assert float(pt["test_auc"]) == pytest.approx(100 * 26 / 31, abs=1e-3)
    far = next(r for r in rows if (r["model"], r["init"], r["setting"], r["repetition"]) == (
        "simplebl", "scratch", "pct50", "2"))
    assert (float(far["test_pck"]), float(far["test_auc"])) == (0.0, 0.0)  # 300 mm off
    assert float(first["test_pmpjpe"]) == pytest.approx(0.0, abs=1e-3)  # a pure translation
    subj2 = next(r for r in rows if r["setting"] == "subj2")
    assert subj2["subjects"] == "1;2" and subj2["train_subjects"] == "2"


def test_summary_json(evaluated: dict[str, Path]) -> None:
    d = json.loads(evaluated["summary.json"].read_text())
    cell = d["cells"]["semgcn"]["scratch"]["subj2"]
    assert cell["n_runs"] == 2
    assert cell["mpjpe"]["mean"] == 25.0
    assert cell["mpjpe"]["std"] == pytest.approx(7.071, abs=1e-3)
    assert cell["mpjpe"]["ci95"] == pytest.approx(63.531, abs=1e-3)  # t(.975,1) * std / sqrt(2)
    assert cell["p_mpjpe"]["mean"] == pytest.approx(0.0, abs=1e-3)  # pure translations
    assert cell["pck"]["mean"] == 100.0
    assert cell["train_frames"] == TRAIN_FRAMES["subj2"] + 0.5
    assert list(cell["per_joint"]) == [
        "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
        "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip",
    ]
    assert all(v == pytest.approx(25.0, abs=1e-3) for v in cell["per_joint"].values())
    assert set(cell["per_activity"]) == {"eating", "drinking", "<unknown>"}
    assert cell["activity_macro"]["mean"] == pytest.approx(25.0, abs=1e-3)
    single = d["cells"]["simplebl"]["pretrained"]["subj8"]
    assert single["mpjpe"]["std"] is None and single["mpjpe"]["ci95"] is None
    assert d["tables"]["mpjpe"]["semgcn"]["scratch"]["pct50"] == pytest.approx(40.111, abs=1e-3)
    assert set(d["tables"]) == {"mpjpe", "p_mpjpe", "pck", "auc", "activity_macro"}
    assert d["pretrain"] == {
        "semgcn": {"best_val_mpjpe": 33.0, "test_mpjpe": 44.0, "epochs_run": 50,
                   "train_frames": 1000}
    }
    q = d["qualitative"]
    assert (q["model"], q["inits"], q["valid_joints"]) == (
        "semgcn", ["scratch", "pretrained"], 13
    )
    assert q["frame_mpjpe"] == {  # repetition 0 of each setting
        "scratch": {"pct50": 30.0, "subj2": 20.0, "subj8": 15.0},
        "pretrained": {"pct50": 20.0, "subj2": 18.0, "subj8": 12.0},
    }


def test_paired_tests_in_summary(evaluated: dict[str, Path]) -> None:
    from scipy import stats

    tests = json.loads(evaluated["summary.json"].read_text())["paired_tests"]
    t = tests["semgcn"]["pct50"]
    diffs = np.array([20 - 30, 22 - 40, 24 - 50.333])  # pre-trained − scratch per repetition
    mean, sd = diffs.mean(), diffs.std(ddof=1)
    t_stat = mean / (sd / np.sqrt(3))
    assert (t["paired_by"], t["n_pairs"], t["unpaired_runs"]) == ("subject", 3, 0)
    assert t["mean_diff"] == pytest.approx(mean, abs=1e-3)
    assert t["std_diff"] == pytest.approx(sd, abs=1e-3)
    assert t["t"] == pytest.approx(t_stat, abs=1e-3)
    assert t["p_t"] == pytest.approx(2 * stats.t.sf(abs(t_stat), 2), rel=1e-3)  # 4 digits
    assert t["p_wilcoxon"] == pytest.approx(0.25, abs=1e-6)  # 3 negative pairs: 2 / 2**3
    assert [p["subjects"] for p in t["pairs"]] == [[1], [2], [3]]
    s2 = tests["simplebl"]["subj2"]
    assert s2["paired_by"] == "subject combination"
    assert s2["mean_diff"] == pytest.approx(-7.5)  # (17-25 + 19-26) / 2
    one = tests["simplebl"]["subj8"]
    assert (one["n_pairs"], one["p_t"], one["ci95"]) == (1, None, None)
    assert one["mean_diff"] == pytest.approx(-2.0)
    # Holm over the 4 defined tests: the smallest p times 4 (p values are stored rounded)
    ps = sorted(v["p_t"] for m in tests.values() for v in m.values() if v["p_t"] is not None)
    holm = sorted(v["p_holm"] for m in tests.values() for v in m.values()
                  if v["p_holm"] is not None)
    assert len(ps) == 4  # subj8 has a single run per side in both models
    assert holm[0] == pytest.approx(min(1.0, 4 * ps[0]), rel=1e-3)


def test_plot_data_csv(evaluated: dict[str, Path]) -> None:
    rows = list(csv.DictReader(io.StringIO(evaluated["mpjpe_vs_data.csv"].read_text())))
    assert [r["setting"] for r in rows] == list(SETTINGS)
    assert list(rows[0])[:5] == [
        "setting", "train_frames", "semgcn_scratch", "semgcn_scratch_lo", "semgcn_scratch_hi",
    ]
    assert float(rows[0]["train_frames"]) == 101.0
    assert float(rows[2]["simplebl_scratch"]) == 14.0
    assert rows[2]["simplebl_scratch_lo"] == ""  # a single run has no CI
    lo, hi = float(rows[1]["semgcn_scratch_lo"]), float(rows[1]["semgcn_scratch_hi"])
    assert (lo + hi) / 2 == pytest.approx(25.0) and hi - lo == pytest.approx(2 * 63.531, abs=1e-2)
    gain = list(csv.DictReader(io.StringIO(evaluated["pretraining_gain.csv"].read_text())))
    assert float(gain[0]["simplebl"]) == pytest.approx(200.0 - 21.0)  # scratch − PT
    assert gain[2]["simplebl_lo"] == ""
    joints = list(csv.DictReader(io.StringIO(evaluated["per_joint.csv"].read_text())))
    assert [r["joint"] for r in joints][:2] == ["nose", "l_eye"] and len(joints) == 13
    # default per-joint setting: the first with > 1 run (no single-subject full setting here)
    assert float(joints[0]["semgcn_scratch"]) == pytest.approx(40.111, abs=1e-3)


def test_without_the_checkpoints_weight_movement_is_reported_as_not_measured(
        evaluated: dict[str, Path]) -> None:
    # (measured: tests/evaluation/test_weight_movement.py)
    assert json.loads(evaluated["summary.json"].read_text())["weight_movement"] is None
    assert "Not measured: the evaluation was not given the pre-training checkpoints." in \
        evaluated["table1.md"].read_text()
    assert evaluated["weight_movement.csv"].read_text() == "setting,train_frames\n"
    assert evaluated["weight_movement.png"].read_bytes().startswith(PNG_MAGIC)


def test_pngs_exist_and_are_png(evaluated: dict[str, Path]) -> None:
    for name in ("mpjpe_vs_data.png", "pretraining_gain.png", "per_joint.png", "qualitative.png"):
        data = evaluated[name].read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_outputs_are_deterministic(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    a = run_eval(root, test_npz, tmp_path / "a")
    b = run_eval(root, test_npz, tmp_path / "b")
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes(), name


def test_configured_qualitative_frame(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    out = run_eval(root, test_npz, tmp_path, qualitative={
        "model": "simplebl", "inits": ["scratch"], "file_id": "vp12/run1", "frame_id": 25,
    })
    q = json.loads(out["summary.json"].read_text())["qualitative"]
    assert (q["file_id"], q["frame_id"], q["subject"], q["how"]) == (
        "vp12/run1", 25, 12, "configured"
    )
    assert q["frame_mpjpe"] == {"scratch": {"pct50": 100.0, "subj2": 25.0, "subj8": 14.0}}
    drawn = json.loads(out["qualitative.json"].read_text())
    assert [e["setting"] for e in drawn["estimates"]] == list(SETTINGS)
    assert drawn["valid"] == [True] * 13


@pytest.mark.parametrize(
    ("qualitative", "needle"),
    [
        # the choices themselves are checked in params.yaml (tests/test_config.py); a frame that
        # the test set does not hold is found only here
        ({"file_id": "nope", "frame_id": 1}, "no frame with file_id 'nope'"),
    ],
)
def test_bad_qualitative_config(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]],
    qualitative: dict, needle: str,
) -> None:
    root, test_npz = grid
    with pytest.raises(CabinliftError, match=needle):
        run_eval(root, test_npz, tmp_path, qualitative=qualitative)


def _runs_path(root: Path) -> Path:
    return root / "pretrained" / "simplebl" / "subj2" / "runs.json"


def test_stale_runs_json_is_an_error_naming_the_directory(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    p = _runs_path(root)
    runs = json.loads(p.read_text())
    runs[0]["test_mpjpe"] += 0.5
    p.write_text(json.dumps(runs))
    with pytest.raises(CabinliftError, match=r"pretrained/simplebl/subj2.*test_mpjpe"):
        run_eval(root, test_npz, tmp_path)


def test_prediction_count_mismatch_names_the_file(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    p = _runs_path(root).with_name("predictions.npz")
    with np.load(p) as z:
        pred, rep = z["pred"], z["repetition"]
    np.savez(p, pred=pred[:1], repetition=rep[:1])
    with pytest.raises(CabinliftError, match=r"subj2/predictions\.npz: holds 1 predictions"):
        run_eval(root, test_npz, tmp_path)


def test_prediction_frame_mismatch_names_the_file(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    p = _runs_path(root).with_name("predictions.npz")
    with np.load(p) as z:
        pred, rep = z["pred"], z["repetition"]
    np.savez(p, pred=pred[:, :-1], repetition=rep)
    with pytest.raises(CabinliftError, match=r"predictions\.npz: 'pred' has 9 frames, expected 10"):
        run_eval(root, test_npz, tmp_path)


def test_repetition_order_mismatch_is_an_error(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    p = _runs_path(root).with_name("predictions.npz")
    with np.load(p) as z:
        pred, rep = z["pred"], z["repetition"]
    np.savez(p, pred=pred, repetition=rep[::-1])
    with pytest.raises(CabinliftError, match=r"predictions\.npz: 'repetition' is"):
        run_eval(root, test_npz, tmp_path)


def test_misplaced_runs_json_is_an_error(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    p = _runs_path(root)
    runs = json.loads(p.read_text())
    runs[1]["setting"] = "subj4"
    p.write_text(json.dumps(runs))
    with pytest.raises(CabinliftError, match=r"runs\.json: entry 1 has setting 'subj4'"):
        run_eval(root, test_npz, tmp_path)


def test_missing_setting_directory_is_an_error(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    settings = {**SETTINGS, "subj4": {"subjects": 4, "fraction": 1.0, "repetitions": 8}}
    (test_npz.with_name("subsets") / "subj4.json").write_text(json.dumps(
        {"setting": "subj4", "runs": [{"repetition": 0, "subset": 0, "seed": 0,
                                       "subjects": [1, 2, 3, 4], "indices": list(range(16))}]}))
    with pytest.raises(CabinliftError, match=r"scratch/semgcn/subj4: directory not found"):
        run_eval(root, test_npz, tmp_path, settings=settings)


def test_test_set_missing_key_is_an_error(tmp_path: Path, run_eval) -> None:
    test_npz = tmp_path / "real_test.npz"
    arrays = make_test_set(test_npz)
    del arrays["activity"]
    np.savez(test_npz, **arrays)
    with pytest.raises(CabinliftError, match=r"real_test\.npz: missing array 'activity'"):
        run_eval(tmp_path / "finetuned", test_npz, tmp_path)


def test_a_failed_evaluation_leaves_previous_outputs_untouched(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    out = run_eval(root, test_npz, tmp_path / "out")
    before = {name: p.read_bytes() for name, p in out.items()}
    test = dict(np.load(test_npz))
    write_setting(root, "simplebl", "pretrained", "subj8", [99.0], test)
    p = root / "pretrained" / "simplebl" / "subj8" / "runs.json"
    runs = json.loads(p.read_text())
    runs[0]["test_mpjpe"] = 12.0  # stale record
    p.write_text(json.dumps(runs))
    with pytest.raises(CabinliftError):
        run_eval(root, test_npz, tmp_path / "out")
    assert {name: p.read_bytes() for name, p in out.items()} == before
    leftovers = [f for d in ("metrics", "plots") for f in (tmp_path / "out" / d).iterdir()
                 if f.name.startswith(".")]
    assert leftovers == []


def test_run_count_differing_from_repetitions_is_noted(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    settings = {**SETTINGS, "subj2": {**SETTINGS["subj2"], "repetitions": 8}}
    out = run_eval(root, test_npz, tmp_path, settings=settings)
    md = out["table1.md"].read_text()
    assert "Runs differing from the configured repetitions: SemGCN / Two subjects: 2 of 8;" in md


def test_wall_times_go_to_their_own_file(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    out = run_eval(root, test_npz, tmp_path, wall_times=tmp_path / "logs" / "wall_times.csv")
    rows = list(csv.DictReader(io.StringIO(out["wall_times.csv"].read_text())))
    assert len(rows) == 24
    first = rows[0]
    assert (first["model"], first["init"], first["setting"], first["repetition"]) == (
        "semgcn", "scratch", "pct50", "0")
    assert first["wall_time_s"] == "1.50"  # as logged (evalgrid: 1.5 + repetition)
    assert "wall_time_s" not in out["runs.csv"].read_text()
