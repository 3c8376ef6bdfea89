"""``cabinlift data init``: params.yaml for the real data sets, written with DVC's writer.

Everything a run on Drive&Act and SyntheticCabin needs beside the demo's defaults: the two
roots, the 2D backends (``precomputed`` from a COCO keypoint file, else the paper's ``mmpose``
models), ``normalize.synthetic_splits`` from the virtual humans the copy holds, the parse
workers, and optionally a profile's training params. The demo stage then writes only a note
(:func:`cabinlift.demo.generate.run_demo`), and ``dvc repro`` is the one command.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cabinlift.config import SPLITS
from cabinlift.datacheck import layout_problems
from cabinlift.errors import CabinliftError
from cabinlift.formats.synthetic_cabin import scan_synthetic
from cabinlift.profiles import Profile, apply_profile, load_profile
from cabinlift.resources import available_cores

#: Shares of the virtual humans in train / val / test: the authors split SyntheticCabin's 16
#: humans 8 / 4 / 4.
SYNTHETIC_SHARES = {"train": 8, "val": 4, "test": 4}


def _natural(name: str) -> tuple:
    """Sort key reading digit runs as numbers (``human_2`` before ``human_10``)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def synthetic_splits(humans: list[str]) -> dict[str, list[str]]:
    """The virtual humans split by :data:`SYNTHETIC_SHARES` in name order (numbers read as
    numbers): 16 humans give the authors' 8 / 4 / 4; every split gets at least one."""
    names = sorted(set(humans), key=_natural)
    total = sum(SYNTHETIC_SHARES.values())
    if len(names) < len(SPLITS):
        raise CabinliftError(f"{len(names)} virtual humans found; the train, val and test splits "
                             f"need at least {len(SPLITS)}")
    out, start = {}, 0
    for i, split in enumerate(SPLITS):
        if i == len(SPLITS) - 1:
            n = len(names) - start
        else:
            n = max(1, round(len(names) * SYNTHETIC_SHARES[split] / total))
            n = min(n, len(names) - start - (len(SPLITS) - 1 - i))
        out[split] = names[start:start + n]
        start += n
    return out


def init_values(drive_act: Path, synthetic: Path, keypoints: Path | None, workers: int,
                progress: bool = True) -> dict[str, Any]:
    """``{params key: value}`` for the two roots (absolute), after refusing a root the
    pipeline cannot use (one line: a missing folder, a full Drive&Act copy)."""
    drive_act, synthetic = drive_act.resolve(), synthetic.resolve()
    found = layout_problems(drive_act, synthetic)  # a full Drive&Act copy among them
    if found:
        raise CabinliftError(found[0] if len(found) == 1 else "; ".join(found))
    scan = scan_synthetic(synthetic, workers=workers, progress=progress)
    values: dict[str, Any] = {
        "data.real.root": str(drive_act),
        "data.synthetic.root": str(synthetic),
        "data.synthetic.workers": workers,
    }
    for split, names in synthetic_splits(scan.humans).items():
        values[f"normalize.synthetic_splits.{split}"] = names
    if keypoints is not None:
        if not keypoints.is_file():
            raise CabinliftError(f"{keypoints}: file not found (expected COCO-format keypoint "
                                 f"results, docs/real-data.md)")
        for stage in ("detect", "keypoints2d"):
            values[f"{stage}.backend"] = "precomputed"
            values[f"{stage}.precomputed.results"] = str(keypoints.resolve())
    else:
        values["detect.backend"] = values["keypoints2d.backend"] = "mmpose"
    return values


def data_init(params_path: Path, drive_act: Path, synthetic: Path, keypoints: Path | None = None,
              profile: str | None = None, progress: bool = True) -> list[tuple[str, Any, Any]]:
    """Write the real-data params (and ``profile``'s first, when named) into ``params_path``
    with DVC's writer, which keeps the file's layout; return ``(key, before, after)`` of every
    key that changed."""
    values = init_values(drive_act, synthetic, keypoints, available_cores(), progress)
    made = [] if profile is None else apply_profile(params_path, load_profile(profile))
    return made + apply_profile(params_path, Profile("data init", "the real data sets", values))
