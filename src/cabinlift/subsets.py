"""The paper's data-amount protocol (Section 4) as index lists into the real training pool.

* Fraction settings (5/10/25/50 % of one subject) and the single-subject setting: one run per
  training subject, run r uses the r-th subject in sorted order (more repetitions than
  subjects are refused: a subject trained twice would count twice in the mean). Each
  subject's frames are shuffled once with a seeded generator and a fraction f takes the
  first ``max(min_frames, round(f * n))`` of them, so **smaller fractions are nested in larger
  ones** for the same subject (5 % is a subset of 10 %, ... of 100 %).
* Multi-subject settings with fewer subjects than the pool: ``repetitions`` distinct random
  combinations of subjects (seeded); with all subjects: the single combination (one run).
* Every subset is trained with ``seeds`` seeds: a setting has ``repetitions x seeds`` runs,
  numbered in order (``repetition``), each naming its ``subset`` and ``seed`` (0, 1, ...).

Output: one JSON per setting, ``{"setting", "definition", "runs": [{"repetition", "subset",
"seed", "subjects", "indices"}]}``; indices are rows of ``real_train.npz``.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from cabinlift.arrays import load_arrays
from cabinlift.atomic import write_atomic
from cabinlift.config import Params, SettingDef
from cabinlift.errors import CabinliftError
from cabinlift.jsonfiles import read_json


def _subject_order(subjects: np.ndarray, seed: int) -> dict[int, np.ndarray]:
    out = {}
    for s in sorted(set(subjects.tolist())):
        rows = np.flatnonzero(subjects == s)
        rng = np.random.default_rng([seed, int(s)])
        out[int(s)] = rows[rng.permutation(len(rows))]
    return out


def make_runs(
    subjects: np.ndarray, definition: SettingDef, seed: int, setting_index: int,
    min_frames: int,
) -> list[dict[str, Any]]:
    """Runs of one setting: ``[{repetition, subset, seed, subjects, indices}]`` (indices sorted
    ascending), ``seeds`` runs per subset. The training subjects present in ``subjects`` must be
    enough for the definition."""
    order = _subject_order(np.asarray(subjects), seed)
    pool = sorted(order)
    k, fraction, reps = definition.subjects, definition.fraction, definition.repetitions
    if k > len(pool):
        raise CabinliftError(
            f"setting needs {k} training subjects but the training pool has {len(pool)} "
            f"({', '.join(map(str, pool))})"
        )
    if k == 1:
        if reps > len(pool):
            raise CabinliftError(
                f"{reps} repetitions of a single-subject setting, but the training pool has "
                f"{len(pool)} subjects ({', '.join(map(str, pool))}); each repetition uses "
                f"another subject"
            )
        combos = [(s,) for s in pool[:reps]]
    else:
        n_combos = math.comb(len(pool), k)
        if reps > n_combos:
            raise CabinliftError(
                f"{reps} repetitions of {k} subjects out of {len(pool)} requested, but only "
                f"{n_combos} distinct combinations exist"
            )
        if n_combos == 1:
            combos = [tuple(pool)]
        else:
            rng = np.random.default_rng([seed, 1000 + setting_index])
            all_combos = list(itertools.combinations(pool, k))
            pick = rng.choice(len(all_combos), size=reps, replace=False)
            combos = [all_combos[i] for i in pick]
    runs = []
    for r, combo in enumerate(combos):
        rows = []
        for s in combo:
            n = len(order[s])
            take = n if fraction >= 1 else min(n, max(min_frames, round(fraction * n)))
            rows.append(order[s][:take])
        indices = sorted(int(i) for i in np.concatenate(rows))
        if len(indices) < min_frames:
            have = ", ".join(f"subject {s} has {len(order[s])}" for s in combo)
            raise CabinliftError(
                f"repetition {r} would train on {len(indices)} frame(s) ({have} in the training "
                f"split), fewer than 'subsets.min_frames' ({min_frames}); sample more frames "
                f"(a smaller 'data.real.frame_stride') or train on other subjects"
            )
        for seed in range(definition.seeds):
            runs.append({"repetition": len(runs), "subset": r, "seed": seed,
                         "subjects": [int(s) for s in combo], "indices": indices})
    return runs


def write_subsets(
    subjects: np.ndarray, settings: dict[str, SettingDef], seed: int, min_frames: int,
    out_dir: Path,
) -> dict[str, int]:
    """Write ``<out_dir>/<setting>.json`` for every setting; returns runs per setting."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for i, (name, definition) in enumerate(settings.items()):
        try:
            runs = make_runs(subjects, definition, seed, i, min_frames)
        except CabinliftError as exc:
            raise CabinliftError(f"subsets.settings.{name}: {exc}") from exc
        doc = {"setting": name, "definition": definition.model_dump(), "runs": runs}
        write_atomic(out_dir / f"{name}.json", json.dumps(doc) + "\n")
        counts[name] = len(runs)
    return counts


def run_subsets(params: Params, processed: Path, out_dir: Path) -> dict[str, Any]:
    """The ``subsets`` stage: every setting's runs over ``processed/real_train.npz``."""
    train = load_arrays(processed / "real_train.npz")
    counts = write_subsets(train["subject"], params.setting_defs(), params.subsets.seed,
                           params.subsets.min_frames, out_dir)
    return {"runs": counts, "total": sum(counts.values())}


def read_subset(path: Path) -> dict[str, Any]:
    """Load one setting's runs, with a clear error for a missing or malformed file."""
    doc = read_json(path, missing="{path}: subset file not found (run the subsets stage)",
                    invalid="{path}: line {line}: not valid JSON: {msg}")
    for key in ("setting", "runs"):
        if key not in doc:
            raise CabinliftError(f"{path}: missing key {key!r}")
    for i, run in enumerate(doc["runs"]):
        for key in ("repetition", "subset", "seed", "subjects", "indices"):
            if key not in run:
                raise CabinliftError(f"{path}: runs[{i}] is missing key {key!r}")
    return doc
