"""The paper's pose normalisation (Section 3) and the cached arrays every trainer reads.

* 13 COCO upper-body joints; "neck" = midpoint of the shoulders, in 2D and in 3D.
* 2D: neck-centred, then x divided by the horizontal and y by the vertical extent (max - min)
  of the 13 joints. A keypoint that was not found (no coordinates in the interim CSV, e.g. one
  that precomputed COCO keypoints leave unlabelled; ``cabinlift lift``: COCO ``v = 0``, a score
  <= 0) counts in no extent and is 0 (at the neck), and a frame needs both shoulders and
  ``min_valid_joints`` joints found in 2D as in 3D.
* 3D: neck-centred, in millimetres. A joint is valid if it is annotated in 3D (checked before
  centring); frames with fewer than ``min_valid_joints`` valid joints or without both shoulders
  (no neck) are dropped and counted, as are frames the detector missed.

The synthetic training split is as described unless a ``pretrain.data`` knob is on: then
:mod:`cabinlift.synthetic_train` picks its poses, 2D source and augmented copies, and the report
gains a ``synthetic.pretrain_data`` block (absent while every knob is off).

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

from cabinlift import synthetic_train
from cabinlift.arrays import save_arrays
from cabinlift.atomic import write_atomic
from cabinlift.config import SPLITS, Params, Section
from cabinlift.errors import CabinliftError
from cabinlift.formats.drive_act import (
    ACTIVITIES_FILE,
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

#: The fewest valid joints a frame needs: params.yaml's ``normalize.min_valid_joints`` as
#: committed, and the floor of ``cabinlift lift`` where it finds no params.yaml
#: (``tests/test_lift.py`` checks that the two agree).
DEFAULT_MIN_VALID_JOINTS = 5

#: A pose's horizontal or vertical extent (pixels) below this cannot be divided by.
MIN_EXTENT = 1e-9

#: Why a frame is dropped (or a pose not lifted) although it was detected, in the order checked.
NO_NECK, FEW_VALID_JOINTS, DEGENERATE_2D = "no_neck", "few_valid_joints", "degenerate_2d"
DROP_REASONS: tuple[str, ...] = (NO_NECK, FEW_VALID_JOINTS, DEGENERATE_2D)


def drop_reasons(has_neck: np.ndarray, enough: np.ndarray, ok2d: np.ndarray) -> np.ndarray:
    """(N,) str: the first of :data:`DROP_REASONS` each frame fails (:func:`joint_checks`'s
    ``has_neck`` and ``enough``, :func:`normalize_2d`'s ``ok``), '' where it is kept; the one
    rule by which ``normalize`` drops frames and ``lift`` skips poses."""
    reason = np.full(len(has_neck), "", dtype=object)
    for name, fails in zip(DROP_REASONS, (~has_neck, ~enough, ~ok2d), strict=True):
        reason[(reason == "") & fails] = name
    return reason.astype(str)


def joint_checks(valid: np.ndarray, min_valid: int) -> tuple[np.ndarray, np.ndarray]:
    """``(has_neck, enough)`` per frame of a (N, 13) validity mask: both shoulders valid (the
    neck is their midpoint, the origin of every pose) and at least ``min_valid`` valid joints.
    ``normalize`` drops frames that fail either (3D annotations); ``lift`` skips such poses
    (2D keypoints)."""
    valid = np.asarray(valid, dtype=bool)
    return valid[:, L_SHOULDER] & valid[:, R_SHOULDER], valid.sum(axis=1) >= min_valid


def normalize_2d(xy: np.ndarray, valid: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Neck-centre (N, 13, 2) pixel poses and divide x, y by their horizontal / vertical extent.

    ``valid`` (N, 13) bool marks the joints that were found (default: all, as for the pipeline's
    detections): the others count in no extent and are 0 (at the neck) in the result, the
    value ``normalize`` gives unannotated 3D joints. Returns the normalised poses and a (N,) bool
    of frames whose extents are non-zero and whose shoulders (the neck) are valid.
    """
    xy = np.asarray(xy, dtype=np.float64)
    if valid is None:
        valid = np.ones(xy.shape[:2], dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    has_neck, _ = joint_checks(valid, 0)
    neck = 0.5 * (xy[:, L_SHOULDER] + xy[:, R_SHOULDER])
    found = valid[..., None]
    extent = np.where(found, xy, -np.inf).max(axis=1) - np.where(found, xy, np.inf).min(axis=1)
    ok = np.all(extent > MIN_EXTENT, axis=1) & has_neck
    safe = np.where(extent > MIN_EXTENT, extent, 1.0)
    return np.where(found, (xy - neck[:, None, :]) / safe[:, None, :], 0.0), ok


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
        "sampled": 0, "no_detection": 0, **dict.fromkeys(DROP_REASONS, 0),
        "unused_subject": 0, "kept": {s: 0 for s in SPLITS},
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
        found2d = interim.placed(kp.xy[:, :NUM_JOINTS])
        x2d, ok2d = normalize_2d(np.nan_to_num(kp.xy[:, :NUM_JOINTS]), found2d)
        has_neck, enough = (a & b for a, b in zip(joint_checks(valid, min_valid),
                                                  joint_checks(found2d, min_valid), strict=True))
        det = kp.detected
        counts["no_detection"] += int((~det).sum())
        dropped = drop_reasons(has_neck, enough, ok2d)
        for name in DROP_REASONS:
            counts[name] += int((det & (dropped == name)).sum())
        keep = det & (dropped == "")
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
        "images": len(humans), "views": list(views), DEGENERATE_2D: int((~ok).sum()),
        "unused_human": 0, "kept": {s: 0 for s in SPLITS},
    }
    out = {}
    split_arr = np.array([split_of.get(h, "") for h in humans])
    counts["unused_human"] = int((split_arr == "").sum())
    for split in SPLITS:
        keep = ok & (split_arr == split)
        rows, split_x2d, split_y3d = np.flatnonzero(keep), x2d[keep], y3d[keep]
        if split == "train" and synthetic_train.changes_split(params.pretrain.data):
            made, px, xyz, counts["pretrain_data"] = synthetic_train.build_train(
                params, *(data[k][keep, :NUM_JOINTS] for k in ("kp2d", "kp3d", "visibility")),
                humans[keep])
            split_x2d, fine = normalize_2d(px)
            counts["pretrain_data"][DEGENERATE_2D] = int((~fine).sum())
            rows, split_x2d, split_y3d = rows[made[fine]], split_x2d[fine], centre_3d(xyz[fine])
        n = len(rows)
        out[split] = {
            "x2d": split_x2d.astype(np.float32),
            "y3d": split_y3d.astype(np.float32),
            "mask": np.ones((n, NUM_JOINTS), bool),
            "subject": np.array([index[h] for h in humans[rows]], dtype=np.int64),
            "frame_id": np.arange(n, dtype=np.int64),
            "file_id": np.asarray(data["img_name"])[rows].astype(str),
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
