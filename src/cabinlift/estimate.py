"""The disk and the time the pipeline will need, for the data ``cabinlift data check`` found.

Counts come from params.yaml and the data: the sampled frames the 2D models see, the training
steps of every run (each to ``train.max_epochs``: an upper bound, since early stopping ends
most runs sooner), the checkpoints kept. Times come from per-step costs measured on this
machine when the check runs: one training step of each lifter at ``train.batch_size`` on one
CPU thread (a training stage runs one such unit per core) and, where there is one, on the GPU;
the 2D models' cost per frame where MMDetection, MMPose and the checkpoints are installed.
"""

from __future__ import annotations

import io
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from cabinlift.camera import INNER_MIRROR
from cabinlift.config import Params
from cabinlift.datacheck import RealData
from cabinlift.lifters import build_lifter
from cabinlift.resources import thread_budget
from cabinlift.skeleton import NUM_JOINTS

#: Bytes of one predicted test pose in a setting's predictions file (13 joints x 3, float32).
_POSE_BYTES = NUM_JOINTS * 3 * 4


@dataclass(frozen=True)
class Workload:
    """What the pipeline computes for the data: per lifter, every run's training steps."""

    frames_2d: int  # sampled frames the 2D backend processes (every recording)
    pretrain_runs: int  # per lifter
    pretrain_steps: int  # per lifter, over its pre-trainings
    finetune_runs: int  # per lifter and init
    finetune_steps: int  # per lifter and init, over every run of every setting
    test_frames: int


def _run_frames(params: Params, per_subject: float, setting: str) -> int:
    d = params.subsets.settings[setting]
    one = per_subject if d.fraction >= 1 else max(params.subsets.min_frames,
                                                 round(d.fraction * per_subject))
    return max(params.subsets.min_frames, round(d.subjects * one))


def workload(params: Params, real: RealData, synthetic_train: int) -> Workload:
    """The work of the whole grid for ``real`` and ``synthetic_train`` training poses (before
    ``pretrain.data``'s fractions and copies, applied here)."""
    batch, epochs = params.train.batch_size, params.train.max_epochs
    train = real.present(params.normalize.real_splits.train)
    per_subject = real.sampled(train) / max(len(train), 1)
    runs = steps = 0
    for setting in params.settings:
        d = params.subsets.settings[setting]
        n = d.repetitions * d.seeds
        runs += n
        steps += n * epochs * math.ceil(_run_frames(params, per_subject, setting) / batch)
    pd = params.pretrain.data
    poses = synthetic_train * pd.humans * pd.poses * (1 + pd.augment.copies)
    seeds = params.pretrain.seeds
    return Workload(
        frames_2d=real.sampled(), pretrain_runs=seeds,
        pretrain_steps=seeds * epochs * math.ceil(poses / batch), finetune_runs=runs,
        finetune_steps=steps, test_frames=real.sampled(list(params.normalize.real_splits.test)),
    )


def checkpoint_bytes(params: Params, model: str) -> int:
    """Bytes of one saved run of ``model`` with params.yaml's hyper-parameters."""
    buf = io.BytesIO()
    torch.save(build_lifter(model, **params.hparams(model)).state_dict(), buf)
    return buf.tell()


def disk_bytes(params: Params, work: Workload) -> dict[str, int]:
    """``dvc_cache``: the checkpoints of every run and their test predictions, the processed
    arrays; ``run_store``: every finished run again (``store.dir``, cleanable). The workspace
    holds another copy of the DVC outputs unless DVC's ``cache.type`` links them."""
    ckpt = sum(checkpoint_bytes(params, m) for m in params.models)
    runs = 2 * work.finetune_runs
    models = ckpt * (work.pretrain_runs + runs)
    predictions = len(params.models) * runs * work.test_frames * _POSE_BYTES
    return {"dvc_cache": models + predictions, "run_store": models}


def _median_seconds(step: Callable[[], None], device: torch.device, seconds: float) -> float:
    """Median seconds per call over three windows of about ``seconds / 3``, after a warm-up."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):
        step()
    sync()
    windows = []
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - start < seconds / 3:
            step()
            n += 1
            if n % 8 == 0:
                sync()
        sync()
        windows.append((time.perf_counter() - start) / n)
    return statistics.median(windows)


def step_seconds(params: Params, model: str, device: str = "cpu", seconds: float = 1.0) -> float:
    """Seconds of one training step of ``model`` at ``train.batch_size`` on ``device`` (one
    thread on a CPU): forward, the model's loss, backward, gradient clip, Adam."""
    dev = torch.device(device)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(0)
        net = build_lifter(model, **params.hparams(model)).to(dev).train()
        weights = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.Adam(weights, lr=params.train.lr)
        b = params.train.batch_size
        x = torch.randn(b, NUM_JOINTS, 2, generator=gen).to(dev)
        y = torch.randn(b, NUM_JOINTS, 3, generator=gen).to(dev)
        mask = torch.ones(b, NUM_JOINTS, dtype=torch.bool, device=dev)

        def step() -> None:
            opt.zero_grad()
            net.training_loss(x, y, mask).backward()
            torch.nn.utils.clip_grad_norm_(weights, params.train.grad_clip, foreach=True)
            opt.step()

        return _median_seconds(step, dev, seconds)
    finally:
        torch.set_num_threads(threads)


def frame_seconds_2d(params: Params) -> float | None:
    """Seconds per frame of the ``mmpose`` backend (detector on a batch of blank inner_mirror
    frames, then the pose model on one box each) with params.yaml's models and devices; None
    where the MMLab stack or a checkpoint is missing."""
    from cabinlift.errors import CabinliftError
    from cabinlift.keypoints import mmlab

    try:
        det_cfg, kp_cfg = params.detect.mmpose, params.keypoints2d.mmpose
        detector = mmlab.PersonDetector(
            mmlab.packaged_config(det_cfg.config, "mmdet", "detect.mmpose.config"),
            mmlab.checkpoint_path(det_cfg.checkpoint, "detect.mmpose.checkpoint", "detector"),
            mmlab.resolve_device(det_cfg.device))
        estimator = mmlab.TopDownEstimator(
            mmlab.packaged_config(kp_cfg.config, "mmpose", "keypoints2d.mmpose.config"),
            mmlab.checkpoint_path(kp_cfg.checkpoint, "keypoints2d.mmpose.checkpoint", "HRNet"),
            mmlab.resolve_device(kp_cfg.device))
    except (ImportError, CabinliftError):
        return None
    h, w = INNER_MIRROR.height, INNER_MIRROR.width
    frames = [np.zeros((h, w, 3), dtype=np.uint8) for _ in range(det_cfg.batch_size)]
    boxes = np.tile([[w / 3, h / 5, w * 5 / 6, h]], (kp_cfg.batch_size, 1))
    crops = [frames[0]] * kp_cfg.batch_size
    detector(frames[:1])
    start = time.perf_counter()
    detector(frames)
    det = (time.perf_counter() - start) / len(frames)
    estimator(crops[:1], boxes[:1])
    start = time.perf_counter()
    estimator(crops, boxes)
    return det + (time.perf_counter() - start) / len(crops)


@dataclass(frozen=True)
class Timing:
    """Upper bounds of wall time (seconds) on one device kind of this machine."""

    device: str
    step_seconds: dict[str, float]  # per lifter
    pretrain: float
    finetune: float


def timing(params: Params, work: Workload, device: str, seconds: float = 1.0) -> Timing:
    """Training time of the grid on ``device``: every step of every lifter at its measured
    cost, on a CPU spread over one unit per core (the stages' ``train.workers: auto``), on a
    GPU one run after another (stacked runs, ``train.runs_per_group``, share steps there: this
    bound ignores it)."""
    costs = {m: step_seconds(params, m, device, seconds) for m in params.models}
    parallel = thread_budget() if device == "cpu" else 1
    pre = sum(work.pretrain_steps * c for c in costs.values()) / parallel
    fine = sum(2 * work.finetune_steps * c for c in costs.values()) / parallel
    return Timing(device, costs, pre, fine)
