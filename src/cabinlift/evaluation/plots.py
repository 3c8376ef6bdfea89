"""Figures of the evaluate stage and the data behind them.

* ``mpjpe_vs_data``: MPJPE vs real training frames (log x), one panel per model, scratch and
  pre-trained with their 95 % CI bands over runs, the pre-trained weights before fine-tuning
  as a horizontal line and the mean-training-pose reference as a grey curve.
* ``pretraining_gain``: scratch − pre-trained MPJPE of matched runs vs data, one line per model
  with its 95 % CI; filled markers where the paired test is significant.
* ``frames_worth``: the real frames a scratch model needs to reach each pre-trained cell vs the
  cell's own real frames (log-log), one line per model with its 95 % interval, and the
  diagonal where pre-training is worth exactly the frames it was fine-tuned on.
* ``per_joint``: per-joint MPJPE of every model at one setting, scratch vs pre-trained, with
  95 % CI error bars over runs.
* ``weight_movement``: how far fine-tuning moved the pre-trained weights (relative change of
  the whole model) vs real frames, one line per model; the gain each pre-trained cell keeps
  vs its change; each model's per-layer profile at the smallest and largest setting.

Figures are drawn on bare :class:`matplotlib.figure.Figure` objects (Agg, no pyplot state) and
returned as PNG bytes without the 'Software' metadata, so the same inputs give the same bytes and
``git diff`` on plots/ shows only real changes. DVC's own plot renderer needs a CDN,
so the PNGs are what a reader sees offline; the CSVs are the data ``dvc plots`` reads.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from cabinlift.config import INITS, NO_REAL_DATA
from cabinlift.evaluation.frames_worth import AT_MOST, MORE_THAN, CellWorth, FrameCount
from cabinlift.evaluation.outputs import csv_text
from cabinlift.evaluation.results import EvaluationResults
from cabinlift.evaluation.settings import Setting
from cabinlift.evaluation.weight_movement import ModelMovement
from cabinlift.lifters import DISPLAY_NAMES
from cabinlift.skeleton import COCO13

_PNG_METADATA = {"Software": None}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
_INIT_STYLE = {  # colour, line style, label
    "scratch": ("tab:gray", "-", "from scratch"),
    "pretrained": ("tab:blue", "--", "pre-trained (PT)"),
}
_MEAN_POSE_STYLE = ("0.62", "-.", "mean training pose")
_NO_REAL_DATA_STYLE = ("tab:blue", ":", "PT, no real data")


def png_bytes(fig: Figure, dpi: int) -> bytes:
    """The figure as PNG bytes, without the metadata that would make identical figures differ."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata=_PNG_METADATA)
    return buf.getvalue()


def short_label(s: Setting) -> str:
    """Compact setting name for a crowded axis: '5%', '1 subj.', '4 subj.'."""
    if s.fraction < 1.0:
        pct = f"{s.fraction * 100:.6g}%"
        return pct if s.subjects == 1 else f"{pct}×{s.subjects}"
    return f"{s.subjects} subj."


def _num(x: float | None, nd: int = 3) -> str:
    """CSV cell: fixed decimals, empty where undefined (single run, no test)."""
    return "" if x is None or not math.isfinite(x) else f"{x:.{nd}f}"


def _band(mean: float, ci: float | None) -> tuple[float, float]:
    return (mean, mean) if ci is None else (mean - ci, mean + ci)


def curve_csv(r: EvaluationResults) -> str:
    """One row per setting: mean training frames, and per ``<model>_<init>`` the mean MPJPE
    and the bounds of its 95 % CI (``_lo``/``_hi``; empty for a single run); then per model
    ``<model>_pretrained_none``, the pre-trained weights before fine-tuning (the same value on
    every row: a horizontal line), and ``mean_pose`` with its CI bounds, the reference."""
    cells, models = r.cells, r.models
    header = ["setting", "train_frames"]
    for m in models:
        for i in INITS:
            header += [f"{m}_{i}", f"{m}_{i}_lo", f"{m}_{i}_hi"]
    header += [f"{m}_pretrained_{NO_REAL_DATA}" for m in models]
    header += ["mean_pose", "mean_pose_lo", "mean_pose_hi"]
    rows = []
    for s in r.settings:
        row = [s.name, f"{r.train_frames(s.name):.1f}"]
        for m in models:
            for i in INITS:
                c = cells[m, i, s.name]
                lo, hi = _band(c.mean, c.ci95) if c.ci95 is not None else (None, None)
                row += [_num(c.mean), _num(lo), _num(hi)]
        row += [_num(cells[m, "pretrained", NO_REAL_DATA].mean) for m in models]
        ref = r.mean_pose[s.name].stat
        lo, hi = _band(ref.mean, ref.ci95) if ref.ci95 is not None else (None, None)
        row += [_num(ref.mean), _num(lo), _num(hi)]
        rows.append(row)
    return csv_text(header, rows)


def _log_x_axis(ax, frames: list[float], settings: Sequence[Setting], top_labels: bool
                ) -> None:
    ax.set_xscale("log")
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    if top_labels:
        top = ax.secondary_xaxis("top")
        top.set_xticks(frames, labels=[short_label(s) for s in settings], fontsize=7,
                       rotation=90)
        top.tick_params(which="minor", top=False, labeltop=False)


def curve_png(r: EvaluationResults) -> bytes:
    """Small multiples, one panel per model on a shared y axis: mean MPJPE vs training frames
    (log x) for scratch (grey, solid) and pre-trained (blue, dashed), shaded 95 % CI over runs.
    Where the bands separate, pre-training's benefit is larger than the run-to-run noise. The
    pre-trained weights before fine-tuning (no real data, which a log axis cannot place) are a
    dotted horizontal line marked and labelled at the left edge; the light grey dash-dotted
    curve is the mean-training-pose reference: a curve above it learned less than a constant."""
    cells, models, settings = r.cells, r.models, r.settings
    n = len(models)
    fig = Figure(figsize=(2.9 * n + 0.6, 4.4))
    axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
    frames = [r.train_frames(s.name) for s in settings]
    ref_y = [r.mean_pose[s.name].mean for s in settings]
    for ax, m in zip(axes, models, strict=True):
        for i in INITS:
            color, style, label = _INIT_STYLE[i]
            cs = [cells[m, i, s.name] for s in settings]
            xs = [c.train_frames for c in cs]
            ys = np.array([c.mean for c in cs])
            ci = np.array([0.0 if c.ci95 is None else c.ci95 for c in cs])
            ax.fill_between(xs, ys - ci, ys + ci, color=color, alpha=0.18, linewidth=0)
            ax.plot(xs, ys, color=color, linestyle=style, marker="o", markersize=4,
                    linewidth=1.8, label=label)
        color, style, label = _NO_REAL_DATA_STYLE
        zero = cells[m, "pretrained", NO_REAL_DATA].mean
        ax.axhline(zero, color=color, linestyle=style, linewidth=1.3, label=label, zorder=1.5)
        at_left = ax.get_yaxis_transform()  # x in axes fraction, y in data
        ax.plot([0.0], [zero], marker=">", markersize=7, color=color, transform=at_left,
                clip_on=False, linestyle="none")
        ax.annotate(f"{zero:.1f}", (0.03, zero), xycoords=at_left, xytext=(0, 3),
                    textcoords="offset points", fontsize=7, color=color, va="bottom",
                    ha="left", bbox={"boxstyle": "square,pad=0.1", "facecolor": "white",
                                     "edgecolor": "none", "alpha": 0.8})
        color, style, label = _MEAN_POSE_STYLE
        ax.plot(frames, ref_y, color=color, linestyle=style, linewidth=1.5, label=label,
                zorder=1.5)
        _log_x_axis(ax, frames, settings, top_labels=True)
        ax.set_title(DISPLAY_NAMES.get(m, m), fontsize=11)
        ax.set_xlabel("real training frames", fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0].set_ylabel("test MPJPE [mm], mean ± 95 % CI", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    ncol = len(labels) if n >= 3 else 2  # one legend row under wide figures
    rows = -(-len(labels) // ncol)
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=ncol, frameon=False)
    fig.tight_layout(rect=(0.0, 0.02 + 0.055 * rows, 1.0, 1.0))
    return png_bytes(fig, dpi=110)


def gain_csv(r: EvaluationResults) -> str:
    """One row per setting: mean training frames, and per model the mean pre-training gain
    (scratch − pre-trained MPJPE over matched runs, mm; positive = pre-training helps), its 95 %
    CI bounds and the Holm-adjusted p-value of the paired t-test."""
    header = ["setting", "train_frames"]
    for m in r.models:
        header += [m, f"{m}_lo", f"{m}_hi", f"{m}_p_holm"]
    rows = []
    for s in r.settings:
        row = [s.name, f"{r.train_frames(s.name):.1f}"]
        for m in r.models:
            t = r.tests[m, s.name]
            gain = t.gain
            lo, hi = (None, None) if gain is None or t.ci95 is None else _band(gain, t.ci95)
            row += [_num(gain), _num(lo), _num(hi), "" if t.p_holm is None else f"{t.p_holm:.4g}"]
        rows.append(row)
    return csv_text(header, rows)


def gain_png(r: EvaluationResults) -> bytes:
    """Pre-training gain (mm saved by pre-training) vs training frames (log x), one line per
    model with its shaded 95 % CI; filled markers where the Holm-adjusted paired test is below
    ``alpha``, hollow where it is not (or cannot be computed: a single run)."""
    settings, alpha = r.settings, r.alpha
    fig = Figure(figsize=(10.0, 5.0))
    ax = fig.add_subplot()
    frames = [r.train_frames(s.name) for s in settings]
    for k, m in enumerate(r.models):
        color, marker = f"C{k % 10}", _MARKERS[k % len(_MARKERS)]
        xs, ys, lo, hi, sig = [], [], [], [], []
        for s, x in zip(settings, frames, strict=True):
            t = r.tests[m, s.name]
            g = t.gain
            if g is None:
                continue
            band = _band(g, t.ci95)
            xs.append(x)
            ys.append(g)
            lo.append(band[0])
            hi.append(band[1])
            sig.append(t.significant(alpha))
        ax.fill_between(xs, lo, hi, color=color, alpha=0.13, linewidth=0)
        ax.plot(xs, ys, color=color, linewidth=1.7, label=DISPLAY_NAMES.get(m, m))
        for x, y, s_ in zip(xs, ys, sig, strict=True):
            ax.plot([x], [y], marker=marker, markersize=7, color=color,
                    markerfacecolor=color if s_ else "white", linestyle="none")
    ax.axhline(0.0, color="black", linewidth=0.9)
    _log_x_axis(ax, frames, settings, top_labels=True)
    ax.set_xlabel("real training frames (log scale)", fontsize=10)
    ax.set_ylabel("pre-training gain [mm]\n(scratch − PT MPJPE, matched runs, ± 95 % CI)",
                  fontsize=10)
    ax.legend(fontsize=9, title=f"filled marker:\nHolm-adjusted\npaired p < {alpha:g}",
              title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return png_bytes(fig, dpi=110)


def _settings_worth(r: EvaluationResults) -> list[tuple[str, list[CellWorth]]]:
    """(model, its pre-trained cells of the settings) in model order: the weights before
    fine-tuning have no real frames, which a log axis cannot place."""
    return [(w.model, [c for c in w.cells if c.setting != NO_REAL_DATA])
            for w in r.frames_worth()]


def _count(c: FrameCount | None) -> float | None:
    return None if c is None else c.frames


def frames_worth_csv(r: EvaluationResults) -> str:
    """One row per setting: mean training frames, and per model the scratch frames equivalent
    to its pre-trained cell, the ends of its 95 % interval (``_lo``/``_hi``, empty for a single
    run) and whether the value is interpolated or a bound (``_bound``: interpolated, more_than,
    at_most)."""
    worth = _settings_worth(r)
    header = ["setting", "train_frames"]
    for m, _ in worth:
        header += [m, f"{m}_lo", f"{m}_hi", f"{m}_bound"]
    rows = []
    for k, s in enumerate(r.settings):
        row = [s.name, f"{r.train_frames(s.name):.1f}"]
        for _, cells in worth:
            c = cells[k]
            row += [_num(c.equivalent.frames, 1), _num(_count(c.low), 1),
                    _num(_count(c.high), 1), c.equivalent.bound]
        rows.append(row)
    return csv_text(header, rows)


#: Marker of a point that is a bound (the scratch curve did not cross inside its range): an
#: arrow pointing where the true count lies.
_BOUND_MARKERS = {MORE_THAN: r"$\uparrow$", AT_MOST: r"$\downarrow$"}
_DIAGONAL_STYLE = ("black", ":", "scratch frames = PT frames")
_LARGEST_STYLE = ("0.5", "--", "largest scratch amount")
#: Room above the largest scratch amount (a factor on the log axis) for the arrows drawn there.
_HEADROOM = 1.5
#: Horizontal spread of the models' points at a shared x (factor between neighbours), so that
#: their error bars do not hide each other.
_DODGE = 1.06


def frames_worth_png(r: EvaluationResults) -> bytes:
    """Scratch frames equivalent to each pre-trained cell vs the cell's own real frames (log-log),
    one line per model with error bars over the cell's 95 % CI (models dodged slightly
    sideways). A point above the dotted diagonal means pre-training is worth more real frames
    than the cell was fine-tuned on; arrows are bounds where the scratch curve does not cross
    (up: more than the largest setting, drawn at the dashed line; down: at most the
    smallest)."""
    fig = Figure(figsize=(10.0, 5.6))
    ax = fig.add_subplot()
    frames = [r.train_frames(s.name) for s in r.settings]
    lowest, largest = min(frames), max(frames)
    worth = _settings_worth(r)
    for k, (m, cells) in enumerate(worth):
        color, marker = f"C{k % 10}", _MARKERS[k % len(_MARKERS)]
        dodge = _DODGE ** (k - (len(worth) - 1) / 2)
        xs = [c.pt_frames * dodge for c in cells]
        ys = [c.equivalent.frames for c in cells]
        exact = [j for j, c in enumerate(cells) if c.equivalent.bound not in _BOUND_MARKERS]
        ax.plot(xs, ys, color=color, linewidth=1.6, marker=marker, markersize=6,
                markevery=exact, label=DISPLAY_NAMES.get(m, m))
        for x, y, c in zip(xs, ys, cells, strict=True):
            if c.low is not None and c.high is not None:
                ax.errorbar([x], [y], yerr=[[y - c.low.frames], [c.high.frames - y]],
                            color=color, elinewidth=1.0, capsize=3, linestyle="none")
            if c.equivalent.bound in _BOUND_MARKERS:
                ax.plot([x], [y], marker=_BOUND_MARKERS[c.equivalent.bound], markersize=11,
                        color=color, linestyle="none")
    color, style, label = _DIAGONAL_STYLE
    ax.plot([lowest, largest], [lowest, largest], color=color, linestyle=style, linewidth=1.2,
            label=label)
    color, style, label = _LARGEST_STYLE
    ax.axhline(largest, color=color, linestyle=style, linewidth=1.0, label=label)
    _log_x_axis(ax, frames, r.settings, top_labels=True)
    ax.set_yscale("log")
    ax.set_ylim(top=largest * _HEADROOM)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.tick_params(labelsize=9)
    ax.set_xlabel("real training frames of the PT cell (log scale)", fontsize=10)
    ax.set_ylabel("real training frames from scratch to reach\nthe PT cell's MPJPE "
                  "(± 95 % CI, log scale)", fontsize=10)
    ax.set_title("What pre-training is worth in real training frames", fontsize=11)
    ax.legend(fontsize=9, title="↑ more than (a lower bound)\n↓ at most (an upper bound)",
              title_fontsize=9, loc="lower right")  # below the diagonal: empty
    fig.tight_layout()
    return png_bytes(fig, dpi=110)


def per_joint_csv(r: EvaluationResults) -> str:
    """One row per joint (index and COCO name): per ``<model>_<init>`` the mean MPJPE over runs
    at the per-joint setting and its 95 % CI half-width."""
    models, setting = r.models, r.per_joint_setting
    header = ["joint_index", "joint"]
    for m in models:
        for i in INITS:
            header += [f"{m}_{i}", f"{m}_{i}_ci95"]
    rows = []
    for j, name in enumerate(COCO13):
        row = [str(j), name]
        for m in models:
            for i in INITS:
                c = r.cells[m, i, setting.name]
                row += [_num(float(c.per_joint[j])), _num(float(c.per_joint_ci95[j]))]
        rows.append(row)
    return csv_text(header, rows)


def per_joint_png(r: EvaluationResults) -> bytes:
    """Horizontal bars per joint (head at the top), one panel per model, scratch vs pre-trained
    side by side with 95 % CI error bars over runs at the per-joint setting: which joints are
    hard, and where pre-training helps."""
    cells, models, setting = r.cells, r.models, r.per_joint_setting
    n = len(models)
    fig = Figure(figsize=(2.7 * n + 1.2, 4.6))
    axes = fig.subplots(1, n, sharey=True, sharex=True, squeeze=False)[0]
    y = np.arange(len(COCO13))
    h = 0.38
    for k, (ax, m) in enumerate(zip(axes, models, strict=True)):
        for off, i in zip((-h / 2, h / 2), INITS, strict=True):
            color, _, label = _INIT_STYLE[i]
            c = cells[m, i, setting.name]
            ci = np.nan_to_num(c.per_joint_ci95, nan=0.0)
            ax.barh(y + off, np.nan_to_num(c.per_joint), height=h, color=color, alpha=0.85,
                    xerr=ci, error_kw={"elinewidth": 0.8, "capsize": 1.5}, label=label)
        ax.set_title(DISPLAY_NAMES.get(m, m), fontsize=11)
        ax.grid(True, axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("MPJPE [mm]", fontsize=9)
        if k == 0:
            ax.set_yticks(y, labels=[j.replace("_", " ") for j in COCO13])
    axes[0].invert_yaxis()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=9, loc="upper right", ncol=2, frameon=False)
    runs = cells[models[0], INITS[0], setting.name].n_runs
    fig.suptitle(f"Per-joint test MPJPE after fine-tuning on {setting.label.lower()} "
                 f"(mean over {runs} run{'s' if runs != 1 else ''}, ± 95 % CI)", fontsize=10)
    fig.tight_layout()
    return png_bytes(fig, dpi=110)



def weight_movement_csv(r: EvaluationResults) -> str:
    """One row per setting: mean training frames, and per model the median relative change of
    the whole model over its pre-trained runs (a ratio; ``_q1``/``_q3`` its quartiles) and the
    gain the cell keeps (``_gain``, scratch − pre-trained MPJPE, mm); the header alone where
    the movement was not measured. Per-layer medians: summary.json."""
    movement = r.weight_movement()
    header = ["setting", "train_frames"]
    for w in movement or ():
        header += [w.model, f"{w.model}_q1", f"{w.model}_q3", f"{w.model}_gain"]
    rows = []
    for k, s in enumerate(r.settings if movement is not None else ()):
        row = [s.name, f"{r.train_frames(s.name):.1f}"]
        for w in movement:
            c = w.cells[k]
            row += [_num(c.whole.median, 6), _num(c.whole.q1, 6), _num(c.whole.q3, 6),
                    _num(c.gain)]
        rows.append(row)
    return csv_text(header, rows)


#: The relative change in the figure: per cent.
_PERCENT = 100.0
#: Line style and marker fill of a per-layer profile at the smallest and the largest setting.
_PROFILE_STYLES = (("--", "none"), ("-", None))
_NORM_SHADE = ("0.88", "normalisation layer (…Norm)")


def _percent(x: float | None) -> float:
    return math.nan if x is None else x * _PERCENT


def _whole_panel(ax, r: EvaluationResults, movement: Sequence[ModelMovement]) -> None:
    """Whole-model change (median, quartile bars) vs real frames, one line per model."""
    frames = [r.train_frames(s.name) for s in r.settings]
    for k, w in enumerate(movement):
        color, marker = f"C{k % 10}", _MARKERS[k % len(_MARKERS)]
        dodge = _DODGE ** (k - (len(movement) - 1) / 2)
        xs = np.array([c.train_frames for c in w.cells]) * dodge
        med = np.array([_percent(c.whole.median) for c in w.cells])
        lo = med - np.array([_percent(c.whole.q1) for c in w.cells])
        hi = np.array([_percent(c.whole.q3) for c in w.cells]) - med
        ax.errorbar(xs, med, yerr=[lo, hi], color=color, marker=marker, markersize=5,
                    linewidth=1.6, elinewidth=1.0, capsize=2.5,
                    label=DISPLAY_NAMES.get(w.model, w.model))
    _log_x_axis(ax, frames, r.settings, top_labels=True)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("real training frames (log scale)", fontsize=9)
    ax.set_ylabel("relative change of the whole model [%]\n(median over runs, bars: "
                  "quartiles)", fontsize=9)
    ax.set_title("How far fine-tuning moves the pre-trained weights", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")


def _gain_panel(ax, r: EvaluationResults, movement: Sequence[ModelMovement]) -> None:
    """Gain kept vs whole-model change, one point per model and setting (larger: more real
    frames), each model's points joined in order of frames; the per-setting rank correlation
    over the models beside it."""
    for k, w in enumerate(movement):
        color, marker = f"C{k % 10}", _MARKERS[k % len(_MARKERS)]
        order = np.argsort([c.train_frames for c in w.cells], kind="stable")
        xs = np.array([_percent(w.cells[j].whole.median) for j in order])
        ys = np.array([math.nan if w.cells[j].gain is None else w.cells[j].gain
                       for j in order])
        ax.plot(xs, ys, color=color, linewidth=0.9, alpha=0.55)
        sizes = 12 + 60 * np.linspace(0.0, 1.0, len(order))  # grows with the real frames
        ax.scatter(xs, ys, s=sizes, color=color, marker=marker, edgecolors="white",
                   linewidths=0.5, zorder=3)
    ax.axhline(0.0, color="0.5", linewidth=0.9, linestyle=":")
    ax.grid(True, alpha=0.35)
    ax.set_xlabel("relative change of the whole model [%] (median over runs)", fontsize=9)
    ax.set_ylabel("gain kept: scratch − PT MPJPE [mm]\n(mean over matched runs)", fontsize=9)
    ax.set_title("Does a lifter that moves its weights less keep more of the gain?",
                 fontsize=10)
    rho = r.movement_vs_gain() or {}
    lines = [f"{short_label(s)}: " + ("—" if rho.get(s.name) is None else
                                      f"{rho[s.name]:+.2f}") for s in r.settings]
    ax.text(1.03, 1.0, "Spearman ρ over\nthe lifters of\nchange vs gain\n(< 0: those that\n"
            "move less keep\nmore)\n\n" + "\n".join(lines),
            transform=ax.transAxes, fontsize=8, va="top", ha="left", family="monospace")
    ax.text(0.99, 0.98, "one point per setting,\nlarger = more real frames",
            transform=ax.transAxes, fontsize=7.5, color="0.3", va="top", ha="right")


def _profile_panel(ax, r: EvaluationResults, w: ModelMovement, color: str, marker: str,
                   ends: Sequence[int]) -> None:
    """One model's per-layer median change at the smallest and largest setting, normalisation
    layers shaded."""
    index = np.arange(1, len(w.layers) + 1)
    for x, layer in zip(index, w.layers, strict=True):
        if layer.normalises:
            ax.axvspan(x - 0.5, x + 0.5, color=_NORM_SHADE[0], linewidth=0, zorder=0)
    for j, (style, fill) in zip(ends, _PROFILE_STYLES, strict=True):
        ys = [_percent(v) for v in w.cells[j].layers]
        ax.plot(index, ys, color=color, linestyle=style, linewidth=1.3, marker=marker,
                markersize=3.5, markerfacecolor=fill)
    ax.set_yscale("log")
    ax.set_xlim(0.5, len(w.layers) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, which="major", axis="y", alpha=0.35)
    ax.set_title(f"{DISPLAY_NAMES.get(w.model, w.model)}: {len(w.layers)} layers", fontsize=10)
    ax.set_xlabel("layer (registration order)", fontsize=9)


def weight_movement_png(r: EvaluationResults) -> bytes:
    """Top: the whole model's relative change (median over runs, quartile bars) vs real
    training frames (log x), one line per model; and the gain each pre-trained cell keeps vs
    that change, one point per model and setting, with the per-setting rank correlation over
    the models. Bottom: per model, each layer's median change (log y) at the smallest (dashed,
    hollow) and the largest (solid) setting, normalisation layers shaded. A message where the
    movement was not measured."""
    movement = r.weight_movement()
    if movement is None:
        fig = Figure(figsize=(10.0, 2.0))
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "weight movement not measured (no pre-training checkpoints given)",
                ha="center", va="center", fontsize=11)
        return png_bytes(fig, dpi=110)
    n = len(movement)
    fig = Figure(figsize=(max(13.0, 3.0 * n), 9.2))
    grid = fig.add_gridspec(2, 2 * n, height_ratios=(1.25, 1.0))
    _whole_panel(fig.add_subplot(grid[0, :n]), r, movement)
    _gain_panel(fig.add_subplot(grid[0, n:]), r, movement)
    frames = [r.train_frames(s.name) for s in r.settings]
    ends = sorted(range(len(frames)), key=lambda k: frames[k])
    ends = [ends[0], ends[-1]]
    profiles = [fig.add_subplot(grid[1, 2 * k:2 * k + 2]) for k in range(n)]
    for k, (ax, w) in enumerate(zip(profiles, movement, strict=True)):
        _profile_panel(ax, r, w, f"C{k % 10}", _MARKERS[k % len(_MARKERS)], ends)
    profiles[0].set_ylabel("relative change of the layer [%]\n(median over runs, log scale)",
                           fontsize=9)
    handles = [Line2D([], [], color="0.3", linestyle=style, marker="o", markersize=3.5,
                      markerfacecolor=fill,
                      label=f"{r.settings[j].label} ({frames[j]:,.0f} frames)")
               for j, (style, fill) in zip(ends, _PROFILE_STYLES, strict=True)]
    handles.append(Patch(color=_NORM_SHADE[0], label=_NORM_SHADE[1]))
    handles.append(Line2D([], [], linestyle="none", label="layer names: summary.json"))
    fig.legend(handles=handles, fontsize=8.5, loc="lower center", ncol=4, frameon=False)
    for ax in fig.axes:
        ax.tick_params(labelsize=8)
    fig.suptitle("Architecture vs transfer: relative change ‖W_ft − W_PT‖ / ‖W_PT‖ of the "
                 "parameters in fine-tuning (buffers such as batch-norm statistics excluded)",
                 fontsize=11)
    fig.tight_layout(rect=(0.0, 0.04, 1.0, 1.0))
    return png_bytes(fig, dpi=110)
