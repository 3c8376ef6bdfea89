"""The ``mmpose`` backend's checks that run before any model is loaded (no MMLab needed)."""

from types import SimpleNamespace

import numpy as np
import pytest

from cabinlift.errors import CabinliftError
from cabinlift.keypoints.mmlab import (
    _check_frame_count,
    checkpoint_path,
    packaged_config,
    resolve_device,
)


def test_timestamps_bound_the_sampled_frames(tmp_path):
    stamps = tmp_path / "run1.ids_1.timestamps"
    stamps.write_text("".join(f"{1000 + i / 30:.6f}\n" for i in range(12)))
    rec = SimpleNamespace(timestamps_path=stamps, pose3d_path=tmp_path / "run1.csv")
    _check_frame_count(rec, np.array([0, 5, 11]))
    with pytest.raises(CabinliftError, match=r"timestamps: lists 12 video frames, but .*run1.csv "
                                             r"has frame 12"):
        _check_frame_count(rec, np.array([0, 12]))
    rec.timestamps_path = tmp_path / "absent.timestamps"
    _check_frame_count(rec, np.array([0, 99]))  # no timestamps: the decoder finds out


def test_param_errors_name_the_key(tmp_path):
    with pytest.raises(CabinliftError, match=r"key 'detect.mmpose.checkpoint': checkpoint file "
                                             r".*x.pth not found; download"):
        checkpoint_path(str(tmp_path / "x.pth"), "detect.mmpose.checkpoint", "Faster R-CNN")
    with pytest.raises(CabinliftError, match=r"'keypoints2d.mmpose.config' is 'nope.py': neither"):
        packaged_config("nope.py", "cabinlift", "keypoints2d.mmpose.config")
    cfg = tmp_path / "c.py"
    cfg.write_text("x = 1\n")
    assert packaged_config(str(cfg), "mmdet", "k") == cfg
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda:0")
