"""``metrics/summary.json``: everything a researcher needs beyond Table 1's means.

Per cell (model, init, setting; the pre-trained weights before fine-tuning as the setting
``none``): every per-run metric as mean / std / 95 % CI / n, per-joint and per-activity MPJPE,
the runs' convergence and steps; per (model, setting): the paired pre-trained − scratch test;
per setting: the mean-training-pose reference; per model: what pre-training is worth in
scratch frames and how far fine-tuning moved the pre-trained weights; plus the test set, the
settings, the pre-training summaries and the qualitative frame. Not declared as DVC metrics (``dvc metrics
diff`` would list thousands of numbers), so its structure is free.
"""

from __future__ import annotations

from typing import Any

from cabinlift.config import INITS, NO_REAL_DATA
from cabinlift.evaluation.aggregate import (
    RUN_METRICS,
    CellSummary,
    Stat,
    best_at_last_check,
)
from cabinlift.evaluation.frames_worth import CellWorth, FrameCount, ModelWorth
from cabinlift.evaluation.outputs import dump_json, rounded
from cabinlift.evaluation.paired import PairedTest
from cabinlift.evaluation.reference import MeanPoseReference
from cabinlift.evaluation.results import EvaluationResults, ScratchBound
from cabinlift.evaluation.settings import NO_REAL_DATA_LABEL
from cabinlift.evaluation.weight_movement import CellMovement, Spread
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
        "convergence": {
            "stopped_early": c.n_stopped_early,
            "best_at_last_check": c.n_best_at_last_check,
            "n": c.n_runs,
            "mean_steps": rounded(c.mean_steps, 1),
            "runs": [
                {"repetition": r.record["repetition"], "steps": r.record["steps"],
                 "epochs_run": r.record["epochs_run"], "best_epoch": r.record["best_epoch"],
                 "stopped_early": r.record["stopped_early"],
                 "best_at_last_check": best_at_last_check(r.record)}
                for r in c.runs
            ],
        },
    }


def _scratch_json(bound: ScratchBound) -> dict[str, Any]:
    return {"fewest_steps_below_mean_pose": bound.fewest_steps,
            "runs_with_fewer_steps": bound.runs_fewer, "scratch_runs": bound.runs}


def mean_pose_json(ref: MeanPoseReference) -> dict[str, Any]:
    """The mean-training-pose reference of one setting: over runs, and per run."""
    return {
        "mpjpe": stat_json(ref.stat),
        "runs": [
            {"repetition": r.repetition, "subjects": r.subjects, "train_frames": r.train_frames,
             "mpjpe": rounded(r.mpjpe), "unseen_joints": r.unseen_joints}
            for r in ref.runs
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


def frame_count_json(count: FrameCount | None, nd: int = 1) -> dict[str, Any] | None:
    return None if count is None else {"frames": rounded(count.frames, nd), "bound": count.bound}


def _cell_worth_json(c: CellWorth) -> dict[str, Any]:
    return {
        "pt_train_frames": rounded(c.pt_frames, 1),
        "pt_mpjpe": rounded(c.pt_mpjpe),
        "pt_ci95": rounded(c.pt_ci95),
        "scratch_frames": frame_count_json(c.equivalent),
        "scratch_frames_ci95": {"low": frame_count_json(c.low),
                                "high": frame_count_json(c.high)},
        "ratio": frame_count_json(c.ratio, nd=2),
    }


def frames_worth_json(w: ModelWorth) -> dict[str, Any]:
    """One model's pre-trained cells in scratch frames, and where its gain stops being
    significant."""
    first = w.not_significant
    return {
        "cells": {c.setting: _cell_worth_json(c) for c in w.cells},
        "first_not_significant": None if first is None else {"setting": first.name,
                                                            "label": first.label},
    }


#: Decimals of a relative weight change in summary.json (a ratio; the demo's are ~0.01-0.1).
CHANGE_DECIMALS = 6


def _spread_json(sp: Spread) -> dict[str, Any]:
    nd = CHANGE_DECIMALS
    return {"median": rounded(sp.median, nd), "q1": rounded(sp.q1, nd),
            "q3": rounded(sp.q3, nd), "min": rounded(sp.low, nd), "max": rounded(sp.high, nd),
            "n": sp.n}


def _cell_movement_json(c: CellMovement) -> dict[str, Any]:
    nd = CHANGE_DECIMALS
    return {
        "train_frames": rounded(c.train_frames, 1),
        "gain": rounded(c.gain),
        "gain_ci95": rounded(c.gain_ci95),
        "whole": _spread_json(c.whole),
        "layers_median": [rounded(v, nd) for v in c.layers],
        "runs": [{"repetition": run.repetition, "pretrain_seed": run.pretrain_seed,
                  "whole": rounded(run.whole, nd)} for run in c.runs],
    }


def weight_movement_json(r: EvaluationResults) -> dict[str, Any] | None:
    """Per model its layers and per setting how far its pre-trained runs moved, with the gain
    the cell keeps; per setting the rank correlation of the two over the models (null: not
    measured)."""
    movement, rho = r.weight_movement(), r.movement_vs_gain()
    if movement is None or rho is None:
        return None
    return {
        "models": {w.model: {"layers": [{"name": layer.name, "type": layer.kind}
                                        for layer in w.layers],
                             "cells": {c.setting: _cell_movement_json(c) for c in w.cells}}
                   for w in movement},
        "spearman_change_vs_gain": {s: rounded(v) for s, v in rho.items()},
    }


def _definitions(r: EvaluationResults) -> dict[str, str]:
    """What each key of summary.json means, with the configured thresholds and level."""
    metrics, alpha = r.pck, r.alpha
    return {
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
        NO_REAL_DATA: "the pre-trained weights evaluated on the real test set before any "
                      "fine-tuning (one evaluation, no real training frames)",
        "mean_pose": "reference: each run of a setting predicts, for every test frame, the "
                     "mean neck-centred pose of its own training frames (each joint "
                     "averaged over the frames where it is annotated; a joint annotated in "
                     "none of them at the neck); MPJPE over valid test joints, statistics "
                     "over the setting's runs",
        "above_mean_pose": "cells whose mean MPJPE is above the mean_pose reference of "
                           "their setting (learned less than a constant)",
        "scratch_untrained": "the fewest gradient steps of a scratch run whose MPJPE is "
                             "below the mean_pose reference of its own setting and "
                             "repetition (null: none is), how many scratch runs had "
                             "fewer steps (none of them below), scratch runs",
        "frames_worth": "per model and pre-trained cell (setting none included): the real "
                        "training frames a scratch model needs to reach the cell's mean MPJPE "
                        "(scratch_frames), interpolated linearly in log(frames) on the model's "
                        "scratch curve (first crossing in increasing frames), and the same at "
                        "the cell's mean + and - its 95 % CI (scratch_frames_ci95: low, high); "
                        "bound: interpolated, more_than (not reached within the largest "
                        "setting: a lower bound) or at_most (reached at the smallest: an upper "
                        "bound); ratio: scratch_frames per real frame of the cell (null with "
                        "no real data); first_not_significant: the setting with the fewest real "
                        "frames whose Holm-adjusted paired test is not below alpha (null: "
                        "every one is)",
        "weight_movement": "how far fine-tuning moved the pre-trained weights (null: the "
                           "pre-training checkpoints were not given). Per model: its layers "
                           "(modules owning parameters, in registration order: name and module "
                           "type); per setting: "
                           "the relative change ||W_ft - W_pt|| / ||W_pt|| (L2, a ratio: 0.05 "
                           "= 5 %) from the pre-training checkpoint each run started from "
                           "(runs: pretrain_seed) to its fine-tuned checkpoint (the weights "
                           "of its best validation), over the parameters only (batch-norm "
                           "running statistics and other buffers excluded): of the whole model "
                           "(all parameters concatenated) per run, and over the cell's runs "
                           "as median, quartiles q1/q3, min and max (whole); per layer the "
                           "median over runs (layers_median, in layer order, null where the "
                           "pre-trained layer is all zero); gain: the cell's paired "
                           "scratch - pre-trained MPJPE (mm, positive = pre-training helps) "
                           "with its 95 % CI half-width (gain_ci95), as in paired_tests. "
                           "spearman_change_vs_gain: per setting, Spearman's rank correlation "
                           "over the models of their median whole-model change and their gain "
                           "(negative: the lifters that move their weights less keep more of "
                           "the gain; null with fewer than three models)",
        "convergence": "per cell: runs ended by early stopping (stopped_early), runs that "
                       "used all epochs with their best validation at the last check "
                       "(best_at_last_check: limited by the epoch budget), runs (n), "
                       "optimiser steps per run (mean_steps)",
    }


def summary_json(r: EvaluationResults) -> str:
    """Render summary.json: definitions, settings, test set, quick-look tables (mean per cell
    of each metric), cells, paired tests, the mean-training-pose reference, pre-training
    summaries, frames worth, weight movement, qualitative frame. Pre-trained rows start with the
    setting ``none``."""
    cells, models, settings = r.cells, r.models, r.settings

    def names(i: str) -> list[tuple[str, str]]:
        """(setting, label) of a row: a pre-trained one starts with the weights before
        fine-tuning."""
        out = [(s.name, s.label) for s in settings]
        return [(NO_REAL_DATA, NO_REAL_DATA_LABEL), *out] if i == "pretrained" else out

    tables = {
        key: {
            m: {i: {n: rounded(cells[m, i, n].stats[key].mean) for n, _ in names(i)}
                for i in INITS}
            for m in models
        }
        for key in RUN_METRICS
    }
    out = {
        "units": "mm; pck and auc in %",
        "definitions": _definitions(r),
        "settings": {
            s.name: {
                "label": s.label,
                "subjects": s.subjects,
                "fraction": s.fraction,
                "runs": s.runs,
                "train_frames": rounded(r.train_frames(s.name), 1),
                "steps_per_run": rounded(r.steps(s.name), 1),
            }
            for s in settings
        },
        "test_set": r.test_set.as_dict(),
        "tables": tables,
        "cells": {
            m: {i: {n: {"label": label, **cell_json(cells[m, i, n])} for n, label in names(i)}
                for i in INITS}
            for m in models
        },
        "paired_tests": {
            m: {s.name: paired_json(r.tests[m, s.name]) for s in settings} for m in models
        },
        "mean_pose": {s.name: mean_pose_json(r.mean_pose[s.name]) for s in settings},
        "above_mean_pose": [
            {"model": m, "init": i, "setting": s.name}
            for m, i in r.rows() for s in settings if r.above_mean_pose(m, i, s.name)
        ],
        "scratch_untrained": _scratch_json(r.scratch),
        "pretrain": {m: r.pretrain[m] for m in models if m in r.pretrain},
        "frames_worth": {w.model: frames_worth_json(w) for w in r.frames_worth()},
        "weight_movement": weight_movement_json(r),
        "qualitative": r.qualitative.info(),
    }
    return dump_json(out)
