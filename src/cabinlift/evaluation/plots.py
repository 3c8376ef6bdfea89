"""Figures of the evaluate stage: MPJPE vs amount of real data, and a Figure-3-like example.

Figures are drawn on bare :class:`matplotlib.figure.Figure` objects (Agg, no pyplot state) and
returned as PNG bytes without the 'Software' metadata, so the same inputs give the same bytes and
``git diff`` on plots/ shows only real changes. DVC's own plot renderer needs a CDN (design §2),
so the PNGs are what a reader sees offline; the CSV is the data ``dvc plots`` reads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the '3d' projection)

from cabinlift.errors import CabinliftError
from cabinlift.evaluation.aggregate import CellSummary
from cabinlift.evaluation.loading import TestSet
from cabinlift.evaluation.settings import INITS, Setting, model_label
from cabinlift.evaluation.table import setting_train_frames
from cabinlift.skeleton import COCO13_EDGES, NUM_JOINTS

Cells = Mapping[tuple[str, str, str], CellSummary]

_PNG_METADATA = {"Software": None}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def _png(fig: Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata=_PNG_METADATA)
    return buf.getvalue()


def short_label(s: Setting) -> str:
    """Compact setting name for a crowded axis: '5%', '1 subj.', '4 subj.'."""
    if s.fraction < 1.0:
        pct = f"{s.fraction * 100:.6g}%"
        return pct if s.subjects == 1 else f"{pct}×{s.subjects}"
    return f"{s.subjects} subj."


def curve_csv(cells: Cells, models: list[str], settings: list[Setting]) -> str:
    """Plot data for ``dvc plots``: one row per setting with its mean training frames and the
    mean MPJPE of every ``<model>_<init>``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = [f"{m}_{i}" for m in models for i in INITS]
    w.writerow(["setting", "train_frames", *cols])
    for s in settings:
        frames = setting_train_frames(cells, s.name)
        w.writerow([
            s.name, f"{frames:.1f}",
            *(f"{cells[m, i, s.name].mean:.3f}" for m in models for i in INITS),
        ])
    return buf.getvalue()


def curve_png(cells: Cells, models: list[str], settings: list[Setting]) -> bytes:
    """MPJPE vs training frames (log x): one colour and marker per model, solid = from scratch,
    dashed = pre-trained, so the narrowing gap of the paper's Section 4 is visible at a glance."""
    fig = Figure(figsize=(9.0, 5.6))
    ax = fig.add_subplot()
    colors = [f"C{k % 10}" for k in range(len(models))]
    for k, m in enumerate(models):
        for i in INITS:
            xs = [cells[m, i, s.name].train_frames for s in settings]
            ys = [cells[m, i, s.name].mean for s in settings]
            ax.plot(
                xs, ys,
                color=colors[k],
                linestyle="-" if i == "scratch" else "--",
                marker=_MARKERS[k % len(_MARKERS)],
                markersize=6,
                markerfacecolor=colors[k] if i == "scratch" else "white",
                linewidth=1.8,
                label=model_label(m, i),
            )
    ax.set_xscale("log")
    ax.set_xlabel("Real training frames (mean over runs, log scale)", fontsize=11)
    ax.set_ylabel("Test MPJPE [mm] (mean over runs)", fontsize=11)
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    ax.tick_params(labelsize=10)
    top = ax.secondary_xaxis("top")
    frames = [setting_train_frames(cells, s.name) for s in settings]
    top.set_xticks(frames, labels=[short_label(s) for s in settings], fontsize=9)
    top.tick_params(which="minor", top=False, labeltop=False)
    top.set_xlabel("Amount of fine-tuning data", fontsize=10)
    ax.legend(ncol=2, fontsize=9, frameon=True, title="solid: scratch, dashed: PT",
              title_fontsize=9)
    fig.tight_layout()
    return _png(fig, dpi=120)


@dataclass(frozen=True)
class QualitativeConfig:
    """Which example Figure 3 shows. ``model`` None = the first model; ``file_id`` and
    ``frame_id`` None = choose a typical frame automatically (see :func:`select_frame`)."""

    model: str | None = None
    init: str = "pretrained"
    file_id: str | None = None
    frame_id: int | None = None

    @classmethod
    def from_any(cls, value: QualitativeConfig | Mapping | None) -> QualitativeConfig:
        """Accept the params.yaml mapping (keys model, init, file_id, frame_id) or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise CabinliftError("qualitative: expected a mapping with model/init/file_id/frame_id")
        unknown = sorted(set(value) - {"model", "init", "file_id", "frame_id"})
        if unknown:
            raise CabinliftError(
                f"qualitative: unknown key(s) {', '.join(map(str, unknown))}; expected model, "
                "init, file_id, frame_id"
            )
        frame_id = value.get("frame_id")
        if frame_id is not None and (isinstance(frame_id, bool) or not isinstance(frame_id, int)):
            raise CabinliftError(f"qualitative.frame_id: expected an integer, got {frame_id!r}")
        return cls(
            model=value.get("model"),
            init=value.get("init", "pretrained"),
            file_id=None if value.get("file_id") is None else str(value["file_id"]),
            frame_id=frame_id,
        )

    def check(self, models: Sequence[str]) -> None:
        """Fail early (before hours of results are aggregated) on a bad configuration."""
        if self.model is not None and self.model not in models:
            raise CabinliftError(
                f"qualitative.model: {self.model!r} is not among the evaluated models "
                f"{list(models)}"
            )
        if self.init not in INITS:
            raise CabinliftError(f"qualitative.init: {self.init!r}, expected one of {INITS}")
        if (self.file_id is None) != (self.frame_id is None):
            raise CabinliftError(
                "qualitative: give both file_id and frame_id, or neither (automatic choice)"
            )


def find_frame(test: TestSet, file_id: str, frame_id: int) -> int:
    """Index of the configured test frame (the first one if it occurs more than once)."""
    hits = np.flatnonzero((test.file_id == file_id) & (test.frame_id == frame_id))
    if hits.size == 0:
        raise CabinliftError(
            f"qualitative: no frame with file_id {file_id!r} and frame_id {frame_id} in "
            f"{test.path}"
        )
    return int(hits[0])


def select_frame(test: TestSet, frame_errors: np.ndarray) -> int:
    """A typical test frame: among fully annotated frames (all 13 joints valid; else those with
    the most valid joints), the one whose MPJPE is closest to their median; first on ties.

    A typical frame (rather than a best or worst one) keeps the figure honest.
    """
    counts = test.mask.sum(axis=1)
    full = counts == NUM_JOINTS
    cand = full if full.any() else counts == counts.max()
    cand &= np.isfinite(frame_errors)
    idx = np.flatnonzero(cand)
    if idx.size == 0:
        raise CabinliftError(f"{test.path}: no frame with valid joints to show")
    e = frame_errors[idx]
    med = np.median(e)
    return int(idx[np.argmin(np.abs(e - med))])


def _to_plot(p: np.ndarray) -> np.ndarray:
    """Camera frame (x right, y down, z forward) -> plot frame (x, depth, up) so the driver
    stands upright in matplotlib's z-up 3D axes."""
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


def qualitative_png(
    test: TestSet,
    frame: int,
    panels: Sequence[tuple[Setting, np.ndarray, float]],
    title: str,
) -> bytes:
    """A row of 3D skeletons, one per setting: ground truth (green) and the estimate (black) of
    one test frame, titled with the setting label and that frame's MPJPE (as Figure 3).

    ``panels``: (setting, predicted pose (J, 3) in mm, frame MPJPE in mm) per setting.
    """
    mask = test.mask[frame]
    gt = _to_plot(test.y3d[frame])
    preds = [_to_plot(np.asarray(p, dtype=np.float64)) for _, p, _ in panels]
    pts = np.concatenate([gt[mask], *preds]) if preds else gt[mask]
    pts = pts[np.isfinite(pts).all(axis=1)]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.08, 1.0)

    n = max(len(panels), 1)
    fig = Figure(figsize=(2.2 * n, 2.9))
    for k, ((s, _, err), pred) in enumerate(zip(panels, preds, strict=True)):
        ax = fig.add_subplot(1, n, k + 1, projection="3d")
        for a, b in COCO13_EDGES:
            if mask[a] and mask[b]:
                ax.plot(*gt[[a, b]].T, color="tab:green", linewidth=2.0)
        for a, b in COCO13_EDGES:
            ax.plot(*pred[[a, b]].T, color="black", linewidth=1.2)
        ax.scatter(*gt[mask].T, color="tab:green", s=8, depthshade=False)
        ax.scatter(*pred.T, color="black", s=5, depthshade=False)
        for dim, setter in enumerate((ax.set_xlim, ax.set_ylim, ax.set_zlim)):
            setter(centre[dim] - half, centre[dim] + half)
        ax.set_box_aspect((1, 1, 1), zoom=1.2)
        ax.view_init(elev=10, azim=-78)
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.set_zticklabels([])
        ax.tick_params(length=0, pad=0)
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_pane_color((0.96, 0.96, 0.96, 1.0))
        ax.set_title(f"{s.label}\nMPJPE {err:.1f} mm", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.0, right=1.0, bottom=0.0, top=0.80, wspace=0.0)
    return _png(fig, dpi=110)


def qualitative_title(test: TestSet, frame: int, model: str, init: str) -> str:
    """Figure title naming model, init and the frame (subject, file, frame id)."""
    return (
        f"{model_label(model, init)}: test subject {int(test.subject[frame])}, "
        f"{test.file_id[frame]} frame {int(test.frame_id[frame])} "
        "(green: ground truth, black: estimate)"
    )
