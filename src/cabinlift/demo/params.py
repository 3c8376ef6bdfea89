"""Parameters of the embedded demo (params.yaml ``demo:``) with their defaults and checks.

Defaults are sized so that ``dvc repro`` on a 2-core laptop generates the demo in seconds:
~320 s of 30 fps recording per real subject (two runs of 160 s; vp9 one) and 150 poses per
virtual human rendered from the 10 views.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from cabinlift.errors import CabinliftError
from cabinlift.formats.synthetic_cabin import SYNTHETIC_VIEWS

DEFAULT_DEMO_PARAMS: dict = {
    "seed": 20260524,
    "real": {
        "subjects": 15,  # vp1 .. vpN
        "runs_per_subject": 2,
        "single_run_subjects": [9],  # as in Drive&Act, vp9 has one run with 3D pose
        "seconds_per_run": 160.0,
        "fps": 30,
        "female_fraction": 0.3,
        "label_noise_mm": 10.0,  # smooth triangulation error of annotated joints (per axis sd)
        "label_jitter_mm": 3.0,  # frame-to-frame jitter (per axis sd)
        "empty_frame_rate": 0.003,  # frames in which triangulation found no person
        "first_date": "2018-05-02",  # recording dates for the run names
    },
    "synthetic": {
        "humans": 16,  # human_01 .. human_N
        "poses_per_human": 150,
        "views": list(SYNTHETIC_VIEWS),
        "stature_min": 1.48,
        "stature_max": 2.02,
        "ratio_sd": 0.05,  # spread of segment proportions (real drivers: 0.03)
        "camera_jitter_m": 0.02,  # per-image camera position spread (several car interiors)
    },
}

_INT = {"seed", "real.subjects", "real.runs_per_subject", "real.fps", "synthetic.humans",
        "synthetic.poses_per_human"}


def resolve_params(cfg: Mapping | None) -> dict:
    """Defaults overlaid with ``cfg``; unknown keys and bad values raise with the dotted key."""
    out = copy.deepcopy(DEFAULT_DEMO_PARAMS)

    def merge(dst: dict, src: Mapping, prefix: str) -> None:
        for k, v in src.items():
            key = f"{prefix}{k}"
            if k not in dst:
                raise CabinliftError(
                    f"params: unknown key 'demo.{key}'; expected one of "
                    f"{', '.join('demo.' + prefix + x for x in dst)}"
                )
            if isinstance(dst[k], dict):
                if not isinstance(v, Mapping):
                    raise CabinliftError(f"params: 'demo.{key}' must be a mapping, got {v!r}")
                merge(dst[k], v, key + ".")
            else:
                dst[k] = copy.deepcopy(v)

    merge(out, cfg or {}, "")
    for key in _INT:
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        v = node[leaf]
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if leaf == "seed" else 1):
            raise CabinliftError(f"params: 'demo.{key}' must be a positive integer, got {v!r}")
    r, s = out["real"], out["synthetic"]
    for key, v in (("real.seconds_per_run", r["seconds_per_run"]),
                   ("synthetic.stature_min", s["stature_min"]),
                   ("synthetic.stature_max", s["stature_max"])):
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
            raise CabinliftError(f"params: 'demo.{key}' must be a positive number, got {v!r}")
    if r["seconds_per_run"] < 20:
        raise CabinliftError(
            f"params: 'demo.real.seconds_per_run' must be at least 20 (a run holds several "
            f"activities), got {r['seconds_per_run']}"
        )
    if s["stature_min"] >= s["stature_max"]:
        raise CabinliftError("params: 'demo.synthetic.stature_min' must be below stature_max")
    bad = [v for v in s["views"] if v not in SYNTHETIC_VIEWS]
    if bad or not s["views"] or len(set(s["views"])) != len(s["views"]):
        raise CabinliftError(
            f"params: 'demo.synthetic.views' must be distinct views among "
            f"{', '.join(SYNTHETIC_VIEWS)}; got {s['views']}"
        )
    for v in r["single_run_subjects"]:
        if isinstance(v, bool) or not isinstance(v, int):
            raise CabinliftError(
                f"params: 'demo.real.single_run_subjects' must list subject numbers, got {v!r}"
            )
    for key in ("label_noise_mm", "label_jitter_mm", "empty_frame_rate", "female_fraction",
                "camera_jitter_m", "ratio_sd"):
        sect = r if key in r else s
        v = sect[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise CabinliftError(
                f"params: 'demo.{'real' if sect is r else 'synthetic'}.{key}' must be a "
                f"non-negative number, got {v!r}"
            )
    if r["empty_frame_rate"] >= 0.5 or r["female_fraction"] > 1:
        raise CabinliftError(
            "params: 'demo.real.empty_frame_rate' must be < 0.5 and 'female_fraction' <= 1"
        )
    return out
