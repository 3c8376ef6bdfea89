import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cabinlift.config import DetectPrecomputed, KeypointsPrecomputed
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
    det = precomputed_detector(DetectPrecomputed(results=str(path), images=None, min_score=0.0,
                                                 driver_region=list(REGION)),
                               "detect.precomputed")(REC, CALIB, frames)
    assert det.detected.tolist() == [True, True, False, False]
    np.testing.assert_allclose(det.boxes[0], [680, 280, 980, 780])
    np.testing.assert_allclose(det.boxes[1], [720, 310, 880, 390])  # keypoint extent
    assert det.scores[:2].tolist() == [0.90, 0.80]

    kp = precomputed_estimator(KeypointsPrecomputed(results=str(path), images=None, min_iou=0.5),
                               "keypoints2d.precomputed")(REC, CALIB, frames, det)
    assert kp.detected.tolist() == [True, True, False, False]
    np.testing.assert_allclose(kp.xy[0, 0], [700, 300])
    np.testing.assert_allclose(kp.xy[0, 16], [860, 380])
    np.testing.assert_allclose(kp.scores[1, :2], [0.5, 0.51])
    assert np.isnan(kp.xy[2]).all()


def test_an_unlabelled_keypoint_is_written_without_coordinates(tmp_path):
    """COCO's ``0, 0, 0`` (v = 0) is no point at (0, 0): the interim CSV leaves it empty, and
    a labelled occluded keypoint (v = 1) keeps its place."""
    path = _coco(tmp_path)
    doc = json.loads(path.read_text())
    kp = doc["annotations"][2]["keypoints"]  # the driver of frame 30
    kp[3 * 3: 3 * 4] = [0, 0, 0]  # l_ear unlabelled
    kp[3 * 9 + 2] = 1  # l_wrist labelled, occluded
    path.write_text(json.dumps(doc))
    frames = SimpleNamespace(frame_id=np.array([30]))
    det = precomputed_detector(DetectPrecomputed(results=str(path), images=None, min_score=0.0,
                                                 driver_region=list(REGION)),
                               "detect.precomputed")(REC, CALIB, frames)
    out = precomputed_estimator(KeypointsPrecomputed(results=str(path), images=None, min_iou=0.0),
                                "keypoints2d.precomputed")(REC, CALIB, frames, det)
    np.testing.assert_allclose(det.boxes[0], [720, 310, 880, 390])  # not stretched to (0, 0)
    assert np.isnan(out.xy[0, 3]).all() and out.scores[0, 3] == 0
    np.testing.assert_allclose(out.xy[0, 9], [720 + 90, 310 + 45])
    assert np.isfinite(np.delete(out.xy[0], 3, axis=0)).all()


def test_estimator_on_other_boxes_needs_overlap(tmp_path):
    path = _coco(tmp_path)
    det = Detections(frame_id=np.array([0, 30]), detected=np.array([True, True]),
                     boxes=np.array([[690, 290, 990, 790], [0, 0, 50, 50]], dtype=float),
                     scores=np.array([0.9, 0.9]), rejected=np.array(["", ""], dtype=object))
    kp = precomputed_estimator(KeypointsPrecomputed(results=str(path), images=None, min_iou=0.5),
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
    (lambda d: d["annotations"][3].update(category_id="person"),
     r"kp.json: annotations\[3\]: key 'category_id' must be an integer category id \(COCO's "
     r"person is 1; without the key an entry is a person\), got 'person'"),
    (lambda d: d["annotations"][3].update(category_id=None),
     r"kp.json: annotations\[3\]: key 'category_id' must be an integer .*, got None"),
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


# -- the detect and keypoints2d stages on a Drive&Act root -----------------------------------


def _box_instance(image_id: int, cx: float, score: float) -> dict:
    """A person 300 x 500 px centred at x = ``cx`` px, y = 500 px."""
    return {"image_id": image_id, "category_id": 1, "score": score,
            "bbox": [cx - 150, 250, 300, 500], "keypoints": _kp(cx - 80, 300)}


@pytest.fixture(scope="module")
def poses_only(tmp_path_factory) -> tuple[Path, Path]:
    """A Drive&Act root with only what the precomputed backend reads (openpose_3d CSVs and
    calibration JSONs: no videos, timestamps or activities), and COCO results for it where in
    every recording frame 0 has the driver (right, centre x 0.7), frame 5 only the passenger
    (left, centre x 0.2) and frame 10 nobody; in the first recording frame 10 has a driver-side
    box of score 0.2."""
    from realformat import build

    from cabinlift.formats.drive_act import discover_recordings

    tmp = tmp_path_factory.mktemp("poses_only")
    real, _ = build(tmp / "data", videos=False)
    shutil.rmtree(real / "activities_3s")
    for stamps in real.rglob("*.timestamps"):
        stamps.unlink()
    assert not list(real.rglob("*.mp4"))
    images, anns = [], []
    for k, rec in enumerate(discover_recordings(real)):
        for frame in (0, 5, 10):
            image_id = 100 * k + frame
            images.append({"id": image_id, "file_id": rec.file_id, "frame_id": frame})
            if frame == 0:
                anns.append(_box_instance(image_id, 0.7 * 1280, 0.9))
            elif frame == 5:
                anns.append(_box_instance(image_id, 0.2 * 1280, 0.95))
            elif k == 0:
                anns.append(_box_instance(image_id, 0.7 * 1280, 0.2))
    results = tmp / "kp.json"
    results.write_text(json.dumps({"images": images, "annotations": anns}))
    return real, results


def _stage_params(tmp_path: Path, real: Path, results: Path, region: list[float]) -> Path:
    from cliutil import write_params
    from dvcrepo import base_params

    return write_params(tmp_path / "params.yaml", base_params(), **{
        "data.real.root": str(real), "data.real.frame_stride": 5,
        "detect.backend": "precomputed", "keypoints2d.backend": "precomputed",
        "detect.precomputed.results": str(results), "detect.precomputed.min_score": 0.3,
        "detect.precomputed.driver_region": region,
        "keypoints2d.precomputed.results": str(results)})


def test_detect_counts_rejected_frames_by_reason_and_warns_about_the_region(
        tmp_path, capsys, poses_only):
    """7 recordings x frames 0, 5, 10, less frame 5 of the second (missing from its CSV): 20
    sampled frames; 7 drivers, 6 passenger-only frames (region), 1 low score, 6 empty."""
    from cabinlift import cli
    from cabinlift.formats.drive_act import discover_recordings
    from cabinlift.keypoints.interim import interim_path

    real, results = poses_only
    params = _stage_params(tmp_path, real, results, [0.4, 0.0, 1.0, 1.0])
    assert cli.main(["--params", str(params), "detect", "--out", str(tmp_path / "det")]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"frames": 20, "detected": 7, "resumed_recordings": 0, "rejected": {
        "no_person_box": 6, "below_min_score": 1, "outside_driver_region": 6}}
    lines = [line for line in err.replace("\r", "\n").splitlines()
             if line.startswith("detect: ") and "%|" not in line]  # not the progress bar
    assert lines == [
        "detect: 20 sampled frames, 7 with a driver box; rejected: 6 without a person box, 1 with "
        "person boxes only below min_score, 6 with person boxes only outside driver_region",
        "detect: warning: 6 of 20 sampled frames (30.0 %) have person boxes that pass min_score "
        "but lie outside detect.precomputed.driver_region [0.4, 0.0, 1.0, 1.0]; if the camera "
        "is not Drive&Act's inner_mirror (driver in the right part of the image), set "
        "detect.precomputed.driver_region to where the driver sits"]
    # the reasons are in the interim file, so a resumed recording still counts them
    first = interim_path(tmp_path / "det", discover_recordings(real)[0].file_id, "detections")
    assert [line.split(",")[-1] for line in first.read_text().splitlines()[1:]] == [
        "", "outside_driver_region", "below_min_score"]  # frames 0, 5, 10
    # keypoints2d needs no video either
    assert cli.main(["--params", str(params), "keypoints2d", "--detections", str(tmp_path / "det"),
                     "--out", str(tmp_path / "kp")]) == 0
    assert json.loads(capsys.readouterr().out)["with_keypoints"] == 7


def test_no_region_warning_when_the_region_is_the_whole_image(tmp_path, capsys, poses_only):
    from cabinlift import cli

    real, results = poses_only
    params = _stage_params(tmp_path, real, results, [0.0, 0.0, 1.0, 1.0])
    assert cli.main(["--params", str(params), "detect", "--out", str(tmp_path / "det")]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["rejected"] == {"no_person_box": 6, "below_min_score": 1,
                                           "outside_driver_region": 0}
    assert "warning" not in err
