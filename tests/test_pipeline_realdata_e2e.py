"""End to end on data in the real formats: the pipeline on Drive&Act / SyntheticCabin-layout
fixtures, with the paper's MMDetection + MMPose models (random weights, run for real on the
fixture videos; ``dvc exp run -S``), and as a user sets it up (``cabinlift data init``, ``data
check``, ``dvc repro``) with 2D keypoints imported from a COCO-format JSON."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from dvcrepo import DVC, base_params, make_repo, run
from realformat import add_videos, build

from cabinlift.camera import Calibration
from cabinlift.formats.drive_act import discover_recordings, read_calibration, read_openpose3d
from cabinlift.keypoints.interim import interim_path, read_detections, read_keypoints
from cabinlift.skeleton import COCO17_TO_BODY25

pytestmark = pytest.mark.slow
STRIDE = 5


def fixture_params() -> dict:
    params = base_params()
    params["data"]["real"]["frame_stride"] = STRIDE
    params["data"]["synthetic"]["cache_dir"] = None
    # the demo stage still runs (its folder is not used): keep it tiny
    params["demo"]["real"].update(subjects=1, runs_per_subject=1, single_run_subjects=[],
                                  seconds_per_run=20.0)
    params["demo"]["synthetic"].update(humans=1, poses_per_human=1, views=["Front"])
    params["models"] = ["simplebl"]
    # the data formats and the 2D backends are under test here, not numerics: native numerics
    # keep oneDNN's convolutions for the MMLab models (portable numerics switch oneDNN off)
    params["numerics"]["mode"] = "native"
    params["settings"] = ["pct50", "subj2"]
    params["subsets"]["settings"] = {
        "pct50": {"subjects": 1, "fraction": 0.5, "repetitions": 2, "seeds": 1},
        "subj2": {"subjects": 2, "fraction": 1.0, "repetitions": 1, "seeds": 1},
    }
    params["normalize"]["real_splits"] = {"train": [1, 2], "val": [3], "test": [4]}
    params["normalize"]["synthetic_splits"] = {
        "train": ["human_01", "human_02"], "val": ["human_03"], "test": ["human_04"]}
    params["train"].update(max_epochs=2, val_every=1)
    params["lifters"]["simplebl"].update(linear_size=32, num_stage=1, dropout=0.5)
    for stage in ("detect", "keypoints2d"):
        params[stage]["mmpose"].update(device="cpu", batch_size=2)
    # random weights: any person box anywhere is "the driver"
    params["detect"]["mmpose"].update(min_score=0.0, driver_region=[0.0, 0.0, 1.0, 1.0])
    return params


def _table(repo: Path) -> dict:
    table = json.loads((repo / "metrics" / "table1.json").read_text())
    cells = [v for init in table["simplebl"].values() for v in init.values()]
    # two settings per init, plus the pre-trained weights before fine-tuning ("none")
    assert len(cells) == 5 and all(math.isfinite(v) for v in cells), table
    assert list(table["simplebl"]["pretrained"])[0] == "none"
    return table


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    return build(tmp_path_factory.mktemp("datasets"), videos=False)


def coco_keypoints(real: Path, path: Path) -> None:
    """A COCO-format keypoint file for every frame: the driver (projected ground truth) and a
    higher-scoring passenger on the left of the image that the driver rule must ignore."""
    images, anns = [], []
    for rec in discover_recordings(real):
        calib: Calibration = read_calibration(rec.calibration_path)
        table = read_openpose3d(rec.pose3d_path)
        xyz, valid = table.joints(COCO17_TO_BODY25)
        for f, fid in enumerate(table.frame_id.tolist()):
            if not valid[f].any():
                continue
            image_id = len(images)
            images.append({"id": image_id, "file_name": f"{rec.file_id}/{fid:06d}.png"})
            xy = calib.project(np.where(valid[f][:, None], xyz[f], xyz[f][valid[f]].mean(0)))
            for dx, score in ((0.0, 0.9), (-600.0, 0.99)):
                pts = xy + [dx, 0.0]
                kp = np.concatenate([pts, np.full((17, 1), 0.9)], axis=1)
                lo, hi = pts.min(0), pts.max(0)
                anns.append({"image_id": image_id, "category_id": 1, "score": score,
                             "keypoints": kp.ravel().round(2).tolist(),
                             "bbox": [*lo.round(2).tolist(), *(hi - lo).round(2).tolist()]})
    path.write_text(json.dumps({"images": images, "annotations": anns}))


@pytest.mark.mmlab
def test_mmpose_backend_end_to_end(tmp_path, data):
    from mmlab_checkpoints import random_checkpoints

    real, synthetic = data
    add_videos(real)
    det_ckpt, pose_ckpt = random_checkpoints(tmp_path)
    repo = make_repo(tmp_path / "repo", fixture_params(), commit=True)
    run(DVC + ["exp", "run", "-S", f"data.real.root={real}", "-S", f"data.synthetic.root={synthetic}",
               "-S", "detect.backend=mmpose", "-S", "keypoints2d.backend=mmpose",
               "-S", f"detect.mmpose.checkpoint={det_ckpt}",
               "-S", f"keypoints2d.mmpose.checkpoint={pose_ckpt}",
               # ~9 s of CPU inference per frame with the paper's models: only frame 0 of each
               # run (vp2's first run has no person there; vp2 tests, vp3 validates)
               "-S", "data.real.frame_stride=12", "-S", "normalize.real_splits.train=[1,4]",
               "-S", "normalize.real_splits.test=[2]"], repo, timeout=1800)
    _table(repo)
    recs = discover_recordings(real)
    outputs = {}
    for rec in recs:
        det_path = interim_path(repo / "data" / "interim" / "detections", rec.file_id, "detections")
        kp_path = interim_path(repo / "data" / "interim" / "keypoints2d", rec.file_id, "keypoints2d")
        det, kp = read_detections(det_path), read_keypoints(kp_path)
        assert det.frame_id.tolist() == [0]
        assert det.detected.all()  # random weights still find boxes (min_score 0)
        assert np.all((det.boxes[:, 0] < det.boxes[:, 2]) & (det.boxes[:, 2] <= 1280 + 1))
        assert np.isfinite(kp.xy[kp.detected]).all()
        outputs[det_path], outputs[kp_path] = det_path.read_bytes(), kp_path.read_bytes()

    # A stage killed after some recordings resumes from .cache/ (DVC has wiped its outputs):
    # forget one finished recording of keypoints2d and force both stages to run again.
    sorted((repo / ".cache" / "keypoints2d").glob("*.csv"))[3].unlink()
    log = run(DVC + ["repro", "--force", "--single-item", "detect", "keypoints2d"], repo).stdout
    resumed = [json.loads(line)["resumed_recordings"] for line in log.splitlines()
               if line.startswith("{")]
    assert resumed == [len(recs), len(recs) - 1], log
    for path, data in outputs.items():
        assert path.read_bytes() == data


#: Virtual humans named as a SyntheticCabin copy might name them, unlike the demo's human_NN.
HUMANS = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay"]


def test_data_check_init_and_repro_on_copies_with_their_own_names(tmp_path):
    """A user's path: `data init` on a Drive&Act-format root (subjects vp1-vp15, as the real
    data set) and a SyntheticCabin-format root whose humans are named their own way, `data
    check`, then `dvc repro` through the precomputed backend (the keypoints of a COCO-format
    file, a passenger among them), with no hand edit of params.yaml."""
    real, synthetic = build(tmp_path / "datasets", videos=False, subjects=15, humans=6,
                            poses_per_human=2, human_names=HUMANS)
    kp_json = tmp_path / "keypoints2d_coco.json"
    coco_keypoints(real, kp_json)
    params = fixture_params()
    params["normalize"] = base_params()["normalize"]  # the paper's splits, params.yaml's humans
    repo = make_repo(tmp_path / "repo", params, commit=True)
    cabinlift = [sys.executable, "-m", "cabinlift"]
    run(cabinlift + ["data", "init", "--drive-act", str(real), "--synthetic", str(synthetic),
                     "--keypoints", str(kp_json)], repo)
    written = yaml.safe_load((repo / "params.yaml").read_text())
    assert written["normalize"]["synthetic_splits"] == {
        "train": ["Ada", "Ben", "Cleo"], "val": ["Dev", "Eli"], "test": ["Fay"]}
    check = run(cabinlift + ["data", "check"], repo)
    assert check.stdout.rstrip().endswith("0 problems"), check.stdout
    assert "15 subjects, 29 recordings" in check.stdout
    run(DVC + ["repro"], repo)
    _table(repo)
    assert [p.name for p in (repo / "data" / "raw" / "demo").iterdir()] == ["UNUSED.txt"]
    report = json.loads((repo / "metrics" / "normalize.json").read_text())
    assert report["real"]["kept"]["test"] > 0 and report["synthetic"]["kept"]["train"] > 0
    # the driver (not the passenger, 600 px to the left) was imported
    det = (repo / "data" / "interim" / "detections").rglob("*.csv")
    xs = [float(line.split(",")[2]) for p in det for line in p.read_text().splitlines()[1:]
          if line.split(",")[1] == "1"]
    assert xs and min(xs) > 0.4 * 1280 - 300
    # the offline report of this run: its Table 1 and the data it came from
    page = (repo / "metrics" / "report.html").read_text()
    assert 'id="table1"' in page and "PT SimpleBL" in page and str(real) in page
