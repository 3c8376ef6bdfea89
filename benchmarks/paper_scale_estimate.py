"""What ``cabinlift data check`` estimates for a whole Drive&Act + SyntheticCabin run at the
paper's scale, on this machine, without the data sets: their sizes stand in for the counts.

Drive&Act: 15 subjects, 29 inner_mirror runs (one for vp9), ~45k frames sampled at 1 fps, i.e.
3,000 per subject; SyntheticCabin: ~145k training poses (8 virtual humans, 3 views). The
training steps are every run to ``train.max_epochs`` (an upper bound), timed per lifter at
``train.batch_size`` on one thread (the training stages' unit on a CPU) and spread over the
cores, as ``data check`` does; the disk is every checkpoint and test prediction.

    python benchmarks/paper_scale_estimate.py [--profile paper] [--seconds 3] [--models ...]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cabinlift import config, estimate, profiles
from cabinlift.datacheck import RealData, SubjectData
from cabinlift.skeleton import NUM_JOINTS

SUBJECTS = 15
SINGLE_RUN = 9
FRAMES_PER_SUBJECT = 3000
SYNTHETIC_TRAIN = 145_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--seconds", type=float, default=3.0, help="timing per lifter")
    ap.add_argument("--models", nargs="*", help="these lifters only (default: params' models)")
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()
    raw = profiles.with_profile(config.read_yaml(args.params), profiles.load_profile(args.profile))
    if args.models:
        raw["models"] = args.models
    params = config.build(raw)
    real = RealData(Path("drive_and_act"), {
        s: SubjectData(1 if s == SINGLE_RUN else 2, 30 * FRAMES_PER_SUBJECT, FRAMES_PER_SUBJECT,
                       FRAMES_PER_SUBJECT * NUM_JOINTS) for s in range(1, SUBJECTS + 1)},
        videos=29, activity_chunks=None)
    work = estimate.workload(params, real, SYNTHETIC_TRAIN)
    disk = estimate.disk_bytes(params, work)
    t = estimate.timing(params, work, "cpu", args.seconds)
    text = json.dumps({
        "profile": args.profile, "workload": work.__dict__,
        "disk_gb": {k: round(v / 1e9, 1) for k, v in disk.items()},
        "ms_per_step": {m: round(1000 * s, 1) for m, s in t.step_seconds.items()},
        "hours": {"pretrain": round(t.pretrain / 3600), "finetune": round(t.finetune / 3600)},
    }, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
