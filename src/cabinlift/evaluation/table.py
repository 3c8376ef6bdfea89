"""Text outputs of the evaluate stage: table1.json, table1.md, runs.csv and the wall times.

Each function returns the file's text, so the caller can render everything before writing
anything (an error never leaves half the outputs new and half old) and so tests can compare
strings. Output is deterministic: fixed key order, fixed float formats, '\\n' line ends.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cabinlift.config import INITS, NO_REAL_DATA, Pck
from cabinlift.evaluation.aggregate import (
    CellSummary,
    RunResult,
    best_at_last_check,
)
from cabinlift.evaluation.paired import PairedTest, significance_mark
from cabinlift.evaluation.reference import MeanPoseReference
from cabinlift.evaluation.settings import (
    MEAN_POSE_KEY,
    MEAN_POSE_LABEL,
    NO_REAL_DATA_LABEL,
    Setting,
    model_label,
)

Cells = Mapping[tuple[str, str, str], CellSummary]
Tests = Mapping[tuple[str, str], PairedTest]
MeanPose = Mapping[str, MeanPoseReference]

TABLE_HEADER = "Average test-set MPJPE [mm] by amount of fine-tuning data"

#: Marks a model cell whose mean lies above the mean-training-pose reference of its setting.
ABOVE_MEAN_POSE = "†"

RUNS_CSV_COLUMNS: tuple[str, ...] = (
    "model", "init", "setting", "repetition", "subjects", "train_subjects", "train_frames",
    "epochs_run", "best_epoch", "best_val_mpjpe", "test_mpjpe", "test_pmpjpe", "test_pck",
    "test_auc", "test_activity_macro", "steps", "stopped_early", "best_at_last_check",
)


def rounded(x: float | None, nd: int = 3) -> float | None:
    """Round for JSON; NaN/None become null (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return None if not math.isfinite(x) else round(x, nd)


def _clean(obj: Any) -> Any:
    """JSON-safe copy: non-finite floats (which JSON cannot hold) become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def dump_json(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _json_row(cells: Cells, m: str, i: str, settings: list[Setting]) -> dict[str, float | None]:
    """One Table 1 row; a pre-trained row starts with the weights before fine-tuning."""
    row = {NO_REAL_DATA: rounded(cells[m, i, NO_REAL_DATA].mean, 2)} if i == "pretrained" else {}
    row.update({s.name: rounded(cells[m, i, s.name].mean, 2) for s in settings})
    return row


def table1_json(cells: Cells, models: list[str], settings: list[Setting], mean_pose: MeanPose
                ) -> str:
    """``{model: {init: {setting: mean MPJPE}}, "mean_pose": {setting: reference}}`` rounded to
    0.01 mm, pre-trained rows with ``none`` (no real data) first: the only DVC metrics file,
    nested with dot-free keys so that ``dvc metrics diff`` lists every cell."""
    out: dict[str, Any] = {m: {i: _json_row(cells, m, i, settings) for i in INITS} for m in models}
    out[MEAN_POSE_KEY] = {s.name: rounded(mean_pose[s.name].mean, 2) for s in settings}
    return dump_json(out)


def _shown(x: float) -> float:
    """The value as Table 1 shows it (one decimal): ties are judged at the shown precision,
    as in the paper, whose underline marks both 46.0 cells."""
    return float(f"{x:.1f}")


def _fmt_frames(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def _setting_mean(cells: Cells, setting: str, key: str) -> float:
    vals = [
        r.record[key]
        for (_, _, s), c in cells.items()
        if s == setting
        for r in c.runs
    ]
    return float(np.mean(vals))


def setting_train_frames(cells: Cells, setting: str) -> float:
    """Mean training frames of a setting over all its runs (the subsets are shared by models)."""
    return _setting_mean(cells, setting, "train_frames")


def setting_steps(cells: Cells, setting: str) -> float:
    """Mean optimiser steps per run of a setting, over the runs of every model and init."""
    return _setting_mean(cells, setting, "steps")


def _rows(models: list[str]) -> Iterable[tuple[str, str]]:
    for m in models:
        for i in INITS:
            yield m, i


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _metric_rows(cells: Cells, models: list[str], settings: list[Setting], key: str
                 ) -> list[list[str]]:
    return [
        [model_label(m, i), _no_real_data(cells, m, i, lambda c: _fmt_mean(c.stats[key].mean)),
         *(_fmt_mean(cells[m, i, s.name].stats[key].mean) for s in settings)]
        for m, i in _rows(models)
    ]


def _mean_sd(cell: CellSummary) -> str:
    """``mean ± std`` over a cell's runs (the mean alone for a single run)."""
    return f"{cell.mean:.1f}" if cell.std is None else f"{cell.mean:.1f} ± {cell.std:.1f}"


def _no_real_data(cells: Cells, m: str, i: str, fmt: Callable[[CellSummary], str]) -> str:
    """The "No real data" cell of a row: filled on pre-trained rows only."""
    return fmt(cells[m, i, NO_REAL_DATA]) if i == "pretrained" else "—"


def above_mean_pose(cell: CellSummary, reference: MeanPoseReference) -> bool:
    """Whether a cell's mean MPJPE is above the mean-training-pose reference of its setting:
    its runs learned less than the constant mean pose of their own training frames."""
    return cell.mean > reference.mean


@dataclass(frozen=True)
class ScratchBound:
    """Scratch runs against the mean pose of their own training frames: ``fewest_steps`` is
    the fewest gradient steps of a scratch run that predicted the test poses better than that
    constant (None: no run did); every scratch run with fewer steps did not (``runs_fewer`` of
    ``runs``, ``most_steps`` the most steps of any)."""

    fewest_steps: int | None
    runs_fewer: int
    runs: int
    most_steps: int

    def sentence(self) -> str:
        if self.fewest_steps is None:
            return (f"No run from scratch predicted the test poses better than the mean pose of "
                    f"its own training frames (up to {self.most_steps} gradient steps): read "
                    "the scratch rows as untrained.")
        return (f"No run from scratch with fewer than {self.fewest_steps} gradient steps "
                f"predicted the test poses better than the mean pose of its own training "
                f"frames ({self.runs_fewer} of {self.runs} scratch runs had fewer): read their "
                "cells as untrained, not as the lifter's accuracy.")


def scratch_bound(cells: Cells, models: Sequence[str], settings: Sequence[Setting],
                  mean_pose: MeanPose) -> ScratchBound:
    """Where training from scratch starts to beat a constant: each scratch run is compared
    with the mean-pose reference of the same setting and repetition (same training frames)."""
    pairs = []
    for s in settings:
        reference = {r.repetition: r.mpjpe for r in mean_pose[s.name].runs}
        for m in models:
            for run in cells[m, "scratch", s.name].runs:
                pairs.append((int(run.record["steps"]),
                              run.mpjpe < reference[int(run.record["repetition"])]))
    beating = [steps for steps, beats in pairs if beats]
    fewest = min(beating) if beating else None
    fewer = sum(steps < fewest for steps, _ in pairs) if fewest is not None else len(pairs)
    return ScratchBound(fewest, fewer, len(pairs), max((st for st, _ in pairs), default=0))


def convergence_text(cell: CellSummary) -> str:
    """``2 early / 5 at last / 8``: runs stopped early, runs that ran out of epochs with their
    best validation at the last one, runs."""
    return f"{cell.n_stopped_early} early / {cell.n_best_at_last_check} at last / {cell.n_runs}"


def _fmt_mean(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.1f}"


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def table1_markdown(
    cells: Cells, models: list[str], settings: list[Setting], tests: Tests, alpha: float,
    metrics: Pck, mean_pose: MeanPose,
) -> str:
    """Table 1 as in the paper (rows SimpleBL, PT SimpleBL, ...; bold = best per column,
    underline = best overall) with a first column for the pre-trained weights before any
    fine-tuning, a reference row for the mean training pose and marks on the cells above it;
    then the spread over runs with significance marks, the paired pre-training differences,
    P-MPJPE, 3DPCK and AUC, the convergence of the runs, the training frames and steps."""
    header = ["Model", *(s.label for s in settings)]
    header_none = ["Model", NO_REAL_DATA_LABEL, *(s.label for s in settings)]
    col_best = {s.name: min(_shown(cells[m, i, s.name].mean) for m, i in _rows(models))
                for s in settings}
    none_best = min(_shown(cells[m, "pretrained", NO_REAL_DATA].mean) for m in models)
    overall = min(none_best, *col_best.values())

    def marked(v: float, best: float) -> str:
        text = f"{v:.1f}"
        if v == overall:
            text = f"<u>{text}</u>"
        if v == best:
            text = f"**{text}**"
        return text

    main_rows = []
    for m, i in _rows(models):
        row = [model_label(m, i),
               _no_real_data(cells, m, i, lambda c: marked(_shown(c.mean), none_best))]
        for s in settings:
            c = cells[m, i, s.name]
            text = marked(_shown(c.mean), col_best[s.name])
            if above_mean_pose(c, mean_pose[s.name]):
                text += ABOVE_MEAN_POSE
            row.append(text)
        main_rows.append(row)
    main_rows.append([MEAN_POSE_LABEL, "—", *(f"{mean_pose[s.name].mean:.1f}" for s in settings)])

    spread_rows = []
    for m, i in _rows(models):
        row = [model_label(m, i), _no_real_data(cells, m, i, _mean_sd)]
        for s in settings:
            c = cells[m, i, s.name]
            mark = significance_mark(tests[m, s.name].p_holm, alpha) if i == "pretrained" else ""
            row.append(_mean_sd(c) + mark)
        spread_rows.append(row)
    n_runs = "; ".join(
        f"{s.label}: {cells[models[0], INITS[0], s.name].n_runs}" for s in settings
    )

    gain_rows = []
    for m in models:
        row = [model_label(m, "pretrained")]
        for s in settings:
            t = tests[m, s.name]
            if t.mean_diff is None:
                row.append("—")
            elif t.ci95 is None:
                row.append(f"{t.mean_diff:+.1f} (n={t.n_pairs})")
            else:
                row.append(
                    f"{t.mean_diff:+.1f} [{t.mean_diff - t.ci95:+.1f}, {t.mean_diff + t.ci95:+.1f}]"
                    f" p={_fmt_p(t.p_holm)}{significance_mark(t.p_holm, alpha)}"
                )
        gain_rows.append(row)

    frames = "; ".join(
        f"{s.label}: {_fmt_frames(setting_train_frames(cells, s.name))}" for s in settings
    )
    steps = "; ".join(
        f"{s.label}: {_fmt_frames(round(setting_steps(cells, s.name), 1))}" for s in settings
    )
    convergence_rows = [
        [model_label(m, i), *(convergence_text(cells[m, i, s.name]) for s in settings)]
        for m, i in _rows(models)
    ]
    steps_rows = [
        [model_label(m, i), *(f"{cells[m, i, s.name].mean_steps:.0f}" for s in settings)]
        for m, i in _rows(models)
    ]
    lines = [
        "# Table 1",
        "",
        f"## {TABLE_HEADER}",
        "",
        *_md_table(header_none, main_rows),
        "",
        "Mean over the runs of each setting, on the real test subjects, valid joints only. "
        "*PT* denotes synthetic pre-training. **Bold**: best model per amount of data; "
        "<u>underlined</u>: best overall (ties at the shown precision are all marked). "
        f"*{NO_REAL_DATA_LABEL}*: the pre-trained weights evaluated before any fine-tuning "
        "(one evaluation per pre-training; the zero point of every PT curve; a model from "
        "scratch has none). "
        f"*{MEAN_POSE_LABEL}*: a reference, not a model: each run of the setting predicts the "
        "mean neck-centred pose of its own training frames for every test frame (each joint "
        "averaged over the frames where it is annotated), mean over runs. "
        f"{ABOVE_MEAN_POSE}: the cell is above that reference, so its runs learned less than a "
        "constant.",
        "",
        scratch_bound(cells, models, settings, mean_pose).sentence(),
        "",
        "## Spread and significance: mean ± std over runs",
        "",
        *_md_table(header_none, spread_rows),
        "",
        f"Runs per setting: {n_runs}. Std is the sample standard deviation over runs (none for "
        f"a single run). PT cells are marked `*`, `**`, `***` where the paired t-test of "
        f"pre-trained vs scratch over matched runs, Holm-adjusted over all "
        f"{len(tests)} model × setting tests, is below {alpha:g}, {alpha / 5:g}, "
        f"{alpha / 50:g}; unmarked PT cells are not distinguishable from scratch at that level.",
        "",
        "## Pre-training effect: PT − scratch MPJPE [mm] over matched runs",
        "",
        *_md_table(header, gain_rows),
        "",
        "Mean difference over runs trained on the same subset (single-subject settings: the same "
        "subject), its 95 % CI (Student t) and the Holm-adjusted p-value of the paired t-test; "
        "negative = pre-training lowers the error. Unadjusted t-test and Wilcoxon signed-rank "
        "p-values are in summary.json.",
        "",
        "## P-MPJPE [mm] (prediction Procrustes-aligned onto ground truth per frame), mean over "
        "runs",
        "",
        *_md_table(header_none, _metric_rows(cells, models, settings, "p_mpjpe")),
        "",
        f"## 3DPCK@{metrics.threshold_mm:g} mm [%] (valid joints within "
        f"{metrics.threshold_mm:g} mm), mean over runs",
        "",
        *_md_table(header_none, _metric_rows(cells, models, settings, "pck")),
        "",
        f"## AUC of 3DPCK over 0–{metrics.auc_max_mm:g} mm ({metrics.auc_steps} thresholds) [%], "
        "mean over runs",
        "",
        *_md_table(header_none, _metric_rows(cells, models, settings, "auc")),
        "",
        "## Convergence: runs stopped early / runs best at the last check / runs",
        "",
        *_md_table(header, convergence_rows),
        "",
        "*early*: runs ended by early stopping (no better validation for `train.patience` "
        "checks in a row); *at last*: runs that used all `train.max_epochs` epochs and had "
        "their best validation at the last check, i.e. were still improving when training "
        "ended. A cell where most runs had their best at the last check was limited by the "
        "epoch budget: more epochs would likely lower its error.",
        "",
        "Optimiser steps per run, mean over runs:",
        "",
        *_md_table(header, steps_rows),
        "",
        f"Training frames per setting (mean over runs): {frames}.",
        "",
        f"Optimiser steps per run per setting (mean over the runs of every model and init): "
        f"{steps}.",
        "",
    ]
    short = [
        f"{model_label(m, i)} / {s.label}: {cells[m, i, s.name].n_runs} of {s.runs}"
        for m, i in _rows(models)
        for s in settings
        if cells[m, i, s.name].n_runs != s.runs
    ]
    if short:  # e.g. fewer subject combinations exist than requested; say so, don't hide it
        lines += [f"Runs differing from the configured repetitions: {'; '.join(short)}.", ""]
    unpaired = [f"{model_label(m, 'pretrained')} / {s.label}: {tests[m, s.name].unpaired}"
                for m in models for s in settings if tests[m, s.name].unpaired]
    if unpaired:
        lines += [f"Runs without a matching run on the other side (left out of the paired "
                  f"tests): {'; '.join(unpaired)}.", ""]
    return "\n".join(lines)


def csv_text(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """CSV with '\\n' line ends, as every CSV output of the stage is written."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _run_rows(cells: Cells, models: list[str], settings: list[Setting], no_real_data: bool
              ) -> Iterable[tuple[str, str, str, RunResult]]:
    """(model, init, setting name, run) in output order: models, inits, settings (with the
    pre-trained weights before fine-tuning first when ``no_real_data``), repetitions."""
    for m, i in _rows(models):
        names = [s.name for s in settings]
        if no_real_data and i == "pretrained":
            names.insert(0, NO_REAL_DATA)
        for name in names:
            for r in cells[m, i, name].runs:  # already sorted by repetition
                yield m, i, name, r


def _flag(x: bool) -> str:
    return "true" if x else "false"


def runs_csv(cells: Cells, models: list[str], settings: list[Setting]) -> str:
    """One row per run, ordered by model, init, setting (given orders; a pre-trained model's
    weights before fine-tuning, setting ``none``, first) and repetition."""
    return csv_text(RUNS_CSV_COLUMNS, (
        [
            m, i, name, r.record["repetition"],
            ";".join(str(x) for x in r.record["subjects"]), len(r.record["subjects"]),
            r.record["train_frames"], r.record["epochs_run"], r.record["best_epoch"],
            f"{r.record['best_val_mpjpe']:.4f}", f"{r.mpjpe:.4f}", f"{r.p_mpjpe:.4f}",
            f"{r.pck:.4f}", f"{r.auc:.4f}",
            "" if math.isnan(r.activity_macro) else f"{r.activity_macro:.4f}",
            r.record["steps"], _flag(r.record["stopped_early"]),
            _flag(best_at_last_check(r.record)),
        ]
        for m, i, name, r in _run_rows(cells, models, settings, no_real_data=True)
    ))


def wall_times_csv(cells: Cells, models: list[str], settings: list[Setting]) -> str:
    """``model,init,setting,repetition,wall_time_s``: the runs' training wall times (from the
    fine-tuning logs; empty where none was logged). Kept apart from runs.csv, whose bytes must
    be identical for identical params. Training runs only (no row for the weights before
    fine-tuning, which were not trained)."""
    return csv_text(("model", "init", "setting", "repetition", "wall_time_s"), (
        [m, i, name, r.record["repetition"],
         "" if math.isnan(r.record["wall_time_s"]) else f"{r.record['wall_time_s']:.2f}"]
        for m, i, name, r in _run_rows(cells, models, settings, no_real_data=False)
    ))
