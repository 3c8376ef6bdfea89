"""SyntheticCabin IR 1M (the paper's "SimulatedCabin IR 1M"): one JSON per rendered image.

Each ``gt_jsons/<image>.json`` holds ``img_name``, ``camera_parameters`` (``name`` = the view)
and ``humans[]`` with ``name``, ``keypoints2D[]`` (``{x, y, visibility}``), ``keypoints3D[]``
(``{x, y, z}``, metres, camera frame) and ``full_body_bbox``. The first 17 keypoints are COCO
joints with the five face joints rotated (:data:`~cabinlift.skeleton.SYNTHETIC_CABIN17`);
:func:`load_synthetic` returns them in COCO-17 order. Reading ~1M small files is the slow part,
so it is parallel and meant to run once, its arrays cached by the caller.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cabinlift.arrays import save_arrays
from cabinlift.errors import CabinliftError
from cabinlift.jsonfiles import parse_json, read_json
from cabinlift.skeleton import SYNTHETIC_TO_COCO17

#: Number of leading keypoints that are COCO joints.
NUM_COCO = 17
#: The folder of a SyntheticCabin copy holding one annotation JSON per rendered image.
GT_FOLDER = "gt_jsons"

_CHUNK = 1000  # files per parallel task: large enough to amortise pickling, small for progress
_CACHE_VERSION = 1  # bump when the parsed-chunk layout changes


@dataclass
class SyntheticHuman:
    """One annotated person of an image. Arrays are in the file's keypoint order."""

    name: str
    keypoints2d: np.ndarray  # (K, 2) pixels
    visibility: np.ndarray  # (K,)
    keypoints3d: np.ndarray  # (K, 3) metres, camera frame
    bbox: tuple[float, float, float, float]  # x, y, width, height (pixels)


@dataclass
class SyntheticAnnotation:
    """One ``gt_jsons`` file."""

    path: Path
    img_name: str
    camera_parameters: dict
    humans: list[SyntheticHuman] = field(default_factory=list)

    @property
    def view(self) -> str:
        """The camera view (``camera_parameters.name``)."""
        return str(self.camera_parameters["name"])


def _read_bytes(path: str | Path) -> bytes:
    """Whole file via raw ``os`` calls: with ~1M small files, Python's buffered ``open`` (extra
    fstat/ioctl/seek system calls per file) costs several times more than the parse."""
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = []
        while True:
            b = os.read(fd, 1 << 16)
            if not b:
                break
            parts.append(b)
        return b"".join(parts)
    finally:
        os.close(fd)


def _write_bytes(path: str | Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _missing(path: Path | str, key: str, expected: str) -> CabinliftError:
    return CabinliftError(f"{path}: missing key '{key}' (expected {expected})")


def _err(path: Path | str, key: str, expected: str) -> CabinliftError:
    return CabinliftError(f"{path}: key '{key}': expected {expected}")


def _num(path: Path | str, obj: object, key: str, parent: str) -> float:
    if not isinstance(obj, dict) or key not in obj:
        raise _missing(path, f"{parent}.{key}", "a number")
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise _err(path, f"{parent}.{key}", f"a finite number, got {v!r}")
    return float(v)


_KIND_NAMES = {str: "a string", list: "a list", dict: "an object"}


def _field(path: Path | str, obj: object, key: str, parent: str, kind: type) -> object:
    name = f"{parent}.{key}" if parent else key
    if not isinstance(obj, dict) or key not in obj:
        raise _missing(path, name, _KIND_NAMES[kind])
    v = obj[key]
    if not isinstance(v, kind):
        raise _err(path, name, f"{_KIND_NAMES[kind]}, got {type(v).__name__}")
    return v


def _parse(path: Path | str, doc: object) -> tuple[str, dict, list[SyntheticHuman]]:
    if not isinstance(doc, dict):
        raise CabinliftError(f"{path}: expected a JSON object at the top level")
    img_name = _field(path, doc, "img_name", "", str)
    cam = _field(path, doc, "camera_parameters", "", dict)
    _field(path, cam, "name", "camera_parameters", str)
    humans_doc = _field(path, doc, "humans", "", list)
    humans = []
    for h, hum in enumerate(humans_doc):
        base = f"humans[{h}]"
        name = _field(path, hum, "name", base, str)
        kp2 = _field(path, hum, "keypoints2D", base, list)
        kp3 = _field(path, hum, "keypoints3D", base, list)
        for key, kps in (("keypoints2D", kp2), ("keypoints3D", kp3)):
            if len(kps) < NUM_COCO:
                raise _err(
                    path, f"{base}.{key}", f"at least {NUM_COCO} keypoints, got {len(kps)}"
                )
        xy = np.empty((len(kp2), 2))
        vis = np.empty(len(kp2))
        for k, kp in enumerate(kp2):
            par = f"{base}.keypoints2D[{k}]"
            xy[k, 0] = _num(path, kp, "x", par)
            xy[k, 1] = _num(path, kp, "y", par)
            vis[k] = _num(path, kp, "visibility", par)
        xyz = np.empty((len(kp3), 3))
        for k, kp in enumerate(kp3):
            par = f"{base}.keypoints3D[{k}]"
            xyz[k, 0] = _num(path, kp, "x", par)
            xyz[k, 1] = _num(path, kp, "y", par)
            xyz[k, 2] = _num(path, kp, "z", par)
        bb = _field(path, hum, "full_body_bbox", base, dict)
        bbox = tuple(_num(path, bb, k, f"{base}.full_body_bbox") for k in ("x", "y", "width",
                                                                            "height"))
        humans.append(SyntheticHuman(name, xy, vis, xyz, bbox))  # type: ignore[arg-type]
    return img_name, cam, humans  # type: ignore[return-value]


def read_annotation(path: str | Path) -> SyntheticAnnotation:
    """Read and validate one SyntheticCabin ``gt_jsons`` file."""
    path = Path(path)
    img_name, cam, humans = _parse(path, read_json(path))
    return SyntheticAnnotation(path=path, img_name=img_name, camera_parameters=cam, humans=humans)


def write_annotation(
    path: str | Path,
    img_name: str,
    camera_parameters: Mapping[str, object],
    humans: Sequence[SyntheticHuman],
) -> None:
    """Write one ``gt_jsons`` file (compact JSON; 2D rounded to 1e-4 px, 3D to 1 µm)."""
    if "name" not in camera_parameters:
        raise ValueError("write_annotation: camera_parameters needs a 'name' (the view)")
    hums = []
    for h in humans:
        x, y, w, hh = (float(v) for v in h.bbox)
        hums.append({
            "name": h.name,
            "keypoints2D": [
                {"x": round(u, 4), "y": round(v, 4), "visibility": int(s)}
                for (u, v), s in zip(np.asarray(h.keypoints2d).tolist(),
                                     np.asarray(h.visibility).tolist(), strict=True)
            ],
            "keypoints3D": [
                {"x": round(a, 6), "y": round(b, 6), "z": round(c, 6)}
                for a, b, c in np.asarray(h.keypoints3d).tolist()
            ],
            "full_body_bbox": {
                "x": round(x, 2), "y": round(y, 2), "width": round(w, 2), "height": round(hh, 2),
                "bbox_area": round(w * hh, 2),
            },
        })
    doc = {"img_name": img_name, "camera_parameters": dict(camera_parameters), "humans": hums}
    path = Path(path)
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    _write_bytes(path, json.dumps(doc, separators=(",", ":")).encode("utf-8"))


def _load_chunk(paths: list[str], views: tuple[str, ...]) -> dict:
    """Worker: parse files, keep the first 17 keypoints of humans seen from ``views``."""
    coco = list(SYNTHETIC_TO_COCO17)
    kp2d, kp3d, vis, human, view, img = [], [], [], [], [], []
    seen: dict[str, int] = {}
    for p in paths:
        img_name, cam, humans = _parse(p, parse_json(_read_bytes(p), p))
        v = str(cam["name"])
        seen[v] = seen.get(v, 0) + 1
        if v not in views:
            continue
        for h in humans:
            kp2d.append(h.keypoints2d[:NUM_COCO][coco])
            kp3d.append(h.keypoints3d[:NUM_COCO][coco])
            vis.append(h.visibility[:NUM_COCO][coco])
            human.append(h.name)
            view.append(v)
            img.append(img_name)
    n = len(human)
    return {
        "kp2d": np.asarray(kp2d, dtype=np.float32).reshape(n, NUM_COCO, 2),
        "kp3d": np.asarray(kp3d, dtype=np.float32).reshape(n, NUM_COCO, 3),
        "visibility": np.asarray(vis, dtype=np.float32).reshape(n, NUM_COCO),
        "human": np.asarray(human, dtype=str),
        "view": np.asarray(view, dtype=str),
        "img_name": np.asarray(img, dtype=str),
        "seen": seen,
    }


def _chunk_key(paths: list[str], views: tuple[str, ...]) -> str:
    """Identity of a parsed chunk: its files (path, size, mtime), the views and the layout."""
    h = hashlib.sha1(f"v{_CACHE_VERSION}|{','.join(views)}".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"|{p}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _save_part(path: Path, part: dict) -> None:
    """Cache one parsed chunk atomically (a killed run never leaves a truncated file)."""
    seen = part["seen"]
    save_arrays(path, {**{k: v for k, v in part.items() if k != "seen"},
                       "seen_views": np.asarray(list(seen), dtype=str),
                       "seen_counts": np.asarray(list(seen.values()), dtype=np.int64)})


def _load_part(path: Path) -> dict | None:
    """A cached chunk, or None when it is missing or unreadable (it is then parsed again)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            part = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    views, counts = part.pop("seen_views", None), part.pop("seen_counts", None)
    if views is None or counts is None:
        return None
    part["seen"] = {str(v): int(c) for v, c in zip(views, counts, strict=True)}
    return part


def annotation_files(root: str | Path) -> list[str]:
    """The annotation files of a SyntheticCabin root, ``gt_jsons/*.json``, sorted (an error
    when there is no such folder or file)."""
    gt = Path(root) / GT_FOLDER
    if not gt.is_dir():
        raise CabinliftError(f"{gt}: folder not found; expected SyntheticCabin's {GT_FOLDER}/")
    files = sorted(str(p) for p in gt.glob("*.json"))
    if not files:
        raise CabinliftError(f"{gt}: no *.json annotation files found")
    return files


def _scan_chunk(paths: list[str]) -> tuple[dict[tuple[str, str], int], list[str]]:
    """Worker of :func:`scan_synthetic`: poses per (human, view), and each bad file's error."""
    counts: dict[tuple[str, str], int] = {}
    errors: list[str] = []
    for p in paths:
        try:
            _, cam, humans = _parse(p, parse_json(_read_bytes(p), p))
        except CabinliftError as exc:
            errors.append(str(exc))
            continue
        for h in humans:
            key = (h.name, str(cam["name"]))
            counts[key] = counts.get(key, 0) + 1
    return counts, errors


@dataclass(frozen=True)
class SyntheticScan:
    """What a SyntheticCabin root holds: its annotation files, the poses of each (virtual
    human, view), and one line per file that does not parse (naming it)."""

    files: int
    poses: dict[tuple[str, str], int]
    errors: list[str]

    @property
    def humans(self) -> list[str]:
        return sorted({h for h, _ in self.poses})

    @property
    def views(self) -> list[str]:
        return sorted({v for _, v in self.poses})


def scan_synthetic(root: str | Path, workers: int = 2, progress: bool = True) -> SyntheticScan:
    """Parse every annotation file of ``root`` (in ``workers`` spawned processes) as
    :func:`load_synthetic` does, without stopping at a bad file: ``cabinlift data check``."""
    files = annotation_files(root)
    chunks = [files[i:i + _CHUNK] for i in range(0, len(files), _CHUNK)]
    poses: dict[tuple[str, str], int] = {}
    errors: list[str] = []
    with tqdm(total=len(files), unit="file", desc="SyntheticCabin JSON",
              disable=None if progress else True) as bar:

        def collect(results: Iterable[tuple[dict[tuple[str, str], int], list[str]]]) -> None:
            for chunk, (counts, errs) in zip(chunks, results, strict=True):
                for key, n in counts.items():
                    poses[key] = poses.get(key, 0) + n
                errors.extend(errs)
                bar.update(len(chunk))

        if workers <= 1 or len(chunks) <= 1:
            collect(map(_scan_chunk, chunks))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
                collect(ex.map(_scan_chunk, chunks))
    return SyntheticScan(files=len(files), poses=poses, errors=errors)


def load_synthetic(
    root: str | Path, views: Sequence[str], workers: int = 2, progress: bool = True,
    cache_dir: str | Path | None = None,
) -> dict[str, np.ndarray]:
    """Parse every ``root/gt_jsons/*.json`` (in parallel) and keep the humans seen from ``views``.

    Returns ``kp2d`` (N, 17, 2) pixels and ``kp3d`` (N, 17, 3) metres in COCO-17 order (float32,
    to keep ~1M poses in memory), ``visibility`` (N, 17), and ``human``, ``view``, ``img_name``
    (N,) strings; rows are sorted by human, view, then image name, so the result does not depend
    on file-system order or on ``workers``. With ``workers > 1`` the files are parsed in spawned
    processes, so a calling script needs the usual ``if __name__ == "__main__":`` guard.

    With ``cache_dir``, every parsed chunk of 1,000 files is stored there as soon as it is done,
    keyed by its files' paths, sizes and modification times and the views; a later call (e.g.
    after a crash or a kill) parses only the chunks without a matching entry.
    """
    root = Path(root)
    views = tuple(views)
    gt = root / GT_FOLDER
    files = annotation_files(root)
    if not views:
        raise CabinliftError(f"{root}: no views requested")
    chunks = [files[i:i + _CHUNK] for i in range(0, len(files), _CHUNK)]
    bar = tqdm(total=len(files), unit="file", desc="SyntheticCabin JSON",
               disable=None if progress else True)
    parts: list[dict | None] = [None] * len(chunks)
    cache = [None if cache_dir is None else Path(cache_dir) / f"{_chunk_key(c, views)}.npz"
             for c in chunks]
    for i, path in enumerate(cache):
        if path is not None and path.is_file():
            parts[i] = _load_part(path)
            if parts[i] is not None:
                bar.update(len(chunks[i]))
    todo = [i for i, part in enumerate(parts) if part is None]

    def done(i: int, part: dict) -> None:
        if cache[i] is not None:
            _save_part(cache[i], part)
        parts[i] = part
        bar.update(len(chunks[i]))

    try:
        if workers <= 1 or len(todo) <= 1:
            for i in todo:
                done(i, _load_chunk(chunks[i], views))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
                results = ex.map(_load_chunk, [chunks[i] for i in todo], [views] * len(todo))
                for i, part in zip(todo, results, strict=True):
                    done(i, part)
    finally:
        bar.close()
    seen: dict[str, int] = {}
    for part in parts:
        for k, v in part.pop("seen").items():
            seen[k] = seen.get(k, 0) + v
    unknown = [v for v in views if v not in seen]
    if unknown:
        raise CabinliftError(
            f"{gt}: requested view(s) {', '.join(unknown)} not found; views in the data: "
            f"{', '.join(sorted(seen))}"
        )
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.lexsort((out["img_name"], out["view"], out["human"]))
    return {k: v[order] for k, v in out.items()}
