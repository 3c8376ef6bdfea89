"""The simulated 2D detector's errors, in one home: the driver box a person detector draws around
a person's keypoints, and the keypoint errors of a top-down estimator inside that box.

The ``simulated`` backend applies them to projected Drive&Act ground truth
(:mod:`cabinlift.keypoints.simulated`, whose docstring states the model); pre-training with
``pretrain.data.input_2d: detector`` applies them to SyntheticCabin's exact 2D
(:mod:`cabinlift.synthetic_train`), with the same parameters (``detect.simulated``,
``keypoints2d.simulated``). Each function draws from ``rng`` in a fixed order, which the
backend's byte-identical outputs depend on.
"""

from __future__ import annotations

import numpy as np

from cabinlift.config import DetectSimulated, KeypointsSimulated
from cabinlift.skeleton import COCO17, COCO17_OKS_SIGMAS

#: The left/right arm joints a detector confuses (elbows, wrists); COCO-13 and COCO-17 share them.
ARM_PAIRS: tuple[tuple[int, int], ...] = (
    (COCO17.index("l_elbow"), COCO17.index("r_elbow")),
    (COCO17.index("l_wrist"), COCO17.index("r_wrist")))


def driver_box(px: np.ndarray, cfg: DetectSimulated, rng: np.random.Generator,
               image_size: tuple[int, int] | None = None) -> np.ndarray:
    """(F, 4) boxes ``x1, y1, x2, y2`` around (F, J, 2) pixel points (NaN: not in the image):
    widened by ``box_margin`` of the size on each side and ``head_margin`` above, each side
    jittered by ``box_jitter`` of the box size, then clipped to ``image_size`` (width, height)
    when given. Draws one normal per side."""
    lo = np.nanmin(px, axis=1)
    hi = np.nanmax(px, axis=1)
    size = hi - lo
    margin = cfg.box_margin * size
    x1 = lo[:, 0] - margin[:, 0]
    x2 = hi[:, 0] + margin[:, 0]
    y1 = lo[:, 1] - margin[:, 1] - cfg.head_margin * size[:, 1]
    y2 = hi[:, 1] + margin[:, 1]
    box = np.stack([x1, y1, x2, y2], axis=1)
    wh = np.repeat(np.stack([x2 - x1, y2 - y1], 1), 2, axis=1)
    box = box + rng.normal(0.0, cfg.box_jitter, size=box.shape) * wh
    if image_size is not None:
        width, height = image_size
        box[:, [0, 2]] = np.clip(box[:, [0, 2]], 0, width - 1)
        box[:, [1, 3]] = np.clip(box[:, [1, 3]], 0, height - 1)
    return box


def object_scale(box: np.ndarray) -> np.ndarray:
    """(F, 1) OKS's object scale of (F, 4) boxes: the square root of the area (at least 1 pixel;
    a missing box, NaN, counts as none)."""
    w = np.nan_to_num(box[:, 2] - box[:, 0])
    h = np.nan_to_num(box[:, 3] - box[:, 1])
    return np.sqrt(np.maximum(w * h, 1.0))[:, None]


def keypoint_errors(truth: np.ndarray, box: np.ndarray, hidden: np.ndarray,
                    cfg: KeypointsSimulated, rng: np.random.Generator) -> np.ndarray:
    """(F, J, 2) estimated keypoints of the true pixel keypoints ``truth`` (F, J, 2; the first J
    COCO joints, J >= 11) inside ``box`` (F, 4): Gaussian noise of standard deviation
    ``noise_scale * sigma_j * s`` (``hidden_noise_factor`` times more where ``hidden``), the left
    and right elbow+wrist swapped with probability ``swap_rate`` per frame and arm, a NaN point
    replaced by the frame's mean, every point clipped to the box. Draws the noise of every
    coordinate, then one uniform per frame and arm."""
    n, joints = truth.shape[:2]
    s = object_scale(box)
    sigma = np.asarray(COCO17_OKS_SIGMAS[:joints])[None, :]
    std = cfg.noise_scale * sigma * s * np.where(hidden, cfg.hidden_noise_factor, 1.0)
    noisy = truth + rng.normal(size=truth.shape) * std[..., None]
    for a, b in ARM_PAIRS:
        swap = rng.random(n) < cfg.swap_rate
        noisy[swap, a], noisy[swap, b] = noisy[swap, b].copy(), noisy[swap, a].copy()
    noisy = np.where(np.isnan(noisy), np.nanmean(noisy, axis=1, keepdims=True), noisy)
    noisy[..., 0] = np.clip(noisy[..., 0], box[:, None, 0], box[:, None, 2])
    noisy[..., 1] = np.clip(noisy[..., 1], box[:, None, 1], box[:, None, 3])
    return noisy
