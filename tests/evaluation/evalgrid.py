"""Hand-made evaluate-stage inputs with known answers (shared by the evaluation tests).

Predictions are the ground truth shifted by a known offset ``d`` (mm) at every valid joint, so
each run's MPJPE is exactly ``d``; unannotated joints carry NaN ground truth and absurd
predictions, which must change nothing.

The real training pool for the mean-training-pose reference: subject k (1-8) has four frames,
rows 4(k-1) to 4(k-1)+3, every joint at x = 2k + (-3, +5, +1, -3)[frame] mm (y = z = 0), so the
first two frames of a subject average to 2k + 1 and all four to 2k; a few joints are
unannotated (with absurd values there) and move those means, worked out by hand in
``MEAN_POSE_X``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cabinlift.config import Evaluate, Pck, Qualitative, SettingDef

J = 13
N = 10
MODELS = ["semgcn", "simplebl"]  # deliberately not alphabetical: output keeps this order
SETTINGS = {
    "pct50": {"subjects": 1, "fraction": 0.5, "repetitions": 3},
    "subj2": {"subjects": 2, "fraction": 1.0, "repetitions": 2},
    "subj8": {"subjects": 8, "fraction": 1.0, "repetitions": 1},
}
#: offsets[model][init][setting] = per-repetition MPJPE in mm
OFFSETS = {
    "semgcn": {
        "scratch": {"pct50": [30.0, 40.0, 50.333], "subj2": [20.0, 30.0], "subj8": [15.0]},
        "pretrained": {"pct50": [20.0, 22.0, 24.0], "subj2": [18.0, 20.0], "subj8": [12.0]},
    },
    "simplebl": {
        "scratch": {"pct50": [100.0, 200.0, 300.0], "subj2": [25.0, 26.0], "subj8": [14.0]},
        "pretrained": {"pct50": [21.0, 21.0, 21.0], "subj2": [17.0, 19.0], "subj8": [12.0]},
    },
}
TRAIN_FRAMES = {"pct50": 100, "subj2": 400, "subj8": 1600}
MASKED = [(0, 3), (0, 4), (2, 9), (7, 11), (7, 12), (7, 0)]  # (frame, joint) not annotated
#: MPJPE of the pre-trained weights before fine-tuning (the "none" pseudo-setting)
NO_REAL_DATA_MPJPE = {"semgcn": 23.0, "simplebl": 60.0}

#: Convergence of repetition r, by r % 3: (stopped_early, history epochs, best_epoch).
#: 0: ran all epochs, best at the last check; 1: stopped early; 2: ran all epochs, best earlier.
CONVERGENCE = [
    (False, [5, 10, 15, 20], 20),
    (True, [0, 5, 10, 15, 20, 25], 10),
    (False, [5, 10, 15, 20], 15),
]


def steps_of(init: str, rep: int) -> int:
    """Optimiser steps recorded for a run."""
    return 100 * (rep + 1) + (7 if init == "pretrained" else 0)


#: Training pool: rows of subject k are 4(k-1) .. 4(k-1)+3.
FRAME_DX = [-3.0, 5.0, 1.0, -3.0]
#: (row, joint) not annotated in the training pool: joint 5 (l_shoulder) of row 0, joint 2
#: (r_eye) of every subject's last frame, joint 12 (r_hip) of subject 3's first two frames.
TRAIN_MASKED = [(0, 5), *((4 * k + 3, 2) for k in range(8)), (8, 12), (9, 12)]
#: Subset files: the training rows of each run.
SUBSET_ROWS = {
    "pct50": [[0, 1], [4, 5], [8, 9]],  # the first half of subjects 1, 2, 3
    "subj2": [list(range(0, 8)), list(range(4, 12))],  # subjects 1+2, 2+3
    "subj8": [list(range(32))],
}
#: The mean pose of each run, by hand: x of every joint, except the joints listed (None: a
#: joint annotated in none of the run's frames, predicted at the neck, the origin).
MEAN_POSE_X: dict[str, list[tuple[float, dict[int, float | None]]]] = {
    "pct50": [
        (3.0, {5: 7.0}),  # (-1 + 7) / 2; l_shoulder only from row 1: 2 + 5
        (5.0, {}),
        (7.0, {12: None}),  # r_hip annotated in neither row 8 nor 9
    ],
    "subj2": [
        # rows 0-7: (2 + 4) / 2; r_eye without rows 3, 7: (-1+7+3 + 1+9+5) / 6;
        # l_shoulder without row 0: (7+3-1 + 1+9+5+1) / 7
        (3.0, {2: 4.0, 5: 25.0 / 7.0}),
        # rows 4-11: (4 + 6) / 2; r_eye without rows 7, 11: (1+9+5 + 3+11+7) / 6;
        # r_hip without rows 8, 9: (1+9+5+1 + 7+3) / 6
        (5.0, {2: 6.0, 12: 26.0 / 6.0}),
    ],
    "subj8": [
        # mean of 2k over k = 1..8 is 9; r_eye: every subject's first three frames, 2k + 1
        # on average; l_shoulder without row 0 (-1): (288 + 1) / 31; r_hip without rows 8, 9
        # (3, 11): (288 - 14) / 30
        (9.0, {2: 10.0, 5: 289.0 / 31.0, 12: 274.0 / 30.0}),
    ],
}


def mean_pose_by_hand(setting: str, rep: int) -> np.ndarray:
    """The (J, 3) mean pose of a run from ``MEAN_POSE_X``."""
    default, special = MEAN_POSE_X[setting][rep]
    pose = np.zeros((J, 3))
    pose[:, 0] = default
    for j, x in special.items():
        pose[j, 0] = 0.0 if x is None else x
    return pose


def make_training_pool(path: Path) -> dict[str, np.ndarray]:
    """``real_train.npz`` of the eight subjects (see the module docstring)."""
    n = 32
    y3d = np.zeros((n, J, 3), dtype=np.float32)
    for row in range(n):
        y3d[row, :, 0] = 2.0 * (row // 4 + 1) + FRAME_DX[row % 4]
    mask = np.ones((n, J), dtype=bool)
    for row, j in TRAIN_MASKED:
        mask[row, j] = False
        y3d[row, j] = 1e6  # must never reach a mean
    arrays = {
        "x2d": np.zeros((n, J, 2), dtype=np.float32),
        "y3d": y3d,
        "mask": mask,
        "subject": np.repeat(np.arange(1, 9, dtype=np.int64), 4),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def write_subsets(out: Path) -> Path:
    """``<out>/<setting>.json`` for the grid's settings, in the subsets stage's format."""
    out.mkdir(parents=True, exist_ok=True)
    for setting, runs in SUBSET_ROWS.items():
        doc = {"setting": setting, "definition": SETTINGS[setting], "runs": [
            {"repetition": r, "subset": r, "seed": 0,
             "subjects": sorted({row // 4 + 1 for row in rows}), "indices": rows}
            for r, rows in enumerate(runs)
        ]}
        (out / f"{setting}.json").write_text(json.dumps(doc))
    return out


def make_test_set(path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    y3d = rng.normal(0.0, 20.0, size=(N, J, 3)).astype(np.float32)
    mask = np.ones((N, J), dtype=bool)
    for f, j in MASKED:
        mask[f, j] = False
        y3d[f, j] = np.nan  # must never reach an error
    arrays = {
        "x2d": rng.normal(size=(N, J, 2)).astype(np.float32),
        "y3d": y3d,
        "mask": mask,
        "subject": np.array([11] * 3 + [12] * 4 + [13] * 3, dtype=np.int64),
        "frame_id": np.arange(N, dtype=np.int64) * 5,
        "file_id": np.array([f"vp{11 + i // 4}/run1" for i in range(N)]),
        "activity": np.array(["eating", "drinking", ""] * 3 + ["eating"]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def shifted(y3d: np.ndarray, mask: np.ndarray, d: float) -> np.ndarray:
    """Ground truth moved by d mm along x; masked joints get absurd values."""
    pred = np.nan_to_num(y3d.astype(np.float64)).copy()
    pred[..., 0] += d
    pred[~mask] = 1e6
    return pred.astype(np.float32)


def write_setting(
    root: Path, model: str, init: str, setting: str, offsets: list[float],
    test: dict[str, np.ndarray], order: list[int] | None = None,
) -> Path:
    """One fine-tuning output directory; ``order`` permutes the runs as stored."""
    d = root / init / model / setting
    d.mkdir(parents=True, exist_ok=True)
    order = list(range(len(offsets))) if order is None else order
    runs, preds = [], []
    n_subj = SETTINGS[setting]["subjects"]
    for rep in order:
        early, epochs, best = CONVERGENCE[rep % 3]
        runs.append({
            "model": model, "init": init, "setting": setting, "repetition": rep,
            "subjects": [(rep + k) % 8 + 1 for k in range(n_subj)],
            "train_frames": TRAIN_FRAMES[setting] + rep, "epochs_run": epochs[-1],
            "best_epoch": best, "steps": steps_of(init, rep), "stopped_early": early,
            "best_val_mpjpe": offsets[rep] + 1.0, "test_mpjpe": offsets[rep],
            "history": [{"epoch": e, "val_mpjpe": offsets[rep] + 1.0} for e in epochs],
            "wall_time_s": 1.5 + rep,
        })
        preds.append(shifted(test["y3d"], test["mask"], offsets[rep]))
    (d / "runs.json").write_text(json.dumps(runs, indent=1))
    np.savez(d / "predictions.npz", pred=np.stack(preds),
             repetition=np.array(order, dtype=np.int64))
    return d


def write_no_real_data(root: Path, model: str, offset: float, test: dict[str, np.ndarray]
                       ) -> Path:
    """``pretrained/<model>/none/``: the weights before fine-tuning, as the fine-tuning stage
    writes them (one run, no subjects, no frames, no steps, no history)."""
    d = root / "pretrained" / model / "none"
    d.mkdir(parents=True, exist_ok=True)
    record = {
        "model": model, "init": "pretrained", "setting": "none", "repetition": 0,
        "subjects": [], "train_frames": 0, "epochs_run": 0, "best_epoch": 0, "steps": 0,
        "stopped_early": False, "best_val_mpjpe": offset + 2.0, "test_mpjpe": offset,
        "history": [],
    }
    (d / "runs.json").write_text(json.dumps([record], indent=1))
    np.savez(d / "predictions.npz", pred=shifted(test["y3d"], test["mask"], offset)[None],
             repetition=np.array([0], dtype=np.int64))
    return d


def make_grid(tmp: Path) -> tuple[Path, Path]:
    """The fine-tuning outputs, ``data/real_test.npz``, ``data/real_train.npz`` and
    ``data/subsets/`` of the grid; returns (finetuned_root, test_npz)."""
    test = make_test_set(tmp / "data" / "real_test.npz")
    make_training_pool(tmp / "data" / "real_train.npz")
    write_subsets(tmp / "data" / "subsets")
    root = tmp / "finetuned"
    for m, by_init in OFFSETS.items():
        for i, by_setting in by_init.items():
            for s, offs in by_setting.items():
                order = list(reversed(range(len(offs))))  # stored out of order on purpose
                write_setting(root, m, i, s, offs, test, order=order)
    for m, offset in NO_REAL_DATA_MPJPE.items():
        write_no_real_data(root, m, offset, test)
    pre = tmp / "pretrain"
    pre.mkdir()
    (pre / "semgcn.json").write_text(json.dumps(
        {"best_val_mpjpe": 33.0, "test_mpjpe": 44.0, "epochs_run": 50, "train_frames": 1000}
    ))
    return root, tmp / "data" / "real_test.npz"


def md_table(md: str, heading: str) -> list[list[str]]:
    """Body rows (cells) of the first markdown table after ``heading``."""
    lines = md[md.index(heading):].splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| Model"))
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return rows


def options(qualitative: dict[str, Any] | None = None, pck: dict[str, Any] | None = None,
            alpha: float = 0.05, per_joint_setting: str | None = None) -> Evaluate:
    """An ``evaluate`` section: the first model's typical frame, 3DPCK at 150 mm with 31 AUC
    thresholds, alpha 0.05, the automatic per-joint setting, unless given."""
    q = {"model": None, "inits": ["scratch", "pretrained"], "file_id": None, "frame_id": None,
         **(qualitative or {})}
    k = {"threshold_mm": 150.0, "auc_max_mm": 150.0, "auc_steps": 31, **(pck or {})}
    return Evaluate(qualitative=Qualitative(**q), pck=Pck(**k), alpha=alpha,
                    per_joint_setting=per_joint_setting)


def typed_settings(settings: dict[str, dict[str, Any]]) -> dict[str, SettingDef]:
    return {name: SettingDef(**{"repetitions": 1, "seeds": 1, **d}) for name, d in settings.items()}
