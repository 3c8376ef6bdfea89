"""The processed-array files every trainer reads (``data/processed/*.npz``), written by normalize.

Kept apart from the normalisation code so that the training stages do not import the raw-data
readers (and pandas) they never use.

:func:`load_arrays` checks a file against what normalize writes before any trainer sees it, so
that a truncated, hand-edited or stale file fails with one line naming the file, the array and
the offending row instead of a traceback from deep inside numpy, or a NaN loss hours later.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from cabinlift.atomic import save_npz
from cabinlift.errors import CabinliftError, first_sentence
from cabinlift.skeleton import COCO13, NUM_JOINTS

#: What to do about a processed file that fails a check.
RERUN = "re-run the normalize stage (dvc repro normalize)"

#: Arrays normalize writes: the shape after the frame axis, the dtype kinds accepted and the
#: dtype normalize writes. x2d, y3d and mask must be present; the others are checked when present.
PER_FRAME: dict[str, tuple[tuple[int, ...], str, str]] = {
    "x2d": ((NUM_JOINTS, 2), "f", "float32"),
    "y3d": ((NUM_JOINTS, 3), "f", "float32"),
    "mask": ((NUM_JOINTS,), "b", "bool"),
    "subject": ((), "iu", "int64"),
    "frame_id": ((), "iu", "int64"),
    "file_id": ((), "US", "str"),
    "activity": ((), "US", "str"),
}
REQUIRED = ("x2d", "y3d", "mask")


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write one split's arrays (atomically: a crash never leaves a half-written file)."""
    save_npz(path, arrays)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read one split written by :func:`save_arrays` and check it with :func:`check_arrays`."""
    path = Path(path)
    if not path.is_file():
        raise CabinliftError(f"{path}: processed array file not found (run the normalize stage)")
    data = _read_npz(path)
    check_arrays(path, data)
    return data


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file; a file that is not one (truncated, corrupt, pickled
    objects) is a one-line error."""
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise CabinliftError(
                f"{path}: expected an .npz archive of arrays, found a single array; {RERUN}"
            )
        with f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = first_sentence(exc)
        raise CabinliftError(
            f"{path}: not a readable .npz archive ({reason}); the file is truncated or corrupt "
            f"(e.g. its writer was killed); {RERUN}"
        ) from None


def check_arrays(path: Path, data: dict[str, np.ndarray]) -> None:
    """Check the arrays of a processed file against what normalize writes.

    Keys and per-frame shapes (one row per frame, the same N for every per-frame array), dtypes
    (float x2d/y3d, bool mask, integer subject/frame_id, string file_id/activity), finite x2d
    and y3d, and at least one valid joint per frame. Vectorised: a million frames take well
    under a second.
    """
    for key in REQUIRED:
        if key not in data:
            raise CabinliftError(
                f"{path}: missing array {key!r} (the file has {', '.join(sorted(data)) or 'none'}); "
                f"{RERUN}"
            )
    for key, (tail, kinds, dtype) in PER_FRAME.items():
        if key not in data:
            continue
        a = data[key]
        if a.ndim == 0 or a.shape[1:] != tail:
            want = "(N" + ("".join(f", {t}" for t in tail) if tail else ",") + ")"
            raise CabinliftError(
                f"{path}: expected array {key!r} of shape {want}, found {a.shape}; {RERUN}"
            )
        if a.dtype.kind not in kinds:
            raise CabinliftError(
                f"{path}: array {key!r} has dtype {a.dtype}, expected {dtype}; {RERUN}"
            )
    n = len(data["x2d"])
    lengths = {k: len(data[k]) for k in PER_FRAME if k in data}
    if len(set(lengths.values())) > 1:
        odd = [k for k, m in lengths.items() if m != n]
        raise CabinliftError(
            f"{path}: per-frame arrays differ in length: x2d has {n} rows but "
            + ", ".join(f"{k} has {lengths[k]}" for k in odd)
            + f" (every per-frame array holds one row per frame); {RERUN}"
        )
    for key in ("x2d", "y3d"):
        _check_finite(path, data, key)
    empty = ~data["mask"].any(axis=1)
    if empty.any():
        row = int(np.argmax(empty))
        raise CabinliftError(
            f"{path}: 'mask' row {row}{_frame(data, row)} has no valid joint "
            f"({int(empty.sum())} such rows of {n}); normalize drops frames without valid joints, "
            f"so the file is not its output; {RERUN}"
        )


def _check_finite(path: Path, data: dict[str, np.ndarray], key: str) -> None:
    a = data[key]
    # Fast path: a float64 sum is finite iff every value is (NaN/inf propagate; float32 values
    # cannot overflow it), and it needs no (N, J, C) temporary.
    if a.dtype.itemsize <= 4 and np.isfinite(np.sum(a, dtype=np.float64)):
        return
    bad = ~np.isfinite(a)
    if not bad.any():
        return
    bad_joint = bad.any(axis=-1)  # (N, J)
    bad_row = bad_joint.any(axis=-1)
    row = int(np.argmax(bad_row))
    joint = int(np.argmax(bad_joint[row]))
    values = "[" + ", ".join(f"{v:.6g}" for v in a[row, joint].tolist()) + "]"
    raise CabinliftError(
        f"{path}: array {key!r} has {int(bad.sum())} non-finite values (NaN/inf) in "
        f"{int(bad_row.sum())} of {len(a)} rows; first at row {row}{_frame(data, row)}, joint "
        f"{joint} ({COCO13[joint]}): {values}; normalize writes finite values only; {RERUN}"
    )


def _frame(data: dict[str, np.ndarray], row: int) -> str:
    """`` (file_id ..., frame ...)`` for a row, from whichever of the two the file has."""
    parts = []
    if "file_id" in data:
        parts.append(f"file_id {data['file_id'][row]}")
    if "frame_id" in data:
        parts.append(f"frame {int(data['frame_id'][row])}")
    return f" ({', '.join(parts)})" if parts else ""
