"""All-or-nothing writes: a failed or interrupted write leaves the old file (or none) and no
temporary file; a full disk is a clear error."""

from __future__ import annotations

import copy
import errno
from pathlib import Path

import numpy as np
import pytest
import torch
from cliutil import one_line_error, write_params
from fullfs import fill, small_tmpfs
from tinydata import write_processed

from cabinlift import atomic, config
from cabinlift.errors import CabinliftError

PARAMS = config.read_yaml(Path(__file__).resolve().parents[1] / "params.yaml")


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


WRITERS = {
    "torch": lambda p: atomic.save_torch(p, {"w": torch.zeros(3)}),
    "npz": lambda p: atomic.save_npz(p, {"w": np.zeros(3)}),
    "bytes": lambda p: atomic.write_atomic(p, b"xyz"),
}


@pytest.mark.parametrize("write", WRITERS.values(), ids=WRITERS.keys())
@pytest.mark.parametrize("below", ["notes.txt", "notes.txt/a/b"])
def test_a_file_where_a_folder_should_be_is_named(tmp_path, write, below):
    """``--out notes.txt/lifted.npz``: the one-line error names the file in the way, which
    keeps its content; no folder or temporary file is left."""
    (tmp_path / "notes.txt").write_text("mine\n")
    target = tmp_path / below / "out.bin"
    with pytest.raises(CabinliftError) as info:
        write(target)
    assert str(info.value) == (
        f"{target}: cannot be written: {tmp_path / 'notes.txt'} is a file, not a folder; "
        "expected a folder or a name that does not exist yet (it is then created)")
    assert (tmp_path / "notes.txt").read_text() == "mine\n"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("write", WRITERS.values(), ids=WRITERS.keys())
def test_a_folder_under_the_name_is_named_and_kept(tmp_path, write):
    target = tmp_path / "out.bin"
    (target / "inside").mkdir(parents=True)
    with pytest.raises(CabinliftError) as info:
        write(target)
    assert str(info.value) == (
        f"{target}: cannot be written: it is a folder; expected a file name (an existing file "
        "is replaced)")
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    assert [p.name for p in target.iterdir()] == ["inside"]


# -- a really full filesystem (a small tmpfs) -----------------------------------------------------

DISK_FULL = "no space left on the device while writing it (No space left on device)"


@pytest.fixture
def full(tmp_path) -> Path:
    """A tmpfs with 16 KiB left free: a write starts, then fails part-way (nothing left free at
    all fails at the first write, which is the easy case)."""
    with small_tmpfs(tmp_path / "full", 512) as root:
        fill(root, 16 * 1024)
        yield root


@pytest.mark.parametrize("write", [
    lambda p: atomic.save_torch(p, {"w": torch.zeros(100_000)}),
    lambda p: atomic.save_npz(p, {"w": np.zeros(100_000)}),
    lambda p: atomic.write_atomic(p, b"x" * 100_000),
], ids=["torch", "npz", "bytes"])
def test_a_really_full_disk_is_the_one_line_error_and_leaves_nothing(full, write):
    target = full / "out.bin"
    with pytest.raises(CabinliftError) as info:
        write(target)
    assert str(info.value).startswith(f"{target}: {DISK_FULL}; nothing was written")
    assert sorted(p.name for p in full.iterdir()) == ["filler"]  # no partial or temporary file


def test_pretrain_into_a_full_output_folder(tmp_path, capsys):
    """The real command: ``cabinlift pretrain`` writing its checkpoint onto a full tmpfs."""
    p = copy.deepcopy(PARAMS)
    # wide enough that a tensor outgrows the file buffer: torch's zip writer then fails as it
    # does on a real checkpoint (a RuntimeError about the archive's position, after the OSError)
    p["lifters"]["simplebl"].update(linear_size=128, num_stage=1, dropout=0.5)
    p["train"].update(max_epochs=1, val_every=1, device="cpu", workers=1)
    p["store"]["dir"] = None
    processed = write_processed(tmp_path / "processed", p)
    params = write_params(tmp_path / "params.yaml", p)
    with small_tmpfs(tmp_path / "models", 1024) as models:
        fill(models, 48 * 1024)  # the checkpoint takes about 180 kB
        ckpt = models / "simplebl" / "seed0.pt"
        err = one_line_error(capsys, [
            "--timings", str(tmp_path / "logs"), "--params", str(params), "pretrain",
            "--model", "simplebl", "--processed", str(processed), "--out", str(models),
            "--summary", str(tmp_path / "summary")])
        assert err.startswith(f"cabinlift pretrain: error: {ckpt}: {DISK_FULL}; nothing was ")
        assert sorted(p.name for p in models.iterdir()) in (["filler"], ["filler", "simplebl"])
        assert not list(models.glob("simplebl/*"))  # no file, no temporary one
