"""The ``pretrain`` and ``finetune`` stages: load the processed arrays, plan the runs
(:mod:`.plan`), key them (:mod:`.store`), run them as units of work (:mod:`.units`) on the
executor of params.yaml, and write the outputs (:mod:`.outputs`) in a fixed order as the
results come back. One code path for both executors (:mod:`cabinlift.executors`)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from cabinlift.arrays import load_arrays
from cabinlift.config import INITS, NO_REAL_DATA, Params
from cabinlift.errors import CabinliftError
from cabinlift.executors import Unit, open_executor
from cabinlift.training import units
from cabinlift.training.data import PoseTensors
from cabinlift.training.finetuning import SEQUENTIAL, SYNTHETIC_TRAIN, Strategy
from cabinlift.training.outputs import write_no_real_data, write_pretrain, write_setting
from cabinlift.training.plan import (
    Starts,
    lifter_setup,
    plan_finetune,
    pretrain_seed,
    pretrain_workers,
    pretrained_checkpoints,
)
from cabinlift.training.store import RunStore, finetune_keys, pretrain_key, stage_key

SPLITS = ("train", "val", "test")


def _load(processed: Path, domain: str) -> tuple[list[Path], dict[str, dict[str, Any]]]:
    """The files of the ``domain`` (``synthetic`` or ``real``) splits and their arrays."""
    files = [processed / f"{domain}_{s}.npz" for s in SPLITS]
    return files, {s: load_arrays(f) for s, f in zip(SPLITS, files, strict=True)}


def _pretrain(params: Params, jobs: list[tuple[str, Path, Path]], processed: Path,
              timings_dir: Path | None, store: RunStore) -> dict[str, dict[str, Any]]:
    """Pre-train every ``(model, checkpoint_folder, summary_path)`` of ``jobs`` on the synthetic
    training split ``pretrain.seeds`` times (each its own seed), keeping each run's best
    synthetic-val weights as ``<checkpoint_folder>/seed<j>.pt`` (each reused from ``store`` when
    an identical run finished before). The pre-trainings are the units of one stage: on Ray
    they run at the same time; locally as :func:`~cabinlift.training.plan.pretrain_workers`
    says. Outputs are written in the order of ``jobs``. Returns each model's summary with its
    wall time."""
    files, arrays = _load(processed, "synthetic")
    record = None if timings_dir is None else timings_dir / "units" / "pretrain.jsonl"
    setups = {model: lifter_setup(params, model) for model, _, _ in jobs}
    n_seeds = params.pretrain.seeds
    out = {}
    with open_executor(params.executor, pretrain_workers(len(jobs) * n_seeds), None, record,
                       params.source) as executor:
        shared = executor.share(arrays)
        todo = []
        for model, _, _ in jobs:
            hparams, recipe, device = setups[model]
            stage = stage_key(model, hparams, recipe, device, executor.threads, files
                              ) if store.enabled else None
            for j in range(n_seeds):
                seed = pretrain_seed(params.train.seed, model, j)
                key = None if stage is None else pretrain_key(stage, seed)
                name = f"pretrain {model}" + (f" seed {j}" if n_seeds > 1 else "")
                todo.append(Unit(name, units.pretrain, (
                    model, hparams, recipe, seed, key, shared, device, store, name,
                    executor.unit_bars)))
        with contextlib.closing(executor.map(todo, "pretrain")) as results:
            for model, ckpt_dir, summary_path in jobs:
                hparams, recipe, _ = setups[model]
                runs = [next(results) for _ in range(n_seeds)]
                out[model] = write_pretrain(model, hparams, recipe, runs, arrays, ckpt_dir,
                                            summary_path, timings_dir)
    store.clean()
    return out


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
    return _pretrain(params, jobs, processed, timings_dir, RunStore.from_config(params.store))


def _finetune(params: Params, model: str, init: str, processed: Path,
              jobs: list[tuple[str, Path, Path]], pretrained: Path | None,
              timings_dir: Path | None, store: RunStore, zero_dir: Path) -> dict[str, list[dict]]:
    """Plan the runs of every ``(setting, subset_path, out_dir)`` of ``jobs``, train their
    stacks on the executor of params.yaml (locally: one pool of ``train.workers`` threads, so no
    core idles at the end of a setting; on Ray: every stack a task), and write each setting's
    outputs, in order, as soon as its runs are done. Every finished stack is kept in ``store``
    at once; stacks already there are reused. From pre-trained weights (the folder
    ``pretrained`` holding ``pretrain.seeds`` checkpoints), the weights as they start are
    evaluated into ``zero_dir`` first (one more unit), and the runs are fine-tuned as params'
    ``finetune`` section says (:mod:`cabinlift.training.finetuning`; mixed: with the synthetic
    training split too)."""
    if init not in INITS:
        raise CabinliftError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
    if init == "pretrained" and pretrained is None:
        raise CabinliftError("fine-tuning from pre-trained weights needs --pretrained FOLDER")
    hparams, recipe, device = lifter_setup(params, model)
    strategy = SEQUENTIAL if init != "pretrained" else Strategy.from_config(params.finetune)
    recipe = strategy.recipe(recipe)
    lifter = hparams, recipe, device
    files, arrays = _load(processed, "real")
    if strategy.mixed:
        files = [*files, processed / SYNTHETIC_TRAIN]
        arrays = {**arrays, "synthetic": load_arrays(files[-1])}
    starts = None if init != "pretrained" else Starts.load(
        pretrained_checkpoints(pretrained, params.pretrain.seeds), model, hparams)
    plan = plan_finetune(params, model, init, jobs, len(arrays["train"]["x2d"]), starts, lifter)
    plan.finetune = strategy.describe()
    test = PoseTensors.from_arrays(arrays["test"], recipe.target_unit_mm, torch.device("cpu"))
    record = (None if timings_dir is None
              else timings_dir / "units" / f"finetune_{init}_{model}.jsonl")
    with open_executor(params.executor, plan.workers, None, record, params.source) as executor:
        stage = stage_key(model, hparams, recipe, device, executor.threads, files
                          ) if store.enabled else None
        for group in plan.groups:
            group.keys = [None] * len(group.specs) if stage is None else finetune_keys(
                stage, init, [(s.seed, s.indices, None if j is None else starts.digests[j])
                              for s, j in zip(group.specs, group.starts, strict=True)],
                plan.finetune)
        shared = executor.share(arrays)
        states = executor.share(None if starts is None else starts.states)
        todo = [] if starts is None else [Unit(
            f"finetune pretrained {model} {NO_REAL_DATA}", units.evaluate_pretrained,
            (model, hparams, recipe, states, starts.paths, shared, device))]
        todo += [Unit(g.name(plan), units.train_stack, (
            model, init, hparams, recipe, strategy, g, shared, states, device, store,
            executor.unit_bars)) for g in plan.groups]
        out: dict[str, list[dict]] = {}
        with contextlib.closing(executor.map(todo, f"{init} {model}")) as results:
            if starts is not None:
                write_no_real_data(zero_dir, model, next(results))
            for setting in plan.settings:
                runs = [r for _ in setting.groups for r in next(results)]
                out[setting.name] = write_setting(plan, setting, runs, test, timings_dir)
    store.clean()
    return out


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
    return _finetune(params, model, init, processed, jobs, pretrained, timings_dir,
                     store or RunStore(None), out_root / NO_REAL_DATA)


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
