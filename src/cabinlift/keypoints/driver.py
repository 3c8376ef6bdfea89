"""Which of the people a detector finds in an inner_mirror frame is the driver.

The rule (shared by the ``mmpose`` and ``precomputed`` backends): among the person boxes whose
score is at least ``min_score`` and whose centre lies inside ``region`` (fractions of the image,
``[x1, y1, x2, y2]``), the one with the highest score; ties go to the earlier box. No such box
means the frame counts as a missed detection. In Drive&Act's inner_mirror view the camera at the
rear-view mirror looks back into the cabin, so the (left-hand-drive) driver sits in the right
part of the image and the front passenger in the left part; the default region keeps box centres
in the right 60 % of the image.

A frame without a driver box is counted by why (the ``rejected`` column of the interim
detections): no person box at all, person boxes only below ``min_score``, or person boxes that
pass ``min_score`` but all lie outside the region. The last one depends on the camera: a
region that does not fit it drops frames silently, so the detect stage warns when more than
:data:`REGION_WARNING_SHARE` of the sampled frames are lost to the region alone.
"""

from __future__ import annotations

import numpy as np

NO_PERSON = "no_person_box"
LOW_SCORE = "below_min_score"
OUTSIDE_REGION = "outside_driver_region"
#: why a sampled frame has no driver box (``""`` where it has one)
REJECTIONS = (NO_PERSON, LOW_SCORE, OUTSIDE_REGION)
#: share of the sampled frames lost to ``driver_region`` alone above which the detect stage
#: warns that the region may not fit the camera (a few frames lose the driver to the region
#: in any view: a passenger detected while the driver is not)
REGION_WARNING_SHARE = 0.02


def pick_driver(
    boxes: np.ndarray, scores: np.ndarray, region: np.ndarray, image_size: tuple[int, int],
    min_score: float,
) -> tuple[int | None, str]:
    """``(index, "")`` of the driver's box among ``boxes`` (M, 4) x1, y1, x2, y2 in pixels, or
    ``(None, reason)`` with the reason from :data:`REJECTIONS`."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) == 0:
        return None, NO_PERSON
    width, height = image_size
    cx = 0.5 * (boxes[:, 0] + boxes[:, 2]) / width
    cy = 0.5 * (boxes[:, 1] + boxes[:, 3]) / height
    confident = scores >= min_score
    ok = confident & (cx >= region[0]) & (cx <= region[2]) & (cy >= region[1]) & (cy <= region[3])
    if not ok.any():
        return None, OUTSIDE_REGION if confident.any() else LOW_SCORE
    candidates = np.flatnonzero(ok)
    return int(candidates[np.argmax(scores[candidates])]), ""


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of one box ``a`` (4,) with each of ``b`` (M, 4), xyxy."""
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)  # noqa: E731
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
