"""Writes that are all-or-nothing: a file appears under its name only once it is complete.

A stage killed mid-write (SIGKILL, a full disk) leaves at most a ``*.tmp`` file, which no reader
looks at and ``.gitignore`` hides, never a truncated file under the real name that a later stage
could take for valid. (No fsync: a killed process loses nothing the kernel already holds; a
machine that loses power may need the stage re-run, which DVC does since it never recorded it.)
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from cabinlift.errors import CabinliftError


def temporary_name(path: Path) -> Path:
    """The name a file is written under before it is renamed into place (same folder, so the
    rename is atomic; ends in ``.tmp``; unique per process and thread)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def disk_full(exc: BaseException | None) -> OSError | None:
    """The "no space" / "quota exceeded" OSError behind ``exc``, or None.

    Writers do not always let it through: torch's zip writer, closing the archive after a
    failed write, raises a RuntimeError ("unexpected pos") with the OSError as its context.
    So the whole chain of causes and contexts is searched."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _make_folders(path: Path) -> None:
    """Create the folders above ``path``; a name among them that is a file (``--out
    notes.txt/poses.npz``) is a one-line error naming it, not an OSError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is None:
            raise
        raise CabinliftError(
            f"{path}: cannot be written: {blocker} is a file, not a folder; expected a folder "
            "or a name that does not exist yet (it is then created)"
        ) from None


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename the finished ``tmp`` to ``path``; a folder of that name is a one-line error."""
    try:
        os.replace(tmp, path)
    except IsADirectoryError:
        raise CabinliftError(
            f"{path}: cannot be written: it is a folder; expected a file name (an existing "
            "file is replaced)"
        ) from None


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed
    and ``path`` keeps its previous content (or stays absent). A full disk, a file where a
    folder above ``path`` should be, or a folder named ``path`` is a :class:`CabinliftError`
    naming it (finished work elsewhere is not touched)."""
    path = Path(path)
    tmp = temporary_name(path)
    folders = False  # no temporary file can exist before its folder does
    try:
        _make_folders(path)
        folders = True
        yield tmp
        _move_into_place(tmp, path)
    except Exception as exc:
        full = disk_full(exc)
        if full is None:
            raise
        raise CabinliftError(
            f"{path}: no space left on the device while writing it ({full.strerror}); nothing "
            "was written under this name and finished work (run store, caches, earlier "
            "outputs) is kept: free some space and run the stage again"
        ) from None
    finally:
        if folders:
            tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` (uncompressed), atomically; the bytes depend only on the arrays."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def save_torch(path: str | Path, obj: object) -> None:
    """``torch.save``, atomically. Through a file object: given a path, torch.save names the
    archive's records after the file, and the temporary name would make identical contents
    differ in bytes."""
    import torch  # not at module level: most stages that write files never load torch

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
