"""The report stage: read what evaluate wrote, collect the provenance, write one HTML page.

It computes nothing: every number on the page is in metrics/ or plots/ already (Table 1 and its
companion tables, summary.json, the pre-training summaries, the PNGs), or is provenance
(:mod:`cabinlift.report.provenance`). It reads params.yaml as a whole (to name the keys that
differ from the closest profile, and the device and threads), so any change of params.yaml
re-writes the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cabinlift.atomic import write_atomic
from cabinlift.config import Params
from cabinlift.errors import CabinliftError
from cabinlift.jsonfiles import read_json
from cabinlift.lifters import DISPLAY_NAMES
from cabinlift.report import compare, figures, page, provenance

#: The evaluate stage's figures, in the page's order, with what each shows.
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("mpjpe_vs_data.png", "Test MPJPE against the amount of real fine-tuning data",
     "Per lifter, from scratch and pre-trained (PT), mean over runs with its 95 % CI; the "
     "pre-trained weights before fine-tuning at no real data; the mean-training-pose reference."),
    ("pretraining_gain.png", "Pre-training gain",
     "Scratch − PT MPJPE over matched runs (same training subjects), with its 95 % CI."),
    ("frames_worth.png", "What pre-training is worth in real frames",
     "The real training frames a scratch model needs to reach each pre-trained cell."),
    ("weight_movement.png", "How far fine-tuning moves the pre-trained weights",
     "Relative change ‖W_ft − W_PT‖ / ‖W_PT‖ of the parameters, median over runs."),
    ("per_joint.png", "Per-joint MPJPE at the per-joint setting",
     "Mean over runs with its 95 % CI; the tables below give every setting."),
    ("qualitative.png", "Qualitative panel", ""),
)


def _json(path: Path, what: str) -> Any:
    message = f"{{path}}: cannot read {what} ({{error}})"
    return read_json(path, missing=f"{{path}}: not found; expected {what} (run the evaluate "
                     "stage first)", unreadable=message, invalid=message, not_utf8=message)


def _text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CabinliftError(f"{path}: cannot read {what} ({exc})") from None


def _bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CabinliftError(f"{path}: cannot read {what} ({exc})") from None


def _lock(project: Path) -> dict[str, Any]:
    path = project / "dvc.lock"
    if not path.is_file():
        return {}
    try:
        lock = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CabinliftError(f"{path}: cannot be read as DVC's lock file ({exc})") from None
    return lock if isinstance(lock, dict) else {}


def collect(params: Params, metrics: Path, plots: Path, paper: Path | None, profiles: Path,
            numerics: Path, logs: Path, project: Path) -> page.ReportData:
    """Everything the page shows (:class:`cabinlift.report.page.ReportData`), read from the
    stage's inputs (``paper`` None: no comparison with the paper) and collected from
    ``project`` (git, dvc.lock) and this environment (package versions)."""
    as_written = params.model_dump(mode="json")  # params.yaml as a whole (the profiles' keys)
    summary = _json(metrics / "summary.json", "the evaluation summary")
    table1 = _json(metrics / "table1.json", "Table 1")
    names = {m: DISPLAY_NAMES.get(m, m) for m in table1 if m != "mean_pose"}
    labels = page.setting_labels(summary)
    shown = []
    for name, title, caption in FIGURES:
        if name == "qualitative.png":
            facts = _json(plots / "qualitative.json", "the qualitative panel's facts")
            caption = page.qualitative_caption(facts, names, labels)
        shown.append(page.Figure(title, caption, figures.data_uri(
            _bytes(plots / name, "a figure of the evaluate stage"))))
    pretrain = {p.stem: _json(p, "a pre-training summary")
                for p in sorted((metrics / "pretrain").glob("*.json"))}
    order = [m for m in names if m in pretrain] + [m for m in pretrain if m not in names]
    curves = figures.pretrain_curves({m: pretrain[m] for m in order})
    svg = figures.convergence_svg(curves, names, "Pre-training: validation MPJPE per check")
    checks = sorted({e for c in curves.values() for e, _ in c})
    at = (f" (checks at epoch{'s' if len(checks) > 1 else ''} {', '.join(map(str, checks))})"
          if checks else "")
    single = all(len(c) <= 1 for c in curves.values())
    convergence = page.Figure(
        "Pre-training convergence",
        "Synthetic validation MPJPE of each lifter at every validation check of its "
        f"pre-training, mean over the pre-training seeds{at}."
        + (" One marker per lifter: its pre-training ended before a second check "
           "(train.val_every, train.max_epochs)." if single else ""),
        svg=svg) if svg else None
    comparison = None
    if paper is not None:
        comparison = compare.compare_tables(table1, _json(paper, "the paper's Table 1"))
    regime = _json(numerics, "the numerics regime") if numerics.is_file() else None
    return page.ReportData(
        table1_md=_text(metrics / "table1.md", "Table 1"), summary=summary, names=names,
        figures=shown, git=provenance.git_state(project),
        profile=provenance.closest_profile(as_written, profiles),
        data_hashes=provenance.data_hashes(_lock(project)),
        versions=provenance.package_versions(),
        setup=provenance.compute_setup(as_written, regime),
        wall_times=provenance.wall_times(logs), comparison=comparison,
        convergence=convergence)


def run_report(params: Params, metrics: Path, plots: Path, paper: Path | None, profiles: Path,
               numerics: Path, logs: Path, out: Path, project: Path | None = None
               ) -> dict[str, Any]:
    """Write the page to ``out``; return what it holds in a few numbers (for the log)."""
    data = collect(params, metrics, plots, paper, profiles, numerics, logs,
                   project if project is not None else Path.cwd())
    html = page.render(data)
    write_atomic(out, html)
    return {"out": str(out), "bytes": len(html.encode()), "figures": len(data.figures),
            "commit": data.git.commit, "dirty": data.git.dirty,
            "profile": data.profile.name if data.profile else None}
