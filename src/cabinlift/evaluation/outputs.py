"""Writing the evaluation's outputs: all rendered first, then each written atomically, so a
reader (or a failed run) never sees a half-written file and an error leaves them untouched."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cabinlift.atomic import write_atomic


def write_all_atomic(outputs: Mapping[Path, str | bytes]) -> None:
    """Write several rendered outputs; everything is rendered before the first write, so an
    error while computing leaves all previous outputs untouched."""
    for path, data in outputs.items():
        write_atomic(path, data)
