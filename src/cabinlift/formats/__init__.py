"""Readers and writers of the two data sets' on-disk formats (design §3).

The demo generator writes through the same writers, so the readers a user with the real data
runs are the ones the demo pipeline exercises.
"""

from cabinlift.formats.drive_act import (
    ACTIVITY_COLUMNS,
    Pose3DTable,
    Recording,
    activity_at,
    discover_recordings,
    pose3d_columns,
    read_activities,
    read_calibration,
    read_openpose3d,
    write_activities,
    write_calibration,
    write_openpose3d,
)
from cabinlift.formats.synthetic_cabin import (
    SYNTHETIC_VIEWS,
    SyntheticAnnotation,
    SyntheticHuman,
    load_synthetic,
    read_annotation,
    write_annotation,
)

__all__ = [
    "ACTIVITY_COLUMNS",
    "Pose3DTable",
    "Recording",
    "activity_at",
    "discover_recordings",
    "pose3d_columns",
    "read_activities",
    "read_calibration",
    "read_openpose3d",
    "write_activities",
    "write_calibration",
    "write_openpose3d",
    "SYNTHETIC_VIEWS",
    "SyntheticAnnotation",
    "SyntheticHuman",
    "load_synthetic",
    "read_annotation",
    "write_annotation",
]
