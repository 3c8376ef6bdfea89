"""A study's comparison, from the experiments it ran: nothing is re-run.

For each variant the newest experiment of its name (``<study>-<variant>``, any baseline) is
read from git (its committed ``metrics/summary.json`` and ``params.yaml``), and per lifter three
tables put the variants side by side over the Table-1 settings: the pre-trained MPJPE, the
pre-training gain (scratch - pre-trained MPJPE of matched runs, with its 95 % CI and the
Holm-adjusted significance mark), and what pre-training is worth in real frames (the frames a
scratch model needs to reach the pre-trained cell, :mod:`cabinlift.evaluation.frames_worth`).
The figure draws the gain and the frames worth against the real training frames, one line per
variant. Written as ``<out>/<study>.md`` and ``<out>/<study>.png``."""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from matplotlib.figure import Figure

from cabinlift.atomic import write_atomic
from cabinlift.config import NO_REAL_DATA
from cabinlift.errors import CabinliftError
from cabinlift.evaluation.frames_worth import INTERPOLATED
from cabinlift.evaluation.plots import png_bytes, short_label
from cabinlift.evaluation.settings import Setting
from cabinlift.evaluation.table import BOUND_PREFIX
from cabinlift.jsonfiles import parse_json
from cabinlift.lifters import DISPLAY_NAMES
from cabinlift.profiles import yaml_text
from cabinlift.studies.definition import Study

RESULTS_DIR = Path("studies/results")
SUMMARY = "metrics/summary.json"
PARAMS = "params.yaml"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@dataclass
class VariantResult:
    """One variant's experiment: its commit and what its evaluate stage wrote."""

    variant: str
    experiment: str
    sha: str
    summary: dict[str, Any]
    alpha: float


def _git(args: list[str]) -> str:
    proc = subprocess.run(["git", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise CabinliftError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def newest_experiments(names: list[str]) -> dict[str, str]:
    """Experiment name -> commit of its newest experiment (any baseline), for ``names``."""
    from dvc.repo import Repo

    with Repo(".") as repo:
        found = repo.experiments.ls(all_commits=True)
    out: dict[str, tuple[int, str]] = {}
    for exps in found.values():
        for name, sha in exps:
            if name in names and sha:
                when = int(_git(["show", "-s", "--format=%ct", sha]).strip())
                if name not in out or when > out[name][0]:
                    out[name] = (when, sha)
    return {name: sha for name, (_, sha) in out.items()}


def gather(study: Study) -> list[VariantResult]:
    """Every variant's newest experiment; one error naming the variants not run yet."""
    names = [study.experiment(v) for v in study.variants]
    found = newest_experiments(names)
    missing = [n for n in names if n not in found]
    if missing:
        raise CabinliftError(f"study {study.name}: no experiment for {', '.join(missing)} "
                             f"(run `cabinlift study run {study.name}`)")
    out = []
    for variant, name in zip(study.variants, names, strict=True):
        sha = found[name]
        summary = parse_json(_git(["show", f"{sha}:{SUMMARY}"]), f"{name}:{SUMMARY}")
        params = yaml.safe_load(_git(["show", f"{sha}:{PARAMS}"]))
        out.append(VariantResult(variant, name, sha, summary,
                                 float(params["evaluate"]["alpha"])))
    return out


def _settings(results: list[VariantResult]) -> list[tuple[str, dict[str, Any]]]:
    first = list(results[0].summary["settings"].items())
    for r in results[1:]:
        if list(r.summary["settings"]) != [name for name, _ in first]:
            raise CabinliftError(f"{r.experiment} has other settings than {results[0].experiment}"
                                 f": a study compares variants over the same settings")
    return first


def models(results: list[VariantResult]) -> list[str]:
    """The lifters every variant evaluated, in the first variant's order."""
    names = list(results[0].summary["tables"]["mpjpe"])
    return [m for m in names if all(m in r.summary["tables"]["mpjpe"] for r in results)]


def gain(r: VariantResult, model: str, setting: str) -> tuple[float, float | None, bool] | None:
    """(gain mm, its 95 % CI or None, significant) of a cell: scratch - pre-trained MPJPE of
    matched runs; None without a paired test."""
    t = r.summary["paired_tests"].get(model, {}).get(setting)
    if not t or t.get("mean_diff") is None:
        return None
    p = t.get("p_holm")
    return -t["mean_diff"], t.get("ci95"), p is not None and p < r.alpha


def frames_worth(r: VariantResult, model: str, setting: str) -> tuple[float, str] | None:
    """(scratch frames, bound) the pre-trained cell is worth."""
    cell = r.summary.get("frames_worth", {}).get(model, {}).get("cells", {}).get(setting)
    if not cell:
        return None
    return cell["scratch_frames"]["frames"], cell["scratch_frames"]["bound"]


def movement(r: VariantResult, model: str, setting: str) -> float | None:
    """Median relative change of the whole model's weights in fine-tuning (a fraction;
    :mod:`cabinlift.evaluation.weight_movement`), None where not measured."""
    cells = r.summary.get("weight_movement", {}).get("models", {}).get(model, {}).get("cells", {})
    whole = (cells.get(setting) or {}).get("whole") or {}
    return whole.get("median")


def _cell(x: float | None, nd: int = 1) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{nd}f}"


def _gain_text(g: tuple[float, float | None, bool] | None) -> str:
    if g is None:
        return "–"
    value, ci, sig = g
    text = f"{value:+.1f}" + ("" if ci is None else f" ± {ci:.1f}")
    return text + (" *" if sig else "")


def _worth_text(w: tuple[float, str] | None) -> str:
    if w is None:
        return "–"
    frames, bound = w
    return ("" if bound == INTERPOLATED else BOUND_PREFIX.get(bound, "")) + f"{frames:.0f}"


def _poses(r: VariantResult) -> str:
    """The synthetic training poses the variant pre-trained on (the same for every lifter)."""
    counts = {p["train_frames"] for p in r.summary.get("pretrain", {}).values()}
    return ", ".join(str(c) for c in sorted(counts)) or "–"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown(study: Study, results: list[VariantResult], figure: str) -> str:
    """The report's Markdown text."""
    settings = _settings(results)
    labels = [f"{short_label(Setting(name, s['subjects'], s['fraction'], s['runs']))} "
              f"({s['train_frames']:.0f} fr.)" for name, s in settings]
    lines = [f"# Study `{study.name}`", "", study.description, "",
             f"Produced by `cabinlift study report {study.name}` from the experiments below "
             f"(`cabinlift study run {study.name}` ran them); base: "
             + (", ".join(f"`{k}={yaml_text(v)}`" for k, v in study.base.items()) or "none")
             + ".", ""]
    lines += _table(["variant", "sets", "synthetic training poses", "experiment"], [
        [r.variant, ", ".join(f"`{k}={yaml_text(v)}`" for k, v in study.variants[r.variant].items())
         or "(the base)", _poses(r), f"`{r.experiment}` ({r.sha[:7]})"] for r in results])
    for model in models(results):
        name = DISPLAY_NAMES.get(model, model)
        lines += ["", f"## {name}", "", "Pre-trained test MPJPE (mm; mean over runs; scratch "
                  "in the last row, from the first variant):", ""]
        rows = []
        for r in results:
            pt = r.summary["tables"]["mpjpe"][model]["pretrained"]
            rows.append([r.variant, _cell(pt.get(NO_REAL_DATA))]
                        + [_cell(pt.get(s)) for s, _ in settings])
        scratch = results[0].summary["tables"]["mpjpe"][model]["scratch"]
        rows.append(["*scratch*", "–"] + [_cell(scratch.get(s)) for s, _ in settings])
        lines += _table(["variant", "no real data", *labels], rows)
        lines += ["", "Pre-training gain (mm; scratch − pre-trained MPJPE of matched runs, "
                  "± 95 % CI; * Holm-adjusted paired p < alpha):", ""]
        lines += _table(["variant", *labels], [
            [r.variant] + [_gain_text(gain(r, model, s)) for s, _ in settings] for r in results])
        lines += ["", "What pre-training is worth: real frames a scratch model needs to reach "
                  "the pre-trained MPJPE (> : more than the largest setting; ≤ : at most the "
                  "smallest):", ""]
        lines += _table(["variant", "no real data", *labels], [
            [r.variant, _worth_text(frames_worth(r, model, NO_REAL_DATA))]
            + [_worth_text(frames_worth(r, model, s)) for s, _ in settings] for r in results])
        if any(movement(r, model, s) is not None for r in results for s, _ in settings):
            lines += ["", "How far fine-tuning moves the pre-trained weights (whole model, "
                      "median relative change over runs, %):", ""]
            lines += _table(["variant", *labels], [
                [r.variant] + [_cell(None if (m := movement(r, model, s)) is None else 100 * m, 2)
                               for s, _ in settings] for r in results])
    lines += ["", f"![{study.name}]({figure})", ""]
    return "\n".join(lines)


def figure_png(study: Study, results: list[VariantResult]) -> bytes:
    """Per lifter (a row): the pre-training gain and the frames pre-training is worth vs the
    real training frames (log x), one line per variant."""
    settings = _settings(results)
    frames = [s["train_frames"] for _, s in settings]
    names = models(results)
    fig = Figure(figsize=(12.0, 4.6 * len(names)))
    axes = fig.subplots(len(names), 2, squeeze=False)
    for row, model in enumerate(names):
        left, right = axes[row]
        for k, r in enumerate(results):
            color, marker = f"C{k % 10}", _MARKERS[k % len(_MARKERS)]
            pts = [(x, gain(r, model, s)) for x, (s, _) in zip(frames, settings, strict=True)]
            pts = [(x, g) for x, g in pts if g is not None]
            xs, ys = [x for x, _ in pts], [g[0] for _, g in pts]
            lo = [g[0] - (g[1] or 0.0) for _, g in pts]
            hi = [g[0] + (g[1] or 0.0) for _, g in pts]
            left.fill_between(xs, lo, hi, color=color, alpha=0.12, linewidth=0)
            left.plot(xs, ys, color=color, linewidth=1.6, label=r.variant)
            for x, g in pts:
                left.plot([x], [g[0]], marker=marker, markersize=6, color=color,
                          markerfacecolor=color if g[2] else "white", linestyle="none")
            worth = [(x, frames_worth(r, model, s)) for x, (s, _) in zip(frames, settings,
                                                                          strict=True)]
            worth = [(x, w) for x, w in worth if w is not None]
            right.plot([x for x, _ in worth], [w[0] for _, w in worth], color=color,
                       linewidth=1.6, label=r.variant)
            for x, w in worth:  # hollow: a bound (beyond the scratch curve's range)
                right.plot([x], [w[0]], marker=marker, markersize=6, color=color,
                           markerfacecolor=color if w[1] == INTERPOLATED else "white",
                           linestyle="none")
        lim = [min(frames), max(frames)]
        right.plot(lim, lim, color="black", linestyle=":", linewidth=1.0,
                   label="worth = its own frames")
        left.axhline(0.0, color="black", linewidth=0.9)
        title = DISPLAY_NAMES.get(model, model)
        left.set_title(f"{title}: pre-training gain", fontsize=10)
        right.set_title(f"{title}: what pre-training is worth", fontsize=10)
        left.set_ylabel("gain [mm]\n(scratch − PT MPJPE, ± 95 % CI)", fontsize=9)
        right.set_ylabel("scratch frames to reach PT\n[frames, log scale]", fontsize=9)
        right.set_yscale("log")
        for ax in (left, right):
            ax.set_xscale("log")
            ax.set_xlabel("real training frames (log scale)", fontsize=9)
            ax.grid(True, which="major", alpha=0.35)
            ax.grid(True, which="minor", alpha=0.12)
        left.legend(fontsize=8, title="filled: significant", title_fontsize=7, loc="best")
        right.legend(fontsize=8, title="hollow: a bound (> largest\nor ≤ smallest scratch amount)",
                     title_fontsize=7, loc="best")
    fig.suptitle(f"study {study.name}", fontsize=11)
    fig.tight_layout()
    return png_bytes(fig, dpi=100)


def write_report(study: Study, out: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """Gather the study's experiments and write ``<out>/<study>.md`` and ``.png``."""
    results = gather(study)
    md, png = out / f"{study.name}.md", out / f"{study.name}.png"
    write_atomic(png, figure_png(study, results))
    write_atomic(md, markdown(study, results, png.name))
    return md, png
