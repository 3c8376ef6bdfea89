"""The units of work of the training stages: one pre-training, one stack of fine-tuning runs,
and the pre-trained weights evaluated before any fine-tuning. The stages
(:mod:`cabinlift.training.stages`) hand them to an executor (:mod:`cabinlift.executors`), which
runs these same functions in this process or as Ray tasks. So each takes portable arguments
(the data splits as NumPy arrays, a device name, a run store whose folder means the same in
the stage's folder), builds its tensors on its device itself, and returns its results on the
CPU."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from cabinlift.metrics import mpjpe, to_mm
from cabinlift.training.checkpoints import build_with_weights
from cabinlift.training.data import PoseTensors, predict
from cabinlift.training.finetuning import Strategy
from cabinlift.training.plan import Group
from cabinlift.training.recipe import Recipe, RunSpec, TrainResult, train_runs, validation_mpjpe
from cabinlift.training.store import RunStore, StoredRun

#: A data split as the stages load it (:func:`cabinlift.arrays.load_arrays`).
Arrays = dict[str, np.ndarray]


def log(message: str) -> None:
    """One line on stderr per finished or reused run (tqdm-safe): the stage's log."""
    tqdm.write(message, file=sys.stderr)


def _tensors(arrays: dict[str, Arrays], unit_mm: float, device: str) -> dict[str, PoseTensors]:
    return {s: PoseTensors.from_arrays(a, unit_mm, torch.device(device))
            for s, a in arrays.items()}


def _stored(result: TrainResult, **extra: Any) -> StoredRun:
    """A trained run as the stage receives it: its weights on the CPU (the stage's machine may
    have no GPU; checkpoints and store entries hold CPU tensors either way)."""
    return StoredRun({k: v.detach().cpu() for k, v in result.best_state.items()},
                     result.best_val_mpjpe, result.best_epoch, result.epochs_run,
                     result.wall_time_s, result.history, extra, result.steps,
                     result.stopped_early)


def pretrain(model: str, hparams: dict[str, Any], recipe: Recipe, seed: int, key: str | None,
             arrays: dict[str, Arrays], device: str, store: RunStore, name: str,
             progress: bool) -> StoredRun:
    """One pre-training on the synthetic ``arrays`` (``train``, ``val``, ``test``): taken from
    ``store`` when an identical run finished before, else trained (continuing from its snapshot
    when one is there), tested on the test split and kept in the store."""
    run = store.get(key) if key else None
    if run is not None:
        log(f"{name}: reused {key[:12]} (trained earlier in {run.wall_time_s:.1f} s)")
        return run
    tensors = _tensors(arrays, recipe.target_unit_mm, device)
    (result,), stack = train_runs(model, hparams, [RunSpec(seed)], tensors["train"],
                                  tensors["val"], recipe, desc=name, store=store, keys=[key],
                                  log=log, progress=progress)
    run = _stored(result, test_mpjpe=validation_mpjpe(stack, tensors["test"], recipe)[0])
    if key:
        store.put(key, run, {"stage": "pretrain", "model": model})
        store.remove_snapshot([key])
    log(f"{name}: trained in {run.wall_time_s:.1f} s")
    return run


def train_stack(model: str, init: str, hparams: dict[str, Any], recipe: Recipe,
                strategy: Strategy, group: Group, arrays: dict[str, Arrays],
                states: list[dict[str, torch.Tensor]] | None, device: str, store: RunStore,
                progress: bool) -> list[StoredRun]:
    """A stack of fine-tuning runs on the real ``arrays``, its runs starting from the
    pre-trained weights ``states`` they name (None: all from scratch) and fine-tuned as
    ``strategy`` says (mixed: with the synthetic training poses ``arrays["synthetic"]``): taken
    from the store when all are there, else trained (and stored) with their test-set
    predictions in millimetres."""
    name = f"finetune {init} {model} {group.setting}"
    found = [store.get(k) if k else None for k in group.keys]
    if all(r is not None for r in found):
        for rep, k, r in zip(group.repetitions, group.keys, found, strict=True):
            log(f"{name} run {rep:02d}: reused {k[:12]} (trained earlier in {r.wall_time_s:.1f} s)")
        return found
    data = _tensors(arrays, recipe.target_unit_mm, device)
    specs = [dataclasses.replace(s, init_state=None if j is None else states[j])
             for s, j in zip(group.specs, group.starts, strict=True)]
    res, stack = train_runs(model, hparams, specs, data["train"], data["val"], recipe,
                            progress=progress, desc=f"{name} ({len(specs)} runs)", store=store,
                            keys=group.keys, log=log, strategy=strategy,
                            synthetic=data.get("synthetic"))
    pred_mm = to_mm(stack.predict(data["test"].x, recipe.eval_batch_size), recipe.target_unit_mm)
    runs = [_stored(r, pred_mm=p.cpu().clone()) for r, p in zip(res, pred_mm, strict=True)]
    for rep, k, r in zip(group.repetitions, group.keys, runs, strict=True):
        if k:
            store.put(k, r, {"stage": "finetune", "model": model, "init": init,
                             "setting": group.setting, "repetition": rep})
        log(f"{name} run {rep:02d}: trained in {r.wall_time_s:.1f} s")
    store.remove_snapshot(group.keys)
    return runs


def evaluate_pretrained(model: str, hparams: dict[str, Any], recipe: Recipe,
                        states: list[dict[str, torch.Tensor]], paths: list[Path],
                        arrays: dict[str, Arrays], device: str
                        ) -> list[tuple[float, float, np.ndarray]]:
    """Each pre-training's weights (``states``, read from ``paths``) on the real data before
    any fine-tuning: its validation and test MPJPE (mm) and its test predictions (float32
    mm)."""
    data = _tensors({s: arrays[s] for s in ("val", "test")}, recipe.target_unit_mm, device)
    val, test = data["val"], data["test"]
    unit = recipe.target_unit_mm
    out = []
    for state, path in zip(states, paths, strict=True):
        net = build_with_weights(path, model, hparams, state, "re-run the pretrain stage")
        net = net.to(test.x.device)
        val_mm = to_mm(predict(net, val.x, recipe.eval_batch_size), unit)
        pred_mm = to_mm(predict(net, test.x, recipe.eval_batch_size), unit).cpu()
        target_mm = to_mm(test.y, unit).cpu()
        out.append((float(mpjpe(val_mm, to_mm(val.y, unit), val.mask)),
                    float(mpjpe(pred_mm, target_mm, test.mask.cpu())),
                    pred_mm.numpy().astype(np.float32)))
    return out
