"""What a Drive&Act root and a SyntheticCabin root hold, read as the pipeline reads them.

``cabinlift data check`` runs this before a run that takes hours: it parses every file the
pipeline will parse, but does not stop at the first bad one, so a copy's every problem is one
line naming its file. It counts what the pipeline will use (subjects, recordings and sampled
frames per split, annotated joints, virtual humans, views and poses), which
:mod:`cabinlift.estimate` turns into disk and time. :func:`layout_problems` is the part that
opens no file (missing folders, a full Drive&Act copy under ``data.real.root``): the ``check``
stage runs it on every ``dvc repro`` with the real data sets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from cabinlift.config import SPLITS, Params
from cabinlift.errors import CabinliftError
from cabinlift.formats.drive_act import (
    ACTIVITIES_FILE,
    CAMERA_FOLDER,
    POSE_FOLDER,
    READ_FOLDERS,
    STREAM,
    find_recordings,
    read_activities,
    read_openpose3d,
)
from cabinlift.formats.synthetic_cabin import GT_FOLDER, SyntheticScan, scan_synthetic
from cabinlift.skeleton import COCO17_TO_BODY25, NUM_JOINTS
from cabinlift.splits import describe, missing_members

#: Bad annotation files listed one per line; the rest are counted.
SHOWN_FILE_ERRORS = 10
_DRIVE_ACT = f"a Drive&Act root holding {', '.join(f'{f}/' for f in READ_FOLDERS)}"
_SUBJECT = re.compile(r"vp(\d+)")


@dataclass(frozen=True)
class SubjectData:
    """One subject's recordings: 3D pose rows, the rows the pipeline samples (every
    ``data.real.frame_stride``-th frame id, with a person), and their annotated upper-body
    joints."""

    recordings: int
    frames: int
    sampled: int
    annotated_joints: int


@dataclass(frozen=True)
class RealData:
    """What a Drive&Act root holds for the pipeline."""

    root: Path
    subjects: dict[int, SubjectData]
    videos: int
    activity_chunks: int | None

    @property
    def recordings(self) -> int:
        return sum(s.recordings for s in self.subjects.values())

    def present(self, subjects: list[int]) -> list[int]:
        """Those of ``subjects`` the root holds, in their order."""
        return [s for s in subjects if s in self.subjects]

    def sampled(self, subjects: list[int] | None = None) -> int:
        """Sampled frames of ``subjects`` (default: all)."""
        keys = self.subjects if subjects is None else subjects
        return sum(self.subjects[s].sampled for s in keys if s in self.subjects)

    @property
    def annotated_share(self) -> float:
        """Annotated share of the upper-body joints of the sampled frames."""
        sampled = self.sampled()
        joints = sum(s.annotated_joints for s in self.subjects.values())
        return joints / (sampled * NUM_JOINTS) if sampled else 0.0


@dataclass
class DataCheck:
    """Both roots' contents and every problem found (one line each)."""

    real: RealData | None = None
    synthetic: SyntheticScan | None = None
    problems: list[str] = field(default_factory=list)


def _tree_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def full_copy_problem(root: Path) -> str | None:
    """The line refusing a Drive&Act root that holds folders the pipeline never reads (the
    other cameras' videos of a full copy): DVC hashes everything under ``data.real.root``."""
    if not root.is_dir():
        return None
    extra = sorted(p for p in root.iterdir() if p.is_dir() and p.name not in READ_FOLDERS)
    if not extra:
        return None
    gb = sum(_tree_bytes(p) for p in extra) / 1e9
    names = ", ".join(f"{p.name}/" for p in extra[:4]) + (", ..." if len(extra) > 4 else "")
    sources = " ".join(str(root / f) for f in READ_FOLDERS)
    what = "a folder" if len(extra) == 1 else f"{len(extra)} folders"
    return (f"{root}: holds {what} the pipeline never reads ({names}; {gb:.1f} GB),"
            f" which DVC would hash as part of data.real.root: point it at a folder holding only "
            f"{', '.join(f'{f}/' for f in READ_FOLDERS)}, e.g. mkdir NEW; cp -rs {sources} "
            f"NEW/ (links to files: DVC reads them; a linked folder it does not)")


def layout_problems(real_root: Path | None, synthetic_root: Path | None) -> list[str]:
    """What can be seen of the roots without opening a file: missing or empty folders, the
    folders the pipeline reads, a full Drive&Act copy. ``None`` skips a root."""
    found: list[str] = []
    if real_root is not None:
        if not real_root.is_dir():
            found.append(f"{real_root}: not a folder (expected {_DRIVE_ACT})")
        elif not any(real_root.iterdir()):
            found.append(f"{real_root}: empty folder (expected {_DRIVE_ACT})")
        else:
            if not (real_root / POSE_FOLDER).is_dir():
                found.append(f"{real_root / POSE_FOLDER}: folder not found (expected {_DRIVE_ACT})")
            full = full_copy_problem(real_root)
            if full:
                found.append(full)
    if synthetic_root is not None:
        gt = synthetic_root / GT_FOLDER
        if not synthetic_root.is_dir():
            found.append(f"{synthetic_root}: not a folder (expected a SyntheticCabin root "
                         f"holding {GT_FOLDER}/*.json)")
        elif not gt.is_dir():
            found.append(f"{gt}: folder not found (expected SyntheticCabin's {GT_FOLDER}/*.json)")
        elif next(gt.glob("*.json"), None) is None:
            found.append(f"{gt}: no *.json annotation files found")
    return found


def _subjects_without_poses(root: Path) -> Iterator[str]:
    """One line per subject folder of the camera with no 3D pose file."""
    cam = root / CAMERA_FOLDER
    for folder in sorted(cam.glob("vp*")) if cam.is_dir() else []:
        m = _SUBJECT.fullmatch(folder.name)
        poses = root / POSE_FOLDER / folder.name
        if m and folder.is_dir() and not any(poses.glob(f"*.{STREAM}.openpose.3d.csv")):
            yield (f"{root / POSE_FOLDER / folder.name}: no <run>.{STREAM}.openpose.3d.csv, so "
                   f"subject {m.group(1)} ({CAMERA_FOLDER}/{folder.name}) has no 3D annotations")


def inspect_real(root: Path, stride: int, needs_videos: bool, progress: bool = True
                 ) -> tuple[RealData | None, list[str]]:
    """Read every recording of a Drive&Act root as the pipeline does (every file, one line per
    problem); ``needs_videos``: the 2D backend decodes the videos (``mmpose``)."""
    found = layout_problems(root, None)
    if not (root / POSE_FOLDER).is_dir():
        return None, found
    recs, bad = find_recordings(root)
    found += bad
    if not recs and not bad:
        found.append(f"{root / POSE_FOLDER}: no vpN/<run>.{STREAM}.openpose.3d.csv files found")
    found += _subjects_without_poses(root)
    per: dict[int, list[int]] = {}
    videos = 0
    for rec in tqdm(recs, desc="Drive&Act 3D poses", unit="run", disable=None if progress else True):
        try:
            table = read_openpose3d(rec.pose3d_path)
        except CabinliftError as exc:
            found.append(str(exc))
            continue
        _, valid = table.joints(COCO17_TO_BODY25[:NUM_JOINTS])
        person = valid.any(axis=1)
        if not person.any():
            found.append(f"{rec.pose3d_path}: no frame has an annotated joint")
        sampled = person & (table.frame_id % stride == 0)
        counts = per.setdefault(rec.subject, [0, 0, 0, 0])
        for i, n in enumerate((1, len(table.frame_id), int(sampled.sum()),
                               int(valid[sampled].sum()))):
            counts[i] += n
        if rec.video_path.is_file():
            videos += 1
        elif needs_videos:
            found.append(f"{rec.video_path}: video not found (the mmpose backend decodes it)")
    chunks = None
    acts = root / ACTIVITIES_FILE
    if acts.is_file():
        try:
            chunks = len(read_activities(acts))
        except CabinliftError as exc:
            found.append(str(exc))
    subjects = {s: SubjectData(*c) for s, c in sorted(per.items())}
    return RealData(root, subjects, videos, chunks), found


def inspect_synthetic(root: Path, views: list[str], workers: int, progress: bool = True
                      ) -> tuple[SyntheticScan | None, list[str]]:
    """Parse every annotation file of a SyntheticCabin root (one line per bad file, the first
    :data:`SHOWN_FILE_ERRORS` of them) and check that ``views`` are in it."""
    found = layout_problems(None, root)
    if found:
        return None, found
    scan = scan_synthetic(root, workers=workers, progress=progress)
    found += scan.errors[:SHOWN_FILE_ERRORS]
    if len(scan.errors) > SHOWN_FILE_ERRORS:
        found.append(f"{root / GT_FOLDER}: {len(scan.errors) - SHOWN_FILE_ERRORS} more files do "
                     f"not parse (of {scan.files})")
    have = scan.views
    found += [f"{root / GT_FOLDER}: view {v!r} (key 'data.synthetic.views') is not in the data; "
              f"its views: {', '.join(have) or 'none'}" for v in views if v not in have]
    return scan, found


def check_data(params: Params, real_root: Path | None = None, synthetic_root: Path | None = None,
               progress: bool = True) -> DataCheck:
    """Inspect both roots (default: params.yaml's) and check ``normalize``'s splits against
    what they hold."""
    real_root = Path(params.data.real.root if real_root is None else real_root)
    synthetic_root = Path(params.data.synthetic.root if synthetic_root is None else synthetic_root)
    needs_videos = "mmpose" in (params.detect.backend, params.keypoints2d.backend)
    result = DataCheck()
    result.real, found = inspect_real(real_root, params.data.real.frame_stride, needs_videos,
                                      progress)
    result.problems += found
    result.synthetic, found = inspect_synthetic(synthetic_root, list(params.data.synthetic.views),
                                                params.data.synthetic.workers, progress)
    result.problems += found
    if result.real is not None and result.real.subjects:
        result.problems += missing_members(
            "normalize.real_splits", params.normalize.real_splits, set(result.real.subjects),
            "subject", str(real_root))
    if result.synthetic is not None and result.synthetic.poses:
        result.problems += missing_members(
            "normalize.synthetic_splits", params.normalize.synthetic_splits,
            set(result.synthetic.humans), "human", str(synthetic_root))
    return result


def split_table(params: Params, check: DataCheck) -> list[str]:
    """A line per split of each data set: its members and what the pipeline samples of them."""
    lines: list[str] = []
    real, syn = check.real, check.synthetic
    if real is not None:
        splits = params.normalize.real_splits
        used: set[int] = set()
        for split in SPLITS:
            members = real.present(getattr(splits, split))
            used.update(members)
            recs = sum(real.subjects[s].recordings for s in members)
            lines.append(f"  {split:<7}{recs:>4} recordings {real.sampled(members):>9,} frames"
                         f"   subjects {describe(members)}")
        rest = [s for s in real.subjects if s not in used]
        if rest:
            lines.append(f"  {'unused':<7}{sum(real.subjects[s].recordings for s in rest):>4} "
                         f"recordings {real.sampled(rest):>9,} frames   subjects {describe(rest)}")
    if syn is not None:
        for split in SPLITS:
            members = [h for h in getattr(params.normalize.synthetic_splits, split)
                       if h in syn.humans]
            lines.append(f"  {split:<7}{synthetic_poses(params, syn, split):>9,} synthetic poses"
                         f"   humans {describe(members)}")
    return lines


def synthetic_poses(params: Params, scan: SyntheticScan, split: str = "train") -> int:
    """Poses of a split's virtual humans seen from the pre-training views."""
    members = set(getattr(params.normalize.synthetic_splits, split))
    views = set(params.data.synthetic.views)
    return sum(n for (h, v), n in scan.poses.items() if h in members and v in views)
