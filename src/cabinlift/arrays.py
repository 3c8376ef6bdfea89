"""The processed-array files every trainer reads (``data/processed/*.npz``), written by normalize.

Kept apart from the normalisation code so that the training stages do not import the raw-data
readers (and pandas) they never use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cabinlift.errors import CabinliftError
from cabinlift.skeleton import NUM_JOINTS


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write one split's arrays (atomically: a crash never leaves a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read one split written by :func:`save_arrays`, checking the keys and shapes."""
    path = Path(path)
    if not path.is_file():
        raise CabinliftError(f"{path}: processed array file not found (run the normalize stage)")
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    for key, tail in (("x2d", (NUM_JOINTS, 2)), ("y3d", (NUM_JOINTS, 3)), ("mask", (NUM_JOINTS,))):
        if key not in data or data[key].shape[1:] != tail:
            raise CabinliftError(f"{path}: expected array {key!r} of shape (N, {', '.join(map(str, tail))})")
    return data
