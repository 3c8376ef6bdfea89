"""Per-frame cost of the ``mmpose`` backend: the paper's Faster R-CNN (person) and HRNet-W48
(UDP, 384x288, flip test) on 1280x1024 frames, at the backend's batch sizes.

The models run with random weights built from the installed packages' configs (the trained
checkpoints cannot be downloaded here); the cost of a forward pass does not depend on the
weights, except the detector's post-processing, which random weights make heavier rather than
lighter (many low-score boxes survive to NMS). The paper-scale estimate in README multiplies
these rates by the number of sampled Drive&Act frames.

    python benchmarks/mmlab_inference.py [--device auto] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mmlab_checkpoints import DET_CONFIG, POSE_CONFIG, random_checkpoints  # noqa: E402

from cabinlift.keypoints.mmlab import (  # noqa: E402
    PersonDetector,
    TopDownEstimator,
    packaged_config,
    resolve_device,
)


def frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """Dark NIR-like 1280x1024 frames with a bright blob where a driver would sit."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = rng.integers(0, 40, size=(1024, 1280, 3), dtype=np.uint8)
        img[200:900, 650:1050] += 120
        out.append(img)
    return out


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (first call builds caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--det-batch", type=int, default=4)
    ap.add_argument("--pose-batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        det_ckpt, pose_ckpt = random_checkpoints(Path(tmp))
        det = PersonDetector(packaged_config(DET_CONFIG, "mmdet", "det"), det_ckpt, device)
        pose = TopDownEstimator(packaged_config(POSE_CONFIG, "mmpose", "pose"), pose_ckpt, device)
    det_imgs = frames(args.det_batch)
    pose_imgs = frames(args.pose_batch, seed=1)
    boxes = np.tile([[650.0, 200.0, 1050.0, 900.0]], (args.pose_batch, 1))
    det_s = timed(lambda: det(det_imgs), args.repeats) / args.det_batch
    pose_s = timed(lambda: pose(pose_imgs, boxes), args.repeats) / args.pose_batch
    result = {
        "device": device, "torch_threads": torch.get_num_threads(),
        "detector_s_per_frame": round(det_s, 3), "detector_batch": args.det_batch,
        "pose_s_per_box": round(pose_s, 3), "pose_batch": args.pose_batch,
        "frames_per_hour": round(3600 / (det_s + pose_s)),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
