"""Per-recording results of the slow 2D backends, kept outside DVC's outputs so that a
``detect`` / ``keypoints2d`` stage killed half-way (hours of video inference at paper scale)
resumes with the recordings it had not finished.

DVC deletes a stage's outputs before it runs the stage again, so the interim CSVs themselves
cannot serve. Each finished recording's CSV is also written to ``<cache_dir>/<key>.csv``, where
the key hashes everything that determines it: the stage, the backend and its params, the frame
stride, and the path, size and modification time of every input file (pose CSV, calibration,
video, checkpoints; the bytes of the detections the keypoints are computed in). A changed input is a new key;
a damaged entry is ignored. The folder is git- and DVC-ignored and safe to delete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cabinlift.atomic import atomic_path

_VERSION = 2  # bump when the interim format changes
T = TypeVar("T")


def file_identity(path: Path) -> list[Any]:
    """Path, size and modification time of a file (``None`` when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return [str(path), None]
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


class RecordingCache:
    """Finished per-recording interim files, keyed by their inputs; ``None`` dir disables."""

    def __init__(self, cache_dir: str | Path | None, stage: str, settings: dict[str, Any]) -> None:
        self.dir = Path(cache_dir) if cache_dir else None
        self.base = json.dumps({"v": _VERSION, "stage": stage, "settings": settings},
                               sort_keys=True, default=str)

    def key(self, files: list[Path], contents: tuple[Path, ...] = ()) -> str:
        """Key of one recording: ``files`` by identity, ``contents`` (small files that are
        rewritten with the same bytes, e.g. the detections) by their bytes."""
        ident = [file_identity(p) for p in files]
        ident += [hashlib.sha1(Path(p).read_bytes()).hexdigest() if Path(p).is_file() else None
                  for p in contents]
        return hashlib.sha1((self.base + json.dumps(ident)).encode()).hexdigest()

    def entry(self, key: str) -> Path | None:
        """Where the result of the recording ``key`` is kept (None: the cache is disabled); the
        unit that computes it writes it there (atomically)."""
        return None if self.dir is None else self.dir / f"{key}.csv"

    def restore(self, key: str, out: Path, read: Callable[[Path], T]) -> T | None:
        """Copy the cached file for ``key`` to ``out`` and return what ``read`` makes of it, or
        None when there is no entry or ``read`` rejects it (a damaged entry is recomputed)."""
        entry = self.entry(key)
        if entry is None or not entry.is_file():
            return None
        try:
            value = read(entry)
        except Exception:  # a damaged entry is recomputed, never trusted
            return None
        _copy_atomic(entry, out)
        return value


def _copy_atomic(src: Path, dst: Path) -> None:
    """Copy under a temporary name, then rename: a killed copy leaves no truncated file."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
