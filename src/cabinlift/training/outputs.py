"""What the training stages write, from the results their units return: the checkpoints, the
pre-training summaries, each setting's runs.json and predictions.npz, and the wall-time logs
beside them. Every file is written atomically, and nothing in it depends on where or in which
order the units ran (:mod:`cabinlift.executors`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cabinlift import atomic
from cabinlift.config import NO_REAL_DATA
from cabinlift.metrics import mpjpe, to_mm
from cabinlift.skeleton import COCO13
from cabinlift.training.checkpoints import save_checkpoint
from cabinlift.training.data import PoseTensors
from cabinlift.training.plan import FinetunePlan, Setting, pretrained_checkpoints
from cabinlift.training.recipe import Recipe
from cabinlift.training.store import StoredRun


def checkpoint_meta(recipe: Recipe, **extra: Any) -> dict[str, Any]:
    """What a checkpoint needs beyond its weights to be applied on its own (``cabinlift lift``):
    the joint order of its inputs/outputs and the millimetres per output unit."""
    return {"joints": list(COCO13), "target_unit_mm": recipe.target_unit_mm, **extra}


def write_timings(path: Path, rows: list[dict[str, Any]]) -> None:
    """Wall times go to a log beside the DVC outputs, never into them: outputs must be
    byte-identical for identical params (so a fresh ``dvc repro`` leaves dvc.lock unchanged)."""
    atomic.write_atomic(path, json.dumps(rows) + "\n")


def write_pretrain(model: str, hparams: dict[str, Any], recipe: Recipe, runs: list[StoredRun],
                   arrays: dict[str, dict[str, np.ndarray]], ckpt_dir: Path,
                   summary_path: Path, timings_dir: Path | None) -> dict[str, Any]:
    """A lifter's pre-trainings: a checkpoint per seed, the summary JSON (per seed and their
    mean) and the wall-time log. Returns the summary with the wall time of all seeds."""
    seeds = []
    for j, (run, path) in enumerate(zip(runs, pretrained_checkpoints(ckpt_dir, len(runs)),
                                        strict=True)):
        summary = {
            "seed": j,
            "epochs_run": run.epochs_run,
            "best_epoch": run.best_epoch,
            "steps": run.steps,
            "stopped_early": run.stopped_early,
            "best_val_mpjpe": round(run.best_val_mpjpe, 3),
            "test_mpjpe": round(run.extra["test_mpjpe"], 3),
            "history": run.history,
        }
        seeds.append(summary)
        save_checkpoint(path, model, hparams, run.best_state,
                        checkpoint_meta(recipe, summary={"model": model, **summary}))
    test = [s["test_mpjpe"] for s in seeds]
    summary = {
        "model": model,
        "train_frames": len(arrays["train"]["x2d"]),
        "val_frames": len(arrays["val"]["x2d"]),
        "test_frames": len(arrays["test"]["x2d"]),
        "seeds": seeds,
        "best_val_mpjpe": round(float(np.mean([s["best_val_mpjpe"] for s in seeds])), 3),
        "test_mpjpe": round(float(np.mean(test)), 3),
        "test_mpjpe_sd": round(float(np.std(test, ddof=1)), 3) if len(test) > 1 else None,
        "epochs_run": max(s["epochs_run"] for s in seeds),
    }
    atomic.write_atomic(summary_path, json.dumps(summary, indent=2) + "\n")
    walls = [round(run.wall_time_s, 2) for run in runs]
    if timings_dir is not None:
        write_timings(timings_dir / "pretrain" / f"{model}.json",
                      [{"seed": j, "wall_time_s": w, "reused": run.reused}
                       for j, (w, run) in enumerate(zip(walls, runs, strict=True))])
    return {**summary, "wall_time_s": round(sum(walls), 2)}


def write_setting(plan: FinetunePlan, job: Setting, runs: list[StoredRun], test: PoseTensors,
                  timings_dir: Path | None) -> list[dict]:
    """Checkpoints, runs.json and predictions.npz of one setting (each written atomically, the
    list of runs last), scored on the ``test`` split; its wall-time log. Returns the records
    with their wall times."""
    model, init, recipe = plan.model, plan.init, plan.recipe
    job.out_dir.mkdir(parents=True, exist_ok=True)
    records, times, reps, preds = [], [], [], []
    target_mm, mask = to_mm(test.y, recipe.target_unit_mm).cpu(), test.mask.cpu()
    starts = [j for g in job.groups for j in g.starts]
    for run, result, start in zip(job.runs, runs, starts, strict=True):
        pred = result.extra["pred_mm"]  # (N_test, J, 3) mm, on the CPU
        test_mpjpe = float(mpjpe(pred, target_mm, mask))
        strategy = {} if plan.finetune is None else {"finetune": plan.finetune}
        save_checkpoint(job.out_dir / f"run{run['repetition']:02d}.pt", model, plan.hparams,
                        result.best_state,
                        checkpoint_meta(recipe, setting=job.name, init=init,
                                        repetition=run["repetition"], **strategy))
        records.append({
            "model": model, "init": init, "setting": job.name,
            "repetition": int(run["repetition"]),
            "subset": int(run["subset"]),
            "seed": int(run["seed"]),
            "pretrain_seed": start,
            "subjects": [int(s) for s in run["subjects"]],
            "train_frames": len(run["indices"]),
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "steps": result.steps,
            "stopped_early": result.stopped_early,
            "best_val_mpjpe": round(result.best_val_mpjpe, 4),
            "test_mpjpe": round(test_mpjpe, 4),
            "history": result.history,
        })
        times.append({"repetition": int(run["repetition"]),
                      "wall_time_s": round(result.wall_time_s, 3), "reused": result.reused})
        reps.append(int(run["repetition"]))
        preds.append(pred.numpy().astype(np.float32))
    atomic.save_npz(job.out_dir / "predictions.npz",
                    {"pred": np.stack(preds), "repetition": np.asarray(reps)})
    atomic.write_atomic(job.out_dir / "runs.json", json.dumps(records, indent=1) + "\n")
    if timings_dir is not None:
        write_timings(timings_dir / "finetune" / init / model / f"{job.name}.json", times)
    return [{**r, "wall_time_s": t["wall_time_s"], "reused": t["reused"]}
            for r, t in zip(records, times, strict=True)]


def write_no_real_data(out_dir: Path, model: str,
                       evaluations: list[tuple[float, float, np.ndarray]]) -> None:
    """``runs.json`` and ``predictions.npz`` of the pseudo-setting
    :data:`cabinlift.subsets.NO_REAL_DATA`, in the layout of a setting: run ``j`` is
    pre-training ``j``'s weights before any fine-tuning (no training frames, no steps), with its
    validation and test MPJPE and test predictions (:func:`cabinlift.training.units.
    evaluate_pretrained`)."""
    records = [{
        "model": model, "init": "pretrained", "setting": NO_REAL_DATA, "repetition": j,
        "subset": 0, "seed": 0, "pretrain_seed": j,
        "subjects": [], "train_frames": 0, "epochs_run": 0, "best_epoch": 0, "steps": 0,
        "stopped_early": False,
        "best_val_mpjpe": round(val, 4),
        "test_mpjpe": round(test, 4),
        "history": [],
    } for j, (val, test, _) in enumerate(evaluations)]
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.save_npz(out_dir / "predictions.npz",
                    {"pred": np.stack([p for _, _, p in evaluations]),
                     "repetition": np.asarray([r["repetition"] for r in records])})
    atomic.write_atomic(out_dir / "runs.json", json.dumps(records, indent=1) + "\n")
