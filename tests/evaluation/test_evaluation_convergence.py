"""Per-cell convergence: runs stopped early, runs limited by the epoch budget, steps."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from evalgrid import SETTINGS, md_table

from cabinlift.errors import CabinliftError
from cabinlift.evaluation.aggregate import best_at_last_check


def _rec(stopped_early: bool, epochs: list[int], best: int) -> dict:
    return {"stopped_early": stopped_early, "best_epoch": best,
            "history": [{"epoch": e, "val_mpjpe": 1.0} for e in epochs]}


def test_best_at_last_check_by_hand() -> None:
    assert best_at_last_check(_rec(False, [5, 10, 15], 15))  # still improving at the end
    assert best_at_last_check(_rec(False, [0, 5, 10], 10))  # a start check changes nothing
    assert not best_at_last_check(_rec(False, [5, 10, 15], 10))  # ran out, but best earlier
    assert not best_at_last_check(_rec(True, [5, 10, 15], 15))  # stopped early
    assert not best_at_last_check(_rec(False, [], 0))  # never validated (before fine-tuning)


def test_convergence_table(evaluated: dict[str, Path]) -> None:
    """evalgrid: repetition 0 runs all epochs with its best at the last check, 1 stops early,
    2 runs all epochs with its best earlier; 50 % has repetitions 0-2, two subjects 0-1,
    eight subjects 0."""
    md = evaluated["table1.md"].read_text()
    rows = md_table(md, "## Convergence")
    cells = ["1 early / 1 at last / 3", "1 early / 1 at last / 2", "0 early / 1 at last / 1"]
    assert rows == [[label, *cells] for label in
                    ("SemGCN", "PT SemGCN", "SimpleBL", "PT SimpleBL")]
    assert "limited by the epoch budget" in md
    steps = md_table(md, "Optimiser steps per run, mean over runs")
    # 100 (rep + 1) steps, +7 for pre-trained runs
    assert steps[0] == ["SemGCN", "200", "150", "100"]
    assert steps[1] == ["PT SemGCN", "207", "157", "107"]
    assert ("Optimiser steps per run per setting (mean over the runs of every model and init): "
            "50% of a subject: 203.5; Two subjects: 153.5; Eight subjects: 103.5.") in md


def test_convergence_in_summary_and_runs_csv(evaluated: dict[str, Path]) -> None:
    summary = json.loads(evaluated["summary.json"].read_text())
    conv = summary["cells"]["simplebl"]["pretrained"]["pct50"]["convergence"]
    assert (conv["stopped_early"], conv["best_at_last_check"], conv["n"],
            conv["mean_steps"]) == (1, 1, 3, 207.0)
    assert [r["best_at_last_check"] for r in conv["runs"]] == [True, False, False]
    none = summary["cells"]["simplebl"]["pretrained"]["none"]["convergence"]
    assert (none["stopped_early"], none["best_at_last_check"], none["mean_steps"]) == (0, 0, 0.0)
    assert [summary["settings"][s]["steps_per_run"] for s in SETTINGS] == [203.5, 153.5, 103.5]

    rows = list(csv.DictReader(io.StringIO(evaluated["runs.csv"].read_text())))
    pct50 = [r for r in rows if (r["model"], r["init"], r["setting"]) ==
             ("semgcn", "scratch", "pct50")]
    assert [(r["steps"], r["stopped_early"], r["best_at_last_check"]) for r in pct50] == [
        ("100", "false", "true"), ("200", "true", "false"), ("300", "false", "false")]


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("steps", None, "lacks key 'steps'"),
        ("stopped_early", None, "lacks key 'stopped_early'"),
        ("stopped_early", 1, "key 'stopped_early' is 1, expected true or false"),
        ("steps", -3, "key 'steps' is -3, expected >= 0"),
        ("history", [{"val_mpjpe": 3.0}], r"history\[0\] is .* expected an object with an integer"),
    ],
)
def test_bad_convergence_record_is_an_error(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]],
    key: str, value: object, needle: str,
) -> None:
    root, test_npz = grid
    p = root / "scratch" / "simplebl" / "subj2" / "runs.json"
    runs = json.loads(p.read_text())
    if value is None:
        del runs[1][key]
    else:
        runs[1][key] = value
    p.write_text(json.dumps(runs))
    with pytest.raises(CabinliftError, match=r"simplebl/subj2/runs\.json: entry 1 " + needle):
        run_eval(root, test_npz, tmp_path)
