"""Drive&Act files: ``openpose_3d`` CSVs, calibration JSONs, the 3 s activity chunks, and the
folder layout that ties them together (docs/real-data.md, "Folder layout").

These are the functions a user with the real data set runs, and the demo writes its "real"
domain through the writers here, so every reader is exercised on every pipeline run. Every
problem with a file raises :class:`~cabinlift.errors.CabinliftError` with one line naming the
file, the line/column or JSON key, and what was expected.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cabinlift.camera import Calibration
from cabinlift.errors import CabinliftError
from cabinlift.jsonfiles import read_json
from cabinlift.skeleton import DRIVE_ACT_JOINTS
from cabinlift.textfiles import decode_line, read_lines

_AXES = ("x", "y", "z", "p")
_INDEX_COLUMNS = ("frame_id", "timestamp")

#: Header of ``activities_3s/inner_mirror/midlevel.chunks_90.csv``, exactly.
ACTIVITY_COLUMNS: tuple[str, ...] = (
    "participant_id", "file_id", "annotation_id", "frame_start", "frame_end", "activity",
    "chunk_id",
)

#: Stream suffix of the inner_mirror NIR camera (the paper's "center_mirror").
STREAM = "ids_1"

#: The folders of a Drive&Act copy the pipeline reads (everything else under the root, e.g.
#: the other cameras' videos, it never opens): 3D poses, the inner_mirror camera's videos and
#: calibrations, and the activity labels.
POSE_FOLDER = "openpose_3d"
CAMERA_FOLDER = "inner_mirror"
ACTIVITIES_FOLDER = "activities_3s"
READ_FOLDERS: tuple[str, ...] = (POSE_FOLDER, CAMERA_FOLDER, ACTIVITIES_FOLDER)
#: The mid-level activity chunks of the inner_mirror view, under the root.
ACTIVITIES_FILE = Path(ACTIVITIES_FOLDER) / CAMERA_FOLDER / "midlevel.chunks_90.csv"


def pose3d_columns() -> list[str]:
    """Column names of an ``openpose_3d`` CSV in the real files' order."""
    cols = list(_INDEX_COLUMNS)
    for joint in DRIVE_ACT_JOINTS:
        cols.extend(f"{joint}_{a}" for a in _AXES)
    return cols


# --------------------------------------------------------------------------------------------
# openpose_3d CSV
# --------------------------------------------------------------------------------------------


@dataclass
class Pose3DTable:
    """One run's 3D poses, in the inner_mirror camera frame (metres; x right, y down, z fwd).

    ``xyz`` and ``p`` are in :data:`~cabinlift.skeleton.DRIVE_ACT_JOINTS` order whatever the
    column order of the file was.
    """

    path: Path
    frame_id: np.ndarray  # (F,) int64
    timestamp: np.ndarray  # (F,) float64
    xyz: np.ndarray  # (F, 26, 3) float64
    p: np.ndarray  # (F, 26) float64

    def __len__(self) -> int:
        return int(self.frame_id.shape[0])

    def joints(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates (F, J, 3) and annotation mask (F, J) of the named BODY_25 joints.

        A joint is unannotated (False) when Drive&Act wrote x = y = z = p = 0 for it, which is how
        the data set marks joints occluded in at least two of its triangulation views.
        """
        idx = []
        for name in names:
            if name not in DRIVE_ACT_JOINTS:
                raise CabinliftError(
                    f"{self.path}: unknown joint {name!r}; expected one of "
                    f"{', '.join(DRIVE_ACT_JOINTS)}"
                )
            idx.append(DRIVE_ACT_JOINTS.index(name))
        xyz = self.xyz[:, idx, :]
        p = self.p[:, idx]
        valid = ~((xyz == 0).all(axis=-1) & (p == 0))
        return xyz, valid


def _check_header(path: Path, header: list[str]) -> None:
    seen: set[str] = set()
    expected = set(pose3d_columns())
    for col in header:
        if col in seen:
            raise CabinliftError(f"{path}: duplicate column {col!r} in the header")
        seen.add(col)
        if col in expected:
            continue
        m = re.fullmatch(r"(.+)_([xyzp])", col)
        if m is None:
            raise CabinliftError(
                f"{path}: unexpected column {col!r} in the header; expected 'frame_id', "
                f"'timestamp' and '<joint>_x|y|z|p' columns"
            )
        raise CabinliftError(
            f"{path}: unknown joint {m.group(1)!r} in column {col!r}; expected one of "
            f"{', '.join(DRIVE_ACT_JOINTS)}"
        )
    for col in pose3d_columns():
        if col not in seen:
            raise CabinliftError(f"{path}: missing column {col!r} in the header")


_POSE_ROWS = "comma-separated numbers of a Drive&Act openpose_3d CSV"
_POSE_HEADER = "the header 'frame_id,timestamp,...'"


def _locate_bad_value(path: Path, header: list[str]) -> CabinliftError:
    """Slow path, only after the fast parser failed: find the first cell that is not a number."""
    lines = read_lines(path, _POSE_ROWS, _POSE_HEADER)
    n = len(header)
    data = [(i + 2, line) for i, line in enumerate(lines[1:]) if line.strip() != ""]
    for k, (lineno, line) in enumerate(data):
        fields = line.split(",")
        if len(fields) < n:
            if k == len(data) - 1:
                return CabinliftError(
                    f"{path}: truncated file: the last row (line {lineno}) has {len(fields)} of "
                    f"{n} fields"
                )
            return CabinliftError(
                f"{path}: line {lineno} has {len(fields)} fields, expected {n}"
            )
        if len(fields) > n:
            return CabinliftError(f"{path}: line {lineno} has {len(fields)} fields, expected {n}")
        for col, value in zip(header, fields, strict=True):
            v = value.strip()
            try:
                x = float(v)
            except ValueError:
                what = "an empty value" if v == "" else repr(v)
                return CabinliftError(
                    f"{path}: line {lineno}, column {col!r}: expected a number, got {what}"
                )
            if math.isnan(x):
                return CabinliftError(
                    f"{path}: line {lineno}, column {col!r}: expected a number, got {v!r}"
                )
    return CabinliftError(f"{path}: could not be parsed as a Drive&Act openpose_3d CSV")


def read_openpose3d(path: str | Path) -> Pose3DTable:
    """Read one ``<run>.ids_1.openpose.3d.csv``, parsing columns by name (never by position)."""
    path = Path(path)
    if not path.is_file():
        raise CabinliftError(f"{path}: file not found (expected a Drive&Act openpose_3d CSV)")
    with path.open("rb") as fh:
        first = decode_line(path, fh.readline(), 1, _POSE_HEADER)
        second = decode_line(path, fh.readline(), 2, _POSE_ROWS)
    if first.strip() == "":
        raise CabinliftError(f"{path}: empty file (expected a header 'frame_id,timestamp,...')")
    header = [c.strip() for c in first.split(",")]
    _check_header(path, header)
    if second.strip() == "":
        raise CabinliftError(f"{path}: no data rows after the header")
    try:
        df = pd.read_csv(
            path, dtype=np.float64, engine="c", skipinitialspace=True, encoding="utf-8-sig",
            skip_blank_lines=True,
        )
    except (ValueError, pd.errors.ParserError):
        raise _locate_bad_value(path, header) from None
    values = df.to_numpy(dtype=np.float64, copy=False)
    if np.isnan(values).any():
        raise _locate_bad_value(path, header)
    col = {c: i for i, c in enumerate(df.columns)}
    fid = values[:, col["frame_id"]]
    if not np.all(fid == np.round(fid)):
        bad = int(np.flatnonzero(fid != np.round(fid))[0])
        raise CabinliftError(
            f"{path}: line {bad + 2}, column 'frame_id': expected an integer, got {fid[bad]!r}"
        )
    frame_id = fid.astype(np.int64)
    steps = np.diff(frame_id)
    if (steps <= 0).any():
        bad = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise CabinliftError(
            f"{path}: line {bad + 2}: frame_id {frame_id[bad]} does not increase "
            f"(previous {frame_id[bad - 1]}); expected strictly increasing frame ids"
        )
    n = len(frame_id)
    xyz = np.empty((n, len(DRIVE_ACT_JOINTS), 3), dtype=np.float64)
    p = np.empty((n, len(DRIVE_ACT_JOINTS)), dtype=np.float64)
    for j, joint in enumerate(DRIVE_ACT_JOINTS):
        for a in range(3):
            xyz[:, j, a] = values[:, col[f"{joint}_{_AXES[a]}"]]
        p[:, j] = values[:, col[f"{joint}_p"]]
    return Pose3DTable(
        path=path, frame_id=frame_id, timestamp=values[:, col["timestamp"]].copy(), xyz=xyz, p=p
    )


def write_openpose3d(
    path: str | Path,
    frame_id: np.ndarray,
    timestamp: np.ndarray,
    xyz: np.ndarray,
    p: np.ndarray,
) -> None:
    """Write poses (F, 26, 3) + confidences (F, 26) in DRIVE_ACT_JOINTS order as a Drive&Act CSV.

    Coordinates and confidences get 4 decimals (0.1 mm, far below the annotation noise); an
    unannotated joint (all zeros) is written as ``0,0,0,0`` to keep files small.
    """
    path = Path(path)
    frame_id = np.asarray(frame_id)
    timestamp = np.asarray(timestamp, dtype=np.float64)
    xyz = np.asarray(xyz, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    n = frame_id.shape[0]
    nj = len(DRIVE_ACT_JOINTS)
    if frame_id.shape != (n,) or timestamp.shape != (n,) or xyz.shape != (n, nj, 3) or (
        p.shape != (n, nj)
    ):
        raise ValueError(
            f"write_openpose3d: expected frame_id ({n},), timestamp ({n},), xyz ({n},{nj},3), "
            f"p ({n},{nj}); got {frame_id.shape}, {timestamp.shape}, {xyz.shape}, {p.shape}"
        )
    block = np.concatenate([xyz, p[..., None]], axis=-1).reshape(n, nj * 4)
    block = np.round(block, 4) + 0.0  # +0.0 turns -0.0 into 0.0
    fmt = "%d,%.6f" + ",%.4f" * (nj * 4) + "\n"
    rows = [
        fmt % (f, t, *b)
        for f, t, b in zip(frame_id.tolist(), timestamp.tolist(), block.tolist(), strict=True)
    ]
    text = "".join(rows)
    # Every joint field has exactly four decimals, so ",0.0000" followed by a separator is a whole
    # zero field; the timestamp's six decimals can never match.
    text = text.replace(",0.0000,", ",0,").replace(",0.0000,", ",0,").replace(",0.0000\n", ",0\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(pose3d_columns()) + "\n")
        fh.write(text)


# --------------------------------------------------------------------------------------------
# calibration JSON
# --------------------------------------------------------------------------------------------

_CALIB_KEYS: tuple[tuple[str, str], ...] = (
    ("fx", "intrinsics.focallength.fx"),
    ("fy", "intrinsics.focallength.fy"),
    ("cx", "intrinsics.principal_point.cx"),
    ("cy", "intrinsics.principal_point.cy"),
    ("k1", "intrinsics.distortion.k1"),
    ("k2", "intrinsics.distortion.k2"),
    ("k3", "intrinsics.distortion.k3"),
    ("p1", "intrinsics.distortion.p1"),
    ("p2", "intrinsics.distortion.p2"),
    ("width", "intrinsics.img_size.width"),
    ("height", "intrinsics.img_size.height"),
    ("qw", "extrinsics.rotation.w"),
    ("qx", "extrinsics.rotation.x"),
    ("qy", "extrinsics.rotation.y"),
    ("qz", "extrinsics.rotation.z"),
    ("tx", "extrinsics.translation.x"),
    ("ty", "extrinsics.translation.y"),
    ("tz", "extrinsics.translation.z"),
)


def _get_number(path: Path, doc: object, dotted: str) -> float:
    node = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise CabinliftError(f"{path}: missing key '{dotted}' (expected a number)")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float) or not math.isfinite(node):
        raise CabinliftError(f"{path}: key '{dotted}' must be a finite number, got {node!r}")
    return float(node)


def read_calibration(path: str | Path) -> Calibration:
    """Read a Drive&Act ``<run>.ids_1.calibration.json`` into a :class:`Calibration`."""
    path = Path(path)
    doc = read_json(path)
    v = {name: _get_number(path, doc, key) for name, key in _CALIB_KEYS}
    for name, key in (("width", "intrinsics.img_size.width"),
                      ("height", "intrinsics.img_size.height")):
        if v[name] != int(v[name]) or v[name] <= 0:
            raise CabinliftError(f"{path}: key '{key}' must be a positive integer, got {v[name]}")
    for name, key in (("fx", "intrinsics.focallength.fx"), ("fy", "intrinsics.focallength.fy")):
        if v[name] <= 0:
            raise CabinliftError(f"{path}: key '{key}' must be positive, got {v[name]}")
    if v["qw"] == v["qx"] == v["qy"] == v["qz"] == 0:
        raise CabinliftError(f"{path}: key 'extrinsics.rotation' is a zero quaternion")
    return Calibration(
        fx=v["fx"], fy=v["fy"], cx=v["cx"], cy=v["cy"],
        width=int(v["width"]), height=int(v["height"]),
        k1=v["k1"], k2=v["k2"], k3=v["k3"], p1=v["p1"], p2=v["p2"],
        rotation=(v["qw"], v["qx"], v["qy"], v["qz"]),
        translation=(v["tx"], v["ty"], v["tz"]),
    )


def write_calibration(path: str | Path, calib: Calibration) -> None:
    """Write a :class:`Calibration` with the Drive&Act JSON keys."""
    path = Path(path)
    doc = {
        "intrinsics": {
            "focallength": {"fx": calib.fx, "fy": calib.fy},
            "principal_point": {"cx": calib.cx, "cy": calib.cy},
            "distortion": {
                "k1": calib.k1, "k2": calib.k2, "k3": calib.k3, "p1": calib.p1, "p2": calib.p2,
            },
            "img_size": {"width": int(calib.width), "height": int(calib.height)},
        },
        "extrinsics": {
            "rotation": dict(zip("wxyz", map(float, calib.rotation), strict=True)),
            "translation": dict(zip("xyz", map(float, calib.translation), strict=True)),
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# timestamps
# --------------------------------------------------------------------------------------------


def read_timestamps(path: str | Path) -> np.ndarray:
    """Read ``<run>.ids_1.timestamps``: one capture time (seconds) per video frame, in order.

    Its length is the number of frames of the video beside it, which the ``mmpose`` backend
    checks against the sampled frame ids before decoding anything.
    """
    path = Path(path)
    if not path.is_file():
        raise CabinliftError(f"{path}: file not found (expected one timestamp per video frame)")
    values = []
    for n, line in enumerate(read_lines(path, "one number (seconds) per line"), start=1):
        if not line.strip():
            continue
        try:
            v = float(line)
        except ValueError:
            v = math.nan
        if not math.isfinite(v):
            raise CabinliftError(f"{path}: line {n}: expected a number (seconds), got {line!r}")
        values.append(v)
    stamps = np.asarray(values, dtype=np.float64)
    if len(stamps) > 1 and np.any(np.diff(stamps) <= 0):
        n = int(np.flatnonzero(np.diff(stamps) <= 0)[0]) + 2
        raise CabinliftError(f"{path}: line {n}: timestamps must increase")
    return stamps


# --------------------------------------------------------------------------------------------
# activities (3 s chunks)
# --------------------------------------------------------------------------------------------

_INT_ACTIVITY_COLUMNS = ("participant_id", "annotation_id", "frame_start", "frame_end", "chunk_id")


def read_activities(path: str | Path) -> pd.DataFrame:
    """Read ``midlevel.chunks_90.csv`` into a DataFrame with the file's seven columns.

    ``frame_start``/``frame_end`` are read as a half-open range ``[frame_start, frame_end)``
    (the documented example chunk ``0,90`` spans 90 frames = 3 s at 30 fps).
    """
    path = Path(path)
    if not path.is_file():
        raise CabinliftError(f"{path}: file not found (expected a Drive&Act activities CSV)")
    expected = ",".join(ACTIVITY_COLUMNS)
    lines = read_lines(path, "the rows of a Drive&Act activities CSV", f"the header '{expected}'")
    if lines and lines[-1] == "":
        lines.pop()  # the end of the last line
    rows = list(csv.reader(lines))
    if not rows:
        raise CabinliftError(f"{path}: empty file; expected the header '{expected}'")
    header = [c.strip() for c in rows[0]]
    if tuple(header) != ACTIVITY_COLUMNS:
        raise CabinliftError(
            f"{path}: header is '{','.join(header)}'; expected exactly '{expected}'"
        )
    out: dict[str, list] = {c: [] for c in ACTIVITY_COLUMNS}
    for i, row in enumerate(rows[1:]):
        lineno = i + 2
        if not row or all(f.strip() == "" for f in row):
            continue
        if len(row) != len(ACTIVITY_COLUMNS):
            raise CabinliftError(
                f"{path}: line {lineno} has {len(row)} fields, expected {len(ACTIVITY_COLUMNS)}"
            )
        for col, value in zip(ACTIVITY_COLUMNS, row, strict=True):
            v = value.strip()
            if col in _INT_ACTIVITY_COLUMNS:
                try:
                    out[col].append(int(v))
                except ValueError:
                    raise CabinliftError(
                        f"{path}: line {lineno}, column {col!r}: expected an integer, got {v!r}"
                    ) from None
            else:
                if v == "":
                    raise CabinliftError(
                        f"{path}: line {lineno}, column {col!r}: expected a non-empty value"
                    )
                out[col].append(v)
        if out["frame_end"][-1] <= out["frame_start"][-1]:
            raise CabinliftError(
                f"{path}: line {lineno}: frame_end {out['frame_end'][-1]} must be greater than "
                f"frame_start {out['frame_start'][-1]}"
            )
    df = pd.DataFrame(out, columns=list(ACTIVITY_COLUMNS))
    for col in _INT_ACTIVITY_COLUMNS:
        df[col] = df[col].astype(np.int64)
    return df


def write_activities(
    path: str | Path, rows: pd.DataFrame | Iterable[Mapping[str, object] | Sequence[object]]
) -> None:
    """Write activity chunks (a DataFrame, dicts keyed by column, or 7-tuples in column order)."""
    path = Path(path)
    if isinstance(rows, pd.DataFrame):
        missing = [c for c in ACTIVITY_COLUMNS if c not in rows.columns]
        if missing:
            raise ValueError(f"write_activities: missing columns {missing}")
        records = rows[list(ACTIVITY_COLUMNS)].itertuples(index=False, name=None)
    else:
        records = (
            tuple(r[c] for c in ACTIVITY_COLUMNS) if isinstance(r, Mapping) else tuple(r)
            for r in rows
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(ACTIVITY_COLUMNS)
        for rec in records:
            if len(rec) != len(ACTIVITY_COLUMNS):
                raise ValueError(f"write_activities: expected 7 fields, got {rec!r}")
            w.writerow(
                [int(v) if c in _INT_ACTIVITY_COLUMNS else v
                 for c, v in zip(ACTIVITY_COLUMNS, rec, strict=True)]
            )


def activity_at(chunks: pd.DataFrame, file_id: str, frame_ids: np.ndarray) -> np.ndarray:
    """Activity label of each frame of one run (``''`` where no chunk covers the frame).

    Chunks are half-open ``[frame_start, frame_end)``; where chunks overlap, the one that
    starts last wins.
    """
    frame_ids = np.asarray(frame_ids, dtype=np.int64)
    sub = chunks[chunks["file_id"] == file_id]
    labels = np.full(frame_ids.shape, "", dtype=object)
    if len(sub) and frame_ids.size:
        order = np.argsort(sub["frame_start"].to_numpy(), kind="stable")
        starts = sub["frame_start"].to_numpy()[order]
        ends = sub["frame_end"].to_numpy()[order]
        acts = sub["activity"].to_numpy(dtype=object)[order]
        k = np.searchsorted(starts, frame_ids, side="right") - 1
        ok = k >= 0
        ok[ok] = frame_ids[ok] < ends[k[ok]]
        labels[ok] = acts[k[ok]]
    return labels.astype(str)


# --------------------------------------------------------------------------------------------
# folder layout
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    """One inner_mirror run with 3D pose: where its files are and how the activity CSV names it."""

    subject: int
    run: str
    file_id: str
    pose3d_path: Path
    calibration_path: Path

    @property
    def timestamps_path(self) -> Path:
        """``inner_mirror/vpN/<run>.ids_1.timestamps`` beside the calibration file."""
        return self.calibration_path.with_name(f"{self.run}.{STREAM}.timestamps")

    @property
    def video_path(self) -> Path:
        """``inner_mirror/vpN/<run>.ids_1.mp4`` (absent in the embedded demo)."""
        return self.calibration_path.with_name(f"{self.run}.{STREAM}.mp4")


def find_recordings(root: str | Path) -> tuple[list[Recording], list[str]]:
    """Every run under a Drive&Act root that has a 3D pose CSV and its calibration, sorted by
    subject then run, and one line per file that does not fit the layout (naming it), so that
    ``cabinlift data check`` lists them all; the root's ``openpose_3d/`` must exist."""
    root = Path(root)
    pose_root = root / POSE_FOLDER
    if not pose_root.is_dir():
        raise CabinliftError(
            f"{pose_root}: folder not found; expected a Drive&Act root containing "
            f"{POSE_FOLDER}/vpN/<run>.{STREAM}.openpose.3d.csv"
        )
    suffix = f".{STREAM}.openpose.3d.csv"
    recs: list[Recording] = []
    problems: list[str] = []
    for csv_path in sorted(pose_root.glob(f"*/*{suffix}")):
        m = re.fullmatch(r"vp(\d+)", csv_path.parent.name)
        if m is None:
            problems.append(
                f"{csv_path}: its folder {csv_path.parent.name!r} is not a subject folder 'vpN'")
            continue
        subject = int(m.group(1))
        run = csv_path.name[: -len(suffix)]
        calib = root / CAMERA_FOLDER / csv_path.parent.name / f"{run}.{STREAM}.calibration.json"
        if not calib.is_file():
            problems.append(
                f"{calib}: calibration file not found (expected beside the {CAMERA_FOLDER} video "
                f"of run {csv_path.parent.name}/{run})")
            continue
        recs.append(
            Recording(
                subject=subject, run=run, file_id=f"{csv_path.parent.name}/{run}.{STREAM}",
                pose3d_path=csv_path, calibration_path=calib,
            )
        )
    recs.sort(key=lambda r: (r.subject, r.run))
    return recs, problems


def discover_recordings(root: str | Path) -> list[Recording]:
    """All runs under a Drive&Act root that have a 3D pose CSV, sorted by subject then run; the
    first file that does not fit the layout (:func:`find_recordings`) is an error."""
    recs, problems = find_recordings(root)
    if problems:
        raise CabinliftError(problems[0])
    if not recs:
        raise CabinliftError(
            f"{Path(root) / POSE_FOLDER}: no vpN/<run>.{STREAM}.openpose.3d.csv files found")
    return recs
