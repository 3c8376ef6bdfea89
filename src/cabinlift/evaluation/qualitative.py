"""The Figure-3-style example: one test frame lifted by one model after every amount of data.

Ground truth (green) and estimate (black) are drawn as 3D skeletons; one row per
initialisation (from scratch, pre-trained) and one column per setting, so a reader sees at once
how the pose improves with data and what pre-training changes at each amount.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the '3d' projection)

from cabinlift.errors import CabinliftError
from cabinlift.evaluation.aggregate import frame_mpjpe
from cabinlift.evaluation.loading import TestSet
from cabinlift.evaluation.outputs import dump_json
from cabinlift.evaluation.plots import png_bytes
from cabinlift.evaluation.results import EvaluationResults, Panel, QualitativeFrame
from cabinlift.evaluation.settings import Setting, model_label
from cabinlift.skeleton import COCO13, COCO13_EDGES, NUM_JOINTS


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


def make_panels(
    test: TestSet, frame: int, preds: Mapping[tuple[str, str], np.ndarray],
    inits: Sequence[str], settings: Sequence[Setting],
) -> list[Panel]:
    """Panels in row-major order (init, then setting) from ``preds[init, setting] = (N, J, 3)``."""
    sl = slice(frame, frame + 1)
    out = []
    for i in inits:
        for s in settings:
            pose = np.asarray(preds[i, s.name][frame], dtype=np.float64)
            err = float(frame_mpjpe(pose[None], test.y3d[sl], test.mask[sl])[0])
            out.append(Panel(i, s, pose, err))
    return out


def panels_json(q: QualitativeFrame) -> dict[str, Any]:
    """The poses drawn, so the figure can be re-drawn or checked without the model outputs."""
    return {
        "joints": list(COCO13),
        "valid": [bool(v) for v in q.mask],
        "ground_truth_mm": [[round(float(c), 2) for c in p] if v else None
                            for p, v in zip(q.ground_truth, q.mask, strict=True)],
        "estimates": [
            {"init": p.init, "setting": p.setting.name, "frame_mpjpe": round(p.error, 3),
             "pose_mm": [[round(float(c), 2) for c in j] for j in p.pose]}
            for p in q.panels
        ],
    }


def qualitative_json(r: EvaluationResults) -> str:
    """``plots/qualitative.json``: the frame's description and the poses drawn."""
    return dump_json({**r.qualitative.info(), **panels_json(r.qualitative)})


def _to_plot(p: np.ndarray) -> np.ndarray:
    """Camera frame (x right, y down, z forward) -> plot frame (x, depth, up) so the driver
    stands upright in matplotlib's z-up 3D axes."""
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


def qualitative_png(r: EvaluationResults) -> bytes:
    """A grid of 3D skeletons (rows: inits, columns: settings): ground truth (green) and the
    estimate (black) of one test frame, each titled with that frame's MPJPE (as Figure 3)."""
    q = r.qualitative
    panels, mask = q.panels, q.mask
    gt = _to_plot(q.ground_truth)
    preds = [_to_plot(p.pose) for p in panels]
    pts = np.concatenate([gt[mask], *preds]) if preds else gt[mask]
    pts = pts[np.isfinite(pts).all(axis=1)]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.08, 1.0)

    rows = list(dict.fromkeys(p.init for p in panels)) or [""]
    cols = max(len(panels) // len(rows), 1)
    fig = Figure(figsize=(2.2 * cols + 0.5, 2.55 * len(rows) + 0.45))
    for k, (panel, pred) in enumerate(zip(panels, preds, strict=True)):
        ax = fig.add_subplot(len(rows), cols, k + 1, projection="3d")
        for a, b in COCO13_EDGES:
            if mask[a] and mask[b]:
                ax.plot(*gt[[a, b]].T, color="tab:green", linewidth=2.2)
        for a, b in COCO13_EDGES:
            ax.plot(*pred[[a, b]].T, color="black", linewidth=1.2)
        ax.scatter(*gt[mask].T, color="tab:green", s=8, depthshade=False)
        ax.scatter(*pred.T, color="black", s=5, depthshade=False)
        for dim, setter in enumerate((ax.set_xlim, ax.set_ylim, ax.set_zlim)):
            setter(centre[dim] - half, centre[dim] + half)
        ax.set_box_aspect((1, 1, 1), zoom=1.35)
        ax.view_init(elev=10, azim=-78)
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.set_zticklabels([])
        ax.tick_params(length=0, pad=0)
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_pane_color((0.96, 0.96, 0.96, 1.0))
        head = f"{panel.setting.label}\n" if k < cols else ""
        ax.set_title(f"{head}{panel.error:.1f} mm", fontsize=9)
        if k % cols == 0:
            ax.text2D(-0.04, 0.5, "pre-trained" if panel.init == "pretrained" else "from scratch",
                      transform=ax.transAxes, rotation=90, va="center", ha="right", fontsize=10)
    fig.suptitle(qualitative_title(q), fontsize=10)
    fig.subplots_adjust(left=0.03, right=1.0, bottom=0.0, top=1 - 0.62 / fig.get_figheight(),
                        wspace=0.0, hspace=0.12)
    return png_bytes(fig, dpi=110)


def qualitative_title(q: QualitativeFrame) -> str:
    """Figure title naming the model and the frame (subject, file, frame id)."""
    return (
        f"{model_label(q.model, 'scratch')}: test subject {q.subject}, "
        f"{q.file_id} frame {q.frame_id} "
        "(green: ground truth, black: estimate; frame MPJPE per panel)"
    )
