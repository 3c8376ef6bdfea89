"""Text outputs of the evaluate stage: table1.json, table1.md, runs.csv and details.json.

Each function returns the file's text, so the caller can render everything before writing
anything (an error never leaves half the outputs new and half old) and so tests can compare
strings. Output is deterministic: fixed key order, fixed float formats, '\\n' line ends.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from cabinlift.evaluation.aggregate import CellSummary
from cabinlift.evaluation.settings import INITS, Setting, model_label
from cabinlift.skeleton import COCO13

Cells = Mapping[tuple[str, str, str], CellSummary]

TABLE_HEADER = "Average test-set MPJPE [mm] by amount of fine-tuning data"

RUNS_CSV_COLUMNS: tuple[str, ...] = (
    "model", "init", "setting", "repetition", "subjects", "train_subjects", "train_frames",
    "epochs_run", "best_epoch", "best_val_mpjpe", "test_mpjpe", "test_pmpjpe", "wall_time_s",
)


def _r(x: float | None, nd: int = 3) -> float | None:
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


def _dump(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def table1_json(cells: Cells, models: list[str], settings: list[Setting]) -> str:
    """``{model: {init: {setting: mean MPJPE}}}`` rounded to 0.01 mm: the only DVC metrics file,
    nested with dot-free keys so that ``dvc metrics diff`` lists every cell."""
    out = {
        m: {i: {s.name: _r(cells[m, i, s.name].mean, 2) for s in settings} for i in INITS}
        for m in models
    }
    return _dump(out)


def _shown(x: float) -> float:
    """The value as Table 1 shows it (one decimal): ties are judged at the shown precision,
    as in the paper, whose underline marks both 46.0 cells."""
    return float(f"{x:.1f}")


def _fmt_frames(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def setting_train_frames(cells: Cells, setting: str) -> float:
    """Mean training frames of a setting over all its runs (the subsets are shared by models)."""
    vals = [
        r.record["train_frames"]
        for (_, _, s), c in cells.items()
        if s == setting
        for r in c.runs
    ]
    return float(np.mean(vals))


def _rows(models: list[str]) -> Iterable[tuple[str, str]]:
    for m in models:
        for i in INITS:
            yield m, i


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def table1_markdown(cells: Cells, models: list[str], settings: list[Setting]) -> str:
    """Table 1 as in the paper (rows SimpleBL, PT SimpleBL, ...; bold = best per column,
    underline = best overall), then the spread over runs, P-MPJPE and training frames."""
    header = ["Model", *(s.label for s in settings)]
    col_best = {s.name: min(_shown(cells[m, i, s.name].mean) for m, i in _rows(models))
                for s in settings}
    overall = min(col_best.values())

    main_rows = []
    for m, i in _rows(models):
        row = [model_label(m, i)]
        for s in settings:
            v = _shown(cells[m, i, s.name].mean)
            text = f"{v:.1f}"
            if v == overall:
                text = f"<u>{text}</u>"
            if v == col_best[s.name]:
                text = f"**{text}**"
            row.append(text)
        main_rows.append(row)

    spread_rows = []
    for m, i in _rows(models):
        row = [model_label(m, i)]
        for s in settings:
            c = cells[m, i, s.name]
            std = "—" if c.std is None else f"{c.std:.1f}"
            ci = "—" if c.ci95 is None else f"±{c.ci95:.1f}"
            row.append(f"{c.mean:.1f} ± {std} ({ci}, n={c.n_runs})")
        spread_rows.append(row)

    pmpjpe_rows = [
        [model_label(m, i), *(f"{cells[m, i, s.name].p_mpjpe:.1f}" for s in settings)]
        for m, i in _rows(models)
    ]
    frames = "; ".join(
        f"{s.label}: {_fmt_frames(setting_train_frames(cells, s.name))}" for s in settings
    )

    lines = [
        "# Table 1",
        "",
        f"## {TABLE_HEADER}",
        "",
        *_md_table(header, main_rows),
        "",
        "Mean over the runs of each setting, on the real test subjects, valid joints only. "
        "*PT* denotes synthetic pre-training. **Bold**: best model per amount of data; "
        "<u>underlined</u>: best overall (ties at the shown precision are all marked).",
        "",
        "## Spread over runs: mean ± std (95 % CI half-width, n runs)",
        "",
        *_md_table(header, spread_rows),
        "",
        "Std is the sample standard deviation over runs; the CI half-width uses Student's t with "
        "n−1 degrees of freedom; '—' where a setting has a single run.",
        "",
        "## P-MPJPE [mm] (prediction Procrustes-aligned onto ground truth per frame), mean over "
        "runs",
        "",
        *_md_table(header, pmpjpe_rows),
        "",
        f"Training frames per setting (mean over runs): {frames}.",
        "",
    ]
    short = [
        f"{model_label(m, i)} / {s.label}: {cells[m, i, s.name].n_runs} of {s.repetitions}"
        for m, i in _rows(models)
        for s in settings
        if cells[m, i, s.name].n_runs != s.repetitions
    ]
    if short:  # e.g. fewer subject combinations exist than requested; say so, don't hide it
        lines += [f"Runs differing from the configured repetitions: {'; '.join(short)}.", ""]
    return "\n".join(lines)


def runs_csv(cells: Cells, models: list[str], settings: list[Setting]) -> str:
    """One row per run, ordered by model, init, setting (given orders) and repetition."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RUNS_CSV_COLUMNS)
    for m, i in _rows(models):
        for s in settings:
            for r in cells[m, i, s.name].runs:  # already sorted by repetition
                rec = r.record
                w.writerow([
                    m, i, s.name, rec["repetition"],
                    ";".join(str(x) for x in rec["subjects"]), len(rec["subjects"]),
                    rec["train_frames"], rec["epochs_run"], rec["best_epoch"],
                    f"{rec['best_val_mpjpe']:.4f}", f"{r.mpjpe:.4f}", f"{r.p_mpjpe:.4f}",
                    "" if math.isnan(rec["wall_time_s"]) else f"{rec['wall_time_s']:.2f}",
                ])
    return buf.getvalue()


def cell_details(c: CellSummary) -> dict[str, Any]:
    """The statistics of one cell, as stored in details.json."""
    return {
        "n_runs": c.n_runs,
        "mean": _r(c.mean),
        "std": _r(c.std),
        "ci95": _r(c.ci95),
        "min": _r(min(r.mpjpe for r in c.runs)),
        "max": _r(max(r.mpjpe for r in c.runs)),
        "p_mpjpe": _r(c.p_mpjpe),
        "train_frames": _r(c.train_frames, 1),
        "per_joint": {name: _r(v) for name, v in zip(COCO13, c.per_joint, strict=True)},
        "per_activity": {a: _r(v) for a, v in c.per_activity.items()},
        "runs": [
            {"repetition": r.record["repetition"], "mpjpe": _r(r.mpjpe), "p_mpjpe": _r(r.p_mpjpe)}
            for r in c.runs
        ],
    }


def details_json(
    cells: Cells,
    models: list[str],
    settings: list[Setting],
    test_info: Mapping[str, Any],
    pretrain: Mapping[str, Any],
    qualitative: Mapping[str, Any] | None,
) -> str:
    """Everything beyond Table 1 (spread, P-MPJPE, per joint, per activity, frames, pre-training
    summaries); not declared as DVC metrics, so its structure is free."""
    out = {
        "units": "mm",
        "settings": {
            s.name: {
                "label": s.label,
                "subjects": s.subjects,
                "fraction": s.fraction,
                "repetitions": s.repetitions,
                "train_frames": _r(setting_train_frames(cells, s.name), 1),
            }
            for s in settings
        },
        "test_set": dict(test_info),
        "results": {
            m: {
                i: {s.name: {"label": s.label, **cell_details(cells[m, i, s.name])}
                    for s in settings}
                for i in INITS
            }
            for m in models
        },
        "pretrain": {m: pretrain[m] for m in models if m in pretrain},
        "qualitative": dict(qualitative) if qualitative is not None else None,
    }
    return _dump(out)
