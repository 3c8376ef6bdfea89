"""Per-run and per-setting statistics: what Table 1 reports and what it leaves out.

Every error is computed over valid (annotated) joints only, as the paper does ("occluded
keypoints were excluded from evaluation"). MPJPE pools all valid joints of all test frames (the
same definition as :func:`cabinlift.metrics.mpjpe`, which the fine-tuning stage uses for
runs.json's ``test_mpjpe``), so the value recomputed here from the predictions must reproduce it;
a disagreement means the predictions and the run record come from different runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from cabinlift.config import Pck
from cabinlift.errors import CabinliftError
from cabinlift.evaluation.loading import SettingRuns, TestSet
from cabinlift.metrics import errors_mm, masked_mean, p_mpjpe, pck, pck_auc

#: Largest accepted |recomputed - recorded| test MPJPE [mm]; larger means stale files.
MPJPE_TOLERANCE_MM = 0.01
#: Key used in per-activity results for frames whose activity is unknown ('').
UNKNOWN_ACTIVITY = "<unknown>"


#: Per-run scalar metrics (attributes of :class:`RunResult`), in report order.
RUN_METRICS: tuple[str, ...] = ("mpjpe", "p_mpjpe", "pck", "auc", "activity_macro")


@dataclass(frozen=True)
class RunResult:
    """One run: its runs.json record plus the errors recomputed from its predictions.

    ``pck`` and ``auc`` are percentages (0-100); ``activity_macro`` is the unweighted mean of
    the per-activity MPJPEs, so a long activity cannot dominate it as it does the pooled MPJPE.
    """

    record: dict[str, Any]
    mpjpe: float
    p_mpjpe: float
    pck: float
    auc: float
    activity_macro: float
    per_joint: np.ndarray  # (J,) mm, NaN for a joint never valid in the test set
    per_activity: dict[str, float]

    def metric(self, key: str) -> float:
        return float(getattr(self, key))


@dataclass(frozen=True)
class Stat:
    """Mean over runs with its sample std and 95 % CI half-width (None for a single run)."""

    mean: float
    std: float | None
    ci95: float | None
    n: int

    @classmethod
    def of(cls, values: list[float] | np.ndarray) -> Stat:
        mean, std, ci = mean_std_ci(values)
        return cls(mean, std, ci, int(np.size(values)))


@dataclass(frozen=True)
class CellSummary:
    """One cell of Table 1 (model, init, setting) with the statistics over its runs."""

    model: str
    init: str
    setting: str
    runs: list[RunResult] = field(repr=False)
    stats: dict[str, Stat]  # RUN_METRICS key -> statistics over runs
    per_joint: np.ndarray  # (J,) mean over runs
    per_joint_ci95: np.ndarray  # (J,) CI half-width over runs (NaN for a single run)
    per_activity: dict[str, float]
    train_frames: float

    @property
    def n_runs(self) -> int:
        return len(self.runs)

    @property
    def mean(self) -> float:
        """Mean MPJPE over runs: the Table 1 cell."""
        return self.stats["mpjpe"].mean

    @property
    def std(self) -> float | None:
        return self.stats["mpjpe"].std

    @property
    def ci95(self) -> float | None:
        return self.stats["mpjpe"].ci95

    @property
    def p_mpjpe(self) -> float:
        return self.stats["p_mpjpe"].mean

    @property
    def n_stopped_early(self) -> int:
        """Runs ended by early stopping."""
        return sum(bool(r.record["stopped_early"]) for r in self.runs)

    @property
    def n_best_at_last_check(self) -> int:
        """Runs that used up the epoch budget while still improving (see
        :func:`best_at_last_check`)."""
        return sum(best_at_last_check(r.record) for r in self.runs)

    @property
    def mean_steps(self) -> float:
        """Optimiser steps per run, mean over runs."""
        return float(np.mean([r.record["steps"] for r in self.runs]))


def best_at_last_check(record: Mapping[str, Any]) -> bool:
    """Whether a run ran out of epochs with its best validation at its last one: it was still
    improving when ``train.max_epochs`` ended it, so its error is limited by the epoch budget
    rather than by its data. False for a run that stopped early or was never validated."""
    history = record["history"]
    return (
        not record["stopped_early"]
        and bool(history)
        and record["best_epoch"] == history[-1]["epoch"]
    )


def frame_mpjpe(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """MPJPE of each frame over its valid joints (N,); NaN for a frame with none."""
    return masked_mean(errors_mm(pred, target, mask), mask, axis=1)


def mean_std_ci(values: list[float] | np.ndarray) -> tuple[float, float | None, float | None]:
    """Mean, sample standard deviation and 95 % CI half-width (Student t, n-1 dof) of run values.

    Runs differ by their training subset, so the spread over runs is the honest uncertainty of a
    Table 1 cell; with a single run neither is defined and both are None.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("mean_std_ci needs at least one value")
    mean = float(v.mean())
    if v.size < 2:
        return mean, None, None
    std = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.975, v.size - 1) * std / math.sqrt(v.size))
    return mean, std, half


def _ci_or_nan(values: np.ndarray) -> float:
    """CI half-width over the finite values; NaN where fewer than two exist."""
    v = values[np.isfinite(values)]
    ci = mean_std_ci(v)[2] if v.size else None
    return float("nan") if ci is None else ci


class ActivityIndex:
    """Maps test frames to activities once, so per-run per-activity errors are two bincounts."""

    def __init__(self, test: TestSet) -> None:
        names, inverse = np.unique(test.activity.astype(str), return_inverse=True)
        self.names = [UNKNOWN_ACTIVITY if n == "" else str(n) for n in names]
        self.inverse = inverse.reshape(-1)
        self.counts = np.bincount(self.inverse, weights=test.mask.sum(axis=1), minlength=len(names))

    def means(self, err: np.ndarray) -> dict[str, float]:
        """Pooled MPJPE per activity; activities without a valid joint are left out."""
        sums = np.bincount(self.inverse, weights=err.sum(axis=1), minlength=len(self.names))
        triples = zip(self.names, sums, self.counts, strict=True)
        out = {n: float(s / c) for n, s, c in triples if c > 0}
        return dict(sorted(out.items()))


def activity_macro(per_activity: Mapping[str, float]) -> float:
    """Unweighted mean over the known activities (frames without a label are left out); NaN if
    no frame has one."""
    known = [v for a, v in per_activity.items() if a != UNKNOWN_ACTIVITY]
    return float(np.mean(known)) if known else float("nan")


def evaluate_run(
    pred: np.ndarray, test: TestSet, activities: ActivityIndex, record: dict[str, Any], where: str,
    config: Pck,
) -> RunResult:
    """Recompute one run's errors from its predictions (N, J, 3) and cross-check runs.json."""
    mask = test.mask
    if not np.isfinite(pred[mask]).all():
        raise CabinliftError(
            f"{where}: repetition {record['repetition']} has non-finite predictions at valid "
            "joints (diverged run?)"
        )
    err = errors_mm(pred, test.y3d, mask)
    mpjpe = float(masked_mean(err, mask))
    recorded = float(record["test_mpjpe"])
    if abs(mpjpe - recorded) > MPJPE_TOLERANCE_MM:
        raise CabinliftError(
            f"{where}: repetition {record['repetition']}: MPJPE recomputed from predictions.npz "
            f"is {mpjpe:.3f} mm but runs.json records test_mpjpe {recorded:.3f} mm (expected to "
            f"agree within {MPJPE_TOLERANCE_MM} mm; stale or mismatched files?)"
        )
    per_activity = activities.means(err)
    return RunResult(
        record=record,
        mpjpe=mpjpe,
        p_mpjpe=p_mpjpe(np.where(mask[..., None], pred, 0.0), test.y3d, mask),
        pck=100.0 * pck(err, mask, config.threshold_mm),
        auc=100.0 * pck_auc(err, mask, config.auc_max_mm, config.auc_steps),
        activity_macro=activity_macro(per_activity),
        per_joint=masked_mean(err, mask, axis=0),
        per_activity=per_activity,
    )


def summarize_setting(
    data: SettingRuns, test: TestSet, activities: ActivityIndex | None,
    config: Pck,
) -> CellSummary:
    """Evaluate every run of one (model, init, setting) and aggregate over runs.

    Runs are ordered by repetition. Per-joint and per-activity values are means over runs of
    each run's value (all runs share the test set, so this equals pooling over runs).
    """
    activities = activities or ActivityIndex(test)
    where = str(data.directory)
    order = sorted(range(len(data.runs)), key=lambda i: data.runs[i]["repetition"])
    runs = [evaluate_run(data.pred[i], test, activities, data.runs[i], where, config)
            for i in order]
    joints = np.stack([r.per_joint for r in runs])  # (R, J)
    joint_ci = np.array([_ci_or_nan(col) for col in joints.T])
    acts = sorted({a for r in runs for a in r.per_activity})
    per_activity = {a: float(np.mean([r.per_activity[a] for r in runs if a in r.per_activity]))
                    for a in acts}
    return CellSummary(
        model=data.model,
        init=data.init,
        setting=data.setting,
        runs=runs,
        stats={k: Stat.of([r.metric(k) for r in runs]) for k in RUN_METRICS},
        per_joint=joints.mean(axis=0),
        per_joint_ci95=joint_ci,
        per_activity=per_activity,
        train_frames=float(np.mean([r.record["train_frames"] for r in runs])),
    )
