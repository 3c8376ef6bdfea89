"""Download one pinned source distribution from the package index and check its sha256.

Used by install_mmlab.sh for mmcv, whose sdist must be patched before it is built (so pip
cannot build it directly). Reads the index's JSON simple API (PEP 691), which mirrors serve too.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.request


def main(name: str, version: str, sha256: str, dest: str) -> None:
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    req = urllib.request.Request(
        f"{index}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        files = json.load(resp)["files"]
    wanted = f"{name}-{version}.tar.gz"
    match = [f for f in files if f["filename"] == wanted]
    if not match:
        sys.exit(f"fetch_sdist: {index}/{name}/ lists no {wanted}")
    with urllib.request.urlopen(match[0]["url"], timeout=300) as resp:
        data = resp.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        sys.exit(f"fetch_sdist: {wanted} has sha256 {digest}, expected {sha256}")
    with open(dest, "wb") as fh:
        fh.write(data)


if __name__ == "__main__":
    main(*sys.argv[1:5])
