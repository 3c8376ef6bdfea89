"""SyntheticCabin parse throughput: files/s of ``load_synthetic`` on generated ``gt_jsons``.

Writes ``--files`` annotation files in the data set's format (one virtual human with 19
keypoints per file, views and humans cycling like the real set) into a temporary folder, then
times a cold parse with ``--workers`` processes, and a second call that finds every chunk in
the resume cache. The real set has ~965k files; at the measured rate that is the number of
minutes the one-off parse takes.

    python benchmarks/synthetic_parse.py [--files 20000] [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from cabinlift.formats.synthetic_cabin import (
    SYNTHETIC_VIEWS,
    SyntheticHuman,
    load_synthetic,
    write_annotation,
)

KEYPOINTS = 19


def generate(root: Path, n: int, seed: int = 0) -> None:
    """``n`` annotation files with random but well-formed keypoints."""
    rng = np.random.default_rng(seed)
    gt = root / "gt_jsons"
    gt.mkdir(parents=True)
    for i in range(n):
        view = SYNTHETIC_VIEWS[i % len(SYNTHETIC_VIEWS)]
        human = f"human_{1 + (i // 1000) % 16:02d}"
        kp2d = rng.uniform(0, 1024, (KEYPOINTS, 2))
        h = SyntheticHuman(human, kp2d, rng.integers(0, 3, KEYPOINTS),
                           rng.normal(0, 0.3, (KEYPOINTS, 3)) + [0, 0, 1.2],
                           (100.0, 80.0, 400.0, 700.0))
        write_annotation(gt / f"{human}_{i:07d}_{view}.json", f"{human}_{i:07d}_{view}.png",
                         {"name": view}, [h])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    views = ["OMS_01", "Dashboard", "Front"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "syn"
        t0 = time.perf_counter()
        generate(root, args.files)
        t_gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = load_synthetic(root, views, workers=args.workers, progress=False,
                             cache_dir=Path(tmp) / "cache")
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_synthetic(root, views, workers=args.workers, progress=False,
                       cache_dir=Path(tmp) / "cache")
        t_cached = time.perf_counter() - t0
    res = {"files": args.files, "workers": args.workers, "cpus": os.cpu_count(),
           "poses_kept": len(out["human"]), "generate_s": round(t_gen, 2),
           "parse_s": round(t_cold, 2), "parse_files_per_s": round(args.files / t_cold),
           "cached_s": round(t_cached, 2), "cached_files_per_s": round(args.files / t_cached)}
    print(json.dumps(res, indent=1))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
