"""Pre-training and fine-tuning runs: what the ``pretrain`` and ``finetune`` stages execute."""

from __future__ import annotations

import json
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from cabinlift import config
from cabinlift.arrays import load_arrays
from cabinlift.errors import CabinliftError
from cabinlift.metrics import mpjpe
from cabinlift.skeleton import COCO13
from cabinlift.subsets import read_subset
from cabinlift.training import (
    PoseTensors,
    Recipe,
    RunSpec,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
    stacked_mpjpe,
    train_runs,
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


def _auto_or_count(params: dict[str, Any], key: str) -> int | None:
    """``params[key]``: None for ``auto``, else an integer >= 1 (anything else is an error)."""
    value = config.get(params, key, (int, str))
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CabinliftError(
            f"params.yaml: key '{key}' must be 'auto' or an integer >= 1, got {value!r}"
        )
    return value


def runs_per_group(params: dict[str, Any], device: torch.device) -> int:
    """How many runs :func:`train_runs` trains together (``train.runs_per_group``). ``auto``:
    8 on a GPU, where a step of these small networks is bound by kernel launches that a stack
    of runs shares; 1 on a CPU, where a step is bound by arithmetic and weight traffic, which
    grow with the number of runs (benchmarks/training_engine.py). Results do not depend on it
    beyond floating-point reassociation."""
    value = _auto_or_count(params, "train.runs_per_group")
    if value is None:
        return 8 if device.type == "cuda" else 1
    return value


def training_workers(params: dict[str, Any], device: torch.device) -> int:
    """How many groups of runs train at once, in threads sharing the CPU cores
    (``train.workers``). ``auto``: one per core on a CPU (each with one intra-op thread: these
    small networks use one core better than they split an operation over two), 1 on a GPU.
    Results depend on it only through floating-point reassociation (a run trained on one thread
    rounds differently than on two), and never on which worker trains which run."""
    value = _auto_or_count(params, "train.workers")
    if value is None:
        if device.type != "cpu":
            return 1
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, cores or 1)
    return value


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
    (result,), stack = train_runs(model, hparams, [RunSpec(seed)], tensors["train"],
                                  tensors["val"], recipe, desc=f"pretrain {model}")
    summary = {
        "model": model,
        "train_frames": len(tensors["train"]),
        "val_frames": len(tensors["val"]),
        "test_frames": len(tensors["test"]),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val_mpjpe": round(result.best_val_mpjpe, 3),
        "test_mpjpe": round(stacked_mpjpe(stack, tensors["test"], recipe)[0], 3),
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


@dataclass
class _SettingJob:
    """One setting of a fine-tuning stage: its runs and where their results go."""

    setting: str
    out_dir: Path
    runs: list[dict[str, Any]]
    chunks: list[list[RunSpec]]


def _finetune(params: dict[str, Any], model: str, init: str, processed: Path,
              jobs: list[tuple[str, Path, Path]], pretrained: Path | None,
              timings_dir: Path | None) -> dict[str, list[dict]]:
    """Train the runs of every ``(setting, subset_path, out_dir)`` of ``jobs``: all their
    groups of runs go to one pool of ``train.workers`` threads (so no core idles at the end of a
    setting), and each setting's outputs are written, in order, as soon as its runs are done."""
    if init not in INITS:
        raise CabinliftError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
    if init == "pretrained" and pretrained is None:
        raise CabinliftError("fine-tuning from pre-trained weights needs --pretrained PATH")
    hparams, recipe, device = _setup(params, model)
    base_seed = config.get(params, "train.seed", int)
    group = runs_per_group(params, device)
    workers = training_workers(params, device)
    subsets = [(setting, read_subset(path), path, out) for setting, path, out in jobs]
    train_arrays = load_arrays(processed / "real_train.npz")
    val = PoseTensors.from_arrays(load_arrays(processed / "real_val.npz"), recipe, device)
    test = PoseTensors.from_arrays(load_arrays(processed / "real_test.npz"), recipe, device)
    start_state = load_checkpoint(pretrained, model, hparams) if init == "pretrained" else None
    pool = PoseTensors.from_arrays(train_arrays, recipe, device)
    n_train = len(pool)
    setting_jobs = []
    for setting, subset, path, out in subsets:
        specs = []
        for run in subset["runs"]:
            idx = np.asarray(run["indices"], dtype=np.int64)
            if len(idx) == 0 or idx.min() < 0 or idx.max() >= n_train:
                raise CabinliftError(
                    f"{path}: run {run['repetition']} has indices outside the training pool "
                    f"of {n_train} frames; re-run the subsets stage"
                )
            specs.append(RunSpec(run_seed(base_seed, model, setting, run["repetition"]), idx,
                                 start_state))
        chunks = [specs[i: i + group] for i in range(0, len(specs), group)]
        setting_jobs.append(_SettingJob(setting, out, subset["runs"], chunks))
    n_chunks = sum(len(j.chunks) for j in setting_jobs)
    workers = min(workers, n_chunks)

    def train_chunk(setting: str, chunk: list[RunSpec]) -> tuple[list, torch.Tensor]:
        res, stack = train_runs(model, hparams, chunk, pool, val, recipe, progress=workers == 1,
                                desc=f"{init} {model} {setting} ({len(chunk)} runs)")
        return res, stack.predict(test.x, recipe.eval_batch_size) * recipe.target_unit_mm

    def write(job: _SettingJob, done: list[tuple[list, torch.Tensor]]) -> list[dict]:
        results = [r for res, _ in done for r in res]
        pred_mm = torch.cat([p for _, p in done])
        return _write_setting(model, init, job, results, pred_mm, test, recipe, hparams,
                              timings_dir)

    out: dict[str, list[dict]] = {}
    bar = tqdm(setting_jobs, desc=f"{init} {model}", unit="setting")
    if workers == 1:
        for job in bar:
            out[job.setting] = write(job, [train_chunk(job.setting, c) for c in job.chunks])
        return out
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // workers))
    try:
        with ThreadPoolExecutor(workers) as ex:
            futures = [[ex.submit(train_chunk, j.setting, c) for c in j.chunks]
                       for j in setting_jobs]
            for job, fs in zip(bar, futures, strict=True):
                out[job.setting] = write(job, [f.result() for f in fs])
    finally:
        torch.set_num_threads(threads)
    return out


def _write_setting(model: str, init: str, job: _SettingJob, results: list, pred_mm: torch.Tensor,
                   test: PoseTensors, recipe: Recipe, hparams: dict[str, Any],
                   timings_dir: Path | None) -> list[dict]:
    """Checkpoints, runs.json and predictions.npz of one setting; its wall-time log."""
    job.out_dir.mkdir(parents=True, exist_ok=True)
    records, times, reps = [], [], []
    for run, result, pred in zip(job.runs, results, pred_mm, strict=True):
        test_mpjpe = float(mpjpe(pred, test.y * recipe.target_unit_mm, test.mask))
        save_checkpoint(job.out_dir / f"run{run['repetition']:02d}.pt", model, hparams,
                        result.best_state,
                        checkpoint_meta(recipe, setting=job.setting, init=init,
                                        repetition=run["repetition"]))
        records.append({
            "model": model, "init": init, "setting": job.setting,
            "repetition": int(run["repetition"]),
            "subjects": [int(s) for s in run["subjects"]],
            "train_frames": len(run["indices"]),
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "best_val_mpjpe": round(result.best_val_mpjpe, 4),
            "test_mpjpe": round(test_mpjpe, 4),
            "history": result.history,
        })
        times.append({"repetition": int(run["repetition"]),
                      "wall_time_s": round(result.wall_time_s, 3)})
        reps.append(int(run["repetition"]))
    preds = pred_mm.cpu().numpy().astype(np.float32)
    np.savez(job.out_dir / "predictions.npz", pred=preds, repetition=np.asarray(reps))
    (job.out_dir / "runs.json").write_text(json.dumps(records, indent=1) + "\n")
    if timings_dir is not None:
        write_timings(timings_dir / "finetune" / init / model / f"{job.setting}.json", times)
    return [{**r, "wall_time_s": t["wall_time_s"]} for r, t in zip(records, times, strict=True)]


def run_finetune(params: dict[str, Any], model: str, setting: str, init: str, processed: Path,
                 subset_path: Path, out_dir: Path, pretrained: Path | None = None,
                 timings_dir: Path | None = None) -> list[dict]:
    """Every run of one setting: each on its subset (from scratch or from the pre-trained
    weights), keeping its best-val checkpoint, then predicting the test set.

    Writes ``run<r>.pt``, ``runs.json`` (one record per run) and ``predictions.npz`` (``pred``
    (R, N_test, 13, 3) float32 mm, ``repetition`` (R,)) into ``out_dir``, and the runs' wall
    times to ``<timings_dir>/finetune/<init>/<model>/<setting>.json``. Returns the records with
    wall times.
    """
    return _finetune(params, model, init, processed, [(setting, subset_path, out_dir)],
                     pretrained, timings_dir)[setting]


def run_finetune_all(params: dict[str, Any], model: str, init: str, processed: Path,
                     subsets_dir: Path, out_root: Path, pretrained: Path | None = None,
                     timings_dir: Path | None = None,
                     settings: list[str] | None = None) -> dict[str, list[dict]]:
    """:func:`run_finetune` for every setting (default: all of params' ``settings``), each into
    ``out_root/<setting>``; one stage per (model, init) saves the per-stage start-up cost that
    dominates a grid of small runs. Returns the records per setting."""
    names = list(config.settings(params)) if settings is None else settings
    jobs = [(name, subsets_dir / f"{name}.json", out_root / name) for name in names]
    return _finetune(params, model, init, processed, jobs, pretrained, timings_dir)
