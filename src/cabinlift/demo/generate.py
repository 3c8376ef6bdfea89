"""Write the embedded demo data set in the two data sets' own on-disk formats.

Layout under ``out_root``::

    drive_and_act/openpose_3d/vpN/<run>.ids_1.openpose.3d.csv
    drive_and_act/inner_mirror/vpN/<run>.ids_1.calibration.json, <run>.ids_1.timestamps
    drive_and_act/activities_3s/inner_mirror/midlevel.chunks_90.csv
    synthetic_cabin/gt_jsons/<human>_<pose>_<view>.json
    synthetic_cabin/images/                       (empty: the demo has no pixels)

Everything is written through :mod:`cabinlift.formats`, so the pipeline reads the demo with the
same code as the real data. Every subject, run and virtual human draws from its own random
stream (``SeedSequence([seed, domain, index, ...])``), so the output is a pure function of the
parameters and changing, say, the number of subjects leaves the other subjects' data unchanged.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from cabinlift.atomic import write_atomic
from cabinlift.camera import INNER_MIRROR
from cabinlift.config import Demo, Params
from cabinlift.demo.real import Subject, annotate, make_subject, run_frames, simulate_run
from cabinlift.demo.synthetic import make_human, write_human
from cabinlift.errors import CabinliftError
from cabinlift.formats.drive_act import (
    ACTIVITIES_FILE,
    CAMERA_FOLDER,
    POSE_FOLDER,
    STREAM,
    write_activities,
    write_calibration,
    write_openpose3d,
)
from cabinlift.formats.synthetic_cabin import GT_FOLDER
from cabinlift.skeleton import DRIVE_ACT_JOINTS

MARKER = ".cabinlift-demo"
#: The folders of the two data sets under the demo's output folder.
REAL_FOLDER = "drive_and_act"
SYNTHETIC_FOLDER = "synthetic_cabin"
#: The only file the demo stage writes when the real data sets are used (:func:`run_demo`).
UNUSED = "UNUSED.txt"
CHUNK_FRAMES = 90  # Drive&Act's 3 s activity chunks


def _prepare(folder: Path) -> None:
    """Empty a previous demo output; refuse to touch a folder the demo did not write."""
    if folder.exists():
        if not (folder / MARKER).is_file() and any(folder.iterdir()):
            raise CabinliftError(
                f"{folder}: exists and was not written by the demo generator (no {MARKER} "
                f"file); refusing to overwrite it"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("written by `cabinlift demo`; safe to delete\n")


def _date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise CabinliftError(
            f"params: 'demo.real.first_date' must be a date YYYY-MM-DD, got {value!r}"
        ) from None


def _run_names(rng: np.random.Generator, day: dt.date, runs: int) -> list[tuple[str, float]]:
    """Run names of Drive&Act's pattern ``run<N>[b]_YYYY-MM-DD-HH-MM-SS`` and start epochs."""
    start = dt.datetime(day.year, day.month, day.day, 9, 0, 0, tzinfo=dt.UTC)
    start += dt.timedelta(seconds=int(rng.integers(0, 8 * 3600)))
    out = []
    for r in range(runs):
        letter = "b" if rng.random() < 0.3 else ""
        out.append((f"run{r + 1}{letter}_{start:%Y-%m-%d-%H-%M-%S}", start.timestamp()))
        start += dt.timedelta(seconds=int(rng.integers(20 * 60, 45 * 60)))
    return out


def _chunks(subject: int, file_id: str, segs: list[tuple[str, int, int]]) -> list[tuple]:
    rows = []
    for ann, (name, a, b) in enumerate(segs):
        for c, s in enumerate(range(a, b, CHUNK_FRAMES)):
            rows.append((subject, file_id, ann, s, min(s + CHUNK_FRAMES, b), name, c))
    return rows


def _subject_runs(p: Demo, i: int) -> tuple[Subject, list[tuple[str, float]]]:
    """Subject ``vp{i}``'s body and habits, and its runs' names and start epochs (drawn before
    any run is simulated, so the names are known without simulating)."""
    r = p.real
    rng = np.random.default_rng(np.random.SeedSequence([p.seed, 1, i]))
    subject = make_subject(i, rng, r.female_fraction)
    runs = 1 if i in r.single_run_subjects else r.runs_per_subject
    day = _date(r.first_date) + dt.timedelta(days=int(round((i - 1) * 1.6)))
    return subject, _run_names(rng, day, runs)


def file_id(subject: int, run: str) -> str:
    """The Drive&Act file id of run ``run`` of subject ``vp{subject}``."""
    return f"vp{subject}/{run}.{STREAM}"


def human_name(h: int) -> str:
    """The name of virtual human ``h`` (1-based)."""
    return f"human_{h:02d}"


def recordings(p: Demo) -> dict[str, tuple[int, int]]:
    """What :func:`generate` writes for ``p``, without writing it: ``{file id: (subject, frames)}``
    of every recording (frame ids 0 .. frames - 1)."""
    frames = run_frames(float(p.real.seconds_per_run), float(p.real.fps))
    return {file_id(i, run): (i, frames) for i in range(1, p.real.subjects + 1)
            for run, _ in _subject_runs(p, i)[1]}


def _real_subject(root: Path, p: Demo, i: int) -> tuple[list, int, np.ndarray]:
    """Write all runs of subject ``vp{i}``; returns its activity chunks, frames, annotated
    counts per joint."""
    r = p.real
    fps = float(r.fps)
    subject, runs = _subject_runs(p, i)
    rows: list[tuple] = []
    frames = 0
    annotated = np.zeros(len(DRIVE_ACT_JOINTS), dtype=np.int64)
    for k, (run, t0) in enumerate(runs):
        rrng = np.random.default_rng(np.random.SeedSequence([p.seed, 1, i, k + 1]))
        pts, segs, extra = simulate_run(subject, rrng, float(r.seconds_per_run), fps)
        xyz, conf = annotate(subject, pts, extra, rrng, fps, r.label_noise_mm,
                             r.label_jitter_mm, r.empty_frame_rate)
        n = xyz.shape[0]
        frame_id = np.arange(n)
        ts = t0 + frame_id / fps
        vp = f"vp{i}"
        write_openpose3d(root / POSE_FOLDER / vp / f"{run}.{STREAM}.openpose.3d.csv",
                         frame_id, ts, xyz, conf)
        cam_dir = root / CAMERA_FOLDER / vp
        write_calibration(cam_dir / f"{run}.{STREAM}.calibration.json", INNER_MIRROR)
        (cam_dir / f"{run}.{STREAM}.timestamps").write_text(
            "".join(f"{t:.6f}\n" for t in ts.tolist()))
        rows.extend(_chunks(i, file_id(i, run), segs))
        frames += n
        annotated += (~((xyz == 0).all(-1) & (conf == 0))).sum(0)
    return rows, frames, annotated


def _synthetic_human(root: Path, p: Demo, seed: int, h: int, name: str) -> int:
    """Write all images of virtual human ``h`` under ``name``; returns the number of files."""
    s = p.synthetic
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2, h]))
    body = make_human(rng, (s.stature_min, s.stature_max), s.ratio_sd)
    return write_human(root / GT_FOLDER, name, rng, body, s.poses_per_human,
                       list(s.views), s.camera_jitter_m)


def _map(fn, jobs: list[tuple], workers: int) -> list:
    """Run jobs in order, in ``workers`` processes (results do not depend on ``workers``:
    every job has its own random stream)."""
    if workers <= 1 or len(jobs) <= 1:
        return [fn(*j) for j in jobs]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as ex:
        futures = [ex.submit(fn, *j) for j in jobs]
        return [f.result() for f in futures]


def generate(out_root: Path, p: Demo, workers: int = 2, human_names: Sequence[str] | None = None
             ) -> dict:
    """Write the whole demo under ``out_root`` (see the module docstring) and return a summary
    of what was written; deterministic from ``p.seed`` and the sizes in ``p`` (params.yaml's
    ``demo`` section), whatever the number of ``workers`` (spawned processes: a calling script
    needs the usual ``if __name__ == "__main__":`` guard when ``workers > 1``).
    ``human_names`` names the virtual humans in place of :func:`human_name` (a copy of
    SyntheticCabin names them its own way), one per ``demo.synthetic.humans``."""
    names = [human_name(h) for h in range(1, p.synthetic.humans + 1)]
    if human_names is not None:
        if len(human_names) != len(names):
            raise ValueError(f"{len(human_names)} human names for {len(names)} virtual humans")
        names = list(human_names)
    seed = p.seed
    _date(p.real.first_date)
    out_root = Path(out_root)
    real_root = out_root / REAL_FOLDER
    syn_root = out_root / SYNTHETIC_FOLDER
    _prepare(real_root)
    _prepare(syn_root)
    (syn_root / GT_FOLDER).mkdir()
    (syn_root / "images").mkdir()
    jobs: list[tuple] = [(_real_subject, (real_root, p, i))
                         for i in range(1, p.real.subjects + 1)]
    jobs += [(_synthetic_human, (syn_root, p, seed, h, names[h - 1]))
             for h in range(1, p.synthetic.humans + 1)]
    results = _map(_call, jobs, workers)
    real_res = results[: p.real.subjects]
    files = sum(results[p.real.subjects:])
    rows = [row for res in real_res for row in res[0]]
    frames = sum(res[1] for res in real_res)
    annotated = sum((res[2] for res in real_res), np.zeros(len(DRIVE_ACT_JOINTS), dtype=np.int64))
    write_activities(real_root / ACTIVITIES_FILE, rows)
    runs = sum(1 if i in p.real.single_run_subjects else p.real.runs_per_subject
               for i in range(1, p.real.subjects + 1))
    return {
        "real": {
            "subjects": p.real.subjects, "runs": runs, "frames": frames,
            "activity_chunks": len(rows),
            "annotation_rate": {j: round(float(a) / max(frames, 1), 4)
                                for j, a in zip(DRIVE_ACT_JOINTS, annotated, strict=True)},
        },
        "synthetic": {
            "humans": p.synthetic.humans,
            "poses": p.synthetic.humans * p.synthetic.poses_per_human,
            "views": len(p.synthetic.views), "images": files,
        },
    }


def _call(fn, args: tuple):
    return fn(*args)


def roots_inside(params: Params, out_root: Path) -> list[str]:
    """The keys of params.yaml's data roots that name a folder inside ``out_root``: the data
    sets the pipeline reads from what the demo writes there."""
    out = Path(out_root).resolve()
    roots = (("data.real.root", params.data.real.root),
             ("data.synthetic.root", params.data.synthetic.root))
    return [key for key, root in roots if Path(root).resolve().is_relative_to(out)]


def run_demo(params: Params, out_root: Path) -> dict:
    """The ``demo`` stage: :func:`generate` with params.yaml's ``demo`` section, unless neither
    data root is inside ``out_root`` (the real data sets are used): then it writes only
    :data:`UNUSED`, a note saying so, in seconds."""
    out_root = Path(out_root)
    if roots_inside(params, out_root):
        (out_root / UNUSED).unlink(missing_ok=True)
        return generate(out_root, params.demo)
    for folder in (REAL_FOLDER, SYNTHETIC_FOLDER):
        if (out_root / folder).exists():
            _prepare(out_root / folder)
            shutil.rmtree(out_root / folder)
    note = (f"The demo data sets are not written: data.real.root ({params.data.real.root}) and "
            f"data.synthetic.root ({params.data.synthetic.root}) name folders outside "
            f"{out_root}.\n")
    write_atomic(out_root / UNUSED, note)
    return {"written": False, "real_root": str(params.data.real.root),
            "synthetic_root": str(params.data.synthetic.root)}
