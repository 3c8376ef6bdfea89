"""The ``mmpose`` backend: the paper's detector and 2D estimator run on the inner_mirror video.

* ``detect``: MMDetection's person-only Faster R-CNN
  (``faster-rcnn_r50-caffe_fpn_ms-1x_coco-person``) on every sampled frame, then the driver
  rule of :mod:`cabinlift.keypoints.driver`.
* ``keypoints2d``: MMPose's top-down HRNet-W48 (``td-hm_hrnet-w48_udp-8xb32-210e_coco-384x288``)
  inside each driver box.

Both are built with the packages' own ``init_detector`` / ``init_model`` from the configs
shipped inside the installed packages (or a config path) and a local checkpoint named in
params. Inference runs the models' own test pipelines, like ``inference_detector`` and
``inference_topdown`` do, but on ``batch_size`` frames (boxes) at a time. Device ``auto`` is
CUDA when available. The OpenMMLab stack is an optional install (``make install-mmlab``).
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cabinlift.config import DetectMmpose, Mmpose
from cabinlift.errors import CabinliftError
from cabinlift.formats.drive_act import read_timestamps
from cabinlift.keypoints.driver import pick_driver
from cabinlift.keypoints.interim import Detections, Keypoints2D, empty_detections
from cabinlift.keypoints.video import read_frames

_INSTALL_HINT = "run `make install-mmlab` (docs/real-data.md)"


def _require_stack() -> None:
    missing = [m for m in ("mmcv", "mmengine", "mmdet", "mmpose", "cv2")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise CabinliftError(
            f"the mmpose backend needs the OpenMMLab stack, but {', '.join(missing)} "
            f"is not installed: {_INSTALL_HINT}"
        )


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda:0`` when a GPU is visible, else ``cpu``; anything else as given."""
    import torch

    if name == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    return name


def packaged_config(name: str, package: str, key: str) -> Path:
    """A config file: ``name`` itself if it is a file, else ``name`` relative to the configs
    that ``package`` ships in ``<package>/.mim/configs``."""
    path = Path(name)
    if path.is_file():
        return path
    spec = importlib.util.find_spec(package)
    root = Path(spec.origin).parent / ".mim" / "configs" if spec and spec.origin else None
    if root is not None and (root / name).is_file():
        return root / name
    raise CabinliftError(
        f"params.yaml: key '{key}' is {name!r}: neither a file nor a config shipped with "
        f"{package} (looked in {root})"
    )


def checkpoint_path(value: str, key: str, what: str) -> Path:
    """The checkpoint file named by params ``key``, or a one-line error saying how to get it."""
    path = Path(value)
    if not path.is_file():
        raise CabinliftError(
            f"params.yaml: key '{key}': checkpoint file {path} not found; download the {what} "
            f"checkpoint (docs/real-data.md) or point '{key}' at your copy"
        )
    return path


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _check_frame_count(rec, frame_id: np.ndarray) -> None:
    """Fail before decoding when the run's timestamps file (one line per video frame) says the
    video is shorter than the sampled frame ids need."""
    if not rec.timestamps_path.is_file() or len(frame_id) == 0:
        return
    n = len(read_timestamps(rec.timestamps_path))
    if int(frame_id.max()) >= n:
        raise CabinliftError(
            f"{rec.timestamps_path}: lists {n} video frames, but {rec.pose3d_path} has frame "
            f"{int(frame_id.max())} (expected one timestamp per frame of the video)"
        )


class PersonDetector:
    """MMDetection detector returning person boxes (x1, y1, x2, y2) and scores per image."""

    def __init__(self, config: Path, checkpoint: Path, device: str) -> None:
        from mmdet.apis import init_detector
        from mmengine.dataset import Compose

        self.model = init_detector(str(config), str(checkpoint), device=device)
        cfg = copy.deepcopy(self.model.cfg.test_dataloader.dataset.pipeline)
        cfg[0].type = "mmdet.LoadImageFromNDArray"  # frames come decoded, not from files
        self.scope = self.model.cfg.get("default_scope", "mmdet")
        self._init_scope()
        self.pipeline = Compose(cfg)
        classes = [c.lower() for c in (self.model.dataset_meta or {}).get("classes", ("person",))]
        self.person = classes.index("person") if "person" in classes else 0

    def _init_scope(self) -> None:
        from mmengine.registry import init_default_scope

        init_default_scope(self.scope)

    def __call__(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        import torch
        from mmengine.dataset import pseudo_collate

        self._init_scope()
        batch = pseudo_collate([self.pipeline({"img": img, "img_id": i})
                                for i, img in enumerate(images)])
        with torch.no_grad():
            results = self.model.test_step(batch)
        out = []
        for res in results:
            inst = res.pred_instances
            keep = (inst.labels == self.person).cpu().numpy()
            out.append((inst.bboxes.cpu().numpy()[keep].astype(np.float64),
                        inst.scores.cpu().numpy()[keep].astype(np.float64)))
        return out


class TopDownEstimator:
    """MMPose top-down estimator: COCO-17 keypoints and scores for one box per image."""

    def __init__(self, config: Path, checkpoint: Path, device: str) -> None:
        from mmengine.dataset import Compose
        from mmpose.apis import init_model

        self.model = init_model(str(config), str(checkpoint), device=device)
        self.scope = self.model.cfg.get("default_scope", "mmpose")
        self._init_scope()
        self.pipeline = Compose(self.model.cfg.test_dataloader.dataset.pipeline)
        n = self.model.dataset_meta.get("num_keypoints") if self.model.dataset_meta else None
        if n is not None and n != 17:
            raise CabinliftError(f"{config}: the pose model predicts {n} keypoints; expected COCO's 17")

    def _init_scope(self) -> None:
        from mmengine.registry import init_default_scope

        init_default_scope(self.scope)

    def __call__(self, images: list[np.ndarray], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch
        from mmengine.dataset import pseudo_collate

        self._init_scope()
        data = []
        for img, box in zip(images, boxes, strict=True):
            info = {"img": img, "bbox": np.asarray(box, np.float32)[None],
                    "bbox_score": np.ones(1, dtype=np.float32)}
            info.update(self.model.dataset_meta)
            data.append(self.pipeline(info))
        with torch.no_grad():
            results = self.model.test_step(pseudo_collate(data))
        xy = np.stack([np.asarray(r.pred_instances.keypoints)[0] for r in results])
        scores = np.stack([np.asarray(r.pred_instances.keypoint_scores)[0] for r in results])
        return xy.astype(np.float64), scores.astype(np.float64)


def mmdet_detector(cfg: DetectMmpose, key: str):
    """The ``detect`` backend: person boxes on the sampled frames, then the driver rule."""
    _require_stack()
    config = packaged_config(cfg.config, "mmdet", f"{key}.config")
    checkpoint = checkpoint_path(cfg.checkpoint, f"{key}.checkpoint", "MMDetection Faster R-CNN")
    batch_size = cfg.batch_size
    region = np.asarray(cfg.driver_region, dtype=np.float64)
    min_score = cfg.min_score
    device = resolve_device(cfg.device)
    model: PersonDetector | None = None  # loaded once the first frames decoded fine

    def detect(rec, calib, frames) -> Detections:
        nonlocal model
        n = len(frames.frame_id)
        det = empty_detections(frames.frame_id)
        _check_frame_count(rec, frames.frame_id)
        stream = read_frames(rec.video_path, frames.frame_id, (calib.width, calib.height))
        row = 0
        with tqdm(total=n, desc=f"detect {rec.file_id}", unit="frame", leave=False) as bar:
            for batch in _batches(stream, batch_size):
                model = model or PersonDetector(config, checkpoint, device)
                for (_fid, _img), (boxes, scores) in zip(batch, model([b[1] for b in batch]),
                                                         strict=True):
                    pick, det.rejected[row] = pick_driver(
                        boxes, scores, region, (calib.width, calib.height), min_score)
                    if pick is not None:
                        det.detected[row] = True
                        det.boxes[row] = boxes[pick]
                        det.scores[row] = scores[pick]
                    row += 1
                bar.update(len(batch))
        return det

    return detect


def mmpose_estimator(cfg: Mmpose, key: str):
    """The ``keypoints2d`` backend: HRNet keypoints inside every detected driver box."""
    _require_stack()
    config = packaged_config(cfg.config, "mmpose", f"{key}.config")
    checkpoint = checkpoint_path(cfg.checkpoint, f"{key}.checkpoint", "MMPose HRNet")
    batch_size = cfg.batch_size
    device = resolve_device(cfg.device)
    model: TopDownEstimator | None = None  # loaded once the first frames decoded fine

    def estimate(rec, calib, frames, det: Detections) -> Keypoints2D:
        nonlocal model
        n = len(det.frame_id)
        kp = Keypoints2D(frame_id=det.frame_id.copy(), detected=det.detected.copy(),
                         xy=np.full((n, 17, 2), np.nan), scores=np.full((n, 17), np.nan))
        rows = np.flatnonzero(det.detected)
        stream = zip(rows.tolist(), read_frames(rec.video_path, det.frame_id[rows],
                                                (calib.width, calib.height)), strict=True)
        with tqdm(total=len(rows), desc=f"keypoints2d {rec.file_id}", unit="frame",
                  leave=False) as bar:
            for batch in _batches(stream, batch_size):
                model = model or TopDownEstimator(config, checkpoint, device)
                idx = [b[0] for b in batch]
                xy, scores = model([b[1][1] for b in batch], det.boxes[idx])
                kp.xy[idx] = xy
                kp.scores[idx] = scores
                bar.update(len(batch))
        return kp

    return estimate
