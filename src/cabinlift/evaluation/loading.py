"""Reading what the other stages wrote, with errors that say which file is wrong.

The evaluate stage is the last link of a long pipeline; a stale or mis-placed file upstream
would otherwise surface as a silently wrong number in Table 1, so every input is checked
against the contract (keys, shapes, and that the run files match the directory they sit in).
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cabinlift.config import NO_REAL_DATA
from cabinlift.errors import CabinliftError
from cabinlift.jsonfiles import read_json
from cabinlift.skeleton import NUM_JOINTS

#: Keys every entry of a ``runs.json`` must carry, with the Python types accepted.
RUN_KEYS: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "init": (str,),
    "setting": (str,),
    "repetition": (int,),
    "subjects": (list,),
    "train_frames": (int,),
    "epochs_run": (int,),
    "best_epoch": (int,),
    "steps": (int,),
    "best_val_mpjpe": (int, float),
    "test_mpjpe": (int, float),
    "history": (list,),
}

#: The message of a runs.json or pre-training summary that is not JSON (or not UTF-8).
NOT_VALID_JSON = "{path}: not valid JSON ({error})"


def load_timings(timings_root: str | Path | None, model: str, init: str, setting: str
                 ) -> dict[int, float]:
    """Wall time per repetition from ``<timings_root>/<init>/<model>/<setting>.json``.

    Timings are logs, not results: they are kept out of the DVC outputs (which must be identical
    for identical params) and may be missing, in which case runs.csv leaves them empty.
    """
    if timings_root is None:
        return {}
    path = Path(timings_root) / init / model / f"{setting}.json"
    if not path.is_file():
        return {}
    expected = "{path}: expected a JSON list of {{repetition, wall_time_s}} ({error})"
    rows = read_json(path, invalid=expected, not_utf8=expected)
    try:
        return {int(r["repetition"]): float(r["wall_time_s"]) for r in rows}
    except (KeyError, TypeError, ValueError) as exc:
        raise CabinliftError(expected.format(path=path, error=exc)) from None


@dataclass(frozen=True)
class TestSet:
    """The real test split. ``y3d`` is zeroed at unannotated joints so that a NaN or any value
    stored there can never leak into an error (masked entries are multiplied by 0, and NaN*0 is
    NaN)."""

    __test__ = False  # not a pytest test class, despite the name

    path: Path
    x2d: np.ndarray  # (N, J, 2)
    y3d: np.ndarray  # (N, J, 3) float64 mm, 0 where ~mask
    mask: np.ndarray  # (N, J) bool
    subject: np.ndarray  # (N,) int64
    frame_id: np.ndarray  # (N,) int64
    file_id: np.ndarray  # (N,) str
    activity: np.ndarray  # (N,) str, '' = unknown

    @property
    def n_frames(self) -> int:
        return int(self.mask.shape[0])


@dataclass(frozen=True)
class SettingRuns:
    """All runs of one (model, init, setting): the runs.json entries and their predictions."""

    model: str
    init: str
    setting: str
    directory: Path
    runs: list[dict[str, Any]]  # runs.json order
    pred: np.ndarray  # (R, N, J, 3) float32 mm


def _load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise CabinliftError(f"{path}: file not found (expected the {what})")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:  # object arrays need pickle; the contract says plain arrays
        raise CabinliftError(
            f"{path}: cannot read the {what} without pickle ({exc}); expected plain numeric and "
            "unicode-string arrays"
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise CabinliftError(f"{path}: not a readable .npz file ({exc})") from None


def _need(
    path: Path, arrays: dict[str, np.ndarray], key: str, shape: tuple, kind: str
) -> np.ndarray:
    """Fetch ``key`` and check its shape (None = any size) and dtype kind ('f', 'i', 'b', 'U')."""
    if key not in arrays:
        raise CabinliftError(f"{path}: missing array {key!r} (has {sorted(arrays)})")
    a = arrays[key]
    ok_shape = a.ndim == len(shape) and all(
        s is None or s == d for s, d in zip(shape, a.shape, strict=False)
    )
    shown = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
    if not ok_shape:
        raise CabinliftError(f"{path}: array {key!r} has shape {a.shape}, expected {shown}")
    kinds = {"f": "f", "i": "iu", "b": "b", "U": "US"}[kind]
    if kind == "b" and a.dtype.kind in "iu" and np.isin(a, (0, 1)).all():
        a = a.astype(bool)
    if a.dtype.kind not in kinds and not (kind == "f" and a.dtype.kind in "iu"):
        raise CabinliftError(f"{path}: array {key!r} has dtype {a.dtype}, expected kind {kind!r}")
    if a.dtype.kind == "S":  # bytes written by an older numpy/h5py path: same text
        a = np.char.decode(a, "utf-8")
    return a


def load_test_set(path: str | Path) -> TestSet:
    """Load and check ``real_test.npz`` (keys x2d, y3d, mask, subject, frame_id, file_id,
    activity)."""
    path = Path(path)
    z = _load_npz(path, "real test set")
    J = NUM_JOINTS
    y3d = _need(path, z, "y3d", (None, J, 3), "f")
    n = y3d.shape[0]
    x2d = _need(path, z, "x2d", (n, J, 2), "f")
    mask = _need(path, z, "mask", (n, J), "b").astype(bool)
    subject = _need(path, z, "subject", (n,), "i").astype(np.int64)
    frame_id = _need(path, z, "frame_id", (n,), "i").astype(np.int64)
    file_id = _need(path, z, "file_id", (n,), "U")
    activity = _need(path, z, "activity", (n,), "U")
    if n == 0:
        raise CabinliftError(f"{path}: the test set has no frames")
    if not mask.any():
        raise CabinliftError(f"{path}: 'mask' marks no joint as valid; nothing to evaluate")
    y = np.asarray(y3d, dtype=np.float64)
    if not np.isfinite(y[mask]).all():
        raise CabinliftError(f"{path}: 'y3d' has non-finite values at joints 'mask' marks valid")
    y = np.where(mask[..., None], y, 0.0)
    return TestSet(path, x2d, y, mask, subject, frame_id, file_id, activity)


def _check_run_entry(path: Path, i: int, run: Any, model: str, init: str, setting: str) -> None:
    if not isinstance(run, dict):
        raise CabinliftError(f"{path}: entry {i} is {type(run).__name__}, expected an object")
    for key, types in RUN_KEYS.items():
        if key not in run:
            raise CabinliftError(f"{path}: entry {i} lacks key {key!r}")
        v = run[key]
        if isinstance(v, bool) or not isinstance(v, types):
            names = " or ".join(t.__name__ for t in types)
            raise CabinliftError(f"{path}: entry {i} key {key!r} is {v!r}, expected {names}")
    if "stopped_early" not in run:
        raise CabinliftError(f"{path}: entry {i} lacks key 'stopped_early'")
    if not isinstance(run["stopped_early"], bool):
        raise CabinliftError(
            f"{path}: entry {i} key 'stopped_early' is {run['stopped_early']!r}, expected "
            "true or false"
        )
    for key in ("best_val_mpjpe", "test_mpjpe"):
        if not math.isfinite(run[key]):
            raise CabinliftError(f"{path}: entry {i} key {key!r} is {run[key]!r}, expected finite")
    if run["steps"] < 0:
        raise CabinliftError(f"{path}: entry {i} key 'steps' is {run['steps']}, expected >= 0")
    for k, h in enumerate(run["history"]):
        epoch = h.get("epoch") if isinstance(h, dict) else None
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise CabinliftError(
                f"{path}: entry {i} history[{k}] is {h!r}, expected an object with an integer "
                "'epoch'"
            )
    subj = run["subjects"]
    untrained = setting == NO_REAL_DATA  # the pre-trained weights: no real training subject
    if (not subj and not untrained) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in subj
    ):
        raise CabinliftError(
            f"{path}: entry {i} key 'subjects' is {subj!r}, expected a non-empty list of int"
        )
    for key, want in (("model", model), ("init", init), ("setting", setting)):
        if run[key] != want:
            raise CabinliftError(
                f"{path}: entry {i} has {key} {run[key]!r} but the directory is for {want!r} "
                "(stale or misplaced file?)"
            )


def load_setting_runs(
    finetuned_root: str | Path, model: str, init: str, setting: str, n_frames: int,
    timings_root: str | Path | None = None,
) -> SettingRuns:
    """Load ``<root>/<init>/<model>/<setting>/{runs.json,predictions.npz}`` and check that the
    two agree with each other, with the directory and with the test set size."""
    d = Path(finetuned_root) / init / model / setting
    if not d.is_dir():
        raise CabinliftError(
            f"{d}: directory not found (expected the fine-tuning results of "
            f"{init}/{model}/{setting})"
        )
    runs_path = d / "runs.json"
    runs = read_json(runs_path, missing="{path}: file not found (expected the list of runs)",
                     invalid=NOT_VALID_JSON, not_utf8=NOT_VALID_JSON)
    if not isinstance(runs, list) or not runs:
        raise CabinliftError(f"{runs_path}: expected a non-empty JSON list of runs")
    for i, run in enumerate(runs):
        _check_run_entry(runs_path, i, run, model, init, setting)
    times = load_timings(timings_root, model, init, setting)
    for run in runs:
        run.setdefault("wall_time_s", times.get(run["repetition"], float("nan")))
    reps = [r["repetition"] for r in runs]
    if len(set(reps)) != len(reps):
        raise CabinliftError(f"{runs_path}: duplicate repetition numbers {reps}")

    pred_path = d / "predictions.npz"
    z = _load_npz(pred_path, "test-set predictions")
    pred = _need(pred_path, z, "pred", (None, None, NUM_JOINTS, 3), "f")
    rep = _need(pred_path, z, "repetition", (None,), "i")
    if pred.shape[0] != len(runs) or rep.shape[0] != len(runs):
        raise CabinliftError(
            f"{pred_path}: holds {pred.shape[0]} predictions and {rep.shape[0]} repetitions, "
            f"expected {len(runs)} (one per entry of {runs_path.name})"
        )
    if pred.shape[1] != n_frames:
        raise CabinliftError(
            f"{pred_path}: 'pred' has {pred.shape[1]} frames, expected {n_frames} "
            "(the size of the test set; stale predictions?)"
        )
    if [int(r) for r in rep] != reps:
        raise CabinliftError(
            f"{pred_path}: 'repetition' is {[int(r) for r in rep]}, expected {reps} "
            f"(the order of {runs_path.name})"
        )
    return SettingRuns(model, init, setting, d, runs, pred)


def load_no_real_data(
    finetuned_root: str | Path, model: str, n_frames: int, seeds: int = 1,
) -> SettingRuns:
    """The pre-trained weights of ``model`` evaluated before any fine-tuning, which the
    pre-trained fine-tuning stage writes to ``<root>/pretrained/<model>/none/`` in the layout of a
    setting: one run without training frames per pre-training (``seeds`` of them)."""
    d = Path(finetuned_root) / "pretrained" / model / NO_REAL_DATA
    if not d.is_dir():
        raise CabinliftError(
            f"{d}: directory not found (expected the pre-trained {model} weights evaluated "
            f"before fine-tuning); re-run `dvc repro finetune_pretrained@{model}`"
        )
    data = load_setting_runs(finetuned_root, model, "pretrained", NO_REAL_DATA, n_frames)
    runs_path = d / "runs.json"
    if len(data.runs) != seeds or any(r["train_frames"] != 0 for r in data.runs):
        raise CabinliftError(
            f"{runs_path}: expected {seeds} run(s) with train_frames 0 (the weights of each "
            f"pre-training before fine-tuning: 'pretrain.seeds' is {seeds}), found "
            f"{len(data.runs)} run(s) with train_frames "
            f"{[r['train_frames'] for r in data.runs]}; re-run "
            f"`dvc repro finetune_pretrained@{model}`"
        )
    return data


def load_pretrain_summaries(pretrain_dir: str | Path | None, models: list[str]) -> dict[str, Any]:
    """Pre-training summaries ``<dir>/<model>.json`` that exist (they are optional)."""
    out: dict[str, Any] = {}
    if pretrain_dir is None:
        return out
    for m in models:
        p = Path(pretrain_dir) / f"{m}.json"
        if not p.is_file():
            continue
        data = read_json(p, invalid=NOT_VALID_JSON, not_utf8=NOT_VALID_JSON)
        if not isinstance(data, dict):
            raise CabinliftError(f"{p}: expected a JSON object with the pre-training summary")
        missing = [
            k for k in ("best_val_mpjpe", "test_mpjpe", "epochs_run", "train_frames")
            if k not in data
        ]
        if missing:
            raise CabinliftError(f"{p}: missing key(s) {', '.join(missing)}")
        out[m] = data
    return out
