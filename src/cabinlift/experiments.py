"""Pre-training and fine-tuning runs: what the ``pretrain`` and ``finetune`` stages execute."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from cabinlift import config
from cabinlift.arrays import load_arrays
from cabinlift.errors import CabinliftError
from cabinlift.lifters import build_lifter
from cabinlift.metrics import mpjpe
from cabinlift.skeleton import COCO13
from cabinlift.subsets import read_subset
from cabinlift.training import (
    PoseTensors,
    Recipe,
    load_checkpoint,
    predict,
    resolve_device,
    save_checkpoint,
    train,
    validation_mpjpe,
)

INITS = ("scratch", "pretrained")


def run_seed(base: int, *parts: object) -> int:
    """A stable 31-bit seed for one run. Scratch and pre-trained runs of the same model,
    setting and repetition share it, so they see the same batch order (a paired comparison)."""
    key = "/".join(str(p) for p in (base, *parts))
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


def _setup(params: dict[str, Any], model: str) -> tuple[dict[str, Any], Recipe, torch.device]:
    hparams = config.check_model(params, model)
    recipe = Recipe.from_params(params)
    device = resolve_device(config.get(params, "train.device", str))
    return hparams, recipe, device


def checkpoint_meta(recipe: Recipe, **extra: Any) -> dict[str, Any]:
    """What a checkpoint needs beyond its weights to be applied on its own (``cabinlift lift``):
    the joint order of its inputs/outputs and the millimetres per output unit."""
    return {"joints": list(COCO13), "target_unit_mm": recipe.target_unit_mm, **extra}


def write_timings(path: Path, rows: list[dict[str, Any]]) -> None:
    """Wall times go to a log beside the DVC outputs, never into them: outputs must be
    byte-identical for identical params (so a fresh ``dvc repro`` leaves dvc.lock unchanged)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows) + "\n")


def run_pretrain(params: dict[str, Any], model: str, processed: Path, ckpt_path: Path,
                 summary_path: Path, timings_dir: Path | None = None) -> dict[str, Any]:
    """Train ``model`` on the synthetic training split, keep the best synthetic-val weights."""
    hparams, recipe, device = _setup(params, model)
    base_seed = config.get(params, "train.seed", int)
    data = {s: load_arrays(processed / f"synthetic_{s}.npz") for s in ("train", "val", "test")}
    tensors = {s: PoseTensors.from_arrays(a, recipe, device) for s, a in data.items()}
    seed = run_seed(base_seed, model, "pretrain")
    torch.manual_seed(seed)
    net = build_lifter(model, **hparams).to(device)
    result = train(net, tensors["train"], tensors["val"], recipe, seed, desc=f"pretrain {model}")
    summary = {
        "model": model,
        "train_frames": len(tensors["train"]),
        "val_frames": len(tensors["val"]),
        "test_frames": len(tensors["test"]),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val_mpjpe": round(result.best_val_mpjpe, 3),
        "test_mpjpe": round(validation_mpjpe(net, tensors["test"], recipe), 3),
        "history": result.history,
    }
    save_checkpoint(ckpt_path, model, hparams, result.best_state,
                    checkpoint_meta(recipe, summary=summary))
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    wall = round(result.wall_time_s, 2)
    if timings_dir is not None:
        write_timings(timings_dir / "pretrain" / f"{model}.json", [{"wall_time_s": wall}])
    return {**summary, "wall_time_s": wall}


def run_finetune(params: dict[str, Any], model: str, setting: str, init: str, processed: Path,
                 subset_path: Path, out_dir: Path, pretrained: Path | None = None,
                 timings_dir: Path | None = None) -> list[dict]:
    """Every run of one setting: train on its subset (from scratch or from the pre-trained
    weights), keep its best-val checkpoint, predict the test set.

    Writes ``run<r>.pt``, ``runs.json`` (one record per run) and ``predictions.npz`` (``pred``
    (R, N_test, 13, 3) float32 mm, ``repetition`` (R,)) into ``out_dir``, and the runs' wall
    times to ``<timings_dir>/finetune/<init>/<model>/<setting>.json``. Returns the records with wall times.
    """
    if init not in INITS:
        raise CabinliftError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
    if init == "pretrained" and pretrained is None:
        raise CabinliftError("fine-tuning from pre-trained weights needs --pretrained PATH")
    hparams, recipe, device = _setup(params, model)
    base_seed = config.get(params, "train.seed", int)
    subset = read_subset(subset_path)
    train_arrays = load_arrays(processed / "real_train.npz")
    val = PoseTensors.from_arrays(load_arrays(processed / "real_val.npz"), recipe, device)
    test = PoseTensors.from_arrays(load_arrays(processed / "real_test.npz"), recipe, device)
    start_state = load_checkpoint(pretrained, model, hparams) if init == "pretrained" else None
    n_train = len(train_arrays["x2d"])
    out_dir.mkdir(parents=True, exist_ok=True)
    records, preds, reps, times = [], [], [], []
    for run in tqdm(subset["runs"], desc=f"{init} {model} {setting}", unit="run"):
        idx = np.asarray(run["indices"], dtype=np.int64)
        if len(idx) == 0 or idx.min() < 0 or idx.max() >= n_train:
            raise CabinliftError(
                f"{subset_path}: run {run['repetition']} has indices outside the training pool "
                f"of {n_train} frames; re-run the subsets stage"
            )
        seed = run_seed(base_seed, model, setting, run["repetition"])
        torch.manual_seed(seed)
        net = build_lifter(model, **hparams)
        if start_state is not None:
            net.load_state_dict(start_state)
        net = net.to(device)
        data = PoseTensors.from_arrays(train_arrays, recipe, device, indices=idx)
        result = train(net, data, val, recipe, seed,
                       desc=f"{init} {model} {setting} r{run['repetition']}")
        pred = predict(net, test.x, recipe.eval_batch_size)
        test_mpjpe = float(mpjpe(pred, test.y, test.mask)) * recipe.target_unit_mm
        pred_mm = pred * recipe.target_unit_mm
        save_checkpoint(out_dir / f"run{run['repetition']:02d}.pt", model, hparams,
                        result.best_state,
                        checkpoint_meta(recipe, setting=setting, init=init,
                                        repetition=run["repetition"]))
        records.append({
            "model": model, "init": init, "setting": setting,
            "repetition": int(run["repetition"]),
            "subjects": [int(s) for s in run["subjects"]],
            "train_frames": len(idx),
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "best_val_mpjpe": round(result.best_val_mpjpe, 4),
            "test_mpjpe": round(test_mpjpe, 4),
            "history": result.history,
        })
        times.append({"repetition": int(run["repetition"]),
                      "wall_time_s": round(result.wall_time_s, 3)})
        preds.append(pred_mm.cpu().numpy().astype(np.float32))
        reps.append(int(run["repetition"]))
    np.savez(out_dir / "predictions.npz", pred=np.stack(preds), repetition=np.asarray(reps))
    (out_dir / "runs.json").write_text(json.dumps(records, indent=1) + "\n")
    if timings_dir is not None:
        write_timings(timings_dir / "finetune" / init / model / f"{setting}.json", times)
    return [{**r, "wall_time_s": t["wall_time_s"]} for r, t in zip(records, times, strict=True)]
