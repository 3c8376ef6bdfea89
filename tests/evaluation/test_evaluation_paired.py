"""The paired pre-trained vs scratch test of one (model, setting), on hand-made runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cabinlift.evaluation.aggregate import CellSummary, RunResult
from cabinlift.evaluation.paired import paired_test, paired_tests, significance_mark


def _cell(init: str, mpjpes: list[float], subjects: list[list[int]] | None = None,
          model: str = "simplebl", setting: str = "pct5") -> CellSummary:
    """A cell whose runs (repetitions 0, 1, ...) trained on ``subjects`` (default: one
    subject each, 1, 2, ...) and scored ``mpjpes``; only what pairing reads is filled in."""
    subjects = subjects or [[s + 1] for s in range(len(mpjpes))]
    nan = float("nan")
    runs = [RunResult(record={"repetition": r, "subjects": subj}, mpjpe=m, p_mpjpe=nan,
                      pck=nan, auc=nan, activity_macro=nan, per_joint=np.full(13, nan),
                      per_activity={})
            for r, (m, subj) in enumerate(zip(mpjpes, subjects, strict=True))]
    return CellSummary(model=model, init=init, setting=setting, runs=runs, stats={},
                       per_joint=np.full(13, nan), per_joint_ci95=np.full(13, nan),
                       per_activity={}, train_frames=nan)


def test_constant_nonzero_differences_are_as_significant_as_it_gets() -> None:
    # pre-training 5 mm better on every one of three subjects: no spread, so the t statistic
    # is undefined (infinite), and the two-sided p of the paired t-test is 0
    t = paired_test(_cell("scratch", [80.0, 90.0, 100.0]),
                    _cell("pretrained", [75.0, 85.0, 95.0]))
    assert (t.n_pairs, t.mean_diff, t.std_diff) == (3, -5.0, 0.0)
    assert t.p_t == 0.0 and t.t is None
    # two pairs suffice
    two = paired_test(_cell("scratch", [80.0, 90.0]), _cell("pretrained", [83.0, 93.0]))
    assert two.mean_diff == 3.0 and two.p_t == 0.0
    # 1 mm worse on each of three: the Wilcoxon test still ranks them (all three positive:
    # two-sided exact p = 2 / 2**3)
    ones = paired_test(_cell("scratch", [80.0, 90.0, 100.0]),
                       _cell("pretrained", [81.0, 91.0, 101.0]))
    assert (ones.mean_diff, ones.p_t, ones.p_wilcoxon) == (1.0, 0.0, 0.25)


def test_all_zero_differences_are_no_evidence() -> None:
    t = paired_test(_cell("scratch", [80.0, 90.0, 100.0]),
                    _cell("pretrained", [80.0, 90.0, 100.0]))
    assert (t.mean_diff, t.std_diff, t.p_t, t.p_wilcoxon) == (0.0, 0.0, 1.0, 1.0)


def test_t_and_p_by_hand() -> None:
    # differences -1, -2, -3: mean -2, sample sd 1, t = -2 / (1 / sqrt 3) = -2 sqrt 3; with
    # 2 degrees of freedom the two-sided p is 1 - |t| / sqrt(t^2 + 2) = 1 - sqrt(6 / 7)
    t = paired_test(_cell("scratch", [80.0, 90.0, 100.0]),
                    _cell("pretrained", [79.0, 88.0, 97.0]))
    assert (t.model, t.setting, t.paired_by) == ("simplebl", "pct5", "subject")
    assert t.mean_diff == -2.0 and t.std_diff == pytest.approx(1.0)
    assert t.t == pytest.approx(-2.0 * math.sqrt(3.0))
    assert t.p_t == pytest.approx(1.0 - math.sqrt(6.0 / 7.0))
    assert t.p_wilcoxon == pytest.approx(0.25)  # all three negative: 2 / 2**3
    # 95 % CI half-width: t quantile times sd / sqrt(3); with 2 degrees of freedom the
    # quantile of q is (2q - 1) / sqrt(2 q (1 - q))
    q = 0.975
    assert t.ci95 == pytest.approx((2 * q - 1) / math.sqrt(2 * q * (1 - q)) / math.sqrt(3.0))


def test_a_single_pair_has_a_difference_but_no_test() -> None:
    t = paired_test(_cell("scratch", [80.0]), _cell("pretrained", [70.0]))
    assert (t.n_pairs, t.mean_diff) == (1, -10.0)
    assert (t.std_diff, t.ci95, t.t, t.p_t, t.p_wilcoxon) == (None,) * 5


def test_no_common_subjects_gives_no_pairs() -> None:
    t = paired_test(_cell("scratch", [80.0]), _cell("pretrained", [70.0], [[2]]))
    assert (t.n_pairs, t.unpaired) == (0, 2)
    assert (t.mean_diff, t.std_diff, t.ci95, t.t, t.p_t, t.p_wilcoxon) == (None,) * 6


def test_runs_pair_by_training_subjects_not_by_position() -> None:
    # the pre-trained side lists the same subject combinations in another order and has one
    # combination the scratch side lacks (left out, counted as unpaired)
    scratch = _cell("scratch", [50.0, 60.0], [[1, 2], [3, 4]])
    pretrained = _cell("pretrained", [58.0, 49.0, 10.0], [[4, 3], [2, 1], [5, 6]])
    t = paired_test(scratch, pretrained)
    assert [p["subjects"] for p in t.pairs] == [[1, 2], [3, 4]]
    assert [p["diff"] for p in t.pairs] == [-1.0, -2.0]
    assert [(p["repetition_scratch"], p["repetition_pretrained"]) for p in t.pairs] == [
        (0, 1), (1, 0)]
    assert (t.paired_by, t.unpaired) == ("subject combination", 1)


def test_repeated_combinations_pair_in_repetition_order() -> None:
    # the same four subjects three times on each side (the all-subjects setting with more
    # than one repetition): the k-th scratch run pairs with the k-th pre-trained run
    same = [[1, 2, 3, 4]] * 3
    t = paired_test(_cell("scratch", [50.0, 60.0, 70.0], same),
                    _cell("pretrained", [49.0, 58.0, 67.0], same))
    assert [p["diff"] for p in t.pairs] == [-1.0, -2.0, -3.0]
    assert [p["repetition_pretrained"] for p in t.pairs] == [0, 1, 2]
    assert t.unpaired == 0


def test_paired_tests_adjust_every_p_value_over_the_whole_grid() -> None:
    # two models x one setting: p = 0 (constant differences) and 1 - sqrt(6/7) (by hand, as
    # above); Holm multiplies the smaller by 2 and keeps the larger (capped at 1, monotone)
    cells = {
        ("simplebl", "scratch", "pct5"): _cell("scratch", [80.0, 90.0, 100.0]),
        ("simplebl", "pretrained", "pct5"): _cell("pretrained", [79.0, 88.0, 97.0]),
        ("semgcn", "scratch", "pct5"): _cell("scratch", [80.0, 90.0], model="semgcn"),
        ("semgcn", "pretrained", "pct5"): _cell("pretrained", [75.0, 85.0], model="semgcn"),
    }
    out = paired_tests(cells, ["simplebl", "semgcn"], ["pct5"])
    p = 1.0 - math.sqrt(6.0 / 7.0)
    assert out["simplebl", "pct5"].p_t == pytest.approx(p)
    assert out["simplebl", "pct5"].p_holm == pytest.approx(p)  # 1 x the larger p
    assert out["semgcn", "pct5"].p_holm == 0.0  # 2 x 0
    assert out["semgcn", "pct5"].model == "semgcn"


def test_significance_marks_are_strictly_below_their_levels() -> None:
    # alpha 0.05: *** below 0.001, ** below 0.01, * below 0.05
    marks = [significance_mark(p, 0.05)
             for p in (0.00099, 0.001, 0.0099, 0.01, 0.0499, 0.05, float("nan"))]
    assert marks == ["***", "**", "**", "*", "*", "", ""]
