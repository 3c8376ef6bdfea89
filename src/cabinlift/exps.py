"""``cabinlift exps``: DVC experiments as changed params and Table 1, legible at 100 columns.

``dvc exp show`` puts every param and every Table-1 cell in a column of one row per
experiment: hundreds of columns, each cut to "…" at terminal width. This reads the same
records (``dvc exp show --json``, DVC's own output) and prints, per baseline commit, its Table 1
(a row per model and init, a column per setting, test MPJPE in mm), then per experiment the
params that differ from the baseline and its Table 1 (or, with ``diff``, its cells minus the
baseline's). The workspace is not listed: ``dvc params diff`` / ``dvc metrics diff`` show it.
With ``-A`` (every commit) only the commits that have experiments are printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from cabinlift.config import NO_REAL_DATA
from cabinlift.errors import CabinliftError
from cabinlift.jsonfiles import parse_json

PARAMS_FILE = "params.yaml"
TABLE1_FILE = "metrics/table1.json"
_CELL = "{:.1f}"
_DIFF = "{:+.1f}"


@dataclass
class Record:
    """One commit or experiment as ``dvc exp show --json`` reports it."""

    name: str
    rev: str
    created: str
    params: dict[str, Any]  # dotted key -> value ("<file>:<key>" outside params.yaml)
    table: dict[str, dict[str, dict[str, float]]] | None  # model -> init -> setting -> mm
    error: str | None


def _flatten(tree: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = tree


def _record(entry: dict[str, Any]) -> Record:
    data = entry.get("data") or {}
    params: dict[str, Any] = {}
    for path, content in (data.get("params") or {}).items():
        _flatten((content or {}).get("data") or {}, "" if path == PARAMS_FILE else f"{path}:", params)
    table = ((data.get("metrics") or {}).get(TABLE1_FILE) or {}).get("data")
    error = entry.get("error") or data.get("error")
    if isinstance(error, dict):
        error = error.get("msg") or error.get("type") or json.dumps(error)
    rev = str(entry.get("rev") or data.get("rev") or "")
    created = str(data.get("timestamp") or "").replace("T", " ")[:16]
    return Record(str(entry.get("name") or rev[:7]), rev[:7], created, params,
                  table if isinstance(table, dict) else None, str(error) if error else None)


def parse(show: list[dict[str, Any]]) -> list[tuple[Record, list[Record]]]:
    """``dvc exp show --json`` -> [(baseline commit, its experiments)], the workspace left out."""
    out = []
    for entry in show:
        if entry.get("rev") == "workspace":
            continue
        exps = [_record(rev) for group in entry.get("experiments") or []
                for rev in group.get("revs") or []]
        out.append((_record(entry), exps))
    return out


def run_dvc_exp_show(extra: list[str]) -> list[dict[str, Any]]:
    """Run ``dvc exp show --json`` (plus ``extra`` options) in the current directory."""
    proc = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json", *extra],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()] or ["(no output)"]
        raise CabinliftError(f"dvc exp show failed: {lines[-1]}")
    return parse_json(proc.stdout, "dvc exp show --json", invalid="{path}: not JSON ({msg})")


def _shorten(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width`` characters (paths keep their two ends)."""
    if len(text) <= width:
        return text
    keep = max(width - 3, 2)
    return text[: keep - keep // 2] + "..." + text[len(text) - keep // 2:]


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def changed_params(base: dict[str, Any], exp: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(key, baseline value, experiment value)`` of every param that differs, in key order
    of the experiment then of keys only the baseline has."""
    missing = object()
    keys = list(exp) + [k for k in base if k not in exp]
    return [(k, "(none)" if base.get(k, missing) is missing else _value(base[k]),
             "(none)" if exp.get(k, missing) is missing else _value(exp[k]))
            for k in keys if base.get(k, missing) != exp.get(k, missing)]


def _rows(table: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(label, {setting: mm})`` per Table-1 row: ``<model> <init>`` for the models' rows, the
    key alone for a row stored flat at the top level (the mean-training-pose reference)."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for key, value in table.items():
        if not isinstance(value, dict):
            continue
        if all(isinstance(v, dict) for v in value.values()):
            rows += [(f"{key} {init}", cells) for init, cells in value.items()]
        else:
            rows.append((key, value))
    return rows


def _table_lines(table: dict[str, Any], base: dict[str, Any] | None, width: int) -> list[str]:
    """Table 1 as rows ``<model> <init>`` x columns ``<setting>`` (no real data first); with
    ``base``, each cell is the difference from the baseline's. Columns beyond ``width``
    continue in another block."""
    rows = _rows(table)
    settings = list(dict.fromkeys(s for _, cells in rows for s in cells))
    settings.sort(key=lambda s: s != NO_REAL_DATA)  # stable: the rest keep their order
    title = "Table 1, test MPJPE [mm]" + (", minus the baseline's" if base is not None else "")
    label = max([len(r) + 2 for r, _ in rows] + [2])
    base_rows = dict(_rows(base)) if base is not None else {}

    def cell(row: str, setting: str, value: Any) -> str:
        if not isinstance(value, int | float):
            return "-"
        if base is None:
            return _CELL.format(value)
        ref = (base_rows.get(row) or {}).get(setting)
        return _DIFF.format(value - ref) if isinstance(ref, int | float) else "-"

    text = {(r, s): cell(r, s, cells.get(s)) for r, cells in rows for s in settings}
    col = {s: max([len(s)] + [len(text[r, s]) for r, _ in rows]) + 2 for s in settings}
    blocks: list[list[str]] = [[]]
    for s in settings:
        if blocks[-1] and label + sum(col[c] for c in blocks[-1]) + col[s] > width:
            blocks.append([])
        blocks[-1].append(s)
    lines = [title]
    for block in blocks:
        lines.append(" " * label + "".join(s.rjust(col[s]) for s in block))
        lines += [f"  {r}".ljust(label) + "".join(text[r, s].rjust(col[s]) for s in block)
                  for r, _ in rows]
    return lines


def _label(record: Record) -> str:
    """``<name> <rev>``, or the rev alone for a commit no branch names (its name is its rev)."""
    return record.rev if record.name == record.rev else f"{record.name} {record.rev}"


def render(show: list[dict[str, Any]], width: int = 100, diff: bool = False,
           all_commits: bool = False) -> str:
    """The text ``cabinlift exps`` prints for ``dvc exp show --json`` output ``show``.

    ``all_commits`` (``-A``): ``show`` holds every commit of the repository, most of them
    without experiments, so only the commits that have experiments are printed, then a count
    of the others and how to see one commit alone."""
    commits = parse(show)
    if all_commits:
        shown = [(base, exps) for base, exps in commits if exps]
        if not shown:
            return _shorten(f"no experiments in any of the {len(commits)} commit(s); one "
                            "commit's Table 1: cabinlift exps --rev <commit>", width) + "\n"
    else:
        shown = commits
    lines: list[str] = []
    for base, exps in shown:
        if lines:
            lines.append("")
        lines.append(_shorten(f"{_label(base)} ({base.created}): baseline"
                              + (f", {len(exps)} experiment(s)" if exps else ""), width))
        lines += _table_lines(base.table, None, width) if base.table else ["  no Table 1"]
        for exp in exps:
            lines += ["", _shorten(f"{_label(exp)} ({exp.created}), from {base.name}", width)]
            if exp.error:
                lines.append(_shorten(f"  failed: {exp.error}", width))
            changes = changed_params(base.params, exp.params)
            for key, old, new in changes:
                line = f"  {key}: {old} -> {new}"
                if len(line) > width:
                    room = max((width - len(key) - 8) // 2, 8)
                    line = f"  {key}: {_shorten(old, room)} -> {_shorten(new, room)}"
                lines.append(_shorten(line, width))
            if not changes:
                lines.append("  (params as in the baseline)")
            if exp.table:
                lines += _table_lines(exp.table, base.table if diff else None, width)
            else:
                lines.append("  no Table 1")
    if all_commits and (len(shown) > 1 or len(shown) < len(commits)):
        lines.append("")
        lines += [_shorten(line, width) for line in _summary(shown, len(commits))]
    return "\n".join(lines) + "\n" if lines else "no commits or experiments\n"


def _summary(shown: list[tuple[Record, list[Record]]], commits: int) -> list[str]:
    """The last lines of ``-A``: how many commits were left out, and how to see one alone."""
    left_out = commits - len(shown)
    lines = [f"experiments in {len(shown)} of {commits} commits"
             + (f"; {left_out} without experiments not shown" if left_out else "")]
    if len(shown) > 1:
        lines.append(f"one commit alone: cabinlift exps --rev <commit> (e.g. {shown[0][0].rev})")
    return lines
