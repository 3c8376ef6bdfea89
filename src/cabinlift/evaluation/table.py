"""Text outputs of the evaluate stage: table1.json, table1.md, runs.csv and the wall times.

Each function renders one file's text from the
:class:`~cabinlift.evaluation.results.EvaluationResults` alone, so the caller can render
everything before writing anything (an error never leaves half the outputs new and half old)
and so tests can compare strings. table1.md is the concatenation of its sections
(:data:`TABLE1_SECTIONS`), each a function of the results too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from cabinlift.config import INITS, NO_REAL_DATA
from cabinlift.evaluation.aggregate import CellSummary, RunResult, best_at_last_check
from cabinlift.evaluation.frames_worth import AT_MOST, MORE_THAN, CellWorth, FrameCount
from cabinlift.evaluation.outputs import csv_text, dump_json, rounded
from cabinlift.evaluation.paired import significance_mark
from cabinlift.evaluation.results import EvaluationResults, ScratchBound
from cabinlift.evaluation.settings import (
    MEAN_POSE_KEY,
    MEAN_POSE_LABEL,
    NO_REAL_DATA_LABEL,
    model_label,
)
from cabinlift.evaluation.weight_movement import CellMovement

TABLE_HEADER = "Average test-set MPJPE [mm] by amount of fine-tuning data"

#: Marks a model cell whose mean lies above the mean-training-pose reference of its setting.
ABOVE_MEAN_POSE = "†"

RUNS_CSV_COLUMNS: tuple[str, ...] = (
    "model", "init", "setting", "repetition", "subjects", "train_subjects", "train_frames",
    "epochs_run", "best_epoch", "best_val_mpjpe", "test_mpjpe", "test_pmpjpe", "test_pck",
    "test_auc", "test_activity_macro", "steps", "stopped_early", "best_at_last_check",
)

#: Significant digits of an interpolated frame count (the curve is measured at a few settings)
#: and of its multiple of a cell's own frames.
FRAME_COUNT_DIGITS = 3
RATIO_DIGITS = 2
#: How a frame count that is a bound is written: ``> 300``, ``≤ 2``.
BOUND_PREFIX = {MORE_THAN: "> ", AT_MOST: "≤ "}

Lines = list[str]


def _json_row(r: EvaluationResults, m: str, i: str) -> dict[str, float | None]:
    """One Table 1 row; a pre-trained row starts with the weights before fine-tuning."""
    cells = r.cells
    row = {NO_REAL_DATA: rounded(cells[m, i, NO_REAL_DATA].mean, 2)} if i == "pretrained" else {}
    row.update({s.name: rounded(cells[m, i, s.name].mean, 2) for s in r.settings})
    return row


def table1_json(r: EvaluationResults) -> str:
    """``{model: {init: {setting: mean MPJPE}}, "mean_pose": {setting: reference}}`` rounded to
    0.01 mm, pre-trained rows with ``none`` (no real data) first: the only DVC metrics file,
    nested with dot-free keys so that ``dvc metrics diff`` lists every cell."""
    out: dict[str, Any] = {m: {i: _json_row(r, m, i) for i in INITS} for m in r.models}
    out[MEAN_POSE_KEY] = {s.name: rounded(r.mean_pose[s.name].mean, 2) for s in r.settings}
    return dump_json(out)


def _shown(x: float) -> float:
    """The value as Table 1 shows it (one decimal): ties are judged at the shown precision,
    as in the paper, whose underline marks both 46.0 cells."""
    return float(f"{x:.1f}")


def _fmt_frames(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def _fmt_mean(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.1f}"


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _fmt_count(count: FrameCount, digits: int = FRAME_COUNT_DIGITS) -> str:
    """``1,240`` (``digits`` significant digits, thousands separated), ``> 300`` or ``≤ 2``."""
    value = float(f"{count.frames:.{digits}g}")
    text = f"{value:,.0f}" if value.is_integer() else f"{value:,g}"
    return BOUND_PREFIX.get(count.bound, "") + text


def _md_table(header: list[str], rows: list[list[str]]) -> Lines:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _header(r: EvaluationResults, no_real_data: bool) -> list[str]:
    """Column labels: the model, (the pre-trained weights before fine-tuning,) the settings."""
    first = [NO_REAL_DATA_LABEL] if no_real_data else []
    return ["Model", *first, *(s.label for s in r.settings)]


def _section(title: str, header: list[str], rows: list[list[str]], *text: str) -> Lines:
    """``## title``, a table, then each paragraph of ``text``; every block followed by a blank
    line."""
    lines = [f"## {title}", "", *_md_table(header, rows), ""]
    for paragraph in text:
        lines += [paragraph, ""]
    return lines


def _no_real_data(r: EvaluationResults, m: str, i: str, fmt: Callable[[CellSummary], str]
                  ) -> str:
    """The "No real data" cell of a row: filled on pre-trained rows only."""
    return fmt(r.cells[m, i, NO_REAL_DATA]) if i == "pretrained" else "—"


def _mean_sd(cell: CellSummary) -> str:
    """``mean ± std`` over a cell's runs (the mean alone for a single run)."""
    return f"{cell.mean:.1f}" if cell.std is None else f"{cell.mean:.1f} ± {cell.std:.1f}"


def scratch_sentence(bound: ScratchBound) -> str:
    """The sentence under Table 1 saying where scratch runs start to beat a constant."""
    if bound.fewest_steps is None:
        return (f"No run from scratch predicted the test poses better than the mean pose of "
                f"its own training frames (up to {bound.most_steps} gradient steps): read "
                "the scratch rows as untrained.")
    return (f"No run from scratch with fewer than {bound.fewest_steps} gradient steps "
            f"predicted the test poses better than the mean pose of its own training "
            f"frames ({bound.runs_fewer} of {bound.runs} scratch runs had fewer): read their "
            "cells as untrained, not as the lifter's accuracy.")


def main_section(r: EvaluationResults) -> Lines:
    """Table 1 as in the paper (rows SimpleBL, PT SimpleBL, ...; bold = best per column,
    underline = best overall) with a first column for the pre-trained weights before any
    fine-tuning, a reference row for the mean training pose and marks on the cells above it,
    and where scratch runs start to beat that reference."""
    cells = r.cells
    col_best = {s.name: min(_shown(cells[m, i, s.name].mean) for m, i in r.rows())
                for s in r.settings}
    none_best = min(_shown(cells[m, "pretrained", NO_REAL_DATA].mean) for m in r.models)
    overall = min(none_best, *col_best.values())

    def marked(v: float, best: float) -> str:
        text = f"{v:.1f}"
        if v == overall:
            text = f"<u>{text}</u>"
        if v == best:
            text = f"**{text}**"
        return text

    rows = []
    for m, i in r.rows():
        row = [model_label(m, i), _no_real_data(r, m, i, lambda c: marked(_shown(c.mean),
                                                                          none_best))]
        for s in r.settings:
            text = marked(_shown(cells[m, i, s.name].mean), col_best[s.name])
            row.append(text + ABOVE_MEAN_POSE if r.above_mean_pose(m, i, s.name) else text)
        rows.append(row)
    rows.append([MEAN_POSE_LABEL, "—", *(f"{r.mean_pose[s.name].mean:.1f}" for s in r.settings)])
    legend = (
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
        "constant."
    )
    return _section(TABLE_HEADER, _header(r, True), rows, legend, scratch_sentence(r.scratch))


def spread_section(r: EvaluationResults) -> Lines:
    """Mean ± std of every cell, pre-trained cells marked by the significance of their paired
    test."""
    rows = []
    for m, i in r.rows():
        row = [model_label(m, i), _no_real_data(r, m, i, _mean_sd)]
        for s in r.settings:
            mark = (significance_mark(r.tests[m, s.name].p_holm, r.alpha) if i == "pretrained"
                    else "")
            row.append(_mean_sd(r.cells[m, i, s.name]) + mark)
        rows.append(row)
    n_runs = "; ".join(
        f"{s.label}: {r.cells[r.models[0], INITS[0], s.name].n_runs}" for s in r.settings
    )
    alpha = r.alpha
    text = (
        f"Runs per setting: {n_runs}. Std is the sample standard deviation over runs (none for "
        f"a single run). PT cells are marked `*`, `**`, `***` where the paired t-test of "
        f"pre-trained vs scratch over matched runs, Holm-adjusted over all "
        f"{len(r.tests)} model × setting tests, is below {alpha:g}, {alpha / 5:g}, "
        f"{alpha / 50:g}; unmarked PT cells are not distinguishable from scratch at that level."
    )
    return _section("Spread and significance: mean ± std over runs", _header(r, True), rows,
                    text)


def gain_section(r: EvaluationResults) -> Lines:
    """The paired pre-trained − scratch differences with their CI and Holm-adjusted p."""
    rows = []
    for m in r.models:
        row = [model_label(m, "pretrained")]
        for s in r.settings:
            t = r.tests[m, s.name]
            if t.mean_diff is None:
                row.append("—")
            elif t.ci95 is None:
                row.append(f"{t.mean_diff:+.1f} (n={t.n_pairs})")
            else:
                row.append(
                    f"{t.mean_diff:+.1f} [{t.mean_diff - t.ci95:+.1f}, {t.mean_diff + t.ci95:+.1f}]"
                    f" p={_fmt_p(t.p_holm)}{significance_mark(t.p_holm, r.alpha)}"
                )
        rows.append(row)
    text = (
        "Mean difference over runs trained on the same subset (single-subject settings: the same "
        "subject), its 95 % CI (Student t) and the Holm-adjusted p-value of the paired t-test; "
        "negative = pre-training lowers the error. Unadjusted t-test and Wilcoxon signed-rank "
        "p-values are in summary.json."
    )
    return _section("Pre-training effect: PT − scratch MPJPE [mm] over matched runs",
                    _header(r, False), rows, text)


def _worth_cell(c: CellWorth) -> str:
    """``≈ 1,240 (880–1,900) frames, 4.1×``: the scratch frames equivalent to a pre-trained
    cell, their range over the cell's 95 % CI and the multiple of the cell's own frames; a
    bound where the scratch curve does not cross (``> 300 frames, > 150×``)."""
    eq = c.equivalent
    text = _fmt_count(eq) if eq.bound in BOUND_PREFIX else f"≈ {_fmt_count(eq)}"
    if c.low is not None and c.high is not None and not c.low == c.high == eq:
        low, high = _fmt_count(c.low), _fmt_count(c.high)
        dash = " – " if {c.low.bound, c.high.bound} & set(BOUND_PREFIX) else "–"
        text += f" ({low}{dash}{high})"
    text += " frames"
    return text if c.ratio is None else f"{text}, {_fmt_count(c.ratio, RATIO_DIGITS)}×"


def frames_worth_section(r: EvaluationResults) -> Lines:
    """Each pre-trained cell as the real frames a scratch model needs to reach it, and per
    model the smallest amount of real data at which the paired gain is not significant."""
    worth = r.frames_worth()
    rows = [[model_label(w.model, "pretrained"), *(_worth_cell(c) for c in w.cells)]
            for w in worth]
    frames = {s.name: _fmt_count(FrameCount(r.train_frames(s.name))) for s in r.settings}
    largest = max(r.settings, key=lambda s: r.train_frames(s.name))
    smallest = min(r.settings, key=lambda s: r.train_frames(s.name))
    text = (
        "Real training frames a model trained from scratch needs to reach the pre-trained "
        "cell's mean test MPJPE, interpolated linearly in log(frames) between the settings of "
        "the model's scratch row (the first crossing in increasing frames); in parentheses the "
        "same at the cell's mean + and − its 95 % CI (a lower error needs more frames); then "
        "that count per real frame the cell itself trained on. "
        f"`>`: not reached within the largest setting ({largest.label}, "
        f"{frames[largest.name]} frames), `≤`: reached already at the smallest "
        f"({smallest.label}, {frames[smallest.name]} frames): bounds, not extrapolations."
    )
    sentences = []
    for w in worth:
        name = model_label(w.model, "pretrained")
        first = w.not_significant
        if first is None:
            sentences.append(f"{name}: the paired gain is significant at every amount of real "
                             f"data, up to {largest.label.lower()} ({frames[largest.name]} "
                             "frames).")
        else:
            p = r.tests[w.model, first.name].p_holm
            why = ("a single pair, no paired test" if p is None
                   else f"Holm-adjusted p = {_fmt_p(p)}, not below {r.alpha:g}")
            sentences.append(f"{name}: the smallest amount of real data at which the paired "
                             f"gain is not significant is {first.label.lower()} "
                             f"({frames[first.name]} frames; {why}).")
    return _section("What pre-training is worth: scratch frames to reach each PT cell",
                    _header(r, True), rows, text, "\n".join(f"- {x}" for x in sentences))


#: Decimals of a relative weight change, in per cent.
CHANGE_DECIMALS = 2
WEIGHT_MOVEMENT_TITLE = ("How far fine-tuning moves the pre-trained weights: relative change [%]; "
                         "gain kept [mm]")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.{CHANGE_DECIMALS}f}"


def _movement_cell(c: CellMovement) -> str:
    """``3.61 % [3.59–3.62]; +5.2 mm``: the median whole-model change over the cell's runs
    with its quartiles (the median alone for a single run), and the gain the cell keeps."""
    w = c.whole
    text = f"{_pct(w.median)} %"
    if w.n > 1:
        text += f" [{_pct(w.q1)}–{_pct(w.q3)}]"
    return text + ("" if c.gain is None else f"; {c.gain:+.1f} mm")


def weight_movement_section(r: EvaluationResults) -> Lines:
    """Per pre-trained cell the relative change of the whole model from its pre-training to
    its fine-tuned weights, next to the gain it keeps; per setting, whether the lifters that
    move less keep more (rank correlation)."""
    movement, rho = r.weight_movement(), r.movement_vs_gain()
    if movement is None or rho is None:
        return [f"## {WEIGHT_MOVEMENT_TITLE}", "",
                "Not measured: the evaluation was not given the pre-training checkpoints.", ""]
    rows = [[model_label(w.model, "pretrained"), *(_movement_cell(c) for c in w.cells)]
            for w in movement]
    text = (
        "Relative change ‖W_ft − W_PT‖ / ‖W_PT‖ (L2) of all parameters of the model together, "
        "from the pre-training checkpoint each run started from to its fine-tuned checkpoint "
        "(the weights of its best validation); parameters only, batch-norm running statistics "
        "and other buffers excluded. Median over the cell's runs [quartiles]; then the gain "
        "the cell keeps: scratch − PT MPJPE over matched runs (the difference of the section "
        "above, negated). Per-layer "
        "medians: summary.json (`weight_movement`) and plots/weight_movement.png."
    )
    shown = "; ".join(f"{s.label}: " + ("—" if rho[s.name] is None else f"{rho[s.name]:+.2f}")
                      for s in r.settings)
    corr = (f"Spearman's rank correlation over the {len(movement)} lifters of their median "
            "change and their gain, per setting (negative: the lifters that move their weights "
            f"less keep more of the gain; — with fewer than three): {shown}.")
    return _section(WEIGHT_MOVEMENT_TITLE, _header(r, False), rows, text, corr)


def _metric_section(r: EvaluationResults, title: str, key: str) -> Lines:
    """The mean over runs of one more metric in every cell."""
    rows = [
        [model_label(m, i), _no_real_data(r, m, i, lambda c: _fmt_mean(c.stats[key].mean)),
         *(_fmt_mean(r.cells[m, i, s.name].stats[key].mean) for s in r.settings)]
        for m, i in r.rows()
    ]
    return _section(title, _header(r, True), rows)


def p_mpjpe_section(r: EvaluationResults) -> Lines:
    return _metric_section(r, "P-MPJPE [mm] (prediction Procrustes-aligned onto ground truth "
                              "per frame), mean over runs", "p_mpjpe")


def pck_section(r: EvaluationResults) -> Lines:
    t = r.pck.threshold_mm
    return _metric_section(r, f"3DPCK@{t:g} mm [%] (valid joints within {t:g} mm), mean over "
                              "runs", "pck")


def auc_section(r: EvaluationResults) -> Lines:
    return _metric_section(r, f"AUC of 3DPCK over 0–{r.pck.auc_max_mm:g} mm "
                              f"({r.pck.auc_steps} thresholds) [%], mean over runs", "auc")


def convergence_text(cell: CellSummary) -> str:
    """``2 early / 5 at last / 8``: runs stopped early, runs that ran out of epochs with their
    best validation at the last one, runs."""
    return f"{cell.n_stopped_early} early / {cell.n_best_at_last_check} at last / {cell.n_runs}"


def convergence_section(r: EvaluationResults) -> Lines:
    """How the runs ended, their optimiser steps, and the training frames and steps per
    setting."""
    header = _header(r, False)
    convergence_rows = [
        [model_label(m, i), *(convergence_text(r.cells[m, i, s.name]) for s in r.settings)]
        for m, i in r.rows()
    ]
    steps_rows = [
        [model_label(m, i), *(f"{r.cells[m, i, s.name].mean_steps:.0f}" for s in r.settings)]
        for m, i in r.rows()
    ]
    frames = "; ".join(f"{s.label}: {_fmt_frames(r.train_frames(s.name))}" for s in r.settings)
    steps = "; ".join(
        f"{s.label}: {_fmt_frames(round(r.steps(s.name), 1))}" for s in r.settings
    )
    text = (
        "*early*: runs ended by early stopping (no better validation for `train.patience` "
        "checks in a row); *at last*: runs that used all `train.max_epochs` epochs and had "
        "their best validation at the last check, i.e. were still improving when training "
        "ended. A cell where most runs had their best at the last check was limited by the "
        "epoch budget: more epochs would likely lower its error."
    )
    return [
        *_section("Convergence: runs stopped early / runs best at the last check / runs",
                  header, convergence_rows, text, "Optimiser steps per run, mean over runs:"),
        *_md_table(header, steps_rows),
        "",
        f"Training frames per setting (mean over runs): {frames}.",
        "",
        f"Optimiser steps per run per setting (mean over the runs of every model and init): "
        f"{steps}.",
        "",
    ]


def notes_section(r: EvaluationResults) -> Lines:
    """Cells whose runs differ from the configured repetitions, and runs left out of the
    paired tests (nothing when there are none)."""
    lines: Lines = []
    short = [
        f"{model_label(m, i)} / {s.label}: {r.cells[m, i, s.name].n_runs} of {s.runs}"
        for m, i in r.rows()
        for s in r.settings
        if r.cells[m, i, s.name].n_runs != s.runs
    ]
    if short:  # e.g. fewer subject combinations exist than requested; say so, don't hide it
        lines += [f"Runs differing from the configured repetitions: {'; '.join(short)}.", ""]
    unpaired = [f"{model_label(m, 'pretrained')} / {s.label}: {r.tests[m, s.name].unpaired}"
                for m in r.models for s in r.settings if r.tests[m, s.name].unpaired]
    if unpaired:
        lines += [f"Runs without a matching run on the other side (left out of the paired "
                  f"tests): {'; '.join(unpaired)}.", ""]
    return lines


#: The sections of table1.md, in order.
TABLE1_SECTIONS: tuple[Callable[[EvaluationResults], Lines], ...] = (
    main_section, spread_section, gain_section, frames_worth_section, weight_movement_section,
    p_mpjpe_section, pck_section, auc_section, convergence_section, notes_section,
)


def table1_markdown(r: EvaluationResults) -> str:
    """table1.md: Table 1, then the spread over runs with significance marks, the paired
    pre-training differences, what pre-training is worth in scratch frames, how far
    fine-tuning moves the pre-trained weights, P-MPJPE, 3DPCK and AUC, the convergence of the
    runs, the training frames and steps, and notes on missing or unpaired runs."""
    lines = ["# Table 1", ""]
    for section in TABLE1_SECTIONS:
        lines += section(r)
    return "\n".join(lines)


def _run_rows(r: EvaluationResults, no_real_data: bool
              ) -> Iterable[tuple[str, str, str, RunResult]]:
    """(model, init, setting name, run) in output order: models, inits, settings (with the
    pre-trained weights before fine-tuning first when ``no_real_data``), repetitions."""
    for m, i in r.rows():
        names = [s.name for s in r.settings]
        if no_real_data and i == "pretrained":
            names.insert(0, NO_REAL_DATA)
        for name in names:
            yield from ((m, i, name, run) for run in r.cells[m, i, name].runs)  # by repetition


def _flag(x: bool) -> str:
    return "true" if x else "false"


def runs_csv(r: EvaluationResults) -> str:
    """One row per run, ordered by model, init, setting (given orders; a pre-trained model's
    weights before fine-tuning, setting ``none``, first) and repetition."""
    return csv_text(RUNS_CSV_COLUMNS, (
        [
            m, i, name, run.record["repetition"],
            ";".join(str(x) for x in run.record["subjects"]), len(run.record["subjects"]),
            run.record["train_frames"], run.record["epochs_run"], run.record["best_epoch"],
            f"{run.record['best_val_mpjpe']:.4f}", f"{run.mpjpe:.4f}", f"{run.p_mpjpe:.4f}",
            f"{run.pck:.4f}", f"{run.auc:.4f}",
            "" if math.isnan(run.activity_macro) else f"{run.activity_macro:.4f}",
            run.record["steps"], _flag(run.record["stopped_early"]),
            _flag(best_at_last_check(run.record)),
        ]
        for m, i, name, run in _run_rows(r, no_real_data=True)
    ))


def wall_times_csv(r: EvaluationResults) -> str:
    """``model,init,setting,repetition,wall_time_s``: the runs' training wall times (from the
    fine-tuning logs; empty where none was logged). Kept apart from runs.csv, whose bytes must
    be identical for identical params. Training runs only (no row for the weights before
    fine-tuning, which were not trained)."""
    return csv_text(("model", "init", "setting", "repetition", "wall_time_s"), (
        [m, i, name, run.record["repetition"],
         "" if math.isnan(run.record["wall_time_s"]) else f"{run.record['wall_time_s']:.2f}"]
        for m, i, name, run in _run_rows(r, no_real_data=False)
    ))
