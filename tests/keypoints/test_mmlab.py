"""The ``mmpose`` backend with the paper's real MMDetection / MMPose models (random weights,
built from the installed packages' configs) on fixture videos in the Drive&Act layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cliutil import one_line_error, write_params
from dvcrepo import base_params
from mmlab_checkpoints import DET_CONFIG, POSE_CONFIG, random_checkpoints
from realformat import build

from cabinlift.formats.drive_act import discover_recordings
from cabinlift.keypoints.mmlab import PersonDetector, TopDownEstimator, packaged_config
from cabinlift.keypoints.video import read_frames

pytestmark = pytest.mark.mmlab
SIZE = (1280, 1024)


@pytest.fixture(scope="module", autouse=True)
def native_numerics():
    """These tests compare the backend with MMLab's own inference, not numerics: they compute
    natively, with oneDNN's convolutions, which portable numerics switch off."""
    from cabinlift import numerics

    numerics.apply("native")
    yield
    numerics.apply("portable")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[Path, Path]:
    return random_checkpoints(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("data"), videos=True)[0]


@pytest.fixture(scope="module")
def frames(real) -> list[np.ndarray]:
    video = discover_recordings(real)[0].video_path
    return [img for _fid, img in read_frames(video, np.array([0, 10]), SIZE)]


def test_video_frames_are_the_sampled_ones(real, frames):
    assert len(frames) == 2 and frames[0].shape == (1024, 1280, 3)
    assert frames[0].max() > 100  # the drawn skeleton
    with pytest.raises(Exception, match="ends after 12 frames, but the openpose_3d CSV has frame 12"):
        list(read_frames(discover_recordings(real)[0].video_path, np.array([0, 12]), SIZE))


def test_batched_detector_matches_inference_detector(checkpoints, frames):
    from mmdet.apis import inference_detector

    det = PersonDetector(packaged_config(DET_CONFIG, "mmdet", "k"), checkpoints[0], "cpu")
    batched = det(frames)
    for img, (boxes, scores) in zip(frames, batched, strict=True):
        ref = inference_detector(det.model, img).pred_instances
        assert len(boxes) == len(ref.bboxes) > 0
        np.testing.assert_allclose(boxes, ref.bboxes.numpy(), atol=0.05)
        np.testing.assert_allclose(scores, ref.scores.numpy(), atol=1e-4)


def test_batched_estimator_matches_inference_topdown(checkpoints, frames):
    from mmpose.apis import inference_topdown

    est = TopDownEstimator(packaged_config(POSE_CONFIG, "mmpose", "k"), checkpoints[1], "cpu")
    boxes = np.array([[600, 150, 1000, 800], [500, 100, 1100, 900.0]])
    xy, scores = est(frames, boxes)
    assert xy.shape == (2, 17, 2) and scores.shape == (2, 17)
    for i, img in enumerate(frames):
        ref = inference_topdown(est.model, img, boxes[i][None], bbox_format="xyxy")[0].pred_instances
        np.testing.assert_allclose(xy[i], ref.keypoints[0], atol=1e-3)
        np.testing.assert_allclose(scores[i], ref.keypoint_scores[0], atol=1e-5)
        # top-down: the keypoints lie in (the padded aspect-ratio box around) the given box
        assert np.all(xy[i, :, 0] > boxes[i, 0] - 200) and np.all(xy[i, :, 0] < boxes[i, 2] + 200)


def _params(tmp_path: Path, real: Path, checkpoints, **changes) -> Path:
    p = base_params()
    p["data"]["real"].update(root=str(real), frame_stride=5)
    p["detect"]["backend"] = "mmpose"
    p["keypoints2d"]["backend"] = "mmpose"
    p["detect"]["mmpose"].update(checkpoint=str(checkpoints[0]), device="cpu", batch_size=2,
                                 min_score=0.0, driver_region=[0, 0, 1, 1],
                                 cache_dir=str(tmp_path / "cache" / "detect"))
    p["keypoints2d"]["mmpose"].update(checkpoint=str(checkpoints[1]), device="cpu", batch_size=4,
                                      cache_dir=str(tmp_path / "cache" / "keypoints2d"))
    return write_params(tmp_path / "params.yaml", p, **changes)


_error = one_line_error


def test_missing_checkpoint_names_the_param(tmp_path, capsys, real, checkpoints):
    params = _params(tmp_path, real, checkpoints,
                     **{"detect.mmpose.checkpoint": str(tmp_path / "absent.pth")})
    err = _error(capsys, ["--params", str(params), "detect", "--out", str(tmp_path / "d")])
    assert "key 'detect.mmpose.checkpoint': checkpoint file" in err and "absent.pth" in err
    assert "docs/real-data.md" in err


@pytest.mark.parametrize("damage, expected", [
    (lambda p: p.write_bytes(b"\x00not a video\x00" * 100), "cannot open the video"),
    (lambda p: p.unlink(), "video not found"),
])
def test_unreadable_video_is_one_line_naming_it(tmp_path, capsys, real, checkpoints, damage,
                                                expected):
    import shutil

    copy = tmp_path / "real"
    shutil.copytree(real, copy)
    video = discover_recordings(copy)[0].video_path  # fails before any model is loaded
    damage(video)
    params = _params(tmp_path, copy, checkpoints)
    err = _error(capsys, ["--params", str(params), "detect", "--out", str(tmp_path / "d")])
    assert f"{video}: " in err and expected in err
