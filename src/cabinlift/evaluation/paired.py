"""Is pre-training's gain more than noise? Paired comparisons of pre-trained vs scratch runs.

A scratch run and a pre-trained run that trained on the same subset differ only by their
initialisation (they share the subset and the batch-order seed), so the per-pair difference
removes the large between-subset variation that dominates the spread of a Table 1 cell. Runs
are matched by their training subjects (for the single-subject settings: by subject), the k-th
run of a subject combination with the k-th run of the same combination on the other side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import stats

from cabinlift.evaluation.aggregate import CellSummary, RunResult, mean_std_ci


@dataclass(frozen=True)
class PairedTest:
    """pre-trained − scratch MPJPE over matched runs (negative = pre-training helps)."""

    model: str
    setting: str
    paired_by: str  # "subject" or "subject combination"
    pairs: list[dict[str, Any]] = field(repr=False)  # {subjects, repetition_*, scratch, ...}
    unpaired: int  # runs without a partner on the other side (left out)
    mean_diff: float | None
    std_diff: float | None
    ci95: float | None  # half-width of the Student-t CI of the mean difference
    t: float | None
    p_t: float | None  # two-sided paired t-test
    p_wilcoxon: float | None  # two-sided Wilcoxon signed-rank (exact for small n)
    p_holm: float | None = None  # p_t adjusted over all tests of the evaluation (Holm)

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    @property
    def gain(self) -> float | None:
        """What pre-training gains: scratch − pre-trained MPJPE, mm (positive = it helps;
        None without a pair)."""
        return None if self.mean_diff is None else -self.mean_diff

    def significant(self, alpha: float) -> bool:
        """Whether the Holm-adjusted p is below ``alpha``; a test that cannot be computed (a
        single pair) is no evidence, so it is not significant."""
        return self.p_holm is not None and self.p_holm < alpha


def _pair_keys(runs: Sequence[RunResult]) -> dict[tuple, RunResult]:
    """Key each run by (sorted training subjects, occurrence), in repetition order."""
    seen: dict[tuple[int, ...], int] = {}
    out: dict[tuple, RunResult] = {}
    for r in runs:
        subj = tuple(sorted(int(s) for s in r.record["subjects"]))
        k = seen.get(subj, 0)
        seen[subj] = k + 1
        out[subj, k] = r
    return out


def paired_test(scratch: CellSummary, pretrained: CellSummary) -> PairedTest:
    """Match the runs of one (model, setting) across inits and test the mean difference."""
    a, b = _pair_keys(scratch.runs), _pair_keys(pretrained.runs)
    common = [k for k in a if k in b]  # scratch's repetition order
    pairs = [
        {
            "subjects": list(k[0]),
            "repetition_scratch": int(a[k].record["repetition"]),
            "repetition_pretrained": int(b[k].record["repetition"]),
            "scratch": a[k].mpjpe,
            "pretrained": b[k].mpjpe,
            "diff": b[k].mpjpe - a[k].mpjpe,
        }
        for k in common
    ]
    diffs = np.array([p["diff"] for p in pairs], dtype=np.float64)
    single = all(len(k[0]) == 1 for k in common) if common else False
    mean = std = ci = t = p_t = p_w = None
    if diffs.size:
        mean, std, ci = mean_std_ci(diffs)
    if diffs.size >= 2:
        if np.all(diffs == diffs[0]):  # no spread: the t statistic is undefined
            t, p_t = None, (1.0 if diffs[0] == 0 else 0.0)
        else:
            res = stats.ttest_rel(
                [p["pretrained"] for p in pairs], [p["scratch"] for p in pairs]
            )
            t, p_t = float(res.statistic), float(res.pvalue)
        if np.any(diffs != 0):
            p_w = float(stats.wilcoxon(diffs, zero_method="wilcox").pvalue)
        else:
            p_w = 1.0
    return PairedTest(
        model=scratch.model,
        setting=scratch.setting,
        paired_by="subject" if single else "subject combination",
        pairs=pairs,
        unpaired=len(a) + len(b) - 2 * len(common),
        mean_diff=mean,
        std_diff=std,
        ci95=ci,
        t=t,
        p_t=p_t,
        p_wilcoxon=p_w,
    )


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (family-wise error) of the defined p-values; None stays None."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    order = sorted(idx, key=lambda i: pvalues[i])
    m = len(order)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        out[i] = running
    return out


def paired_tests(
    cells: Mapping[tuple[str, str, str], CellSummary], models: Sequence[str],
    settings: Sequence[str],
) -> dict[tuple[str, str], PairedTest]:
    """Every (model, setting)'s paired test, with Holm-adjusted p-values over all of them."""
    raw = {
        (m, s): paired_test(cells[m, "scratch", s], cells[m, "pretrained", s])
        for m in models
        for s in settings
    }
    keys = list(raw)
    adjusted = holm([raw[k].p_t for k in keys])
    return {k: replace(raw[k], p_holm=p) for k, p in zip(keys, adjusted, strict=True)}


def significance_mark(p: float | None, alpha: float) -> str:
    """``*`` below alpha, ``**`` below alpha/5, ``***`` below alpha/50 ('' when not defined)."""
    if p is None or math.isnan(p):
        return ""
    for mark, level in (("***", alpha / 50), ("**", alpha / 5), ("*", alpha)):
        if p < level:
            return mark
    return ""
