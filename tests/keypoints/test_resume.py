import os

from cabinlift.keypoints.resume import RecordingCache


def _ok(path):
    text = path.read_text()
    if "damaged" in text:
        raise ValueError("damaged")
    return text


def test_restore_and_what_changes_the_key(tmp_path):
    src = tmp_path / "video.mp4"
    src.write_bytes(b"frames")
    det = tmp_path / "det.csv"
    det.write_text("frame_id\n0\n")
    cache = RecordingCache(tmp_path / "cache", "keypoints2d", {"batch_size": 4})
    key = cache.key([src], contents=(det,))
    out = tmp_path / "out" / "vp1" / "a.csv"
    assert cache.restore(key, out, _ok) is None
    cache.entry(key).parent.mkdir(parents=True)
    cache.entry(key).write_text("result\n")  # as the unit that computed it writes it
    assert cache.restore(key, out, _ok) == "result\n" and out.read_text() == "result\n"

    # detections rewritten with the same bytes keep the key; other bytes change it
    det.write_text("frame_id\n0\n")
    assert cache.key([src], contents=(det,)) == key
    det.write_text("frame_id\n5\n")
    assert cache.key([src], contents=(det,)) != key
    det.write_text("frame_id\n0\n")
    # a touched video, other settings or another stage: another key
    os.utime(src, ns=(1, 1))
    assert cache.key([src], contents=(det,)) != key
    assert RecordingCache(tmp_path / "cache", "keypoints2d", {"batch_size": 8}).key(
        [src], contents=(det,)) != cache.key([src], contents=(det,))


def test_damaged_entries_and_disabled_cache(tmp_path):
    out = tmp_path / "a.csv"
    cache = RecordingCache(tmp_path / "cache", "detect", {})
    cache.entry("k").parent.mkdir(parents=True)
    cache.entry("k").write_text("damaged")
    assert cache.restore("k", out, _ok) is None and not out.exists()
    off = RecordingCache(None, "detect", {})
    assert off.entry("k2") is None and off.restore("k2", out, _ok) is None
