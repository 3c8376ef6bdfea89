"""The ``precomputed`` backend: 2D keypoints someone already computed, as COCO-format JSON.

Accepted input (``<stage>.precomputed.results``):

* a COCO-style object ``{"images": [...], "annotations": [...]}``, or
* a COCO *results* list ``[{"image_id", "keypoints", "score", ...}, ...]`` (what MMPose's and
  pycocotools' evaluators write) together with ``<stage>.precomputed.images``, a COCO JSON whose
  ``images`` list the results refer to.

Every image entry names its Drive&Act frame, either with explicit ``file_id``
(``vpN/<run>.ids_1``) and ``frame_id`` keys or through ``file_name`` ending in
``vpN/<run>.ids_1/<frame>.<ext>`` (e.g. ``vp1/run1b_2018-05-29-14-02-47.ids_1/000030.png``).
Each annotation holds ``keypoints`` (17 x [x, y, s], COCO order, pixels of the distorted frame;
``s`` is the keypoint score, or ``keypoint_scores`` is given separately), a person ``score`` and
optionally a ``bbox`` ``[x, y, width, height]`` (else the box around the keypoints found); only
``category_id`` 1 (COCO's person) or none is a person. Images that
are not sampled frames of a recording are ignored; sampled frames without an entry count as
missed detections. A keypoint of score (or COCO visibility ``v``) 0 was not found (COCO writes an
unlabelled keypoint as ``0, 0, 0``): it is written without coordinates (NaN), so it never counts
as a point at (0, 0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cabinlift.config import DetectPrecomputed, KeypointsPrecomputed
from cabinlift.errors import CabinliftError
from cabinlift.jsonfiles import read_json

_FILE_NAME = re.compile(r"(?:^|/)(vp\d+/[^/]+\.ids_\d+)/(?:\D*?)(\d+)\.[A-Za-z0-9]+$")


def found_keypoints(scores: np.ndarray) -> np.ndarray:
    """Which keypoints of a COCO entry were found: a visibility ``v`` (annotations: 0 unlabelled,
    1 labelled but occluded, 2 visible) or score (results lists) above 0."""
    return np.asarray(scores, dtype=np.float64) > 0


@dataclass
class Instance:
    box: np.ndarray  # (4,) x1, y1, x2, y2 pixels
    score: float
    keypoints: np.ndarray  # (17, 2) pixels
    keypoint_scores: np.ndarray  # (17,)


def load_json(path: Path) -> Any:
    """A COCO-format JSON file (keypoint results, or its images)."""
    return read_json(
        path, missing="{path}: file not found (expected COCO-format keypoint results JSON)",
        invalid="{path}: line {line}: not valid JSON: {msg}",
    )


def _frames_of_images(path: Path, images: Any) -> dict[Any, tuple[str, int]]:
    if not isinstance(images, list):
        raise CabinliftError(f"{path}: key 'images' must be a list of COCO image entries")
    out: dict[Any, tuple[str, int]] = {}
    for i, img in enumerate(images):
        where = f"{path}: images[{i}]"
        if not isinstance(img, dict) or "id" not in img:
            raise CabinliftError(f"{where}: expected an object with key 'id'")
        if "file_id" in img and "frame_id" in img:
            file_id, frame = str(img["file_id"]), img["frame_id"]
            if not isinstance(frame, int) or isinstance(frame, bool) or frame < 0:
                raise CabinliftError(f"{where}: key 'frame_id' must be a frame number, got {frame!r}")
        else:
            m = _FILE_NAME.search(str(img.get("file_name", "")).replace("\\", "/"))
            if m is None:
                raise CabinliftError(
                    f"{where}: cannot tell its Drive&Act frame: expected keys 'file_id' and "
                    f"'frame_id', or a 'file_name' ending in vpN/<run>.ids_1/<frame>.<ext>, got "
                    f"{img.get('file_name')!r}"
                )
            file_id, frame = m.group(1), int(m.group(2))
        out[img["id"]] = (file_id, int(frame))
    return out


def is_person(where: str, ann: dict[str, Any]) -> bool:
    """Whether an annotation is a person: ``category_id`` 1 (COCO's person, what COCO tools and
    MMPose write) or no ``category_id`` at all; anything but an integer is an error."""
    category = ann.get("category_id", 1)
    if not isinstance(category, int) or isinstance(category, bool):
        raise CabinliftError(
            f"{where}: key 'category_id' must be an integer category id (COCO's person is 1; "
            f"without the key an entry is a person), got {category!r}"
        )
    return category == 1


def parse_instance(where: str, ann: Any) -> Instance:
    if not isinstance(ann, dict):
        raise CabinliftError(f"{where}: expected an object")
    kp = ann.get("keypoints")
    if not isinstance(kp, list) or len(kp) != 51:
        n = len(kp) if isinstance(kp, list) else kp
        raise CabinliftError(f"{where}: key 'keypoints' must hold 17 x [x, y, score] = 51 numbers, got {n!r}")
    try:
        values = np.asarray(kp, dtype=np.float64).reshape(17, 3)
        kscores = (np.asarray(ann["keypoint_scores"], dtype=np.float64).reshape(17)
                   if "keypoint_scores" in ann else values[:, 2])
        score = float(ann.get("score", 1.0))
        bbox = ann.get("bbox")
        if bbox is not None:
            x, y, w, h = (float(v) for v in bbox)
            box = np.array([x, y, x + w, y + h])
        else:  # around the keypoints found (all, where none is)
            found = found_keypoints(kscores)
            points = values[found, :2] if found.any() else values[:, :2]
            box = np.concatenate([points.min(axis=0), points.max(axis=0)])
    except (TypeError, ValueError) as exc:
        raise CabinliftError(f"{where}: keypoints, keypoint_scores, score and bbox must be numbers "
                             f"(bbox: [x, y, width, height]): {exc}") from None
    if not (np.isfinite(values).all() and np.isfinite(box).all() and np.isfinite(score)):
        raise CabinliftError(f"{where}: keypoints, score and bbox must be finite numbers")
    return Instance(box=box, score=score, keypoints=values[:, :2], keypoint_scores=kscores)


def load_results(results: Path, images: Path | None) -> dict[tuple[str, int], list[Instance]]:
    """Person instances per ``(file_id, frame_id)``; every problem is one line naming the file
    and the entry."""
    results = Path(results)
    doc = load_json(results)
    if isinstance(doc, dict):
        if "annotations" not in doc or "images" not in doc:
            raise CabinliftError(f"{results}: expected keys 'images' and 'annotations' (COCO format)")
        frame_of = _frames_of_images(results, doc["images"])
        anns, ann_key = doc["annotations"], "annotations"
    elif isinstance(doc, list):
        if images is None:
            raise CabinliftError(
                f"{results}: a COCO results list needs the image list it refers to: set "
                f"'precomputed.images' to a COCO JSON with an 'images' key"
            )
        img_doc = load_json(Path(images))
        if not isinstance(img_doc, dict) or "images" not in img_doc:
            raise CabinliftError(f"{images}: expected a COCO JSON object with key 'images'")
        frame_of = _frames_of_images(Path(images), img_doc["images"])
        anns, ann_key = doc, ""
    else:
        raise CabinliftError(f"{results}: expected a COCO JSON object or a results list")
    if not isinstance(anns, list):
        raise CabinliftError(f"{results}: key 'annotations' must be a list")
    out: dict[tuple[str, int], list[Instance]] = {}
    for i, ann in enumerate(anns):
        where = f"{results}: {ann_key}[{i}]" if ann_key else f"{results}: entry {i}"
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        if image_id not in frame_of:
            raise CabinliftError(f"{where}: image_id {image_id!r} is not in the image list")
        if not is_person(where, ann):
            continue
        out.setdefault(frame_of[image_id], []).append(parse_instance(where, ann))
    return out


def precomputed_detector(cfg: DetectPrecomputed, key: str):
    """Detector over the precomputed instances: the driver rule of
    :mod:`cabinlift.keypoints.driver` applied to their boxes."""
    from cabinlift.keypoints.driver import pick_driver
    from cabinlift.keypoints.interim import Detections, empty_detections

    region = np.asarray(cfg.driver_region, dtype=np.float64)
    index = load_results(Path(cfg.results), Path(cfg.images) if cfg.images else None)

    def detect(rec, calib, frames) -> Detections:
        det = empty_detections(frames.frame_id)
        for i, fid in enumerate(frames.frame_id.tolist()):
            inst = index.get((rec.file_id, fid), [])
            pick, det.rejected[i] = pick_driver(np.array([x.box for x in inst]).reshape(-1, 4),
                                                np.array([x.score for x in inst]), region,
                                                (calib.width, calib.height), cfg.min_score)
            if pick is not None:
                det.detected[i] = True
                det.boxes[i] = inst[pick].box
                det.scores[i] = inst[pick].score
        return det

    return detect


def precomputed_estimator(cfg: KeypointsPrecomputed, key: str):
    """Keypoints of the precomputed instance that overlaps the detected driver box most (IoU at
    least ``min_iou``); with the ``precomputed`` detector that is the same instance."""
    from cabinlift.keypoints.driver import box_iou
    from cabinlift.keypoints.interim import Keypoints2D

    min_iou = cfg.min_iou
    index = load_results(Path(cfg.results), Path(cfg.images) if cfg.images else None)

    def estimate(rec, calib, frames, det) -> Keypoints2D:
        n = len(det.frame_id)
        kp = Keypoints2D(frame_id=det.frame_id.copy(), detected=np.zeros(n, bool),
                         xy=np.full((n, 17, 2), np.nan), scores=np.full((n, 17), np.nan))
        for i, fid in enumerate(det.frame_id.tolist()):
            inst = index.get((rec.file_id, fid), [])
            if not det.detected[i] or not inst:
                continue
            iou = box_iou(det.boxes[i], np.array([x.box for x in inst]))
            best = int(np.argmax(iou))
            if iou[best] >= min_iou:
                kp.detected[i] = True
                found = found_keypoints(inst[best].keypoint_scores)
                kp.xy[i] = np.where(found[:, None], inst[best].keypoints, np.nan)
                kp.scores[i] = inst[best].keypoint_scores
        return kp

    return estimate
