"""``cabinlift models fetch``: the paper's two MMLab checkpoints from their official addresses.

Each download goes to ``<file>.part`` first and is resumed from where it stopped (an HTTP
``Range`` request; a server that ignores it sends the whole file again), both across calls and
within one call when the connection drops half-way (up to :data:`ATTEMPTS` tries). A finished
file is checked against its SHA-256 before it takes its final name: OpenMMLab names every
released checkpoint after the first 8 hex digits of its SHA-256 (``...-d022e227.pth``), which
is what is known of these files here; a full digest is checked where one is given. A file that
fails the check is removed, with one line naming it. Offline, one line gives the address and
the place to put the file."""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from cabinlift.errors import CabinliftError

#: Tries per file within one call (a dropped connection resumes where it stopped).
ATTEMPTS = 3
_CHUNK = 1 << 16
_TIMEOUT_S = 60


@dataclass(frozen=True)
class Checkpoint:
    """A released checkpoint: its address and the SHA-256 it must have (a full digest, or the
    leading hex digits that OpenMMLab puts in the file name)."""

    url: str
    sha256: str

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


#: The paper's detector and 2D estimator (docs/real-data.md, 'Checkpoints'), by file name.
OFFICIAL: dict[str, Checkpoint] = {c.name: c for c in (
    Checkpoint("https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/"
               "faster_rcnn_r50_fpn_1x_coco-person/"
               "faster_rcnn_r50_fpn_1x_coco-person_20201216_175929-d022e227.pth", "d022e227"),
    Checkpoint("https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/"
               "td-hm_hrnet-w48_udp-8xb32-210e_coco-384x288-70d7ab01_20220913.pth", "70d7ab01"),
)}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _request(url: str, start: int) -> http.client.HTTPResponse:
    req = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    return urllib.request.urlopen(req, timeout=_TIMEOUT_S)  # noqa: S310 (http(s) addresses)


def _download(checkpoint: Checkpoint, part: Path, progress: bool) -> None:
    """Bring ``part`` to the whole file, resuming from its size; raise on a dropped
    connection (the bytes received stay in ``part``)."""
    start = part.stat().st_size if part.is_file() else 0
    with _request(checkpoint.url, start) as resp:
        if start and resp.status != 206:  # the server sends the whole file again
            start = 0
        length = resp.headers.get("Content-Length")
        total = None if length is None else start + int(length)
        with open(part, "ab" if start else "wb") as out, tqdm(
                total=total, initial=start, unit="B", unit_scale=True, desc=checkpoint.name,
                disable=not progress, leave=False) as bar:
            while block := resp.read(_CHUNK):
                out.write(block)
                bar.update(len(block))
    if total is not None and part.stat().st_size < total:
        raise http.client.IncompleteRead(b"", total - part.stat().st_size)


def fetch(checkpoint: Checkpoint, dest: Path, progress: bool = True,
          log: Callable[[str], None] = print) -> Path:
    """``dest`` holding ``checkpoint`` (already there and checked: nothing is downloaded)."""
    if dest.is_file() and sha256_of(dest).startswith(checkpoint.sha256):
        log(f"{dest}: present, SHA-256 checked")
        return dest
    if dest.exists():
        raise CabinliftError(f"{dest}: exists but is not {checkpoint.name} (its SHA-256 does not "
                             f"start with {checkpoint.sha256}); move it away to download")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _download(checkpoint, part, progress)
            break
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            got = part.stat().st_size if part.is_file() else 0
            if isinstance(exc, urllib.error.URLError) and not got:
                raise CabinliftError(
                    f"cannot reach {checkpoint.url} ({getattr(exc, 'reason', exc)}); download it "
                    f"elsewhere and put it at {dest}") from None
            if attempt == ATTEMPTS:
                raise CabinliftError(
                    f"{checkpoint.url}: the connection dropped {ATTEMPTS} times ({got} bytes "
                    f"kept in {part}); run the command again to resume") from None
            log(f"{checkpoint.name}: connection dropped after {got} bytes; resuming")
    digest = sha256_of(part)
    if not digest.startswith(checkpoint.sha256):
        part.unlink()
        raise CabinliftError(f"{checkpoint.url}: SHA-256 {digest} does not start with "
                             f"{checkpoint.sha256}: the download was removed")
    os.replace(part, dest)
    log(f"{dest}: downloaded, SHA-256 checked")
    return dest


def wanted(paths: list[str]) -> list[tuple[Checkpoint, Path]]:
    """The official checkpoints among the files ``paths`` (as params.yaml names them): each
    with the place params.yaml gives it. A path whose file name is not a known release is an
    error naming the known ones."""
    out = []
    for path in paths:
        name = Path(path).name
        if name not in OFFICIAL:
            raise CabinliftError(f"{path}: not one of the checkpoints this command fetches "
                                 f"({', '.join(OFFICIAL)})")
        out.append((OFFICIAL[name], Path(path)))
    return out
