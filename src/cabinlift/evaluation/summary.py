"""``metrics/summary.json``: everything a researcher needs beyond Table 1's means.

Per cell (model, init, setting): every per-run metric as mean / std / 95 % CI / n, per-joint and
per-activity MPJPE; per (model, setting): the paired pre-trained − scratch test; plus the test
set, the settings, the pre-training summaries and the qualitative frame. Not declared as DVC
metrics (``dvc metrics diff`` would list thousands of numbers), so its structure is free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cabinlift.evaluation.aggregate import RUN_METRICS, CellSummary, MetricConfig, Stat
from cabinlift.evaluation.paired import PairedTest
from cabinlift.evaluation.settings import INITS, Setting
from cabinlift.evaluation.table import Cells, Tests, dump_json, rounded, setting_train_frames
from cabinlift.skeleton import COCO13


def significant(p: float | None, digits: int = 4) -> float | None:
    """A p-value to ``digits`` significant digits (fixed decimals would print 1e-9 as 0)."""
    return None if p is None else float(f"{p:.{digits}g}")


def stat_json(st: Stat, nd: int = 3) -> dict[str, Any]:
    return {"mean": rounded(st.mean, nd), "std": rounded(st.std, nd),
            "ci95": rounded(st.ci95, nd), "n": st.n}


def cell_json(c: CellSummary) -> dict[str, Any]:
    """The statistics of one cell."""
    return {
        "n_runs": c.n_runs,
        "train_frames": rounded(c.train_frames, 1),
        **{k: stat_json(c.stats[k]) for k in RUN_METRICS},
        "mpjpe_min": rounded(min(r.mpjpe for r in c.runs)),
        "mpjpe_max": rounded(max(r.mpjpe for r in c.runs)),
        "per_joint": {name: rounded(v) for name, v in zip(COCO13, c.per_joint, strict=True)},
        "per_joint_ci95": {
            name: rounded(v) for name, v in zip(COCO13, c.per_joint_ci95, strict=True)
        },
        "per_activity": {a: rounded(v) for a, v in c.per_activity.items()},
        "runs": [
            {"repetition": r.record["repetition"], "subjects": r.record["subjects"],
             **{k: rounded(r.metric(k)) for k in RUN_METRICS}}
            for r in c.runs
        ],
    }


def paired_json(t: PairedTest) -> dict[str, Any]:
    """One paired test (differences are pre-trained − scratch, mm)."""
    return {
        "paired_by": t.paired_by,
        "n_pairs": t.n_pairs,
        "unpaired_runs": t.unpaired,
        "mean_diff": rounded(t.mean_diff),
        "std_diff": rounded(t.std_diff),
        "ci95": rounded(t.ci95),
        "t": rounded(t.t, 4),
        "p_t": significant(t.p_t),
        "p_holm": significant(t.p_holm),
        "p_wilcoxon": significant(t.p_wilcoxon),
        "pairs": [
            {**p, "scratch": rounded(p["scratch"]), "pretrained": rounded(p["pretrained"]),
             "diff": rounded(p["diff"])}
            for p in t.pairs
        ],
    }


def summary_json(
    cells: Cells,
    tests: Tests,
    models: list[str],
    settings: list[Setting],
    metrics: MetricConfig,
    alpha: float,
    test_info: Mapping[str, Any],
    pretrain: Mapping[str, Any],
    qualitative: Mapping[str, Any] | None,
) -> str:
    """Render summary.json: definitions, settings, test set, quick-look tables (mean per cell
    of each metric), cells, paired tests, pre-training summaries, qualitative frame."""
    tables = {
        key: {
            m: {i: {s.name: rounded(cells[m, i, s.name].stats[key].mean) for s in settings}
                for i in INITS}
            for m in models
        }
        for key in RUN_METRICS
    }
    out = {
        "units": "mm; pck and auc in %",
        "definitions": {
            "mpjpe": "mean Euclidean error over all valid joints of all test frames",
            "p_mpjpe": "MPJPE after aligning each predicted pose onto its ground truth by the "
                       "best rotation, uniform scale and translation (no reflection)",
            "per_joint": "MPJPE of each joint over the frames where it is annotated",
            "pck": f"3DPCK: % of valid joints with error <= {metrics.threshold_mm:g} mm",
            "auc": f"mean 3DPCK over {metrics.auc_steps} thresholds from 0 to "
                   f"{metrics.auc_max_mm:g} mm",
            "activity_macro": "mean over activities (unlabelled frames left out) of the "
                              "per-activity MPJPE",
            "paired_tests": "pre-trained − scratch MPJPE over runs with the same training "
                            "subjects; two-sided paired t-test (p_t), Holm-adjusted over all "
                            f"model x setting tests (p_holm, marks at {alpha:g}), Wilcoxon "
                            "signed-rank (p_wilcoxon)",
        },
        "settings": {
            s.name: {
                "label": s.label,
                "subjects": s.subjects,
                "fraction": s.fraction,
                "repetitions": s.repetitions,
                "train_frames": rounded(setting_train_frames(cells, s.name), 1),
            }
            for s in settings
        },
        "test_set": dict(test_info),
        "tables": tables,
        "cells": {
            m: {i: {s.name: {"label": s.label, **cell_json(cells[m, i, s.name])}
                    for s in settings}
                for i in INITS}
            for m in models
        },
        "paired_tests": {
            m: {s.name: paired_json(tests[m, s.name]) for s in settings} for m in models
        },
        "pretrain": {m: pretrain[m] for m in models if m in pretrain},
        "qualitative": dict(qualitative) if qualitative is not None else None,
    }
    return dump_json(out)
