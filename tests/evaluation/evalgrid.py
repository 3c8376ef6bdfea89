"""Hand-made evaluate-stage inputs with known answers (shared by the evaluation tests).

Predictions are the ground truth shifted by a known offset ``d`` (mm) at every valid joint, so
each run's MPJPE is exactly ``d``; unannotated joints carry NaN ground truth and absurd
predictions, which must change nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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


def make_test_set(path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    y3d = rng.normal(0.0, 200.0, size=(N, J, 3)).astype(np.float32)
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
        runs.append({
            "model": model, "init": init, "setting": setting, "repetition": rep,
            "subjects": [(rep + k) % 8 + 1 for k in range(n_subj)],
            "train_frames": TRAIN_FRAMES[setting] + rep, "epochs_run": 20 + rep,
            "best_epoch": 10 + rep, "best_val_mpjpe": offsets[rep] + 1.0,
            "test_mpjpe": offsets[rep], "wall_time_s": 1.5 + rep,
        })
        preds.append(shifted(test["y3d"], test["mask"], offsets[rep]))
    (d / "runs.json").write_text(json.dumps(runs, indent=1))
    np.savez(d / "predictions.npz", pred=np.stack(preds),
             repetition=np.array(order, dtype=np.int64))
    return d


def make_grid(tmp: Path) -> tuple[Path, Path]:
    test = make_test_set(tmp / "data" / "real_test.npz")
    root = tmp / "finetuned"
    for m, by_init in OFFSETS.items():
        for i, by_setting in by_init.items():
            for s, offs in by_setting.items():
                order = list(reversed(range(len(offs))))  # stored out of order on purpose
                write_setting(root, m, i, s, offs, test, order=order)
    pre = tmp / "pretrain"
    pre.mkdir()
    (pre / "semgcn.json").write_text(json.dumps(
        {"best_val_mpjpe": 33.0, "test_mpjpe": 44.0, "epochs_run": 50, "train_frames": 1000}
    ))
    return root, tmp / "data" / "real_test.npz"
