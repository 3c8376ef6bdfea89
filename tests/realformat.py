"""Small data sets in exactly the Drive&Act and SyntheticCabin layouts, for reader and
end-to-end tests of the real-data path.

The poses come from the embedded demo generator (tiny sizes); on top of what it writes the
builder adds what real copies of the data sets contain and the demo does not: a fully
scrambled column order, rows where all joints are zero (no person found), missing frame ids,
and inner_mirror videos (1280x1024 mp4, the driver's skeleton drawn in grey on a dark NIR-like
background) beside every calibration file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from cliutil import demo_section

from cabinlift.demo.generate import generate
from cabinlift.formats.drive_act import discover_recordings, read_calibration
from cabinlift.skeleton import DRIVE_ACT_JOINTS

# Subjects vp1..vp4, two runs each except vp3 (one run, like Drive&Act's vp9).
REAL_SUBJECTS = 4
SINGLE_RUN = [3]
FPS = 30
SECONDS = 0.4  # 12 frames per run
EARLY_CHUNKS = [(0, 5, "sitting_still"), (5, 10, "fastening_seat_belt")]


def build(root: Path, *, seconds: float = SECONDS, videos: bool = True, humans: int = 4,
          poses_per_human: int = 6, subjects: int = REAL_SUBJECTS,
          human_names: list[str] | None = None) -> tuple[Path, Path]:
    """Write ``root/drive_and_act`` (subjects vp1..vp``subjects``) and ``root/synthetic_cabin``
    (``humans`` virtual humans, named ``human_names`` when given); return both roots."""
    demo = demo_section(**{
        "seed": 7, "real.subjects": subjects, "real.runs_per_subject": 2,
        "real.single_run_subjects": list(SINGLE_RUN), "real.seconds_per_run": 20.0,
        "real.fps": FPS, "synthetic.humans": humans, "synthetic.poses_per_human": poses_per_human,
    })
    generate(root, demo, workers=1, human_names=human_names)
    real = root / "drive_and_act"
    recordings = discover_recordings(real)
    rng = np.random.default_rng(0)
    for k, rec in enumerate(recordings):
        # the demo's shortest run is 20 s; keep the first `seconds`
        n_frames = int(round(seconds * FPS))
        table = pd.read_csv(rec.pose3d_path)
        table = table[table["frame_id"] < n_frames].reset_index(drop=True)
        stamps = rec.timestamps_path.read_text().splitlines()[:n_frames]
        rec.timestamps_path.write_text("\n".join(stamps) + "\n")
        joint_cols = [c for c in table.columns if c not in ("frame_id", "timestamp")]
        if k == 0:
            # a frame where triangulation found nobody: every joint column 0
            table.loc[table["frame_id"] == 5, joint_cols] = 0.0
        if k == 1:
            # frames missing from the CSV, one of them a sampled frame (id 5 at stride 5)
            table = table[~table["frame_id"].isin([4, 5])]
        if k == 2:
            table.loc[0, joint_cols] = 0.0
        # every file gets its own column order, frame_id and timestamp included
        table = table[list(rng.permutation(table.columns))]
        table.to_csv(rec.pose3d_path, index=False, float_format="%.4f")
    # two short chunks at the start of every run (the demo's first chunk starts later), so the
    # sampled frames 0, 5, 10 fall inside, on the boundary between, and after them
    acts = real / "activities_3s" / "inner_mirror" / "midlevel.chunks_90.csv"
    extra = [f"{r.subject},{r.file_id},900,{a},{b},{name},0\n" for r in recordings
             for a, b, name in EARLY_CHUNKS]
    acts.write_text(acts.read_text() + "".join(extra))
    if videos:
        add_videos(real, seconds)
    return real, root / "synthetic_cabin"


def add_videos(real: Path, seconds: float = SECONDS) -> None:
    """Write the inner_mirror mp4 of every recording that has none yet."""
    for rec in discover_recordings(real):
        if not rec.video_path.exists():
            write_video(rec.video_path, read_calibration(rec.calibration_path),
                        pd.read_csv(rec.pose3d_path), n_frames=int(round(seconds * FPS)))


_BONES = [("lShoulder", "rShoulder"), ("lShoulder", "lElbow"), ("lElbow", "lWrist"),
          ("rShoulder", "rElbow"), ("rElbow", "rWrist"), ("lShoulder", "lHip"),
          ("rShoulder", "rHip"), ("lHip", "rHip"), ("nose", "neck"), ("lEye", "rEye")]


def write_video(path: Path, calib, table: pd.DataFrame, n_frames: int) -> None:
    """An mp4 of ``n_frames`` frames at the calibration's size with the skeleton of each CSV
    frame projected (with distortion) and drawn; frames without a CSV row stay empty."""
    import cv2

    size = (calib.width, calib.height)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, size)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    rows = {int(r.frame_id): r for r in table.itertuples(index=False)}
    for f in range(n_frames):
        img = np.full((calib.height, calib.width, 3), 30, np.uint8)
        row = rows.get(f)
        if row is not None:
            pts = {}
            for name in DRIVE_ACT_JOINTS:
                xyz = np.array([getattr(row, f"{name}_{a}") for a in "xyz"], dtype=np.float64)
                if np.any(xyz != 0):
                    pts[name] = calib.project(xyz)
            for a, b in _BONES:
                if a in pts and b in pts and np.isfinite(pts[a]).all() and np.isfinite(pts[b]).all():
                    cv2.line(img, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]),
                             (200, 200, 200), 18)
            if "nose" in pts and np.isfinite(pts["nose"]).all():
                cv2.circle(img, tuple(int(v) for v in pts["nose"]), 60, (170, 170, 170), -1)
        writer.write(img)
    writer.release()
