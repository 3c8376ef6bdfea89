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

from cabinlift import atomic, numerics
from cabinlift.arrays import load_arrays
from cabinlift.config import INITS, NO_REAL_DATA, Params
from cabinlift.config import Executor as ExecutorSection
from cabinlift.errors import CabinliftError
from cabinlift.executors import Unit, is_remote, open_executor
from cabinlift.metrics import mpjpe, to_mm
from cabinlift.resources import thread_budget
from cabinlift.skeleton import COCO13
from cabinlift.subsets import read_subset
from cabinlift.training.checkpoints import build_with_weights, load_checkpoint, save_checkpoint
from cabinlift.training.data import PoseTensors, predict, resolve_device
from cabinlift.training.recipe import Recipe, RunSpec, TrainResult, train_runs, validation_mpjpe
from cabinlift.training.store import RunStore, StoredRun, code_version, digest, file_digest

#: The checkpoint of pre-training seed ``j`` of a lifter, in its folder under models/pretrained.
PRETRAINED_NAME = "seed{j}.pt"


def run_seed(base: int, *parts: object) -> int:
    """A stable 31-bit seed for one run. Scratch and pre-trained runs of the same model,
    setting and repetition share it, so they see the same batch order (a paired comparison)."""
    key = "/".join(str(p) for p in (base, *parts))
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


def pretrain_seed(base: int, model: str, j: int) -> int:
    """The seed of pre-training ``j`` (0, 1, ...) of ``model``."""
    return run_seed(base, model, "pretrain") if j == 0 else run_seed(base, model, "pretrain", j)


def pretrained_checkpoints(folder: Path, seeds: int) -> list[Path]:
    """The checkpoints of a lifter's ``seeds`` pre-trainings in ``folder``."""
    return [folder / PRETRAINED_NAME.format(j=j) for j in range(seeds)]


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
        return 1 if device.type != "cpu" else thread_budget()
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
    stage's budget (``threads`` of params.yaml, set by the command line entry): one in portable
    numerics (:func:`cabinlift.numerics.unit_threads`)."""
    return numerics.unit_threads(thread_budget(), workers)


def _stage_key(model: str, hparams: Params, recipe: Recipe, device: torch.device,
               threads: int, data: list[Path]) -> dict[str, Any]:
    """What every run of a stage shares in its store key (see :mod:`cabinlift.training.store`):
    also the numerics regime it computes under (:func:`cabinlift.numerics.regime`)."""
    return {
        "model": model, "hparams": hparams, "recipe": dataclasses.asdict(recipe),
        "device": str(device), "threads": threads, "code": code_version(model),
        "numerics": numerics.regime(device),
        "data": {p.name: file_digest(p) for p in data},
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
                   key: str | None, tensors: dict[str, PoseTensors], store: RunStore,
                   name: str, progress: bool = True) -> StoredRun:
    """One pre-training (a unit of the ``pretrain`` stage): taken from ``store`` when an
    identical run finished before, else trained (continuing from its snapshot when one is
    there), tested on the synthetic test split and kept in the store."""
    run = store.get(key) if key else None
    if run is not None:
        log(f"{name}: reused {key[:12]} (trained earlier in {run.wall_time_s:.1f} s)")
        return run
    (result,), stack = train_runs(model, hparams, [RunSpec(seed)], tensors["train"],
                                  tensors["val"], recipe, desc=name, store=store, keys=[key],
                                  log=log, progress=progress)
    run = _stored(result, test_mpjpe=validation_mpjpe(stack, tensors["test"], recipe)[0])
    if key:
        store.put(key, run, {"stage": "pretrain", "model": model})
        store.remove_snapshot([key])
    log(f"{name}: trained in {run.wall_time_s:.1f} s")
    return run


def _remote_pretrain_unit(model: str, hparams: dict[str, Any], recipe: Recipe, seed: int,
                          key: str | None, arrays: dict[str, dict[str, np.ndarray]],
                          device: str, store: RunStore, name: str) -> StoredRun:
    """:func:`_pretrain_unit` as a Ray task: the shared arrays become tensors on the task's
    device."""
    tensors = _tensors(arrays, recipe.target_unit_mm, torch.device(device))
    return _on_cpu(_pretrain_unit(model, hparams, recipe, seed, key, tensors, store, name,
                                  progress=False))


def run_pretrain_all(params: Params, jobs: list[tuple[str, Path, Path]], processed: Path,
                     timings_dir: Path | None = None, store: RunStore | None = None
                     ) -> dict[str, dict[str, Any]]:
    """Pre-train every ``(model, checkpoint_folder, summary_path)`` of ``jobs`` on the synthetic
    training split ``pretrain.seeds`` times (each its own seed), keeping each run's best
    synthetic-val weights as ``<checkpoint_folder>/seed<j>.pt`` (each reused from ``store`` when
    an identical run finished before). The pre-trainings are the units of one stage: on Ray
    they run at the same time; locally, in portable numerics, as many at once as the stage has
    threads (each on one), in native numerics one after another on all of them. Outputs are
    written in the order of ``jobs``. Returns each model's summary with its wall time."""
    store = store or RunStore(None)
    files = [processed / f"synthetic_{s}.npz" for s in ("train", "val", "test")]
    arrays = {s: load_arrays(f) for s, f in zip(("train", "val", "test"), files, strict=True)}
    record = None if timings_dir is None else timings_dir / "units" / "pretrain.jsonl"
    setups = {model: _setup(params, model) for model, _, _ in jobs}
    n_seeds = params.pretrain.seeds
    n_units = len(jobs) * n_seeds
    budget = thread_budget()
    workers = 1 if numerics.mode_in_effect() != "portable" else max(1, min(budget, n_units))
    threads = numerics.unit_threads(budget, workers)
    out = {}
    with open_executor(params.executor, workers, threads, record, params.source) as executor:
        units = []
        shared = executor.share(arrays) if executor.remote else None
        tensors: dict[torch.device, dict[str, PoseTensors]] = {}
        for model, _, _ in jobs:
            hparams, recipe, device = setups[model]
            stage_key = _stage_key(model, hparams, recipe, device, executor.threads, files
                                   ) if store.enabled else None
            for j in range(n_seeds):
                seed = pretrain_seed(params.train.seed, model, j)
                key = None if stage_key is None else digest(
                    {"stage": "pretrain", "seed": seed, **stage_key})
                name = f"pretrain {model}" + (f" seed {j}" if n_seeds > 1 else "")
                if executor.remote:
                    units.append(Unit(name, _remote_pretrain_unit, (
                        model, hparams, recipe, seed, key, shared, str(device),
                        _absolute(store), name)))
                    continue
                if device not in tensors:
                    tensors[device] = {s: PoseTensors.from_arrays(a, recipe.target_unit_mm,
                                                                  device)
                                       for s, a in arrays.items()}
                units.append(Unit(name, _pretrain_unit,
                                  (model, hparams, recipe, seed, key, tensors[device], store,
                                   name, workers == 1)))
        with contextlib.closing(executor.map(units, "pretrain")) as results:
            for model, ckpt_dir, summary_path in jobs:
                hparams, recipe, _ = setups[model]
                runs = [next(results) for _ in range(n_seeds)]
                out[model] = _write_pretrain(model, hparams, recipe, runs, arrays, ckpt_dir,
                                             summary_path, timings_dir)
    store.clean()
    return out


def _write_pretrain(model: str, hparams: dict[str, Any], recipe: Recipe, runs: list[StoredRun],
                    arrays: dict[str, dict[str, np.ndarray]], ckpt_dir: Path,
                    summary_path: Path, timings_dir: Path | None) -> dict[str, Any]:
    """A lifter's pre-trainings: a checkpoint per seed, the summary JSON (per seed and their
    mean) and the wall-time log."""
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


def run_pretrain(params: Params, model: str, processed: Path, ckpt_dir: Path,
                 summary_path: Path, timings_dir: Path | None = None,
                 store: RunStore | None = None) -> dict[str, Any]:
    """Pre-train ``model`` ``pretrain.seeds`` times into ``ckpt_dir``: :func:`run_pretrain_all`
    for one model."""
    return run_pretrain_all(params, [(model, ckpt_dir, summary_path)], processed, timings_dir,
                            store)[model]


def run_pretrain_stage(params: Params, models: list[str] | None, processed: Path, out: Path,
                       summaries: Path, timings_dir: Path | None) -> dict[str, dict[str, Any]]:
    """The ``pretrain`` stage: every lifter of ``models`` (default: params' ``models``) into
    ``out/<model>/``, its summary into ``summaries/<model>.json``, with the run store of
    params.yaml."""
    names = models or list(params.models)
    for name in names:
        if name not in params.models:
            raise CabinliftError(f"model {name!r} is not listed under key 'models'")
    jobs = [(name, out / name, summaries / f"{name}.json") for name in names]
    return run_pretrain_all(params, jobs, processed, timings_dir,
                            RunStore.from_config(params.store))


@dataclass
class _Group:
    """A stack of runs of one setting trained together: the unit of work of a fine-tuning
    stage, reused whole from the run store or trained whole."""

    setting: str
    repetitions: list[int]
    specs: list[RunSpec]
    keys: list[str | None]  # run-store keys (None: store disabled)
    starts: list[int | None]  # each run's pre-training (index into _Starts), None from scratch


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
class _Starts:
    """The pre-trained weights fine-tuning starts from: one per pre-training seed; run ``r`` of
    a setting starts from ``states[r % len(states)]``, so the runs of every setting spread over
    the pre-trainings."""

    paths: list[Path]
    states: list[dict[str, torch.Tensor]]
    digests: list[str]

    @classmethod
    def load(cls, paths: list[Path], model: str, hparams: dict[str, Any]) -> _Starts:
        return cls(paths, [load_checkpoint(p, model, hparams) for p in paths],
                   [file_digest(p) for p in paths])

    def of_run(self, r: int) -> int:
        return r % len(self.states)


@dataclass
class _RealData:
    pool: PoseTensors  # the real training split; runs select rows by index
    val: PoseTensors
    test: PoseTensors


def _plan_finetune(params: Params, model: str, init: str, processed: Path,
                   jobs: list[tuple[str, Path, Path]], store: RunStore, n_train: int,
                   starts: _Starts | None,
                   setup: tuple[dict[str, Any], Recipe, torch.device]) -> _FinetunePlan:
    """The runs of every ``(setting, subset_path, out_dir)`` of ``jobs``: their seeds, training
    rows and starting weights (run ``r`` from pre-training ``r % seeds``), cut into stacks of
    ``train.runs_per_group``, with their store keys. The worker count (hence each run's
    threads, hence, in native numerics, its rounding) depends on the whole stage, never on how
    many stacks the store already holds: reused and retrained runs match. On Ray every run
    computes on ``executor.cpus_per_task`` threads. ``setup`` is :func:`_setup`'s
    (hyper-parameters, recipe, device)."""
    hparams, recipe, device = setup
    base_seed = params.train.seed
    size = runs_per_group(params, device)
    settings = []
    for name, path, out in jobs:
        subset = read_subset(path)
        specs, run_starts = [], []
        for run in subset["runs"]:
            idx = np.asarray(run["indices"], dtype=np.int64)
            if len(idx) == 0 or idx.min() < 0 or idx.max() >= n_train:
                raise CabinliftError(
                    f"{path}: run {run['repetition']} has indices outside the training pool "
                    f"of {n_train} frames; re-run the subsets stage"
                )
            start = None if starts is None else starts.of_run(int(run["repetition"]))
            run_starts.append(start)
            specs.append(RunSpec(run_seed(base_seed, model, name, run["repetition"]), idx,
                                 None if start is None else starts.states[start]))
        reps = [int(r["repetition"]) for r in subset["runs"]]
        groups = [_Group(name, reps[i: i + size], specs[i: i + size], [],
                         run_starts[i: i + size]) for i in range(0, len(specs), size)]
        settings.append(_Setting(name, out, subset["runs"], groups))
    n_groups = sum(len(s.groups) for s in settings)
    if is_remote(params.executor):
        workers, threads = n_groups, params.executor.cpus_per_task
    else:
        workers = min(training_workers(params, device), n_groups)
        threads = _threads_per_run(workers)
    files = [processed / f"real_{s}.npz" for s in ("train", "val", "test")]
    shared = digest({"stage": "finetune", "init_kind": init, **_stage_key(
        model, hparams, recipe, device, threads, files)}) if store.enabled else None
    for setting in settings:
        for group in setting.groups:
            if shared is None:
                group.keys = [None] * len(group.specs)
                continue
            ids = [digest([shared, s.seed, s.indices,
                           None if j is None else starts.digests[j]])
                   for s, j in zip(group.specs, group.starts, strict=True)]
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
                  start_states: list[dict[str, torch.Tensor]] | None, device: str,
                  store: RunStore) -> list[StoredRun]:
    """:func:`_train_group` as a Ray task: the shared arrays become tensors on the task's
    device, and the shared starting weights go back into the runs (sent once, not per run)."""
    t = _tensors(arrays, plan.recipe.target_unit_mm, torch.device(device))
    group = dataclasses.replace(group, specs=[  # arrays from the object store are read-only
        dataclasses.replace(s, indices=None if s.indices is None else np.array(s.indices),
                            init_state=None if j is None else start_states[j])
        for s, j in zip(group.specs, group.starts, strict=True)])
    runs = _train_group(plan, group, _RealData(t["train"], t["val"], t["test"]), store)
    return [_on_cpu(r) for r in runs]


def _remote_no_real_data(model: str, hparams: dict[str, Any],
                         states: list[dict[str, torch.Tensor]], paths: list[Path],
                         arrays: dict[str, dict[str, np.ndarray]], recipe: Recipe, device: str
                         ) -> list[tuple[dict[str, Any], np.ndarray]]:
    """:func:`_no_real_data` as a Ray task, on the device the runs train on."""
    t = _tensors({s: arrays[s] for s in ("val", "test")}, recipe.target_unit_mm,
                 torch.device(device))
    return [_no_real_data(model, hparams, state, path, j, t["val"], t["test"], recipe)
            for j, (state, path) in enumerate(zip(states, paths, strict=True))]


def _finetune(params: Params, model: str, init: str, processed: Path,
              jobs: list[tuple[str, Path, Path]], pretrained: Path | None,
              timings_dir: Path | None, store: RunStore | None = None,
              zero_dir: Path | None = None) -> dict[str, list[dict]]:
    """Plan the runs of every ``(setting, subset_path, out_dir)`` of ``jobs``, train their
    stacks on the executor of params.yaml (locally: one pool of ``train.workers`` threads, so no
    core idles at the end of a setting; on Ray: every stack a task), and write each setting's
    outputs, in order, as soon as its runs are done. Every finished stack is kept in ``store``
    at once; stacks already there are reused. From pre-trained weights (the folder
    ``pretrained`` holding ``pretrain.seeds`` checkpoints) and with ``zero_dir``, the weights as
    they start are evaluated there first (see :func:`_no_real_data`)."""
    if init not in INITS:
        raise CabinliftError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
    if init == "pretrained" and pretrained is None:
        raise CabinliftError("fine-tuning from pre-trained weights needs --pretrained FOLDER")
    setup = hparams, recipe, device = _setup(params, model)
    store = store or RunStore(None)
    files = [processed / f"real_{s}.npz" for s in ("train", "val", "test")]
    arrays = {s: load_arrays(f) for s, f in zip(("train", "val", "test"), files, strict=True)}
    starts = None if init != "pretrained" else _Starts.load(
        pretrained_checkpoints(pretrained, params.pretrain.seeds), model, hparams)
    zero = zero_dir is not None and starts is not None
    plan = _plan_finetune(params, model, init, processed, jobs, store,
                          len(arrays["train"]["x2d"]), starts, setup)
    groups = [g for s in plan.settings for g in s.groups]
    unit_mm = recipe.target_unit_mm
    record = (None if timings_dir is None
              else timings_dir / "units" / f"finetune_{init}_{model}.jsonl")
    with open_executor(params.executor, plan.workers, plan.threads, record,
                       params.source) as executor:
        if executor.remote:
            test = PoseTensors.from_arrays(arrays["test"], unit_mm, torch.device("cpu"))
            shared = executor.share(arrays)
            states = executor.share(None if starts is None else starts.states)
            light = dataclasses.replace(plan, settings=[])  # what a stack needs of the plan
            units = [Unit(f"finetune pretrained {model} {NO_REAL_DATA}", _remote_no_real_data,
                          (model, hparams, states, starts.paths, shared, recipe, str(device)))
                     ] if zero else []
            units += [Unit(_group_name(plan, g), _remote_group, (
                light, _without_init(g), shared, states, str(device), _absolute(store)))
                for g in groups]
        else:
            val, test = (PoseTensors.from_arrays(arrays[s], unit_mm, device)
                         for s in ("val", "test"))
            if zero:
                _write_no_real_data(zero_dir, [
                    _no_real_data(model, hparams, state, path, j, val, test, recipe)
                    for j, (state, path) in enumerate(zip(starts.states, starts.paths,
                                                          strict=True))])
            data = _RealData(PoseTensors.from_arrays(arrays["train"], unit_mm, device), val, test)
            units = [Unit(_group_name(plan, g), _train_group, (plan, g, data, store))
                     for g in groups]
        out: dict[str, list[dict]] = {}
        with contextlib.closing(executor.map(units, f"{init} {model}")) as results:
            if zero and executor.remote:
                _write_no_real_data(zero_dir, next(results))
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
    starts = [j for g in job.groups for j in g.starts]
    for run, result, start in zip(job.runs, runs, starts, strict=True):
        pred = result.extra["pred_mm"]  # (N_test, J, 3) mm, on the CPU
        test_mpjpe = float(mpjpe(pred, target_mm, mask))
        save_checkpoint(job.out_dir / f"run{run['repetition']:02d}.pt", model, plan.hparams,
                        result.best_state,
                        checkpoint_meta(recipe, setting=job.name, init=init,
                                        repetition=run["repetition"]))
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


def _no_real_data(model: str, hparams: dict[str, Any], state: dict[str, torch.Tensor],
                  pretrained: Path, j: int, val: PoseTensors, test: PoseTensors, recipe: Recipe
                  ) -> tuple[dict[str, Any], np.ndarray]:
    """Pre-training ``j``'s weights evaluated on the real data before any fine-tuning: a run
    (repetition ``j``) of the pseudo-setting :data:`cabinlift.subsets.NO_REAL_DATA` (no training
    frames, no steps) and its test predictions (float32 mm)."""
    net = build_with_weights(pretrained, model, hparams, state, "re-run the pretrain stage")
    net = net.to(test.x.device)
    unit = recipe.target_unit_mm
    val_mm = to_mm(predict(net, val.x, recipe.eval_batch_size), unit)
    pred_mm = to_mm(predict(net, test.x, recipe.eval_batch_size), unit).cpu()
    target_mm = to_mm(test.y, unit).cpu()
    record = {
        "model": model, "init": "pretrained", "setting": NO_REAL_DATA, "repetition": j,
        "subset": 0, "seed": 0, "pretrain_seed": j,
        "subjects": [], "train_frames": 0, "epochs_run": 0, "best_epoch": 0, "steps": 0,
        "stopped_early": False,
        "best_val_mpjpe": round(float(mpjpe(val_mm, to_mm(val.y, unit), val.mask)), 4),
        "test_mpjpe": round(float(mpjpe(pred_mm, target_mm, test.mask.cpu())), 4),
        "history": [],
    }
    return record, pred_mm.numpy().astype(np.float32)


def _write_no_real_data(out_dir: Path, runs: list[tuple[dict[str, Any], np.ndarray]]) -> None:
    """``runs.json`` and ``predictions.npz`` of :func:`_no_real_data` (one run per
    pre-training) in the layout of a setting."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.save_npz(out_dir / "predictions.npz",
                    {"pred": np.stack([p for _, p in runs]),
                     "repetition": np.asarray([r["repetition"] for r, _ in runs])})
    atomic.write_atomic(out_dir / "runs.json",
                        json.dumps([r for r, _ in runs], indent=1) + "\n")


def run_finetune_all(params: Params, model: str, init: str, processed: Path,
                     subsets_dir: Path, out_root: Path, pretrained: Path | None = None,
                     timings_dir: Path | None = None, settings: list[str] | None = None,
                     store: RunStore | None = None) -> dict[str, list[dict]]:
    """Every run of every setting (default: all of params' ``settings``), each on its subset
    (from scratch or from the pre-trained weights of the folder ``pretrained``), keeping its
    best-val checkpoint, then predicting the test set: ``out_root/<setting>/`` receives
    ``run<r>.pt``, ``runs.json`` (one record per run) and ``predictions.npz`` (``pred`` (R,
    N_test, 13, 3) float32 mm, ``repetition`` (R,)); the runs' wall times go to
    ``<timings_dir>/finetune/<init>/<model>/<setting>.json``. From pre-trained weights,
    ``out_root/none`` also receives each pre-training's weights evaluated before any
    fine-tuning. One stage per (model, init) saves the per-stage start-up cost that dominates a
    grid of small runs. Returns the records per setting, with wall times."""
    names = list(params.settings) if settings is None else settings
    for name in names:
        if name not in params.settings:
            raise CabinliftError(f"setting {name!r} is not listed under key 'settings'")
    jobs = [(name, subsets_dir / f"{name}.json", out_root / name) for name in names]
    return _finetune(params, model, init, processed, jobs, pretrained, timings_dir, store,
                     zero_dir=out_root / NO_REAL_DATA)


def run_finetune_stage(params: Params, model: str, init: str, processed: Path,
                       subsets_dir: Path, out_root: Path, pretrained: Path | None,
                       timings_dir: Path | None, settings: list[str] | None
                       ) -> dict[str, dict[str, Any]]:
    """The ``finetune`` stage of ``(model, init)`` with the run store of params.yaml: a summary
    per setting (runs, reused runs, mean test MPJPE)."""
    by_setting = run_finetune_all(params, model, init, processed, subsets_dir, out_root,
                                  pretrained, timings_dir, settings,
                                  RunStore.from_config(params.store))
    return {s: {"runs": len(r), "reused": sum(x["reused"] for x in r),
                "mean_test_mpjpe": round(sum(x["test_mpjpe"] for x in r) / len(r), 2)}
            for s, r in by_setting.items()}
