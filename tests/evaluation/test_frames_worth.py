"""What pre-training is worth in real frames, on made-up scratch curves with answers by hand."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from evalgrid import TRAIN_FRAMES

from cabinlift.evaluation.aggregate import CellSummary, Stat
from cabinlift.evaluation.frames_worth import (
    AT_MOST,
    INTERPOLATED,
    MORE_THAN,
    FrameCount,
    ScratchPoint,
    cell_worth,
    first_not_significant,
    model_worth,
    scratch_frames_to_reach,
)
from cabinlift.evaluation.paired import PairedTest
from cabinlift.evaluation.settings import Setting
from cabinlift.evaluation.table import _worth_cell

#: Scratch means 100, 80, 60 mm at 100, 1000, 10000 frames: one decade per setting.
CURVE = [ScratchPoint(100.0, 100.0), ScratchPoint(1000.0, 80.0), ScratchPoint(10000.0, 60.0)]


def _cell(mean: float, ci95: float | None, frames: float, setting: str = "s",
          init: str = "pretrained") -> CellSummary:
    """A cell with only what frames_worth reads: its mean MPJPE, CI and training frames."""
    nan = float("nan")
    stat = Stat(mean, None if ci95 is None else 1.0, ci95, 1 if ci95 is None else 3)
    return CellSummary(model="m", init=init, setting=setting, runs=[], stats={"mpjpe": stat},
                       per_joint=np.full(13, nan), per_joint_ci95=np.full(13, nan),
                       per_activity={}, train_frames=frames)


def _test(p_holm: float | None, setting: str = "s") -> PairedTest:
    return PairedTest(model="m", setting=setting, paired_by="subject", pairs=[], unpaired=0,
                      mean_diff=None, std_diff=None, ci95=None, t=None, p_t=None,
                      p_wilcoxon=None, p_holm=p_holm)


def test_crossing_is_interpolated_in_log_frames() -> None:
    # 70 mm is halfway from 80 to 60, so halfway in log(frames) from 1000 to 10000
    got = scratch_frames_to_reach(70.0, CURVE)
    assert got.bound == INTERPOLATED
    assert got.frames == pytest.approx(math.sqrt(1000.0 * 10000.0))  # 3162.3, not 5500
    # a quarter of the way from 100 to 80 mm: 10 ** 2.25
    assert scratch_frames_to_reach(95.0, CURVE).frames == pytest.approx(10 ** 2.25)
    # exactly a setting's mean: that setting's frames
    assert scratch_frames_to_reach(80.0, CURVE) == FrameCount(pytest.approx(1000.0))


def test_the_curve_is_read_in_order_of_frames() -> None:
    assert scratch_frames_to_reach(70.0, CURVE[::-1]).frames == pytest.approx(
        math.sqrt(1000.0 * 10000.0))


def test_a_target_below_the_whole_curve_is_more_than_the_largest_setting() -> None:
    assert scratch_frames_to_reach(50.0, CURVE) == FrameCount(10000.0, MORE_THAN)


def test_a_target_reached_at_the_smallest_setting_is_at_most_it() -> None:
    assert scratch_frames_to_reach(110.0, CURVE) == FrameCount(100.0, AT_MOST)
    assert scratch_frames_to_reach(100.0, CURVE) == FrameCount(100.0, AT_MOST)


def test_a_non_monotone_curve_gives_its_first_crossing() -> None:
    # down to 60, back up to 90, down to 50: 70 mm is first reached between 100 and 1000
    # frames, three quarters of the way (100 -> 60), i.e. at 10 ** 2.75; the last crossing,
    # between 10000 and 100000 frames, would be 10 ** 4.5
    curve = [ScratchPoint(100.0, 100.0), ScratchPoint(1000.0, 60.0),
             ScratchPoint(10000.0, 90.0), ScratchPoint(100000.0, 50.0)]
    assert scratch_frames_to_reach(70.0, curve).frames == pytest.approx(10 ** 2.75)


def test_interval_from_the_cells_ci95() -> None:
    # 70 ± 10 mm: the worse end (80 mm) needs 1000 frames, the better end (60 mm) 10000
    w = cell_worth(_cell(70.0, 10.0, frames=1000.0), CURVE)
    assert w.equivalent.frames == pytest.approx(math.sqrt(1e7))
    assert (w.low.frames, w.high.frames) == (pytest.approx(1000.0), pytest.approx(10000.0))
    assert w.ratio == FrameCount(pytest.approx(math.sqrt(10.0)))  # 3162.3 per 1000 frames
    # 70 ± 15 mm: 85 mm is three quarters from 100 to 80 mm; 55 mm is below the curve
    wide = cell_worth(_cell(70.0, 15.0, frames=1000.0), CURVE)
    assert wide.low.frames == pytest.approx(10 ** 2.75) and wide.low.bound == INTERPOLATED
    assert wide.high == FrameCount(10000.0, MORE_THAN)


def test_bounds_carry_into_the_ratio_and_a_single_run_has_no_interval() -> None:
    w = cell_worth(_cell(50.0, None, frames=20.0), CURVE)
    assert w.equivalent == FrameCount(10000.0, MORE_THAN)
    assert (w.low, w.high) == (None, None)
    assert w.ratio == FrameCount(500.0, MORE_THAN)  # more than 500 times its own frames
    # no real data: no frames of its own to divide by
    assert cell_worth(_cell(70.0, 1.0, frames=0.0), CURVE).ratio is None


def test_first_setting_whose_gain_is_not_significant() -> None:
    small, mid, large = (Setting(n, 1, f, 3) for n, f in (("a", 0.1), ("b", 0.5), ("c", 1.0)))
    tests = [(large, 1000.0, _test(0.3)), (small, 10.0, _test(0.001)),
             (mid, 100.0, _test(0.2))]  # given out of order: read by frames
    assert first_not_significant(tests, alpha=0.05) is mid
    assert first_not_significant(tests, alpha=0.5) is None  # every one significant
    # a test that cannot be computed (one pair) is no evidence of a gain
    assert first_not_significant([(small, 10.0, _test(None))], alpha=0.05) is small
    # at the level itself a p is not below it
    assert first_not_significant([(small, 10.0, _test(0.05))], alpha=0.05) is small


def test_model_worth_reads_the_models_own_scratch_curve() -> None:
    settings = [Setting(n, 1, 1.0, 3) for n in ("s100", "s1000", "s10000")]
    cells = {("m", "scratch", s.name): _cell(p.mpjpe, 1.0, p.frames, s.name, "scratch")
             for s, p in zip(settings, CURVE, strict=True)}
    pt_means = {"none": 95.0, "s100": 70.0, "s1000": 50.0, "s10000": 40.0}
    pt_frames = {"none": 0.0, "s100": 100.0, "s1000": 1000.0, "s10000": 10000.0}
    for name, mean in pt_means.items():
        cells["m", "pretrained", name] = _cell(mean, None, pt_frames[name], name)
    tests = {("m", "s100"): _test(0.001), ("m", "s1000"): _test(0.3),
             ("m", "s10000"): _test(0.4)}
    w = model_worth(cells, tests, "m", settings, alpha=0.05)
    assert [c.setting for c in w.cells] == ["none", "s100", "s1000", "s10000"]
    assert w.cells[0].equivalent.frames == pytest.approx(10 ** 2.25)  # before fine-tuning
    assert w.cells[1].ratio.frames == pytest.approx(math.sqrt(1e7) / 100.0)
    assert w.cells[2].equivalent == FrameCount(10000.0, MORE_THAN)
    assert w.not_significant is settings[1]


def test_table_cell_text() -> None:
    assert _worth_cell(cell_worth(_cell(70.0, 10.0, frames=1000.0), CURVE)) == (
        "≈ 3,160 (1,000–10,000) frames, 3.2×")
    assert _worth_cell(cell_worth(_cell(70.0, 15.0, frames=1000.0), CURVE)) == (
        "≈ 3,160 (562 – > 10,000) frames, 3.2×")
    assert _worth_cell(cell_worth(_cell(50.0, None, frames=20.0), CURVE)) == (
        "> 10,000 frames, > 500×")
    assert _worth_cell(cell_worth(_cell(110.0, 1.0, frames=0.0), CURVE)) == "≤ 100 frames"


def test_the_evaluate_stage_writes_frames_worth(evaluated: dict[str, Path]) -> None:
    # evalgrid's semgcn: scratch 40.1, 25, 15 mm at 101, 400.5, 1600 frames; PT 22 mm at
    # pct50 is 3/10 of the way from 25 to 15 mm; PT 12 mm at subj8 is below the curve
    subj2, subj8 = TRAIN_FRAMES["subj2"] + 0.5, TRAIN_FRAMES["subj8"]
    expected = subj2 * (subj8 / subj2) ** 0.3
    d = json.loads(evaluated["summary.json"].read_text())["frames_worth"]
    assert list(d) == ["semgcn", "simplebl"]
    sem = d["semgcn"]["cells"]
    assert list(sem) == ["none", "pct50", "subj2", "subj8"]
    assert sem["pct50"]["scratch_frames"] == {"frames": round(expected, 1),
                                              "bound": INTERPOLATED}
    assert sem["subj8"]["scratch_frames"] == {"frames": subj8, "bound": MORE_THAN}
    assert sem["none"]["ratio"] is None
    # no paired test of this tiny grid is significant after Holm: the first setting
    assert d["semgcn"]["first_not_significant"] == {"setting": "pct50",
                                                   "label": "50% of a subject"}
    md = evaluated["table1.md"].read_text()
    assert "## What pre-training is worth: scratch frames to reach each PT cell" in md
    assert f"≈ {expected:,.0f} " in md and "> 1,600 frames" in md
    assert ("- PT SemGCN: the smallest amount of real data at which the paired gain is not "
            "significant is 50% of a subject") in md
    rows = list(csv.DictReader(io.StringIO(evaluated["frames_worth.csv"].read_text())))
    assert [r["setting"] for r in rows] == ["pct50", "subj2", "subj8"]
    assert float(rows[0]["semgcn"]) == pytest.approx(expected, abs=0.05)
    assert rows[2]["semgcn_bound"] == MORE_THAN
    assert evaluated["frames_worth.png"].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
