"""Processed-array files: what :func:`cabinlift.arrays.load_arrays` accepts and how it names
what is wrong with a file it refuses."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from cabinlift.arrays import check_arrays, load_arrays, save_arrays
from cabinlift.errors import CabinliftError

RERUN = "re-run the normalize stage (dvc repro normalize)"


def _arrays(n: int = 6) -> dict[str, np.ndarray]:
    """One split as normalize writes it."""
    rng = np.random.default_rng(0)
    mask = rng.random((n, 13)) > 0.2
    mask[:, 5] = True
    y3d = rng.normal(0, 300, size=(n, 13, 3)).astype(np.float32)
    y3d[~mask] = 0.0
    return {
        "x2d": rng.normal(size=(n, 13, 2)).astype(np.float32),
        "y3d": y3d,
        "mask": mask,
        "subject": np.full(n, 3, np.int64),
        "frame_id": np.arange(n, dtype=np.int64) * 15,
        "file_id": np.array(["vp3/run1.ids_1"] * n),
        "activity": np.array(["eating", ""] * (n // 2)),
    }


def _refused(path: Path, **changes: np.ndarray) -> str:
    arrays = {**_arrays(), **changes}
    save_arrays(path, {k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(CabinliftError) as info:
        load_arrays(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_a_valid_file_loads_unchanged(tmp_path):
    arrays = _arrays()
    save_arrays(tmp_path / "real_train.npz", arrays)
    back = load_arrays(tmp_path / "real_train.npz")
    assert sorted(back) == sorted(arrays)
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v)


def test_an_empty_split_loads(tmp_path):
    empty = {k: v[:0] for k, v in _arrays().items()}
    save_arrays(tmp_path / "real_val.npz", empty)
    assert load_arrays(tmp_path / "real_val.npz")["x2d"].shape == (0, 13, 2)


def test_a_truncated_file_is_named_not_a_zipfile_traceback(tmp_path):
    path = tmp_path / "real_train.npz"
    save_arrays(path, _arrays(200))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # what a killed writer leaves behind
    with pytest.raises(CabinliftError) as info:
        load_arrays(path)
    message = str(info.value)
    assert message == (
        f"{path}: not a readable .npz archive (File is not a zip file); the file is truncated or "
        f"corrupt (e.g. its writer was killed); {RERUN}"
    )


@pytest.mark.parametrize("content", [b"", b"not an archive at all", b"PK\x03\x04" + bytes(40)])
def test_other_unreadable_files(tmp_path, content):
    path = tmp_path / "real_test.npz"
    path.write_bytes(content)
    with pytest.raises(CabinliftError, match=rf"^{re.escape(str(path))}: not a readable \.npz archive"):
        load_arrays(path)


def test_nan_in_x2d_names_the_first_row_and_joint_and_counts(tmp_path):
    x2d = _arrays()["x2d"]
    x2d[4, 7, 1] = np.nan
    x2d[2, 3, 0] = np.nan
    x2d[2, 3, 1] = np.nan
    path = tmp_path / "synthetic_train.npz"
    message = _refused(path, x2d=x2d)
    assert message == (
        f"{path}: array 'x2d' has 3 non-finite values (NaN/inf) in 2 of 6 rows; first at row 2 "
        f"(file_id vp3/run1.ids_1, frame 30), joint 3 (l_ear): [nan, nan]; normalize writes finite "
        f"values only; {RERUN}"
    )


def test_inf_in_y3d_is_refused_even_at_a_masked_joint(tmp_path):
    arrays = _arrays()
    y3d, mask = arrays["y3d"], arrays["mask"]
    mask[5, 0] = False
    y3d[5, 0] = [0.0, np.inf, 0.0]
    message = _refused(tmp_path / "real_val.npz", y3d=y3d, mask=mask)
    assert "array 'y3d' has 1 non-finite values (NaN/inf) in 1 of 6 rows; first at row 5" in message
    assert "joint 0 (nose): [0, inf, 0]" in message and message.endswith(RERUN)


def test_per_frame_arrays_of_different_lengths(tmp_path):
    path = tmp_path / "real_train.npz"
    message = _refused(path, subject=np.full(5, 3, np.int64))
    assert message == (
        f"{path}: per-frame arrays differ in length: x2d has 6 rows but subject has 5 (every "
        f"per-frame array holds one row per frame); {RERUN}"
    )
    message = _refused(path, y3d=_arrays(7)["y3d"], mask=_arrays(7)["mask"])
    assert "x2d has 6 rows but y3d has 7, mask has 7" in message


def test_a_frame_without_any_valid_joint(tmp_path):
    arrays = _arrays()
    mask = arrays["mask"]
    mask[3] = False
    mask[4] = False
    path = tmp_path / "real_train.npz"
    message = _refused(path, mask=mask)
    assert message == (
        f"{path}: 'mask' row 3 (file_id vp3/run1.ids_1, frame 45) has no valid joint (2 such rows "
        f"of 6); normalize drops frames without valid joints, so the file is not its output; {RERUN}"
    )


def test_a_mask_that_is_not_boolean(tmp_path):
    path = tmp_path / "real_train.npz"
    message = _refused(path, mask=_arrays()["mask"].astype(np.uint8))
    assert message == f"{path}: array 'mask' has dtype uint8, expected bool; {RERUN}"


@pytest.mark.parametrize("key", ["subject", "frame_id"])
def test_ids_must_be_integers(tmp_path, key):
    message = _refused(tmp_path / "real_train.npz", **{key: np.zeros(6, np.float64)})
    assert f"array {key!r} has dtype float64, expected int64" in message


def test_missing_key_and_wrong_shape(tmp_path):
    path = tmp_path / "real_train.npz"
    message = _refused(path, y3d=None)
    assert message == (
        f"{path}: missing array 'y3d' (the file has activity, file_id, frame_id, mask, subject, x2d); "
        f"{RERUN}"
    )
    message = _refused(path, x2d=np.zeros((6, 17, 2), np.float32))
    assert message == f"{path}: expected array 'x2d' of shape (N, 13, 2), found (6, 17, 2); {RERUN}"
    message = _refused(path, subject=np.zeros((6, 1), np.int64))
    assert "expected array 'subject' of shape (N,), found (6, 1)" in message


def test_a_million_frames_check_quickly(tmp_path):
    n = 1_000_000
    arrays = {"x2d": np.zeros((n, 13, 2), np.float32), "y3d": np.zeros((n, 13, 3), np.float32),
              "mask": np.ones((n, 13), bool), "subject": np.zeros(n, np.int64),
              "frame_id": np.arange(n, dtype=np.int64)}
    start = time.perf_counter()
    check_arrays(tmp_path / "big.npz", arrays)
    assert time.perf_counter() - start < 5.0


def test_a_single_array_file_is_not_a_split(tmp_path):
    path = tmp_path / "real_train.npz"
    with path.open("wb") as f:
        np.save(f, np.zeros((6, 13, 2), np.float32))
    with pytest.raises(CabinliftError, match="found a single array"):
        load_arrays(path)
