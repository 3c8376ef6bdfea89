"""The real-data readers on fixtures in the exact Drive&Act / SyntheticCabin layouts: known
answers for joint order, units, masks, frame stride, activities and the splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dvcrepo import base_params
from realformat import build

from cabinlift import config
from cabinlift.arrays import load_arrays
from cabinlift.formats.drive_act import activity_at, discover_recordings, read_activities
from cabinlift.keypoints.stages import run_detect, run_keypoints2d
from cabinlift.normalize import run_normalize
from cabinlift.skeleton import COCO13

STRIDE = 5
# Drive&Act (BODY_25) column names of COCO joints 0-12, in COCO order.
BODY25_OF_COCO13 = ["nose", "lEye", "rEye", "lEar", "rEar", "lShoulder", "rShoulder", "lElbow",
                    "rElbow", "lWrist", "rWrist", "lHip", "rHip"]


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> tuple[Path, Path, Path, dict]:
    tmp = tmp_path_factory.mktemp("readers")
    real, synthetic = build(tmp / "data", videos=False)
    params = base_params()
    params["data"]["real"].update(root=str(real), frame_stride=STRIDE)
    params["data"]["synthetic"].update(root=str(synthetic), cache_dir=None, workers=1)
    params["normalize"]["real_splits"] = {"train": [1, 2], "val": [3], "test": [4]}
    params["normalize"]["synthetic_splits"] = {
        "train": ["human_01", "human_02"], "val": ["human_03"], "test": ["human_04"]}
    # two training subjects: only settings they can fill
    params["settings"] = ["subj1"]
    params["subsets"]["settings"]["subj1"]["repetitions"] = 2
    params = config.build(params)
    run_detect(params, tmp / "det")
    run_keypoints2d(params, tmp / "det", tmp / "kp")
    report = run_normalize(params, tmp / "kp", tmp / "processed")
    return real, synthetic, tmp / "processed", report


def _all_real(processed_dir: Path) -> dict[str, np.ndarray]:
    parts = [load_arrays(processed_dir / f"real_{s}.npz") for s in ("train", "val", "test")]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def test_fixture_has_the_real_quirks(processed):
    real, _, _, _ = processed
    recs = discover_recordings(real)
    assert len(recs) == 7 and sorted({r.subject for r in recs}) == [1, 2, 3, 4]
    headers = [pd.read_csv(r.pose3d_path, nrows=0).columns.tolist() for r in recs]
    assert len({tuple(h) for h in headers}) == len(headers)  # every file its own column order
    assert all(h[:2] != ["frame_id", "timestamp"] for h in headers)


def test_body25_names_to_coco13_order_in_millimetres_neck_centred(processed):
    real, _, out, _ = processed
    arrays = _all_real(out)
    checked = 0
    for rec in discover_recordings(real):
        csv = pd.read_csv(rec.pose3d_path).set_index("frame_id")
        rows = np.flatnonzero(arrays["file_id"] == rec.file_id)
        for i in rows:
            raw = np.array([[csv.loc[arrays["frame_id"][i], f"{n}_{a}"] for a in "xyz"]
                            for n in BODY25_OF_COCO13])  # metres, by column name
            neck = 0.5 * (raw[5] + raw[6])
            annotated = np.any(raw != 0, axis=1)
            np.testing.assert_array_equal(arrays["mask"][i], annotated)  # zeros -> masked
            expected = np.where(annotated[:, None], (raw - neck) * 1000.0, 0.0)
            np.testing.assert_allclose(arrays["y3d"][i], expected, atol=1e-3)
            checked += 1
    assert checked == len(arrays["frame_id"]) >= 14
    assert not arrays["mask"].all()  # the fixture has unannotated joints (e.g. the left ear)
    assert COCO13[3] == "l_ear"


def test_frame_stride_missing_frames_and_empty_rows(processed):
    real, _, out, report = processed
    arrays = _all_real(out)
    assert np.all(arrays["frame_id"] % STRIDE == 0)
    recs = discover_recordings(real)
    kept = {(f, int(i)) for f, i in zip(arrays["file_id"], arrays["frame_id"], strict=True)}
    assert (recs[1].file_id, 5) not in kept  # frame missing from the CSV
    assert (recs[0].file_id, 5) not in kept  # all joints zero: nobody there
    assert (recs[2].file_id, 0) not in kept
    assert (recs[0].file_id, 0) in kept and (recs[0].file_id, 10) in kept
    # 7 runs x frames 0, 5, 10 minus the missing frame = 20 sampled, 2 of them empty
    assert report["real"]["sampled"] == 20
    assert report["real"]["no_detection"] + report["real"]["no_neck"] >= 2


def test_activities_attached_by_chunk(processed):
    real, _, out, _ = processed
    arrays = _all_real(out)
    chunks = read_activities(real / "activities_3s" / "inner_mirror" / "midlevel.chunks_90.csv")
    for fid in set(arrays["file_id"].tolist()):
        sel = arrays["file_id"] == fid
        np.testing.assert_array_equal(arrays["activity"][sel],
                                      activity_at(chunks, fid, arrays["frame_id"][sel]))
    # frame_start inclusive, frame_end exclusive; outside every chunk: ''
    expected = {0: "sitting_still", 5: "fastening_seat_belt", 10: ""}
    for frame, label in zip(arrays["frame_id"].tolist(), arrays["activity"].tolist(), strict=True):
        assert label == expected[frame]


def test_synthetic_views_and_human_split(processed):
    _, synthetic, out, report = processed
    docs = [json.loads(p.read_text()) for p in sorted((synthetic / "gt_jsons").rglob("*.json"))]
    per_view = {}
    for d in docs:
        per_view[d["camera_parameters"]["name"]] = per_view.get(d["camera_parameters"]["name"], 0) + 1
    chosen = sum(per_view[v] for v in ("OMS_01", "Dashboard", "Front"))
    assert report["synthetic"]["images"] == chosen < len(docs)
    sizes = {s: len(load_arrays(out / f"synthetic_{s}.npz")["x2d"]) for s in ("train", "val", "test")}
    assert sizes == {"train": chosen // 2, "val": chosen // 4, "test": chosen // 4}
    train = load_arrays(out / "synthetic_train.npz")
    assert sorted(set(train["subject"].tolist())) == [0, 1]  # human_01, human_02
