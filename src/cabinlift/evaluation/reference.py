"""The mean-training-pose reference: the error of a lifter that learned only a constant.

For each run of a setting, the reference predicts for every test frame the mean pose of that
run's training frames (neck-centred, mm; each joint averaged over the frames where it is
annotated) and scores it like a run: MPJPE over the valid test joints. A fine-tuned model whose
cell lies above the reference of its setting did worse than ignoring its input altogether.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cabinlift.arrays import load_arrays
from cabinlift.errors import CabinliftError
from cabinlift.evaluation.aggregate import Stat
from cabinlift.evaluation.loading import TestSet
from cabinlift.evaluation.settings import Setting
from cabinlift.metrics import mpjpe
from cabinlift.skeleton import COCO13
from cabinlift.subsets import read_subset


@dataclass(frozen=True)
class MeanPoseRun:
    """The reference for one run of a setting (the same training frames as that run)."""

    repetition: int
    subjects: list[int]
    train_frames: int
    mpjpe: float
    unseen_joints: list[str]  # joints annotated in none of its training frames


@dataclass(frozen=True)
class MeanPoseReference:
    """The reference of one setting: one value per run and their mean (the table's row)."""

    setting: str
    runs: list[MeanPoseRun]
    stat: Stat

    @property
    def mean(self) -> float:
        return self.stat.mean


def mean_pose(y3d: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean pose (J, 3) of poses (N, J, 3), each joint over the frames where ``mask`` (N, J)
    marks it valid, and which joints had any valid frame (J,). A joint valid in no frame is
    put at the origin, the neck: with nothing learned about it, the constant stays at the
    centre of the neck-centred frame."""
    y = np.asarray(y3d, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    sums = np.where(m[..., None], y, 0.0).sum(axis=0)
    counts = m.sum(axis=0)
    seen = counts > 0
    pose = np.zeros_like(sums)
    pose[seen] = sums[seen] / counts[seen][:, None]
    return pose, seen


def constant_pose_mpjpe(pose: np.ndarray, test: TestSet) -> float:
    """MPJPE of predicting ``pose`` (J, 3) for every test frame, over valid joints only."""
    pred = np.broadcast_to(pose, test.y3d.shape)
    return float(mpjpe(torch.from_numpy(np.ascontiguousarray(pred, dtype=np.float64)),
                       torch.from_numpy(test.y3d), torch.from_numpy(test.mask)))


def mean_pose_references(
    train_npz: str | Path, subsets_dir: str | Path, settings: Sequence[Setting], test: TestSet,
) -> dict[str, MeanPoseReference]:
    """The reference of every setting, from the real training pool (``real_train.npz``) and
    the subset files ``<subsets_dir>/<setting>.json`` whose runs the fine-tuning stages trained
    on."""
    train = load_arrays(Path(train_npz))
    y3d, mask = train["y3d"], np.asarray(train["mask"], dtype=bool)
    n_pool = len(mask)
    out: dict[str, MeanPoseReference] = {}
    for s in settings:
        path = Path(subsets_dir) / f"{s.name}.json"
        doc = read_subset(path)
        if doc["setting"] != s.name:
            raise CabinliftError(
                f"{path}: holds setting {doc['setting']!r}, expected {s.name!r} (stale or "
                "misplaced file? re-run the subsets stage)"
            )
        if not doc["runs"]:
            raise CabinliftError(f"{path}: 'runs' is empty, expected the runs of {s.name}")
        runs = []
        for k, run in enumerate(doc["runs"]):
            idx = np.asarray(run["indices"], dtype=np.int64)
            if idx.size == 0 or idx.min() < 0 or idx.max() >= n_pool:
                raise CabinliftError(
                    f"{path}: runs[{k}] has no indices or indices outside the {n_pool} rows of "
                    f"{Path(train_npz).name}; re-run the subsets stage"
                )
            pose, seen = mean_pose(y3d[idx], mask[idx])
            runs.append(MeanPoseRun(
                repetition=int(run["repetition"]),
                subjects=[int(x) for x in run["subjects"]],
                train_frames=int(idx.size),
                mpjpe=constant_pose_mpjpe(pose, test),
                unseen_joints=[COCO13[j] for j in np.flatnonzero(~seen)],
            ))
        runs.sort(key=lambda r: r.repetition)
        out[s.name] = MeanPoseReference(s.name, runs, Stat.of([r.mpjpe for r in runs]))
    return out
