import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cabinlift.errors import CabinliftError
from cabinlift.keypoints.interim import Detections
from cabinlift.keypoints.precomputed import (
    load_results,
    precomputed_detector,
    precomputed_estimator,
)

FILE_ID = "vp1/run1b_2018-05-29-14-02-47.ids_1"
REC = SimpleNamespace(file_id=FILE_ID)
CALIB = SimpleNamespace(width=1280, height=1024)
REGION = [0.4, 0.0, 1.0, 1.0]


def _kp(x0: float, y0: float) -> list[float]:
    return [v for j in range(17) for v in (x0 + 10 * j, y0 + 5 * j, 0.5 + 0.01 * j)]


def _coco(tmp_path: Path) -> Path:
    doc = {
        "images": [
            {"id": 10, "file_name": f"frames/{FILE_ID}/000000.png"},
            {"id": 11, "file_id": FILE_ID, "frame_id": 30},
            {"id": 12, "file_name": f"{FILE_ID}/frame_000060.jpg"},
            {"id": 13, "file_name": "vp2/run1_2018-05-02-10-17-17.ids_1/000000.png"},
        ],
        "annotations": [
            # frame 0: passenger (left, higher score) and driver (right)
            {"image_id": 10, "category_id": 1, "keypoints": _kp(100, 300), "score": 0.95,
             "bbox": [80, 280, 300, 500]},
            {"image_id": 10, "category_id": 1, "keypoints": _kp(700, 300), "score": 0.90,
             "bbox": [680, 280, 300, 500]},
            # frame 30: driver without bbox (box from the keypoints)
            {"image_id": 11, "category_id": 1, "keypoints": _kp(720, 310), "score": 0.80},
            # frame 60: only a non-person category
            {"image_id": 12, "category_id": 2, "keypoints": _kp(700, 300), "score": 0.99},
            {"image_id": 13, "category_id": 1, "keypoints": _kp(700, 300), "score": 0.99},
        ],
    }
    path = tmp_path / "kp.json"
    path.write_text(json.dumps(doc))
    return path


def test_detector_applies_the_driver_rule_and_estimator_matches_it(tmp_path):
    path = _coco(tmp_path)
    frames = SimpleNamespace(frame_id=np.array([0, 30, 60, 90]))
    det = precomputed_detector({"results": str(path), "images": None, "min_score": 0.0,
                                "driver_region": REGION}, "detect.precomputed")(REC, CALIB, frames)
    assert det.detected.tolist() == [True, True, False, False]
    np.testing.assert_allclose(det.boxes[0], [680, 280, 980, 780])
    np.testing.assert_allclose(det.boxes[1], [720, 310, 880, 390])  # keypoint extent
    assert det.scores[:2].tolist() == [0.90, 0.80]

    kp = precomputed_estimator({"results": str(path), "images": None, "min_iou": 0.5},
                               "keypoints2d.precomputed")(REC, CALIB, frames, det)
    assert kp.detected.tolist() == [True, True, False, False]
    np.testing.assert_allclose(kp.xy[0, 0], [700, 300])
    np.testing.assert_allclose(kp.xy[0, 16], [860, 380])
    np.testing.assert_allclose(kp.scores[1, :2], [0.5, 0.51])
    assert np.isnan(kp.xy[2]).all()


def test_estimator_on_other_boxes_needs_overlap(tmp_path):
    path = _coco(tmp_path)
    det = Detections(frame_id=np.array([0, 30]), detected=np.array([True, True]),
                     boxes=np.array([[690, 290, 990, 790], [0, 0, 50, 50]], dtype=float),
                     scores=np.array([0.9, 0.9]))
    kp = precomputed_estimator({"results": str(path), "min_iou": 0.5},
                               "keypoints2d.precomputed")(REC, CALIB, SimpleNamespace(), det)
    assert kp.detected.tolist() == [True, False]
    np.testing.assert_allclose(kp.xy[0, 0], [700, 300])  # the driver, not the passenger


def test_results_list_with_a_separate_image_list(tmp_path):
    doc = json.loads(_coco(tmp_path).read_text())
    (tmp_path / "results.json").write_text(json.dumps(doc["annotations"]))
    (tmp_path / "images.json").write_text(json.dumps({"images": doc["images"]}))
    index = load_results(tmp_path / "results.json", tmp_path / "images.json")
    assert sorted(index) == [(FILE_ID, 0), (FILE_ID, 30),
                             ("vp2/run1_2018-05-02-10-17-17.ids_1", 0)]
    assert len(index[(FILE_ID, 0)]) == 2
    with pytest.raises(CabinliftError, match="results.json: a COCO results list needs"):
        load_results(tmp_path / "results.json", None)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["annotations"][1].update(keypoints=[1.0] * 48),
     r"kp.json: annotations\[1\]: key 'keypoints' must hold 17 x \[x, y, score\] = 51 numbers, got 48"),
    (lambda d: d["annotations"][0].update(image_id=99),
     r"kp.json: annotations\[0\]: image_id 99 is not in the image list"),
    (lambda d: d["images"][2].update(file_name="somewhere/frame.png"),
     r"kp.json: images\[2\]: cannot tell its Drive&Act frame"),
    (lambda d: d.pop("annotations"), r"kp.json: expected keys 'images' and 'annotations'"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, "x", 4]), r"kp.json: annotations\[0\]: .*numbers"),
])
def test_bad_files_are_named_with_the_entry(tmp_path, mutate, message):
    path = _coco(tmp_path)
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(CabinliftError, match=message):
        load_results(path, None)


def test_missing_and_malformed_file(tmp_path):
    with pytest.raises(CabinliftError, match="nope.json: file not found"):
        load_results(tmp_path / "nope.json", None)
    (tmp_path / "bad.json").write_text("{\n  'images': ")
    with pytest.raises(CabinliftError, match="bad.json: line 2: not valid JSON"):
        load_results(tmp_path / "bad.json", None)
