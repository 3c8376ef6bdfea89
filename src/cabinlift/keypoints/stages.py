"""The ``detect`` and ``keypoints2d`` stages: loop over recordings, run each one not found in
the resume cache as a unit of work (:func:`infer_recording`) with the backend chosen in params
(``simulated``, ``mmpose``, ``precomputed``) on an executor (:mod:`cabinlift.executors`: Ray's
with ``mmpose`` and ``executor.kind: ray``, else this process), write the interim files
(:mod:`cabinlift.keypoints.interim`)."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cabinlift.camera import Calibration
from cabinlift.config import DetectSimulated, KeypointsSimulated, Params, Section
from cabinlift.errors import CabinliftError
from cabinlift.executors import Unit, open_executor, unit_device
from cabinlift.formats.drive_act import (
    Recording,
    discover_recordings,
    read_calibration,
    read_openpose3d,
)
from cabinlift.keypoints import interim, simulated
from cabinlift.keypoints.driver import (
    LOW_SCORE,
    NO_PERSON,
    OUTSIDE_REGION,
    REGION_WARNING_SHARE,
    REJECTIONS,
)
from cabinlift.keypoints.interim import Detections, Keypoints2D
from cabinlift.keypoints.resume import RecordingCache
from cabinlift.skeleton import COCO17_TO_BODY25


@dataclass
class SampledFrames:
    """The frames of one recording the pipeline uses: every ``frame_stride``-th frame id of its
    openpose_3d CSV, with the 3D ground truth (only the ``simulated`` backend looks at it)."""

    frame_id: np.ndarray  # (F,) int64
    xyz: np.ndarray  # (F, 17, 3) metres, camera frame; unannotated joints completed
    annotated: np.ndarray  # (F, 17) bool


def sampled_frames(rec: Recording, stride: int) -> SampledFrames:
    """Frame ids sampled every ``stride`` frames, with the completed COCO-17 joints (metres,
    camera frame) and which were annotated, from the recording's openpose_3d CSV."""
    table = read_openpose3d(rec.pose3d_path)
    xyz, valid = table.joints(COCO17_TO_BODY25)
    full = simulated.complete_joints(xyz, valid)
    keep = table.frame_id % stride == 0
    return SampledFrames(table.frame_id[keep], full[keep], valid[keep])


Detector = Callable[[Recording, Calibration, SampledFrames], Detections]
Estimator = Callable[[Recording, Calibration, SampledFrames, Detections], Keypoints2D]


def _backend(params: Params, stage: str) -> tuple[str, Section]:
    """The backend chosen for ``stage`` and its section of params.yaml."""
    section = getattr(params, stage)
    return section.backend, getattr(section, section.backend)


def _simulated_detector(seed: int | None, cfg: DetectSimulated) -> Detector:
    def detect(rec: Recording, calib: Calibration, frames: SampledFrames) -> Detections:
        rng = simulated.recording_rng(seed, rec.file_id, "detect")
        return simulated.simulate_detections(frames.xyz, frames.annotated, calib, cfg, rng,
                                             frames.frame_id)

    return detect


def _simulated_estimator(seed: int | None, cfg: KeypointsSimulated) -> Estimator:
    def estimate(rec: Recording, calib: Calibration, frames: SampledFrames,
                 det: Detections) -> Keypoints2D:
        rng = simulated.recording_rng(seed, rec.file_id, "keypoints2d")
        return simulated.simulate_keypoints(frames.xyz, frames.annotated, det, calib, cfg, rng)

    return estimate


@dataclass(frozen=True)
class Backend:
    """A stage's 2D backend as its units build it, in whichever process they run: the stage
    (``detect`` or ``keypoints2d``), the backend's name and settings (the ``mmpose`` device as
    the executor decides it, :func:`cabinlift.executors.unit_device`) and the stage's seed (for
    ``simulated``). ``run`` names the stage run: its units share one model per process."""

    stage: str
    name: str
    cfg: Section
    seed: int | None
    run: str

    def build(self) -> Detector | Estimator:
        key = f"{self.stage}.{self.name}"
        if self.name == "simulated":
            make = _simulated_detector if self.stage == "detect" else _simulated_estimator
            return make(self.seed, self.cfg)
        if self.name == "mmpose":
            from cabinlift.keypoints.mmlab import mmdet_detector, mmpose_estimator

            return (mmdet_detector if self.stage == "detect" else mmpose_estimator)(self.cfg, key)
        from cabinlift.keypoints.precomputed import precomputed_detector, precomputed_estimator

        make = precomputed_detector if self.stage == "detect" else precomputed_estimator
        return make(self.cfg, key)


#: The 2D model of the stage run in progress, built by this process's first unit of it (a Ray
#: CPU worker runs many recordings; a GPU task gets a fresh process).
_MODELS: dict[str, Detector | Estimator] = {}


def infer_recording(backend: Backend, cache_entry: Path | None, *inputs: Any
                    ) -> Detections | Keypoints2D:
    """One recording's 2D inference, a unit of the ``detect`` or ``keypoints2d`` stage:
    ``inputs`` are the recording, its calibration, sampled frames (and detections). The result
    also goes to the resume cache (``cache_entry``) at once, so that a stage stopped before it
    gets this result does not compute it again."""
    model = _MODELS.get(backend.run)
    if model is None:
        _MODELS.clear()
        model = _MODELS[backend.run] = backend.build()
    result = model(*inputs)
    if cache_entry is not None:
        _writer(backend.stage)(cache_entry, result)
    return result


def _writer(stage: str) -> Callable[[Path, Any], None]:
    return interim.write_detections if stage == "detect" else interim.write_keypoints


def _recording_cache(name: str, cfg: Section, stage: str, stride: int) -> RecordingCache:
    """The resume store of the slow ``mmpose`` backend (none for the others)."""
    cache_dir = cfg.cache_dir if name == "mmpose" else None
    settings = cfg.model_dump(mode="json", exclude={"cache_dir"})
    return RecordingCache(cache_dir, stage, {"backend": name, "cfg": settings, "stride": stride})


def _checkpoint_files(name: str, cfg: Section) -> list[Path]:
    return [Path(cfg.checkpoint)] if name == "mmpose" else []


def _log(message: str) -> None:
    """One line of the stage's log on stderr (tqdm-safe)."""
    tqdm.write(message, file=sys.stderr)


def report_rejected(counts: dict[str, Any], backend: str, cfg: Section) -> None:
    """Log the frames without a driver box by reason, and warn when ``driver_region`` alone
    drops more than :data:`~cabinlift.keypoints.driver.REGION_WARNING_SHARE` of them."""
    frames, rejected = counts["frames"], counts["rejected"]
    _log(f"detect: {frames} sampled frames, {counts['detected']} with a driver box; rejected: "
         f"{rejected[NO_PERSON]} without a person box, {rejected[LOW_SCORE]} with person boxes "
         f"only below min_score, {rejected[OUTSIDE_REGION]} with person boxes only outside "
         f"driver_region")
    outside = rejected[OUTSIDE_REGION]
    if frames and outside > REGION_WARNING_SHARE * frames:
        key = f"detect.{backend}.driver_region"
        _log(f"detect: warning: {outside} of {frames} sampled frames ({100 * outside / frames:.1f}"
             f" %) have person boxes that pass min_score but lie outside {key} "
             f"{list(getattr(cfg, 'driver_region', ()))}; if the camera is not Drive&Act's "
             f"inner_mirror (driver in the right part of the image), set {key} to where the "
             f"driver sits")


def _infer_recordings(params: Params, stage: str, cache: RecordingCache,
                      todo: list[tuple[str, Path, tuple[Any, ...]]], timings_dir: Path | None
                      ) -> Iterator[Detections | Keypoints2D]:
    """The results of the recordings ``todo`` (key, interim path, inputs), in order, each
    written to its interim path (and by its unit to the resume cache). The slow ``mmpose``
    backend's units run on the executor of params.yaml; the others' in this process (a task
    would cost more than they compute)."""
    if not todo:
        return
    name, cfg = _backend(params, stage)
    config = None
    if name == "mmpose":
        config = params.executor
        cfg = cfg.model_copy(update={"device": unit_device(
            config, cfg.device, f"{params.source}: key '{stage}.mmpose.device'")})
    backend = Backend(stage, name, cfg, getattr(params, stage).seed, uuid.uuid4().hex)
    record = None if timings_dir is None else timings_dir / "units" / f"{stage}.jsonl"
    try:
        with open_executor(config, record=record, source=params.source) as executor:
            units = [Unit(f"{stage} {inputs[0].file_id}", infer_recording,
                          (backend, cache.entry(key), *inputs)) for key, _path, inputs in todo]
            with contextlib.closing(executor.map(units, stage)) as results:
                for (_key, path, _inputs), result in zip(todo, results, strict=True):
                    _writer(stage)(path, result)
                    yield result
    finally:
        _MODELS.pop(backend.run, None)  # the model of this process, if it ran units


def run_detect(params: Params, out_dir: Path, timings_dir: Path | None = None
               ) -> dict[str, Any]:
    """Driver box per sampled frame of every recording under ``data.real.root``; returns the
    counts of frames, detected frames, frames without a driver box by reason (see
    :mod:`cabinlift.keypoints.driver`) and resumed recordings. The recordings not found in the
    resume cache are the stage's units of work (on Ray with the ``mmpose`` backend and
    ``executor.kind: ray``)."""
    root, stride = Path(params.data.real.root), params.data.real.frame_stride
    recordings = discover_recordings(root)
    name, cfg = _backend(params, "detect")
    cache = _recording_cache(name, cfg, "detect", stride)
    rejected = dict.fromkeys(REJECTIONS, 0)
    counts: dict[str, Any] = {"frames": 0, "detected": 0, "rejected": rejected,
                              "resumed_recordings": 0}
    found: dict[str, Detections] = {}
    todo = []
    for rec in recordings:
        path = interim.interim_path(out_dir, rec.file_id, "detections")
        key = cache.key([rec.pose3d_path, rec.calibration_path, rec.video_path,
                         *_checkpoint_files(name, cfg)])
        det = cache.restore(key, path, interim.read_detections)
        if det is not None:
            counts["resumed_recordings"] += 1
            found[rec.file_id] = det
        else:
            frames = sampled_frames(rec, stride)
            todo.append((key, path, (rec, read_calibration(rec.calibration_path), frames)))
    computed = _infer_recordings(params, "detect", cache, todo, timings_dir)
    for (_key, _path, inputs), det in zip(todo, computed, strict=True):
        found[inputs[0].file_id] = det
    for rec in recordings:
        det = found[rec.file_id]
        counts["frames"] += len(det.frame_id)
        counts["detected"] += int(det.detected.sum())
        for reason, n in det.rejected_counts().items():
            rejected[reason] += n
    report_rejected(counts, name, cfg)
    return counts


def run_keypoints2d(params: Params, det_dir: Path, out_dir: Path,
                    timings_dir: Path | None = None) -> dict[str, int]:
    """COCO-17 keypoints and scores inside every detected driver box (the recordings not found
    in the resume cache are the stage's units of work, on Ray with the ``mmpose`` backend)."""
    root, stride = Path(params.data.real.root), params.data.real.frame_stride
    recordings = discover_recordings(root)
    name, cfg = _backend(params, "keypoints2d")
    cache = _recording_cache(name, cfg, "keypoints2d", stride)
    counts = {"frames": 0, "with_keypoints": 0, "resumed_recordings": 0}
    found: dict[str, Keypoints2D] = {}
    todo = []
    for rec in recordings:
        det_path = interim.interim_path(det_dir, rec.file_id, "detections")
        path = interim.interim_path(out_dir, rec.file_id, "keypoints2d")
        key = cache.key([rec.pose3d_path, rec.calibration_path, rec.video_path,
                         *_checkpoint_files(name, cfg)], contents=(det_path,))
        kp = cache.restore(key, path, interim.read_keypoints)
        if kp is not None:
            counts["resumed_recordings"] += 1
            found[rec.file_id] = kp
            continue
        calib = read_calibration(rec.calibration_path)
        det = interim.read_detections(det_path)
        frames = sampled_frames(rec, stride)
        if not np.array_equal(frames.frame_id, det.frame_id):
            raise CabinliftError(
                f"{det_path}: frame ids do not match the sampled frames of "
                f"{rec.pose3d_path} (stride {stride}); re-run the detect stage"
            )
        todo.append((key, path, (rec, calib, frames, det)))
    computed = _infer_recordings(params, "keypoints2d", cache, todo, timings_dir)
    for (_key, _path, inputs), kp in zip(todo, computed, strict=True):
        found[inputs[0].file_id] = kp
    for rec in recordings:
        kp = found[rec.file_id]
        counts["frames"] += len(kp.frame_id)
        counts["with_keypoints"] += int(kp.detected.sum())
    return counts
