"""The few lines ``cabinlift data check`` prints: what the roots hold per split, the disk and
the time the pipeline will need on this machine, then every problem found, one per line."""

from __future__ import annotations

from typing import Any

import torch

from cabinlift.config import SPLITS, Params
from cabinlift.datacheck import DataCheck, split_table, synthetic_poses
from cabinlift.estimate import disk_bytes, frame_seconds_2d, timing, workload


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def summary(params: Params, check: DataCheck, measure: bool = True) -> dict[str, Any]:
    """Everything ``data check`` reports, as data (``--json``): counts per data set, the
    workload, disk, measured times (``measure``), and the problems."""
    out: dict[str, Any] = {"problems": list(check.problems)}
    real, syn = check.real, check.synthetic
    if real is not None:
        out["drive_act"] = {
            "root": str(real.root), "subjects": len(real.subjects),
            "recordings": real.recordings,
            "frames": sum(s.frames for s in real.subjects.values()),
            "sampled_frames": real.sampled(), "frame_stride": params.data.real.frame_stride,
            "annotated_share": round(real.annotated_share, 4), "videos": real.videos,
            "activity_chunks": real.activity_chunks,
            "splits": {split: {"subjects": real.present(members), "frames": real.sampled(members)}
                       for split in SPLITS
                       for members in [getattr(params.normalize.real_splits, split)]},
        }
    if syn is not None:
        out["synthetic_cabin"] = {
            "files": syn.files, "humans": syn.humans, "views": syn.views,
            "pose_views": list(params.data.synthetic.views),
            "poses": {split: synthetic_poses(params, syn, split)
                      for split in SPLITS},
        }
    if real is None or syn is None or not real.subjects:
        return out
    work = workload(params, real, synthetic_poses(params, syn))
    out["workload"] = work.__dict__
    out["disk_bytes"] = disk_bytes(params, work)
    if measure:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        out["timing"] = [timing(params, work, d).__dict__ for d in devices]
        if "mmpose" in (params.detect.backend, params.keypoints2d.backend):
            per_frame = frame_seconds_2d(params)
            out["frame_seconds_2d"] = per_frame
    return out


def _time_line(t: dict[str, Any]) -> str:
    steps = ", ".join(f"{m} {1000 * s:.1f}" for m, s in t["step_seconds"].items())
    return (f"  training on {t['device']}: pre-training {_hours(t['pretrain'])}, fine-tuning "
            f"{_hours(t['finetune'])} (ms per step: {steps})")


def render(params: Params, info: dict[str, Any], check: DataCheck) -> list[str]:
    """The printed lines of :func:`summary`'s ``info``."""
    lines: list[str] = []
    if "drive_act" in info:
        d = info["drive_act"]
        acts = (f"{d['activity_chunks']:,} activity chunks" if d["activity_chunks"] is not None
                else "no activities file (per-activity errors will read <unknown>)")
        lines += [
            f"Drive&Act {d['root']}: {d['subjects']} subjects, {d['recordings']} recordings, "
            f"{d['frames']:,} frames with 3D pose; every {d['frame_stride']}th sampled: "
            f"{d['sampled_frames']:,}",
            f"  annotated upper-body joints: {100 * d['annotated_share']:.1f}% of the sampled "
            f"frames'; videos: {d['videos']} of {d['recordings']}; {acts}",
        ]
    if "synthetic_cabin" in info:
        s = info["synthetic_cabin"]
        lines.append(f"SyntheticCabin: {s['files']:,} files, {len(s['humans'])} virtual humans, "
                     f"views {', '.join(s['views'])}; pre-training views "
                     f"{', '.join(s['pose_views'])}")
    lines += split_table(params, check)
    if "workload" in info:
        w, disk = info["workload"], info["disk_bytes"]
        lines.append(
            f"Disk: DVC cache about {_gb(disk['dvc_cache'])} (every run's checkpoint and test "
            f"predictions), run store about {_gb(disk['run_store'])} (store.dir), and the "
            f"workspace as much again as the cache unless DVC's cache.type links files")
        lines.append(
            f"Work per lifter: {w['pretrain_runs']} pre-trainings, {w['pretrain_steps']:,} steps; "
            f"fine-tuning {w['finetune_runs']} runs per init, {w['finetune_steps']:,} steps; "
            f"{w['frames_2d']:,} frames for the 2D models")
    if "timing" in info:
        lines.append(f"Time on this machine, training steps at the cost measured now (every run to "
                     f"train.max_epochs = {params.train.max_epochs}, which early stopping cuts "
                     f"short; validation and evaluation not counted):")
        lines += [_time_line(t) for t in info["timing"]]
        if "frame_seconds_2d" in info:
            per = info["frame_seconds_2d"]
            lines.append(
                "  2D models: not measured (MMDetection/MMPose or a checkpoint missing: make "
                "install-mmlab, cabinlift models fetch)" if per is None else
                f"  2D models: {per:.2f} s per frame, {_hours(per * info['workload']['frames_2d'])}"
                f" for the {info['workload']['frames_2d']:,} frames (once; DVC keeps them)")
    problems = info["problems"]
    lines.append(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
                 + (":" if problems else ""))
    lines += [f"  - {p}" for p in problems]
    return lines

