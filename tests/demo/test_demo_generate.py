"""The embedded demo with tiny sizes: determinism, layout, counts, and the properties the
pipeline relies on (Drive&Act-like annotation rates, exact synthetic projections)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from cliutil import demo_section

from cabinlift.camera import INNER_MIRROR
from cabinlift.demo.generate import generate, recordings
from cabinlift.errors import CabinliftError
from cabinlift.formats import (
    activity_at,
    discover_recordings,
    load_synthetic,
    read_activities,
    read_annotation,
    read_calibration,
    read_openpose3d,
)
from cabinlift.skeleton import SYNTHETIC_VIEWS

TINY = demo_section(**{"seed": 7, "real.subjects": 3, "real.single_run_subjects": [2],
                        "real.seconds_per_run": 40.0, "synthetic.humans": 2,
                        "synthetic.poses_per_human": 6})


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    return out, generate(out, TINY, workers=1)


def test_deterministic_and_worker_independent(demo, tmp_path: Path) -> None:
    out, summary = demo
    again = generate(tmp_path, TINY, workers=2)
    assert again == summary
    assert _digest(out) == _digest(tmp_path)
    other = generate(tmp_path / "other", TINY.model_copy(update={"seed": 8}), workers=1)
    assert other["real"]["frames"] == summary["real"]["frames"]
    assert _digest(tmp_path / "other") != _digest(out)


def test_layout_and_counts(demo) -> None:
    out, summary = demo
    real = out / "drive_and_act"
    recs = discover_recordings(real)
    assert [r.subject for r in recs] == [1, 1, 2, 3, 3]
    assert summary["real"]["runs"] == 5 and summary["real"]["frames"] == 5 * 40 * 30
    for r in recs:
        assert re.fullmatch(r"run[12]b?_\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d", r.run), r.run
        t = read_openpose3d(r.pose3d_path)
        assert len(t) == 1200 and t.frame_id[0] == 0
        np.testing.assert_allclose(np.diff(t.timestamp), 1 / 30, atol=2e-6)
        ts = np.loadtxt(r.timestamps_path)
        np.testing.assert_allclose(ts, t.timestamp, atol=1e-6)
        assert read_calibration(r.calibration_path) == INNER_MIRROR
    chunks = read_activities(real / "activities_3s" / "inner_mirror" / "midlevel.chunks_90.csv")
    assert len(chunks) == summary["real"]["activity_chunks"] > 0
    assert set(chunks["file_id"]) == {r.file_id for r in recs}
    assert ((chunks["frame_end"] - chunks["frame_start"]) <= 90).all()
    assert (chunks["frame_end"] <= 1200).all()
    labels = activity_at(chunks, recs[0].file_id, np.arange(1200))
    assert (labels != "").mean() > 0.5  # most frames are inside an annotated activity
    syn = out / "synthetic_cabin"
    files = sorted((syn / "gt_jsons").glob("*.json"))
    assert len(files) == summary["synthetic"]["images"] == 2 * 6 * 10
    assert (syn / "images").is_dir() and not any((syn / "images").iterdir())
    views = {read_annotation(f).view for f in files}
    assert views == set(SYNTHETIC_VIEWS)


def test_recordings_are_known_without_writing_them(demo) -> None:
    """What ``cabinlift check`` knows of the demo before the demo stage has run is what it
    writes: every file id, its subject and its frames."""
    out, _ = demo
    written = {r.file_id: (r.subject, len(read_openpose3d(r.pose3d_path).frame_id))
               for r in discover_recordings(out / "drive_and_act")}
    assert recordings(TINY) == written
    assert len(written) == 5 and {n for _, n in written.values()} == {40 * 30}


def test_real_annotation_rates(demo) -> None:
    rate = demo[1]["real"]["annotation_rate"]
    for j in ("lShoulder", "rShoulder", "nose", "rEye", "neck"):
        assert rate[j] > 0.85, (j, rate[j])
    for j in ("lElbow", "rElbow", "lWrist", "rWrist", "lHip", "rHip", "lEye", "rEar"):
        assert rate[j] > 0.7, (j, rate[j])
    assert rate["lEar"] < 0.6 and rate["lEar"] < rate["rEar"] - 0.3
    assert rate["lKnee"] < 0.04 and rate["rKnee"] < 0.04
    for j in ("lAnkle", "rAnkle", "background", "lBigToe", "rHeel"):
        assert rate[j] == 0.0


def test_real_values_are_drive_act_like(demo) -> None:
    recs = discover_recordings(demo[0] / "drive_and_act")
    t = read_openpose3d(recs[0].pose3d_path)
    xyz, valid = t.joints(["nose", "lShoulder", "rShoulder", "lHip", "rHip"])
    assert (t.p[t.p > 0] <= 1).all()
    pts = xyz[valid]
    assert (pts[:, 2] > 0.4).all() and (pts[:, 2] < 1.6).all()  # metres in front of the camera
    # driver off to one side of the inner_mirror image, upper body inside the frame
    uv = INNER_MIRROR.project(xyz[valid.all(1)].mean(1))
    assert 640 < np.median(uv[:, 0]) < 1100 and 200 < np.median(uv[:, 1]) < 800
    sw = np.linalg.norm(xyz[:, 1] - xyz[:, 2], axis=-1)[valid[:, 1] & valid[:, 2]]
    assert 0.28 < np.median(sw) < 0.45


def test_synthetic_2d_is_projection_of_3d(demo) -> None:
    files = sorted((demo[0] / "synthetic_cabin" / "gt_jsons").glob("*.json"))
    names = set()
    for f in files[::7]:
        a = read_annotation(f)
        names.add(a.img_name)
        k = a.camera_parameters["intrinsics"]
        (h,) = a.humans
        z = h.keypoints3d[:, 2]
        ok = np.abs(z) > 0.05
        uv = np.stack([k["fx"] * h.keypoints3d[:, 0] / z + k["cx"],
                       k["fy"] * h.keypoints3d[:, 1] / z + k["cy"]], 1)
        np.testing.assert_allclose(h.keypoints2d[ok], uv[ok], atol=0.02)
        assert len(h.keypoints2d) >= 17 and set(np.unique(h.visibility)) <= {0, 1, 2}
        assert h.name in ("human_01", "human_02")
    assert len(names) == len(files[::7])


def test_synthetic_loads_and_differs_from_real_view(demo) -> None:
    d = load_synthetic(demo[0] / "synthetic_cabin", ["Dashboard", "Front", "OMS_01"], workers=1)
    assert d["kp3d"].shape == (2 * 6 * 3, 17, 3)
    # complete 3D: every joint present, metres; the upper body in front of the camera
    assert np.isfinite(d["kp3d"]).all() and (d["kp3d"][:, :13, 2] > 0.1).all()
    shoulders = np.linalg.norm(d["kp3d"][:, 5] - d["kp3d"][:, 6], axis=-1)
    assert (shoulders > 0.2).all() and (shoulders < 0.55).all()


def test_refuses_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "drive_and_act").mkdir()
    (tmp_path / "drive_and_act" / "mine.txt").write_text("user data")
    with pytest.raises(CabinliftError, match="not written by the demo generator"):
        generate(tmp_path, TINY, workers=1)
    assert (tmp_path / "drive_and_act" / "mine.txt").exists()
