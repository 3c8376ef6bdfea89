"""Pre-training and fine-tuning runs: what the ``pretrain`` and ``finetune`` stages execute."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from cabinlift import atomic
from cabinlift.arrays import load_arrays
from cabinlift.config import INITS, NO_REAL_DATA, Params
from cabinlift.config import Executor as ExecutorSection
from cabinlift.errors import CabinliftError
from cabinlift.executors import Unit, is_remote, open_executor
from cabinlift.metrics import mpjpe, to_mm
from cabinlift.skeleton import COCO13
from cabinlift.subsets import read_subset
from cabinlift.training.checkpoints import build_with_weights, load_checkpoint, save_checkpoint
from cabinlift.training.data import PoseTensors, predict, resolve_device
from cabinlift.training.recipe import Recipe, RunSpec, TrainResult, train_runs, validation_mpjpe
from cabinlift.training.store import RunStore, StoredRun, code_version, digest, file_digest


def run_seed(base: int, *parts: object) -> int:
    """A stable 31-bit seed for one run. Scratch and pre-trained runs of the same model,
    setting and repetition share it, so they see the same batch order (a paired comparison)."""
    key = "/".join(str(p) for p in (base, *parts))
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


def _setup(params: Params, model: str) -> tuple[dict[str, Any], Recipe, torch.device]:
    return (params.hparams(model), Recipe.from_config(params.train),
            training_device(params.train.device, params.executor))


def training_device(name: str, executor: ExecutorSection | None) -> torch.device:
    """The device every run of a stage trains on (``train.device`` ``name``). Locally, ``auto``
    is CUDA when this machine has it. On Ray it is the tasks' device, decided before any task
    starts (it is part of every run's store key) and independent of the machine the stage runs
    on: ``auto`` is CUDA when a task reserves GPUs (``executor.gpus_per_task``), else the CPU;
    a task sees its own GPUs as ``cuda:0``, ...."""
    if not is_remote(executor):
        return resolve_device(name)
    if name == "auto":
        return torch.device("cuda" if executor.gpus_per_task > 0 else "cpu")
    return torch.device(name)


def runs_per_group(params: Params, device: torch.device) -> int:
    """How many runs :func:`train_runs` trains together (``train.runs_per_group``). ``auto``:
    8 on a GPU, where a step of these small networks is bound by kernel launches that a stack
    of runs shares; 1 on a CPU, where a step is bound by arithmetic and weight traffic, which
    grow with the number of runs (benchmarks/training_engine.py). Results do not depend on it
    beyond floating-point reassociation."""
    value = params.train.runs_per_group
    if value == "auto":
        return 8 if device.type == "cuda" else 1
    return value


def training_workers(params: Params, device: torch.device) -> int:
    """How many groups of runs train at once, in threads sharing the stage's thread budget
    (``train.workers``). ``auto``: one per thread of the budget on a CPU (each with one intra-op
    thread: these small networks use one core better than they split an operation over two),
    1 on a GPU. Results depend on it only through floating-point reassociation (a run trained on
    one thread rounds differently than on two), and never on which worker trains which run."""
    value = params.train.workers
    if value == "auto":
        return 1 if device.type != "cpu" else torch.get_num_threads()
    return value


def checkpoint_meta(recipe: Recipe, **extra: Any) -> dict[str, Any]:
    """What a checkpoint needs beyond its weights to be applied on its own (``cabinlift lift``):
    the joint order of its inputs/outputs and the millimetres per output unit."""
    return {"joints": list(COCO13), "target_unit_mm": recipe.target_unit_mm, **extra}


def write_timings(path: Path, rows: list[dict[str, Any]]) -> None:
    """Wall times go to a log beside the DVC outputs, never into them: outputs must be
    byte-identical for identical params (so a fresh ``dvc repro`` leaves dvc.lock unchanged)."""
    atomic.write_atomic(path, json.dumps(rows) + "\n")


def log(message: str) -> None:
    """One line on stderr per finished or reused run (tqdm-safe): the stage's log."""
    tqdm.write(message, file=sys.stderr)


def _stored(result: TrainResult, **extra: Any) -> StoredRun:
    return StoredRun(result.best_state, result.best_val_mpjpe, result.best_epoch,
                     result.epochs_run, result.wall_time_s, result.history, extra,
                     result.steps, result.stopped_early)


def _threads_per_run(workers: int) -> int:
    """Intra-op threads each run trains on when ``workers`` groups train at once, out of the
    stage's budget (``threads`` of params.yaml, set by the command line entry)."""
    threads = torch.get_num_threads()
    return threads if workers == 1 else max(1, threads // workers)


def _stage_key(model: str, hparams: Params, recipe: Recipe, device: torch.device,
               threads: int, data: list[Path], init: Path | None = None) -> dict[str, Any]:
    """What every run of a stage shares in its store key (see :mod:`cabinlift.training.store`)."""
    return {
        "model": model, "hparams": hparams, "recipe": dataclasses.asdict(recipe),
        "device": str(device), "threads": threads, "code": code_version(model),
        "data": {p.name: file_digest(p) for p in data},
        "init": None if init is None else file_digest(init),
    }


def _on_cpu(run: StoredRun) -> StoredRun:
    """A run's tensors on the CPU: what a Ray task sends back (the stage's machine may have no
    GPU); checkpoints and store entries hold CPU tensors either way."""
    return dataclasses.replace(run, best_state={k: v.detach().cpu()
                                                for k, v in run.best_state.items()})


def _absolute(store: RunStore) -> RunStore:
    """The store as a task sees it: a Ray worker does not run in the project folder, so a
    relative ``store.dir`` is made absolute (on a cluster it must name a shared filesystem);
    snapshots of runs in training go there too."""
    out = copy.copy(store)
    out.root = None if store.root is None else store.root.resolve()
    return out


def _tensors(arrays: dict[str, dict[str, np.ndarray]], unit_mm: float, device: torch.device
             ) -> dict[str, PoseTensors]:
    """Arrays as a unit computes on them; arrays from Ray's object store are read-only, so
    they are copied first."""
    return {s: PoseTensors.from_arrays({k: np.array(v) for k, v in a.items()}, unit_mm, device)
            for s, a in arrays.items()}


def _pretrain_unit(model: str, hparams: dict[str, Any], recipe: Recipe, seed: int,
                   key: str | None, tensors: dict[str, PoseTensors], store: RunStore
                   ) -> StoredRun:
    """One pre-training (a unit of the ``pretrain`` stage): taken from ``store`` when an
    identical run finished before, else trained (continuing from its snapshot when one is
    there), tested on the synthetic test split and kept in the store."""
    run = store.get(key) if key else None
    if run is not None:
        log(f"pretrain {model}: reused {key[:12]} (trained earlier in {run.wall_time_s:.1f} s)")
        return run
    (result,), stack = train_runs(model, hparams, [RunSpec(seed)], tensors["train"],
                                  tensors["val"], recipe, desc=f"pretrain {model}",
                                  store=store, keys=[key], log=log)
    run = _stored(result, test_mpjpe=validation_mpjpe(stack, tensors["test"], recipe)[0])
    if key:
        store.put(key, run, {"stage": "pretrain", "model": model})
        store.remove_snapshot([key])
    log(f"pretrain {model}: trained in {run.wall_time_s:.1f} s")
    return run


def _remote_pretrain_unit(model: str, hparams: dict[str, Any], recipe: Recipe, seed: int,
                          key: str | None, arrays: dict[str, dict[str, np.ndarray]],
                          device: str, store: RunStore) -> StoredRun:
    """:func:`_pretrain_unit` as a Ray task: the shared arrays become tensors on the task's
    device."""
    tensors = _tensors(arrays, recipe.target_unit_mm, torch.device(device))
    return _on_cpu(_pretrain_unit(model, hparams, recipe, seed, key, tensors, store))


def run_pretrain_all(params: Params, jobs: list[tuple[str, Path, Path]], processed: Path,
                     timings_dir: Path | None = None, store: RunStore | None = None
                     ) -> dict[str, dict[str, Any]]:
    """Pre-train every ``(model, checkpoint_path, summary_path)`` of ``jobs`` on the synthetic
    training split, keeping the best synthetic-val weights (each reused from ``store`` when an
    identical run finished before). The pre-trainings are the units of one stage: on Ray they
    run at the same time; locally one after another, each on the stage's whole thread budget.
    Outputs are written in the order of ``jobs``. Returns each model's summary with its wall
    time."""
    store = store or RunStore(None)
    files = [processed / f"synthetic_{s}.npz" for s in ("train", "val", "test")]
    arrays = {s: load_arrays(f) for s, f in zip(("train", "val", "test"), files, strict=True)}
    record = None if timings_dir is None else timings_dir / "units" / "pretrain.jsonl"
    setups = {model: _setup(params, model) for model, _, _ in jobs}
    out = {}
    with open_executor(params.executor, record=record, source=params.source) as executor:
        units = []
        shared = executor.share(arrays) if executor.remote else None
        tensors: dict[torch.device, dict[str, PoseTensors]] = {}
        for model, _, _ in jobs:
            hparams, recipe, device = setups[model]
            seed = run_seed(params.train.seed, model, "pretrain")
            key = digest({"stage": "pretrain", "seed": seed, **_stage_key(
                model, hparams, recipe, device, executor.threads, files)}
                ) if store.enabled else None
            if executor.remote:
                units.append(Unit(f"pretrain {model}", _remote_pretrain_unit, (
                    model, hparams, recipe, seed, key, shared, str(device), _absolute(store))))
                continue
            if device not in tensors:
                tensors[device] = {s: PoseTensors.from_arrays(a, recipe.target_unit_mm, device)
                                   for s, a in arrays.items()}
            units.append(Unit(f"pretrain {model}", _pretrain_unit,
                              (model, hparams, recipe, seed, key, tensors[device], store)))
        with contextlib.closing(executor.map(units, "pretrain")) as results:
            for (model, ckpt_path, summary_path), run in zip(jobs, results, strict=True):
                hparams, recipe, _ = setups[model]
                out[model] = _write_pretrain(model, hparams, recipe, run, arrays, ckpt_path,
                                             summary_path, timings_dir)
    store.clean()
    return out


def _write_pretrain(model: str, hparams: dict[str, Any], recipe: Recipe, run: StoredRun,
                    arrays: dict[str, dict[str, np.ndarray]], ckpt_path: Path,
                    summary_path: Path, timings_dir: Path | None) -> dict[str, Any]:
    """A pre-training's checkpoint, its summary JSON and its wall-time log."""
    summary = {
        "model": model,
        "train_frames": len(arrays["train"]["x2d"]),
        "val_frames": len(arrays["val"]["x2d"]),
        "test_frames": len(arrays["test"]["x2d"]),
        "epochs_run": run.epochs_run,
        "best_epoch": run.best_epoch,
        "steps": run.steps,
        "stopped_early": run.stopped_early,
        "best_val_mpjpe": round(run.best_val_mpjpe, 3),
        "test_mpjpe": round(run.extra["test_mpjpe"], 3),
        "history": run.history,
    }
    save_checkpoint(ckpt_path, model, hparams, run.best_state,
                    checkpoint_meta(recipe, summary=summary))
    atomic.write_atomic(summary_path, json.dumps(summary, indent=2) + "\n")
    wall = round(run.wall_time_s, 2)
    if timings_dir is not None:
        write_timings(timings_dir / "pretrain" / f"{model}.json",
                      [{"wall_time_s": wall, "reused": run.reused}])
    return {**summary, "wall_time_s": wall}


def run_pretrain(params: Params, model: str, processed: Path, ckpt_path: Path,
                 summary_path: Path, timings_dir: Path | None = None,
                 store: RunStore | None = None) -> dict[str, Any]:
    """Train ``model`` on the synthetic training split, keep the best synthetic-val weights
    (reused from ``store`` when an identical run finished before): :func:`run_pretrain_all`
    for one model."""
    return run_pretrain_all(params, [(model, ckpt_path, summary_path)], processed, timings_dir,
                            store)[model]


@dataclass
class _Group:
    """A stack of runs of one setting trained together: the unit of work of a fine-tuning
    stage, reused whole from the run store or trained whole."""

    setting: str
    repetitions: list[int]
    specs: list[RunSpec]
    keys: list[str | None]  # run-store keys (None: store disabled)


@dataclass
class _Setting:
    """One setting of a fine-tuning stage: its runs (subset records) and where they go."""

    name: str
    out_dir: Path
    runs: list[dict[str, Any]]
    groups: list[_Group]


@dataclass
class _FinetunePlan:
    """Everything a fine-tuning stage trains, decided before any training."""

    model: str
    init: str
    hparams: Params
    recipe: Recipe
    workers: int  # stacks trained at once (local executor)
    settings: list[_Setting]
    threads: int  # intra-op threads of every run (part of its store key)


@dataclass
class _RealData:
    pool: PoseTensors  # the real training split; runs select rows by index
    val: PoseTensors
    test: PoseTensors


def _plan_finetune(params: Params, model: str, init: str, processed: Path,
                   jobs: list[tuple[str, Path, Path]], pretrained: Path | None,
                   store: RunStore, n_train: int, start_state: dict[str, torch.Tensor] | None,
                   setup: tuple[dict[str, Any], Recipe, torch.device]) -> _FinetunePlan:
    """The runs of every ``(setting, subset_path, out_dir)`` of ``jobs``: their seeds, training
    rows and starting weights, cut into stacks of ``train.runs_per_group``, with their store
    keys. The worker count (hence each run's threads, hence its rounding) depends on the whole
    stage, never on how many stacks the store already holds: reused and retrained runs match.
    On Ray every run computes on ``executor.cpus_per_task`` threads. ``setup`` is
    :func:`_setup`'s (hyper-parameters, recipe, device)."""
    hparams, recipe, device = setup
    base_seed = params.train.seed
    size = runs_per_group(params, device)
    settings = []
    for name, path, out in jobs:
        subset = read_subset(path)
        specs = []
        for run in subset["runs"]:
            idx = np.asarray(run["indices"], dtype=np.int64)
            if len(idx) == 0 or idx.min() < 0 or idx.max() >= n_train:
                raise CabinliftError(
                    f"{path}: run {run['repetition']} has indices outside the training pool "
                    f"of {n_train} frames; re-run the subsets stage"
                )
            specs.append(RunSpec(run_seed(base_seed, model, name, run["repetition"]), idx,
                                 start_state))
        reps = [int(r["repetition"]) for r in subset["runs"]]
        groups = [_Group(name, reps[i: i + size], specs[i: i + size], [])
                  for i in range(0, len(specs), size)]
        settings.append(_Setting(name, out, subset["runs"], groups))
    n_groups = sum(len(s.groups) for s in settings)
    if is_remote(params.executor):
        workers, threads = n_groups, params.executor.cpus_per_task
    else:
        workers = min(training_workers(params, device), n_groups)
        threads = _threads_per_run(workers)
    files = [processed / f"real_{s}.npz" for s in ("train", "val", "test")]
    shared = digest({"stage": "finetune", "init_kind": init, **_stage_key(
        model, hparams, recipe, device, threads, files,
        pretrained if init == "pretrained" else None)}) if store.enabled else None
    for setting in settings:
        for group in setting.groups:
            if shared is None:
                group.keys = [None] * len(group.specs)
                continue
            ids = [digest([shared, s.seed, s.indices]) for s in group.specs]
            group.keys = [digest({"run": i, "stack": ids}) for i in ids]
    return _FinetunePlan(model, init, hparams, recipe, workers, settings, threads)


def _train_group(plan: _FinetunePlan, group: _Group, data: _RealData, store: RunStore
                 ) -> list[StoredRun]:
    """The stack's runs from the store when all are there, else trained (and stored) with their
    test-set predictions in millimetres."""
    name = f"finetune {plan.init} {plan.model} {group.setting}"
    found = [store.get(k) if k else None for k in group.keys]
    if all(r is not None for r in found):
        for rep, k, r in zip(group.repetitions, group.keys, found, strict=True):
            log(f"{name} run {rep:02d}: reused {k[:12]} (trained earlier in {r.wall_time_s:.1f} s)")
        return found
    res, stack = train_runs(plan.model, plan.hparams, group.specs, data.pool, data.val,
                            plan.recipe, progress=plan.workers == 1,
                            desc=f"{name} ({len(group.specs)} runs)", store=store,
                            keys=group.keys, log=log)
    pred_mm = to_mm(stack.predict(data.test.x, plan.recipe.eval_batch_size),
                    plan.recipe.target_unit_mm)
    runs = [_stored(r, pred_mm=p.cpu().clone()) for r, p in zip(res, pred_mm, strict=True)]
    for rep, k, r in zip(group.repetitions, group.keys, runs, strict=True):
        if k:
            store.put(k, r, {"stage": "finetune", "model": plan.model, "init": plan.init,
                             "setting": group.setting, "repetition": rep})
        log(f"{name} run {rep:02d}: trained in {r.wall_time_s:.1f} s")
    store.remove_snapshot(group.keys)
    return runs


def _group_name(plan: _FinetunePlan, group: _Group) -> str:
    reps = group.repetitions
    runs = f"run {reps[0]:02d}" if len(reps) == 1 else f"runs {reps[0]:02d}-{reps[-1]:02d}"
    return f"finetune {plan.init} {plan.model} {group.setting} {runs}"


def _without_init(group: _Group) -> _Group:
    """The stack without its runs' starting weights (they travel once, shared by all stacks)."""
    return dataclasses.replace(group, specs=[dataclasses.replace(s, init_state=None)
                                             for s in group.specs])


def _remote_group(plan: _FinetunePlan, group: _Group, arrays: dict[str, dict[str, np.ndarray]],
                  start_state: dict[str, torch.Tensor] | None, device: str, store: RunStore
                  ) -> list[StoredRun]:
    """:func:`_train_group` as a Ray task: the shared arrays become tensors on the task's
    device, and the shared starting weights go back into the runs (sent once, not per run)."""
    t = _tensors(arrays, plan.recipe.target_unit_mm, torch.device(device))
    group = dataclasses.replace(group, specs=[  # arrays from the object store are read-only
        dataclasses.replace(s, indices=None if s.indices is None else np.array(s.indices),
                            init_state=start_state) for s in group.specs])
    runs = _train_group(plan, group, _RealData(t["train"], t["val"], t["test"]), store)
    return [_on_cpu(r) for r in runs]


def _remote_no_real_data(model: str, hparams: dict[str, Any], state: dict[str, torch.Tensor],
                         pretrained: Path, arrays: dict[str, dict[str, np.ndarray]],
                         recipe: Recipe, device: str) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`_no_real_data` as a Ray task, on the device the runs train on."""
    t = _tensors({s: arrays[s] for s in ("val", "test")}, recipe.target_unit_mm,
                 torch.device(device))
    return _no_real_data(model, hparams, state, pretrained, t["val"], t["test"], recipe)


def _finetune(params: Params, model: str, init: str, processed: Path,
              jobs: list[tuple[str, Path, Path]], pretrained: Path | None,
              timings_dir: Path | None, store: RunStore | None = None,
              zero_dir: Path | None = None) -> dict[str, list[dict]]:
    """Plan the runs of every ``(setting, subset_path, out_dir)`` of ``jobs``, train their
    stacks on the executor of params.yaml (locally: one pool of ``train.workers`` threads, so no
    core idles at the end of a setting; on Ray: every stack a task), and write each setting's
    outputs, in order, as soon as its runs are done. Every finished stack is kept in ``store``
    at once; stacks already there are reused. With pre-trained weights and ``zero_dir``, the
    weights as they start are evaluated there first (see :func:`_no_real_data`)."""
    if init not in INITS:
        raise CabinliftError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
    if init == "pretrained" and pretrained is None:
        raise CabinliftError("fine-tuning from pre-trained weights needs --pretrained PATH")
    setup = hparams, recipe, device = _setup(params, model)
    store = store or RunStore(None)
    files = [processed / f"real_{s}.npz" for s in ("train", "val", "test")]
    arrays = {s: load_arrays(f) for s, f in zip(("train", "val", "test"), files, strict=True)}
    start_state = load_checkpoint(pretrained, model, hparams) if init == "pretrained" else None
    zero = zero_dir is not None and start_state is not None
    plan = _plan_finetune(params, model, init, processed, jobs, pretrained, store,
                          len(arrays["train"]["x2d"]), start_state, setup)
    groups = [g for s in plan.settings for g in s.groups]
    unit_mm = recipe.target_unit_mm
    record = (None if timings_dir is None
              else timings_dir / "units" / f"finetune_{init}_{model}.jsonl")
    with open_executor(params.executor, plan.workers, plan.threads, record,
                       params.source) as executor:
        if executor.remote:
            test = PoseTensors.from_arrays(arrays["test"], unit_mm, torch.device("cpu"))
            shared, state = executor.share(arrays), executor.share(start_state)
            light = dataclasses.replace(plan, settings=[])  # what a stack needs of the plan
            units = [Unit(f"finetune pretrained {model} {NO_REAL_DATA}", _remote_no_real_data,
                          (model, hparams, state, pretrained, shared, recipe, str(device)))
                     ] if zero else []
            units += [Unit(_group_name(plan, g), _remote_group, (
                light, _without_init(g), shared, state, str(device), _absolute(store)))
                for g in groups]
        else:
            val, test = (PoseTensors.from_arrays(arrays[s], unit_mm, device)
                         for s in ("val", "test"))
            if zero:
                _write_no_real_data(zero_dir, *_no_real_data(
                    model, hparams, start_state, pretrained, val, test, recipe))
            data = _RealData(PoseTensors.from_arrays(arrays["train"], unit_mm, device), val, test)
            units = [Unit(_group_name(plan, g), _train_group, (plan, g, data, store))
                     for g in groups]
        out: dict[str, list[dict]] = {}
        with contextlib.closing(executor.map(units, f"{init} {model}")) as results:
            if zero and executor.remote:
                _write_no_real_data(zero_dir, *next(results))
            for setting in plan.settings:
                runs = [r for _ in setting.groups for r in next(results)]
                out[setting.name] = _write_setting(plan, setting, runs, test, timings_dir)
    store.clean()
    return out


def _write_setting(plan: _FinetunePlan, job: _Setting, runs: list[StoredRun],
                   test: PoseTensors, timings_dir: Path | None) -> list[dict]:
    """Checkpoints, runs.json and predictions.npz of one setting (each written atomically, the
    list of runs last); its wall-time log."""
    model, init, recipe = plan.model, plan.init, plan.recipe
    job.out_dir.mkdir(parents=True, exist_ok=True)
    records, times, reps, preds = [], [], [], []
    target_mm, mask = to_mm(test.y, recipe.target_unit_mm).cpu(), test.mask.cpu()
    for run, result in zip(job.runs, runs, strict=True):
        pred = result.extra["pred_mm"]  # (N_test, J, 3) mm, on the CPU
        test_mpjpe = float(mpjpe(pred, target_mm, mask))
        save_checkpoint(job.out_dir / f"run{run['repetition']:02d}.pt", model, plan.hparams,
                        result.best_state,
                        checkpoint_meta(recipe, setting=job.name, init=init,
                                        repetition=run["repetition"]))
        records.append({
            "model": model, "init": init, "setting": job.name,
            "repetition": int(run["repetition"]),
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


def _no_real_data(model: str, hparams: dict[str, Any], state: dict[str, torch.Tensor],
                  pretrained: Path, val: PoseTensors, test: PoseTensors, recipe: Recipe
                  ) -> tuple[dict[str, Any], np.ndarray]:
    """The pre-trained weights evaluated on the real data before any fine-tuning: the record
    of the pseudo-setting :data:`cabinlift.subsets.NO_REAL_DATA` (one run, no training frames,
    no steps) and its test predictions (float32 mm)."""
    net = build_with_weights(pretrained, model, hparams, state, "re-run the pretrain stage")
    net = net.to(test.x.device)
    unit = recipe.target_unit_mm
    val_mm = to_mm(predict(net, val.x, recipe.eval_batch_size), unit)
    pred_mm = to_mm(predict(net, test.x, recipe.eval_batch_size), unit).cpu()
    target_mm = to_mm(test.y, unit).cpu()
    record = {
        "model": model, "init": "pretrained", "setting": NO_REAL_DATA, "repetition": 0,
        "subjects": [], "train_frames": 0, "epochs_run": 0, "best_epoch": 0, "steps": 0,
        "stopped_early": False,
        "best_val_mpjpe": round(float(mpjpe(val_mm, to_mm(val.y, unit), val.mask)), 4),
        "test_mpjpe": round(float(mpjpe(pred_mm, target_mm, test.mask.cpu())), 4),
        "history": [],
    }
    return record, pred_mm.numpy().astype(np.float32)


def _write_no_real_data(out_dir: Path, record: dict[str, Any], pred: np.ndarray) -> None:
    """``runs.json`` and ``predictions.npz`` of :func:`_no_real_data` in the layout of a
    setting."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.save_npz(out_dir / "predictions.npz", {"pred": pred[None], "repetition": np.asarray([0])})
    atomic.write_atomic(out_dir / "runs.json", json.dumps([record], indent=1) + "\n")


def run_finetune_all(params: Params, model: str, init: str, processed: Path,
                     subsets_dir: Path, out_root: Path, pretrained: Path | None = None,
                     timings_dir: Path | None = None, settings: list[str] | None = None,
                     store: RunStore | None = None) -> dict[str, list[dict]]:
    """Every run of every setting (default: all of params' ``settings``), each on its subset
    (from scratch or from the pre-trained weights), keeping its best-val checkpoint, then
    predicting the test set: ``out_root/<setting>/`` receives ``run<r>.pt``, ``runs.json`` (one
    record per run) and ``predictions.npz`` (``pred`` (R, N_test, 13, 3) float32 mm,
    ``repetition`` (R,)); the runs' wall times go to
    ``<timings_dir>/finetune/<init>/<model>/<setting>.json``. From pre-trained weights,
    ``out_root/none`` also receives those weights evaluated before any fine-tuning. One stage
    per (model, init) saves the per-stage start-up cost that dominates a grid of small runs.
    Returns the records per setting, with wall times."""
    names = list(params.settings) if settings is None else settings
    jobs = [(name, subsets_dir / f"{name}.json", out_root / name) for name in names]
    return _finetune(params, model, init, processed, jobs, pretrained, timings_dir, store,
                     zero_dir=out_root / NO_REAL_DATA)
