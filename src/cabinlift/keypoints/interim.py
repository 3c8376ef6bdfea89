"""The interim on-disk format shared by all detection / 2D-keypoint backends.

One CSV per recording, one row per *sampled* frame (missed detections included, with
``detected = 0`` and empty values), so dropped frames can be counted downstream; a recording
none of whose frames is sampled (shorter than the stride) has a header and no row:

* ``data/interim/detections/vpN/<run>.ids_1.detections.csv``:
  ``frame_id,detected,x1,y1,x2,y2,score,rejected`` (pixels of the distorted frame;
  ``rejected``: why a frame has no driver box, one of
  :data:`cabinlift.keypoints.driver.REJECTIONS`, empty where it has one).
* ``data/interim/keypoints2d/vpN/<run>.ids_1.keypoints2d.csv``:
  ``frame_id,detected`` then ``<coco_name>_x,<coco_name>_y,<coco_name>_score`` for COCO-17.
  A keypoint of a detected frame without coordinates (empty x, y) was not found (e.g. one that
  precomputed COCO keypoints leave unlabelled); its score is a confidence, never a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cabinlift.atomic import atomic_path
from cabinlift.errors import CabinliftError
from cabinlift.keypoints.driver import REJECTIONS
from cabinlift.skeleton import COCO17
from cabinlift.textfiles import read_lines

DETECTION_COLUMNS: tuple[str, ...] = (
    "frame_id", "detected", "x1", "y1", "x2", "y2", "score", "rejected",
)
_TEXT_COLUMNS = ("rejected",)
KEYPOINT_COLUMNS: tuple[str, ...] = ("frame_id", "detected") + tuple(
    f"{name}_{c}" for name in COCO17 for c in ("x", "y", "score")
)


def placed(xy: np.ndarray) -> np.ndarray:
    """(..., 17) bool: the keypoints that have coordinates (see the module docstring)."""
    return np.isfinite(np.asarray(xy, dtype=np.float64)).all(axis=-1)


@dataclass
class Detections:
    frame_id: np.ndarray  # (F,) int64
    detected: np.ndarray  # (F,) bool
    boxes: np.ndarray  # (F, 4) float64 x1, y1, x2, y2 (NaN where not detected)
    scores: np.ndarray  # (F,) float64
    rejected: np.ndarray  # (F,) str: why a frame has no box (REJECTIONS), "" where it has one

    def rejected_counts(self) -> dict[str, int]:
        """Frames without a driver box, by reason (every reason listed, zeros included)."""
        return {r: int(np.count_nonzero(self.rejected == r)) for r in REJECTIONS}


def empty_detections(frame_id: np.ndarray) -> Detections:
    """Detections of ``frame_id`` before any frame is looked at: none found, no person box."""
    n = len(frame_id)
    return Detections(frame_id=np.asarray(frame_id).copy(), detected=np.zeros(n, bool),
                      boxes=np.full((n, 4), np.nan), scores=np.full(n, np.nan),
                      rejected=np.full(n, REJECTIONS[0], dtype=object))


@dataclass
class Keypoints2D:
    frame_id: np.ndarray  # (F,) int64
    detected: np.ndarray  # (F,) bool
    xy: np.ndarray  # (F, 17, 2) float64 pixels, COCO-17 order (NaN where not detected)
    scores: np.ndarray  # (F, 17) float64


def interim_path(root: Path, file_id: str, kind: str) -> Path:
    """``root/vpN/<run>.ids_1.<kind>.csv`` for a Drive&Act file id ``vpN/<run>.ids_1``."""
    return Path(root) / f"{file_id}.{kind}.csv"


def _write(path: Path, table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.3f", na_rep="")


def _read(path: Path, columns: tuple[str, ...], kind: str) -> pd.DataFrame:
    """The table of an interim ``<kind>`` CSV, its number columns numeric; a file with the
    header only (a recording none of whose frames is sampled) is a table of no rows."""
    if not path.is_file():
        raise CabinliftError(f"{path}: interim file not found (run the previous stage)")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CabinliftError(f"{path}: not a readable CSV: {exc}") from exc
    except UnicodeDecodeError as exc:
        header = ",".join(columns[:3])
        read_lines(path, f"comma-separated values of an interim {kind} CSV ({header},...)",
                   f"the header '{header},...'")  # raises, naming the line
        raise CabinliftError(f"{path}: not UTF-8 text ({exc.reason})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise CabinliftError(
            f"{path}: missing column {missing[0]!r} (expected {', '.join(columns[:4])}, ...)"
        )
    table = table[list(columns)]
    for col in columns:
        if col in _TEXT_COLUMNS or pd.api.types.is_numeric_dtype(table[col]):
            continue
        numbers = pd.to_numeric(table[col], errors="coerce")
        bad = np.flatnonzero((numbers.isna() & table[col].notna()).to_numpy())
        if len(bad):
            raise CabinliftError(f"{path}: row {int(bad[0]) + 2}, column {col!r}: expected a number")
        table[col] = numbers.astype(np.float64)
    return table


def write_detections(path: Path, det: Detections) -> None:
    table = pd.DataFrame(
        {
            "frame_id": det.frame_id.astype(np.int64),
            "detected": det.detected.astype(np.int64),
            "x1": det.boxes[:, 0], "y1": det.boxes[:, 1],
            "x2": det.boxes[:, 2], "y2": det.boxes[:, 3],
            "score": det.scores,
            "rejected": np.where(det.detected, "", det.rejected),
        }
    )
    _write(path, table)


def read_detections(path: Path) -> Detections:
    t = _read(path, DETECTION_COLUMNS, "detections")
    detected = t["detected"].to_numpy() > 0
    rejected = np.array(["" if pd.isna(v) else str(v).strip() for v in t["rejected"]],
                        dtype=object)
    bad = np.flatnonzero(np.where(detected, rejected != "", ~np.isin(rejected, REJECTIONS)))
    if len(bad):
        row = int(bad[0])
        expected = "empty (a detected frame)" if detected[row] else f"one of {', '.join(REJECTIONS)}"
        raise CabinliftError(
            f"{path}: row {row + 2}, column 'rejected': expected {expected}, got "
            f"{rejected[row]!r}; re-run the detect stage"
        )
    return Detections(
        frame_id=t["frame_id"].to_numpy(np.int64),
        detected=detected,
        boxes=t[["x1", "y1", "x2", "y2"]].to_numpy(np.float64),
        scores=t["score"].to_numpy(np.float64),
        rejected=rejected,
    )


def write_keypoints(path: Path, kp: Keypoints2D) -> None:
    data: dict[str, np.ndarray] = {
        "frame_id": kp.frame_id.astype(np.int64),
        "detected": kp.detected.astype(np.int64),
    }
    for j, name in enumerate(COCO17):
        data[f"{name}_x"] = kp.xy[:, j, 0]
        data[f"{name}_y"] = kp.xy[:, j, 1]
        data[f"{name}_score"] = kp.scores[:, j]
    _write(path, pd.DataFrame(data))


def read_keypoints(path: Path) -> Keypoints2D:
    t = _read(path, KEYPOINT_COLUMNS, "keypoints2d")
    values = t[list(KEYPOINT_COLUMNS[2:])].to_numpy(np.float64).reshape(len(t), 17, 3)
    detected = t["detected"].to_numpy() > 0
    empty = np.isnan(values)
    # in a detected frame every score is given, and x and y both or neither (not found)
    bad = ((empty[..., 0] != empty[..., 1]) | empty[..., 2]) & detected[:, None]
    if bad.any():
        row, joint = (int(v[0]) for v in np.nonzero(bad))
        raise CabinliftError(
            f"{path}: row {row + 2}: keypoint {COCO17[joint]!r} of a detected frame has an empty "
            f"value; expected a score, and x and y both (a keypoint found) or neither (not found)")
    return Keypoints2D(
        frame_id=t["frame_id"].to_numpy(np.int64),
        detected=detected,
        xy=values[..., :2],
        scores=values[..., 2],
    )
