"""SyntheticCabin JSON reader/writer and the parallel loader.

Fixture ``human_03_00042_Front.json`` has 19 keypoints; keypoint k has 2D (100 + 10 k,
200 + 5 k) with visibility 2 (1 for k = 3) and 3D (0.01 k, -0.02 k, 1 + 0.01 k). Its first five
keypoints are in SyntheticCabin's rotated order [l_eye, r_eye, l_ear, r_ear, nose], so COCO
nose = keypoint 4 and COCO l_eye..r_ear = keypoints 0..3.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import cabinlift.formats.synthetic_cabin as sc
from cabinlift.errors import CabinliftError
from cabinlift.formats.synthetic_cabin import (
    SyntheticHuman,
    load_synthetic,
    read_annotation,
    write_annotation,
)

FIX = Path(__file__).parent / "fixtures" / "human_03_00042_Front.json"


def _root_with(tmp_path: Path, docs: dict[str, dict]) -> Path:
    gt = tmp_path / "syn" / "gt_jsons"
    gt.mkdir(parents=True)
    for name, doc in docs.items():
        (gt / name).write_text(json.dumps(doc))
    return tmp_path / "syn"


def _doc(view: str = "Front", human: str = "human_03", img: str = "a.png") -> dict:
    doc = json.loads(FIX.read_text())
    doc["camera_parameters"]["name"] = view
    doc["humans"][0]["name"] = human
    doc["img_name"] = img
    return doc


def test_read_fixture() -> None:
    a = read_annotation(FIX)
    assert a.img_name == "human_03_00042_Front.png" and a.view == "Front"
    assert a.camera_parameters["intrinsics"]["fx"] == 700.0
    (h,) = a.humans
    assert h.name == "human_03" and h.keypoints2d.shape == (19, 2)
    np.testing.assert_allclose(h.keypoints2d[4], [140, 220])
    np.testing.assert_allclose(h.keypoints3d[18], [0.18, -0.36, 1.18])
    assert h.visibility[3] == 1 and h.bbox == (90.5, 150.0, 220.0, 300.0)


def test_load_reorders_face_to_coco(tmp_path: Path) -> None:
    root = tmp_path / "syn"
    (root / "gt_jsons").mkdir(parents=True)
    shutil.copy(FIX, root / "gt_jsons" / FIX.name)
    d = load_synthetic(root, ["Front"], workers=1)
    assert d["kp2d"].shape == (1, 17, 2) and d["kp3d"].shape == (1, 17, 3)
    k = np.arange(19)
    order = [4, 0, 1, 2, 3, *range(5, 17)]  # COCO index -> file keypoint
    np.testing.assert_allclose(d["kp2d"][0], np.stack([100 + 10 * k, 200 + 5 * k], 1)[order])
    np.testing.assert_allclose(d["kp3d"][0], np.stack([0.01 * k, -0.02 * k, 1 + 0.01 * k],
                                                      1)[order], atol=1e-6)
    assert d["visibility"][0, 4] == 1  # COCO r_ear is file keypoint 3
    assert d["human"].tolist() == ["human_03"] and d["view"].tolist() == ["Front"]
    assert d["img_name"].tolist() == ["human_03_00042_Front.png"]


def test_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    h = SyntheticHuman("human_07", rng.uniform(0, 1000, (19, 2)), np.full(19, 2),
                       rng.uniform(-1, 2, (19, 3)), (1.0, 2.0, 30.0, 40.0))
    p = tmp_path / "x.json"
    write_annotation(p, "x.png", {"name": "OMS_01", "intrinsics": {"fx": 1.0}}, [h])
    a = read_annotation(p)
    assert a.view == "OMS_01" and a.img_name == "x.png"
    np.testing.assert_allclose(a.humans[0].keypoints2d, h.keypoints2d, atol=5e-5)
    np.testing.assert_allclose(a.humans[0].keypoints3d, h.keypoints3d, atol=5e-7)
    assert json.loads(p.read_text())["humans"][0]["full_body_bbox"]["bbox_area"] == 1200.0


def _err(path: Path) -> str:
    with pytest.raises(CabinliftError) as exc:
        read_annotation(path)
    msg = str(exc.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    return msg


def test_bad_json(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text(FIX.read_text()[:-30])
    assert "invalid JSON at line" in _err(p)


def test_missing_field_names_key_path(tmp_path: Path) -> None:
    doc = _doc()
    del doc["humans"][0]["keypoints3D"][5]["z"]
    p = tmp_path / "m.json"
    p.write_text(json.dumps(doc))
    assert "missing key 'humans[0].keypoints3D[5].z'" in _err(p)
    doc = _doc()
    del doc["camera_parameters"]["name"]
    p.write_text(json.dumps(doc))
    assert "missing key 'camera_parameters.name'" in _err(p)


def test_too_few_keypoints(tmp_path: Path) -> None:
    doc = _doc()
    doc["humans"][0]["keypoints2D"] = doc["humans"][0]["keypoints2D"][:12]
    p = tmp_path / "f.json"
    p.write_text(json.dumps(doc))
    assert re.search(r"humans\[0\]\.keypoints2D': expected at least 17 keypoints, got 12", _err(p))


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(CabinliftError, match="gt_jsons: folder not found"):
        load_synthetic(tmp_path, ["Front"])
    root = _root_with(tmp_path, {"a.json": _doc("Front"), "b.json": _doc("OMS_01")})
    with pytest.raises(CabinliftError, match=r"requested view\(s\) Dashboard not found; views in "
                                             r"the data: Front, OMS_01"):
        load_synthetic(root, ["Front", "Dashboard"], workers=1)
    (root / "gt_jsons" / "c.json").write_text("{")
    with pytest.raises(CabinliftError, match=re.escape(str(root / "gt_jsons" / "c.json"))):
        load_synthetic(root, ["Front"], workers=1)


def test_load_filters_sorts_and_is_worker_independent(tmp_path: Path, monkeypatch) -> None:
    docs = {}
    for i, (h, v) in enumerate([("human_02", "Front"), ("human_01", "OMS_01"),
                                ("human_01", "Front"), ("human_02", "Dashboard"),
                                ("human_01", "Rear_Mirror")]):
        docs[f"{9 - i}.json"] = _doc(v, h, f"img_{i}.png")
    root = _root_with(tmp_path, docs)
    one = load_synthetic(root, ["Front", "OMS_01", "Dashboard"], workers=1)
    assert list(zip(one["human"].tolist(), one["view"].tolist(), strict=True)) == [
        ("human_01", "Front"), ("human_01", "OMS_01"), ("human_02", "Dashboard"),
        ("human_02", "Front")]
    monkeypatch.setattr(sc, "_CHUNK", 2)  # several chunks -> the process pool is used
    two = load_synthetic(root, ["Front", "OMS_01", "Dashboard"], workers=2)
    for k in one:
        np.testing.assert_array_equal(one[k], two[k])


def test_chunk_cache_resumes_and_notices_changed_files(tmp_path: Path, monkeypatch) -> None:
    docs = {f"{i:03d}.json": _doc(("Front", "OMS_01")[i % 2], f"human_0{1 + i % 3}", f"i{i}.png")
            for i in range(7)}
    root = _root_with(tmp_path, docs)
    cache = tmp_path / "cache"
    monkeypatch.setattr(sc, "_CHUNK", 2)  # 4 chunks: 2 + 2 + 2 + 1 files
    parsed: list[int] = []
    real = sc._load_chunk
    monkeypatch.setattr(sc, "_load_chunk", lambda paths, views: parsed.append(1) or real(paths, views))

    first = load_synthetic(root, ["Front", "OMS_01"], workers=1, cache_dir=cache)
    assert len(parsed) == 4 and len(list(cache.glob("*.npz"))) == 4

    # A run killed after some chunks: the finished ones are reused, the rest parsed again.
    sorted(cache.glob("*.npz"))[0].unlink()
    entry = sorted(cache.glob("*.npz"))[0]
    entry.write_bytes(entry.read_bytes()[:100])  # a damaged entry is parsed again, not trusted
    parsed.clear()
    again = load_synthetic(root, ["Front", "OMS_01"], workers=1, cache_dir=cache)
    assert len(parsed) == 2
    for k in first:
        np.testing.assert_array_equal(first[k], again[k])

    # A changed file invalidates its own chunk only; other views are other cache entries.
    doc = _doc("Front", "human_09", "i0.png")
    (root / "gt_jsons" / "000.json").write_text(json.dumps(doc) + "\n")
    parsed.clear()
    changed = load_synthetic(root, ["Front", "OMS_01"], workers=1, cache_dir=cache)
    assert len(parsed) == 1 and "human_09" in changed["human"].tolist()
    parsed.clear()
    load_synthetic(root, ["Front"], workers=1, cache_dir=cache)
    assert len(parsed) == 4
