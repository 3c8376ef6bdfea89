"""The ``detect`` and ``keypoints2d`` stages: loop over recordings, dispatch to the backend,
write the interim files (:mod:`cabinlift.keypoints.interim`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cabinlift.config import get
from cabinlift.errors import CabinliftError
from cabinlift.formats.drive_act import (
    Recording,
    discover_recordings,
    read_calibration,
    read_openpose3d,
)
from cabinlift.keypoints import interim, simulated
from cabinlift.skeleton import COCO17_TO_BODY25

BACKENDS = ("simulated",)


def _backend(params: dict[str, Any], stage: str) -> tuple[str, dict[str, Any]]:
    name = get(params, f"{stage}.backend", str)
    if name not in BACKENDS:
        raise CabinliftError(
            f"{params.get('_source', 'params.yaml')}: key '{stage}.backend' is {name!r}; "
            f"expected one of {', '.join(BACKENDS)}"
        )
    return name, dict(get(params, f"{stage}.{name}", dict))


def sampled_joints(rec: Recording, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame ids sampled every ``stride`` frames, with the completed COCO-17 joints (metres,
    camera frame) and which were annotated, from the recording's openpose_3d CSV."""
    table = read_openpose3d(rec.pose3d_path)
    xyz, valid = table.joints(COCO17_TO_BODY25)
    full = simulated.complete_joints(xyz, valid)
    keep = table.frame_id % stride == 0
    return table.frame_id[keep], full[keep], valid[keep]


def run_detect(params: dict[str, Any], out_dir: Path) -> dict[str, int]:
    """Driver box per sampled frame of every recording under ``data.real.root``."""
    _name, cfg = _backend(params, "detect")
    root = Path(get(params, "data.real.root", str))
    stride = get(params, "data.real.frame_stride", int)
    seed = get(params, "detect.seed", int)
    counts = {"frames": 0, "detected": 0}
    for rec in tqdm(discover_recordings(root), desc="detect", unit="rec"):
        calib = read_calibration(rec.calibration_path)
        frame_id, xyz, annotated = sampled_joints(rec, stride)
        rng = simulated.recording_rng(seed, rec.file_id, "detect")
        det = simulated.simulate_detections(xyz, annotated, calib, cfg, rng, frame_id)
        interim.write_detections(interim.interim_path(out_dir, rec.file_id, "detections"), det)
        counts["frames"] += len(frame_id)
        counts["detected"] += int(det.detected.sum())
    return counts


def run_keypoints2d(params: dict[str, Any], det_dir: Path, out_dir: Path) -> dict[str, int]:
    """COCO-17 keypoints and scores inside every detected driver box."""
    _name, cfg = _backend(params, "keypoints2d")
    root = Path(get(params, "data.real.root", str))
    stride = get(params, "data.real.frame_stride", int)
    seed = get(params, "keypoints2d.seed", int)
    counts = {"frames": 0, "with_keypoints": 0}
    for rec in tqdm(discover_recordings(root), desc="keypoints2d", unit="rec"):
        calib = read_calibration(rec.calibration_path)
        det_path = interim.interim_path(det_dir, rec.file_id, "detections")
        det = interim.read_detections(det_path)
        frame_id, xyz, annotated = sampled_joints(rec, stride)
        if not np.array_equal(frame_id, det.frame_id):
            raise CabinliftError(
                f"{det_path}: frame ids do not match the sampled frames of {rec.pose3d_path} "
                f"(stride {stride}); re-run the detect stage"
            )
        rng = simulated.recording_rng(seed, rec.file_id, "keypoints2d")
        kp = simulated.simulate_keypoints(xyz, annotated, det, calib, cfg, rng)
        interim.write_keypoints(interim.interim_path(out_dir, rec.file_id, "keypoints2d"), kp)
        counts["frames"] += len(frame_id)
        counts["with_keypoints"] += int(kp.detected.sum())
    return counts


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
