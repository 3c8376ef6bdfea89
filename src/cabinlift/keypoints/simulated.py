"""The ``simulated`` detection / 2D-keypoint backend: the demo's stand-in for Faster R-CNN + HRNet.

It projects the 3D ground truth through the recording's calibration (with lens distortion, as
the real detectors see distorted frames) and corrupts it with a documented detector-error model:

* **Driver box**: tight box around the projected COCO-13 joints, widened by ``box_margin`` of
  its size on each side (plus ``head_margin`` above for the skull), each side jittered by
  ``box_jitter`` of the box size, clipped to the image; score uniform in ``score_range``.
  A frame is missed with probability ``miss_rate`` (and always when nobody is annotated).
* **Keypoints**: per-joint Gaussian pixel noise with standard deviation
  ``noise_scale * sigma_j * s``, where ``sigma_j`` is COCO's OKS sigma of the joint and ``s`` the
  square root of the box area (OKS's object scale). Joints left unannotated in 3D (occluded) are
  placed where they are expected (temporal interpolation within the recording, else mirrored
  from the other side) with ``hidden_noise_factor`` times more noise and their score scaled by
  ``hidden_score_factor``; with probability ``swap_rate`` per frame and arm, the left and right
  elbow+wrist are swapped (the classic left/right confusion). Keypoints are clipped to the box,
  as a top-down heatmap estimator cannot leave its crop. The score is the OKS-style similarity
  ``exp(-d^2 / (2 (2 sigma_j s)^2))`` of the perturbed point, times a uniform factor in
  ``score_range``.

The box and keypoint errors live in :mod:`cabinlift.keypoints.detector_errors`, which
pre-training's noisy synthetic 2D (``pretrain.data.input_2d: detector``) shares.
"""

from __future__ import annotations

import zlib

import numpy as np

from cabinlift.camera import Calibration
from cabinlift.config import DetectSimulated, KeypointsSimulated
from cabinlift.keypoints.detector_errors import driver_box, keypoint_errors, object_scale
from cabinlift.keypoints.driver import NO_PERSON
from cabinlift.keypoints.interim import Detections, Keypoints2D
from cabinlift.skeleton import COCO13_FLIP_PAIRS, COCO17, COCO17_OKS_SIGMAS, NUM_JOINTS


def recording_rng(seed: int, file_id: str, stream: str) -> np.random.Generator:
    """A generator that depends only on the seed, the recording and the stage, so re-running
    one stage or one recording never changes another's numbers."""
    return np.random.default_rng([seed, zlib.crc32(file_id.encode()), zlib.crc32(stream.encode())])


def complete_joints(xyz: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Expected positions of every COCO-17 joint, annotated or not.

    xyz (F, 17, 3) with arbitrary values where ``valid`` (F, 17) is False. Unannotated joints are
    interpolated in time from the recording's annotated frames; a joint never annotated in the
    recording is mirrored from its left/right partner across the mid-plane between the shoulders;
    the nose falls back on the eyes; legs (never needed by the lifters) hang below the hips.
    """
    out = np.array(xyz, dtype=np.float64, copy=True)
    known = np.array(valid, dtype=bool, copy=True)
    frames = np.arange(len(out))
    for j in range(out.shape[1]):
        idx = np.flatnonzero(known[:, j])
        if 0 < len(idx) < len(out):
            for c in range(3):
                out[:, j, c] = np.interp(frames, idx, out[idx, j, c])
            known[:, j] = True
    ls, rs = COCO17.index("l_shoulder"), COCO17.index("r_shoulder")
    neck = 0.5 * (out[:, ls] + out[:, rs])
    axis = out[:, ls] - out[:, rs]
    axis /= np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-6)
    pairs = list(COCO13_FLIP_PAIRS) + [(13, 14), (15, 16)]
    for a, b in pairs:
        for dst, src in ((a, b), (b, a)):
            if not known[:, dst].any() and known[:, src].any():
                rel = out[:, src] - neck
                out[:, dst] = out[:, src] - 2 * np.sum(rel * axis, -1, keepdims=True) * axis
                known[:, dst] = True
    nose, le, re = COCO17.index("nose"), COCO17.index("l_eye"), COCO17.index("r_eye")
    if not known[:, nose].any():
        out[:, nose] = 0.5 * (out[:, le] + out[:, re])
    for hip, knee, ankle, shoulder in ((11, 13, 15, ls), (12, 14, 16, rs)):
        trunk = out[:, hip] - out[:, shoulder]
        if not known[:, knee].any():
            out[:, knee] = out[:, hip] + 0.8 * trunk
        if not known[:, ankle].any():
            out[:, ankle] = out[:, knee] + 0.8 * trunk
    return out


def simulate_detections(xyz17: np.ndarray, annotated: np.ndarray, calib: Calibration,
                        cfg: DetectSimulated, rng: np.random.Generator,
                        frame_id: np.ndarray) -> Detections:
    """Driver boxes for the sampled frames. xyz17: completed COCO-17 joints (F, 17, 3);
    annotated: (F, 17) which were annotated (a frame with none has nobody to detect)."""
    n = len(xyz17)
    px = calib.project(xyz17[:, :NUM_JOINTS])
    inside = calib.in_image(px)
    px = np.where(inside[..., None], px, np.nan)
    person = annotated.any(axis=1) & (inside.sum(axis=1) >= 3)
    detected = person & (rng.random(n) >= cfg.miss_rate)
    boxes = np.full((n, 4), np.nan)
    scores = np.zeros(n)
    lo, hi = cfg.score_range
    if detected.any():
        boxes[detected] = driver_box(px[detected], cfg, rng, (calib.width, calib.height))
        scores[detected] = rng.uniform(lo, hi, size=int(detected.sum()))
    ok = (boxes[:, 2] - boxes[:, 0] > 1) & (boxes[:, 3] - boxes[:, 1] > 1)
    detected &= ok
    boxes[~detected] = np.nan
    scores[~detected] = 0.0
    rejected = np.where(detected, "", NO_PERSON).astype(object)  # a miss finds nobody
    return Detections(frame_id=frame_id, detected=detected, boxes=boxes, scores=scores,
                      rejected=rejected)


def simulate_keypoints(xyz17: np.ndarray, annotated: np.ndarray, det: Detections,
                       calib: Calibration, cfg: KeypointsSimulated,
                       rng: np.random.Generator) -> Keypoints2D:
    """COCO-17 keypoints and scores inside each detected box (see the module docstring)."""
    truth = calib.project(xyz17)  # (F, 17, 2)
    hidden = ~annotated
    noisy = keypoint_errors(truth, det.boxes, hidden, cfg, rng)
    s = object_scale(det.boxes)
    sigma = np.asarray(COCO17_OKS_SIGMAS)[None, :]
    d2 = np.nansum((noisy - truth) ** 2, axis=-1)
    kappa = 2 * sigma * s
    lo, hi = cfg.score_range
    scores = np.exp(-d2 / (2 * kappa**2)) * rng.uniform(lo, hi, size=d2.shape)
    scores = np.where(hidden, scores * cfg.hidden_score_factor, scores)
    detected = det.detected.copy()
    noisy[~detected] = np.nan
    scores[~detected] = 0.0
    return Keypoints2D(frame_id=det.frame_id, detected=detected, xy=noisy, scores=scores)
