"""A real filesystem that runs out of space: a small tmpfs mounted for one test.

Mounting needs root (CI runs as root); elsewhere the tests that need it are skipped with the
reason. The mount is always undone, also when the test fails.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged write could still use on the filesystem holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@contextmanager
def small_tmpfs(path: Path, size_kib: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size_kib`` KiB at ``path`` (created if needed) for the block."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a really full disk) needs root")
    path.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def fill(path: Path, leave: int) -> None:
    """Write a filler file under ``path`` so that about ``leave`` bytes stay free."""
    size = max(free_bytes(path) - leave, 0)
    with open(path / "filler", "wb") as f:
        f.write(b"\0" * size)
