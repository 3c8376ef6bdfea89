"""Readers and writers of the two data sets' on-disk formats.

The demo generator writes through the same writers, so the readers a user with the real data
runs are the ones the demo pipeline exercises.

The names below are loaded on first use, so that importing one light module of the package
(e.g. a constant for the params check) does not load pandas and scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ACTIVITY_COLUMNS": "drive_act",
    "Pose3DTable": "drive_act",
    "Recording": "drive_act",
    "activity_at": "drive_act",
    "discover_recordings": "drive_act",
    "pose3d_columns": "drive_act",
    "read_activities": "drive_act",
    "read_calibration": "drive_act",
    "read_openpose3d": "drive_act",
    "write_activities": "drive_act",
    "write_calibration": "drive_act",
    "write_openpose3d": "drive_act",
    "SyntheticAnnotation": "synthetic_cabin",
    "SyntheticHuman": "synthetic_cabin",
    "load_synthetic": "synthetic_cabin",
    "read_annotation": "synthetic_cabin",
    "write_annotation": "synthetic_cabin",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
