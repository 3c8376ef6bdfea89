"""The "No real data" column: every pre-trained checkpoint evaluated before fine-tuning."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from evalgrid import MODELS, NO_REAL_DATA_MPJPE, SETTINGS, md_table

from cabinlift.errors import CabinliftError


def test_no_real_data_column_in_table1(evaluated: dict[str, Path]) -> None:
    md = evaluated["table1.md"].read_text()
    rows = md_table(md, "## Average test-set MPJPE")
    # PT rows only; the best of the column (23.0) bold; scratch rows have none
    assert [r[:2] for r in rows[:4]] == [
        ["SemGCN", "—"], ["PT SemGCN", "**23.0**"], ["SimpleBL", "—"], ["PT SimpleBL", "60.0"],
    ]
    pmpjpe = md_table(md, "## P-MPJPE")
    assert [r[1] for r in pmpjpe] == ["—", "0.0", "—", "0.0"]  # pure translations
    pck = md_table(md, "## 3DPCK@150")
    assert [r[1] for r in pck] == ["—", "100.0", "—", "100.0"]  # every error 23 or 60 mm
    gain = md_table(md, "## Pre-training effect")
    assert all(len(r) == 1 + len(SETTINGS) for r in gain)  # no scratch partner: no column
    table = json.loads(evaluated["table1.json"].read_text())
    assert {m: table[m]["pretrained"]["none"] for m in MODELS} == NO_REAL_DATA_MPJPE
    assert "none" not in table["semgcn"]["scratch"]


def test_no_real_data_in_summary_runs_csv_and_plot_data(evaluated: dict[str, Path]) -> None:
    summary = json.loads(evaluated["summary.json"].read_text())
    cell = summary["cells"]["simplebl"]["pretrained"]["none"]
    assert (cell["label"], cell["n_runs"], cell["train_frames"]) == ("No real data", 1, 0.0)
    assert cell["mpjpe"] == {"mean": 60.0, "std": None, "ci95": None, "n": 1}
    assert list(summary["cells"]["simplebl"]["pretrained"]) == ["none", *SETTINGS]
    assert summary["tables"]["mpjpe"]["semgcn"]["pretrained"]["none"] == 23.0
    assert "none" not in summary["tables"]["mpjpe"]["semgcn"]["scratch"]
    assert "none" not in summary["paired_tests"]["semgcn"]

    rows = list(csv.DictReader(io.StringIO(evaluated["runs.csv"].read_text())))
    none = [r for r in rows if r["setting"] == "none"]
    assert [(r["model"], r["init"], r["repetition"]) for r in none] == [
        ("semgcn", "pretrained", "0"), ("simplebl", "pretrained", "0")]
    assert none[1]["test_mpjpe"] == "60.0000"
    assert (none[1]["subjects"], none[1]["train_subjects"], none[1]["train_frames"],
            none[1]["steps"]) == ("", "0", "0", "0")

    curve = list(csv.DictReader(io.StringIO(evaluated["mpjpe_vs_data.csv"].read_text())))
    assert [r["semgcn_pretrained_none"] for r in curve] == ["23.000"] * len(SETTINGS)
    assert [r["simplebl_pretrained_none"] for r in curve] == ["60.000"] * len(SETTINGS)


def test_wall_times_list_training_runs_only(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    out = run_eval(root, test_npz, tmp_path, wall_times=tmp_path / "wall_times.csv")
    assert ",none," not in out["wall_times.csv"].read_text()


def test_missing_no_real_data_is_an_error_saying_what_to_rerun(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    shutil.rmtree(root / "pretrained" / "simplebl" / "none")
    with pytest.raises(CabinliftError, match=r"pretrained/simplebl/none: directory not found"
                       r".*re-run `dvc repro finetune_pretrained@simplebl`"):
        run_eval(root, test_npz, tmp_path)


def test_no_real_data_with_training_frames_is_an_error(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    root, test_npz = grid
    p = root / "pretrained" / "semgcn" / "none" / "runs.json"
    runs = json.loads(p.read_text())
    runs[0]["train_frames"] = 5
    p.write_text(json.dumps(runs))
    with pytest.raises(CabinliftError, match=r"none/runs\.json: expected 1 run\(s\) with "
                       r"train_frames 0 .*'pretrain.seeds' is 1\), found 1 run\(s\) with "
                       r"train_frames \[5\]"):
        run_eval(root, test_npz, tmp_path)


def _pretrainings(root: Path, model: str, offsets: list[float], test_npz: Path) -> None:
    """``pretrained/<model>/none/`` with one run per pre-training, run j off by offsets[j]."""
    from evalgrid import shifted

    test = dict(np.load(test_npz))
    d = root / "pretrained" / model / "none"
    runs = json.loads((d / "runs.json").read_text())
    runs = [{**runs[0], "repetition": j, "pretrain_seed": j, "test_mpjpe": off}
            for j, off in enumerate(offsets)]
    (d / "runs.json").write_text(json.dumps(runs))
    np.savez(d / "predictions.npz",
             pred=np.stack([shifted(test["y3d"], test["mask"], off) for off in offsets]),
             repetition=np.arange(len(offsets)))


def test_every_pretraining_is_a_run_of_the_no_real_data_cell(
    grid: tuple[Path, Path], tmp_path: Path, run_eval: Callable[..., dict[str, Path]]
) -> None:
    """Three pre-trainings 10, 20 and 60 mm off: the cell is their mean, 30.0 ± 26.5 (sample
    std), and each is a row of runs.csv."""
    root, test_npz = grid
    for model in ("semgcn", "simplebl"):
        _pretrainings(root, model, [10.0, 20.0, 60.0], test_npz)
    with pytest.raises(CabinliftError, match=r"expected 1 run\(s\) .* found 3 run\(s\)"):
        run_eval(root, test_npz, tmp_path)
    out = run_eval(root, test_npz, tmp_path, pretrain_seeds=3)
    table = json.loads(out["table1.json"].read_text())
    assert table["semgcn"]["pretrained"]["none"] == 30.0
    spread = md_table(out["table1.md"].read_text(), "## Spread and significance")
    assert spread[1][:2] == ["PT SemGCN", "30.0 ± 26.5"]
    rows = [r for r in out["runs.csv"].read_text().splitlines() if ",none," in r]
    assert len(rows) == 6


def test_none_is_not_a_setting_name() -> None:
    from cliutil import typed

    from cabinlift import config

    raw = config.read_yaml("params.yaml")
    raw["subsets"]["settings"]["none"] = {"subjects": 1, "fraction": 0.5, "repetitions": 1}
    with pytest.raises(CabinliftError, match="'none' is reserved"):
        typed(raw, settings=["pct5", "none"])
