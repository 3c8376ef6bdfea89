"""All-or-nothing writes: a failed or interrupted write leaves the old file (or none) and no
temporary file; a full disk is a clear error."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from cabinlift import atomic
from cabinlift.errors import CabinliftError


def test_success_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic.write_atomic(target, "old\n")
    atomic.write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_error_mid_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.bin"
    atomic.write_atomic(target, b"complete")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"complete"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_full_disk_is_a_clear_error_and_writes_nothing(tmp_path):
    target = tmp_path / "run00.pt"
    with pytest.raises(CabinliftError, match=r"run00\.pt: no space left on the device"), \
            atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_npz_bytes_depend_only_on_the_arrays(tmp_path):
    arrays = {"a": np.arange(4), "b": np.ones((2, 3), np.float32)}
    atomic.save_npz(tmp_path / "x.npz", arrays)
    atomic.save_npz(tmp_path / "y.npz", arrays)
    assert (tmp_path / "x.npz").read_bytes() == (tmp_path / "y.npz").read_bytes()
    with np.load(tmp_path / "x.npz") as f:
        assert np.array_equal(f["b"], arrays["b"])
