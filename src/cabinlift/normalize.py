"""The paper's pose normalisation (Section 3) and the cached arrays every trainer reads.

* 13 COCO upper-body joints; "neck" = midpoint of the shoulders, in 2D and in 3D.
* 2D: neck-centred, then x divided by the horizontal and y by the vertical extent (max - min)
  of the 13 joints.
* 3D: neck-centred, in millimetres. A joint is valid if it is annotated in 3D (checked before
  centring); frames with fewer than ``min_valid_joints`` valid joints or without both shoulders
  (no neck) are dropped and counted, as are frames the detector missed.

Output: ``<out>/{real,synthetic}_{train,val,test}.npz`` with ``x2d`` (N,13,2) float32,
``y3d`` (N,13,3) float32 mm, ``mask`` (N,13) bool, ``subject`` (N,) int64 (real: Drive&Act
participant; synthetic: index of the virtual human in sorted order), ``frame_id`` (N,) int64,
``file_id`` (N,) str, ``activity`` (N,) str ('' when unknown).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cabinlift.arrays import save_arrays
from cabinlift.atomic import write_atomic
from cabinlift.config import SPLITS, Params, Section
from cabinlift.errors import CabinliftError
from cabinlift.formats.drive_act import (
    activity_at,
    discover_recordings,
    read_activities,
    read_openpose3d,
)
from cabinlift.formats.synthetic_cabin import load_synthetic
from cabinlift.keypoints import interim
from cabinlift.skeleton import COCO13, COCO17_TO_BODY25, L_SHOULDER, NUM_JOINTS, R_SHOULDER
from cabinlift.splits import missing_members
from cabinlift.validation import report

ACTIVITIES_FILE = Path("activities_3s") / "inner_mirror" / "midlevel.chunks_90.csv"


def normalize_2d(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Neck-centre (N, 13, 2) pixel poses and divide x, y by their horizontal / vertical extent.

    Returns the normalised poses and a (N,) bool of frames whose extents are non-zero.
    """
    xy = np.asarray(xy, dtype=np.float64)
    neck = 0.5 * (xy[:, L_SHOULDER] + xy[:, R_SHOULDER])
    extent = xy.max(axis=1) - xy.min(axis=1)  # (N, 2)
    ok = np.all(extent > 1e-9, axis=1)
    safe = np.where(extent > 1e-9, extent, 1.0)
    return (xy - neck[:, None, :]) / safe[:, None, :], ok


def centre_3d(xyz_m: np.ndarray) -> np.ndarray:
    """Neck-centre (N, 13, 3) poses in metres and convert to millimetres."""
    xyz = np.asarray(xyz_m, dtype=np.float64)
    neck = 0.5 * (xyz[:, L_SHOULDER] + xyz[:, R_SHOULDER])
    return (xyz - neck[:, None, :]) * 1000.0


def _empty() -> dict[str, list]:
    return {k: [] for k in ("x2d", "y3d", "mask", "subject", "frame_id", "file_id", "activity")}


def _finish(parts: dict[str, list]) -> dict[str, np.ndarray]:
    if not parts["x2d"]:
        return {
            "x2d": np.zeros((0, NUM_JOINTS, 2), np.float32),
            "y3d": np.zeros((0, NUM_JOINTS, 3), np.float32),
            "mask": np.zeros((0, NUM_JOINTS), bool),
            "subject": np.zeros(0, np.int64), "frame_id": np.zeros(0, np.int64),
            "file_id": np.zeros(0, "<U1"), "activity": np.zeros(0, "<U1"),
        }
    return {
        "x2d": np.concatenate(parts["x2d"]).astype(np.float32),
        "y3d": np.concatenate(parts["y3d"]).astype(np.float32),
        "mask": np.concatenate(parts["mask"]).astype(bool),
        "subject": np.concatenate(parts["subject"]).astype(np.int64),
        "frame_id": np.concatenate(parts["frame_id"]).astype(np.int64),
        "file_id": np.concatenate(parts["file_id"]).astype(str),
        "activity": np.concatenate(parts["activity"]).astype(str),
    }


def _split_of(splits: Section) -> dict[Any, str]:
    """Split of every subject or virtual human (params.yaml keeps the splits disjoint)."""
    return {member: split for split in SPLITS for member in getattr(splits, split)}


def _all_members_present(params: Params, key: str, present: set, what: str, where: str) -> None:
    """Stop when a split names a member the data lacks (:mod:`cabinlift.splits`)."""
    found = list(missing_members(f"normalize.{key}", getattr(params.normalize, key), present, what,
                                 where))
    if found:
        raise CabinliftError(report(params.source, found))


def build_real(params: Params, kp_dir: Path) -> tuple[dict[str, dict], dict[str, Any]]:
    """Join the 2D keypoints with the 3D ground truth of every recording, normalise, split."""
    root = Path(params.data.real.root)
    min_valid = params.normalize.min_valid_joints
    split_of = _split_of(params.normalize.real_splits)
    act_path = root / ACTIVITIES_FILE
    chunks = read_activities(act_path) if act_path.is_file() else None
    parts = {s: _empty() for s in SPLITS}
    counts: dict[str, Any] = {
        "sampled": 0, "no_detection": 0, "no_neck": 0, "few_valid_joints": 0,
        "degenerate_2d": 0, "unused_subject": 0, "kept": {s: 0 for s in SPLITS},
        "activities_file": str(act_path) if chunks is not None else None,
    }
    valid_sum = np.zeros(NUM_JOINTS)
    recordings = discover_recordings(root)
    _all_members_present(params, "real_splits", {r.subject for r in recordings}, "subject",
                         str(root))
    for rec in tqdm(recordings, desc="normalize real", unit="rec"):
        kp_path = interim.interim_path(kp_dir, rec.file_id, "keypoints2d")
        kp = interim.read_keypoints(kp_path)
        counts["sampled"] += len(kp.frame_id)
        split = split_of.get(rec.subject)
        if split is None:
            counts["unused_subject"] += len(kp.frame_id)
            continue
        table = read_openpose3d(rec.pose3d_path)
        rows = np.searchsorted(table.frame_id, kp.frame_id)
        rows = np.clip(rows, 0, len(table.frame_id) - 1)
        if not np.array_equal(table.frame_id[rows], kp.frame_id):
            raise CabinliftError(
                f"{kp_path}: frame ids not present in {rec.pose3d_path}; re-run detect/keypoints2d"
            )
        xyz, valid = table.joints(COCO17_TO_BODY25[:NUM_JOINTS])
        xyz, valid = xyz[rows], valid[rows]
        x2d, ok2d = normalize_2d(np.nan_to_num(kp.xy[:, :NUM_JOINTS]))
        has_neck = valid[:, L_SHOULDER] & valid[:, R_SHOULDER]
        enough = valid.sum(axis=1) >= min_valid
        det = kp.detected
        counts["no_detection"] += int((~det).sum())
        counts["no_neck"] += int((det & ~has_neck).sum())
        counts["few_valid_joints"] += int((det & has_neck & ~enough).sum())
        counts["degenerate_2d"] += int((det & has_neck & enough & ~ok2d).sum())
        keep = det & has_neck & enough & ok2d
        n = int(keep.sum())
        if n == 0:
            continue
        p = parts[split]
        p["x2d"].append(x2d[keep])
        p["y3d"].append(np.where(valid[keep][..., None], centre_3d(xyz[keep]), 0.0))
        p["mask"].append(valid[keep])
        p["subject"].append(np.full(n, rec.subject))
        p["frame_id"].append(kp.frame_id[keep])
        p["file_id"].append(np.full(n, rec.file_id))
        acts = activity_at(chunks, rec.file_id, kp.frame_id[keep]) if chunks is not None else np.full(n, "")
        p["activity"].append(np.asarray(acts, dtype=str))
        counts["kept"][split] += n
        valid_sum += valid[keep].sum(axis=0)
    total_kept = sum(counts["kept"].values())
    counts["joint_valid_rate"] = {
        name: round(float(valid_sum[j] / max(total_kept, 1)), 4) for j, name in enumerate(COCO13)
    }
    return {s: _finish(parts[s]) for s in SPLITS}, counts


def build_synthetic(params: Params) -> tuple[dict[str, dict], dict[str, Any]]:
    """Exact 2D projections and 3D of the pre-training views, normalised like the real data."""
    syn = params.data.synthetic
    root, views, workers, cache_dir = Path(syn.root), list(syn.views), syn.workers, syn.cache_dir
    split_of = _split_of(params.normalize.synthetic_splits)
    data = load_synthetic(root, views, workers=workers, cache_dir=cache_dir)
    humans = np.asarray(data["human"]).astype(str)
    names = sorted(set(humans.tolist()))
    _all_members_present(params, "synthetic_splits", set(names), "human",
                         f"{root} (views {', '.join(views)})")
    index = {h: i for i, h in enumerate(names)}
    x2d, ok = normalize_2d(data["kp2d"][:, :NUM_JOINTS])
    y3d = centre_3d(data["kp3d"][:, :NUM_JOINTS])
    counts: dict[str, Any] = {
        "images": len(humans), "views": list(views), "degenerate_2d": int((~ok).sum()),
        "unused_human": 0, "kept": {s: 0 for s in SPLITS},
    }
    out = {}
    split_arr = np.array([split_of.get(h, "") for h in humans])
    counts["unused_human"] = int((split_arr == "").sum())
    for split in SPLITS:
        keep = ok & (split_arr == split)
        n = int(keep.sum())
        out[split] = {
            "x2d": x2d[keep].astype(np.float32),
            "y3d": y3d[keep].astype(np.float32),
            "mask": np.ones((n, NUM_JOINTS), bool),
            "subject": np.array([index[h] for h in humans[keep]], dtype=np.int64),
            "frame_id": np.arange(n, dtype=np.int64),
            "file_id": np.asarray(data["img_name"])[keep].astype(str),
            "activity": np.full(n, "", dtype="<U1"),
        }
        counts["kept"][split] = n
    return out, counts


def run_normalize(params: Params, kp_dir: Path, out_dir: Path, report: Path | None = None
                  ) -> dict[str, Any]:
    """The processed arrays of every split (``out_dir/{real,synthetic}_<split>.npz``) and the
    report of what was kept and dropped (returned, and written to ``report`` as JSON)."""
    real, real_counts = build_real(params, kp_dir)
    synth, synth_counts = build_synthetic(params)
    for split in SPLITS:
        if len(real[split]["x2d"]) == 0:
            raise CabinliftError(
                f"no real frames left in split {split!r}: check 'normalize.real_splits.{split}' "
                f"against the subjects under {params.data.real.root}"
            )
        if len(synth[split]["x2d"]) == 0:
            raise CabinliftError(
                f"no synthetic poses left in split {split!r}: check "
                f"'normalize.synthetic_splits.{split}' and 'data.synthetic.views'"
            )
    for split in SPLITS:
        save_arrays(out_dir / f"real_{split}.npz", real[split])
        save_arrays(out_dir / f"synthetic_{split}.npz", synth[split])
    counts = {"real": real_counts, "synthetic": synth_counts}
    if report is not None:
        write_atomic(report, json.dumps(counts, indent=2, sort_keys=True) + "\n")
    return counts
